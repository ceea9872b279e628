//===- CacheStoreReference.h - cache_store / load in APFloat ----*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The reference the execution tests compare kvq.cache_store's bytes and
// kvq.cache_load's values with, written with llvm::APFloat from the op's
// documented semantics: f32(x) / s as a true f32 division, saturated to the
// format's largest finite value, rounded to nearest even; NaN to the
// format's canonical NaN.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_UNITTESTS_CONVERSION_CACHESTOREREFERENCE_H
#define KVQ_UNITTESTS_CONVERSION_CACHESTOREREFERENCE_H

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace mlir::kvq::test::store {

using llvm::APFloat;
using llvm::APInt;

/// A cache format: its MLIR type, the kv_cache_dtype keyword of a layer
/// using it, and its APFloat semantics (null for i8).
struct CacheFormat {
  const char *mlirType;
  const char *dtype;
  const llvm::fltSemantics *sem;
};

inline const CacheFormat kE4M3FN{"f8E4M3FN", "fp8", &APFloat::Float8E4M3FN()};
inline const CacheFormat kE4M3FNUZ{"f8E4M3FNUZ", "fp8",
                                   &APFloat::Float8E4M3FNUZ()};
inline const CacheFormat kE5M2{"f8E5M2", "fp8_e5m2", &APFloat::Float8E5M2()};
inline const CacheFormat kE5M2FNUZ{"f8E5M2FNUZ", "fp8_e5m2",
                                   &APFloat::Float8E5M2FNUZ()};
inline const CacheFormat kInt8{"i8", "int8", nullptr};
inline const CacheFormat kAllFormats[] = {kE4M3FN, kE4M3FNUZ, kE5M2, kE5M2FNUZ,
                                          kInt8};

/// An activation / output type: MLIR name, semantics, size in bytes.
struct ActType {
  const char *mlirType;
  const llvm::fltSemantics *sem;
  unsigned bytes;
};
inline const ActType kBF16{"bf16", &APFloat::BFloat(), 2};
inline const ActType kF16{"f16", &APFloat::IEEEhalf(), 2};
inline const ActType kF32{"f32", &APFloat::IEEEsingle(), 4};

inline APFloat fromBits(const llvm::fltSemantics &sem, uint64_t bits) {
  return APFloat(sem, APInt(APFloat::semanticsSizeInBits(sem), bits));
}

inline APFloat toF32(APFloat v) {
  bool losesInfo;
  v.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &losesInfo);
  return v;
}

/// The NaN kvq's store produces for any NaN input (documented in
/// kvq-lower-cache-ops): 0x7F for the OCP formats (what NVIDIA's
/// cvt.rn.satfinite produces; GPUs drop the sign of NaN in arithmetic), 0x80
/// for FNUZ.
inline uint8_t expectedNaN(const CacheFormat &f) {
  bool fnuz = f.sem == &APFloat::Float8E4M3FNUZ() ||
              f.sem == &APFloat::Float8E5M2FNUZ();
  uint8_t nan = fnuz ? 0x80 : 0x7F;
  // It is a NaN of the format.
  EXPECT_TRUE(fromBits(*f.sem, nan).isNaN());
  return nan;
}

/// Reference store of one f32 value `x` (already widened exactly from the
/// activation type) with scale `s`.
inline uint8_t refQuantize(const CacheFormat &f, APFloat x, float s) {
  APFloat q = x;
  q.divide(APFloat(s), APFloat::rmNearestTiesToEven); // f32 division
  if (!f.sem) {
    // int8: clamp(round_half_even(q), -128, 127), NaN -> 0.
    if (q.isNaN())
      return 0;
    float v = q.convertToFloat();
    if (v > 127.0f)
      return 127;
    if (v < -128.0f)
      return uint8_t(int8_t(-128));
    APFloat r(v);
    r.roundToIntegral(APFloat::rmNearestTiesToEven);
    return uint8_t(int8_t(r.convertToFloat()));
  }
  if (q.isNaN())
    return expectedNaN(f);
  // Saturate explicitly: APFloat's conversion of out-of-range values gives
  // inf or NaN. Clamping first is exact (max is representable).
  APFloat maxF = toF32(APFloat::getLargest(*f.sem));
  APFloat minF = toF32(APFloat::getLargest(*f.sem, /*Negative=*/true));
  if (q.compare(maxF) == APFloat::cmpGreaterThan)
    q = maxF;
  if (q.compare(minF) == APFloat::cmpLessThan)
    q = minF;
  bool losesInfo;
  q.convert(*f.sem, APFloat::rmNearestTiesToEven, &losesInfo);
  return uint8_t(q.bitcastToAPInt().getZExtValue());
}

/// Reference load of one cache byte with scale `s` into `out`: the bits of
/// the result (NaN canonicalized to APFloat's quiet NaN, positive).
inline uint32_t refDequantize(const CacheFormat &f, uint8_t byte, float s,
                              const ActType &out) {
  APFloat v =
      f.sem ? toF32(fromBits(*f.sem, byte)) : APFloat(float(int8_t(byte)));
  v.multiply(APFloat(s), APFloat::rmNearestTiesToEven);
  if (v.isNaN())
    return APFloat::getQNaN(*out.sem).bitcastToAPInt().getZExtValue();
  bool losesInfo;
  v.convert(*out.sem, APFloat::rmNearestTiesToEven, &losesInfo);
  return v.bitcastToAPInt().getZExtValue();
}

} // namespace mlir::kvq::test::store

#endif // KVQ_UNITTESTS_CONVERSION_CACHESTOREREFERENCE_H
