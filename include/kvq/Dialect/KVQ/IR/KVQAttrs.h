//===- KVQAttrs.h - kvq attributes ------------------------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQATTRS_H
#define KVQ_DIALECT_KVQ_IR_KVQATTRS_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectImplementation.h"

#include "kvq/Dialect/KVQ/IR/KVQEnums.h"

#define GET_ATTRDEF_CLASSES
#include "kvq/Dialect/KVQ/IR/KVQAttrs.h.inc"

namespace mlir::kvq {

/// Checks that `cacheType` may hold a KV cache of `dtype` with activations
/// of type `activationType`; on failure returns a message describing what
/// was expected, in the style of verifier messages.
std::optional<std::string>
checkCacheElementType(KVCacheDtype dtype, Type cacheType, Type activationType);

/// Returns the values of one raw scale field (a FloatAttr or a dense float
/// tensor) as doubles, in element order.
SmallVector<double> getScaleValues(Attribute scale);

} // namespace mlir::kvq

#endif // KVQ_DIALECT_KVQ_IR_KVQATTRS_H
