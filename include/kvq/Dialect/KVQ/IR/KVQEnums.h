//===- KVQEnums.h - kvq enums -----------------------------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The KV-cache dtype and scale-rule enums of KVQEnums.td. They need no IR:
// the scale rules library (kvq/ScaleRules) uses them as they are, so the
// dialect and the rules cannot disagree on a dtype or a rule.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQENUMS_H
#define KVQ_DIALECT_KVQ_IR_KVQENUMS_H

#include "mlir/Support/LLVM.h"
#include "llvm/ADT/DenseMapInfo.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>

#include "kvq/Dialect/KVQ/IR/KVQEnums.h.inc"

namespace mlir::kvq {

/// Whether `dtype` stores quantized values (fp8* or int8).
inline bool isQuantized(KVCacheDtype dtype) {
  return dtype != KVCacheDtype::Auto;
}

/// Whether `dtype` is one of the fp8 dtypes (vLLM's
/// `kv_cache_dtype.startswith("fp8")`).
inline bool isFp8(KVCacheDtype dtype) {
  return dtype == KVCacheDtype::Fp8 || dtype == KVCacheDtype::Fp8E4M3 ||
         dtype == KVCacheDtype::Fp8E5M2;
}

/// The four scales in their order (K, V, Q, prob): report columns,
/// diagnostics and loops over the scales all use it.
inline constexpr ScaleKind kScaleKinds[] = {ScaleKind::K, ScaleKind::V,
                                            ScaleKind::Q, ScaleKind::Prob};
static_assert(std::size(kScaleKinds) == getMaxEnumValForScaleKind() + 1,
              "kScaleKinds lists every ScaleKind");

/// The one of `k`, `v`, `q`, `prob` that `kind` names (for structs that
/// hold one field per scale).
template <typename T>
T &selectScale(ScaleKind kind, T &k, T &v, T &q, T &prob) {
  switch (kind) {
  case ScaleKind::K:
    return k;
  case ScaleKind::V:
    return v;
  case ScaleKind::Q:
    return q;
  case ScaleKind::Prob:
    return prob;
  }
  llvm_unreachable("unknown ScaleKind");
}

} // namespace mlir::kvq

#endif // KVQ_DIALECT_KVQ_IR_KVQENUMS_H
