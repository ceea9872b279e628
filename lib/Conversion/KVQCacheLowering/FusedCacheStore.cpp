//===- FusedCacheStore.cpp - the regions of a fused store in its code -----===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// A kvq.fused_cache_store lowers as kvq.cache_store does (one function, the
// same CPU loops and GPU kernel); only the activations differ: instead of
// loads of the K and V memrefs, each element's K and V are the op's region,
// cloned at the element's (t, h, d) inside the loops or the kernel. The
// values the region reads from above become arguments of the function (and
// parameters of the kernel); constants are cloned instead.
//
// A GPU work item computes `width` consecutive elements: what does not
// depend on d is cloned once for them, and a load that reads one aligned
// vector across them (found by evaluating its index for every d at
// compile time, WorkItemPlan) is one vector load.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Support/Alignment.h"
#include "llvm/Support/MathExtras.h"

#include <optional>

using namespace mlir;
using namespace mlir::kvq;

/// The values the region of `op` reads from above, in order of first use,
/// and the constants among them.
static void collectCaptured(FusedCacheStoreOp op,
                            llvm::SetVector<Value> &operands,
                            llvm::SetVector<Value> &constants) {
  llvm::SetVector<Value> used;
  getUsedValuesDefinedAbove(op.getBody(), used);
  for (Value value : used) {
    Operation *def = value.getDefiningOp();
    if (def && def->hasTrait<OpTrait::ConstantLike>())
      constants.insert(value);
    else
      operands.insert(value);
  }
}

SmallVector<Value> mlir::kvq::getFusedStoreOperands(FusedCacheStoreOp op) {
  llvm::SetVector<Value> operands, constants;
  collectCaptured(op, operands, constants);
  return operands.takeVector();
}

/// Whether the ops of a work item may share one clone of `op`: it has no
/// region and at most reads memory, which the region never writes.
static bool isShareable(Operation &op) {
  return op.getNumRegions() == 0 &&
         (isa<memref::LoadOp>(op) || isMemoryEffectFree(&op));
}

/// The values of `index` for d = 0 .. size - 1, where `index` is computed
/// in `body` from the region's d and constants alone, by folding each op
/// of its slice (`slice`: those ops in block order) on constants; none
/// where it depends on anything else (t, h, a loaded or captured value)
/// or an op does not fold to a constant. Index arithmetic folds with 64
/// bits, the index width of kvq's lowerings.
static std::optional<SmallVector<int64_t>>
evaluateOnHead(Value index, Block &body, int64_t size,
               SmallVectorImpl<Operation *> &slice) {
  BlockArgument d = body.getArgument(2);
  DenseMap<Value, Attribute> known;
  llvm::SetVector<Operation *> ops;
  SmallVector<Value> worklist = {index};
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    if (value == d || known.contains(value))
      continue;
    Operation *def = value.getDefiningOp();
    Attribute constant;
    if (matchPattern(value, m_Constant(&constant))) {
      known[value] = constant;
      // One defined in the region is cloned with the slice (those above
      // are the function's).
      if (def->getBlock() == &body)
        ops.insert(def);
      continue;
    }
    if (!def || def->getBlock() != &body || def->getNumRegions() != 0 ||
        !isMemoryEffectFree(def))
      return std::nullopt;
    if (ops.insert(def))
      llvm::append_range(worklist, def->getOperands());
  }
  slice.assign(ops.begin(), ops.end());
  llvm::sort(slice,
             [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });

  SmallVector<int64_t> values;
  for (int64_t i = 0; i < size; ++i) {
    known[d] = IntegerAttr::get(d.getType(), i);
    for (Operation *op : slice) {
      if (op->hasTrait<OpTrait::ConstantLike>())
        continue;
      SmallVector<Attribute> operands = llvm::map_to_vector(
          op->getOperands(), [&](Value v) { return known.lookup(v); });
      // As SCCP: a fold in place (no results) is undone, the op is the
      // region's.
      SmallVector<Value> originalOperands(op->getOperands());
      DictionaryAttr originalAttrs = op->getAttrDictionary();
      SmallVector<OpFoldResult> folded;
      if (failed(op->fold(operands, folded)) || folded.empty()) {
        op->setOperands(originalOperands);
        op->setAttrs(originalAttrs);
        return std::nullopt;
      }
      for (auto [result, fold] : llvm::zip(op->getResults(), folded)) {
        Attribute attr = dyn_cast<Attribute>(fold);
        if (!attr) // folded to one of its operands
          attr = known.lookup(cast<Value>(fold));
        if (!attr)
          return std::nullopt;
        known[result] = attr;
      }
    }
    auto value = dyn_cast_or_null<IntegerAttr>(known.lookup(index));
    if (!value)
      return std::nullopt;
    values.push_back(value.getValue().getSExtValue());
  }
  return values;
}

