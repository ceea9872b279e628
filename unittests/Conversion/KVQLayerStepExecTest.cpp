//===- KVQLayerStepExecTest.cpp - a decoder layer's step on the CPU -------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Runs examples/llama-layer/decode-layer.mlir (linalg on tensors: q, k, v
// projections, RoPE, kvq.cache_store, kvq.paged_attention) through the
// pipeline docs/ModelCompilers.md documents (checkpoint import and folding,
// kvq-fuse-cache-producers, which moves k's RoPE into the store,
// one-shot-bufferize, linalg to loops, kvq-to-llvm), JIT-compiles it with
// mlir::ExecutionEngine and checks, on random inputs:
//
// 1. the caches, byte for byte: the step's new K and V rows are the bytes
//    of the store (CacheStoreReference.h) applied to K and V computed here
//    in f32 in the order of the linalg code (the loops of
//    convert-linalg-to-loops: k innermost, products then sums, no FMA),
//    every other byte untouched (a padding token's slot is -1);
// 2. that f32 emulation against the float64 reference (projections of the
//    bf16 inputs, RoPE) within the bound derived below, which ties the
//    bytes of 1 to the exact math;
// 3. the attention output against the exact attention over the cache the
//    step wrote (DecodeAttentionReference.h), twice: with the queries as the
//    step computes them (the kernel's own bound), and with the float64
//    reference queries, the difference covered by the bound of 2 as a
//    perturbation of the queries (KernelArithmetic::queryAbs).
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/Passes.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"
#include "kvq/InitAllKVQ.h"
#include "unittests/Attention/DecodeAttentionReference.h"
#include "unittests/Conversion/CacheStoreReference.h"
#include "unittests/Conversion/MemRefBuffer.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/Support/TargetSelect.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using namespace mlir;
using namespace mlir::kvq::test;
using llvm::APFloat;

namespace {

// The example's shapes (examples/llama-layer/decode-layer.mlir).
constexpr int64_t kHidden = 256, kHeads = 4, kKVHeads = 2, kHeadSize = 64;
constexpr int64_t kHalf = kHeadSize / 2, kMaxPos = 128, kBlockSize = 16;
constexpr int64_t kQCols = kHeads * kHeadSize, kKVCols = kKVHeads * kHeadSize;

template <typename T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// `x` rounded to bf16 (nearest even), as a float, and its bits.
float toBF16(double x, uint16_t *bits) {
  APFloat v(x);
  bool lost;
  v.convert(APFloat::BFloat(), APFloat::rmNearestTiesToEven, &lost);
  *bits = uint16_t(v.bitcastToAPInt().getZExtValue());
  v.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
  return v.convertToFloat();
}

// One f32 operation, rounded once: the double result of two floats' product
// is exact, and a double sum of two floats rounded to float is the f32 sum
// (53 >= 2 * 24 + 2: double rounding is innocuous for one +, -, *).
float mul32(float a, float b) { return float(double(a) * double(b)); }
float add32(float a, float b) { return float(double(a) + double(b)); }

/// gamma_n = n u / (1 - n u).
double gamma(double n, double u) { return n * u / (1 - n * u); }

/// Values computed twice: `f32` in the linalg code's order and `exact` in
/// double, with `bound` >= |f32 - y| + |exact - y|, y the real value (so
/// |f32 - exact| <= bound).
struct Projection {
  std::vector<float> f32;
  std::vector<double> exact, bound;
};

// Projections. Each product of two bf16 values is exact in f32 (16
// significant bits) unless it underflows (error <= 2^-150 each); the
// convert-linalg-to-loops code adds the products to 0 in order of k, one
// rounding per addition: |f32 - p| <= gamma_n(2^-24) A + n 2^-149,
// A = sum_k |x_k w_k|, n = hidden (the first addition, to 0, is exact, and
// additions of subnormals are exact). The double sum has
// |exact - p| <= gamma_n(2^-53) A.
Projection project(const std::vector<float> &x, const std::vector<float> &w,
                   int64_t tokens, int64_t cols) {
  Projection p;
  p.f32.resize(tokens * cols);
  p.exact.resize(tokens * cols);
  p.bound.resize(tokens * cols);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < cols; ++j) {
      float acc = 0.0f;
      double sum = 0, abs = 0;
      for (int64_t k = 0; k < kHidden; ++k) {
        float a = x[t * kHidden + k], b = w[k * cols + j];
        acc = add32(acc, mul32(a, b));
        sum += double(a) * double(b);
        abs += std::fabs(double(a) * double(b));
      }
      p.f32[t * cols + j] = acc;
      p.exact[t * cols + j] = sum;
      p.bound[t * cols + j] =
          (gamma(kHidden, 0x1p-24) + gamma(kHidden, 0x1p-53)) * abs +
          kHidden * 0x1p-149;
    }
  return p;
}

