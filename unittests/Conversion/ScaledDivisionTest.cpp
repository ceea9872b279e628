//===- ScaledDivisionTest.cpp - the division-free quotient ----------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// proveReciprocalDivision() and ReciprocalDivision::divide():
// - the host sequence is the IEEE one (compared with llvm::APFloat);
// - every scale of the useful range is proven for bf16 and f16, nothing
//   outside it (nor f32 activations);
// - for proven scales, every bf16 and f16 input gives the byte of the true
//   division in every cache format (the generated code is checked the same
//   way, through the JIT, by KVQCacheLoweringExecTest).
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/ScaledDivision.h"

#include "llvm/ADT/APFloat.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace mlir::kvq;
using llvm::APFloat;

namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float fromSourceBits(const llvm::fltSemantics &sem, uint32_t bits) {
  APFloat v(sem, llvm::APInt(APFloat::semanticsSizeInBits(sem), bits));
  bool lost;
  v.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
  return v.convertToFloat();
}

/// Scales log-uniform in [2^lo, 2^hi], reproducible.
std::vector<float> randomScales(int count, double lo, double hi) {
  std::mt19937_64 rng(20261125);
  std::uniform_real_distribution<double> exponent(lo, hi);
  std::vector<float> scales;
  for (int i = 0; i < count; ++i)
    scales.push_back(float(std::exp2(exponent(rng))));
  return scales;
}

/// Scales that stress the reciprocal: powers of two, significands all ones
/// or one ulp above 1, the range ends, the exhaustive tests' scales.
std::vector<float> specialScales() {
  return {0x1p-60f,
          0x1p60f,
          1.0f,
          0x1.fffffep-1f,
          0x1.000002p0f,
          0x1.fffffep3f,
          0x1.555556p-2f,
          3.0f,
          0.05f,
          0.07f,
          1e-3f,
          1000.0f,
          0.0123291015625f,
          0x1.fffffep59f,
          0x1.000002p-60f};
}

/// The cache byte of quotient `q` in `sem` (round to nearest even,
/// saturating, NaN to 0xFF: the tests only compare bytes of two quotients),
/// or for i8 (`sem` null) clamp(round_half_even(q)).
uint8_t cacheByte(const llvm::fltSemantics *sem, float q) {
  if (std::isnan(q))
    return 0xFF;
  if (!sem) {
    float c = std::fmin(std::fmax(q, -128.0f), 127.0f);
    return uint8_t(int8_t(std::nearbyint(c)));
  }
  APFloat max = APFloat::getLargest(*sem);
  bool lost;
  max.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
  float m = max.convertToFloat();
  APFloat v(std::fmin(std::fmax(q, -m), m));
  v.convert(*sem, APFloat::rmNearestTiesToEven, &lost);
  return uint8_t(v.bitcastToAPInt().getZExtValue());
}

const llvm::fltSemantics *const kCacheFormats[] = {
    &APFloat::Float8E4M3FN(), &APFloat::Float8E4M3FNUZ(),
    &APFloat::Float8E5M2(), &APFloat::Float8E5M2FNUZ(), nullptr};

} // namespace

TEST(ScaledDivision, HostSequenceIsTheIEEEOne) {
  for (float s : {0.05f, 3.0f, 0x1.fffffep-1f, 1e-3f}) {
    std::optional<ReciprocalDivision> d =
        proveReciprocalDivision(s, APFloat::BFloat());
    ASSERT_TRUE(d) << s;
    EXPECT_EQ(bitsOf(d->reciprocal), bitsOf(1.0f / s));
    EXPECT_EQ(d->bound, s * 131072.0f);
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      float x = fromSourceBits(APFloat::BFloat(), bits);
      if (std::isnan(x) || std::fabs(x) > d->bound)
        continue; // clamping has no IEEE operation to compare with
      APFloat q0(x);
      q0.multiply(APFloat(d->reciprocal), APFloat::rmNearestTiesToEven);
      APFloat e(-d->scale);
      e.fusedMultiplyAdd(q0, APFloat(x), APFloat::rmNearestTiesToEven);
      APFloat q(e);
      q.fusedMultiplyAdd(APFloat(d->reciprocal), q0,
                         APFloat::rmNearestTiesToEven);
      float want = q0.isZero() ? q0.convertToFloat() : q.convertToFloat();
      ASSERT_EQ(bitsOf(d->divide(x)), bitsOf(want))
          << "scale " << s << " input 0x" << std::hex << bits;
    }
  }
}

TEST(ScaledDivision, ProvesTheUsefulRange) {
  std::vector<float> scales = randomScales(2000, -60.0, 60.0);
  for (float s : specialScales())
    scales.push_back(s);
  for (float s : scales) {
    EXPECT_TRUE(proveReciprocalDivision(s, APFloat::BFloat())) << s;
    EXPECT_TRUE(proveReciprocalDivision(s, APFloat::IEEEhalf())) << s;
  }
}

TEST(ScaledDivision, RefusesWhatItCannotProve) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float s : {0.0f, -0.0f, -1.0f, -0.05f, inf, -inf, std::nanf(""),
                  0x1p-61f, 0x1.fffffep-61f, 0x1.000002p60f, 0x1p-140f,
                  std::numeric_limits<float>::max()})
    EXPECT_FALSE(proveReciprocalDivision(s, APFloat::BFloat())) << s;
  // Too many significands to check, or values outside f32.
  EXPECT_FALSE(proveReciprocalDivision(0.05f, APFloat::IEEEsingle()));
  EXPECT_FALSE(proveReciprocalDivision(0.05f, APFloat::IEEEdouble()));
}

