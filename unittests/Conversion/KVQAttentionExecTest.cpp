//===- KVQAttentionExecTest.cpp - kvq.paged_attention on the CPU ----------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Runs kvq.paged_attention through --kvq-to-llvm, JIT-compiles it with
// mlir::ExecutionEngine and checks every output element against the exact
// result of the dequantized cache within the bound derived in
// unittests/Attention/DecodeAttentionReference.h (not a tolerance tuned to
// pass): every cache format, bf16 / f16 / f32 queries, grouped-query ratios
// 1, 4 and 8, head sizes 64, 128 and 256, context lengths that are and are
// not multiples of the block size, length 1 and a long context, permuted
// block tables whose padding entries are out of range (a read of one would
// crash or show as NaN), and the fp8_qk precision (Q quantized with the
// layer's Q scale). Prints the largest error seen, in ulps of the output.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"
#include "kvq/Conversion/Passes.h"
#include "kvq/InitAllKVQ.h"
#include "unittests/Attention/DecodeAttentionReference.h"
#include "unittests/Conversion/MemRefBuffer.h"

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
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace mlir;
using namespace mlir::kvq::test;
using llvm::APFloat;

namespace {

const llvm::fltSemantics &semanticsOf(AttentionType type) {
  switch (type) {
  case AttentionType::BF16:
    return APFloat::BFloat();
  case AttentionType::F16:
    return APFloat::IEEEhalf();
  case AttentionType::F32:
    return APFloat::IEEEsingle();
  }
  return APFloat::IEEEsingle();
}

const char *mlirTypeOf(CacheFormat format) {
  switch (format) {
  case CacheFormat::F8E4M3FN:
    return "f8E4M3FN";
  case CacheFormat::F8E5M2:
    return "f8E5M2";
  case CacheFormat::F8E4M3FNUZ:
    return "f8E4M3FNUZ";
  case CacheFormat::F8E5M2FNUZ:
    return "f8E5M2FNUZ";
  case CacheFormat::Int8:
    return "i8";
  case CacheFormat::BF16:
    return "bf16";
  case CacheFormat::F16:
    return "f16";
  }
  return "?";
}

const char *dtypeOf(CacheFormat format) {
  switch (format) {
  case CacheFormat::F8E4M3FN:
  case CacheFormat::F8E4M3FNUZ:
    return "fp8";
  case CacheFormat::F8E5M2:
  case CacheFormat::F8E5M2FNUZ:
    return "fp8_e5m2";
  case CacheFormat::Int8:
    return "int8";
  case CacheFormat::BF16:
  case CacheFormat::F16:
    return "auto";
  }
  return "?";
}

bool isFp8(CacheFormat format) {
  return format != CacheFormat::Int8 && format != CacheFormat::BF16 &&
         format != CacheFormat::F16;
}

const llvm::fltSemantics &semanticsOf(CacheFormat format) {
  switch (format) {
  case CacheFormat::F8E4M3FN:
    return APFloat::Float8E4M3FN();
  case CacheFormat::F8E5M2:
    return APFloat::Float8E5M2();
  case CacheFormat::F8E4M3FNUZ:
    return APFloat::Float8E4M3FNUZ();
  default:
    return APFloat::Float8E5M2FNUZ();
  }
}

std::string floatText(float v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return s;
}

/// A field of #kvq.resolved_scales: `value`, or `[h0, h1, ...]` when
/// `heads` is not empty (per-head scales).
std::string scaleText(float value, const std::vector<float> &heads) {
  if (heads.empty())
    return floatText(value);
  std::string s = "[";
  for (float h : heads)
    s += (s.size() > 1 ? ", " : "") + floatText(h);
  return s + "]";
}

/// `values` (exact in `type`) as the bytes of a memref of `type`.
std::vector<uint8_t> encode(const std::vector<float> &values,
                            AttentionType type) {
  const llvm::fltSemantics &sem = semanticsOf(type);
  unsigned bytes = APFloat::getSizeInBits(sem) / 8;
  std::vector<uint8_t> out(values.size() * bytes);
  for (size_t i = 0; i < values.size(); ++i) {
    APFloat v(values[i]);
    bool lost;
    v.convert(sem, APFloat::rmNearestTiesToEven, &lost);
    uint64_t bits = v.bitcastToAPInt().getZExtValue();
    std::memcpy(out.data() + i * bytes, &bits, bytes);
  }
  return out;
}

std::vector<double> decode(const std::vector<uint8_t> &bytes,
                           AttentionType type) {
  const llvm::fltSemantics &sem = semanticsOf(type);
  unsigned width = APFloat::getSizeInBits(sem);
  std::vector<double> out(bytes.size() / (width / 8));
  for (size_t i = 0; i < out.size(); ++i) {
    uint64_t bits = 0;
    std::memcpy(&bits, bytes.data() + i * (width / 8), width / 8);
    APFloat v(sem, llvm::APInt(width, bits));
    bool lost;
    v.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
    out[i] = v.convertToDouble();
  }
  return out;
}

/// f32(x) / s rounded to `format` with the store's policy (round to
/// nearest even, saturating to the largest finite value), as a value.
float quantizeLikeTheStore(float x, float s, CacheFormat format) {
  const llvm::fltSemantics &sem = semanticsOf(format);
  APFloat q(x / s);
  APFloat max = APFloat::getLargest(sem);
  bool lost;
  max.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
  if (q > max)
    q = max;
  if (q < -max)
    q = -max;
  q.convert(sem, APFloat::rmNearestTiesToEven, &lost);
  q.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
  return q.convertToFloat();
}

class KVQAttentionExecTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    kvq::registerKVQConversionPasses();
  }

  KVQAttentionExecTest() {
    DialectRegistry registry;
    registerAllDialects(registry);
    registerAllExtensions(registry);
    registerAllToLLVMIRTranslations(registry);
    kvq::registerAllKVQDialects(registry);
    context.appendDialectRegistry(registry);
    context.disableMultithreading();
  }

  /// Lowers `problem` as one kvq.paged_attention (`precision`, the layer's
  /// Q scale `qScale`, or one per KV head `qHeads`), runs it and returns
  /// its outputs.
  std::vector<double> run(const DecodeAttentionProblem &problem,
                          const char *precision = "dequantized",
                          float qScale = 1.0f, float probScale = 1.0f,
                          const std::vector<float> &qHeads = {}) {
    const DecodeAttentionProblem &p = problem;
    std::string qType = "memref<" + std::to_string(p.numSeqs) + "x" +
                        std::to_string(p.numHeads) + "x" +
                        std::to_string(p.headSize) + "x" +
                        getAttentionTypeName(p.type) + ">";
    std::string cType =
        "memref<" + std::to_string(p.numBlocks) + "x" +
        std::to_string(p.blockSize) + "x" + std::to_string(p.numKVHeads) + "x" +
        std::to_string(p.headSize) + "x" + mlirTypeOf(p.cacheFormat) + ">";
    std::string bType = "memref<" + std::to_string(p.numSeqs) + "x" +
                        std::to_string(p.maxBlocks) + "xi32>";
    std::string lType = "memref<" + std::to_string(p.numSeqs) + "xi32>";
    bool quantized =
        p.cacheFormat != CacheFormat::BF16 && p.cacheFormat != CacheFormat::F16;
    std::string rule = quantized ? " checkpoint" : " not_quantized";
    std::string src =
        std::string("kvq.layer @l cache(") + dtypeOf(p.cacheFormat) +
        ") resolved(#kvq.resolved_scales<k = " +
        scaleText(p.kScale, p.kHeadScales) + rule +
        ", v = " + scaleText(p.vScale, p.vHeadScales) + rule +
        ", q = " + scaleText(qScale, qHeads) +
        " checkpoint, prob = " + floatText(probScale) + " checkpoint>)\n" +
        "func.func @attend(%q: " + qType + ", %kc: " + cType +
        ", %vc: " + cType + ", %bt: " + bType + ", %cl: " + lType +
        ", %o: " + qType +
        ") attributes {llvm.emit_c_interface} {\n"
        "  kvq.paged_attention @l (%q) cache(%kc, %vc) blocks(%bt, %cl) "
        "into(%o) scale(" +
        floatText(p.softmaxScale) + ") precision(" + precision +
        ") : " + qType + ", " + cType + ", " + bType + ", " + lType +
        "\n  return\n}\n";
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(src, &context);
    if (!module) {
      ADD_FAILURE() << "cannot parse:\n" << src;
      return {};
    }
    PassManager pm(&context);
    kvq::buildKVQToLLVMPipeline(pm);
    if (failed(pm.run(*module))) {
      ADD_FAILURE() << "kvq-to-llvm failed on:\n" << src;
      return {};
    }
    auto engine = ExecutionEngine::create(*module);
    if (!engine) {
      ADD_FAILURE() << "JIT failed: " << llvm::toString(engine.takeError());
      return {};
    }
    auto bytesOf = [](const std::vector<int32_t> &v) {
      std::vector<uint8_t> b(v.size() * 4);
      std::memcpy(b.data(), v.data(), b.size());
      return b;
    };
    Buffer<3> q(encode(p.query, p.type), {p.numSeqs, p.numHeads, p.headSize});
    std::array<int64_t, 4> cacheShape = {p.numBlocks, p.blockSize, p.numKVHeads,
                                         p.headSize};
    Buffer<4> kc(getCacheBytes(p, /*value=*/false), cacheShape);
    Buffer<4> vc(getCacheBytes(p, /*value=*/true), cacheShape);
    Buffer<2> bt(bytesOf(p.blockTables), {p.numSeqs, p.maxBlocks});
    Buffer<1> cl(bytesOf(p.contextLens), {p.numSeqs});
    // Poisoned: every element must be written.
    Buffer<3> o(std::vector<uint8_t>(q.bytes.size(), 0xFF),
                {p.numSeqs, p.numHeads, p.headSize});
    llvm::Error error = (*engine)->invoke("attend", q.ptr(), kc.ptr(), vc.ptr(),
                                          bt.ptr(), cl.ptr(), o.ptr());
    if (error) {
      ADD_FAILURE() << llvm::toString(std::move(error));
      return {};
    }
    return decode(o.bytes, p.type);
  }

  /// Runs `problem` and checks every element against its bound; returns
  /// the check for the caller's statistics.
  BoundCheck expectWithinBound(const DecodeAttentionProblem &problem,
                               const std::string &what,
                               const char *precision = "dequantized",
                               float qScale = 1.0f,
                               const DecodeAttentionProblem *exact = nullptr,
                               float probScale = 1.0f,
                               const KernelArithmetic &arithmetic = {},
                               const std::vector<float> &qHeads = {}) {
    DecodeAttentionReference ref =
        computeDecodeAttentionReference(exact ? *exact : problem, arithmetic);
    EXPECT_TRUE(ref.error.empty()) << what << ": " << ref.error;
    std::vector<double> got =
        run(problem, precision, qScale, probScale, qHeads);
    if (got.size() != problem.outputSize() || !ref.error.empty())
      return {};
    BoundCheck check = checkAgainstReference(problem, ref, got);
    EXPECT_EQ(check.violations, 0u)
        << what << ": first at "
        << describeElement(problem, check.firstViolation) << ": got "
        << got[check.firstViolation] << ", exact "
        << ref.out[check.firstViolation] << ", bound "
        << ref.bound[check.firstViolation];
    worstRowUlps = std::max(worstRowUlps, check.maxErrorRowUlps);
    worstOverBound = std::max(worstOverBound, check.maxErrorOverBound);
    return check;
  }

  MLIRContext context;
  double worstRowUlps = 0, worstOverBound = 0;
};

