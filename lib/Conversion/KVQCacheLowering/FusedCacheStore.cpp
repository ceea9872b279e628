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
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

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

/// Whether `load` reads its memref at exactly the region's (t, h, d) and
/// the memref is contiguous with a static innermost size that is a
/// multiple of `width`: then the `width` elements of a work item are one
/// aligned vector load.
static bool isRowLoad(memref::LoadOp load, Block &body, int64_t width) {
  auto type = load.getMemRefType();
  if (width == 1 || type.getRank() != 3 || !type.getLayout().isIdentity() ||
      type.isDynamicDim(2) || type.getDimSize(2) % width != 0 ||
      !type.getElementType().isIntOrFloat())
    return false;
  return llvm::equal(load.getIndices(), body.getArguments());
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
    // Loads of the work item's own row chunk (K or V read as they are, the
    // element RoPE rotates): one vector load for the `width` elements, as
    // kvq.cache_store loads its sources.
    DenseMap<Operation *, Value> rows;
    for (auto load : body.getOps<memref::LoadOp>()) {
      // (A memref defined in the region cannot be read before it.)
      if (!isRowLoad(load, body, width) || !outer.contains(load.getMemRef()))
        continue;
      Type elem = load.getMemRefType().getElementType();
      unsigned bytes = std::max(1u, elem.getIntOrFloatBitWidth() / 8);
      rows[load] = vector::LoadOp::create(
          b, loc, VectorType::get({width}, elem),
          outer.lookupOrDefault(load.getMemRef()), indices,
          /*nontemporal=*/false,
          llvm::Align(std::min<uint64_t>(kAccessBytes, width * bytes)));
    }
    std::array<SmallVector<Value>, 2> elements;
    for (int64_t i = 0; i < width; ++i) {
      IRMapping mapping = outer;
      Value d = indices[2];
      if (i > 0)
        d = arith::AddIOp::create(b, loc, d,
                                  arith::ConstantIndexOp::create(b, loc, i));
      mapping.map(body.getArguments(), ValueRange{indices[0], indices[1], d});
      for (Operation &inner : body.without_terminator()) {
        if (Value row = rows.lookup(&inner)) {
          mapping.map(inner.getResult(0),
                      vector::ExtractOp::create(b, loc, row, i).getResult());
          continue;
        }
        b.clone(inner, mapping);
      }
      ValueRange yielded = op.getYield().getValues();
      elements[0].push_back(mapping.lookup(yielded[0]));
      elements[1].push_back(mapping.lookup(yielded[1]));
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
