//===- KVQEnums.cpp - kvq enums -------------------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQEnums.h"

#include "llvm/ADT/StringSwitch.h"

#include "kvq/Dialect/KVQ/IR/KVQEnums.cpp.inc"
