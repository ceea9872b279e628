//===- DecodeAttentionReferenceTest.cpp - attention reference tests -------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The reference that kvq.paged_attention's kernels are tested against:
// - every cache code decodes to its exact value (APFloat, and a decoder
//   written from the formats' definitions);
// - the reference is exact on hand-computed cases and reads only what the op
//   may read;
// - an f32 emulation of the kernel's arithmetic, in one chunk and split, is
//   within the bound on every element of many random problems;
// - the bound is not vacuous: it rejects perturbed outputs and faulty
//   kernels, and stays within a few ulps of bf16 on typical inputs.
//
//===----------------------------------------------------------------------===//

#include "unittests/Attention/DecodeAttentionReference.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

using namespace mlir::kvq::test;
using llvm::APFloat;
using llvm::APInt;

// GoogleTest prints a parameter through this (found by ADL) in test names
// and failures; without it, as raw bytes.
namespace mlir::kvq::test {
void PrintTo(CacheFormat format, std::ostream *os) {
  *os << getCacheFormatName(format);
}
} // namespace mlir::kvq::test

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Fp8Format {
  CacheFormat format;
  const llvm::fltSemantics &(*semantics)();
  int exponentBits, mantissaBits, bias;
  // FNUZ: 0x80 is the only NaN, no infinities, no negative zero. IEEE-like:
  // an all-ones exponent is infinity or NaN. Otherwise (E4M3FN) only
  // S.1111.111 is NaN.
  bool fnuz, ieeeSpecials;
  double largest, smallestSubnormal;
};

const Fp8Format kFp8Formats[] = {
    {CacheFormat::F8E4M3FN, APFloat::Float8E4M3FN, 4, 3, 7, false, false, 448,
     0x1p-9},
    {CacheFormat::F8E5M2, APFloat::Float8E5M2, 5, 2, 15, false, true, 57344,
     0x1p-16},
    {CacheFormat::F8E4M3FNUZ, APFloat::Float8E4M3FNUZ, 4, 3, 8, true, false,
     240, 0x1p-10},
    {CacheFormat::F8E5M2FNUZ, APFloat::Float8E5M2FNUZ, 5, 2, 16, true, false,
     57344, 0x1p-17},
};

/// The value of `code` from the format's definition alone.
double decodeByHand(const Fp8Format &f, uint32_t code) {
  bool negative = code & 0x80;
  uint32_t maxExp = (1u << f.exponentBits) - 1,
           maxMan = (1u << f.mantissaBits) - 1;
  uint32_t e = (code >> f.mantissaBits) & maxExp, m = code & maxMan;
  if (f.fnuz && code == 0x80)
    return kNaN;
  if (f.ieeeSpecials && e == maxExp)
    return m == 0 ? (negative ? -kInf : kInf) : kNaN;
  if (!f.fnuz && !f.ieeeSpecials && e == maxExp && m == maxMan)
    return kNaN;
  double value = e == 0
                     ? std::ldexp(double(m), 1 - f.bias - f.mantissaBits)
                     : std::ldexp(1.0 + std::ldexp(double(m), -f.mantissaBits),
                                  int(e) - f.bias);
  return negative ? -value : value;
}

double viaAPFloat(const llvm::fltSemantics &sem, unsigned bits, uint32_t code) {
  APFloat value(sem, APInt(bits, code));
  if (value.isNaN())
    return kNaN;
  bool lost;
  value.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
  return value.convertToDouble();
}