TEST_F(KVQAttentionExecTest, EveryFormatHeadSizeAndGroupWithinTheBound) {
  const AttentionType types[] = {AttentionType::BF16, AttentionType::F16,
                                 AttentionType::F32};
  struct Shape {
    int64_t heads, kvHeads, headSize;
  } shapes[] = {{2, 2, 64}, {8, 2, 128}, {16, 2, 256}};
  int n = 0;
  for (CacheFormat format : kAllCacheFormats) {
    for (const Shape &shape : shapes) {
      RandomProblemOptions options;
      options.seed = 100 + n;
      options.cacheFormat = format;
      // An auto cache holds the activations: the queries' type.
      options.type = format == CacheFormat::BF16  ? AttentionType::BF16
                     : format == CacheFormat::F16 ? AttentionType::F16
                                                  : types[n % 3];
      ++n;
      options.numHeads = shape.heads;
      options.numKVHeads = shape.kvHeads;
      options.headSize = shape.headSize;
      // Lengths that are and are not multiples of the block size, 1, and
      // a context of several blocks; padding entries are poisoned.
      options.contextLens = {1, 15, 16, 17, 70};
      options.valueMean = 0.5;
      DecodeAttentionProblem problem = makeRandomProblem(options);
      std::string what = std::string(getCacheFormatName(format)) + " " +
                         getAttentionTypeName(options.type) + " " +
                         std::to_string(shape.heads) + "/" +
                         std::to_string(shape.kvHeads) + " heads, D " +
                         std::to_string(shape.headSize);
      BoundCheck check = expectWithinBound(problem, what);
      std::printf("[ kvq      ] %-34s largest error %.3g ulps (row), bound "
                  "%.3g ulps (row)\n",
                  what.c_str(), check.maxErrorRowUlps, check.maxBoundRowUlps);
    }
  }
  std::printf("[ kvq      ] largest error %.3g ulps of the output at the row "
              "maximum, %.3g of the bound\n",
              worstRowUlps, worstOverBound);
}

TEST_F(KVQAttentionExecTest, LongContextAndPeakedSoftmax) {
  RandomProblemOptions options;
  options.seed = 7;
  options.numHeads = 4;
  options.numKVHeads = 1;
  options.contextLens = {4096, 3};
  options.queryStd = 4.0; // sharper softmax
  options.valueMean = 0.25;
  expectWithinBound(makeRandomProblem(options), "L = 4096, e4m3");
  options.cacheFormat = CacheFormat::BF16;
  expectWithinBound(makeRandomProblem(options), "L = 4096, bf16 cache");
  std::printf("[ kvq      ] largest error %.3g ulps at the row maximum, %.3g "
              "of the bound\n",
              worstRowUlps, worstOverBound);
}

