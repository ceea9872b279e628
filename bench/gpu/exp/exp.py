"""Experiment: SASS load order and store timing of PTX variants (see README.md)."""
import glob, os, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kvq_bench as kb
import torch
here = os.path.dirname(os.path.abspath(__file__))
PTX = sorted(glob.glob(os.path.join(here, "*.ptx"))) + [os.path.join(here, "..", "ptx", "kernels_tpb128.ptx")]
for p in PTX:
    n = os.path.basename(p)
    subprocess.run(["ptxas", "-arch=sm_90", p, "-o", "/tmp/x.cubin"], check=True)
    sass = subprocess.run(["cuobjdump", "-sass", "-fun", "store_d128_kernel", "/tmp/x.cubin"],
                          capture_output=True, text=True).stdout
    order = [l.split(";")[0].split("*/")[-1].strip().split()[0] for l in sass.splitlines()
             if any(k in l for k in ("LDG", "STG", "F2FP", "FFMA"))]
    compact = []
    for o in order:
        o = o.replace("@P0", "").replace("@P1", "").replace("@P2", "")
        if compact and compact[-1][0] == o:
            compact[-1][1] += 1
        else:
            compact.append([o, 1])
    print(n, " ".join(f"{o}x{c}" for o, c in compact)[:400])
torch.ones(1, device="cuda")
kb.FLUSH = torch.ones(64 * 1024 * 1024, dtype=torch.float32, device="cuda")
gen = torch.Generator(device="cuda"); gen.manual_seed(3)
refs = kb.Refs()
for T in (256, 4096):
    sets = kb.graph_sets(128, T, gen)
    nbytes = 2 * T * kb.H * 128 * 3 + 8 * T
    row = f"T={T}:"
    for rep in range(2):
        for p in PTX:
            mod = kb.Module(p)
            st = [kb.Launch(mod, "store_d128_kernel", list(s[:5]), T * kb.H * 128 // 16) for s in sets]
            us, _, _ = kb.time_us(st[:8])
            g = kb.time_graph_us(st)
            row += f"\n  {os.path.basename(p):40} single {us:6.2f} us ({100*nbytes/us/1e6/2.96:5.1f}%)  graph {g:6.2f} us ({100*nbytes/g/1e6/2.96:5.1f}%)"
    print(row, flush=True)
# correctness of each variant: the full check of kvq_bench
for p in PTX:
    t = kb.correctness(kb.Module(p), refs, gen)
    print(os.path.basename(p), "mismatches vs ref", t.mism_ref, "vs torch", t.mism_torch, "bytes", t.bytes_ref)
