//===- BufferizableOpInterfaceImpl.cpp - bufferizing kvq ops --------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The tensor forms of the cache ops are destination-passing: a store's
// caches (a load's outputs) are its destinations and its results. They
// bufferize into the memref form on the destinations' buffers. A cache is
// large and updated in place by every step: kvq never lets one-shot-
// bufferize copy it. Where the analysis finds the destination cannot be
// written in place (the old cache value is still read after the store),
// that is an error at the op, not a silent copy of the whole cache.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/Transforms/BufferizableOpInterfaceImpl.h"

#include "kvq/Dialect/KVQ/IR/KVQDialect.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"

using namespace mlir;
using namespace mlir::kvq;
using namespace mlir::bufferization;

/// Errors at `op` if one-shot analysis would copy one of its destinations.
static LogicalResult verifyInPlace(Operation *op, const AnalysisState &state) {
  auto dps = cast<DestinationStyleOpInterface>(op);
  for (OpOperand &init : dps.getDpsInitsMutable()) {
    // A memref-form op next to tensor code has nothing to bufferize.
    if (!isa<TensorType>(init.get().getType()) || state.isInPlace(init))
      continue;
    return op->emitError()
           << "cannot bufferize '" << op->getName() << "' in place: "
           << (isa<CacheStoreOp, FusedCacheStoreOp>(op) ? "the cache"
                                                        : "the output")
           << " operand #" << init.getOperandNumber()
           << " would be copied (its old value is used after this op, or "
              "it is also another destination); use the op's results "
              "from here on";
  }
  return success();
}

namespace {
/// The store, the load and the attention op alike: the destinations are
/// the DPS inits, every other tensor operand is read.
template <typename OpTy>
struct CacheOpBufferization final
    : DstBufferizableOpInterfaceExternalModel<CacheOpBufferization<OpTy>,
                                              OpTy> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    SmallVector<Value> buffers;
    for (Value operand : op->getOperands()) {
      if (!isa<TensorType>(operand.getType())) {
        buffers.push_back(operand);
        continue;
      }
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      buffers.push_back(*buffer);
    }
    auto dps = cast<DestinationStyleOpInterface>(op);
    SmallVector<Value> results;
    for (OpOperand &init : dps.getDpsInitsMutable())
      results.push_back(buffers[init.getOperandNumber()]);
    rewriter.setInsertionPoint(op);
    OpTy::create(rewriter, op->getLoc(), TypeRange{}, buffers, op->getAttrs());
    replaceOpWithBufferizedValues(rewriter, op, results);
    return success();
  }

  LogicalResult verifyAnalysis(Operation *op,
                               const AnalysisState &state) const {
    return verifyInPlace(op, state);
  }
};

/// The fused store: the store's operands and rules; its region moves to
/// the memref form (its `tensor.extract` ops bufferize on their own).
struct FusedCacheStoreBufferization final
    : DstBufferizableOpInterfaceExternalModel<FusedCacheStoreBufferization,
                                              FusedCacheStoreOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto store = cast<FusedCacheStoreOp>(op);
    SmallVector<Value> buffers;
    for (Value operand : op->getOperands()) {
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      buffers.push_back(*buffer);
    }
    rewriter.setInsertionPoint(op);
    auto memrefForm = FusedCacheStoreOp::create(
        rewriter, op->getLoc(), TypeRange{}, buffers, op->getAttrs());
    rewriter.inlineRegionBefore(store.getBody(), memrefForm.getBody(),
                                memrefForm.getBody().end());
    replaceOpWithBufferizedValues(rewriter, op, {buffers[0], buffers[1]});
    return success();
  }

  LogicalResult verifyAnalysis(Operation *op,
                               const AnalysisState &state) const {
    return verifyInPlace(op, state);
  }
};
} // namespace

void mlir::kvq::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, KVQDialect *) {
    CacheStoreOp::attachInterface<CacheOpBufferization<CacheStoreOp>>(*ctx);
    CacheLoadOp::attachInterface<CacheOpBufferization<CacheLoadOp>>(*ctx);
    FusedCacheStoreOp::attachInterface<FusedCacheStoreBufferization>(*ctx);
    PagedAttentionOp::attachInterface<CacheOpBufferization<PagedAttentionOp>>(
        *ctx);
  });
}