/// Per-head scales (`k = [...]`, `v = [...]`): each KV head dequantized
/// with its own scales, which differ by factors of 3 (headSpread), within
/// the same bound as per-tensor scales; the outputs are far outside it for
/// a kernel that gives every head one scale (the layer's single value, the
/// max), so the check can tell.
TEST_F(KVQAttentionExecTest, PerHeadScalesWithinTheBound) {
  int n = 0;
  for (CacheFormat format : kAllCacheFormats) {
    if (getCacheElementBytes(format) != 1)
      continue; // an auto cache has no scales
    RandomProblemOptions options;
    options.seed = 900 + n;
    options.cacheFormat = format;
    options.type = n % 2 ? AttentionType::F16 : AttentionType::BF16;
    options.numHeads = 8;
    options.numKVHeads = 4;
    options.headSize = 64 << (n % 2);
    options.contextLens = {1, 17, 70};
    options.valueMean = 0.5;
    options.perHeadScales = true;
    ++n;
    DecodeAttentionProblem problem = makeRandomProblem(options);
    ASSERT_EQ(problem.kHeadScales.size(), 4u);
    std::string what = std::string("per-head ") + getCacheFormatName(format);
    BoundCheck check = expectWithinBound(problem, what);
    std::printf("[ kvq      ] %-34s largest error %.3g ulps (row), bound "
                "%.3g ulps (row)\n",
                what.c_str(), check.maxErrorRowUlps, check.maxBoundRowUlps);

    DecodeAttentionProblem oneScale = problem;
    oneScale.kScale = *std::max_element(problem.kHeadScales.begin(),
                                        problem.kHeadScales.end());
    oneScale.vScale = *std::max_element(problem.vHeadScales.begin(),
                                        problem.vHeadScales.end());
    oneScale.kHeadScales.clear();
    oneScale.vHeadScales.clear();
    std::vector<double> got = run(problem);
    DecodeAttentionReference wrong = computeDecodeAttentionReference(oneScale);
    ASSERT_TRUE(wrong.error.empty()) << wrong.error;
    EXPECT_GT(checkAgainstReference(problem, wrong, got).violations, 0u)
        << what << ": the outputs also fit one scale for every head";
  }
}

/// fp8_qk with per-head Q scales (`q = [...]`, reduced to KV heads): the
/// queries of KV head g quantized with its Q scale, the score scale
/// s_q[g] * s_k[g] * scale (powers of two for Q: the product is exact).
TEST_F(KVQAttentionExecTest, Fp8QKPerHeadQueryScales) {
  for (CacheFormat format : {CacheFormat::F8E4M3FN, CacheFormat::F8E5M2FNUZ}) {
    RandomProblemOptions options;
    options.seed = 37;
    options.cacheFormat = format;
    options.numHeads = 8;
    options.numKVHeads = 4;
    options.contextLens = {33, 1};
    options.queryStd = 2.0;
    options.perHeadScales = true;
    DecodeAttentionProblem problem = makeRandomProblem(options);
    const std::vector<float> qHeads = {0.03125f, 0.0625f, 0.015625f, 0.125f};
    DecodeAttentionProblem exact = problem;
    const int64_t D = problem.headSize, group = 2;
    for (size_t i = 0; i < exact.query.size(); ++i) {
      int64_t g = (int64_t(i) / D % problem.numHeads) / group;
      exact.query[i] = quantizeLikeTheStore(exact.query[i], qHeads[g], format);
    }
    for (int64_t g = 0; g < 4; ++g)
      exact.kHeadScales[g] = problem.kHeadScales[g] * qHeads[g];
    expectWithinBound(
        problem, std::string("fp8_qk per-head ") + getCacheFormatName(format),
        "fp8_qk", 1.0f, &exact, 1.0f, {}, qHeads);
  }
}

TEST_F(KVQAttentionExecTest, EmptyContextWritesZeros) {
  RandomProblemOptions options;
  options.contextLens = {0, 5};
  DecodeAttentionProblem problem = makeRandomProblem(options);
  std::vector<double> got = run(problem);
  ASSERT_EQ(got.size(), problem.outputSize());
  for (int64_t i = 0; i < problem.numHeads * problem.headSize; ++i)
    ASSERT_EQ(got[i], 0.0) << i;
  expectWithinBound(problem, "lengths 0 and 5");
}

/// fp8_qk: the kernel quantizes Q with the layer's Q scale exactly as the
/// store quantizes K; the exact result is that of the quantized queries
/// (their values) with the K scale times the Q scale (a power of two, so
/// the product is exact and the bound's score scale is the kernel's).
TEST_F(KVQAttentionExecTest, Fp8QKQuantizesQueriesLikeTheStore) {
  for (CacheFormat format :
       {CacheFormat::F8E4M3FN, CacheFormat::F8E5M2, CacheFormat::F8E4M3FNUZ}) {
    RandomProblemOptions options;
    options.seed = 31;
    options.cacheFormat = format;
    options.contextLens = {33, 1};
    options.queryStd = 2.0;
    DecodeAttentionProblem problem = makeRandomProblem(options);
    const float qScale = 0.03125f;
    DecodeAttentionProblem exact = problem;
    for (float &x : exact.query)
      x = quantizeLikeTheStore(x, qScale, format);
    exact.kScale = problem.kScale * qScale;
    ASSERT_TRUE(isFp8(format));
    expectWithinBound(problem,
                      std::string("fp8_qk ") + getCacheFormatName(format),
                      "fp8_qk", qScale, &exact);
  }
}

/// fp8_qk_pv: Q quantized as in fp8_qk, and each weight e_j = exp(s_j - m)
/// (<= 1, the two passes' shift m is the row's maximum score) quantized to
/// the cache format with the layer's prob scale s_p, as the store
/// quantizes: code_j = RNE_fp8(e_j / s_p), no saturation while 1 / s_p is
/// at most the format's largest value. The code is the weight in both the
/// sum l and every acc_d, so the common factor s_p cancels and each row
/// stays a convex combination of V rows (no probability mass is lost: the
/// normalizer is the sum of what was multiplied). In the bound's terms
/// (DecodeAttentionReference.h, steps 2-4) the weight s_p * code_j is e_j
/// rounded with relative error at most 2^-p (p = 4 significand bits for
/// e4m3, 3 for e5m2) where e_j / s_p is normal, and absolute error at most
/// s_p times half the format's smallest subnormal below. With s_p a power
/// of two, e_j / s_p is exact before the one rounding.
TEST_F(KVQAttentionExecTest, Fp8QKPVQuantizesWeightsWithTheProbScale) {
  struct Format {
    CacheFormat format;
    double unitRoundoff, halfSubnormal;
  } formats[] = {{CacheFormat::F8E4M3FN, 0x1p-4, 0x1p-10},
                 {CacheFormat::F8E5M2, 0x1p-3, 0x1p-17},
                 {CacheFormat::F8E4M3FNUZ, 0x1p-4, 0x1p-11},
                 {CacheFormat::F8E5M2FNUZ, 0x1p-3, 0x1p-18}};
  // 1 / s_p = 128: below every format's largest value (240 for e4m3fnuz).
  const float probScale = 0x1p-7f, qScale = 0.03125f;
  for (const Format &f : formats) {
    RandomProblemOptions options;
    options.seed = 41;
    options.cacheFormat = f.format;
    options.contextLens = {33, 1, 200};
    options.queryStd = 2.0;
    options.valueMean = 0.5;
    DecodeAttentionProblem problem = makeRandomProblem(options);
    DecodeAttentionProblem exact = problem;
    for (float &x : exact.query)
      x = quantizeLikeTheStore(x, qScale, f.format);
    exact.kScale = problem.kScale * qScale;
    KernelArithmetic arithmetic;
    arithmetic.weightRel = f.unitRoundoff;
    arithmetic.weightAbs = probScale * f.halfSubnormal;
    BoundCheck check = expectWithinBound(
        problem, std::string("fp8_qk_pv ") + getCacheFormatName(f.format),
        "fp8_qk_pv", qScale, &exact, probScale, arithmetic);
    std::printf("fp8_qk_pv %-12s max error %.3g ulp (row %.3g), bound %.3g "
                "ulp, error/bound %.3g\n",
                getCacheFormatName(f.format), check.maxErrorUlps,
                check.maxErrorRowUlps, check.maxBoundUlps,
                check.maxErrorOverBound);
  }
}