/// Equal values with equal signs (zeros included), or both NaN.
bool sameValue(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

TEST(DecodeCacheCode, EveryFp8CodeMatchesAPFloatAndTheDefinition) {
  for (const Fp8Format &f : kFp8Formats) {
    SCOPED_TRACE(getCacheFormatName(f.format));
    double largest = 0, smallest = kInf;
    for (uint32_t code = 0; code < 256; ++code) {
      double got = decodeCacheCode(f.format, uint16_t(code));
      EXPECT_TRUE(sameValue(got, viaAPFloat(f.semantics(), 8, code)))
          << "code " << code;
      EXPECT_TRUE(sameValue(got, decodeByHand(f, code))) << "code " << code;
      if (std::isfinite(got)) {
        largest = std::max(largest, got);
        if (got > 0)
          smallest = std::min(smallest, got);
      }
    }
    EXPECT_EQ(largest, f.largest);
    EXPECT_EQ(smallest, f.smallestSubnormal);
  }
}

TEST(DecodeCacheCode, Int8AndSixteenBitCaches) {
  for (uint32_t code = 0; code < 256; ++code)
    EXPECT_EQ(decodeCacheCode(CacheFormat::Int8, uint16_t(code)),
              double(int8_t(uint8_t(code))));
  for (uint32_t code = 0; code < 65536; ++code) {
    // bf16 is the top half of an f32.
    uint32_t bits = code << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    ASSERT_TRUE(sameValue(decodeCacheCode(CacheFormat::BF16, uint16_t(code)),
                          std::isnan(f) ? kNaN : double(f)))
        << "bf16 code " << code;
    ASSERT_TRUE(sameValue(decodeCacheCode(CacheFormat::F16, uint16_t(code)),
                          viaAPFloat(APFloat::IEEEhalf(), 16, code)))
        << "f16 code " << code;
  }
  EXPECT_EQ(decodeCacheCode(CacheFormat::F16, 0x3C00), 1.0);
  EXPECT_EQ(decodeCacheCode(CacheFormat::F16, 0x0001), 0x1p-24);
}

TEST(UlpsOf, SpacingOfEachType) {
  EXPECT_EQ(ulpsOf(1.0 + 0x1p-7, 1.0, AttentionType::BF16), 1.0);
  EXPECT_EQ(ulpsOf(1.0 + 0x1p-10, 1.0, AttentionType::F16), 1.0);
  EXPECT_EQ(ulpsOf(1.0 + 0x1p-23, 1.0, AttentionType::F32), 1.0);
  EXPECT_EQ(ulpsOf(-3.0, -2.0, AttentionType::BF16), 64.0);
  // Below the normal range the spacing is the smallest subnormal's.
  EXPECT_EQ(ulpsOf(0x1p-24, 0.0, AttentionType::F16), 1.0);
  EXPECT_EQ(ulpsOf(0x1p-133, 0x1p-140, AttentionType::BF16),
            (0x1p-133 - 0x1p-140) / 0x1p-133);
  EXPECT_EQ(ulpsOf(kNaN, 1.0, AttentionType::F32), kInf);
}

/// A problem of one sequence, filled by hand: K and V rows per token and KV
/// head (numKVHeads x headSize values each, exact in the format).
DecodeAttentionProblem
handProblem(int64_t numHeads, int64_t numKVHeads, int64_t headSize,
            const std::vector<std::vector<double>> &keys,
            const std::vector<std::vector<double>> &values) {
  DecodeAttentionProblem p;
  p.numSeqs = 1;
  p.numHeads = numHeads;
  p.numKVHeads = numKVHeads;
  p.headSize = headSize;
  p.blockSize = 2;
  int64_t L = int64_t(keys.size());
  p.maxBlocks = (L + 1) / 2 + 1;
  p.numBlocks = p.maxBlocks + 1;
  p.type = AttentionType::F32;
  p.cacheFormat = CacheFormat::Int8;
  p.query.assign(p.outputSize(), 1.0f);
  size_t rowSize = size_t(numKVHeads * headSize);
  p.keyCache.assign(p.numBlocks * 2 * rowSize, 0);
  p.valueCache.assign(p.numBlocks * 2 * rowSize, 0);
  p.blockTables.assign(p.maxBlocks, kPoisonBlock);
  // Blocks in reverse order: the table, not the position, locates a token.
  for (int64_t i = 0; i < (L + 1) / 2; ++i)
    p.blockTables[i] = int32_t(p.numBlocks - 1 - i);
  p.contextLens = {int32_t(L)};
  for (int64_t j = 0; j < L; ++j) {
    size_t base = (p.blockTables[j / 2] * 2 + j % 2) * rowSize;
    for (size_t e = 0; e < rowSize; ++e) {
      p.keyCache[base + e] = uint16_t(uint8_t(int8_t(keys[j][e])));
      p.valueCache[base + e] = uint16_t(uint8_t(int8_t(values[j][e])));
    }
  }
  return p;
}

TEST(DecodeAttentionReference, HandComputedCases) {
  // One token: the output is v_scale * v, whatever the scores.
  DecodeAttentionProblem one = handProblem(1, 1, 2, {{3, -5}}, {{7, -9}});
  one.vScale = 0.5f;
  one.kScale = 0.25f;
  DecodeAttentionReference r = computeDecodeAttentionReference(one);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.out, (std::vector<double>{3.5, -4.5}));

  // Scores 0 and log(3) (q = 1, k rows summing to 0 and 1, softmax scale
  // log 3 rounded to f32): weights 1 : 3 up to that rounding.
  DecodeAttentionProblem two =
      handProblem(1, 1, 2, {{1, -1}, {1, 0}}, {{4, 0}, {0, 8}});
  two.softmaxScale = float(std::log(3.0));
  r = computeDecodeAttentionReference(two);
  ASSERT_EQ(r.error, "");
  double w = std::exp(double(two.softmaxScale));
  EXPECT_NEAR(r.out[0], 4 / (1 + w), 1e-15);
  EXPECT_NEAR(r.out[1], 8 * w / (1 + w), 1e-15);
  EXPECT_NEAR(r.out[0], 1.0, 1e-7);
  EXPECT_NEAR(r.out[1], 6.0, 1e-7);

  // GQA: 4 query heads over 2 KV heads, one token: heads 0 and 1 read KV
  // head 0, heads 2 and 3 KV head 1.
  DecodeAttentionProblem gqa = handProblem(4, 2, 1, {{1, 1}}, {{10, 20}});
  r = computeDecodeAttentionReference(gqa);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.out, (std::vector<double>{10, 10, 20, 20}));

  // An empty context writes zeros, with a zero bound.
  DecodeAttentionProblem empty = handProblem(1, 1, 2, {{1, 1}}, {{1, 1}});
  empty.contextLens = {0};
  r = computeDecodeAttentionReference(empty);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.out, (std::vector<double>{0, 0}));
  EXPECT_EQ(r.bound, (std::vector<double>{0, 0}));
  EXPECT_EQ(emulateKernelF32(empty, 0), (std::vector<double>{0, 0}));
}

