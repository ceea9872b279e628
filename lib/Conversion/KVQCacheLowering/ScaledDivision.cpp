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
// quotients lie in (2^-1, 2^2). The functions below are plain IEEE single
// precision (SSE on x86-64, the FPU on AArch64; std::fma is correctly
// rounded); unittests/Conversion compare them with llvm::APFloat and the
// generated code with an APFloat division, for every input.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/ScaledDivision.h"

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

std::optional<ReciprocalDivision>
mlir::kvq::proveReciprocalDivision(float scale,
                                   const llvm::fltSemantics &source) {
  // NaN fails both comparisons.
  if (!(scale >= kMinReciprocalDivisionScale &&
        scale <= kMaxReciprocalDivisionScale))
    return std::nullopt;
  unsigned precision = llvm::APFloat::semanticsPrecision(source);
  if (precision > 11 ||
      !llvm::APFloat::isRepresentableBy(source, llvm::APFloat::IEEEsingle()))
    return std::nullopt;

  ReciprocalDivision d;
  d.scale = scale;
  d.reciprocal = 1.0f / scale;
  d.bound = std::ldexp(scale, 17);
  // Case (b): the clamped quotient must be exactly 2^17.
  if (d.divide(d.bound) != 0x1p17f || d.divide(-d.bound) != -0x1p17f)
    return std::nullopt;
  // Case (c): one binade of significands.
  // x = (1 + fraction * 2^-fractionBits) * 2^exponent, each step exact (x
  // has at most 11 significant bits and is normal: |exponent| <= 60).
  const int fractionBits = int(precision) - 1;
  const float ulp = std::ldexp(1.0f, -fractionBits);
  const float binade = std::ldexp(1.0f, std::ilogb(scale));
  for (uint32_t fraction = 0; fraction < (1u << fractionBits); ++fraction) {
    float x = (1.0f + float(fraction) * ulp) * binade;
    if (d.divide(x) != x / scale)
      return std::nullopt;
  }
  return d;
}
