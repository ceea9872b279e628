//===- SetTarget.cpp - kvq-set-target pass --------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/Transforms/Passes.h"
#include "kvq/Target/ModuleTarget.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQSETTARGET
#include "kvq/Dialect/KVQ/Transforms/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
struct KVQSetTargetPass final
    : mlir::kvq::impl::KVQSetTargetBase<KVQSetTargetPass> {
  using Base::Base;

  LogicalResult initialize(MLIRContext *ctx) override {
    if (optLevel > 3)
      return emitError(UnknownLoc::get(ctx))
             << "kvq-set-target: opt-level must be 0 to 3, got "
             << optLevel.getValue();
    FailureOr<ModuleTarget> parsed = ModuleTarget::parse(target, chip, [ctx] {
      return emitError(UnknownLoc::get(ctx)) << "kvq-set-target: ";
    });
    if (failed(parsed))
      return failure();
    requested = *parsed;
    return success();
  }

  void runOnOperation() override {
    if (failed(setModuleTarget(getOperation(), requested, optLevel)))
      signalPassFailure();
  }

  ModuleTarget requested;
};
} // namespace
