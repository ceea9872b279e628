"""CPU reference numerics for bench/gpu/kvq_bench.py (numpy only), written
from the semantics in include/kvq/Conversion/Passes.td (kvq-lower-cache-ops),
independently of kvq's own code:

store (bf16 -> f8E4M3FN):  q = e4m3fn(RN_f32(f32(x) / f32(s))), round to
    nearest even (subnormals included), finite values beyond 448 and +-inf
    saturate to +-448, every NaN becomes 0x7F.
load (f8E4M3FN -> bf16):   out = bf16(RN_f32(f32(c) * f32(s))) (RNE), every
    NaN becomes 0x7FC0.

bf16 has only 65536 values and fp8 256, so both are tables indexed by the
input bits, computed element-wise here: the harness applies them by indexing.
"""
import numpy as np

E4M3_MAX = 448.0


def bf16_bits_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(y):
    """RNE f32 -> bf16 bits for finite (or inf) y; NaN handled by callers."""
    u = np.asarray(y, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def e4m3fn_encode(y):
    """f32 array -> f8E4M3FN bytes: RNE, saturating to +-448, NaN -> 0x7F."""
    y = np.asarray(y, dtype=np.float32)
    nan = np.isnan(y)
    neg = np.signbit(y)
    a = np.abs(y.astype(np.float64))             # exact
    a = np.where(nan, 0.0, np.minimum(a, E4M3_MAX))  # +-inf and > 448 -> 448
    with np.errstate(all="ignore"):
        # subnormal range (a < 2^-6): code = RNE(a / 2^-9); 8 is the smallest
        # normal, encoded as 0x08 as well.
        sub = np.rint(a * 512.0)
        _, ex = np.frexp(a)                      # a = m * 2^ex, m in [0.5, 1)
        e = ex.astype(np.int64) - 1              # a in [2^e, 2^(e+1))
        m = np.rint(np.ldexp(a, (3 - e).astype(np.int32)))  # in [8, 16]
        norm = ((e + 7) << 3) + (m.astype(np.int64) - 8)  # 16 carries
    code = np.where(a < 2.0 ** -6, sub.astype(np.int64), norm)
    code = code | (neg.astype(np.int64) << 7)
    code = np.where(nan, 0x7F, code)
    assert code.min() >= 0 and code.max() <= 0xFF
    return code.astype(np.uint8)


def e4m3fn_decode():
    """f32[256]: the value of each f8E4M3FN byte (NaN for 0x7F, 0xFF)."""
    c = np.arange(256)
    s = np.where(c >> 7, -1.0, 1.0)
    e = (c >> 3) & 15
    m = c & 7
    v = np.where(e == 0, m * 2.0 ** -9, (1 + m / 8.0) * 2.0 ** (e - 7.0)) * s
    v = np.where((e == 15) & (m == 7), np.nan, v)
    return v.astype(np.float32)


def store_table(scale):
    """uint8[65536]: the cache byte for each bf16 input bit pattern."""
    x = bf16_bits_to_f32(np.arange(65536))
    with np.errstate(all="ignore"):
        y = x / np.float32(scale)                # IEEE f32 division, RNE
    return e4m3fn_encode(y)


def load_table(scale):
    """uint16[256]: the bf16 output bits for each cache byte."""
    v = e4m3fn_decode()
    with np.errstate(all="ignore"):
        y = v * np.float32(scale)                # IEEE f32 product, RNE
    out = f32_to_bf16_bits(np.where(np.isnan(y), 0, y))
    return np.where(np.isnan(y), np.uint16(0x7FC0), out).astype(np.uint16)


def self_test():
    """Brute force: nearest finite e4m3 value (ties to even code) for every
    bf16/s quotient of the two model scales."""
    vals = e4m3fn_decode().astype(np.float64)
    codes = np.arange(256)
    fin = ~np.isnan(vals)
    for s in (0.05, 0.07):
        x = bf16_bits_to_f32(np.arange(65536))
        with np.errstate(all="ignore"):
            y = (x / np.float32(s)).astype(np.float64)
        tab = store_table(s)
        ok = ~np.isnan(y)
        yc = np.clip(y[ok], -E4M3_MAX, E4M3_MAX)
        d = np.abs(yc[:, None] - vals[None, fin])
        best = d.min(axis=1, keepdims=True)
        cand = (d == best)
        # ties: even mantissa (code & 1 == 0); zero: keep the sign of y
        c = codes[fin]
        score = cand * 4 + cand * ((c & 1) == 0)[None, :] * 2 + \
            cand * ((c >> 7) == np.signbit(yc)[:, None])
        ref = c[score.argmax(axis=1)]
        bad = np.count_nonzero(ref != tab[ok])
        assert bad == 0, (s, bad)
        assert np.all(tab[~ok] == 0x7F)
    lt = load_table(0.05)
    assert lt[0x7F] == 0x7FC0 and lt[0xFF] == 0x7FC0 and lt[0x80] == 0x8000
    return True


if __name__ == "__main__":
    print("kvq_ref self-test:", self_test())