TEST(DecodeAttentionReference, ReadsOnlyTheContext) {
  RandomProblemOptions opts;
  opts.contextLens = {17, 0, 32};
  opts.numHeads = 4;
  opts.numKVHeads = 2;
  opts.headSize = 64;
  for (CacheFormat format : kAllCacheFormats) {
    SCOPED_TRACE(getCacheFormatName(format));
    opts.cacheFormat = format;
    DecodeAttentionProblem p = makeRandomProblem(opts);
    // Padding entries are poisoned, unused rows hold NaN codes (or -128),
    // and still the problem is valid and its reference finite.
    EXPECT_EQ(p.blockTables[0 * p.maxBlocks + 2], kPoisonBlock);
    EXPECT_EQ(p.blockTables[1 * p.maxBlocks + 0], kPoisonBlock);
    EXPECT_EQ(validateProblem(p), "");
    DecodeAttentionReference r = computeDecodeAttentionReference(p);
    ASSERT_EQ(r.error, "");
    for (size_t i = 0; i < r.out.size(); ++i)
      ASSERT_TRUE(std::isfinite(r.out[i]) && std::isfinite(r.bound[i]))
          << describeElement(p, i);

    // One token more would read the poisoned rest of the last block, one
    // block more the poisoned padding entry.
    DecodeAttentionProblem longer = p;
    longer.contextLens[0] = 18;
    if (format != CacheFormat::Int8) {
      EXPECT_NE(validateProblem(longer), "");
    }
    longer.contextLens[0] = 33;
    EXPECT_NE(validateProblem(longer), "");
    EXPECT_NE(computeDecodeAttentionReference(longer).error, "");
  }
}

