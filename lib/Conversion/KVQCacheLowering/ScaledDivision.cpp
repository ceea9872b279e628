//===- ScaledDivision.cpp - x / s without a division ----------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Why checking one binade of significands is enough.
//
// Let s be in [2^-60, 2^60], r = RN(1/s), B = s * 2^17, x an f32 with at
// most p <= 11 significant bits (every bf16 / f16 value), Q = x / s exactly,
// and q the result of the sequence in ScaledDivision.h. Both q and the
// reference RN(Q) then go through the same conversion to the cache format
// (round to nearest even, saturate). Everything is odd in x (round to
// nearest is symmetric), so take x >= 0.
//
// (a) Q < 2^-20. No cache format rounds a magnitude below 2^-18 to anything
//     but zero (the smallest nonzero one is f8E5M2FNUZ's 2^-17; i8 rounds
//     below 0.5 to 0). q0 is within a factor 1 + 2^-22 of Q (plus 2^-150
//     if it is subnormal), the correction moves it by less than that, and a
//     zero q0 is kept with its sign: q is a zero or a tiny value of x's
//     sign, as RN(Q) is. Same byte.
// (b) Q > 2^17, or x infinite: x1 = B and q = 2^17 (checked for every
//     scale), above every format's largest finite value; RN(Q) is too. Both
//     saturate. A NaN x gives a NaN q (the clamp passes it through).
// (c) 2^-20 <= Q <= 2^17. Then x >= 2^-80 and q0 >= 2^-21: every
//     intermediate is a normal number, except perhaps the remainder
//     x - s * q0. That is an integer multiple of 2^-127 (the spacing of x is
//     at least 2^-87, of s 2^-83, of q0 2^-44), so whenever it is below
//     2^-126 it is exact. Rounding a normal or exact value commutes with
//     multiplying by a power of two, so replacing x by x * 2^k (staying in
//     the range) multiplies q and RN(Q) by 2^k: if they agree for one x,
//     they agree for x at every exponent of this range.
// So it is enough that q = RN(Q) for each of the 2^(p-1) significands at
// one exponent inside (c): x in [2^m, 2^(m+1)) with m = ilogb(s), whose
// quotients lie in (2^-1, 2^2).
//
// The product alone, qm = RN(x * r), against qd = RN(Q). The exact product
// x * r is within a factor 1 +- 2^-24 of Q (r is within that of 1/s), less
// than one unit in the last place of either rounding, so qm and qd are
// equal or neighbouring f32 values. Rounding to a cache format (round to
// nearest, then a monotonic saturation) is a step function of the f32
// value whose steps lie at its thresholds (midpoints between neighbouring
// values); two neighbouring f32 values get different results only if one
// of them is a threshold (a threshold strictly between them would have to
// be an f32 value between neighbours). Thresholds have few significant
// bits (cacheThresholdBits), so where qm and qd differ and both have more,
// they give the same byte. The cases: (a) and (b) as above (qm < 2^-18
// rounds to a zero of x's sign, and qm >= 2^16 saturates, like qd; an
// infinite x gives infinite quotients, saturated alike); in (c) both are
// normal, and multiplying x by 2^k multiplies qm and qd by 2^k and keeps
// their significant bits: one binade of significands decides.
//
// The functions below are plain IEEE single precision (SSE on x86-64, the
// FPU on AArch64; std::fma is correctly rounded); unittests/Conversion
// compare them with llvm::APFloat and the generated code with an APFloat
// division, for every input.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/ScaledDivision.h"

#include "llvm/ADT/bit.h"

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

static_assert(std::numeric_limits<float>::is_iec559,
              "the proof needs IEEE single precision on the host");
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "the proof needs float arithmetic evaluated in float"
#endif

using namespace mlir::kvq;

float ReciprocalDivision::divide(float x) const {
  // min(max(x, -B), B) as arith.maximumf / arith.minimumf: NaN stays.
  float x1 = x;
  if (x1 > bound)
    x1 = bound;
  else if (x1 < -bound)
    x1 = -bound;
  float q0 = x1 * reciprocal;
  float e = std::fma(-scale, q0, x1);
  float q = std::fma(e, reciprocal, q0);
  return q0 == 0.0f ? q0 : q;
}

/// The precision of `source` if a proof can be attempted for `scale` and
/// `source` (see proveReciprocalDivision()), else 0.
static unsigned provablePrecision(float scale,
                                  const llvm::fltSemantics &source) {
  // NaN fails both comparisons.
  if (!(scale >= kMinReciprocalDivisionScale &&
        scale <= kMaxReciprocalDivisionScale))
    return 0;
  unsigned precision = llvm::APFloat::semanticsPrecision(source);
  if (precision > 11 ||
      !llvm::APFloat::isRepresentableBy(source, llvm::APFloat::IEEEsingle()))
    return 0;
  return precision;
}

/// Calls `check(x)` for the significands x of `precision` bits in the
/// binade [2^ilogb(scale), 2^(ilogb(scale)+1)) while it returns true;
/// returns whether it always did. Each x is exact: it has at most 11
/// significant bits and |exponent| <= 60.
template <typename Check>
static bool forEachSignificand(float scale, unsigned precision, Check check) {
  const int fractionBits = int(precision) - 1;
  const float ulp = std::ldexp(1.0f, -fractionBits);
  const float binade = std::ldexp(1.0f, std::ilogb(scale));
  for (uint32_t fraction = 0; fraction < (1u << fractionBits); ++fraction)
    if (!check((1.0f + float(fraction) * ulp) * binade))
      return false;
  return true;
}

std::optional<ReciprocalDivision>
mlir::kvq::proveReciprocalDivision(float scale,
                                   const llvm::fltSemantics &source) {
  unsigned precision = provablePrecision(scale, source);
  if (!precision)
    return std::nullopt;

  ReciprocalDivision d;
  d.scale = scale;
  d.reciprocal = 1.0f / scale;
  d.bound = std::ldexp(scale, 17);
  // Case (b): the clamped quotient must be exactly 2^17.
  if (d.divide(d.bound) != 0x1p17f || d.divide(-d.bound) != -0x1p17f)
    return std::nullopt;
  // Case (c): one binade of significands.
  if (!forEachSignificand(scale, precision,
                          [&](float x) { return d.divide(x) == x / scale; }))
    return std::nullopt;
  return d;
}

unsigned mlir::kvq::cacheThresholdBits(const llvm::fltSemantics *format) {
  return format ? llvm::APFloat::semanticsPrecision(*format) + 1 : 8;
}

/// Significant bits of a normal f32 (1 for a power of two, at most 24).
static unsigned significantBits(float value) {
  uint32_t significand =
      (llvm::bit_cast<uint32_t>(value) & 0x7FFFFFu) | 0x800000u;
  return 24 - llvm::countr_zero(significand);
}

bool mlir::kvq::proveReciprocalProduct(float scale,
                                       const llvm::fltSemantics &source,
                                       unsigned thresholdBits) {
  unsigned precision = provablePrecision(scale, source);
  if (!precision)
    return false;
  const float reciprocal = 1.0f / scale;
  return forEachSignificand(scale, precision, [&](float x) {
    float product = x * reciprocal, quotient = x / scale;
    return product == quotient || (significantBits(product) > thresholdBits &&
                                   significantBits(quotient) > thresholdBits);
  });
}
