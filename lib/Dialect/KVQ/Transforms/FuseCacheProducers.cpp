//===- FuseCacheProducers.cpp - kvq-fuse-cache-producers ------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The producers of a store's K and V (elementwise linalg ops, RoPE as a
// gather-style linalg.generic) become the region of a
// kvq.fused_cache_store: the producers' bodies inlined at the store's
// element (t, h, d), as upstream elementwise fusion inlines a producer's
// body into its consumer's. The rules and the reasons are in
// the pass's description (Passes.td).
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/Transforms/FuseCacheProducers.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"

#include "mlir/Dialect/Affine/Utils.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQFUSECACHEPRODUCERS
#include "kvq/Dialect/KVQ/Transforms/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

/// Whether the store can absorb `op`, its uses aside: a linalg op on
/// tensors with only parallel loops and one result whose indexing map is a
/// permutation (so each result element is the body at one loop point),
/// indexing maps without symbols or non-constant divisors, and a body that
/// has no regions, only reads memory and does not read the output.
static bool isFusibleProducer(linalg::LinalgOp op) {
  if (!op.hasPureTensorSemantics() || op->getNumResults() != 1 ||
      op.getNumDpsInits() != 1 || op.getNumParallelLoops() != op.getNumLoops())
    return false;
  if (!op.getIndexingMapMatchingResult(cast<OpResult>(op->getResult(0)))
           .isPermutation())
    return false;
  // Maps the pass can expand to arith: no symbols, constant divisors.
  for (AffineMap map : op.getIndexingMapsArray())
    if (map.getNumSymbols() != 0 ||
        !llvm::all_of(map.getResults(),
                      [](AffineExpr e) { return e.isPureAffine(); }))
      return false;
  Block *body = op.getBlock();
  if (!body || op.payloadUsesValueFromOperand(op.getDpsInitOperand(0)))
    return false;
  return llvm::all_of(body->without_terminator(), [](Operation &inner) {
    return inner.getNumRegions() == 0 &&
           (isa<tensor::ExtractOp, linalg::IndexOp>(inner) ||
            isMemoryEffectFree(&inner));
  });
}

/// The producers to fuse into `store`: the fusible linalg ops in the
/// store's block that K and V depend on, through inputs and
/// `tensor.extract` sources, whose result only the store and other fused
/// producers use. Users come before their producers.
static SmallVector<linalg::LinalgOp> collectFusedProducers(CacheStoreOp store) {
  Block *block = store->getBlock();
  llvm::SetVector<Operation *> candidates;
  SmallVector<linalg::LinalgOp> worklist;
  auto visit = [&](Value value) {
    auto op = value.getDefiningOp<linalg::LinalgOp>();
    if (op && op->getBlock() == block && isFusibleProducer(op) &&
        candidates.insert(op))
      worklist.push_back(op);
  };
  visit(store.getKey());
  visit(store.getValue());
  while (!worklist.empty()) {
    linalg::LinalgOp op = worklist.pop_back_val();
    for (OpOperand *input : op.getDpsInputOperands())
      visit(input->get());
    op.getBlock()->walk(
        [&](tensor::ExtractOp extract) { visit(extract.getTensor()); });
  }
  SmallVector<Operation *> ordered(candidates.begin(), candidates.end());
  llvm::sort(ordered,
             [](Operation *a, Operation *b) { return b->isBeforeInBlock(a); });
  llvm::SmallPtrSet<Operation *, 8> fused;
  SmallVector<linalg::LinalgOp> producers;
  for (Operation *op : ordered) {
    bool onlyFusedUsers = llvm::all_of(op->getUsers(), [&](Operation *user) {
      Operation *top = block->findAncestorOpInBlock(*user);
      return top == store.getOperation() || fused.contains(top);
    });
    if (!onlyFusedUsers)
      continue;
    fused.insert(op);
    producers.push_back(cast<linalg::LinalgOp>(op));
  }
  return producers;
}

namespace {
/// Emits, at a builder's insertion point, the scalar value of a tensor at
/// given indices: the fused producers' bodies inlined, everything else a
/// `tensor.extract`.
struct ProducerInliner {
  OpBuilder &b;
  Location loc;
  const llvm::SmallPtrSetImpl<Operation *> &fused;

  Value at(Value tensor, ValueRange indices);
};
} // namespace

