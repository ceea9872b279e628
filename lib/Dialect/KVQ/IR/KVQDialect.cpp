//===- KVQDialect.cpp - kvq dialect ---------------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQDialect.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

using namespace mlir;
using namespace mlir::kvq;

#include "kvq/Dialect/KVQ/IR/KVQDialect.cpp.inc"

void KVQDialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "kvq/Dialect/KVQ/IR/KVQOps.cpp.inc"
      >();
}