// RoPE. The linalg code computes y~ = RN(RN(x~ c) + RN(r~ s)) from the
// projections x~, r~ (r~ = -x~_{d+32} or x~_{d-32}); the exact value is
// y = x c + r s. With |x~ - x| <= B_x, |r~ - r| <= B_r and three roundings
// (u = 2^-24, an underflow allowance 2^-149 each):
//   |y~ - y| <= |c| B_x + |s| B_r + (2u + u^2)(|x~ c| + |r~ s|) + 3 2^-149.
// The double reference y^ = RN64(RN64(x^ c) + RN64(r^ s)) from the double
// projections x^, r^ adds 3 2^-53 (|x~ c| + |r~ s| + |c| B_x + |s| B_r) at
// most; the bound is evaluated in double and multiplied by 1 + 2^-40 for
// that evaluation. In place on `p` (viewed as [tokens, heads, 64]).
void applyRoPE(Projection &p, const std::vector<int64_t> &positions,
               const std::vector<float> &cos, const std::vector<float> &sin) {
  Projection in = p;
  int64_t rows = p.f32.size() / kHeadSize;
  int64_t heads = rows / int64_t(positions.size());
  for (int64_t row = 0; row < rows; ++row) {
    int64_t pos = positions[row / heads];
    for (int64_t d = 0; d < kHeadSize; ++d) {
      int64_t i = d % kHalf, partner = (d + kHalf) % kHeadSize;
      int64_t e = row * kHeadSize + d, pe = row * kHeadSize + partner;
      float c = cos[pos * kHalf + i], s = sin[pos * kHalf + i];
      float x = in.f32[e], r = d < kHalf ? -in.f32[pe] : in.f32[pe];
      double xd = in.exact[e], rd = d < kHalf ? -in.exact[pe] : in.exact[pe];
      p.f32[e] = add32(mul32(x, c), mul32(r, s));
      p.exact[e] = xd * c + rd * s;
      double mags = std::fabs(double(x) * c) + std::fabs(double(r) * s);
      double carried = std::fabs(c) * in.bound[e] + std::fabs(s) * in.bound[pe];
      p.bound[e] = (carried + (0x1p-23 + 0x1p-48) * mags + 3 * 0x1p-149 +
                    3 * 0x1p-53 * (mags + carried)) *
                   (1 + 0x1p-40);
    }
  }
}

class KVQLayerStepExecTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  }

  KVQLayerStepExecTest() {
    DialectRegistry registry;
    registerAllDialects(registry);
    registerAllExtensions(registry);
    registerAllToLLVMIRTranslations(registry);
    kvq::registerAllKVQDialects(registry);
    context.appendDialectRegistry(registry);
    context.disableMultithreading();
  }

  MLIRContext context;
};

