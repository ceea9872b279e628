//===- KVQDialect.h - kvq dialect -------------------------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQDIALECT_H
#define KVQ_DIALECT_KVQ_IR_KVQDIALECT_H

#include "mlir/IR/Dialect.h"

#include "kvq/Dialect/KVQ/IR/KVQDialect.h.inc"

#endif // KVQ_DIALECT_KVQ_IR_KVQDIALECT_H
