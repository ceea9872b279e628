# Copied verbatim (apart from these two comment lines) from ../shared/bench/torch_baseline.py
# (the project's shared/ folder, which does not travel to the GPU machine).
"""Baseline for the KV-cache store (quantize + scatter) and load (gather + dequantize)
paths on one GPU: what a user could pick instead of generated kernels.
Prints a table of median times and effective bandwidth (bytes that must move)."""
import sys, torch, triton.testing as tt

torch.manual_seed(0)
dev = "cuda"
T, H, D, BS = int(sys.argv[1]) if len(sys.argv) > 1 else 32768, 8, 128, 16
NB = (T + BS - 1) // BS * 2            # cache has twice the blocks the batch needs
fp8 = torch.float8_e4m3fn
FMAX = torch.finfo(fp8).max

k = torch.randn(T, H, D, device=dev, dtype=torch.bfloat16)
v = torch.randn(T, H, D, device=dev, dtype=torch.bfloat16)
kc = torch.empty(NB * BS, H, D, device=dev, dtype=fp8)
vc = torch.empty(NB * BS, H, D, device=dev, dtype=fp8)
slots = torch.randperm(NB * BS, device=dev)[:T].to(torch.int64)
ks = torch.tensor(0.05, device=dev); vs = torch.tensor(0.07, device=dev)

def store_eager(k, v, kc, vc, slots, ks, vs):
    kc.view(torch.uint8).index_copy_(0, slots, (k.float() / ks).clamp(-FMAX, FMAX).to(fp8).view(torch.uint8))
    vc.view(torch.uint8).index_copy_(0, slots, (v.float() / vs).clamp(-FMAX, FMAX).to(fp8).view(torch.uint8))

def load_eager(kc, vc, slots, ks, vs):
    return (kc.view(torch.uint8).index_select(0, slots).view(fp8).float() * ks).to(torch.bfloat16), \
           (vc.view(torch.uint8).index_select(0, slots).view(fp8).float() * vs).to(torch.bfloat16)

store_c = torch.compile(store_eager)
load_c = torch.compile(load_eager)

def bw(ms, nbytes): return nbytes / (ms * 1e-3) / 1e12

elems = 2 * T * H * D
store_bytes = elems * 2 + elems * 1 + T * 8      # read bf16, write fp8, read slots
load_bytes = elems * 1 + elems * 2 + T * 8
big = torch.empty(256 * 1024 * 1024, device=dev, dtype=torch.uint8)
copy_ms = tt.do_bench(lambda: big.clone(), warmup=50, rep=300, return_mode="median")
copy_bw = bw(copy_ms, 2 * big.numel())

# correctness of the compiled path against eager
store_eager(k, v, kc, vc, slots, ks, vs); ref = kc.clone()
kc.view(torch.uint8).fill_(0); store_c(k, v, kc, vc, slots, ks, vs)
assert torch.equal(kc.view(torch.uint8), ref.view(torch.uint8)), "compiled store differs"

rows = [("d2d copy (256 MiB)", copy_ms, copy_bw)]
for name, fn, nb in [("store eager", lambda: store_eager(k, v, kc, vc, slots, ks, vs), store_bytes),
                     ("store torch.compile", lambda: store_c(k, v, kc, vc, slots, ks, vs), store_bytes),
                     ("load eager", lambda: load_eager(kc, vc, slots, ks, vs), load_bytes),
                     ("load torch.compile", lambda: load_c(kc, vc, slots, ks, vs), load_bytes)]:
    ms = tt.do_bench(fn, warmup=50, rep=300, return_mode="median")
    rows.append((name, ms, bw(ms, nb)))
print(torch.cuda.get_device_name(), "T=%d H=%d D=%d block=%d" % (T, H, D, BS))
print("%-24s %10s %10s %8s" % ("path", "median ms", "TB/s", "of copy"))
for n, ms, b in rows:
    print("%-24s %10.4f %10.3f %7.1f%%" % (n, ms, b, 100 * b / copy_bw))