std::optional<SmallVector<int64_t>>
mlir::kvq::getWorkItemPermutation(ArrayRef<int64_t> index, int64_t width,
                                  int64_t rowSize) {
  int64_t size = index.size();
  if (width < 1 || size % width != 0 || rowSize % width != 0)
    return std::nullopt;
  if (!llvm::all_of(index, [&](int64_t i) { return i >= 0 && i < rowSize; }))
    return std::nullopt;
  SmallVector<int64_t> perm;
  for (int64_t d0 = 0; d0 < size; d0 += width) {
    int64_t base = index[d0] - index[d0] % width;
    SmallVector<int64_t> offsets = llvm::map_to_vector(
        index.slice(d0, width), [&](int64_t i) { return i - base; });
    if (d0 == 0) {
      // Offsets in [0, width), each once: a permutation.
      SmallVector<bool> taken(width, false);
      for (int64_t offset : offsets) {
        if (offset < 0 || offset >= width || taken[offset])
          return std::nullopt;
        taken[offset] = true;
      }
      perm = std::move(offsets);
    } else if (offsets != perm) {
      return std::nullopt;
    }
  }
  return perm;
}

namespace {
/// A load of the region that a work item does as one vector load.
struct VectorLoad {
  /// Element i of the work item takes element perm[i] of the vector.
  SmallVector<int64_t> perm;
  /// The ops that compute the innermost index from d (and constants).
  SmallVector<Operation *> slice;
};

/// How the region of `op` is emitted for a work item of `width`
/// consecutive elements d0 .. d0 + width - 1.
///
/// A load whose innermost index is a function f of d alone and whose other
/// indices do not depend on d reads, across a work item, the elements
/// f(d0 + i): f is evaluated for every d of the head at compile time
/// (evaluateOnHead), and where each work item reads one aligned vector in
/// the same order (getWorkItemPermutation), the load becomes that vector
/// load. This takes in K's own row (f(d) = d), RoPE's partner element
/// ((d + D/2) mod D, d xor 1: no spelling is matched, only the values) and
/// a table row at a position read from memory (the other index: one
/// scalar load per work item). Every other load stays one per element.
///
/// The ops that do not depend on d (the position load, its cast) are
/// cloned once per work item, the others once per element; ops that only
/// vector loads' indices use are not cloned per element.
struct WorkItemPlan {
  WorkItemPlan(FusedCacheStoreOp op, int64_t width, const IRMapping &outer);

  llvm::MapVector<Operation *, VectorLoad> vectorLoads;
  /// Ops the yielded values need, with the other indices of the vector
  /// loads (not their innermost index).
  llvm::SmallPtrSet<Operation *, 32> needed;
  /// Ops no element depends on d through: cloned once.
  llvm::SmallPtrSet<Operation *, 32> shared;
};
} // namespace

WorkItemPlan::WorkItemPlan(FusedCacheStoreOp op, int64_t width,
                           const IRMapping &outer) {
  Block &body = op.getBody().front();
  DenseSet<Value> varying = {body.getArgument(2)};
  for (Operation &inner : body.without_terminator()) {
    bool onD = llvm::any_of(inner.getOperands(),
                            [&](Value v) { return varying.contains(v); });
    if (!onD && isShareable(inner))
      shared.insert(&inner);
    else
      varying.insert(inner.result_begin(), inner.result_end());
  }

  ShapedType actType = op.getActivationType();
  int64_t headSize = actType ? actType.getDimSize(2) : ShapedType::kDynamic;
  if (width > 1 && !ShapedType::isDynamic(headSize)) {
    for (auto load : body.getOps<memref::LoadOp>()) {
      MemRefType type = load.getMemRefType();
      Type elem = type.getElementType();
      // (A memref defined in the region cannot be read before it.)
      if (!outer.contains(load.getMemRef()) || !type.getLayout().isIdentity() ||
          type.getRank() == 0 || type.isDynamicDim(type.getRank() - 1) ||
          !elem.isIntOrFloat() || elem.getIntOrFloatBitWidth() % 8 != 0)
        continue;
      ValueRange indices = load.getIndices();
      if (llvm::any_of(indices.drop_back(),
                       [&](Value v) { return varying.contains(v); }))
        continue;
      VectorLoad vector;
      std::optional<SmallVector<int64_t>> index =
          evaluateOnHead(indices.back(), body, headSize, vector.slice);
      if (!index)
        continue;
      std::optional<SmallVector<int64_t>> perm = getWorkItemPermutation(
          *index, width, type.getDimSize(type.getRank() - 1));
      if (!perm)
        continue;
      vector.perm = std::move(*perm);
      vectorLoads.insert({load, std::move(vector)});
    }
  }

  SmallVector<Value> worklist(op.getYield().getValues());
  while (!worklist.empty()) {
    Operation *def = worklist.pop_back_val().getDefiningOp();
    if (!def || def->getBlock() != &body || !needed.insert(def).second)
      continue;
    if (vectorLoads.contains(def)) {
      llvm::append_range(worklist,
                         cast<memref::LoadOp>(def).getIndices().drop_back());
      continue;
    }
    llvm::append_range(worklist, def->getOperands());
    llvm::SetVector<Value> nested;
    getUsedValuesDefinedAbove(def->getRegions(), nested);
    llvm::append_range(worklist, nested);
  }
}

