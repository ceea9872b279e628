#!/usr/bin/env python3
"""Run kvq's generated PTX cache kernels on an NVIDIA GPU: bit-exactness
first, then timing, next to a device-to-device copy.

The kernels are loaded from the PTX that bench/gpu/gen.sh wrote (kvq-opt
--kvq-to-ptx=chip=sm_90 ...) with the CUDA driver API, called through ctypes
(cuModuleLoadDataEx, cuModuleGetFunction, cuLaunchKernel), on buffers that
PyTorch allocates; the ABI is the one documented in
include/kvq/Conversion/Passes.td (kvq-lower-cache-ops, "GPU form and kernel
ABI"): 14 parameters, the pointers of slot_mapping, K source, V source,
K destination, V destination, the f32 k_scale, RN(1/k_scale), v_scale,
RN(1/v_scale), then the leading (dynamic) size of each of the five memrefs
(kvq's kernels are named after their signature:
kvq_cache_store_bf16_f8E4M3FN_8x<D>_b16[_fma|_divf]_kernel and
kvq_cache_load_f8E4M3FN_bf16_8x<D>_b16_kernel; this script calls them
store_d<D>_kernel / load_d<D>_kernel); block = the PTX's .maxntid; grid =
max(1, ceil(T*H*D/8 / (block * items))): a work item is 8 elements (16
bytes of bf16), one per store thread, two per load thread.

Modes:
  kvq_bench.py            correctness + timing of every PTX in ptx/, writes
                          $OUT/kvq_results.json (exit 1 on any mismatch of a
                          kvq-generated PTX)
  kvq_bench.py --ncu      one launch of a few kernels, for ncu to profile
  kvq_bench.py --summary  the final table from $OUT/kvq_results.json and
                          $OUT/torch_baseline.log

Correctness, for each PTX and each shape: random bf16 K/V (normal, 0.5% of
them x1000 so that they saturate), distinct random slots in a cache of twice
the blocks needed, every 7th token a -1 padding slot, caches poisoned with
0xA5 and load outputs with 0xEE first; all bytes of both caches (resp. both
outputs) are compared with (a) the CPU reference of kvq_ref.py (numpy) and
(b) PyTorch: (x.float() / s).clamp(-448, 448).to(float8_e4m3fn) resp.
(c.float() * s).to(bfloat16), s a float32 CUDA tensor. Plus an exhaustive
case (every bf16 bit pattern, NaN / inf / -0 / subnormals included, through
the store; every cache byte through the load), a round trip (load of what
the store wrote), and a launch with a 3-block grid (grid-stride loop).
PyTorch keeps the sign of a NaN (0xFF / a negative NaN), kvq's ABI writes
0x7F / 0x7FC0: NaN positions are left out of the PyTorch comparison (and
counted), never out of the CPU-reference one.

Timing: CUDA events around each single launch, median of N launches after
warm-up; before each timed launch a 256 MiB buffer is read (a sum), which
evicts the 50 MB L2 with clean lines, and the launches rotate among several
buffer sets for small T ("cold"). "hot" is the same launch back-to-back on
one buffer set with no flush (the L2 then holds what fits). The GPU queue is
kept full (torch.cuda._sleep before each batch) so host launch overhead is
not timed. The copy ceiling is a 256 MiB device-to-device cudaMemcpyAsync
(torch copy_), bytes read + written.
"""
import ctypes
import glob
import json
import math
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
OUT = os.environ.get("OUT") or os.path.join(HERE, "out")
os.makedirs(OUT, exist_ok=True)

