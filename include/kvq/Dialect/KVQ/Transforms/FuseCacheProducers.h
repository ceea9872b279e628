//===- FuseCacheProducers.h - fuse K/V producers into the store -*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// What kvq-fuse-cache-producers does, for a model compiler's own pipeline:
// the tensor-form `kvq.cache_store` and the linalg ops that produce its K
// and V become one `kvq.fused_cache_store` whose regions compute K and V
// (the rules are in the pass's description, Passes.td).
//
//   RewritePatternSet patterns(ctx);
//   kvq::populateFuseCacheProducersPatterns(patterns);
//   (void)applyPatternsGreedily(module, std::move(patterns));
//
// or, one store at a time:
//
//   IRRewriter rewriter(ctx);
//   FailureOr<kvq::FusedCacheStoreOp> fused =
//       kvq::fuseCacheStoreProducers(rewriter, store);
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_TRANSFORMS_FUSECACHEPRODUCERS_H
#define KVQ_DIALECT_KVQ_TRANSFORMS_FUSECACHEPRODUCERS_H

#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::kvq {

/// Replaces the tensor-form `store` with a `kvq.fused_cache_store` whose
/// regions compute K and V from the inputs of their fusible producers, and
/// erases those producers. Failure, changing nothing, when `store` is in the
/// memref form or neither K nor V has a fusible producer.
FailureOr<FusedCacheStoreOp> fuseCacheStoreProducers(RewriterBase &rewriter,
                                                     CacheStoreOp store);

/// Adds the pattern that applies fuseCacheStoreProducers() to every
/// `kvq.cache_store`.
void populateFuseCacheProducersPatterns(RewritePatternSet &patterns);

} // namespace mlir::kvq

#endif // KVQ_DIALECT_KVQ_TRANSFORMS_FUSECACHEPRODUCERS_H