/// The normalization of fp8_qk_pv loses no mass: with every V value equal,
/// each output is that value up to the output's rounding, however coarsely
/// the weights were quantized. A kernel dividing by the sum of the
/// unquantized weights instead is off by the quantization's net relative
/// error.
TEST_F(KVQAttentionExecTest, Fp8QKPVKeepsRowsConvex) {
  for (CacheFormat format : {CacheFormat::F8E4M3FN, CacheFormat::F8E5M2}) {
    RandomProblemOptions options;
    options.seed = 43;
    options.cacheFormat = format;
    options.contextLens = {300, 7};
    options.queryStd = 3.0;
    // V scale = 4e-6 / max: every V value (mean 1) saturates to the
    // format's largest code, so all are max * s_v.
    options.valueStd = 1e-6;
    options.valueMean = 1.0;
    DecodeAttentionProblem problem = makeRandomProblem(options);
    std::vector<double> got =
        run(problem, "fp8_qk_pv", /*qScale=*/0.03125f, /*probScale=*/0x1p-7f);
    ASSERT_EQ(got.size(), problem.outputSize());
    double expected =
        APFloat::getLargest(semanticsOf(format)).convertToDouble() *
        double(problem.vScale);
    // The bf16 output's rounding (2^-9 relative) and f32's sums and
    // quotient (below 2^-20 at these lengths): 2^-8 leaves margin, and a
    // normalizer off by more than 0.4% fails.
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], expected, std::fabs(expected) * 0x1p-8)
          << getCacheFormatName(format) << " element " << i;
  }
}

/// End to end: kvq.cache_store writes the bf16 K and V of every context
/// token into an e4m3 cache, then kvq.paged_attention of the same layer
/// reads it: the output is within the bound of the exact attention over
/// the bytes the store wrote. Against the exact attention over the
/// unquantized bf16 K and V, the quantization error is printed (reported,
/// not asserted: it is the format's, not the kernel's).
TEST_F(KVQAttentionExecTest, StoreThenAttendOnTheSameLayer) {
  RandomProblemOptions options;
  options.seed = 5;
  options.cacheFormat = CacheFormat::BF16; // the unquantized K and V
  options.contextLens = {40, 17, 1};
  options.valueMean = 0.5;
  DecodeAttentionProblem bf16 = makeRandomProblem(options);
  const DecodeAttentionProblem &p = bf16;
  const float kScale = 0.02f, vScale = 0.015f;

  // Every context token once, in sequence order, with its slot.
  std::vector<float> keys, values;
  std::vector<int64_t> slots;
  int64_t row = p.numKVHeads * p.headSize;
  for (int64_t s = 0; s < p.numSeqs; ++s)
    for (int32_t j = 0; j < p.contextLens[s]; ++j) {
      int64_t slot = int64_t(p.blockTables[s * p.maxBlocks + j / p.blockSize]) *
                         p.blockSize +
                     j % p.blockSize;
      slots.push_back(slot);
      for (int64_t e = 0; e < row; ++e) {
        keys.push_back(
            decodeCacheCode(p.cacheFormat, p.keyCache[slot * row + e]));
        values.push_back(
            decodeCacheCode(p.cacheFormat, p.valueCache[slot * row + e]));
      }
    }
  int64_t tokens = slots.size();
  auto shape = [](std::initializer_list<int64_t> dims, const char *elem) {
    std::string t = "memref<";
    for (int64_t d : dims)
      t += std::to_string(d) + "x";
    return t + elem + ">";
  };
  std::string aType = shape({tokens, p.numKVHeads, p.headSize}, "bf16");
  std::string sType = shape({tokens}, "i64");
  std::string cType =
      shape({p.numBlocks, p.blockSize, p.numKVHeads, p.headSize}, "f8E4M3FN");
  std::string qType = shape({p.numSeqs, p.numHeads, p.headSize}, "bf16");
  std::string bType = shape({p.numSeqs, p.maxBlocks}, "i32");
  std::string lType = shape({p.numSeqs}, "i32");
  std::string src =
      "kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = " +
      floatText(kScale) + " checkpoint, v = " + floatText(vScale) +
      " checkpoint, q = 1.0 default, prob = 1.0 default>)\n"
      "func.func @step(%k: " +
      aType + ", %v: " + aType + ", %s: " + sType + ", %kc: " + cType +
      ", %vc: " + cType + ", %q: " + qType + ", %bt: " + bType +
      ", %cl: " + lType + ", %o: " + qType +
      ") attributes {llvm.emit_c_interface} {\n"
      "  kvq.cache_store @l (%k, %v) into (%kc, %vc) at %s : " +
      aType + ", " + cType + ", " + sType +
      "\n  kvq.paged_attention @l (%q) cache(%kc, %vc) blocks(%bt, %cl) "
      "into(%o) scale(" +
      floatText(p.softmaxScale) + ") : " + qType + ", " + cType + ", " + bType +
      ", " + lType + "\n  return\n}\n";
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(src, &context);
  ASSERT_TRUE(module) << src;
  PassManager pm(&context);
  kvq::buildKVQToLLVMPipeline(pm);
  ASSERT_TRUE(succeeded(pm.run(*module)));
  auto engine = ExecutionEngine::create(*module);
  ASSERT_TRUE(bool(engine)) << llvm::toString(engine.takeError());

  auto bytesOf = [](const auto &v) {
    std::vector<uint8_t> b(v.size() * sizeof(v[0]));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  Buffer<3> k(encode(keys, AttentionType::BF16),
              {tokens, p.numKVHeads, p.headSize});
  Buffer<3> v(encode(values, AttentionType::BF16),
              {tokens, p.numKVHeads, p.headSize});
  Buffer<1> sl(bytesOf(slots), {tokens});
  std::array<int64_t, 4> cacheShape = {p.numBlocks, p.blockSize, p.numKVHeads,
                                       p.headSize};
  // NaN (0x7F) everywhere the store does not write.
  size_t cacheBytes = p.numBlocks * p.blockSize * row;
  Buffer<4> kc(std::vector<uint8_t>(cacheBytes, 0x7F), cacheShape);
  Buffer<4> vc(std::vector<uint8_t>(cacheBytes, 0x7F), cacheShape);
  Buffer<3> q(encode(p.query, AttentionType::BF16),
              {p.numSeqs, p.numHeads, p.headSize});
  Buffer<2> bt(bytesOf(p.blockTables), {p.numSeqs, p.maxBlocks});
  Buffer<1> cl(bytesOf(p.contextLens), {p.numSeqs});
  Buffer<3> o(std::vector<uint8_t>(q.bytes.size(), 0xFF),
              {p.numSeqs, p.numHeads, p.headSize});
  llvm::Error error =
      (*engine)->invoke("step", k.ptr(), v.ptr(), sl.ptr(), kc.ptr(), vc.ptr(),
                        q.ptr(), bt.ptr(), cl.ptr(), o.ptr());
  ASSERT_FALSE(bool(error)) << llvm::toString(std::move(error));
  std::vector<double> got = decode(o.bytes, AttentionType::BF16);

  // The exact attention over the stored bytes.
  DecodeAttentionProblem stored = bf16;
  stored.cacheFormat = CacheFormat::F8E4M3FN;
  stored.kScale = kScale;
  stored.vScale = vScale;
  stored.keyCache.assign(kc.bytes.begin(), kc.bytes.end());
  stored.valueCache.assign(vc.bytes.begin(), vc.bytes.end());
  DecodeAttentionReference ref = computeDecodeAttentionReference(stored);
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  BoundCheck check = checkAgainstReference(stored, ref, got);
  EXPECT_EQ(check.violations, 0u)
      << describeElement(stored, check.firstViolation);

  DecodeAttentionReference unquantized = computeDecodeAttentionReference(bf16);
  ASSERT_TRUE(unquantized.error.empty()) << unquantized.error;
  double maxAbs = 0, maxRef = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    maxAbs = std::max(maxAbs, std::abs(got[i] - unquantized.out[i]));
    maxRef = std::max(maxRef, std::abs(unquantized.out[i]));
  }
  std::printf("[ kvq      ] store + attend, e4m3 cache: kernel error %.3g ulps "
              "(row) within the bound; quantization error against bf16 K/V: "
              "max |diff| %.4g (outputs up to %.4g)\n",
              check.maxErrorRowUlps, maxAbs, maxRef);
}

} // namespace