H, BS = 8, 16
SK, SV = 0.05, 0.07            # the model's K and V scales (gen.sh)
TIME_T = {128: [1, 16, 256, 4096, 32768], 64: [4096, 32768], 256: [4096, 32768]}
# CUDA-graph timing (time_graph_us): launches per graph, and the T timed.
GRAPH_CALLS = 64
GRAPH_T = (1, 16, 256, 4096)
CHECK_T = [1, 16, 256, 4096, 32768]   # correctness: every D at every T


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------
# summary mode needs no GPU
# --------------------------------------------------------------------------
def parse_baseline(path):
    """{T: {row name: (ms, TB/s)}} from torch_baseline.py's tables."""
    res, T = {}, None
    if not os.path.exists(path):
        return res
    for line in open(path):
        m = re.search(r"T=(\d+) H=\d+ D=\d+", line)
        if m:
            T = int(m.group(1))
            res[T] = {}
            continue
        m = re.match(r"(d2d copy \(256 MiB\)|store eager|store torch\.compile|"
                     r"load eager|load torch\.compile)\s+([\d.]+)\s+([\d.]+)", line)
        if m and T is not None:
            res[T][m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return res


def summary():
    r = json.load(open(os.path.join(OUT, "kvq_results.json")))
    base = parse_baseline(os.path.join(OUT, "torch_baseline.log"))
    copy = r["copy"]
    nan = float("nan")
    lines = []
    p = lines.append
    p(f"device: {r['device']}  driver {r.get('driver', '?')}  "
      f"SMs {r['sms']}  L2 {r['l2_mb']:.0f} MB")
    p(f"copy ceiling: 256 MiB D2D {copy['us']:.1f} us = {copy['tbps']:.3f} TB/s "
      f"(read+write; again at the end: {r['copy_again']['tbps']:.3f}); "
      f"torch_baseline's own do_bench copy: " +
      ", ".join(f"T={t}: {b['d2d copy (256 MiB)'][1]:.3f}" for t, b in sorted(base.items())
                if 'd2d copy (256 MiB)' in b))
    if "null" in r:
        p(f"null launch (T=0, no work): {r['null']['us']:.2f} us cold, "
          f"{r['null']['us_hot']:.2f} us hot")
    for v, c in r["correct"].items():
        p(f"correctness {v}: {c['bytes_ref']} bytes vs CPU reference, {c['mism_ref']} "
          f"mismatches; {c['bytes_torch']} bytes vs PyTorch, {c['mism_torch']} mismatches")
    variants = list(r["variants"])
    main = variants[0]
    same = r.get("copy_same_bytes", {})
    p("")
    p(f"kvq = {main} (kvq-opt's default), cold L2, median of 200; %copy = of the 256 MiB copy;"
      f" 'copy same B' = a D2D copy moving the same bytes, timed the same way;")
    p("eager / compiled = torch_baseline.py (triton do_bench median; D=128 only)")
    p(f"{'op':5} {'D':>4} {'T':>6} {'kvq us':>8} {'TB/s':>6} {'%copy':>6} {'hot us':>7} "
      f"{'dobench':>8} {'copy same B':>14} {'eager us':>9} {'compiled':>9}")
    for op in ("store", "load"):
        for D in (128, 64, 256):
            for T in TIME_T[D]:
                m = r["variants"][main].get(f"{op}/{D}/{T}")
                if not m:
                    continue
                b = base.get(T, {}) if D == 128 else {}
                e = b.get(f"{op} eager")
                c = b.get(f"{op} torch.compile")
                cs = same.get(f"{D}/{T}")
                p(f"{op:5} {D:4} {T:6} {m['us']:8.2f} {m['tbps']:6.3f} "
                  f"{m['pct_copy']:5.1f}% {m['us_hot']:7.2f} "
                  f"{m.get('us_dobench', nan):8.2f} "
                  + (f"{cs['us']:7.2f} ({cs['pct_copy']:3.0f}%)" if cs else " " * 14)
                  + f" {(e[0] * 1e3 if e else nan):9.1f} {(c[0] * 1e3 if c else nan):9.1f}")
    g = r.get("graph", {})
    if g:
        p("")
        p(f"CUDA graph of {GRAPH_CALLS} launches over distinct buffer sets (D=128, L2 "
          f"flushed before each replay), us per call; null launch {g['null']:.2f} us")
        p(f"{'T':>6} {'copy same B':>12}" + "".join(
            f" {v + ' ' + op:>28}" for v in variants for op in ("store", "load")))
        for T in GRAPH_T:
            if f"copy/{T}" not in g:
                continue
            p(f"{T:6} {g[f'copy/{T}']:12.2f}" + "".join(
                f" {g.get(f'{v}/{op}/{T}', nan):28.2f}" for v in variants
                for op in ("store", "load")))
    p("")
    p("variants (us, cold L2; %copy): kvq PTX at other threads-per-block or "
      "quantize-division (fma, divf)")
    shapes = [(op, D, T) for op in ("store", "load")
              for D, T in ((128, 1), (128, 256), (128, 4096), (128, 32768), (64, 4096),
                           (256, 4096))]
    p(f"{'variant':24}" + "".join(f" {op[:2]}{D}/{T:<6}" for op, D, T in shapes))
    for v in variants:
        row = f"{v:24}"
        for op, D, T in shapes:
            m = r["variants"][v].get(f"{op}/{D}/{T}")
            row += f" {m['us']:6.2f}/{m['pct_copy']:3.0f}" if m else " " * 11
        p(row)
    p("")
    t = r["variants"][main]

    def pct(k):
        return t[k]["pct_copy"] if k in t else nan
    checks = [
        ("store T=32768 D=128 >= 90% of copy", pct("store/128/32768") >= 90),
        ("load  T=32768 D=128 >= 90% of copy", pct("load/128/32768") >= 90),
        ("store T=256 D=128 <= 5 us (single launch, events around it)",
         t.get("store/128/256", {}).get("us", 1e9) <= 5.0),
        ("store T=256 D=128 <= 5 us (per call in a CUDA graph)",
         g.get(f"{main}/store/256", 1e9) <= 5.0),
        ("store T=4096 D=128 >= 75% of copy", pct("store/128/4096") >= 75),
        ("load  T=4096 D=128 >= 75% of copy", pct("load/128/4096") >= 75),
    ]
    for D in (64, 256):
        for op in ("store", "load"):
            checks.append((f"{op:5} T=32768 D={D} >= 90% of copy", pct(f"{op}/{D}/32768") >= 90))
    for name, ok in checks:
        p(f"target {name} ({main}): {'MET' if ok else 'MISSED'}")
    print("\n".join(lines))


if __name__ == "__main__" and "--summary" in sys.argv:
    summary()
    sys.exit(0)

# --------------------------------------------------------------------------
# GPU part
# --------------------------------------------------------------------------
import numpy as np   # noqa: E402
import torch         # noqa: E402

import kvq_ref       # noqa: E402

FP8 = torch.float8_e4m3fn
dev = "cuda"
c_void_p, c_uint, c_int = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int
cu = ctypes.CDLL("libcuda.so.1")
cu.cuGetErrorString.argtypes = [c_int, ctypes.POINTER(ctypes.c_char_p)]
cu.cuModuleLoadDataEx.argtypes = [ctypes.POINTER(c_void_p), ctypes.c_char_p, c_uint,
                                  ctypes.POINTER(c_int), ctypes.POINTER(c_void_p)]
cu.cuModuleGetFunction.argtypes = [ctypes.POINTER(c_void_p), c_void_p, ctypes.c_char_p]
cu.cuLaunchKernel.argtypes = [c_void_p, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint,
                              c_uint, c_void_p, ctypes.POINTER(c_void_p),
                              ctypes.POINTER(c_void_p)]
cu.cuFuncGetAttribute.argtypes = [ctypes.POINTER(c_int), c_int, c_void_p]
cu.cuCtxGetCurrent.argtypes = [ctypes.POINTER(c_void_p)]
cu.cuOccupancyMaxActiveBlocksPerMultiprocessor.argtypes = [
    ctypes.POINTER(c_int), c_void_p, c_int, ctypes.c_size_t]
cu.cuDriverGetVersion.argtypes = [ctypes.POINTER(c_int)]


def ck(r, what):
    if r != 0:
        s = ctypes.c_char_p()
        cu.cuGetErrorString(r, ctypes.byref(s))
        raise RuntimeError(f"{what}: CUDA error {r} {s.value}")


class Module:
    def __init__(self, path):
        self.path = path
        text = open(path, "rb").read()
        tpbs = set(int(x) for x in re.findall(rb"\.maxntid (\d+), 1, 1", text))
        assert len(tpbs) == 1, (path, tpbs)
        self.tpb = tpbs.pop()
        # kvq's kernels by short names: store_d<D>_kernel -> the entry
        # kvq_cache_store_bf16_f8E4M3FN_8x<D>_b16[_fma|_divf]_kernel, ...
        self.names = {}
        for e in re.findall(rb"\.visible \.entry (\w+)\(", text):
            e = e.decode()
            m = re.fullmatch(r"kvq_cache_(store|load)_\w+?_8x(\d+)_b16\w*_kernel", e)
            if m:
                self.names[f"{m.group(1)}_d{m.group(2)}_kernel"] = e
        self.mod = c_void_p()
        logbuf = ctypes.create_string_buffer(16384)
        opts = (c_int * 2)(5, 6)  # CU_JIT_ERROR_LOG_BUFFER(_SIZE_BYTES)
        vals = (c_void_p * 2)(ctypes.cast(logbuf, c_void_p), c_void_p(16384))
        r = cu.cuModuleLoadDataEx(ctypes.byref(self.mod), text, 2, opts, vals)
        if r:
            log(logbuf.value.decode(errors="replace"))
        ck(r, f"cuModuleLoadDataEx {path}")
        self.fns = {}

    def fn(self, name):
        name = self.names.get(name, name)
        if name not in self.fns:
            f = c_void_p()
            ck(cu.cuModuleGetFunction(ctypes.byref(f), self.mod, name.encode()),
               f"cuModuleGetFunction {name}")
            regs, occ = c_int(), c_int()
            cu.cuFuncGetAttribute(ctypes.byref(regs), 4, f)  # NUM_REGS
            cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(occ), f, self.tpb, 0)
            self.fns[name] = (f, regs.value, occ.value)
        return self.fns[name]