/// Clones `op` with `mapping`; a scalar load of 8 or 16 bytes (an i64
/// position) gets its element's natural alignment: without one, the LLVM
/// translation takes the default data layout's (4 for i64), and NVPTX then
/// reads the element as 32-bit pieces (as readSlot() explains). Smaller
/// elements get theirs from the data layout already.
static void cloneWithAlignment(OpBuilder &b, Operation &op,
                               IRMapping &mapping) {
  Operation *clone = b.clone(op, mapping);
  auto load = dyn_cast<memref::LoadOp>(clone);
  if (!load || load.getAlignment())
    return;
  Type elem = load.getMemRefType().getElementType();
  if (!elem.isIntOrFloat())
    return;
  unsigned bits = elem.getIntOrFloatBitWidth();
  if (bits == 64 || bits == 128)
    load.setAlignment(bits / 8);
}

void mlir::kvq::setFusedProducer(CacheOpPlan &plan, FusedCacheStoreOp op,
                                 ValueRange operands) {
  plan.producerOperands.assign(operands.begin(), operands.end());
  plan.produce = [op](OpBuilder &b, Location loc, ValueRange indices,
                      int64_t width,
                      ValueRange operands) mutable -> std::array<Value, 2> {
    llvm::SetVector<Value> captured, constants;
    collectCaptured(op, captured, constants);
    Block &body = op.getBody().front();
    IRMapping outer;
    outer.map(captured.getArrayRef(), operands);
    for (Value constant : constants)
      b.clone(*constant.getDefiningOp(), outer);
    WorkItemPlan work(op, width, outer);

    // What the elements share, at (t, h, d0).
    IRMapping shared = outer;
    shared.map(body.getArguments(), indices);
    for (Operation &inner : body.without_terminator())
      if (work.shared.contains(&inner) && work.needed.contains(&inner))
        cloneWithAlignment(b, inner, shared);
    DenseMap<Operation *, Value> vectors;
    for (auto &[inner, vector] : work.vectorLoads) {
      if (!work.needed.contains(inner))
        continue;
      auto load = cast<memref::LoadOp>(inner);
      // The innermost index at d0, less perm[0]: the vector's first.
      IRMapping first = shared;
      for (Operation *sliceOp : vector.slice)
        if (!first.contains(sliceOp->getResult(0)))
          b.clone(*sliceOp, first);
      Value base = first.lookup(load.getIndices().back());
      if (vector.perm.front() != 0)
        base = arith::SubIOp::create(
            b, loc, base,
            arith::ConstantIndexOp::create(b, loc, vector.perm.front()));
      SmallVector<Value> position =
          llvm::map_to_vector(load.getIndices().drop_back(), [&](Value v) {
            return shared.lookupOrDefault(v);
          });
      position.push_back(base);
      // Aligned as the row loads of the plain store: `base` is a multiple
      // of `width`, the row size too.
      Type elem = load.getMemRefType().getElementType();
      unsigned bytes = elem.getIntOrFloatBitWidth() / 8;
      vectors[inner] = vector::LoadOp::create(
          b, loc, VectorType::get({width}, elem),
          outer.lookup(load.getMemRef()), position,
          /*nontemporal=*/false,
          llvm::Align(llvm::MinAlign(kAccessBytes, width * bytes)));
    }

    std::array<SmallVector<Value>, 2> elements;
    for (int64_t i = 0; i < width; ++i) {
      IRMapping mapping = shared;
      Value d = indices[2];
      if (i > 0)
        d = arith::AddIOp::create(b, loc, d,
                                  arith::ConstantIndexOp::create(b, loc, i));
      mapping.map(body.getArgument(2), d);
      for (Operation &inner : body.without_terminator()) {
        if (work.shared.contains(&inner) || !work.needed.contains(&inner))
          continue;
        auto vector = work.vectorLoads.find(&inner);
        if (vector != work.vectorLoads.end()) {
          mapping.map(inner.getResult(0),
                      vector::ExtractOp::create(b, loc, vectors[&inner],
                                                vector->second.perm[i])
                          .getResult());
          continue;
        }
        cloneWithAlignment(b, inner, mapping);
      }
      ValueRange yielded = op.getYield().getValues();
      elements[0].push_back(mapping.lookupOrDefault(yielded[0]));
      elements[1].push_back(mapping.lookupOrDefault(yielded[1]));
    }
    std::array<Value, 2> result;
    for (int s = 0; s < 2; ++s)
      result[s] =
          width == 1
              ? elements[s].front()
              : vector::FromElementsOp::create(
                    b, loc,
                    VectorType::get({width}, elements[s].front().getType()),
                    elements[s])
                    .getResult();
    return result;
  };
}
