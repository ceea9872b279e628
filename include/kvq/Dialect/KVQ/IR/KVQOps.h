//===- KVQOps.h - kvq operations --------------------------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQOPS_H
#define KVQ_DIALECT_KVQ_IR_KVQOPS_H

#include "kvq/Dialect/KVQ/IR/KVQAttrs.h"
#include "kvq/Dialect/KVQ/IR/KVQDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <array>

#include "kvq/Dialect/KVQ/IR/KVQOpInterfaces.h.inc"

#define GET_OP_CLASSES
#include "kvq/Dialect/KVQ/IR/KVQOps.h.inc"

namespace mlir::kvq {

/// The layer `op` names, looked up in `symbols`, or null if it names none
/// (the verifier reports that).
LayerOp lookupLayer(CacheOpInterface op, SymbolTableCollection &symbols);

} // namespace mlir::kvq

#endif // KVQ_DIALECT_KVQ_IR_KVQOPS_H
