//===- KVQCacheFunctionsTest.cpp - the cache-op lowering as a library -----===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// What a model compiler that links kvq sees: KVQCacheFunctions and the
// patterns of populateKVQCacheLoweringPatterns applied with its own driver
// (the kvq-lower-cache-ops pass uses createAll() and a parallel rewrite
// instead; its lit tests cover the lowered code).
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"
#include "kvq/InitAllKVQ.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <gtest/gtest.h>

#include <string>

using namespace mlir;
using namespace mlir::kvq;

namespace {

/// Four layers, a store per layer and a load, plus a store whose layer has
/// no resolved scales. @a and @b share a signature (every scale's product
/// x * RN(1/s) is proven); @c's K scale 0.03 needs the FMA correction (for
/// x = 0x1.8p-11 the quotient is the f8E4M3FN midpoint 0x1.9p-6, the
/// product one unit above it); @huge's V scale is beyond 2^60: V divides.
constexpr const char *kModel = R"mlir(
kvq.layer @a cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @b cache(fp8) resolved(#kvq.resolved_scales<k = 2.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @c cache(fp8) resolved(#kvq.resolved_scales<k = 3.000000e-02 checkpoint, v = 2.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @huge cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 1.000000e+30 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @raw cache(fp8) checkpoint(#kvq.scales<k = 5.000000e-02 : f32>)
func.func @f(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>, %o: memref<?x8x128xbf16>) {
  kvq.cache_store @a (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @b (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @c (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @huge (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @a (%kc, %kc) at %s into (%o, %o) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  kvq.cache_store @raw (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}
)mlir";

/// The value of `result`, which must have succeeded.
template <typename T> T unwrap(FailureOr<T> result) {
  EXPECT_TRUE(succeeded(result));
  return std::move(*result);
}

class KVQCacheFunctionsTest : public ::testing::Test {
protected:
  KVQCacheFunctionsTest() {
    DialectRegistry registry;
    registerAllDialects(registry);
    registerAllKVQDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
    module = parseSourceString<ModuleOp>(kModel, &context);
    target = unwrap(createKVQTarget(
        "nvvm", "sm_90", [&] { return emitError(UnknownLoc::get(&context)); }));
  }

  /// The cache ops of @f, in order.
  SmallVector<Operation *> cacheOps() {
    SmallVector<Operation *> ops;
    module->walk([&](Operation *op) {
      if (isa<CacheStoreOp, CacheLoadOp>(op))
        ops.push_back(op);
    });
    return ops;
  }

  /// The names of the functions @f calls, in order.
  SmallVector<std::string> callees() {
    SmallVector<std::string> names;
    module->walk(
        [&](func::CallOp call) { names.push_back(call.getCallee().str()); });
    return names;
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  std::unique_ptr<KVQTarget> target;
};

TEST_F(KVQCacheFunctionsTest, LookupOrCreateSharesOneFunctionPerSignature) {
  ASSERT_TRUE(module);
  KVQCacheFunctions functions(*target);
  SmallVector<Operation *> ops = cacheOps();
  ASSERT_EQ(ops.size(), 6u);
  FailureOr<KVQCacheCall> a = functions.lookupOrCreate(ops[0]);
  FailureOr<KVQCacheCall> b = functions.lookupOrCreate(ops[1]);
  FailureOr<KVQCacheCall> c = functions.lookupOrCreate(ops[2]);
  FailureOr<KVQCacheCall> huge = functions.lookupOrCreate(ops[3]);
  FailureOr<KVQCacheCall> load = functions.lookupOrCreate(ops[4]);
  ASSERT_TRUE(succeeded(a) && succeeded(b) && succeeded(c) && succeeded(huge) &&
              succeeded(load));
  // @a and @b: one function, called with each layer's scales.
  EXPECT_EQ(a->callee, b->callee);
  EXPECT_EQ(a->callee.getSymName(), "kvq_cache_store_bf16_f8E4M3FN_8x128_b16");
  EXPECT_EQ(a->scales[0], 0.05f);
  EXPECT_EQ(a->scales[1], 0.07f);
  EXPECT_EQ(b->scales[0], 0.02f);
  EXPECT_EQ(b->scales[1], 0.05f);
  ASSERT_EQ(a->operands.size(), 5u);
  EXPECT_EQ(a->operands[0], ops[0]->getOperand(4)); // slot_mapping first
  // K corrected by an FMA, V the product alone.
  EXPECT_EQ(c->callee.getSymName(),
            "kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kfma_vmul");
  // A V scale beyond 2^60 is not proven: V divides.
  EXPECT_EQ(huge->callee.getSymName(),
            "kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kmul_vdivf");
  EXPECT_EQ(load->callee.getSymName(),
            "kvq_cache_load_f8E4M3FN_bf16_8x128_b16");
  // Asking again creates nothing new.
  EXPECT_EQ(functions.lookupOrCreate(ops[0])->callee, a->callee);
  // No resolved scales: failure, nothing created.
  EXPECT_TRUE(failed(functions.lookupOrCreate(ops[5])));
  int count = 0;
  module->walk([&](func::FuncOp fn) {
    count += fn.getSymName().starts_with("kvq_cache_");
  });
  EXPECT_EQ(count, 4);
}

TEST_F(KVQCacheFunctionsTest, PatternsWithTheGreedyDriver) {
  ASSERT_TRUE(module);
  KVQCacheFunctions functions(*target);
  RewritePatternSet patterns(&context);
  populateKVQCacheLoweringPatterns(patterns, functions);
  // The op with unresolved scales stays: the patterns refuse it.
  (void)applyPatternsGreedily(*module, std::move(patterns));
  EXPECT_EQ(callees(), (SmallVector<std::string>{
                           "kvq_cache_store_bf16_f8E4M3FN_8x128_b16",
                           "kvq_cache_store_bf16_f8E4M3FN_8x128_b16",
                           "kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kfma_vmul",
                           "kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kmul_vdivf",
                           "kvq_cache_load_f8E4M3FN_bf16_8x128_b16"}));
  SmallVector<Operation *> left = cacheOps();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(cast<CacheStoreOp>(left[0]).getLayer(), "raw");
  EXPECT_TRUE(succeeded(verify(*module)));
}

TEST_F(KVQCacheFunctionsTest, CreateAllThenRewrite) {
  ASSERT_TRUE(module);
  KVQCacheFunctions functions(*target);
  SmallVector<std::pair<Operation *, KVQCacheCall>> calls =
      functions.createAll(*module);
  // Every lowerable op, in walk order.
  ASSERT_EQ(calls.size(), 5u);
  EXPECT_EQ(calls[0].second.callee, calls[1].second.callee);
  EXPECT_EQ(calls[1].second.scales[0], 0.02f);
  // The proofs on the thread pool reach the same quotients.
  EXPECT_EQ(calls[2].second.callee.getSymName(),
            "kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kfma_vmul");
  EXPECT_EQ(calls[3].second.callee.getSymName(),
            "kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kmul_vdivf");
  IRRewriter rewriter(&context);
  for (const auto &[op, call] : calls)
    KVQCacheFunctions::replaceWithCall(rewriter, op, call);
  EXPECT_EQ(callees().size(), 5u);
  EXPECT_EQ(cacheOps().size(), 1u);
  EXPECT_TRUE(succeeded(verify(*module)));
}

} // namespace
