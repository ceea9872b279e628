#!/usr/bin/env python3
"""Fused RoPE + fp8 quantize + paged store (kvq.fused_cache_store, made by
kvq-fuse-cache-producers from a linalg RoPE and kvq.cache_store) on an
NVIDIA GPU: bit-exactness first, then timing against a RoPE kernel
followed by kvq's store, and against kvq's store alone.

PTX: bench/gpu/gen-fused.sh (build machine) writes ptx/fused.ptx: per head
size D in 64, 128, 256 the store kernel (kvq_cache_store_bf16_f8E4M3FN_8xD_b16
_kernel, the 14-parameter ABI of docs/KernelABI.md) and the fused kernel
(..._fused_kernel), whose parameters are: the pointers of slot_mapping, the
K cache and the V cache; k_scale, RN(1/k_scale), v_scale, RN(1/v_scale);
the pointers of what its regions read, in order of first use (K, the
positions, the cos table, the sin table, V); then the dynamic sizes: T
(slots), NB, NB (caches), T (K), T (positions), T (V). The script checks
the count against the PTX.

RoPE: rotate-half (GPT-NeoX), y_d = x_d c + r_d s, r_d = -x_{d+D/2} (d <
D/2) or x_{d-D/2}, c, s = cos, sin[pos][d mod D/2] (f32 tables of 4096
positions), f32 math, one rounding per product and one for the sum, then
bf16. The unfused baseline's RoPE kernel is PyTorch's: the same formula
compiled by torch.compile (one Triton kernel; eager PyTorch if that
fails), writing the rotated K in bf16, which kvq's store then reads.

Correctness: the fused kernel's cache bytes against a numpy reference
(the RoPE above in float32, RNE to bf16, then kvq_ref's store table) on
(a) every bf16 pattern as K (and reversed as V), random positions, and
(b) random N(0,1) K and V at T = 4096, every D; padding slots (-1) and
poisoned caches (0xA5) as in kvq_bench.py. Also reported, not required:
bytes where the unfused pipeline (PyTorch RoPE + kvq store) differs
(PyTorch's kernel may contract to FMA).

Timing (kvq_bench.py's method): single launch (events around each call,
L2 flushed before each, median of 100) and per call in a CUDA graph of 64
calls over distinct buffer sets. Bytes: the store moves T*H*D*(2+2+1+1)
(K, V read; two fp8 caches written) + 8T (slots); the fused kernel also
reads 8T (positions) and 4*D*T (its cos and sin rows: D/2 f32 each).
Results: $OUT/fused_results.json and the table printed last.
"""
import ctypes
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

import kvq_bench as kb  # noqa: E402  (loads libcuda and PyTorch)
import kvq_ref          # noqa: E402

torch, np = kb.torch, kb.np
dev, ck, cu, log = kb.dev, kb.ck, kb.cu, kb.log
c_void_p = ctypes.c_void_p
H, BS, SK, SV = 8, 16, 0.05, 0.07
POS = 4096
TS = [1, 256, 4096, 32768]
DS = [64, 128, 256]
GRAPH_CALLS = 64


def f32(x):
    return float(np.float32(x))


class Kernel:
    """A kernel of ptx/fused.ptx launched with packed parameters."""

    def __init__(self, module, name, nparams):
        self.fn, self.regs, self.occ = module.fn(name)
        self.tpb = module.tpb
        text = open(module.path).read()
        m = re.search(r"\.entry " + name + r"\((.*?)\)", text, re.S)
        have = len(re.findall(r"\.param", m.group(1)))
        assert have == nparams, f"{name}: {have} parameters in the PTX, expected {nparams}"

    def launch(self, params, grid):
        """params: list of ('p', tensor) | ('f', float) | ('i', int)."""
        store = []
        for kind, v in params:
            if kind == "p":
                assert v.is_contiguous() and v.data_ptr() % 16 == 0
                store.append(ctypes.c_uint64(v.data_ptr()))
            elif kind == "f":
                store.append(ctypes.c_float(v))
            else:
                store.append(ctypes.c_int64(v))
        ptrs = (c_void_p * len(store))(*[ctypes.addressof(s) for s in store])
        keep = [p[1] for p in params]
        fn, tpb = self.fn, self.tpb

        def call():
            _ = keep
            stream = c_void_p(torch.cuda.current_stream().cuda_stream)
            ck(cu.cuLaunchKernel(fn, grid, 1, 1, tpb, 1, 1, 0, stream, ptrs, None),
               "cuLaunchKernel")
        call.store = store
        return call


def scales():
    return [("f", SK), ("f", f32(np.float32(1) / np.float32(SK))),
            ("f", SV), ("f", f32(np.float32(1) / np.float32(SV)))]


