//===- LowerCacheOpsPass.cpp - the kvq-lower-cache-ops pass ---------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"
#include "kvq/Conversion/Passes.h"
#include "kvq/Target/ModuleTarget.h"

#include "mlir/Dialect/AMDGPU/IR/AMDGPUDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQLOWERCACHEOPS
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
struct KVQLowerCacheOpsPass final
    : kvq::impl::KVQLowerCacheOpsBase<KVQLowerCacheOpsPass> {
  using Base::Base;

  LogicalResult initialize(MLIRContext *ctx) override {
    auto emitError = [ctx]() -> InFlightDiagnostic {
      InFlightDiagnostic diag = mlir::emitError(UnknownLoc::get(ctx));
      diag << "kvq-lower-cache-ops: ";
      return diag;
    };
    if (threadsPerBlock < 32 || threadsPerBlock > 1024 ||
        threadsPerBlock % 32 != 0)
      return emitError() << "threads-per-block must be a multiple of 32 in "
                            "[32, 1024], got "
                         << threadsPerBlock.getValue();
    std::optional<QuantizeDivision> division =
        parseQuantizeDivision(quantizeDivision);
    if (!division)
      return emitError() << "unknown quantize-division '"
                         << quantizeDivision.getValue()
                         << "', expected auto, fma or divf";
    loweringOptions.threadsPerBlock = threadsPerBlock;
    loweringOptions.quantizeDivision = *division;
    if (target.empty() && chip.empty())
      return success();
    FailureOr<ModuleTarget> parsed =
        ModuleTarget::parse(target, chip, emitError);
    if (failed(parsed))
      return failure();
    requested = *parsed;
    return success();
  }

  void getDependentDialects(DialectRegistry &registry) const override {
    Base::getDependentDialects(registry);
    // The kvq-to-ptx / kvq-to-amdgcn pipelines end in gpu-module-to-binary,
    // which needs the GPU dialects' LLVM IR translations; register them here
    // so that the pipelines also work in tools that do not (as mlir-opt
    // does) register them up front.
    registerAllGPUToLLVMIRTranslations(registry);
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    FailureOr<ModuleTarget> resolved =
        resolveModuleTarget(module, requested, "kvq-lower-cache-ops");
    if (failed(resolved))
      return signalPassFailure();
    // A GPU target is stated in the module, so that the kernels' gpu.module
    // carries it through outlining and serialization.
    if (resolved->isGPU() && failed(setModuleTarget(module, *resolved)))
      return signalPassFailure();
    if (failed(lowerKVQCacheOps(module, *createKVQTarget(*resolved),
                                loweringOptions)))
      signalPassFailure();
  }

  std::optional<ModuleTarget> requested;
  KVQCacheLoweringOptions loweringOptions;
};
} // namespace