//===----------------------------------------------------------------------===//
// The GPU kernel (NVVM), checked on a real GPU
//===----------------------------------------------------------------------===//
//
// The GPU form cannot run here. KVQ_ATTN_GPU_WRITE=<out>/<config> writes
// into that folder (test/Integration/GPU/CUDA/prepare-gpu-checks.sh:
// `attention` for sm_90, `attention-portable` for sm_75, chosen by
// KVQ_ATTN_GPU_CHIP) kernels.mlir (one function per signature, lowered to
// PTX by the script), plan.txt for kvq-launch and manifest.txt; the sm_90
// configuration also writes every case's inputs into <out>/attention/in,
// which the other reads. run-gpu-checks.sh runs the plans on the GPU;
// KVQ_ATTN_GPU_DUMPS=<dumps-<config>> then checks every output element of
// every case against the bound of the kernel that ran it (the tensor-core
// arithmetic of DecodeAttentionReference.h step 8, or the portable
// kernel's, which is the CPU form's) and prints the largest errors.

namespace {
/// One kernel launch of the GPU checks.
struct GPUAttentionCase {
  std::string name;
  RandomProblemOptions options;
  bool fp8Query = false;
  /// fp8_qk_pv (with fp8Query): the weights quantized with kGPUProbScale.
  bool fp8Probs = false;
  /// Workspace bytes (0: none, no split).
  int64_t workspaceBytes = 0;
  /// Tiles per split given to the kernel instead of the split rule's.
  int64_t splitTiles = 0;
};

constexpr float kGPUQScale = 0.03125f;

/// The Q scale of KV head `g` (kGPUQScale, halved on odd heads for
/// per-head scales: powers of two keep s_q * s_k exact).
float gpuQScale(const DecodeAttentionProblem &p, int64_t g) {
  return p.kHeadScales.empty() || g % 2 == 0 ? kGPUQScale : kGPUQScale / 2;
}
/// 1 / s_p = 128 fits every fp8 format (no saturation of weights <= 1).
constexpr float kGPUProbScale = 0x1p-7f;

/// The weights of fp8_qk_pv in the bound's terms (see
/// Fp8QKPVQuantizesWeightsWithTheProbScale): relative error the format's
/// unit roundoff, absolute s_p times half its smallest subnormal.
void setQuantizedWeights(KernelArithmetic &a, CacheFormat format,
                         float probScale) {
  bool e4m3 =
      format == CacheFormat::F8E4M3FN || format == CacheFormat::F8E4M3FNUZ;
  double halfSubnormal = format == CacheFormat::F8E4M3FN     ? 0x1p-10
                         : format == CacheFormat::F8E4M3FNUZ ? 0x1p-11
                         : format == CacheFormat::F8E5M2     ? 0x1p-17
                                                             : 0x1p-18;
  a.weightRel = e4m3 ? 0x1p-4 : 0x1p-3;
  a.weightAbs = double(probScale) * halfSubnormal;
}

std::vector<GPUAttentionCase> getGPUAttentionCases() {
  std::vector<GPUAttentionCase> cases;
  const AttentionType types[] = {AttentionType::BF16, AttentionType::F16,
                                 AttentionType::F32};
  struct Shape {
    int64_t heads, kvHeads, headSize, blockSize;
  } shapes[] = {{8, 8, 64, 16}, {16, 4, 128, 32}, {16, 2, 256, 16}};
  const int64_t oneMiB = 1 << 20;
  int n = 0;
  for (CacheFormat format : kAllCacheFormats)
    for (const Shape &shape : shapes) {
      GPUAttentionCase c;
      RandomProblemOptions &o = c.options;
      o.seed = 700 + n;
      o.cacheFormat = format;
      o.type = format == CacheFormat::BF16  ? AttentionType::BF16
               : format == CacheFormat::F16 ? AttentionType::F16
                                            : types[n % 3];
      o.numHeads = shape.heads;
      o.numKVHeads = shape.kvHeads;
      o.headSize = shape.headSize;
      o.blockSize = shape.blockSize;
      o.contextLens = {1, 17, 250, 0, 96};
      o.valueMean = n % 2 ? 0.5 : 0.0;
      c.workspaceBytes = n % 4 == 3 ? 0 : oneMiB;
      c.name = std::string("fmt_") + getCacheFormatName(format) + "_" +
               getAttentionTypeName(o.type) + "_h" +
               std::to_string(shape.heads) + "x" +
               std::to_string(shape.kvHeads) + "_d" +
               std::to_string(shape.headSize) + "_b" +
               std::to_string(shape.blockSize);
      cases.push_back(c);
      ++n;
    }
  // Long contexts: split (the rule's), unsplit beyond one table chunk of
  // the kernel (512 tiles), a peaked softmax; explicit split sizes.
  auto base = [&](const std::string &name, std::vector<int32_t> lens) {
    GPUAttentionCase c;
    c.name = name;
    c.options.seed = 800 + cases.size();
    c.options.numHeads = 8;
    c.options.numKVHeads = 2;
    c.options.contextLens = std::move(lens);
    c.workspaceBytes = 64 * oneMiB;
    return c;
  };
  cases.push_back(base("long_split", {4096, 1000, 33}));
  cases.push_back(base("long_32768", {32768}));
  GPUAttentionCase unsplit = base("long_unsplit", {9000, 8200});
  unsplit.workspaceBytes = 0;
  cases.push_back(unsplit);
  GPUAttentionCase peaked = base("peaked", {3000, 2});
  peaked.options.queryStd = 8.0;
  cases.push_back(peaked);
  for (int64_t st : {1, 3, 7}) {
    GPUAttentionCase c = base("split_tiles_" + std::to_string(st), {300, 16});
    c.splitTiles = st;
    cases.push_back(c);
  }
  // Per-head scales: the tensor-core kernel (split and not), fp8_qk, and
  // the portable kernel.
  for (CacheFormat format :
       {CacheFormat::F8E4M3FN, CacheFormat::Int8, CacheFormat::F8E5M2FNUZ}) {
    GPUAttentionCase c = base(
        std::string("per_head_") + getCacheFormatName(format), {2000, 17, 1});
    c.options.numKVHeads = 4;
    c.options.cacheFormat = format;
    c.options.valueMean = 0.5;
    c.options.perHeadScales = true;
    c.workspaceBytes = format == CacheFormat::Int8 ? 0 : c.workspaceBytes;
    cases.push_back(c);
  }
  GPUAttentionCase perHeadQK = base("per_head_fp8_qk", {700, 5});
  perHeadQK.options.numKVHeads = 4;
  perHeadQK.options.queryStd = 2.0;
  perHeadQK.options.perHeadScales = true;
  perHeadQK.fp8Query = true;
  cases.push_back(perHeadQK);
  GPUAttentionCase perHeadPortable = base("per_head_portable_d96", {90, 31});
  perHeadPortable.options.numKVHeads = 4;
  perHeadPortable.options.headSize = 96;
  perHeadPortable.options.perHeadScales = true;
  perHeadPortable.fp8Query = true;
  cases.push_back(perHeadPortable);
  GPUAttentionCase small = base("small_workspace", {2000});
  small.workspaceBytes = 100000; // room for a few splits only
  cases.push_back(small);
  // Shapes only the portable kernel takes on sm_90.
  GPUAttentionCase d96 = base("portable_d96", {200, 31});
  d96.options.headSize = 96;
  cases.push_back(d96);
  GPUAttentionCase g16 = base("portable_g16", {130});
  g16.options.numHeads = 32;
  g16.options.headSize = 64;
  cases.push_back(g16);
  GPUAttentionCase b8 = base("portable_b8", {77, 8});
  b8.options.blockSize = 8;
  cases.push_back(b8);
  // fp8_qk_pv (the portable kernel): Q and the weights quantized.
  for (CacheFormat format :
       {CacheFormat::F8E4M3FN, CacheFormat::F8E5M2, CacheFormat::F8E4M3FNUZ,
        CacheFormat::F8E5M2FNUZ}) {
    GPUAttentionCase c = base(
        std::string("fp8_qk_pv_") + getCacheFormatName(format), {300, 1, 45});
    c.options.cacheFormat = format;
    c.options.queryStd = 2.0;
    c.options.valueMean = 0.5;
    c.fp8Query = c.fp8Probs = true;
    cases.push_back(c);
  }
  // fp8_qk: Q quantized with the layer's Q scale.
  for (CacheFormat format :
       {CacheFormat::F8E4M3FN, CacheFormat::F8E5M2, CacheFormat::F8E4M3FNUZ}) {
    GPUAttentionCase c =
        base(std::string("fp8_qk_") + getCacheFormatName(format), {500, 1, 77});
    c.options.cacheFormat = format;
    c.options.queryStd = 2.0;
    c.fp8Query = true;
    cases.push_back(c);
  }
  // The staged kernel (8-bit cache, D 128, splits of 8 tiles or more) at 1
  // and 8 query heads per KV head, and at 8 and 9 tiles a split (two tiles
  // a warp, the fewest it takes; one warp a third).
  GPUAttentionCase gqa1 = base("staged_gqa1", {3000, 130, 1});
  gqa1.options.numKVHeads = 8;
  gqa1.options.cacheFormat = CacheFormat::F8E5M2;
  cases.push_back(gqa1);
  GPUAttentionCase gqa8 = base("staged_gqa8", {5000, 257});
  gqa8.options.numHeads = 16;
  gqa8.options.valueMean = 0.5;
  cases.push_back(gqa8);
  for (int64_t st : {8, 9}) {
    GPUAttentionCase c =
        base("staged_tiles_" + std::to_string(st), {300, 129, 16});
    c.splitTiles = st;
    cases.push_back(c);
  }
  return cases;
}

/// Whether the host code launches the staged kernel for splits of
/// `splitTiles` tiles (0: the portable kernel) (docs/KernelABI.md).
bool runsStaged(const DecodeAttentionProblem &p, int64_t splitTiles) {
  return splitTiles >= kvq::kAttentionStagedMinTiles &&
         kvq::hasStagedAttentionKernel(8 * getCacheElementBytes(p.cacheFormat),
                                       p.headSize);
}

/// The split rule of buildAttentionLaunch (docs/KernelABI.md): the tiles
/// per split and the grid's x size.
std::pair<int64_t, int64_t> splitRule(const DecodeAttentionProblem &p,
                                      int64_t workspaceBytes) {
  auto ceilDiv = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  int64_t maxTiles = std::max<int64_t>(p.maxBlocks * p.blockSize / 16, 1);
  int64_t splitTiles = maxTiles;
  if (workspaceBytes > 0) {
    int64_t counterBytes = ceilDiv(4 * p.numSeqs * p.numKVHeads, 16) * 16;
    int64_t perSplit = p.numSeqs * p.numHeads * (p.headSize + 4) * 4;
    int64_t cap = workspaceBytes > counterBytes
                      ? (workspaceBytes - counterBytes) / perSplit
                      : 0;
    int64_t want = std::min<int64_t>(528 / (p.numSeqs * p.numKVHeads),
                                     kvq::kAttentionMaxSplits); // sm_90
    int64_t splits =
        std::max<int64_t>(1, std::min({want, cap, ceilDiv(maxTiles, 4)}));
    splitTiles = ceilDiv(maxTiles, splits);
  }
  return {splitTiles, ceilDiv(maxTiles, splitTiles)};
}

/// Whether the tensor-core kernel runs `p` (fp8_qk_pv if `fp8Probs`) on
/// sm_`sm`, else the portable kernel (AttentionKernel.cpp,
/// getTensorCoreAttentionLimit).
bool takesTensorCores(const DecodeAttentionProblem &p, int sm, bool fp8Probs) {
  int64_t d = p.headSize;
  return sm >= 80 && !fp8Probs && p.numHeads / p.numKVHeads <= 8 &&
         (d == 64 || d == 128 || d == 256) && p.blockSize % 16 == 0;
}

/// The problem whose exact result the kernel approximates (fp8_qk: the
/// quantized queries, K scale times the Q scale, a power of two).
DecodeAttentionProblem exactProblemOf(const GPUAttentionCase &c,
                                      const DecodeAttentionProblem &p) {
  DecodeAttentionProblem exact = p;
  if (c.fp8Query) {
    const int64_t group = p.numHeads / p.numKVHeads;
    for (size_t i = 0; i < exact.query.size(); ++i) {
      int64_t g = (int64_t(i) / p.headSize % p.numHeads) / group;
      exact.query[i] =
          quantizeLikeTheStore(exact.query[i], gpuQScale(p, g), p.cacheFormat);
    }
    exact.kScale = p.kScale * kGPUQScale;
    for (int64_t g = 0; g < int64_t(p.kHeadScales.size()); ++g)
      exact.kHeadScales[g] = p.kHeadScales[g] * gpuQScale(p, g);
  }
  return exact;
}

/// RN32(x * y * log2(e)) in one rounding (IEEE quad holds x * y exactly).
float scoreScaleLog2(float x, float y) {
  APFloat v(APFloat::IEEEquad(), "1.44269504088896340735992468100189214");
  bool lost;
  for (float f : {x, y}) {
    APFloat a(f);
    a.convert(APFloat::IEEEquad(), APFloat::rmNearestTiesToEven, &lost);
    v.multiply(a, APFloat::rmNearestTiesToEven);
  }
  v.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
  return v.convertToFloat();
}

std::string hexFloat(float v) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%a", double(v));
  return buf;
}

