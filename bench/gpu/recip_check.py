#!/usr/bin/env python3
"""CPU-only evidence for the division recommendation in bench/RESULTS.md
(numpy; exact rational arithmetic for the FMA form). For the fp8 bytes of
kvq's store, x / s (f32, RNE) vs:
  (1) x * RN(1/s) alone, over all 65536 bf16 x and 3007 f32 scales;
  (2) x1 = clamp(x, +-RN(512 s)) (NaN kept), q0 = RN(x1 * r), e = RN(x1 - s q0)
      (one FMA), q = RN(q0 + e r) (one FMA), copysign(q, x), over all bf16 x
      and a few scales from 1e-30 to 1e30 (slow: exact Fractions).
Usage: python3 recip_check.py  (needs numpy)"""
import struct
import sys
from fractions import Fraction as F

import numpy as np

import kvq_ref


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def rn32(q):
    """Exact rational -> nearest f32 (RNE, subnormals, overflow to inf)."""
    if q == 0:
        return 0.0
    s = -1 if q < 0 else 1
    q = abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if F(2) ** e > q:
        e -= 1
    e = max(e, -126)
    ulp = F(2) ** (e - 23)
    n = q / ulp
    fl = n.numerator // n.denominator
    r = n - fl
    if r > F(1, 2) or (r == F(1, 2) and fl % 2):
        fl += 1
    v = fl * ulp
    return s * float("inf") if v >= F(2) ** 128 else s * float(v)


xs = kvq_ref.bf16_bits_to_f32(np.arange(65536))
fin = xs[~np.isnan(xs)]
rng = np.random.default_rng(0)
scales = np.concatenate([np.float32(10.0) ** rng.uniform(-4, 2, 3000).astype(np.float32),
                         np.float32([0.05, 0.07, 1 / 448, 3.0, 0.0123291015625, 1000.0,
                                     0.001])]).astype(np.float32)
bad = []
with np.errstate(all="ignore"):
    for s in scales:
        n = np.count_nonzero(kvq_ref.e4m3fn_encode(fin * (np.float32(1) / s)) !=
                             kvq_ref.e4m3fn_encode(fin / s))
        if n:
            bad.append((float(s), n))
print(f"(1) x*RN(1/s): {len(scales)} scales, fp8 differs for {len(bad)}: {bad}")
sys.stdout.flush()
for s in [0.05, 0.07, 0.02682291716337204, 1e-30, 1e-20, 1e30, 1 / 448, 3.0]:
    sv = f32(s)
    r, c = rn32(1 / F(sv)), rn32(512 * F(sv))
    with np.errstate(all="ignore"):
        ref = kvq_ref.e4m3fn_encode(xs / np.float32(sv))
    out = np.zeros(65536, np.float32)
    for i, x in enumerate(xs.astype(np.float64)):
        if np.isnan(x):
            out[i] = np.nan
            continue
        x1 = min(max(x, -c), c)
        q0 = rn32(F(x1) * F(r))
        e = rn32(F(x1) - F(sv) * F(q0))
        q = abs(rn32(F(q0) + F(e) * F(r)))
        out[i] = -q if np.signbit(x) else q
    n = np.count_nonzero(kvq_ref.e4m3fn_encode(out) != ref)
    print(f"(2) s={sv:.9g}: clamp + mul + FMA correction + copysign: {n} fp8 mismatches")
