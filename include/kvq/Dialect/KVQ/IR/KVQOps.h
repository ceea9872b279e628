//===- KVQOps.h - kvq operations ----------------------------------*- C++ -*-===//
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
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "kvq/Dialect/KVQ/IR/KVQOps.h.inc"

#endif // KVQ_DIALECT_KVQ_IR_KVQOPS_H
