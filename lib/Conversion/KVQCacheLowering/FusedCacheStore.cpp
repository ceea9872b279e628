//===- FusedCacheStore.cpp - the regions of a fused store in its code -----===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// A kvq.fused_cache_store lowers as kvq.cache_store does (one function, the
// same CPU loops and GPU kernel); only the activations differ: instead of a
// load of the K or V memref, each element is the op's region, cloned at the
// element's (t, h, d) inside the loops or the kernel. The values the regions
// read from above become arguments of the function (and parameters of the
// kernel); constants are cloned instead.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;
using namespace mlir::kvq;

/// The values the regions of `op` read from above, in order of first use,
/// and the constants among them.
static void collectCaptured(FusedCacheStoreOp op,
                            llvm::SetVector<Value> &operands,
                            llvm::SetVector<Value> &constants) {
  llvm::SetVector<Value> used;
  for (unsigned s = 0; s < 2; ++s)
    getUsedValuesDefinedAbove(op.getStreamBody(s), used);
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

void mlir::kvq::setFusedProducer(CacheOpPlan &plan, FusedCacheStoreOp op,
                                 ValueRange operands) {
  plan.producerOperands.assign(operands.begin(), operands.end());
  plan.produce = [op](OpBuilder &b, Location loc, unsigned s,
                      ValueRange indices, ValueRange operands) mutable -> Value {
    llvm::SetVector<Value> captured, constants;
    collectCaptured(op, captured, constants);
    IRMapping mapping;
    Block &body = op.getStreamBody(s).front();
    mapping.map(body.getArguments(), indices);
    mapping.map(captured.getArrayRef(), operands);
    for (Value constant : constants)
      b.clone(*constant.getDefiningOp(), mapping);
    for (Operation &inner : body.without_terminator())
      b.clone(inner, mapping);
    return mapping.lookup(cast<YieldOp>(body.getTerminator()).getValue());
  };
}
