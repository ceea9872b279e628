//===- Passes.h - kvq passes ------------------------------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_H
#define KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_H

#include "kvq/Dialect/KVQ/IR/KVQOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::kvq {

#define GEN_PASS_DECL
#include "kvq/Dialect/KVQ/Transforms/Passes.h.inc"

/// Writes one row per kvq.layer of `module` (symbol, prefix, cache dtype,
/// the four scales with the rule that produced each, or the raw checkpoint
/// values before folding) as an aligned table (`json` false) or as a JSON
/// array of objects (`json` true).
void printLayerReport(ModuleOp module, llvm::raw_ostream &os, bool json);

#define GEN_PASS_REGISTRATION
#include "kvq/Dialect/KVQ/Transforms/Passes.h.inc"

} // namespace mlir::kvq

#endif // KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_H
