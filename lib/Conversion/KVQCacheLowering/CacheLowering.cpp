//===- CacheLowering.cpp - patterns and the lowering driver ---------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"
#include "kvq/Target/ModuleTarget.h"

#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Threading.h"
#include "llvm/ADT/DenseSet.h"

using namespace mlir;
using namespace mlir::kvq;

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

namespace {
/// Any cache op (CacheOpInterface) to a call of its function.
struct LowerCacheOp final : OpInterfaceRewritePattern<CacheOpInterface> {
  LowerCacheOp(MLIRContext *ctx, KVQCacheFunctions &functions)
      : OpInterfaceRewritePattern(ctx), functions(functions) {}

  LogicalResult matchAndRewrite(CacheOpInterface op,
                                PatternRewriter &rewriter) const override {
    if (failed(functions.replaceWithCall(rewriter, op)))
      return rewriter.notifyMatchFailure(
          op, "layer without resolved scales or unsupported activation type "
              "(see checkCacheOpsLowerable)");
    return success();
  }

  KVQCacheFunctions &functions;
};
} // namespace

void mlir::kvq::populateKVQCacheLoweringPatterns(RewritePatternSet &patterns,
                                                 KVQCacheFunctions &functions) {
  patterns.add<LowerCacheOp>(patterns.getContext(), functions);
}

//===----------------------------------------------------------------------===//
// Checks and cleanup
//===----------------------------------------------------------------------===//

LogicalResult mlir::kvq::emitUnresolvedLayerError(Operation *op,
                                                  LayerOp layer) {
  InFlightDiagnostic diag = op->emitError()
                            << "cannot lower: layer @" << layer.getSymName()
                            << " has no resolved scales; run kvq-fold-scales "
                               "first";
  diag.attachNote(layer.getLoc())
      << "layer @" << layer.getSymName() << " declared here";
  return diag;
}

LogicalResult mlir::kvq::emitPerHeadLayerError(Operation *op, LayerOp layer) {
  ResolvedScalesAttr resolved = layer.getResolvedScalesAttr();
  InFlightDiagnostic diag =
      op->emitError() << "cannot lower: layer @" << layer.getSymName()
                      << " has per-head scales (" << resolved.getNumHeads()
                      << " KV heads); per-head scales have no kernel yet";
  diag.attachNote(layer.getLoc())
      << "layer @" << layer.getSymName() << " declared here";
  return diag;
}

/// A cache op of a layer with per-head K and V scales quantizes each KV
/// head with its own scale: the op's head dimension (dimension 1 of the
/// activations, 2 of the caches) must be static and the number of scales
/// (after tensor-parallel sharding, kvq-fold-scales tp-size / tp-rank: the
/// rank's heads). Emits the error, with a note at the layer, otherwise.
static LogicalResult checkHeadCount(CacheOpInterface op, LayerOp layer) {
  ResolvedScalesAttr scales = layer.getResolvedScalesAttr();
  if (!layer.isQuantized() || !scales.isPerHead(ScaleKind::K))
    return success();
  for (ShapedType type : {op.getActivationType(), op.getCacheType()}) {
    int64_t dim = type.getRank() - 2;
    if (type.getDimSize(dim) == int64_t(scales.getNumHeads()))
      continue;
    InFlightDiagnostic diag = op->emitError();
    diag << "cannot lower: layer @" << layer.getSymName() << " has "
         << scales.getNumHeads() << " per-head K and V scales, but dimension "
         << dim << " (KV heads) "
         << "of " << type << " is ";
    if (type.isDynamicDim(dim))
      diag << "dynamic; per-head scales need a static head count";
    else
      diag << type.getDimSize(dim) << "; fold the checkpoint for this shard "
           << "(kvq-fold-scales tp-size, tp-rank)";
    diag.attachNote(layer.getLoc())
        << "layer @" << layer.getSymName() << " declared here";
    return diag;
  }
  return success();
}

