//===- InitAllKVQ.cpp - register kvq dialects and passes ------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/InitAllKVQ.h"

#include "kvq/Conversion/Passes.h"
#include "kvq/Dialect/KVQ/IR/KVQDialect.h"
#include "kvq/Dialect/KVQ/Transforms/BufferizableOpInterfaceImpl.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"

void mlir::kvq::registerAllKVQDialects(DialectRegistry &registry) {
  registry.insert<KVQDialect>();
  registerBufferizableOpInterfaceExternalModels(registry);
}

void mlir::kvq::registerAllKVQPasses() {
  registerKVQPasses();
  registerKVQConversionPasses();
}
