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
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallBitVector.h"
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

/// Whether the store can absorb `op`, its uses aside, as a reindexing of
/// its inputs: a `tensor.extract_slice` (any offsets and strides, rank-
/// reducing or not) or a `tensor.concat` whose inputs have static, non-zero
/// sizes along the concatenated dimension.
static bool isFusibleReindexing(Operation *op) {
  if (isa<tensor::ExtractSliceOp>(op))
    return true;
  auto concat = dyn_cast<tensor::ConcatOp>(op);
  return concat && llvm::all_of(concat.getInputs(), [&](Value input) {
           int64_t size = cast<RankedTensorType>(input.getType())
                              .getDimSize(concat.getDim());
           return !ShapedType::isDynamic(size) && size > 0;
         });
}

/// The tensors whose elements `op` (a fusible producer) reads.
static SmallVector<Value> getProducerSources(Operation *op) {
  SmallVector<Value> sources;
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
    for (OpOperand *input : linalgOp.getDpsInputOperands())
      sources.push_back(input->get());
    linalgOp.getBlock()->walk([&](tensor::ExtractOp extract) {
      sources.push_back(extract.getTensor());
    });
  } else if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
    sources.push_back(slice.getSource());
  } else {
    llvm::append_range(sources, cast<tensor::ConcatOp>(op).getInputs());
  }
  return sources;
}

/// The producers to fuse into `store`: the fusible linalg ops, slices and
/// concatenations in the store's block that K and V depend on, through
/// inputs and `tensor.extract` sources, whose result only the store and
/// other fused producers use. Users come before their producers.
static SmallVector<Operation *> collectFusedProducers(CacheStoreOp store) {
  Block *block = store->getBlock();
  llvm::SetVector<Operation *> candidates;
  SmallVector<Operation *> worklist;
  auto visit = [&](Value value) {
    Operation *op = value.getDefiningOp();
    if (!op || op->getBlock() != block)
      return;
    auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
    bool fusible =
        linalgOp ? isFusibleProducer(linalgOp) : isFusibleReindexing(op);
    if (fusible && candidates.insert(op))
      worklist.push_back(op);
  };
  visit(store.getKey());
  visit(store.getValue());
  while (!worklist.empty())
    for (Value source : getProducerSources(worklist.pop_back_val()))
      visit(source);
  SmallVector<Operation *> ordered(candidates.begin(), candidates.end());
  llvm::sort(ordered,
             [](Operation *a, Operation *b) { return b->isBeforeInBlock(a); });
  llvm::SmallPtrSet<Operation *, 8> fused;
  SmallVector<Operation *> producers;
  for (Operation *op : ordered) {
    bool onlyFusedUsers = llvm::all_of(op->getUsers(), [&](Operation *user) {
      Operation *top = block->findAncestorOpInBlock(*user);
      return top == store.getOperation() || fused.contains(top);
    });
    if (!onlyFusedUsers)
      continue;
    fused.insert(op);
    producers.push_back(op);
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

private:
  Value atSlice(tensor::ExtractSliceOp slice, ValueRange indices);
  Value atConcat(tensor::ConcatOp concat, ValueRange indices);
};
} // namespace

/// Element `indices` of a slice: its source at offset + stride * index in
/// each kept dimension, at the offset in each dropped one.
Value ProducerInliner::atSlice(tensor::ExtractSliceOp slice,
                               ValueRange indices) {
  llvm::SmallBitVector dropped = slice.getDroppedDims();
  SmallVector<Value> position;
  auto next = indices.begin();
  for (auto [dim, offset, stride] :
       llvm::enumerate(slice.getMixedOffsets(), slice.getMixedStrides())) {
    if (dropped.test(dim)) {
      position.push_back(getValueOrCreateConstantIndexOp(b, loc, offset));
      continue;
    }
    Value sourceIndex = *next++;
    if (!isConstantIntValue(stride, 1))
      sourceIndex = arith::MulIOp::create(
          b, loc, sourceIndex, getValueOrCreateConstantIndexOp(b, loc, stride));
    if (!isZeroInteger(offset))
      sourceIndex = arith::AddIOp::create(
          b, loc, sourceIndex, getValueOrCreateConstantIndexOp(b, loc, offset));
    position.push_back(sourceIndex);
  }
  return at(slice.getSource(), position);
}

/// Element `indices` of a concatenation: each input's element at the
/// index within that input is computed, and the one whose range holds the
/// index selected. An input of size n starting at c is read at
/// (i + n - c mod n) mod n: the index within it inside its range, an
/// index in bounds outside (the value the select drops).
Value ProducerInliner::atConcat(tensor::ConcatOp concat, ValueRange indices) {
  const int64_t dim = concat.getDim();
  Value index = indices[dim];
  Value result;
  int64_t start = 0;
  for (Value input : concat.getInputs()) {
    int64_t size = cast<RankedTensorType>(input.getType()).getDimSize(dim);
    SmallVector<Value> position(indices.begin(), indices.end());
    Value sizeValue = arith::ConstantIndexOp::create(b, loc, size);
    if (int64_t shift = size - start % size; shift != size)
      position[dim] = arith::AddIOp::create(
          b, loc, index, arith::ConstantIndexOp::create(b, loc, shift));
    position[dim] = arith::RemUIOp::create(b, loc, position[dim], sizeValue);
    Value element = at(input, position);
    if (result) {
      Value before =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, index,
                                arith::ConstantIndexOp::create(b, loc, start));
      result = arith::SelectOp::create(b, loc, before, result, element);
    } else {
      result = element;
    }
    start += size;
  }
  return result;
}

Value ProducerInliner::at(Value tensor, ValueRange indices) {
  Operation *def = tensor.getDefiningOp();
  if (!def || !fused.contains(def))
    return tensor::ExtractOp::create(b, loc, tensor, indices);
  if (auto slice = dyn_cast<tensor::ExtractSliceOp>(def))
    return atSlice(slice, indices);
  if (auto concat = dyn_cast<tensor::ConcatOp>(def))
    return atConcat(concat, indices);
  auto op = cast<linalg::LinalgOp>(def);
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
  SmallVector<Operation *> producers = collectFusedProducers(store);
  if (producers.empty())
    return failure();
  llvm::SmallPtrSet<Operation *, 8> fused(llvm::from_range, producers);

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
  for (Operation *producer : producers)
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