LogicalResult mlir::kvq::checkCacheOpsLowerable(Operation *root) {
  bool ok = true;
  SymbolTableCollection symbols;
  root->walk([&](CacheOpInterface op) {
    if (!isa<MemRefType>(op.getCacheType())) {
      op->emitError() << "cannot lower the tensor form of '" << op->getName()
                      << "': bufferize it first (one-shot-bufferize)";
      ok = false;
      return;
    }
    LayerOp layer = lookupLayer(op, symbols);
    Type actElem = op.getActivationType().getElementType();
    if (!layer)
      return; // the verifier reports unknown layers
    if (!layer.getResolvedScalesAttr()) {
      (void)emitUnresolvedLayerError(op, layer);
      ok = false;
      return;
    }
    if (failed(checkHeadCount(op, layer))) {
      ok = false;
      return;
    }
    if (!isa<Float16Type, BFloat16Type, Float32Type>(actElem)) {
      InFlightDiagnostic diag = op->emitError()
                                << "cannot lower: activation element type "
                                << actElem << " is not supported, expected "
                                << "f16, bf16 or f32";
      diag.attachNote(layer.getLoc())
          << "layer @" << layer.getSymName() << " declared here";
      ok = false;
    }
  });
  return success(ok);
}

void mlir::kvq::eraseUnusedLayers(Operation *root) {
  SmallVector<LayerOp> layers;
  root->walk([&](LayerOp layer) { layers.push_back(layer); });
  // Every name any symbol reference mentions, in one walk (calling
  // symbolKnownUseEmpty per layer walks the module once per layer).
  // Types hold no symbol references: the walks skip them. The inherent
  // attributes of an op with properties are read one by one:
  // getAttrDictionary() would build and unique a new dictionary per op.
  llvm::DenseSet<StringAttr> referenced;
  auto visit = [&](Attribute attr) {
    attr.walk<WalkOrder::PreOrder>(
        [&](SymbolRefAttr ref) {
          referenced.insert(ref.getRootReference());
          for (FlatSymbolRefAttr nested : ref.getNestedReferences())
            referenced.insert(nested.getAttr());
        },
        [](Type) { return WalkResult::skip(); });
  };
  root->walk([&](Operation *op) {
    if (!op->getPropertiesStorageSize()) {
      visit(op->getAttrDictionary());
      return;
    }
    for (StringAttr name : op->getName().getAttributeNames())
      if (std::optional<Attribute> attr = op->getInherentAttr(name.getValue()))
        if (*attr)
          visit(*attr);
    visit(op->getDiscardableAttrDictionary());
  });
  IRRewriter rewriter(root->getContext());
  for (LayerOp layer : layers)
    if (!referenced.contains(layer.getSymNameAttr()))
      rewriter.eraseOp(layer);
}

/// Replaces each op of `calls` with its call (KVQCacheFunctions) on MLIR's
/// thread pool, one task per top-level op (function) of `module`, as a
/// function-anchored pass would: a rewrite stays inside its function and
/// creates no symbol. `calls` is in walk order, so the ops of a function
/// are contiguous, and the ops of a block in order: the ops of a block
/// share the constants of equal scales.
static void
rewriteInParallel(ModuleOp module,
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

LogicalResult
mlir::kvq::lowerKVQCacheOps(ModuleOp module, const KVQTarget &target,
                            const KVQCacheLoweringOptions &options) {
  if (failed(checkCacheOpsLowerable(module)))
    return failure();
  // The functions first: creating one adds to the module's body, which
  // the parallel rewrite below must not do.
  KVQCacheFunctions functions(target, options);
  rewriteInParallel(module, functions.createAll(module));
  eraseUnusedLayers(module);
  // The kernels' gpu.module (stated by kvq-set-target before the functions
  // existed) goes last, where gpu-kernel-outlining puts a new one.
  if (auto kernels = SymbolTable::lookupSymbolIn(module, kKernelModuleName))
    kernels->moveBefore(module.getBody(), module.getBody()->end());
  return success();
}
