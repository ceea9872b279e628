//===- BufferizableOpInterfaceImpl.h - bufferizing kvq ops ------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
#define KVQ_DIALECT_KVQ_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::kvq {

/// Registers the BufferizableOpInterface of the tensor forms of
/// `kvq.cache_store`, `kvq.cache_load` and `kvq.paged_attention`
/// (destination-passing: the caches, respectively the outputs, bufferize in
/// place into the results), for one-shot-bufferize. registerAllKVQDialects
/// calls it.
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

} // namespace mlir::kvq

#endif // KVQ_DIALECT_KVQ_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
