//===- LowerCacheOpsPass.cpp - the kvq-lower-cache-ops pass ---------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"
#include "kvq/Conversion/Passes.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/Dialect/AMDGPU/IR/AMDGPUDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Threading.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQLOWERCACHEOPS
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

/// Converts the cache ops of each top-level isolated op (function) of
/// `module` on MLIR's thread pool, as a function-anchored pass would: a
/// rewrite stays inside its function and only reads the layer, a
/// module-level symbol that no rewrite changes. Diagnostics keep the order
/// of a serial run. Falls back to one conversion of the whole module when a
/// cache op is not inside such an op.
static LogicalResult
convertFunctionsInParallel(ModuleOp module, const ConversionTarget &legality,
                           const FrozenRewritePatternSet &patterns) {
  SmallVector<Operation *> roots;
  for (Operation &op : module.getBody()->getOperations()) {
    bool hasCacheOps = op.walk([](Operation *inner) {
                           return isa<CacheStoreOp, CacheLoadOp>(inner)
                                      ? WalkResult::interrupt()
                                      : WalkResult::advance();
                         }).wasInterrupted();
    if (!hasCacheOps)
      continue;
    if (!op.hasTrait<OpTrait::IsIsolatedFromAbove>())
      return applyPartialConversion(module, legality, patterns);
    roots.push_back(&op);
  }
  MLIRContext *ctx = module.getContext();
  ParallelDiagnosticHandler diagnostics(ctx);
  return failableParallelForEach(
      ctx, llvm::seq<size_t>(0, roots.size()), [&](size_t index) {
        diagnostics.setOrderIDForThread(index);
        LogicalResult result =
            applyPartialConversion(roots[index], legality, patterns);
        diagnostics.eraseOrderIDForThread();
        return result;
      });
}

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
                         << "', expected auto or divf";
    loweringOptions.threadsPerBlock = threadsPerBlock;
    loweringOptions.quantizeDivision = *division;
    FailureOr<std::unique_ptr<KVQTarget>> created =
        createKVQTarget(target, chip, emitError);
    if (failed(created))
      return failure();
    kvqTarget = std::move(*created);
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
    if (failed(checkCacheOpsLowerable(module)))
      return signalPassFailure();

    RewritePatternSet patterns(&getContext());
    populateKVQCacheLoweringPatterns(patterns, *kvqTarget, loweringOptions);
    ConversionTarget legality(getContext());
    legality.addIllegalOp<CacheStoreOp, CacheLoadOp>();
    legality.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    FrozenRewritePatternSet frozen(std::move(patterns));
    if (failed(convertFunctionsInParallel(module, legality, frozen)))
      return signalPassFailure();
    eraseUnusedLayers(module);
  }

  std::shared_ptr<KVQTarget> kvqTarget;
  KVQCacheLoweringOptions loweringOptions;
};
} // namespace
