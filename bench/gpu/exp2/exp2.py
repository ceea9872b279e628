"""Experiment 2 (GPU machine, from anywhere: python3 exp2.py [--ncu]): the
thread -> element layouts of layouts.cu against kvq's committed PTX
(../ptx/kernels_tpb128.ptx), D = 128: correctness against kvq_bench.py's
references, then single-launch and CUDA-graph timing at T = 1, 256, 4096,
32768 next to a copy of the same bytes, and the launch cost of kernels with
no work (0 and 49 parameters, kvq's store with T = 0). See README.md."""
import ctypes, glob, math, os, re, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kvq_bench as kb
import torch

here = os.path.dirname(os.path.abspath(__file__))
dev = "cuda"
H = kb.H


class Variant:
    def __init__(self, path):
        self.path, self.mod = path, kb.Module(path)
        self.name = os.path.basename(path)[:-4]
        m = re.search(r"exp2: EPI=(\d+) SPLIT=(\d+) ITEMS=(\d+) LITEMS=(\d+) EXACT=(\d+) BARE=(\d+)",
                      open(path).read(2000))
        self.kvq = not m
        if m:
            self.epi, _, self.items, self.litems, _, self.bare = map(int, m.groups())
        else:   # kvq's own PTX
            self.name = "kvq_" + self.name.replace("kernels_", "")
            self.epi, self.items, self.litems, self.bare = 8, 1, 2, 1
        VARIANT_OF[id(self.mod)] = self

    def grids(self, T, D):
        n = T * H * D
        return (max(1, -(-n // self.epi // (128 * self.items))),
                max(1, -(-n // 8 // (128 * self.litems))))

    def store(self, s, D=128, grid=None):
        T = s[0].shape[0]
        return launch(self.mod, f"store_d{D}_kernel", list(s[:5]), grid or self.grids(T, D)[0])

    def load(self, s, D=128, grid=None):
        T = s[0].shape[0]
        return launch(self.mod, f"load_d{D}_kernel", [s[0], s[3], s[4], s[5], s[6]],
                      grid or self.grids(T, D)[1])


VARIANT_OF = {}
_launch = kb.Launch


class ExpLaunch:
    """A launch of an exp2 kernel: kvq's 45 descriptor fields + 4 scales, or
    (BARE) 5 pointers, 4 scales, the 5 leading sizes."""

    def __init__(self, v, name, tensors, grid):
        self.fn, self.regs, self.occ = v.mod.fn(name)
        f32 = lambda x: float(kb.np.float32(x))
        scales = [kb.SK, f32(kb.np.float32(1) / kb.np.float32(kb.SK)),
                  kb.SV, f32(kb.np.float32(1) / kb.np.float32(kb.SV))]
        if v.bare:
            u64 = [t.data_ptr() for t in tensors]
            tail = [t.shape[0] for t in tensors][:1 if v.bare == 2 else 5]
        else:
            u64 = sum(([t.data_ptr(), t.data_ptr(), 0] + list(t.shape) + list(t.stride())
                       for t in tensors), [])
            tail = []
        self.a = (ctypes.c_uint64 * len(u64))(*u64)
        self.f = (ctypes.c_float * 4)(*scales)
        self.t = (ctypes.c_int64 * max(1, len(tail)))(*tail)
        ptrs = [ctypes.addressof(self.a) + 8 * i for i in range(len(u64))]
        ptrs += [ctypes.addressof(self.f) + 4 * i for i in range(4)]
        ptrs += [ctypes.addressof(self.t) + 8 * i for i in range(len(tail))]
        self.ptrs = (ctypes.c_void_p * len(ptrs))(*ptrs)
        self.grid, self.tpb, self.keep = grid, 128, tensors

    def __call__(self):
        st = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        kb.ck(kb.cu.cuLaunchKernel(self.fn, self.grid, 1, 1, 128, 1, 1, 0, st, self.ptrs, None),
              "cuLaunchKernel")


def launch(mod, name, tensors, grid=None):
    v = VARIANT_OF.get(id(mod))
    if v is None or v.kvq:
        return _launch(mod, name, tensors, grid)
    return ExpLaunch(v, name, tensors, grid)


kb.Launch = launch


def raw(mod, name, nparams):
    f, _, _ = mod.fn(name)
    vals = (ctypes.c_uint64 * max(1, nparams))(*([1] * nparams))
    ptrs = (ctypes.c_void_p * max(1, nparams))(*[ctypes.addressof(vals) + 8 * i for i in range(nparams)])
    def call():
        st = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
        kb.ck(kb.cu.cuLaunchKernel(f, 1, 1, 1, 128, 1, 1, 0, st, ptrs if nparams else None, None), "launch")
    call.keep = (vals, ptrs)
    return call


def correctness(v, refs, gen):
    t = kb.Tally()
    for D in (128, 64, 256):
        for T in (1, 16, 256, 4096):
            k, vv = kb.rand_act(T, D, gen), kb.rand_act(T, D, gen)
            slots = kb.rand_slots(T, kb.nblocks(T), gen)
            g = v.grids(T, D)
            kc, vc = kb.check_store(v.mod, refs, t, D, T, k, vv, slots, grid=g[0])
            kb.check_load(v.mod, refs, t, D, T, kc, vc, slots, grid=g[1], tag=" rt")
            kr = torch.randint(0, 256, kc.shape, dtype=torch.uint8, device=dev, generator=gen)
            kb.check_load(v.mod, refs, t, D, T, kr, kr.flip(0).contiguous(), slots, grid=g[1], tag=" rb")
    T = 65536 // (H * 128)
    slots = kb.rand_slots(T, kb.nblocks(T), gen, pad_every=0)
    kb.check_store(v.mod, refs, t, 128, T, kb.all_bf16(128), kb.all_bf16(128, True), slots,
                   grid=v.grids(T, 128)[0], tag=" allbf16")
    T = 256
    k, vv = kb.rand_act(T, 128, gen), kb.rand_act(T, 128, gen)
    slots = kb.rand_slots(T, kb.nblocks(T), gen)
    kc, vc = kb.check_store(v.mod, refs, t, 128, T, k, vv, slots, grid=3, tag=" grid3")
    kb.check_load(v.mod, refs, t, 128, T, kc, vc, slots, grid=3, tag=" grid3")
    return t


def main():
    torch.ones(1, device=dev)
    paths = sorted(glob.glob(os.path.join(here, "..", "ptx", "kernels_tpb*.ptx")))
    paths += sorted(glob.glob(os.path.join(here, "*.ptx")))
    match = sys.argv[sys.argv.index("--match") + 1] if "--match" in sys.argv else ""
    variants = [Variant(p) for p in paths if re.search(match, os.path.basename(p))]
    gen = torch.Generator(device=dev)
    gen.manual_seed(7)
    if "--ncu" in sys.argv:
        for T in (256, 4096):
            s = kb.bench_sets(128, T, gen, 1)[0]
            for v in variants:
                v.store(s)(); v.load(s)(); kb.sync("ncu")
                print(f"ncu: {v.name} store, load T={T}", flush=True)
        return
    refs = kb.Refs()
    for v in variants:
        t = correctness(v, refs, gen)
        print(f"correctness {v.name}: {t.bytes_ref} bytes vs CPU ref {t.mism_ref} mismatches, "
              f"{t.bytes_torch} vs torch {t.mism_torch}", flush=True)
        torch.cuda.empty_cache()
    kb.FLUSH = torch.ones(64 * 1024 * 1024, dtype=torch.float32, device=dev)
    ex = next((v for v in variants if not v.kvq), None)
    probes = {} if ex is None else {
        "empty0": raw(ex.mod, "empty0_kernel", 0), "empty14": raw(ex.mod, "empty14_kernel", 14),
        "empty49": raw(ex.mod, "empty49_kernel", 49)}
    for rep in range(2 if probes else 0):
        line = "null launches (single us cold / hot; graph us per call):"
        for n, f in probes.items():
            line += f" {n} {kb.time_us([f])[0]:.2f} / {kb.time_us([f], flush=False)[0]:.2f}; graph {kb.time_graph_us([f]):.2f};"
        print(line, flush=True)
    copy = kb.time_copy()
    print(f"copy 256 MiB: {copy['tbps']:.3f} TB/s", flush=True)
    for T in (256, 4096, 32768):
        sets = kb.graph_sets(128, T, gen) if T <= 4096 else kb.bench_sets(128, T, gen, 2)
        nbytes = 2 * T * H * 128 * 3 + 8 * T
        n = (nbytes // 2 + 15) // 16 * 16
        bufs = [(torch.empty(n, dtype=torch.uint8, device=dev), torch.empty(n, dtype=torch.uint8, device=dev))
                for _ in sets]
        copies = [(lambda a=a, b=b: b.copy_(a)) for a, b in bufs]
        pct = lambda us: 100 * nbytes / us / 1e6 / copy["tbps"]
        for rep in range(2):
            c1 = kb.time_us(copies[:8])[0]
            cg = kb.time_graph_us(copies) if T <= 4096 else float("nan")
            print(f"T={T} rep {rep}: copy same bytes single {c1:.2f} us ({pct(c1):.1f}%), graph {cg:.2f}", flush=True)
            for v in variants:
                st = [v.store(s) for s in sets]
                ld = [v.load(s) for s in sets]
                for f in st:
                    f()
                r = []
                for fns in (st, ld):
                    u = kb.time_us(fns[:8])[0]
                    g = kb.time_graph_us(fns) if T <= 4096 else float("nan")
                    r.append(f"{u:7.2f} ({pct(u):5.1f}%) graph {g:6.2f} ({pct(g):5.1f}%)")
                print(f"  {v.name:16} grids {v.grids(T, 128)} store {r[0]} | load {r[1]}", flush=True)
        del sets, bufs, copies
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