/// The documented pipeline (docs/ModelCompilers.md, "A layer step on
/// tensors") up to kvq-to-llvm.
void buildBufferizePipeline(OpPassManager &pm, const std::string &checkpoint) {
  kvq::KVQImportCheckpointOptions import;
  import.checkpoint = checkpoint;
  pm.addPass(kvq::createKVQImportCheckpoint(import));
  kvq::KVQFoldScalesOptions fold;
  fold.summary = false;
  pm.addPass(kvq::createKVQFoldScales(fold));
  pm.addPass(kvq::createKVQFuseCacheProducers());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  pm.addPass(bufferization::createDropEquivalentBufferResultsPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addPass(createConvertLinalgToLoopsPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
}

TEST_F(KVQLayerStepExecTest, DecodeLayerMatchesTheReference) {
  const std::string examples = KVQ_EXAMPLES_DIR;
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(
      examples + "/llama-layer/decode-layer.mlir", &context);
  ASSERT_TRUE(module) << "cannot parse the example";
  PassManager pm(&context);
  buildBufferizePipeline(pm, examples + "/llama-tiny/quark");
  ASSERT_TRUE(succeeded(pm.run(*module))) << "the pipeline failed";
  // k's RoPE is fused into the store (the cache bytes below are then those
  // of the fused store).
  int fused = 0;
  module->walk([&](kvq::FusedCacheStoreOp) { ++fused; });
  EXPECT_EQ(fused, 1);

  // The folded scales of layer 0 (examples/llama-tiny/README.md).
  auto layer = module->lookupSymbol<kvq::LayerOp>("model.layers.0");
  ASSERT_TRUE(layer && layer.getResolvedScalesAttr());
  const float kScale = layer.getResolvedScalesAttr().getK().convertToFloat();
  const float vScale = layer.getResolvedScalesAttr().getV().convertToFloat();
  EXPECT_EQ(kScale, 0.0133928573f);
  EXPECT_EQ(vScale, 0.0100446427f);

  auto func = module->lookupSymbol<func::FuncOp>("decode_layer");
  ASSERT_TRUE(func);
  // The caches and the output are the caller's: no results are left.
  EXPECT_EQ(func.getNumResults(), 0u);
  // This test is the step's caller: it calls the (private) step through a
  // C interface.
  func.setPublic();
  func->setAttr("llvm.emit_c_interface", UnitAttr::get(&context));
  PassManager lower(&context);
  kvq::buildKVQToLLVMPipeline(lower);
  ASSERT_TRUE(succeeded(lower.run(*module))) << "kvq-to-llvm failed";
  auto engine = ExecutionEngine::create(*module);
  ASSERT_TRUE(bool(engine)) << llvm::toString(engine.takeError());

  // The cache, block tables and context lengths of a random attention
  // problem; each sequence's new token is its last (position L - 1). The
  // last sequence is padding: context 0, slot -1 (not stored, zeros out).
  RandomProblemOptions options;
  options.seed = 2026;
  options.numHeads = kHeads;
  options.numKVHeads = kKVHeads;
  options.headSize = kHeadSize;
  options.blockSize = kBlockSize;
  options.type = AttentionType::F32;
  options.cacheFormat = CacheFormat::F8E4M3FN;
  options.contextLens = {1, 17, 40, 16, 100, 0};
  DecodeAttentionProblem p = makeRandomProblem(options);
  const int64_t tokens = p.numSeqs;
  std::vector<int64_t> positions(tokens), slots(tokens);
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t len = p.contextLens[t];
    positions[t] = std::max<int64_t>(len - 1, 0);
    slots[t] =
        len == 0
            ? -1
            : int64_t(
                  p.blockTables[t * p.maxBlocks + positions[t] / kBlockSize]) *
                      kBlockSize +
                  positions[t] % kBlockSize;
  }

  // Hidden states and weights: bf16, weights of standard deviation
  // 1 / sqrt(hidden) (q, k, v of order one).
  std::mt19937 rng(17);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto randomBF16 = [&](int64_t n, double std, std::vector<float> &values) {
    std::vector<uint16_t> bits(n);
    values.resize(n);
    for (int64_t i = 0; i < n; ++i)
      values[i] = toBF16(normal(rng) * std, &bits[i]);
    return bytesOf(bits);
  };
  std::vector<float> x, wq, wk, wv;
  Buffer<2> xBuf(randomBF16(tokens * kHidden, 1.0, x), {tokens, kHidden});
  double wStd = 1.0 / std::sqrt(double(kHidden));
  Buffer<2> wqBuf(randomBF16(kHidden * kQCols, wStd, wq), {kHidden, kQCols});
  Buffer<2> wkBuf(randomBF16(kHidden * kKVCols, wStd, wk), {kHidden, kKVCols});
  Buffer<2> wvBuf(randomBF16(kHidden * kKVCols, wStd, wv), {kHidden, kKVCols});
  // cos / sin of position * 10000^(-2i / 64), rounded to f32.
  std::vector<float> cosT(kMaxPos * kHalf), sinT(kMaxPos * kHalf);
  for (int64_t pos = 0; pos < kMaxPos; ++pos)
    for (int64_t i = 0; i < kHalf; ++i) {
      double angle = double(pos) * std::pow(10000.0, -2.0 * i / kHeadSize);
      cosT[pos * kHalf + i] = float(std::cos(angle));
      sinT[pos * kHalf + i] = float(std::sin(angle));
    }
  Buffer<1> posBuf(bytesOf(positions), {tokens});
  Buffer<2> cosBuf(bytesOf(cosT), {kMaxPos, kHalf});
  Buffer<2> sinBuf(bytesOf(sinT), {kMaxPos, kHalf});
  Buffer<1> slotBuf(bytesOf(slots), {tokens});
  std::array<int64_t, 4> cacheShape = {p.numBlocks, kBlockSize, kKVHeads,
                                       kHeadSize};
  const std::vector<uint8_t> kBefore = getCacheBytes(p, /*value=*/false);
  const std::vector<uint8_t> vBefore = getCacheBytes(p, /*value=*/true);
  Buffer<4> kcBuf(kBefore, cacheShape), vcBuf(vBefore, cacheShape);
  Buffer<2> btBuf(bytesOf(p.blockTables), {tokens, p.maxBlocks});
  Buffer<1> clBuf(bytesOf(p.contextLens), {tokens});
  // Poisoned: every element must be written.
  Buffer<3> outBuf(std::vector<uint8_t>(tokens * kQCols * 4, 0xFF),
                   {tokens, kHeads, kHeadSize});
  llvm::Error error = (*engine)->invoke(
      "decode_layer", xBuf.ptr(), wqBuf.ptr(), wkBuf.ptr(), wvBuf.ptr(),
      posBuf.ptr(), cosBuf.ptr(), sinBuf.ptr(), slotBuf.ptr(), kcBuf.ptr(),
      vcBuf.ptr(), btBuf.ptr(), clBuf.ptr(), outBuf.ptr());
  ASSERT_FALSE(bool(error)) << llvm::toString(std::move(error));

  // The reference projections and RoPE.
  Projection q = project(x, wq, tokens, kQCols);
  Projection k = project(x, wk, tokens, kKVCols);
  Projection v = project(x, wv, tokens, kKVCols);
  applyRoPE(q, positions, cosT, sinT);
  applyRoPE(k, positions, cosT, sinT);

  // 2. The f32 emulation against the float64 reference.
  double worstProj = 0;
  for (const Projection *proj : {&q, &k, &v})
    for (size_t i = 0; i < proj->f32.size(); ++i) {
      double err = std::fabs(double(proj->f32[i]) - proj->exact[i]);
      ASSERT_LE(err, proj->bound[i]) << i;
      worstProj = std::max(worstProj, err / proj->bound[i]);
    }

  // 1. The caches: the store's bytes at the new tokens' slots, the old
  // bytes everywhere else.
  std::vector<uint8_t> kWant = kBefore, vWant = vBefore;
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots[t] < 0)
      continue;
    for (int64_t e = 0; e < kKVCols; ++e) {
      kWant[slots[t] * kKVCols + e] = store::refQuantize(
          store::kE4M3FN, APFloat(k.f32[t * kKVCols + e]), kScale);
      vWant[slots[t] * kKVCols + e] = store::refQuantize(
          store::kE4M3FN, APFloat(v.f32[t * kKVCols + e]), vScale);
    }
  }
  // The same bytes from the float64 reference, where it decides them: the
  // store is monotonic in its input, so where both ends of
  // [exact - bound, exact + bound] quantize to one byte, the f32 value
  // (inside the interval) must give that byte.
  size_t decided = 0, newBytes = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    if (slots[t] < 0)
      continue;
    for (auto [proj, scale, want] : {std::make_tuple(&k, kScale, &kWant),
                                     std::make_tuple(&v, vScale, &vWant)})
      for (int64_t e = 0; e < kKVCols; ++e) {
        double y = proj->exact[t * kKVCols + e],
               b = proj->bound[t * kKVCols + e];
        float lo = std::nextafter(float(y - b), -INFINITY);
        float hi = std::nextafter(float(y + b), INFINITY);
        uint8_t qlo = store::refQuantize(store::kE4M3FN, APFloat(lo), scale);
        uint8_t qhi = store::refQuantize(store::kE4M3FN, APFloat(hi), scale);
        ++newBytes;
        if (qlo != qhi)
          continue;
        ++decided;
        EXPECT_EQ((*want)[slots[t] * kKVCols + e], qlo) << t << " " << e;
      }
  }
  size_t kDiff = 0, vDiff = 0;
  for (size_t i = 0; i < kWant.size(); ++i) {
    kDiff += kcBuf.bytes[i] != kWant[i];
    vDiff += vcBuf.bytes[i] != vWant[i];
  }
  EXPECT_EQ(kDiff, 0u) << "key cache bytes differ";
  EXPECT_EQ(vDiff, 0u) << "value cache bytes differ";

  // 3. The attention over the cache the step wrote.
  std::vector<double> got(tokens * kQCols);
  for (size_t i = 0; i < got.size(); ++i) {
    float f;
    std::memcpy(&f, outBuf.bytes.data() + 4 * i, 4);
    got[i] = f;
  }
  DecodeAttentionProblem stored = p;
  stored.kScale = kScale;
  stored.vScale = vScale;
  stored.softmaxScale = 0.125f; // RN(1 / sqrt(64)), the op's default
  stored.keyCache.assign(kcBuf.bytes.begin(), kcBuf.bytes.end());
  stored.valueCache.assign(vcBuf.bytes.begin(), vcBuf.bytes.end());
  // a. With the queries as the step computes them: the kernel's bound.
  stored.query = q.f32;
  DecodeAttentionReference ref = computeDecodeAttentionReference(stored);
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  BoundCheck check = checkAgainstReference(stored, ref, got);
  EXPECT_EQ(check.violations, 0u)
      << describeElement(stored, check.firstViolation) << ": got "
      << got[check.firstViolation] << ", exact "
      << ref.out[check.firstViolation] << ", bound "
      << ref.bound[check.firstViolation];
  // b. With the float64 queries rounded to f32, q_r: the step's queries q~
  // differ by |q~ - q_r| <= |q~ - q| + |q - q_r| <= B_q + 2^-24 |q| +
  // 2^-150 (B_q from 2), a perturbation of the queries the bound takes
  // (KernelArithmetic::queryAbs, the largest over all elements).
  DecodeAttentionProblem exact = stored;
  KernelArithmetic perturbed;
  for (size_t i = 0; i < q.f32.size(); ++i) {
    exact.query[i] = float(q.exact[i]);
    perturbed.queryAbs =
        std::max(perturbed.queryAbs,
                 (q.bound[i] + 0x1p-24 * std::fabs(q.exact[i]) + 0x1p-150) *
                     (1 + 0x1p-40));
  }
  DecodeAttentionReference refExact =
      computeDecodeAttentionReference(exact, perturbed);
  ASSERT_TRUE(refExact.error.empty()) << refExact.error;
  BoundCheck checkExact = checkAgainstReference(exact, refExact, got);
  EXPECT_EQ(checkExact.violations, 0u)
      << describeElement(exact, checkExact.firstViolation) << ": got "
      << got[checkExact.firstViolation] << ", exact "
      << refExact.out[checkExact.firstViolation] << ", bound "
      << refExact.bound[checkExact.firstViolation];
  // The padding sequence attends to nothing: zeros.
  for (int64_t i = (tokens - 1) * kQCols; i < tokens * kQCols; ++i)
    ASSERT_EQ(got[i], 0.0) << i;

  std::printf("[ kvq      ] layer step: %zu + %zu cache bytes as expected "
              "(%zu new, %zu of them decided by the float64 reference); f32 "
              "q/k/v vs float64: largest error %.3g of the bound\n",
              kWant.size() - kDiff, vWant.size() - vDiff, newBytes, decided,
              worstProj);
  std::printf("[ kvq      ] attention vs the step's queries: largest error "
              "%.3g ulps (row), bound %.3g ulps (row), error/bound %.3g\n",
              check.maxErrorRowUlps, check.maxBoundRowUlps,
              check.maxErrorOverBound);
  std::printf("[ kvq      ] attention vs the float64 queries (|dq| <= %.3g): "
              "largest error %.3g ulps (row), bound %.3g ulps (row), "
              "error/bound %.3g\n",
              perturbed.queryAbs, checkExact.maxErrorRowUlps,
              checkExact.maxBoundRowUlps, checkExact.maxErrorOverBound);
}

} // namespace