void writeFile(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
}

std::vector<uint8_t> bytesOfI32(const std::vector<int32_t> &v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}
} // namespace

TEST(KVQAttentionGPU, WriteChecks) {
  const char *dir = std::getenv("KVQ_ATTN_GPU_WRITE");
  if (!dir)
    GTEST_SKIP() << "set KVQ_ATTN_GPU_WRITE to write the GPU checks";
  const std::string out = dir;
  const char *chipEnv = std::getenv("KVQ_ATTN_GPU_CHIP");
  const std::string chip = chipEnv ? chipEnv : "sm_90";
  ASSERT_TRUE(chip.size() == 5 && chip.rfind("sm_", 0) == 0)
      << "KVQ_ATTN_GPU_CHIP: sm_NN, got " << chip;
  const int sm = std::stoi(chip.substr(3));
  // The configuration is the folder's name; the inputs are sm_90's.
  const std::string config = out.substr(out.find_last_of('/') + 1);
  const bool writeInputs = chip == "sm_90";
  std::ofstream plan(out + "/plan.txt"), manifest(out + "/manifest.txt");
  ASSERT_TRUE(plan.good() && manifest.good()) << "cannot write into " << out;
  plan << "module " << config << "/kernels.ptx\n";
  std::string kernels =
      "gpu.module @kvq_cache_kernels [#nvvm.target<chip = \"" + chip +
      "\">] {}\n";
  std::set<std::string> signatures;
  for (const GPUAttentionCase &c : getGPUAttentionCases()) {
    DecodeAttentionProblem p = makeRandomProblem(c.options);
    const std::string in = "attention/in/" + c.name;
    if (writeInputs) {
      writeFile(out + "/in/" + c.name + ".q", encode(p.query, p.type));
      writeFile(out + "/in/" + c.name + ".kc", getCacheBytes(p, false));
      writeFile(out + "/in/" + c.name + ".vc", getCacheBytes(p, true));
      writeFile(out + "/in/" + c.name + ".bt", bytesOfI32(p.blockTables));
      writeFile(out + "/in/" + c.name + ".cl", bytesOfI32(p.contextLens));
    }
    const bool tensorCores = takesTensorCores(p, sm, c.fp8Probs);
    const bool perHead = !p.kHeadScales.empty();
    // The layer's scales only shape the kernel (the plan passes the
    // values): ones, per head or not.
    std::string one = "1.0";
    if (perHead) {
      one = "[1.0";
      for (int64_t g = 1; g < p.numKVHeads; ++g)
        one += ", 1.0";
      one += "]";
    }
    const char *q = getAttentionTypeName(p.type);
    const char *ct = mlirTypeOf(p.cacheFormat);
    std::string hq = std::to_string(p.numHeads),
                hkv = std::to_string(p.numKVHeads),
                d = std::to_string(p.headSize),
                bs = std::to_string(p.blockSize);
    std::string sig =
        std::string(q) + "_" + ct + "_" + hq + "x" + hkv + "x" + d + "_b" + bs +
        (c.fp8Probs   ? "_fp8_qk_pv"
         : c.fp8Query ? "_fp8_qk"
                      : "") +
        (perHead ? "_per_head" : "") + (c.workspaceBytes ? "_ws" : "");
    std::string host = "kvq_paged_attention_" + sig;
    if (signatures.insert(sig).second) {
      std::string qType = "memref<?x" + hq + "x" + d + "x" + q + ">";
      std::string cType =
          "memref<?x" + bs + "x" + hkv + "x" + d + "x" + ct + ">";
      std::string types =
          qType + ", " + cType + ", memref<?x?xi32>, memref<?xi32>";
      std::string ws = c.workspaceBytes ? ", %ws: memref<?xi8>" : "";
      kernels += "kvq.layer @l_" + sig + " cache(" + dtypeOf(p.cacheFormat) +
                 ") resolved(#kvq.resolved_scales<k = " + one +
                 " checkpoint, v = " + one + " checkpoint, q = " + one +
                 " checkpoint, prob = " +
                 (c.fp8Probs ? floatText(kGPUProbScale) + " checkpoint"
                             : std::string("1.0 default")) +
                 ">)\n"
                 "func.func @attend_" +
                 sig + "(%q: " + qType + ", %kc: " + cType + ", %vc: " + cType +
                 ", %bt: memref<?x?xi32>, %cl: memref<?xi32>, %o: " + qType +
                 ws + ") {\n  kvq.paged_attention @l_" + sig +
                 " (%q) cache(%kc, %vc) blocks(%bt, %cl) into(%o)" +
                 (c.workspaceBytes ? " workspace(%ws : memref<?xi8>)" : "") +
                 (c.fp8Probs   ? " precision(fp8_qk_pv)"
                  : c.fp8Query ? " precision(fp8_qk)"
                               : "") +
                 " : " + types + "\n  return\n}\n";
    }
    auto [ruleTiles, grid] = splitRule(p, tensorCores ? c.workspaceBytes : 0);
    int64_t splitTiles = c.splitTiles ? c.splitTiles : ruleTiles;
    if (!tensorCores) // docs/KernelABI.md, the portable kernel
      splitTiles = 0;
    else if (c.splitTiles)
      grid = (std::max<int64_t>(p.maxBlocks * p.blockSize / 16, 1) +
              splitTiles - 1) /
             splitTiles;
    unsigned qBytes = p.type == AttentionType::F32 ? 4 : 2;
    unsigned cBytes = getCacheElementBytes(p.cacheFormat);
    const bool staged = runsStaged(p, splitTiles);
    std::string kernel =
        host + (staged ? kvq::kAttentionStagedKernelSuffix.str() : "_kernel");
    auto dims = [](std::initializer_list<int64_t> ds) {
      std::string s;
      for (int64_t v : ds)
        s += (s.empty() ? "" : "x") + std::to_string(v);
      return s;
    };
    std::string b = "_" + c.name;
    plan << "buffer q" << b << " " << qBytes << " "
         << dims({p.numSeqs, p.numHeads, p.headSize}) << " file:" << in
         << ".q\n";
    std::string cDims =
        dims({p.numBlocks, p.blockSize, p.numKVHeads, p.headSize});
    plan << "buffer kc" << b << " " << cBytes << " " << cDims << " file:" << in
         << ".kc\n";
    plan << "buffer vc" << b << " " << cBytes << " " << cDims << " file:" << in
         << ".vc\n";
    plan << "buffer bt" << b << " 4 " << dims({p.numSeqs, p.maxBlocks})
         << " file:" << in << ".bt\n";
    plan << "buffer cl" << b << " 4 " << p.numSeqs << " file:" << in << ".cl\n";
    // Poisoned: every element must be written.
    plan << "buffer o" << b << " " << qBytes << " "
         << dims({p.numSeqs, p.numHeads, p.headSize}) << " fill:ff\n";
    if (c.workspaceBytes)
      plan << "buffer ws" << b << " 1 " << c.workspaceBytes << " zero\n";
    // The score, V and Q scales, of each KV head with per-head scales.
    std::string scoreArgs, vArgs, qArgs;
    for (int64_t g = 0; g < (perHead ? p.numKVHeads : 1); ++g) {
      float qs = gpuQScale(p, g);
      float score = c.fp8Query
                        ? scoreScaleLog2(p.kScaleOf(g) * qs, p.softmaxScale)
                        : scoreScaleLog2(p.kScaleOf(g), p.softmaxScale);
      scoreArgs += " f32:" + hexFloat(score);
      vArgs += " f32:" + hexFloat(p.vScaleOf(g));
      qArgs += " f32:" + hexFloat(qs);
    }
    const bool ws = tensorCores && c.workspaceBytes;
    if (tensorCores)
      plan << "launch " << kernel << " " << grid << "x" << p.numKVHeads << "x"
           << p.numSeqs << " 128";
    else
      plan << "launch " << kernel << " "
           << (p.numSeqs * p.numHeads + kvq::kPortableAttentionThreads - 1) /
                  kvq::kPortableAttentionThreads
           << "x1x1 " << kvq::kPortableAttentionThreads;
    plan << " q" << b << " kc" << b << " vc" << b << " bt" << b << " cl" << b
         << " o" << b << (ws ? " ws" + b : "") << scoreArgs << vArgs << qArgs
         << (c.fp8Probs ? " f32:" + hexFloat(kGPUProbScale) : "")
         << (tensorCores ? " i64:" + std::to_string(splitTiles) : "")
         << " i64:" << p.numSeqs << " i64:" << p.numBlocks
         << " i64:" << p.numBlocks << " i64:" << p.numSeqs
         << " i64:" << p.maxBlocks << " i64:" << p.maxBlocks
         << " i64:" << p.numSeqs << " i64:" << p.numSeqs
         << (ws ? " i64:" + std::to_string(c.workspaceBytes) : "") << "\n";
    // The workspace must be zero-filled again after the call.
    plan << "dump o" << b << " dumps-" << config << "/" << c.name << ".out\n";
    if (c.workspaceBytes)
      plan << "dump ws" << b << " dumps-" << config << "/" << c.name << ".ws\n";
    manifest << c.name << " " << splitTiles << "\n";
  }
  std::ofstream(out + "/kernels.mlir") << kernels;
}

