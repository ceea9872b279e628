#!/usr/bin/env python3
# ===- gen-gpu-checks.py - kernels, launch plan and checks for a real GPU --===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===-----------------------------------------------------------------------===#
#
# Writes, into <outdir>:
#   kernels.mlir  kvq cache ops, one function per case (cases of the same
#                 signature share a kernel and pass their own scales)
#   plan.txt      commands for kvq-launch (buffers, launches, dumps)
#   manifest.txt  what KVQCacheLoweringTests.GPUDumpsMatchReference checks
#                 against the llvm::APFloat reference once the dumps are back
#
# The cases mirror the CPU gtest: every bf16 / f16 bit pattern stored into
# each cache format with six scales (vector path, D = 16, and scalar path,
# D = 4), every cache byte loaded into bf16 / f16 / f32 (vector and scalar
# paths), a realistic store -> load round trip with padding slots, a launch
# with too few blocks (grid-stride loop), and timed runs at T = 32768. And
# per-head scales (one K and V scale per KV head): every bf16 / f16 bit
# pattern in each of 4 heads stored with its head's scale, every cache byte
# in each head loaded, a realistic round trip with 8 heads, and timed runs
# next to the per-tensor ones. A per-head launch passes `scales:` (the
# pair s, RN(1/s) of each head) where a per-tensor one passes `scale:`;
# the manifest gives the heads' scales as a comma-separated list.
#
# Usage: gen-gpu-checks.py <outdir> <ptx file as seen by kvq-launch> <dumpdir>
# writes plan.in, whose launches name the function of their case (`@fn`);
# then, once kvq-lower-cache-ops has lowered kernels.mlir and bench.mlir
# with the options of the PTX,
#        gen-gpu-checks.py --resolve <outdir> <lowered kernels> <lowered bench>
# writes plan.txt with each `@fn` replaced by the kernel its cache op calls
# (`<callee>_kernel`: the name depends on the quotient proven for the
# case's scales, see kvq-lower-cache-ops).

import re
import sys

if sys.argv[1] == "--resolve":
    out_dir = sys.argv[2]
    callee = {}
    for path in sys.argv[3:5]:
        fn = None
        for line in open(path):
            m = re.search(r"func\.func (?:private )?@(\w+)\(", line)
            if m:
                fn = m.group(1)
            m = re.search(r"\bcall @(\w+)\(", line)
            if m and fn and fn not in callee:
                callee[fn] = m.group(1) + "_kernel"
    plan = open(f"{out_dir}/plan.in").read()
    plan = re.sub(r"(?<=^launch )@(\w+)|(?<=^time )@(\w+)",
                  lambda m: callee[m.group(1) or m.group(2)], plan,
                  flags=re.M)
    open(f"{out_dir}/plan.txt", "w").write(plan)
    sys.exit(0)

out_dir, ptx_path, dump_dir = sys.argv[1:4]

SCALES = ["1.0", "0.05", "0.001", "1000.0", "0.0123291015625", "3.0"]
FORMATS = [  # (mlir type, kv cache dtype, manifest name)
    ("f8E4M3FN", "fp8", "f8E4M3FN"),
    ("f8E4M3FNUZ", "fp8", "f8E4M3FNUZ"),
    ("f8E5M2", "fp8_e5m2", "f8E5M2"),
    ("f8E5M2FNUZ", "fp8_e5m2", "f8E5M2FNUZ"),
    ("i8", "int8", "i8"),
]
BYTES = {"bf16": 2, "f16": 2, "f32": 4, "i8": 1, "i64": 8}
for f, _, _ in FORMATS:
    BYTES.setdefault(f, 1)

# Threads per block: kvq-lower-cache-ops' default, which the kernels of
# kernels.mlir are compiled with (their block size is fixed).
TPB = 128

mlir, plan, manifest = [], [f"module {ptx_path}"], []
layers = {}
# Inputs written here as files (`file:` buffers), named relative to the
# folder run-gpu-checks.sh runs the plan in.
cfg_dir = ptx_path.rsplit("/", 1)[0]