TEST(DecodeAttentionReference, RejectsMalformedProblems) {
  DecodeAttentionProblem p = makeRandomProblem({});
  DecodeAttentionProblem bad = p;
  bad.numKVHeads = 3;
  EXPECT_NE(validateProblem(bad), "");
  bad = p;
  bad.query[0] = 1.0f + 0x1p-12f; // not a bf16
  EXPECT_NE(validateProblem(bad), "");
  bad = p;
  bad.contextLens[0] = -1;
  EXPECT_NE(validateProblem(bad), "");
  bad = p;
  bad.vScale = std::numeric_limits<float>::infinity();
  EXPECT_NE(validateProblem(bad), "");
  EXPECT_NE(computeDecodeAttentionReference(p, 0.5).error, "");
  EXPECT_NE(computeDecodeAttentionReference(p, kExpRelError, 1u << 17).error,
            "");
}

/// The largest ratios and ulps seen, per output type.
struct Stats {
  struct Entry {
    size_t runs = 0, elements = 0;
    BoundCheck worst;
  } entries[3];

  void add(AttentionType type, const BoundCheck &check, size_t n) {
    Entry &e = entries[unsigned(type)];
    ++e.runs;
    e.elements += n;
    BoundCheck &w = e.worst;
    w.violations += check.violations;
    w.maxErrorOverBound =
        std::max(w.maxErrorOverBound, check.maxErrorOverBound);
    w.maxErrorUlps = std::max(w.maxErrorUlps, check.maxErrorUlps);
    w.maxBoundUlps = std::max(w.maxBoundUlps, check.maxBoundUlps);
    w.maxErrorRowUlps = std::max(w.maxErrorRowUlps, check.maxErrorRowUlps);
    w.maxBoundRowUlps = std::max(w.maxBoundRowUlps, check.maxBoundRowUlps);
  }
  void print(const std::string &what) const {
    for (AttentionType type :
         {AttentionType::BF16, AttentionType::F16, AttentionType::F32}) {
      const Entry &e = entries[unsigned(type)];
      if (!e.runs)
        continue;
      const BoundCheck &w = e.worst;
      std::printf("[ stats    ] %s, %s out: %zu runs, %zu elements; max "
                  "error/bound %.3g; ulps at the element: error %.3g, bound "
                  "%.3g; ulps at the row's largest: error %.3g, bound %.3g\n",
                  what.c_str(), getAttentionTypeName(type), e.runs, e.elements,
                  w.maxErrorOverBound, w.maxErrorUlps, w.maxBoundUlps,
                  w.maxErrorRowUlps, w.maxBoundRowUlps);
    }
  }
};

/// Emulates `p` with each chunk size and checks every element.
void expectWithinBound(const DecodeAttentionProblem &p,
                       const DecodeAttentionReference &r,
                       const std::vector<int64_t> &chunks, Stats &stats) {
  for (int64_t chunk : chunks) {
    std::vector<double> got = emulateKernelF32(p, chunk);
    BoundCheck check = checkAgainstReference(p, r, got);
    stats.add(p.type, check, got.size());
    if (check.violations) {
      size_t i = check.firstViolation;
      ADD_FAILURE() << check.violations << " element(s) outside the bound, "
                    << "chunk " << chunk << ", first at "
                    << describeElement(p, i) << ": got " << got[i]
                    << ", reference " << r.out[i] << ", bound " << r.bound[i];
    }
  }
}

class EmulatedKernelTest : public ::testing::TestWithParam<CacheFormat> {};