TEST(KVQAttentionGPU, GPUDumpsMatchReference) {
  const char *dir = std::getenv("KVQ_ATTN_GPU_DUMPS");
  if (!dir)
    GTEST_SKIP() << "set KVQ_ATTN_GPU_DUMPS to the dumps of run-gpu-checks.sh";
  std::map<std::string, int64_t> splitTilesOf;
  {
    std::ifstream manifest(std::string(dir) + "/manifest.txt");
    ASSERT_TRUE(manifest.good()) << "no manifest.txt in " << dir;
    std::string name;
    int64_t st;
    while (manifest >> name >> st)
      splitTilesOf[name] = st;
  }
  double worstRowUlps = 0, worstOverBound = 0;
  int checked = 0;
  for (const GPUAttentionCase &c : getGPUAttentionCases()) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(splitTilesOf.count(c.name)) << "not in the manifest";
    DecodeAttentionProblem p = makeRandomProblem(c.options);
    std::ifstream f(std::string(dir) + "/" + c.name + ".out", std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
    ASSERT_EQ(bytes.size(), encode(p.query, p.type).size());
    std::vector<double> got = decode(bytes, p.type);
    if (c.workspaceBytes) {
      std::ifstream w(std::string(dir) + "/" + c.name + ".ws",
                      std::ios::binary);
      std::vector<uint8_t> ws((std::istreambuf_iterator<char>(w)), {});
      ASSERT_EQ(int64_t(ws.size()), c.workspaceBytes);
      int64_t counterBytes = 4 * p.numSeqs * p.numKVHeads;
      EXPECT_EQ(std::count(ws.begin(), ws.begin() + counterBytes, 0),
                counterBytes)
          << "the split counters are not reset";
    }
    // 0 tiles per split: the portable kernel ran it, whose arithmetic is
    // the CPU form's (two passes, one rescale) with exp2 for exp.
    int64_t splitTiles = splitTilesOf[c.name];
    DecodeAttentionProblem exact = exactProblemOf(c, p);
    KernelArithmetic arithmetic;
    if (c.fp8Probs)
      setQuantizedWeights(arithmetic, p.cacheFormat, kGPUProbScale);
    if (splitTiles > 0) {
      int64_t tilesPerWarp = (splitTiles + 3) / 4;
      int64_t maxTiles = std::max<int64_t>(p.maxBlocks * p.blockSize / 16, 1);
      int64_t splits = (maxTiles + splitTiles - 1) / splitTiles;
      int64_t batch = runsStaged(p, splitTiles)
                          ? kvq::kAttentionStagedMergeBatch
                          : kvq::kAttentionMergeBatch;
      int64_t splitMerges = (splits + batch - 1) / batch;
      arithmetic =
          getTensorCoreArithmetic(exact, tilesPerWarp, splitMerges, c.fp8Query);
    }
    DecodeAttentionReference ref =
        computeDecodeAttentionReference(exact, arithmetic);
    ASSERT_TRUE(ref.error.empty()) << ref.error;
    BoundCheck check = checkAgainstReference(p, ref, got);
    EXPECT_EQ(check.violations, 0u)
        << "first at " << describeElement(p, check.firstViolation) << ": got "
        << got[check.firstViolation] << ", exact "
        << ref.out[check.firstViolation] << ", bound "
        << ref.bound[check.firstViolation];
    std::printf("%-36s %-8s max error %.3g ulp (row %.3g), bound %.3g ulp, "
                "error/bound %.3g\n",
                c.name.c_str(), splitTiles > 0 ? "mma" : "portable",
                check.maxErrorUlps, check.maxErrorRowUlps, check.maxBoundUlps,
                check.maxErrorOverBound);
    worstRowUlps = std::max(worstRowUlps, check.maxErrorRowUlps);
    worstOverBound = std::max(worstOverBound, check.maxErrorOverBound);
    ++checked;
  }
  std::printf("%d GPU cases: largest error %.3g ulps of the row's largest "
              "output, largest error/bound %.3g\n",
              checked, worstRowUlps, worstOverBound);
}