Value ProducerInliner::at(Value tensor, ValueRange indices) {
  auto op = tensor.getDefiningOp<linalg::LinalgOp>();
  if (!op || !fused.contains(op))
    return tensor::ExtractOp::create(b, loc, tensor, indices);
  // The loop point of the element: the result map is a permutation.
  AffineMap resultMap = op.getIndexingMapMatchingResult(cast<OpResult>(tensor));
  SmallVector<Value> loops(op.getNumLoops());
  for (unsigned i = 0, e = resultMap.getNumResults(); i < e; ++i)
    loops[resultMap.getDimPosition(i)] = indices[i];
  auto expand = [&](AffineExpr expr) -> Value {
    if (auto dim = dyn_cast<AffineDimExpr>(expr))
      return loops[dim.getPosition()];
    return affine::expandAffineExpr(b, loc, expr, loops, ValueRange{});
  };
  Block *body = op.getBlock();
  IRMapping mapping;
  for (OpOperand *input : op.getDpsInputOperands()) {
    BlockArgument arg = op.getMatchingBlockArgument(input);
    if (arg.use_empty())
      continue;
    Value source = input->get();
    if (!isa<RankedTensorType>(source.getType())) {
      mapping.map(arg, source); // a scalar operand (linalg.fill's value)
      continue;
    }
    SmallVector<Value> position = llvm::map_to_vector(
        op.getMatchingIndexingMap(input).getResults(), expand);
    mapping.map(arg, at(source, position));
  }
  for (Operation &inner : body->without_terminator()) {
    if (auto index = dyn_cast<linalg::IndexOp>(inner)) {
      mapping.map(index.getResult(), loops[index.getDim()]);
      continue;
    }
    if (auto extract = dyn_cast<tensor::ExtractOp>(inner)) {
      SmallVector<Value> position =
          llvm::map_to_vector(extract.getIndices(), [&](Value index) {
            return mapping.lookupOrDefault(index);
          });
      mapping.map(extract.getResult(),
                  at(mapping.lookupOrDefault(extract.getTensor()), position));
      continue;
    }
    b.clone(inner, mapping);
  }
  return mapping.lookupOrDefault(body->getTerminator()->getOperand(
      cast<OpResult>(tensor).getResultNumber()));
}

FailureOr<FusedCacheStoreOp>
mlir::kvq::fuseCacheStoreProducers(RewriterBase &rewriter, CacheStoreOp store) {
  if (!isa<TensorType>(store.getKeyCache().getType()))
    return failure();
  SmallVector<linalg::LinalgOp> producers = collectFusedProducers(store);
  if (producers.empty())
    return failure();
  llvm::SmallPtrSet<Operation *, 8> fused;
  for (linalg::LinalgOp producer : producers)
    fused.insert(producer);

  Location loc = store.getLoc();
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(store);
  auto op = FusedCacheStoreOp::create(
      rewriter, loc, store.getResultTypes(), store.getLayerAttr(),
      store.getKeyCache(), store.getValueCache(), store.getSlotMapping());
  Type index = rewriter.getIndexType();
  Block *block = rewriter.createBlock(&op.getBody(), {}, {index, index, index},
                                      {loc, loc, loc});
  ProducerInliner inliner{rewriter, loc, fused};
  Value key = inliner.at(store.getKey(), block->getArguments());
  Value value = inliner.at(store.getValue(), block->getArguments());
  YieldOp::create(rewriter, loc, ValueRange{key, value});
  rewriter.replaceOp(store, op.getResults());
  for (linalg::LinalgOp producer : producers)
    rewriter.eraseOp(producer);
  return op;
}

namespace {
struct FuseCacheProducersPattern final : OpRewritePattern<CacheStoreOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CacheStoreOp store,
                                PatternRewriter &rewriter) const override {
    if (failed(fuseCacheStoreProducers(rewriter, store)))
      return rewriter.notifyMatchFailure(
          store, "memref form, or no fusible producer of K or V");
    return success();
  }
};

struct KVQFuseCacheProducersPass final
    : mlir::kvq::impl::KVQFuseCacheProducersBase<KVQFuseCacheProducersPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseCacheProducersPatterns(patterns);
    // Only the stores and their producers change: no folding, no constant
    // CSE, no region simplification of the rest of the module.
    GreedyRewriteConfig config;
    config.enableFolding(false).enableConstantCSE(false);
    config.setRegionSimplificationLevel(GreedySimplifyRegionLevel::Disabled);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      signalPassFailure();
  }
};
} // namespace

void mlir::kvq::populateFuseCacheProducersPatterns(
    RewritePatternSet &patterns) {
  patterns.add<FuseCacheProducersPattern>(patterns.getContext());
}