TEST(ScaledDivision, SameCacheBytesAsTheDivisionForEveryInput) {
  std::vector<float> scales = randomScales(40, -60.0, 60.0);
  for (float s : specialScales())
    scales.push_back(s);
  for (const llvm::fltSemantics *source :
       {&APFloat::BFloat(), &APFloat::IEEEhalf()}) {
    for (float s : scales) {
      std::optional<ReciprocalDivision> d = proveReciprocalDivision(s, *source);
      ASSERT_TRUE(d) << s;
      for (uint32_t bits = 0; bits < 65536; ++bits) {
        float x = fromSourceBits(*source, bits);
        float got = d->divide(x), want = x / s;
        if (bitsOf(got) == bitsOf(want) ||
            (std::isnan(got) && std::isnan(want)))
          continue;
        // The quotients may differ only where every format gives the same
        // byte: saturated, or rounded to a zero of the same sign.
        for (const llvm::fltSemantics *format : kCacheFormats)
          ASSERT_EQ(cacheByte(format, got), cacheByte(format, want))
              << "scale " << s << " input 0x" << std::hex << bits
              << " quotient " << got << " vs " << want;
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// The product alone: proveReciprocalProduct()
//===----------------------------------------------------------------------===//

namespace {
/// RN(x * RN(1/s)), as the generated code computes it.
float product(float x, float s) {
  volatile float reciprocal = 1.0f / s;
  return x * reciprocal;
}
} // namespace

TEST(ScaledDivision, ThresholdBits) {
  EXPECT_EQ(cacheThresholdBits(&APFloat::Float8E4M3FN()), 5u);
  EXPECT_EQ(cacheThresholdBits(&APFloat::Float8E4M3FNUZ()), 5u);
  EXPECT_EQ(cacheThresholdBits(&APFloat::Float8E5M2()), 4u);
  EXPECT_EQ(cacheThresholdBits(&APFloat::Float8E5M2FNUZ()), 4u);
  EXPECT_EQ(cacheThresholdBits(nullptr), 8u);
}

// Where the product is proven, every bf16 and f16 input gets the byte of
// the division in that format (compared through llvm::APFloat); most
// scales are proven.
TEST(ScaledDivision, ProductGivesTheDivisionBytesWhereProven) {
  std::vector<float> scales = randomScales(20, -60.0, 60.0);
  for (float s : specialScales())
    scales.push_back(s);
  int proven = 0, tried = 0;
  for (const llvm::fltSemantics *source :
       {&APFloat::BFloat(), &APFloat::IEEEhalf()}) {
    for (const llvm::fltSemantics *format : kCacheFormats) {
      for (float s : scales) {
        ++tried;
        if (!proveReciprocalProduct(s, *source, cacheThresholdBits(format)))
          continue;
        ++proven;
        for (uint32_t bits = 0; bits < 65536; ++bits) {
          float x = fromSourceBits(*source, bits);
          float got = product(x, s), want = x / s;
          if (bitsOf(got) == bitsOf(want) ||
              (std::isnan(got) && std::isnan(want)))
            continue;
          ASSERT_EQ(cacheByte(format, got), cacheByte(format, want))
              << "scale " << s << " input 0x" << std::hex << bits << " product "
              << got << " vs quotient " << want;
        }
      }
    }
  }
  EXPECT_GE(proven, tried * 9 / 10) << proven << " of " << tried;
}

// Scales and bf16 inputs where the product rounds to another byte than the
// division (the product or the quotient is a threshold): never proven.
TEST(ScaledDivision, ProductRefusesItsCounterexamples) {
  struct Case {
    float scale, x;
    const llvm::fltSemantics *format;
  } cases[] = {{0x1.b11112p+3f, 0x1.96p-3f, &APFloat::Float8E4M3FN()},
               {0x1.ef684ep-1f, 0x1.a2p-6f, &APFloat::Float8E4M3FN()},
               {0x1.544fb8p-4f, 0x1.bcp+2f, nullptr},
               {0x1.523af4p-10f, 0x1.b4p-4f, nullptr}};
  for (const Case &c : cases) {
    EXPECT_NE(cacheByte(c.format, product(c.x, c.scale)),
              cacheByte(c.format, c.x / c.scale))
        << c.scale;
    EXPECT_FALSE(proveReciprocalProduct(c.scale, APFloat::BFloat(),
                                        cacheThresholdBits(c.format)))
        << c.scale;
  }
}

// How many real-looking scales (log-uniform in [1e-4, 1e3]) the product
// covers, the numbers ScaledDivision.h quotes.
TEST(ScaledDivision, ProductProvesAlmostEveryScale) {
  std::vector<float> scales =
      randomScales(20000, std::log2(1e-4), std::log2(1e3));
  int e4m3 = 0, i8 = 0;
  for (float s : scales) {
    e4m3 += proveReciprocalProduct(
        s, APFloat::BFloat(), cacheThresholdBits(&APFloat::Float8E4M3FN()));
    i8 += proveReciprocalProduct(s, APFloat::BFloat(),
                                 cacheThresholdBits(nullptr));
  }
  std::printf("product proven for bf16 -> f8E4M3FN: %d, -> i8: %d of %zu\n",
              e4m3, i8, scales.size());
  EXPECT_GE(e4m3, 19900);
  EXPECT_GE(i8, 19800);
}

TEST(ScaledDivision, ProductRefusesWhatItCannotProve) {
  const float inf = std::numeric_limits<float>::infinity();
  unsigned bits = cacheThresholdBits(&APFloat::Float8E4M3FN());
  for (float s : {0.0f, -1.0f, inf, std::nanf(""), 0x1p-61f, 0x1.000002p60f})
    EXPECT_FALSE(proveReciprocalProduct(s, APFloat::BFloat(), bits)) << s;
  EXPECT_FALSE(proveReciprocalProduct(0.05f, APFloat::IEEEsingle(), bits));
}
