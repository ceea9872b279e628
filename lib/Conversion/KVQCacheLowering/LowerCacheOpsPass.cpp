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
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Threading.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQLOWERCACHEOPS
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

/// Whether `root` holds a kvq cache op.
[[maybe_unused]] static bool hasCacheOps(Operation *root) {
  return root
      ->walk([](Operation *op) {
        return isa<CacheStoreOp, CacheLoadOp>(op) ? WalkResult::interrupt()
                                                  : WalkResult::advance();
      })
      .wasInterrupted();
}

/// Replaces each op of `calls` with its call (KVQCacheFunctions) on MLIR's
/// thread pool, one task per top-level op (function) of `module`, as a
/// function-anchored pass would: a rewrite stays inside its function and
/// creates no symbol. `calls` is in walk order, so the ops of a function
/// are contiguous, and the ops of a block in order: the ops of a block
/// share the constants of equal scales.
static void rewriteInParallel(
    ModuleOp module,
    ArrayRef<std::pair<Operation *, KVQCacheCall>> calls) {
  auto topLevel = [&](Operation *op) {
    while (op->getParentOp() != module)
      op = op->getParentOp();
    return op;
  };
  SmallVector<ArrayRef<std::pair<Operation *, KVQCacheCall>>> groups;
  for (size_t begin = 0, end; begin < calls.size(); begin = end) {
    Operation *root = topLevel(calls[begin].first);
    for (end = begin + 1;
         end < calls.size() && topLevel(calls[end].first) == root; ++end)
      ;
    groups.push_back(calls.slice(begin, end - begin));
  }
  parallelForEach(module.getContext(), groups, [](auto group) {
    IRRewriter rewriter(group.front().first->getContext());
    KVQCacheFunctions::ScaleConstants constants;
    for (const auto &[op, call] : group)
      KVQCacheFunctions::replaceWithCall(rewriter, op, call, &constants);
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
                         << "', expected auto, fma or divf";
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

    // The functions first: creating one adds to the module's body, which
    // the parallel rewrite below must not do.
    KVQCacheFunctions functions(*kvqTarget, loweringOptions);
    SmallVector<std::pair<Operation *, KVQCacheCall>> calls =
        functions.createAll(module);
    rewriteInParallel(module, calls);
    assert(!hasCacheOps(module) &&
           "checkCacheOpsLowerable accepted an op createAll could not lower");
    eraseUnusedLayers(module);
  }

  std::shared_ptr<KVQTarget> kvqTarget;
  KVQCacheLoweringOptions loweringOptions;
};
} // namespace