def layer(dtype, k, v):
    """A layer with scales k and v: numbers, or lists (one per KV head)."""
    name = f"L_{dtype}_{len(layers)}"
    key = (dtype, str(k), str(v))
    if key not in layers:
        layers[key] = name

        def field(x):
            return "[" + ", ".join(x) + "]" if isinstance(x, list) else x
        mlir.append(
            f"kvq.layer @{name} cache({dtype}) resolved(#kvq.resolved_scales<"
            f"k = {field(k)} checkpoint, v = {field(v)} checkpoint, "
            f"q = 1.0 default, prob = 1.0 default>)")
    return layers[key]


def scale_operand(s):
    """The launch operand of a stream's scale: scale:<s> or, per head,
    scales:<s0>,<s1>,..."""
    return f"scales:{','.join(s)}" if isinstance(s, list) else f"scale:{s}"


def scale_text(s):
    """The manifest's scale: one value, or the heads' values."""
    return ",".join(s) if isinstance(s, list) else s


def shape(dims):
    return "x".join(str(d) for d in dims)


def memref(dims, elem):
    return f"memref<{shape(dims)}x{elem}>"


buffers = set()


def buffer(name, elem, dims, init):
    if name in buffers:
        return name
    buffers.add(name)
    plan.append(f"buffer {name} {BYTES[elem]} {shape(dims)} {init}")
    return name


def dump(name):
    path = f"{dump_dir}/{name}.bin"
    plan.append(f"dump {name} {path}")
    return f"{name}.bin"


def ceil_div(a, b):
    return (a + b - 1) // b