TEST_P(EmulatedKernelTest, WithinBoundOnRandomProblems) {
  const CacheFormat format = GetParam();
  const AttentionType types[] = {AttentionType::BF16, AttentionType::F16,
                                 AttentionType::F32};
  Stats stats;
  uint32_t seed = 1000 * (unsigned(format) + 1);
  for (int64_t ratio : {1, 4, 8})
    for (int64_t headSize : {64, 128, 256})
      for (int32_t len : {1, 15, 16, 17, 1000}) {
        RandomProblemOptions opts;
        opts.seed = ++seed;
        opts.cacheFormat = format;
        opts.numKVHeads = 2;
        opts.numHeads = 2 * ratio;
        opts.headSize = headSize;
        // A second sequence of another length (empty at times) shares the
        // cache; peaked scores every other problem.
        opts.contextLens = {len, int32_t(seed % 4 == 0 ? 0 : seed % 37)};
        opts.type = types[seed % 3];
        opts.queryStd = seed % 2 ? 1.0 : 4.0;
        DecodeAttentionProblem p = makeRandomProblem(opts);
        DecodeAttentionReference r = computeDecodeAttentionReference(p);
        ASSERT_EQ(r.error, "");
        SCOPED_TRACE(testing::Message()
                     << "seed " << opts.seed << ", Hq/Hkv " << ratio << ", D "
                     << headSize << ", L " << len << ", "
                     << getAttentionTypeName(p.type));
        expectWithinBound(p, r, {16, 256, 0}, stats);
      }
  stats.print(getCacheFormatName(format));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, EmulatedKernelTest,
                         ::testing::ValuesIn(kAllCacheFormats),
                         [](const ::testing::TestParamInfo<CacheFormat> &info) {
                           return std::string(getCacheFormatName(info.param));
                         });

TEST(EmulatedKernel, WithinBoundOnLongContext) {
  for (AttentionType type : {AttentionType::BF16, AttentionType::F32}) {
    SCOPED_TRACE(getAttentionTypeName(type));
    RandomProblemOptions opts;
    opts.seed = 77;
    opts.numHeads = 8;
    opts.numKVHeads = 1;
    opts.headSize = 128;
    opts.contextLens = {32768};
    opts.type = type;
    DecodeAttentionProblem p = makeRandomProblem(opts);
    DecodeAttentionReference r = computeDecodeAttentionReference(p);
    ASSERT_EQ(r.error, "");
    Stats stats;
    expectWithinBound(p, r, {16, 256, 0}, stats);
    stats.print(std::string("L 32768, f8E4M3FN, ") +
                getAttentionTypeName(type));
  }
}

TEST(Bound, RejectsAnOutputPerturbedByFourBounds) {
  RandomProblemOptions opts;
  opts.contextLens = {1000, 17};
  for (AttentionType type : {AttentionType::BF16, AttentionType::F32}) {
    opts.type = type;
    DecodeAttentionProblem p = makeRandomProblem(opts);
    DecodeAttentionReference r = computeDecodeAttentionReference(p);
    ASSERT_EQ(r.error, "");
    std::vector<double> got = emulateKernelF32(p, 256);
    ASSERT_EQ(checkAgainstReference(p, r, got).violations, 0u);
    for (size_t i : {size_t(0), got.size() / 3, got.size() - 1}) {
      std::vector<double> bad = got;
      // Still a value of the output type, as a kernel would write it.
      bad[i] = roundToType(got[i] + 4 * r.bound[i], type);
      BoundCheck check = checkAgainstReference(p, r, bad);
      EXPECT_EQ(check.violations, 1u) << describeElement(p, i);
      EXPECT_EQ(check.firstViolation, i);
    }
  }
}