# Work items: 8 elements (16 bytes of bf16) each; per thread and pass of
# the kernel's loop, 1 for the store and 2 for the load (kvq's lowering).
ELEMS_PER_ITEM = 8
ITEMS_PER_THREAD = {"store": 1, "load": 2}


def scale_pairs(scales):
    """s, RN(1/s) of each scale (an IEEE f32 division, as kvq's host code
    computes it), the kernel ABI's f32 parameters of a stream."""
    out = []
    for s in scales:
        s = np.float32(s)
        out += [float(s), float(np.float32(1) / s)]
    return out


class Launch:
    """One launch of a kvq kernel with its parameters packed once: the five
    memrefs' pointers (contiguous tensors, 16-byte aligned), the f32 scales
    (SK, RN(1/SK), SV, RN(1/SV)), the five memrefs' leading sizes."""

    def __init__(self, module, name, tensors, grid=None, scales=None):
        """scales: the f32 parameters after the pointers (default the
        model's pair per stream; heads_bench.py passes each head's pair of
        a per-head kernel, or none for a kernel with the scales built in)."""
        self.fn, self.regs, self.occ = module.fn(name)
        assert len(tensors) == 5
        for t in tensors:
            assert t.is_contiguous() and t.data_ptr() % 16 == 0
        self.ptr_vals = (ctypes.c_uint64 * 5)(*[t.data_ptr() for t in tensors])
        if scales is None:
            scales = scale_pairs([SK]) + scale_pairs([SV])
        self.scales = (ctypes.c_float * max(1, len(scales)))(*scales)
        self.sizes = (ctypes.c_int64 * 5)(*[t.shape[0] for t in tensors])
        ptrs = [ctypes.addressof(self.ptr_vals) + 8 * i for i in range(5)]
        ptrs += [ctypes.addressof(self.scales) + 4 * i for i in range(len(scales))]
        ptrs += [ctypes.addressof(self.sizes) + 8 * i for i in range(5)]
        self.ptrs = (c_void_p * len(ptrs))(*ptrs)
        self.tpb = module.tpb
        # "store_..." (a key here) or a kernel's name "kvq_cache_store_...".
        op = "store" if "store" in name.split("_") else "load"
        act = tensors[1] if op == "store" else tensors[3]
        work = tensors[0].shape[0] * act.shape[1] * act.shape[2] // ELEMS_PER_ITEM
        self.grid = grid or max(1, -(-work // (self.tpb * ITEMS_PER_THREAD[op])))
        self.keep = tensors

    def __call__(self):
        # On PyTorch's current stream (the default one, or the capture stream
        # of a CUDA graph).
        stream = c_void_p(torch.cuda.current_stream().cuda_stream)
        ck(cu.cuLaunchKernel(self.fn, self.grid, 1, 1, self.tpb, 1, 1, 0, stream,
                             self.ptrs, None), "cuLaunchKernel")


def sync(what):
    torch.cuda.synchronize()
    ck(cu.cuCtxSynchronize(), what)


# ----- data ---------------------------------------------------------------
def nblocks(T):
    return 2 * max(1, -(-T // BS))


def rand_act(T, D, gen):
    x = torch.randn(T, H, D, device=dev, generator=gen)
    big = torch.rand(T, H, D, device=dev, generator=gen) < 0.005
    return torch.where(big, x * 1000, x).to(torch.bfloat16)


def rand_slots(T, NB, gen, pad_every=7):
    s = torch.randperm(NB * BS, device=dev, generator=gen)[:T].to(torch.int64)
    if pad_every:
        s[torch.arange(T, device=dev) % pad_every == pad_every - 1] = -1
    return s.contiguous()


def all_bf16(D, flip=False):
    bits = torch.arange(65536, dtype=torch.int32, device=dev)
    if flip:
        bits = bits.flip(0)
    bits = torch.where(bits >= 32768, bits - 65536, bits)
    return bits.to(torch.int16).view(torch.bfloat16).reshape(-1, H, D).contiguous()


class Refs:
    def __init__(self):
        self.store = {s: torch.from_numpy(kvq_ref.store_table(s)).to(dev) for s in (SK, SV)}
        self.load = {s: torch.from_numpy(kvq_ref.load_table(s).view(np.int16)).to(dev)
                     for s in (SK, SV)}
        self.sdev = {s: torch.tensor(s, dtype=torch.float32, device=dev) for s in (SK, SV)}


def bits16(x):
    return x.view(torch.int16).to(torch.int64) & 0xFFFF


# ----- correctness ----------------------------------------------------------
class Tally:
    def __init__(self):
        self.bytes_ref = self.mism_ref = self.bytes_torch = self.mism_torch = 0
        self.nan_excluded = 0
        self.cases = []

    def add(self, name, got, ref, ref_t, torch_mask):
        """got/ref/ref_t: uint8 views of the same shape; torch_mask: bool of
        bytes where the PyTorch reference applies."""
        mr = int((got != ref).sum())
        mt = int(((got != ref_t) & torch_mask).sum())
        nt = int(torch_mask.sum())
        self.bytes_ref += got.numel()
        self.mism_ref += mr
        self.bytes_torch += nt
        self.mism_torch += mt
        self.nan_excluded += got.numel() - nt
        self.cases.append(dict(case=name, bytes=got.numel(), mism_ref=mr,
                               bytes_torch=nt, mism_torch=mt))
        if mr or mt:
            idx = (got != ref).flatten().nonzero()[:5].flatten().tolist()
            log(f"  MISMATCH {name}: {mr} vs CPU ref, {mt} vs torch; first at {idx}: "
                f"got {[int(got.flatten()[i]) for i in idx]} "
                f"ref {[int(ref.flatten()[i]) for i in idx]}")
        return mr, mt


def check_store(mod, refs, tally, D, T, k, v, slots, grid=None, tag=""):
    NB = nblocks(T)
    kc = torch.full((NB, BS, H, D), 0xA5, dtype=torch.uint8, device=dev)
    vc = torch.full_like(kc, 0xA5)
    Launch(mod, f"store_d{D}_kernel", [slots, k, v, kc, vc], grid)()
    sync(f"store_d{D} T={T}")
    valid = slots >= 0
    sv = slots[valid]
    for name, x, c, s in (("K", k, kc, SK), ("V", v, vc, SV)):
        ref = torch.full_like(c, 0xA5)
        ref.view(NB * BS, H * D)[sv] = refs.store[s][bits16(x)].view(T, H * D)[valid]
        q_t = (x.float() / refs.sdev[s]).clamp(-448, 448).to(FP8).view(torch.uint8)
        ref_t = torch.full_like(c, 0xA5)
        ref_t.view(NB * BS, H * D)[sv] = q_t.view(T, H * D)[valid]
        nan_t = torch.zeros(c.shape, dtype=torch.bool, device=dev)
        nan_t.view(NB * BS, H * D)[sv] = torch.isnan(x).view(T, H * D)[valid]
        tally.add(f"store{tag} D={D} T={T} {name}", c, ref, ref_t, ~nan_t)
    return kc, vc


def check_load(mod, refs, tally, D, T, kc, vc, slots, grid=None, tag=""):
    ko = torch.full((T, H, D), 0xEEEE - 65536, dtype=torch.int16, device=dev)
    vo = torch.full_like(ko, 0xEEEE - 65536)
    kb, vb = ko.view(torch.bfloat16), vo.view(torch.bfloat16)
    Launch(mod, f"load_d{D}_kernel", [slots, kc, vc, kb, vb], grid)()
    sync(f"load_d{D} T={T}")
    valid = slots >= 0
    sv = slots[valid]
    NB = kc.shape[0]
    for name, o, c, s in (("K", ko, kc, SK), ("V", vo, vc, SV)):
        rows = c.view(NB * BS, H * D)[sv]                # uint8 [Tv, H*D]
        ref = torch.full_like(o, 0xEEEE - 65536)
        ref.view(T, H * D)[valid] = refs.load[s][rows.to(torch.int64)]
        ref_t = torch.full_like(o, 0xEEEE - 65536)
        y = (rows.view(FP8).float() * refs.sdev[s]).to(torch.bfloat16)
        ref_t.view(T, H * D)[valid] = y.view(torch.int16)
        mask = torch.ones(o.shape, dtype=torch.bool, device=dev)
        mask.view(T, H * D)[valid] = ~torch.isnan(y)
        mask8 = mask.unsqueeze(-1).expand(*o.shape, 2).reshape(T, H, 2 * D)
        tally.add(f"load{tag} D={D} T={T} {name}", o.view(torch.uint8), ref.view(torch.uint8),
                  ref_t.view(torch.uint8), mask8)
    return ko, vo


def correctness(mod, refs, gen):
    tally = Tally()
    for D in (128, 64, 256):
        for T in CHECK_T:
            k, v = rand_act(T, D, gen), rand_act(T, D, gen)
            slots = rand_slots(T, nblocks(T), gen)
            kc, vc = check_store(mod, refs, tally, D, T, k, v, slots)
            # round trip: load what the store wrote
            check_load(mod, refs, tally, D, T, kc, vc, slots, tag=" roundtrip")
            # random cache bytes (every byte value, NaN encodings included)
            kr = torch.randint(0, 256, kc.shape, dtype=torch.uint8, device=dev, generator=gen)
            vr = torch.randint(0, 256, kc.shape, dtype=torch.uint8, device=dev, generator=gen)
            check_load(mod, refs, tally, D, T, kr, vr, slots, tag=" randbytes")
            del k, v, kc, vc, kr, vr
        # exhaustive: every bf16 bit pattern (NaN, inf, -0, subnormals) once
        T = 65536 // (H * D)
        slots = rand_slots(T, nblocks(T), gen, pad_every=0)
        kc, vc = check_store(mod, refs, tally, D, T, all_bf16(D), all_bf16(D, True), slots,
                             tag=" allbf16")
        # every cache byte value through the load
        kb = torch.arange(T * H * D, device=dev) % 256
        nb = nblocks(T)
        kcx = torch.full((nb, BS, H, D), 0xA5, dtype=torch.uint8, device=dev)
        kcx.view(nb * BS, H * D)[slots] = kb.to(torch.uint8).view(T, H * D)
        vcx = torch.full_like(kcx, 0xA5)
        vcx.view(nb * BS, H * D)[slots] = (255 - kb).to(torch.uint8).view(T, H * D)
        check_load(mod, refs, tally, D, T, kcx, vcx, slots, tag=" allbytes")
    # grid-stride loop: 3 blocks for 16384 / 32768 work items
    T, D = 256, 128
    k, v = rand_act(T, D, gen), rand_act(T, D, gen)
    slots = rand_slots(T, nblocks(T), gen)
    kc, vc = check_store(mod, refs, tally, D, T, k, v, slots, grid=3, tag=" grid3")
    check_load(mod, refs, tally, D, T, kc, vc, slots, grid=3, tag=" grid3")
    return tally


# ----- timing ---------------------------------------------------------------
FLUSH = None


def flush_l2():
    FLUSH.sum()        # reads 256 MiB: the L2 then holds clean lines of it


def time_us(fns, iters=200, flush=True, batch=50):
    """Median (p10, p90) microseconds of single launches, events around each."""
    for i in range(10):
        fns[i % len(fns)]()
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
          for _ in range(iters)]
    for b0 in range(0, iters, batch):
        torch.cuda._sleep(20_000_000)   # ~10 ms: keeps the queue ahead of the host
        for i in range(b0, min(iters, b0 + batch)):
            if flush:
                flush_l2()
            ev[i][0].record()
            fns[i % len(fns)]()
            ev[i][1].record()
    torch.cuda.synchronize()
    ts = sorted(a.elapsed_time(b) * 1e3 for a, b in ev)
    return statistics.median(ts), ts[len(ts) // 10], ts[(9 * len(ts)) // 10]


def time_graph_us(fns, calls=GRAPH_CALLS, reps=30):
    """Per-call microseconds of `calls` launches captured in one CUDA graph,
    cycling over `fns` (distinct buffer sets, like the layers of a model):
    the launches run back to back on the GPU, as a decode step's layers do
    under CUDA graphs in serving engines. Median over `reps` replays, the L2
    flushed (clean lines) before each replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(calls):
            fns[i % len(fns)]()
    graph.replay()
    torch.cuda.synchronize()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
          for _ in range(reps)]
    for a, b in ev:
        flush_l2()
        a.record()
        graph.replay()
        b.record()
    torch.cuda.synchronize()
    return statistics.median(a.elapsed_time(b) * 1e3 / calls for a, b in ev)


def graph_sets(D, T, gen):
    """Enough distinct buffer sets that a graph of GRAPH_CALLS launches
    touches about 4x the L2 (at most GRAPH_CALLS sets)."""
    NB = nblocks(T)
    set_bytes = 2 * T * H * D * 2 + 2 * NB * BS * H * D + 2 * T * H * D * 2
    return bench_sets(D, T, gen, max(1, min(GRAPH_CALLS, math.ceil(200e6 / set_bytes))))


def graph_timing(mods, gen):
    """Per-call time inside a CUDA graph, D = 128, decode-sized T: every
    module's store and load, a D2D copy moving the same bytes, and a launch
    with no work."""
    res = {}
    null = []
    for _ in range(8):
        slots = torch.empty(0, dtype=torch.int64, device=dev)
        k = torch.empty(0, H, 128, dtype=torch.bfloat16, device=dev)
        kc = torch.empty(2, BS, H, 128, dtype=torch.uint8, device=dev)
        null.append(Launch(next(iter(mods.values())), "store_d128_kernel",
                           [slots, k, k, kc, kc]))
    res["null"] = time_graph_us(null)
    log(f"  graph: null launch {res['null']:.2f} us per call")
    for T in GRAPH_T:
        sets = graph_sets(128, T, gen)
        nbytes = 2 * T * H * 128 * 3 + 8 * T
        n = (nbytes // 2 + 15) // 16 * 16
        bufs = [(torch.empty(n, dtype=torch.uint8, device=dev),
                 torch.empty(n, dtype=torch.uint8, device=dev)) for _ in sets]
        copies = [(lambda a=a, b=b: b.copy_(a)) for a, b in bufs]
        res[f"copy/{T}"] = time_graph_us(copies)
        line = f"  graph T={T:5} ({len(sets)} sets): copy same B {res[f'copy/{T}']:.2f} us"
        for name, mod in mods.items():
            st = [Launch(mod, "store_d128_kernel", list(s[:5])) for s in sets]
            ld = [Launch(mod, "load_d128_kernel", [s[0], s[3], s[4], s[5], s[6]])
                  for s in sets]
            res[f"{name}/store/{T}"] = time_graph_us(st)
            res[f"{name}/load/{T}"] = time_graph_us(ld)
            line += (f"; {name} store {res[f'{name}/store/{T}']:.2f}, "
                     f"load {res[f'{name}/load/{T}']:.2f}")
        log(line)
        del sets, bufs
        torch.cuda.empty_cache()
    return res


def bench_sets(D, T, gen, n_sets):
    sets = []
    NB = nblocks(T)
    for _ in range(n_sets):
        k, v = rand_act(T, D, gen), rand_act(T, D, gen)
        slots = rand_slots(T, NB, gen, pad_every=0)   # every token moves bytes
        kc = torch.empty((NB, BS, H, D), dtype=torch.uint8, device=dev)
        vc = torch.empty_like(kc)
        ko = torch.empty((T, H, D), dtype=torch.bfloat16, device=dev)
        vo = torch.empty_like(ko)
        sets.append((slots, k, v, kc, vc, ko, vo))
    return sets


def timing(mods, gen, copy_tbps, with_dobench):
    import triton.testing as tt
    res = {name: {} for name in mods}
    res["null"] = time_null(next(iter(mods.values())))
    log(f"  null launch (T=0): {res['null']['us']:.2f} us cold, {res['null']['us_hot']:.2f} hot")
    for D in (128, 64, 256):
        for T in TIME_T[D]:
            NB = nblocks(T)
            set_bytes = 2 * T * H * D * 2 + 2 * NB * BS * H * D + 2 * T * H * D * 2
            n_sets = max(1, min(8, math.ceil(2 * 50e6 / set_bytes)))
            sets = bench_sets(D, T, gen, n_sets)
            nbytes = 2 * T * H * D * 3 + 8 * T
            cus = time_copy_bytes(nbytes, n_sets)
            res.setdefault("copy_same_bytes", {})[f"{D}/{T}"] = dict(
                us=cus, tbps=nbytes / cus / 1e6, pct_copy=100 * nbytes / cus / 1e6 / copy_tbps)
            log(f"  copy of the same bytes, D={D} T={T}: {cus:.2f} us = "
                f"{100 * nbytes / cus / 1e6 / copy_tbps:.1f}% of copy")
            for name, mod in mods.items():
                st = [Launch(mod, f"store_d{D}_kernel", list(s[:5])) for s in sets]
                ld = [Launch(mod, f"load_d{D}_kernel", [s[0], s[3], s[4], s[5], s[6]])
                      for s in sets]
                for op, fns in (("store", st), ("load", ld)):
                    if op == "load":
                        for f in st:     # caches hold real store output
                            f()
                    us, p10, p90 = time_us(fns)
                    us_hot, _, _ = time_us(fns[:1], flush=False)
                    m = dict(us=us, p10=p10, p90=p90, us_hot=us_hot, bytes=nbytes,
                             tbps=nbytes / us / 1e6, grid=fns[0].grid, block=fns[0].tpb,
                             regs=fns[0].regs, blocks_per_sm=fns[0].occ, n_sets=n_sets)
                    m["pct_copy"] = 100 * m["tbps"] / copy_tbps
                    if with_dobench and name == next(iter(mods)):
                        it = iter(range(1 << 30))
                        m["us_dobench"] = 1e3 * tt.do_bench(
                            lambda: fns[next(it) % len(fns)](), warmup=25, rep=100,
                            return_mode="median")
                    res[name][f"{op}/{D}/{T}"] = m
                    log(f"  {name:14} {op:5} D={D:3} T={T:5}: {us:8.2f} us "
                        f"(p10 {p10:.2f}, p90 {p90:.2f}; hot {us_hot:.2f}) "
                        f"{m['tbps']:.3f} TB/s = {m['pct_copy']:.1f}% of copy  "
                        f"grid {fns[0].grid}x{fns[0].tpb}, {fns[0].regs} regs, "
                        f"{fns[0].occ} blocks/SM, {n_sets} sets")
            del sets
            torch.cuda.empty_cache()
    return res


def compact_json(x, indent=""):
    """JSON with one record per line: a dict or list holding only scalars is
    written on one line, anything else one member per line."""
    flat = lambda v: not isinstance(v, (dict, list))
    if flat(x) or all(flat(v) for v in (x.values() if isinstance(x, dict) else x)):
        return json.dumps(x)
    inner = indent + " "
    if isinstance(x, dict):
        body = [f"{inner}{json.dumps(k)}: {compact_json(v, inner)}" for k, v in x.items()]
        return "{\n" + ",\n".join(body) + "\n" + indent + "}"
    body = [inner + compact_json(v, inner) for v in x]
    return "[\n" + ",\n".join(body) + "\n" + indent + "]"


def time_null(mod):
    """A launch with no work (T = 0): the floor of any launch timed this way."""
    slots = torch.empty(0, dtype=torch.int64, device=dev)
    k = torch.empty(0, H, 128, dtype=torch.bfloat16, device=dev)
    kc = torch.empty(2, BS, H, 128, dtype=torch.uint8, device=dev)
    f = Launch(mod, "store_d128_kernel", [slots, k, k, kc, kc])
    us, p10, p90 = time_us([f])
    hot, _, _ = time_us([f], flush=False)
    return dict(us=us, p10=p10, p90=p90, us_hot=hot)


def time_copy_bytes(nbytes, n_sets):
    """D2D copy moving nbytes (nbytes/2 read + nbytes/2 written), cold L2."""
    n = (nbytes // 2 + 15) // 16 * 16
    bufs = [(torch.empty(n, dtype=torch.uint8, device=dev),
             torch.empty(n, dtype=torch.uint8, device=dev)) for _ in range(n_sets)]
    fns = [(lambda a=a, b=b: b.copy_(a)) for a, b in bufs]
    us, _, _ = time_us(fns)
    return us


def time_copy():
    n = 256 * 1024 * 1024
    src = torch.randint(0, 256, (n,), dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    us, p10, p90 = time_us([lambda: dst.copy_(src)], iters=100, flush=False, batch=25)
    return dict(us=us, p10=p10, p90=p90, bytes=2 * n, tbps=2 * n / us / 1e6)


def variants():
    """PTX files in ptx/ (all kvq-opt output): kernels_tpb128 (the pass
    defaults) first, then the other options."""
    paths = sorted(glob.glob(os.path.join(HERE, "ptx", "kernels_*.ptx")))
    return sorted(paths, key=lambda p: (os.path.basename(p) != "kernels_tpb128.ptx", p))


def short(path):
    return os.path.basename(path)[:-4].replace("kernels_", "")


def ncu_mode():
    """A few launches for ncu (D=128): kvq's default PTX (store and load at
    T=32768 and 4096, store at 256), and the T=4096 store with
    quantize-division=divf."""
    gen = torch.Generator(device=dev)
    gen.manual_seed(1)
    torch.ones(1, device=dev)
    plan = {"tpb128": ((32768, "store"), (32768, "load"), (4096, "store"), (4096, "load"),
                       (256, "store")),
            "tpb128_divf": ((4096, "store"),)}
    for p in variants():
        if short(p) not in plan:
            continue
        mod = Module(p)
        for T, op in plan[short(p)]:
            s = bench_sets(128, T, gen, 1)[0]
            if op == "store":
                Launch(mod, "store_d128_kernel", list(s[:5]))()
            else:
                Launch(mod, "load_d128_kernel", [s[0], s[3], s[4], s[5], s[6]])()
            sync("ncu")
            log(f"ncu launch: {short(p)} {op} T={T}")


def main():
    t0 = time.time()
    global FLUSH
    torch.cuda.init()
    torch.ones(1, device=dev)
    ctx = c_void_p()
    ck(cu.cuCtxGetCurrent(ctypes.byref(ctx)), "cuCtxGetCurrent")
    assert ctx.value, "no current CUDA context"
    drv = c_int()
    cu.cuDriverGetVersion(ctypes.byref(drv))
    props = torch.cuda.get_device_properties(0)
    info = dict(device=props.name, sms=props.multi_processor_count,
                l2_mb=props.L2_cache_size / 1e6, cuda_driver_api=drv.value,
                torch=torch.__version__)
    try:
        import subprocess
        info["driver"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True).stdout.strip()
    except Exception:
        pass
    log("device:", info)
    gen = torch.Generator(device=dev)
    gen.manual_seed(20261125)
    refs = Refs()
    mods = {}
    for p in variants():
        name = short(p)
        mods[name] = Module(p)
        log(f"loaded {p}: block {mods[name].tpb}")

    # ---- smoke test: one small store + load with the default PTX ---------
    main_name = next(iter(mods))
    tally = Tally()
    k, v = rand_act(16, 128, gen), rand_act(16, 128, gen)
    slots = rand_slots(16, nblocks(16), gen)
    kc, vc = check_store(mods[main_name], refs, tally, 128, 16, k, v, slots, tag=" smoke")
    check_load(mods[main_name], refs, tally, 128, 16, kc, vc, slots, tag=" smoke")
    log(f"smoke: {tally.bytes_ref} bytes, {tally.mism_ref} mismatches vs CPU ref, "
        f"{tally.mism_torch} vs torch")

    # ---- correctness, every PTX ------------------------------------------
    correct = {}
    for name, mod in mods.items():
        t = correctness(mod, refs, gen)
        correct[name] = dict(bytes_ref=t.bytes_ref, mism_ref=t.mism_ref,
                             bytes_torch=t.bytes_torch, mism_torch=t.mism_torch,
                             nan_excluded_from_torch=t.nan_excluded, cases=t.cases)
        log(f"correctness {name}: {len(t.cases)} comparisons, {t.bytes_ref} bytes vs CPU "
            f"reference: {t.mism_ref} mismatches; {t.bytes_torch} bytes vs PyTorch: "
            f"{t.mism_torch} mismatches ({t.nan_excluded} NaN bytes left out of the "
            f"PyTorch comparison) [{time.time() - t0:.0f} s]")
        torch.cuda.empty_cache()

    # ---- timing ------------------------------------------------------------
    FLUSH = torch.ones(64 * 1024 * 1024, dtype=torch.float32, device=dev)
    copy = time_copy()
    log(f"copy 256 MiB D2D: {copy['us']:.1f} us, {copy['tbps']:.3f} TB/s")
    res = timing(mods, gen, copy["tbps"], with_dobench=True)
    graph = graph_timing(mods, gen)
    copy2 = time_copy()
    log(f"copy 256 MiB D2D again: {copy2['us']:.1f} us, {copy2['tbps']:.3f} TB/s")
    extra = {k: res.pop(k) for k in ("null", "copy_same_bytes")}
    out = dict(info, copy=copy, copy_again=copy2, correct=correct, variants=res, **extra,
               graph=graph, seconds=time.time() - t0)
    with open(os.path.join(OUT, "kvq_results.json"), "w") as f:
        f.write(compact_json(out) + "\n")
    bad = [n for n, c in correct.items() if c["mism_ref"] or c["mism_torch"]]
    log(f"done in {time.time() - t0:.0f} s; kvq PTX with mismatches: {bad or 'none'}")
    return 1 if bad else 0


if __name__ == "__main__":
    if "--ncu" in sys.argv:
        ncu_mode()
        sys.exit(0)
    sys.exit(main())