def grid_for(T, D, tpb):
    return max(1, -(-(T * H * D // 8) // tpb))


def store_call(kern, k, v, kc, vc, s):
    T, D = k.shape[0], k.shape[2]
    p = [("p", s), ("p", k), ("p", v), ("p", kc), ("p", vc)] + scales()
    p += [("i", T), ("i", T), ("i", T), ("i", kc.shape[0]), ("i", vc.shape[0])]
    return kern.launch(p, grid_for(T, D, kern.tpb))


def fused_call(kern, k, v, pos, cos, sin, kc, vc, s):
    T, D = k.shape[0], k.shape[2]
    p = [("p", s), ("p", kc), ("p", vc)] + scales()
    p += [("p", k), ("p", pos), ("p", cos), ("p", sin), ("p", v)]
    p += [("i", T), ("i", kc.shape[0]), ("i", vc.shape[0]), ("i", T), ("i", T), ("i", T)]
    return kern.launch(p, grid_for(T, D, kern.tpb))


def rope_eager(k, pos, cos, sin):
    x = k.float()
    half = x.shape[2] // 2
    c = cos[pos].repeat(1, 2)[:, None, :]
    s = sin[pos].repeat(1, 2)[:, None, :]
    r = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return (x * c + r * s).to(torch.bfloat16)


def rope_reference(kbits, pos, cos, sin):
    """numpy float32, one rounding per operation; returns bf16 bits."""
    x = kvq_ref.bf16_bits_to_f32(kbits)
    T, Hh, D = x.shape
    half = D // 2
    d = np.arange(D)
    c = cos[pos][:, d % half][:, None, :]
    s = sin[pos][:, d % half][:, None, :]
    xp = x[:, :, (d + half) % D]
    r = np.where(d < half, -xp, xp).astype(np.float32)
    with np.errstate(all="ignore"):
        y = (x * c).astype(np.float32) + (r * s).astype(np.float32)
    y = y.astype(np.float32)
    bits = kvq_ref.f32_to_bf16_bits(y)
    return np.where(np.isnan(y), np.uint16(0x7FC0), bits)


def expected_caches(kbits_rot, vbits, slots, NB, D):
    kc = np.full((NB * BS, H * D), 0xA5, np.uint8)
    vc = np.full_like(kc, 0xA5)
    valid = slots >= 0
    kc[slots[valid]] = kvq_ref.store_table(SK)[kbits_rot].reshape(len(slots), H * D)[valid]
    vc[slots[valid]] = kvq_ref.store_table(SV)[vbits].reshape(len(slots), H * D)[valid]
    return kc.reshape(NB, BS, H, D), vc.reshape(NB, BS, H, D)


def tables(D):
    half = D // 2
    p = np.arange(POS, dtype=np.float64)[:, None]
    inv = 10000.0 ** (-2.0 * np.arange(half) / D)
    ang = p * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def main():
    torch.cuda.init()
    torch.ones(1, device=dev)
    kb.FLUSH = torch.empty(64 << 20, dtype=torch.float32, device=dev)
    props = torch.cuda.get_device_properties(0)
    info = dict(device=props.name, sms=props.multi_processor_count, torch=torch.__version__)
    log("device:", info)
    mod = kb.Module(os.path.join(HERE, "ptx", "fused.ptx"))
    names = re.findall(r"\.visible \.entry (\w+)\(", open(mod.path).read())
    log("kernels:", names)
    gen = torch.Generator(device=dev)
    gen.manual_seed(16)
    rng = np.random.default_rng(16)
    try:
        rope_compiled = torch.compile(rope_eager, dynamic=True)
        rope_kind = "torch.compile"
    except Exception as e:  # noqa: BLE001
        log("torch.compile unavailable:", e)
        rope_compiled, rope_kind = rope_eager, "eager"
    results = dict(info=info, rope=rope_kind, correct=[], time=[])
    failed = 0
    for D in DS:
        store_k = Kernel(mod, f"kvq_cache_store_bf16_f8E4M3FN_8x{D}_b16_kernel", 14)
        fused_k = Kernel(mod, f"kvq_cache_store_bf16_f8E4M3FN_8x{D}_b16_fused_kernel", 18)
        cos_np, sin_np = tables(D)
        cos, sin = torch.from_numpy(cos_np).to(dev), torch.from_numpy(sin_np).to(dev)
        # ---- correctness: every bf16 pattern, then random data --------------
        for case in ("all-bf16", "random"):
            if case == "all-bf16":
                k, v = kb.all_bf16(D), kb.all_bf16(D, flip=True)
            else:
                k = torch.randn(4096, H, D, device=dev, generator=gen).to(torch.bfloat16)
                v = torch.randn(4096, H, D, device=dev, generator=gen).to(torch.bfloat16)
            T = k.shape[0]
            NB = 2 * max(1, -(-T // BS))
            pos_np = rng.integers(0, POS, T).astype(np.int64)
            pos = torch.from_numpy(pos_np).to(dev)
            slots = kb.rand_slots(T, NB, gen)
            kc = torch.full((NB, BS, H, D), 0xA5, dtype=torch.uint8, device=dev)
            vc = torch.full_like(kc, 0xA5)
            fused_call(fused_k, k, v, pos, cos, sin, kc, vc, slots)()
            kb.sync("fused")
            kbits = kb.bits16(k).cpu().numpy().astype(np.uint16)
            vbits = kb.bits16(v).cpu().numpy().astype(np.uint16)
            ek, ev = expected_caches(rope_reference(kbits, pos_np, cos_np, sin_np),
                                     vbits, slots.cpu().numpy(), NB, D)
            mk = int((kc.cpu().numpy() != ek).sum())
            mv = int((vc.cpu().numpy() != ev).sum())
            # The unfused pipeline on the GPU (information only).
            kc2 = torch.full_like(kc, 0xA5)
            vc2 = torch.full_like(kc, 0xA5)
            kr = rope_compiled(k, pos, cos, sin)
            store_call(store_k, kr, v, kc2, vc2, slots)()
            kb.sync("unfused")
            mu = int((kc2 != kc).sum()) + int((vc2 != vc).sum())
            rec = dict(D=D, case=case, T=T, bytes=2 * kc.numel(), mism_ref_k=mk,
                       mism_ref_v=mv, diff_unfused_torch_rope=mu)
            log("correct", rec)
            results["correct"].append(rec)
            failed += mk + mv
        # ---- timing --------------------------------------------------------
        for T in TS:
            NB = 2 * max(1, -(-T // BS))
            set_bytes = T * H * D * 6 + 2 * NB * BS * H * D
            nsets = max(1, min(GRAPH_CALLS, math.ceil(200e6 / set_bytes)))
            sets = []
            for _ in range(nsets):
                k = torch.randn(T, H, D, device=dev, generator=gen).to(torch.bfloat16)
                v = torch.randn(T, H, D, device=dev, generator=gen).to(torch.bfloat16)
                pos = torch.randint(0, POS, (T,), device=dev, generator=gen)
                slots = kb.rand_slots(T, NB, gen)
                kc = torch.empty((NB, BS, H, D), dtype=torch.uint8, device=dev)
                vc = torch.empty_like(kc)
                sets.append((k, v, pos, slots, kc, vc))
            fused = [fused_call(fused_k, k, v, pos, cos, sin, kc, vc, s)
                     for k, v, pos, s, kc, vc in sets]
            alone = [store_call(store_k, k, v, kc, vc, s) for k, v, pos, s, kc, vc in sets]

            def unfused_fn(k, v, pos, s, kc, vc):
                # The RoPE kernel writes the rotated K (bf16); kvq's store
                # reads it (packed per call: the output is a new tensor).
                def f():
                    out = rope_compiled(k, pos, cos, sin)
                    store_call(store_k, out, v, kc, vc, s)()
                return f
            unfused = [unfused_fn(*st) for st in sets]
            rec = dict(D=D, T=T)
            for name, fns in (("fused", fused), ("unfused", unfused), ("store", alone)):
                rec[name + "_us"] = kb.time_us(fns, iters=100)[0]
                try:
                    rec[name + "_graph_us"] = kb.time_graph_us(fns, calls=GRAPH_CALLS, reps=20)
                except Exception as e:  # noqa: BLE001
                    log("graph", name, D, T, "failed:", e)
                    rec[name + "_graph_us"] = float("nan")
            store_bytes = T * H * D * 6 + 8 * T
            fused_bytes = store_bytes + 8 * T + 4 * D * T
            for m in ("", "_graph"):
                rec["speedup" + m] = rec["unfused" + m + "_us"] / rec["fused" + m + "_us"]
                rec["fused_bw_vs_store" + m] = (fused_bytes / rec["fused" + m + "_us"]) / (
                    store_bytes / rec["store" + m + "_us"])
            log("time", rec)
            results["time"].append(rec)
            del sets, fused, alone, unfused
            torch.cuda.empty_cache()
    json.dump(results, open(os.path.join(OUT, "fused_results.json"), "w"), indent=1)
    log("\n== fused RoPE + fp8 store (%s, RoPE baseline: %s)" % (info["device"], rope_kind))
    log("correctness: " + ", ".join(
        f"D={c['D']} {c['case']}: {c['mism_ref_k'] + c['mism_ref_v']}/{c['bytes']} mismatches"
        f" (unfused torch-RoPE path differs in {c['diff_unfused_torch_rope']})"
        for c in results["correct"]))
    log(f"{'D':>4} {'T':>6} | {'fused':>8} {'unfused':>8} {'store':>8} {'x':>5} {'bw':>5}"
        f" | graph: {'fused':>8} {'unfused':>8} {'store':>8} {'x':>5} {'bw':>5}")
    for r in results["time"]:
        log(f"{r['D']:>4} {r['T']:>6} | {r['fused_us']:8.2f} {r['unfused_us']:8.2f} "
            f"{r['store_us']:8.2f} {r['speedup']:5.2f} {r['fused_bw_vs_store']:5.2f} | "
            f"       {r['fused_graph_us']:8.2f} {r['unfused_graph_us']:8.2f} "
            f"{r['store_graph_us']:8.2f} {r['speedup_graph']:5.2f} "
            f"{r['fused_bw_vs_store_graph']:5.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