def work_items(T, H, D, src_elem, dst_elem):
    """Work items of a kernel: one per 16-byte access of the wider element
    type when D allows it (the vector path of kvq-lower-cache-ops), else
    one per element."""
    per = max(2, 16 // max(BYTES[src_elem], BYTES[dst_elem]))
    return T * H * D // per if D % per == 0 else T * H * D


def store_case(fn, lay, act, cache, T, H, D, BS, NB, x_k, x_v, slots, ks, vs,
               fmt_name, grid=None, pad_poison="A5"):
    act_t, cache_t = memref([T, H, D], act), memref([NB, BS, H, D], cache)
    mlir.append(
        f"func.func @{fn}(%k: {act_t}, %v: {act_t}, %kc: {cache_t}, "
        f"%vc: {cache_t}, %s: memref<{T}xi64>) {{\n"
        f"  kvq.cache_store @{lay} (%k, %v) into (%kc, %vc) at %s : "
        f"{act_t}, {cache_t}, memref<{T}xi64>\n  return\n}}")
    kc = buffer(f"{fn}_kc", cache, [NB, BS, H, D], f"fill:{pad_poison}")
    vc = buffer(f"{fn}_vc", cache, [NB, BS, H, D], f"fill:{pad_poison}")
    grid = grid or max(1, ceil_div(work_items(T, H, D, act, cache), TPB))
    plan.append(
        f"launch @{fn} {grid} {TPB} "
        f"{slots} {x_k} {x_v} {kc} {vc} {scale_operand(ks)} "
        f"{scale_operand(vs)}")
    for x, c, s in ((x_k, kc, ks), (x_v, vc, vs)):
        manifest.append(
            f"store_rows {act} {fmt_name} {scale_text(s)} {x}.bin {slots}.bin "
            f"{dump(c)} {T} {H * D} {NB * BS} {pad_poison}")
    return kc, vc


def load_case(fn, lay, cache, out, T, H, D, BS, NB, kc, vc, slots, ks, vs,
              fmt_name, poison="EE"):
    out_t, cache_t = memref([T, H, D], out), memref([NB, BS, H, D], cache)
    mlir.append(
        f"func.func @{fn}(%kc: {cache_t}, %vc: {cache_t}, "
        f"%s: memref<{T}xi64>, %k: {out_t}, %v: {out_t}) {{\n"
        f"  kvq.cache_load @{lay} (%kc, %vc) at %s into (%k, %v) : "
        f"{cache_t}, memref<{T}xi64>, {out_t}\n  return\n}}")
    ko = buffer(f"{fn}_ko", out, [T, H, D], f"fill:{poison}")
    vo = buffer(f"{fn}_vo", out, [T, H, D], f"fill:{poison}")
    grid = max(1, ceil_div(work_items(T, H, D, cache, out), TPB))
    plan.append(
        f"launch @{fn} {grid} {TPB} "
        f"{slots} {kc} {vc} {ko} {vo} {scale_operand(ks)} "
        f"{scale_operand(vs)}")
    for c, o, s in ((kc, ko, ks), (vc, vo, vs)):
        manifest.append(
            f"load_rows {fmt_name} {out} {scale_text(s)} {c}.bin {slots}.bin "
            f"{dump(o)} {T} {H * D} {poison}")


# Exhaustive store: 65536 activations as [T, 1, D]; slot t for token t.
for D in (16, 4):
    T = 65536 // D
    slots = buffer(f"iota_slots_{T}", "i64", [T], "iota")
    buffers.add(slots)
    dump(slots)
    for act in ("bf16", "f16") if D == 16 else ("bf16",):
        x = buffer(f"x_{act}_{D}", act, [T, 1, D], "iota")
        dump(x)
        for cache, dtype, fmt in FORMATS:
            for l in range(3):
                ks, vs = SCALES[2 * l], SCALES[2 * l + 1]
                lay = layer(dtype, ks, vs)
                store_case(f"st_{act}_{cache}_{D}_{l}", lay, act, cache, T, 1,
                           D, 16, T // 16, x, x, slots, ks, vs, fmt)

# Grid-stride: far fewer blocks than work items.
lay = layer("fp8", SCALES[0], SCALES[1])
store_case("st_gridstride", lay, "bf16", "f8E4M3FN", 4096, 1, 16, 16, 256,
           "x_bf16_16", "x_bf16_16", "iota_slots_4096", SCALES[0], SCALES[1],
           "f8E4M3FN", grid=3)

# Exhaustive load: the 256 cache bytes read by 256 / D tokens of D elements.
for D in (16, 1):
    T = 256 // D
    slots = buffer(f"iota_slots_{T}", "i64", [T], "iota")
    dump(slots)
    for cache, dtype, fmt in FORMATS:
        c = buffer(f"c_{cache}_{D}", cache, [T // 16 if D == 1 else 1,
                                             16 if D == 1 else T, 1, D], "iota")
        dump(c)
        for out in ("bf16", "f16", "f32"):
            for l in range(3):
                ks, vs = SCALES[2 * l], SCALES[2 * l + 1]
                lay = layer(dtype, ks, vs)
                NB, BS = (T // 16, 16) if D == 1 else (1, T)
                load_case(f"ld_{cache}_{out}_{D}_{l}", lay, cache, out, T, 1,
                          D, BS, NB, c, c, slots, ks, vs, fmt)

# Realistic round trip: 300 tokens, 8 heads, head size 128, block size 16,
# 32 blocks, random distinct slots, every 23rd token padding.
T, H, D, BS, NB = 300, 8, 128, 16, 32
slots = buffer("rt_slots", "i64", [T], "slots:512:1234:23")
dump(slots)
for cache, dtype, fmt, act in [("f8E4M3FN", "fp8", "f8E4M3FN", "bf16"),
                               ("f8E4M3FNUZ", "fp8", "f8E4M3FNUZ", "bf16"),
                               ("f8E5M2", "fp8_e5m2", "f8E5M2", "f16"),
                               ("f8E5M2FNUZ", "fp8_e5m2", "f8E5M2FNUZ", "bf16"),
                               ("i8", "int8", "i8", "bf16"),
                               ("bf16", "auto", "bf16", "bf16")]:
    ks, vs = ("1.0", "1.0") if dtype == "auto" else ("0.0173", "0.0091")
    lay = layer(dtype, ks, vs)
    k = buffer(f"rt_k_{act}", act, [T, H, D], f"randn:{act}:1")
    v = buffer(f"rt_v_{act}", act, [T, H, D], f"randn:{act}:2")
    dump(k)
    dump(v)
    kc, vc = store_case(f"rt_st_{cache}", lay, act, cache, T, H, D, BS, NB, k,
                        v, slots, ks, vs, fmt)
    load_case(f"rt_ld_{cache}", lay, cache, act, T, H, D, BS, NB, kc, vc,
              slots, ks, vs, fmt)

# Per-head scales: 4 KV heads, each with its own K and V scale (all six
# SCALES among them, every head a different pair).
HEAD_K = ["0.05", "0.001", "1000.0", "3.0"]
HEAD_V = ["0.0123291015625", "1.0", "3.0", "0.05"]


def write_input(name, data):
    """A `file:` buffer's bytes, written next to the plan."""
    with open(f"{out_dir}/{name}.in", "wb") as f:
        f.write(bytes(data))
    return f"file:{cfg_dir}/{name}.in"


# Every bf16 / f16 bit pattern in each head: [4096, 4, 16] activations whose
# element (t, h, d) is pattern t * 16 + d (vector path), stored at slot t.
T, H, D = 4096, 4, 16
slots = "iota_slots_4096"
x_bits = bytearray()
for t in range(T):
    row = b"".join((t * D + d).to_bytes(2, "little") for d in range(D))
    x_bits += row * H
for act in ("bf16", "f16"):
    x = buffer(f"x_heads_{act}", act, [T, H, D], write_input("x_heads", x_bits))
    dump(x)
    for cache, dtype, fmt in FORMATS:
        lay = layer(dtype, HEAD_K, HEAD_V)
        store_case(f"st_heads_{act}_{cache}", lay, act, cache, T, H, D, 16,
                   T // 16, x, x, slots, HEAD_K, HEAD_V, fmt)

# Every cache byte in each head: a [16, 16, 4, 16] cache whose byte (slot,
# h, d) is (slot * 16 + d + 37 * h) mod 256, read by 256 tokens at slot t.
T = 256
slots = "iota_slots_256"
buffer(slots, "i64", [T], "iota")
dump(slots)
c_bytes = [(s * D + d + 37 * h) % 256 for s in range(T) for h in range(H)
           for d in range(D)]
for cache, dtype, fmt in FORMATS:
    c = buffer(f"c_heads_{cache}", cache, [16, 16, H, D],
               write_input("c_heads", c_bytes))
    dump(c)
    lay = layer(dtype, HEAD_K, HEAD_V)
    for out in ("bf16", "f16", "f32"):
        load_case(f"ld_heads_{cache}_{out}", lay, cache, out, T, H, D, 16, 16,
                  c, c, slots, HEAD_K, HEAD_V, fmt)

# Per-head round trip on the realistic shapes (8 heads): the first 64
# tokens of the round trip's activations and slots (the dumps stay small).
T, H, D, BS, NB = 64, 8, 128, 16, 32
RT_K = ["0.0173", "0.02", "0.011", "0.05", "0.0091", "0.031", "0.0173", "0.4"]
RT_V = ["0.0091", "0.013", "0.07", "0.0173", "0.022", "0.009", "0.25", "0.05"]
for cache, dtype, fmt, act in [("f8E4M3FN", "fp8", "f8E4M3FN", "bf16"),
                               ("f8E4M3FNUZ", "fp8", "f8E4M3FNUZ", "bf16"),
                               ("f8E5M2", "fp8_e5m2", "f8E5M2", "f16"),
                               ("f8E5M2FNUZ", "fp8_e5m2", "f8E5M2FNUZ", "bf16"),
                               ("i8", "int8", "i8", "bf16")]:
    lay = layer(dtype, RT_K, RT_V)
    k, v = f"rt_k_{act}", f"rt_v_{act}"
    kc, vc = store_case(f"rt_heads_st_{cache}", lay, act, cache, T, H, D, BS,
                        NB, k, v, "rt_slots", RT_K, RT_V, fmt)
    load_case(f"rt_heads_ld_{cache}", lay, cache, act, T, H, D, BS, NB, kc,
              vc, "rt_slots", RT_K, RT_V, fmt)

# Timing at T = 32768 (Llama-3-8B-like layer): store and load of
# bf16 <-> e4m3 and, for comparison, the plain copy of an `auto` cache, in
# bench.mlir (compiled separately, once per threads-per-block).
T, H, D, BS = 32768, 8, 128, 16
NB = T // BS
bench = []
lay8 = "B_fp8"
bench.append(
    f"kvq.layer @{lay8} cache(fp8) resolved(#kvq.resolved_scales<k = 0.05 "
    f"checkpoint, v = 0.07 checkpoint, q = 1.0 default, prob = 1.0 default>)")
bench.append(
    "kvq.layer @B_auto cache(auto) resolved(#kvq.resolved_scales<k = 1.0 "
    "not_quantized, v = 1.0 not_quantized, q = 1.0 default, "
    "prob = 1.0 default>)")
# Per-head: 8 KV heads around the per-tensor layer's 0.05 and 0.07, each
# proven for the product alone, as 0.05 and 0.07 are (the same quotient).
B_HEAD_K = ["0.05", "0.042", "0.055", "0.058", "0.04", "0.052", "0.048", "0.035"]
B_HEAD_V = ["0.07", "0.065", "0.072", "0.08", "0.068", "0.0625", "0.07", "0.065"]
bench.append(
    f"kvq.layer @B_heads cache(fp8) resolved(#kvq.resolved_scales<"
    f"k = [{', '.join(B_HEAD_K)}] checkpoint, v = [{', '.join(B_HEAD_V)}] "
    f"checkpoint, q = 1.0 default, prob = 1.0 default>)")
act_t = memref([T, H, D], "bf16")
for name, lay, celem in (("", lay8, "f8E4M3FN"), ("_auto", "B_auto", "bf16"),
                         ("_heads", "B_heads", "f8E4M3FN")):
    cache_t = memref([NB, BS, H, D], celem)
    bench.append(
        f"func.func @bench_st{name}(%k: {act_t}, %v: {act_t}, %kc: {cache_t}, "
        f"%vc: {cache_t}, %s: memref<{T}xi64>) {{\n"
        f"  kvq.cache_store @{lay} (%k, %v) into (%kc, %vc) at %s : "
        f"{act_t}, {cache_t}, memref<{T}xi64>\n  return\n}}")
    bench.append(
        f"func.func @bench_ld{name}(%kc: {cache_t}, %vc: {cache_t}, "
        f"%s: memref<{T}xi64>, %k: {act_t}, %v: {act_t}) {{\n"
        f"  kvq.cache_load @{lay} (%kc, %vc) at %s into (%k, %v) : "
        f"{cache_t}, memref<{T}xi64>, {act_t}\n  return\n}}")
plan.append(f"buffer b_k 2 {T}x{H}x{D} randn:bf16:3")
plan.append(f"buffer b_v 2 {T}x{H}x{D} randn:bf16:4")
plan.append(f"buffer b_kc 1 {NB}x{BS}x{H}x{D} zero")
plan.append(f"buffer b_vc 1 {NB}x{BS}x{H}x{D} zero")
plan.append(f"buffer b_kc2 2 {NB}x{BS}x{H}x{D} zero")
plan.append(f"buffer b_vc2 2 {NB}x{BS}x{H}x{D} zero")
plan.append(f"buffer b_s 8 {T} slots:{T}:5:0")
# Store and load each move T*H*D*2*3 bytes (2 read + 1 written per element
# and stream, or the reverse): time a copy of half that, read and written.
plan.append(f"timecopy {T * H * D * 3} 20")
plan.append(f"timecopy {T * H * D * 4} 20")
for tpb in (128, 256, 512, 1024):
    plan.append(f"module {out_dir.rstrip('/').split('/')[-1]}/bench-{tpb}.ptx")
    g8 = work_items(T, H, D, "bf16", "f8E4M3FN") // tpb
    g16 = work_items(T, H, D, "bf16", "bf16") // tpb
    st8, ld8, st16, ld16 = "@bench_st", "@bench_ld", "@bench_st_auto", "@bench_ld_auto"
    fp8, auto = "scale:0.05 scale:0.07", "scale:1.0 scale:1.0"
    heads = f"{scale_operand(B_HEAD_K)} {scale_operand(B_HEAD_V)}"
    plan.append(f"time {st8} {g8} {tpb} 20 b_s b_k b_v b_kc b_vc {fp8}")
    plan.append(f"time {ld8} {g8} {tpb} 20 b_s b_kc b_vc b_k b_v {fp8}")
    plan.append(
        f"time @bench_st_heads {g8} {tpb} 20 b_s b_k b_v b_kc b_vc {heads}")
    plan.append(
        f"time @bench_ld_heads {g8} {tpb} 20 b_s b_kc b_vc b_k b_v {heads}")
    plan.append(
        f"time {st16} {g16} {tpb} 20 b_s b_k b_v b_kc2 b_vc2 {auto}")
    plan.append(
        f"time {ld16} {g16} {tpb} 20 b_s b_kc2 b_vc2 b_k b_v {auto}")
with open(f"{out_dir}/bench.mlir", "w") as f:
    f.write("\n".join(bench) + "\n")

with open(f"{out_dir}/kernels.mlir", "w") as f:
    f.write("\n".join(mlir) + "\n")
with open(f"{out_dir}/plan.in", "w") as f:
    f.write("\n".join(plan) + "\n")
with open(f"{out_dir}/manifest.txt", "w") as f:
    f.write("\n".join(manifest) + "\n")