TEST(Bound, RejectsFaultyKernels) {
  struct Case {
    KernelFault fault;
    const char *name;
    int64_t numKVHeads;
  } cases[] = {{KernelFault::DropLastToken, "drop last token", 2},
               {KernelFault::KVHeadModulo, "KV head h % Hkv", 2},
               {KernelFault::ProbsInBF16, "P in bf16 for P.V", 2}};
  for (const Case &c : cases)
    for (CacheFormat format : kAllCacheFormats) {
      SCOPED_TRACE(std::string(c.name) + ", " + getCacheFormatName(format));
      RandomProblemOptions opts;
      opts.seed = 5;
      opts.cacheFormat = format;
      opts.numHeads = 8;
      opts.numKVHeads = c.numKVHeads;
      opts.headSize = 64;
      opts.contextLens = {16, 40};
      opts.type = AttentionType::F32;
      DecodeAttentionProblem p = makeRandomProblem(opts);
      DecodeAttentionReference r = computeDecodeAttentionReference(p);
      ASSERT_EQ(r.error, "");
      ASSERT_EQ(checkAgainstReference(p, r, emulateKernelF32(p, 16)).violations,
                0u);
      BoundCheck check =
          checkAgainstReference(p, r, emulateKernelF32(p, 16, c.fault));
      EXPECT_GT(check.violations, 0u);
    }
}

TEST(Bound, ExpErrorIsAParameter) {
  // A kernel whose exp is off by 2^-12 (alternating in sign over tokens, so
  // that it does not cancel) fails the default bound and passes the bound
  // for its own exp error (2^-12, plus expf's and the perturbation's
  // rounding).
  RandomProblemOptions opts;
  opts.seed = 9;
  opts.contextLens = {64};
  opts.type = AttentionType::F32;
  DecodeAttentionProblem p = makeRandomProblem(opts);
  std::vector<double> got = emulateKernelF32(p, 16, KernelFault::CoarseExp);
  EXPECT_GT(checkAgainstReference(p, computeDecodeAttentionReference(p), got)
                .violations,
            0u);
  EXPECT_EQ(checkAgainstReference(
                p, computeDecodeAttentionReference(p, 0x1p-12 + 0x1p-20), got)
                .violations,
            0u);
}

TEST(Bound, FewUlpsOfBF16OnTypicalInputs) {
  // Typical: scores of order one or peaked, L <= 1000, V of order one. The
  // bound is worst-case (gamma_D, gamma_L), so where an output lies near
  // zero it is many ulps of that element; it is held to 4 ulps at the row's
  // largest output (what a bf16 row can resolve), and the share of elements
  // within 4 ulps of themselves is printed.
  Stats stats;
  size_t elements = 0, withinFour = 0;
  uint32_t seed = 500;
  for (CacheFormat format : kAllCacheFormats)
    for (int64_t headSize : {64, 128, 256})
      for (int32_t len : {1, 17, 1000})
        for (double queryStd : {1.0, 4.0}) {
          RandomProblemOptions opts;
          opts.seed = ++seed;
          opts.cacheFormat = format;
          opts.headSize = headSize;
          opts.contextLens = {len};
          opts.queryStd = queryStd;
          opts.type = AttentionType::BF16;
          DecodeAttentionProblem p = makeRandomProblem(opts);
          DecodeAttentionReference r = computeDecodeAttentionReference(p);
          ASSERT_EQ(r.error, "");
          std::vector<double> got = emulateKernelF32(p, 256);
          BoundCheck check = checkAgainstReference(p, r, got);
          EXPECT_EQ(check.violations, 0u);
          EXPECT_LE(check.maxBoundRowUlps, 4.0)
              << "seed " << opts.seed << ", " << getCacheFormatName(format)
              << ", D " << headSize << ", L " << len;
          stats.add(p.type, check, got.size());
          for (size_t i = 0; i < got.size(); ++i, ++elements)
            withinFour +=
                ulpsOf(r.out[i] + r.bound[i], r.out[i], p.type) <= 4.0;
        }
  stats.print("typical");
  std::printf("[ stats    ] typical, bf16 out: bound within 4 ulps of the "
              "element itself for %.2f%% of %zu elements\n",
              100.0 * double(withinFour) / double(elements), elements);
}

} // namespace
