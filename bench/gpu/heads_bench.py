#!/usr/bin/env python3
"""Per-head K/V scales against per-tensor ones, in one run on an NVIDIA GPU.

The PTX comes from bench/gpu/gen.sh (ptx/heads.ptx, ptx/heads_const.ptx;
model: ptx/heads.mlir): a layer with one K and one V scale (0.05, 0.07, as
kvq_bench.py) and a layer with one K and one V scale per KV head (8 heads,
the per-tensor values among them), bf16 activations [T, 8, 128], an fp8
e4m3 cache of 16-token blocks, both with kvq-opt's defaults:

  heads.ptx        kvq-to-ptx: the per-tensor kernels
                   (kvq_cache_{store,load}_..._8x128_b16_kernel) and the
                   per-head ones (..._b16_per_head_kernel), which take each
                   head's pair s, RN(1/s) as parameters (docs/KernelABI.md)
                   and pick the pair of a work item's head with selects;
  heads_const.ptx  the per-head kernels with the layer's scales built in
                   as constants (no scale parameter: the 5 pointers and
                   the 5 sizes), the alternative the ABI was measured
                   against.

Correctness first (every byte of both caches and both outputs against
kvq_ref.py's per-scale tables, each head with its own scale, padding slots
included), then timing as kvq_bench.py does (cold L2, median of 200 single
launches between CUDA events): store and load at T = 32768 and 4096, the
per-tensor and per-head kernels alternating in the same process, next to a
device-to-device copy moving the same bytes.

    python3 heads_bench.py      (exit 1 on a mismatch); $OUT/heads_results.json
"""
import json
import os
import sys

import kvq_bench as kb   # noqa: E402  (Module, Launch, timing helpers)
import kvq_ref           # noqa: E402
import numpy as np       # noqa: E402
import torch             # noqa: E402

H, D, BS = kb.H, 128, kb.BS
HEAD_K = [0.05, 0.042, 0.055, 0.058, 0.04, 0.052, 0.048, 0.035]
HEAD_V = [0.07, 0.065, 0.072, 0.08, 0.068, 0.0625, 0.07, 0.065]
dev = kb.dev


def kernel(mod, op, heads):
    """The entry of `op` (store / load), per-head or per-tensor, in mod."""
    names = [n for n in kb_entries(mod) if n.startswith(f"kvq_cache_{op}_") and
             ("_per_head" in n) == heads]
    assert len(names) == 1, (mod.path, op, heads, names)
    return names[0]


def kb_entries(mod):
    import re
    text = open(mod.path, "rb").read().decode()
    return re.findall(r"\.visible \.entry (\w+)\(", text)


def scales_of(variant):
    if variant == "tensor":
        return kb.scale_pairs([kb.SK]) + kb.scale_pairs([kb.SV])
    if variant == "heads":
        return kb.scale_pairs(HEAD_K) + kb.scale_pairs(HEAD_V)
    return []      # heads_const: the scales are in the kernel


def head_scales(variant):
    if variant == "tensor":
        return [kb.SK] * H, [kb.SV] * H
    return HEAD_K, HEAD_V


def launch(mods, variant, op, tensors):
    mod = mods["const" if variant == "heads_const" else "abi"]
    return kb.Launch(mod, kernel(mod, op, variant != "tensor"), tensors,
                     scales=scales_of(variant))


class Tables:
    def __init__(self):
        self.store, self.load = {}, {}

    def get(self, kind, s):
        cache = self.store if kind == "store" else self.load
        if s not in cache:
            t = kvq_ref.store_table(s) if kind == "store" else \
                kvq_ref.load_table(s).view(np.int16)
            cache[s] = torch.from_numpy(t).to(dev)
        return cache[s]


def check(mods, variant, T, gen, tables):
    """Store then load at T tokens; returns the count of mismatched bytes."""
    NB = kb.nblocks(T)
    k, v = kb.rand_act(T, D, gen), kb.rand_act(T, D, gen)
    slots = kb.rand_slots(T, NB, gen)
    kc = torch.full((NB, BS, H, D), 0xA5, dtype=torch.uint8, device=dev)
    vc = torch.full_like(kc, 0xA5)
    launch(mods, variant, "store", [slots, k, v, kc, vc])()
    ko = torch.full((T, H, D), 0xEEEE - 65536, dtype=torch.int16, device=dev)
    vo = torch.full_like(ko, 0xEEEE - 65536)
    launch(mods, variant, "load", [slots, kc, vc, ko.view(torch.bfloat16),
                                   vo.view(torch.bfloat16)])()
    kb.sync(f"{variant} T={T}")
    valid = slots >= 0
    sv = slots[valid]
    bad = 0
    for x, c, o, scales in ((k, kc, ko, head_scales(variant)[0]),
                            (v, vc, vo, head_scales(variant)[1])):
        ref_c = torch.full_like(c, 0xA5)
        ref_o = torch.full_like(o, 0xEEEE - 65536)
        bits = kb.bits16(x)
        for h, s in enumerate(scales):
            q = tables.get("store", s)[bits[:, h, :]]          # [T, D]
            ref_c.view(NB * BS, H, D)[sv, h] = q[valid]
            rows = c.view(NB * BS, H, D)[sv, h].to(torch.int64)  # [Tv, D]
            ref_o[valid, h] = tables.get("load", s)[rows]
        bad += int((c != ref_c).sum()) + int((o != ref_o).sum())
    return bad


