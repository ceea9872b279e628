//===- LowerAttentionPass.cpp - the kvq-lower-attention pass --------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQAttentionLowering.h"
#include "kvq/Conversion/Passes.h"
#include "kvq/Target/ModuleTarget.h"

#include "mlir/Dialect/AMDGPU/IR/AMDGPUDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQLOWERATTENTION
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
struct KVQLowerAttentionPass final
    : kvq::impl::KVQLowerAttentionBase<KVQLowerAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<ModuleTarget> target =
        resolveModuleTarget(module, std::nullopt, "kvq-lower-attention");
    if (failed(target) ||
        failed(lowerKVQAttention(module, *createKVQTarget(*target))))
      signalPassFailure();
  }
};
} // namespace
