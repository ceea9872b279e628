//===- InitAllKVQ.h - register kvq dialects and passes ----------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// One entry point for tools and model compilers: add kvq's dialect to a
// registry and register its passes and pipelines. Nothing here keeps state
// beyond MLIR's own pass registry.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_INITALLKVQ_H
#define KVQ_INITALLKVQ_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::kvq {

/// Adds the kvq dialect, and the upstream dialects kvq's passes create, to
/// `registry`.
void registerAllKVQDialects(DialectRegistry &registry);

/// Registers every kvq pass and pipeline with the global pass registry (for
/// command-line tools; libraries can create the passes directly).
void registerAllKVQPasses();

} // namespace mlir::kvq

#endif // KVQ_INITALLKVQ_H