def main():
    torch.cuda.init()
    torch.ones(1, device=dev)
    props = torch.cuda.get_device_properties(0)
    kb.log(f"device: {props.name}, {props.multi_processor_count} SMs")
    here = os.path.dirname(os.path.abspath(__file__))
    mods = {"abi": kb.Module(os.path.join(here, "ptx", "heads.ptx")),
            "const": kb.Module(os.path.join(here, "ptx", "heads_const.ptx"))}
    variants = ("tensor", "heads", "heads_const")
    for v in variants:
        for op in ("store", "load"):
            m = mods["const" if v == "heads_const" else "abi"]
            f, regs, occ = m.fn(kernel(m, op, v != "tensor"))
            kb.log(f"{v:11} {op:5}: {kernel(m, op, v != 'tensor')}, {regs} regs, "
                   f"{occ} blocks/SM")
    gen = torch.Generator(device=dev)
    gen.manual_seed(20261205)
    tables = Tables()
    res = dict(device=props.name, sms=props.multi_processor_count, correct={},
               timing={})
    bad_total = 0
    for v in variants:
        for T in (1, 16, 256, 4096, 32768):
            bad = check(mods, v, T, gen, tables)
            res["correct"][f"{v}/{T}"] = bad
            bad_total += bad
        kb.log(f"correctness {v}: {bad_total} mismatched bytes so far")
    kb.FLUSH = torch.ones(64 * 1024 * 1024, dtype=torch.float32, device=dev)
    copy = kb.time_copy()
    res["copy"] = copy
    kb.log(f"copy 256 MiB D2D: {copy['tbps']:.3f} TB/s")
    for T in (32768, 4096):
        NB = kb.nblocks(T)
        set_bytes = 2 * T * H * D * 2 + 2 * NB * BS * H * D + 2 * T * H * D * 2
        n_sets = max(1, min(8, -(-int(2 * 50e6) // set_bytes)))
        sets = kb.bench_sets(D, T, gen, n_sets)
        nbytes = 2 * T * H * D * 3 + 8 * T
        cus = kb.time_copy_bytes(nbytes, n_sets)
        res["timing"][f"copy/{T}"] = cus
        # Two rounds, the variants interleaved, so that a drift of the
        # card's clocks shows rather than favours one variant.
        for rnd in range(2):
            for v in variants:
                st = [launch(mods, v, "store", list(s[:5])) for s in sets]
                ld = [launch(mods, v, "load", [s[0], s[3], s[4], s[5], s[6]])
                      for s in sets]
                for op, fns in (("store", st), ("load", ld)):
                    us, p10, p90 = kb.time_us(fns)
                    key = f"{v}/{op}/{T}/{rnd}"
                    res["timing"][key] = dict(us=us, p10=p10, p90=p90,
                                              tbps=nbytes / us / 1e6)
                    kb.log(f"  T={T:5} round {rnd} {v:11} {op:5}: {us:8.2f} us "
                           f"(p10 {p10:.2f}, p90 {p90:.2f}) {nbytes / us / 1e6:.3f} TB/s"
                           f" = {100 * nbytes / us / 1e6 / copy['tbps']:.1f}% of copy; "
                           f"copy same bytes {cus:.2f} us")
        del sets
        torch.cuda.empty_cache()
    kb.log("")
    kb.log("summary (median us of the two rounds' medians; ratio = per-head / per-tensor):")
    for T in (32768, 4096):
        for op in ("store", "load"):
            def avg(v):
                return sum(res["timing"][f"{v}/{op}/{T}/{r}"]["us"] for r in (0, 1)) / 2
            t = avg("tensor")
            kb.log(f"  T={T:5} {op:5}: per-tensor {t:8.2f} us, per-head (ABI) "
                   f"{avg('heads'):8.2f} us ({avg('heads') / t:.3f}), per-head "
                   f"(constants) {avg('heads_const'):8.2f} us "
                   f"({avg('heads_const') / t:.3f})")
    kb.log(f"correctness: {bad_total} mismatched bytes")
    with open(os.path.join(kb.OUT, "heads_results.json"), "w") as f:
        f.write(kb.compact_json(res) + "\n")
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
