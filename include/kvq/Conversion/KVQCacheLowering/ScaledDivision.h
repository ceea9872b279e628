//===- ScaledDivision.h - x / s without a division --------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The store path quantizes q = convert(RN_f32(x / s)) for activations x (f16
// or bf16, widened exactly to f32) and a scale s known at compile time. An
// IEEE f32 division is a long sequence on GPUs (on NVIDIA: a reciprocal
// approximation, three FMAs, a range check and a branch to a slow path that
// keeps registers live), so where it provably gives the same quotient kvq
// computes it with a multiply and one correction step instead:
//
//   x1 = clamp(x, -B, B)       B = s * 2^17 (a NaN passes through)
//   q0 = RN(x1 * r)            r = RN(1 / s)
//   e  = fma(-s, q0, x1)       the remainder
//   q  = fma(e, r, q0)         one Newton-Markstein correction
//   q  = (q0 == 0) ? q0 : q    keeps the sign of zero quotients
//
// proveReciprocalDivision() decides, for one scale and one activation type,
// whether every value of that type then gets the cache bytes a true division
// gives, in every cache format (f8E4M3FN/FNUZ, f8E5M2/FNUZ, i8): it checks
// the quotient of every significand of the type, which by scaling covers
// every exponent (see ScaledDivision.cpp for the argument). Checking a
// scale for both bf16 and f16 takes about 6 us (2,000 scales: 11 ms in
// ScaledDivisionTest, Release build); f32 activations (2^23 significands)
// are never proven.
//
// Cheaper still, and enough for almost every scale: the product alone,
//
//   q = RN(x * r)              r = RN(1 / s)
//
// differs from RN(x / s) by at most one unit in the last place, and a cache
// format rounds two neighbouring f32 values apart only if one of them is a
// rounding threshold of the format (a midpoint between two of its values),
// a number with few significant bits. proveReciprocalProduct() checks, for
// one scale, activation type and cache format, that no significand's
// product or quotient that differ is such a number (ScaledDivision.cpp).
// Of 20,000 scales log-uniform in [1e-4, 1e3] it proves 19,999 for bf16
// into f8E4M3FN and 19,981 into i8 (ScaledDivisionTest,
// ProductProvesAlmostEveryScale).
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_KVQCACHELOWERING_SCALEDDIVISION_H
#define KVQ_CONVERSION_KVQCACHELOWERING_SCALEDDIVISION_H

#include "llvm/ADT/APFloat.h"

#include <optional>

namespace mlir::kvq {

/// The constants of the division-free quotient x / s described above.
struct ReciprocalDivision {
  /// s.
  float scale = 1.0f;
  /// RN(1 / s).
  float reciprocal = 1.0f;
  /// s * 2^17 (exact): |x| is clamped to it first, so that x1 * r cannot
  /// overflow. Its quotient, 2^17, saturates every cache format.
  float bound = 131072.0f;

  /// The quotient of `x` on the host, with the same IEEE f32 operations the
  /// generated code uses.
  float divide(float x) const;
};

/// The smallest and largest scales proveReciprocalDivision() considers:
/// 2^-60 and 2^60 (real KV-cache scales are within 2^-20 .. 2^10).
inline constexpr float kMinReciprocalDivisionScale = 0x1p-60f;
inline constexpr float kMaxReciprocalDivisionScale = 0x1p60f;

/// Returns the constants of the division-free quotient by `scale` if, for
/// every finite, infinite and NaN value x of `source`, convert(q) equals
/// convert(RN_f32(x / scale)) in every cache format; std::nullopt if that
/// is not proven (then a true division must be used). `source` must have at
/// most 11 bits of precision and lie inside f32's range (bf16, f16);
/// anything else, and scales outside [kMinReciprocalDivisionScale,
/// kMaxReciprocalDivisionScale] (NaN, 0 and negative ones included), gets
/// std::nullopt.
std::optional<ReciprocalDivision>
proveReciprocalDivision(float scale, const llvm::fltSemantics &source);

/// The most significant bits a rounding threshold of a cache format has:
/// for a float format (`format`) of precision p, p + 1 (a midpoint between
/// two neighbours is an odd multiple of half their spacing); for i8
/// (`format` null), 8 (k + 1/2 with |k + 1/2| <= 127.5; the clamp to
/// [-128, 127] adds no threshold).
unsigned cacheThresholdBits(const llvm::fltSemantics *format);

/// Whether q = RN(x * RN(1/scale)), with no clamp and no correction, gives
/// for every finite, infinite and NaN value x of `source` the cache byte
/// that RN_f32(x / scale) gives, in a cache format (round to nearest,
/// saturating) whose rounding thresholds have at most `thresholdBits`
/// significant bits (cacheThresholdBits()). The same conditions on `source`
/// and `scale` as proveReciprocalDivision(); false when not proven.
bool proveReciprocalProduct(float scale, const llvm::fltSemantics &source,
                            unsigned thresholdBits);

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_KVQCACHELOWERING_SCALEDDIVISION_H
