//===- DecodeAttentionReference.cpp - exact attention, error bound --------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The bound's derivation is in the header; the step numbers below refer to
// it.
//
//===----------------------------------------------------------------------===//

#include "unittests/Attention/DecodeAttentionReference.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <sstream>

using namespace mlir::kvq::test;
using llvm::APFloat;
using llvm::APInt;

namespace {

const llvm::fltSemantics &getSemantics(CacheFormat format) {
  switch (format) {
  case CacheFormat::F8E4M3FN:
    return APFloat::Float8E4M3FN();
  case CacheFormat::F8E5M2:
    return APFloat::Float8E5M2();
  case CacheFormat::F8E4M3FNUZ:
    return APFloat::Float8E4M3FNUZ();
  case CacheFormat::F8E5M2FNUZ:
    return APFloat::Float8E5M2FNUZ();
  case CacheFormat::BF16:
    return APFloat::BFloat();
  case CacheFormat::F16:
  case CacheFormat::Int8:
    break;
  }
  return APFloat::IEEEhalf();
}

const llvm::fltSemantics &getSemantics(AttentionType type) {
  switch (type) {
  case AttentionType::BF16:
    return APFloat::BFloat();
  case AttentionType::F16:
    return APFloat::IEEEhalf();
  case AttentionType::F32:
    break;
  }
  return APFloat::IEEEsingle();
}

double toDouble(APFloat value) {
  if (value.isNaN())
    return std::numeric_limits<double>::quiet_NaN();
  bool lost;
  value.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
  return value.convertToDouble();
}

/// Every code's value, built once per format: the hot loops index it.
const std::vector<double> &getCodeTable(CacheFormat format) {
  static std::vector<double> perFormat[std::size(kAllCacheFormats)];
  static const bool built = [] {
    for (CacheFormat f : kAllCacheFormats) {
      std::vector<double> &t = perFormat[unsigned(f)];
      unsigned bits = 8 * getCacheElementBytes(f);
      t.resize(size_t(1) << bits);
      for (uint32_t code = 0; code < t.size(); ++code)
        t[code] = f == CacheFormat::Int8
                      ? double(int8_t(uint8_t(code)))
                      : toDouble(APFloat(getSemantics(f), APInt(bits, code)));
    }
    return true;
  }();
  (void)built;
  return perFormat[unsigned(format)];
}

uint16_t getPoisonCode(CacheFormat format) {
  switch (format) {
  case CacheFormat::F8E4M3FN:
  case CacheFormat::F8E5M2:
    return 0x7F; // NaN
  case CacheFormat::F8E4M3FNUZ:
  case CacheFormat::F8E5M2FNUZ:
    return 0x80; // the only NaN
  case CacheFormat::Int8:
    return 0x80; // -128: a symmetric quantizer never writes it
  case CacheFormat::BF16:
    return 0x7FC0;
  case CacheFormat::F16:
    return 0x7E00;
  }
  return 0;
}

/// The largest finite value a code of `format` holds (127 for int8: the
/// symmetric range).
double getFormatMax(CacheFormat format) {
  if (format == CacheFormat::Int8)
    return 127.0;
  return toDouble(APFloat::getLargest(getSemantics(format)));
}

/// The code of `x` rounded to nearest-even, saturating at the format's
/// largest value (how kvq.cache_store quantizes).
uint16_t encodeCacheValue(CacheFormat format, double x) {
  double max = getFormatMax(format);
  x = std::clamp(x, -max, max);
  if (format == CacheFormat::Int8)
    return uint16_t(uint8_t(int8_t(std::nearbyint(x))));
  APFloat value(x);
  bool lost;
  value.convert(getSemantics(format), APFloat::rmNearestTiesToEven, &lost);
  return uint16_t(value.bitcastToAPInt().getZExtValue());
}

struct TypeParams {
  int precision, minExponent;
  double unitRoundoff, halfMinSubnormal, overflowThreshold;
};

TypeParams getTypeParams(AttentionType type) {
  switch (type) {
  case AttentionType::BF16:
    return {8, -126, 0x1p-8, 0x1p-134, 0x1.ffp127};
  case AttentionType::F16:
    return {11, -14, 0x1p-11, 0x1p-25, 65520.0};
  case AttentionType::F32:
    break;
  }
  return {24, -126, 0x1p-24, 0x1p-150, 0x1.ffffffp127};
}

/// The distance between consecutive values of `type` around `x` (the
/// subnormal spacing below the normal range).
double getSpacing(double x, AttentionType type) {
  TypeParams p = getTypeParams(type);
  int exponent =
      std::max(x == 0 ? p.minExponent : std::ilogb(x), p.minExponent);
  return std::ldexp(1.0, exponent - (p.precision - 1));
}

double gammaOf(double n, double u) { return n * u / (1 - n * u); }

float roundToBF16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);
  bits &= 0xFFFF0000u;
  std::memcpy(&x, &bits, 4);
  return x;
}

/// The arithmetic a bound is derived for: the kernel's f32, or the
/// reference's long double (step 7).
struct ArithmeticModel {
  double u;      // unit roundoff
  double eta;    // underflow allowance per operation
  double expRel; // relative error of exp
  unsigned rescales;
  /// Step 8 (KernelArithmetic); the defaults are the RN f32 kernel's.
  double dotRel = -1, accRel = -1;
  double queryRel = 0, queryAbs = 0;
  double weightRel = 0, weightAbs = 0;
};

/// What steps 1-4 need of one row, [j] over the context.
struct RowData {
  int64_t length = 0, headSize = 0;
  double sigmaAbs = 0;
  std::vector<double> absDot;  // A_j
  std::vector<double> absKey;  // sum_d |k_jd|
  std::vector<double> logP;    // s_j - s*
  std::vector<size_t> rowBase; // offset of token j's V row in the cache
  const uint16_t *values = nullptr;
  const double *table = nullptr;

  double v(int64_t j, int64_t d) const { return table[values[rowBase[j] + d]]; }
};

/// Per-d sums over the context that do not depend on the model.
struct RowSums {
  std::vector<double> sumAbsV, maxAbsV;
};

RowSums getRowSums(const RowData &row) {
  RowSums sums;
  sums.sumAbsV.assign(row.headSize, 0.0);
  sums.maxAbsV.assign(row.headSize, 0.0);
  for (int64_t j = 0; j < row.length; ++j)
    for (int64_t d = 0; d < row.headSize; ++d) {
      double a = std::fabs(row.v(j, d));
      sums.sumAbsV[d] += a;
      sums.maxAbsV[d] = std::max(sums.maxAbsV[d], a);
    }
  return sums;
}

/// Steps 1-4: Q_d, a bound on |acc^_d / l^ - o_d|, where `o` is the computed
/// ratio and `slack` bounds its distance from the exact one. +infinity where
/// the conditions of the derivation fail.
std::vector<double> boundRatio(const ArithmeticModel &m, const RowData &row,
                               const RowSums &sums,
                               const std::vector<double> &o,
                               const std::vector<double> &slack) {
  const int64_t L = row.length, D = row.headSize;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> q(D, inf);
  const double R1 = m.rescales + 1.0;
  if ((L + R1) * m.u > 0.5 || (D + 3) * m.u > 0.5)
    return q;
  // Step 8 replaces gamma_{D+3} and gamma_{L+R+1} where the kernel's dot
  // products and accumulation are not RN f32 operations, and adds the
  // conversion of Q and the rounding of the weights.
  const double gs =
      m.dotRel >= 0
          ? (1 + m.dotRel) * (1 + gammaOf(3, m.u)) * (1 + m.queryRel) - 1
          : gammaOf(D + 3, m.u) + m.queryRel * (1 + gammaOf(D + 3, m.u));
  const double ga = gammaOf(L + R1, m.u) + (m.accRel >= 0 ? m.accRel : 0);
  const double gb = gammaOf(L + m.rescales, m.u);

  // Step 1.
  std::vector<double> delta(L);
  double deltaMax = 0, top = -inf;
  for (int64_t j = 0; j < L; ++j) {
    delta[j] = gs * row.sigmaAbs * row.absDot[j] +
               (1 + gs) * row.sigmaAbs * m.queryAbs * row.absKey[j] +
               (8 * D * row.sigmaAbs + 2 * row.absDot[j] + 2) * m.eta;
    deltaMax = std::max(deltaMax, delta[j]);
    top = std::max(top, row.logP[j] + delta[j]);
  }
  // Scores known to worse than 1 leave the weights unknown to a factor e:
  // nothing useful (and the dropped weights' allowance fails).
  if (deltaMax > 1)
    return q;
  // Step 2, in log space: a weight far below the maximum has a large
  // relative perturbation (the u (M^ - s^_j) term) on a negligible value.
  const double expTerm = -R1 * std::log1p(-m.expRel) - std::log1p(-m.weightRel);
  std::vector<double> pRho(L), pUp(L);
  double sumUp = 0, sumDown = 0;
  for (int64_t j = 0; j < L; ++j) {
    double a =
        delta[j] + m.u * (top - row.logP[j] + delta[j]) + R1 * m.eta + expTerm;
    double logRho = a > 30 ? a : std::log(std::expm1(a));
    pRho[j] = std::exp(row.logP[j] + logRho);
    pUp[j] = std::exp(row.logP[j] + a);
    sumUp += pUp[j];
    sumDown += std::exp(row.logP[j] - a);
  }
  // Steps 3-4.
  std::vector<double> centered(D, 0.0), weightedAbs(D, 0.0);
  for (int64_t j = 0; j < L; ++j)
    for (int64_t d = 0; d < D; ++d) {
      double v = row.v(j, d);
      centered[d] += pRho[j] * (std::fabs(v - o[d]) + slack[d]);
      weightedAbs[d] += pUp[j] * std::fabs(v);
    }
  // Rounded weights lose at most weightAbs each (times (1 + E)^(R + 1) <= 2).
  const double absL = 16 * R1 * L * m.eta + 2 * L * m.weightAbs;
  const double kappa = std::exp(deltaMax);
  const double den = sumDown * (1 - gb) - kappa * absL;
  if (!(den > 0))
    return q;
  for (int64_t d = 0; d < D; ++d) {
    double absO = std::fabs(o[d]) + slack[d];
    double absD = 16 * R1 * m.eta * (L + sums.sumAbsV[d]) +
                  2 * m.weightAbs * sums.sumAbsV[d];
    double num = centered[d] + ga * weightedAbs[d] + gb * absO * sumUp +
                 kappa * (absD + absO * absL) +
                 0x1p-1000 * L * (sums.maxAbsV[d] + absO);
    q[d] = num / den;
  }
  return q;
}

/// Step 5: Y_d from Q_d.
double boundScaled(const ArithmeticModel &m, double vScaleAbs, double absO,
                   double q, double sumAbsV) {
  return vScaleAbs * (q + gammaOf(2, m.u) * (absO + q)) +
         m.eta * (4 * sumAbsV + 2);
}

} // namespace

const char *mlir::kvq::test::getAttentionTypeName(AttentionType type) {
  switch (type) {
  case AttentionType::BF16:
    return "bf16";
  case AttentionType::F16:
    return "f16";
  case AttentionType::F32:
    return "f32";
  }
  return "?";
}

const char *mlir::kvq::test::getCacheFormatName(CacheFormat format) {
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

unsigned mlir::kvq::test::getCacheElementBytes(CacheFormat format) {
  return format == CacheFormat::BF16 || format == CacheFormat::F16 ? 2 : 1;
}

double mlir::kvq::test::decodeCacheCode(CacheFormat format, uint16_t code) {
  const std::vector<double> &table = getCodeTable(format);
  return code < table.size() ? table[code]
                             : std::numeric_limits<double>::quiet_NaN();
}

double mlir::kvq::test::roundToType(double x, AttentionType type) {
  // A cast of a double beyond the float range is undefined behavior.
  if (type == AttentionType::F32 &&
      std::fabs(x) <= std::numeric_limits<float>::max())
    return double(float(x));
  APFloat value(x);
  bool lost;
  value.convert(getSemantics(type), APFloat::rmNearestTiesToEven, &lost);
  return toDouble(value);
}

double mlir::kvq::test::ulpsOf(double got, double ref, AttentionType type) {
  double err = std::fabs(got - ref);
  return std::isnan(err) ? std::numeric_limits<double>::infinity()
                         : err / getSpacing(ref, type);
}

std::vector<uint8_t>
mlir::kvq::test::getCacheBytes(const DecodeAttentionProblem &problem,
                               bool value) {
  const std::vector<uint16_t> &codes =
      value ? problem.valueCache : problem.keyCache;
  unsigned width = getCacheElementBytes(problem.cacheFormat);
  std::vector<uint8_t> bytes;
  bytes.reserve(codes.size() * width);
  for (uint16_t code : codes) {
    bytes.push_back(uint8_t(code));
    if (width == 2)
      bytes.push_back(uint8_t(code >> 8));
  }
  return bytes;
}

std::string mlir::kvq::test::validateProblem(const DecodeAttentionProblem &p) {
  std::ostringstream os;
  if (p.numSeqs < 1 || p.numHeads < 1 || p.numKVHeads < 1 || p.headSize < 1 ||
      p.numBlocks < 1 || p.blockSize < 1 || p.maxBlocks < 1) {
    os << "every dimension must be positive";
    return os.str();
  }
  if (p.numHeads % p.numKVHeads != 0) {
    os << "num_heads " << p.numHeads << " is not a multiple of num_kv_heads "
       << p.numKVHeads;
    return os.str();
  }
  size_t cacheSize =
      size_t(p.numBlocks * p.blockSize * p.numKVHeads * p.headSize);
  if (p.query.size() != p.outputSize() || p.keyCache.size() != cacheSize ||
      p.valueCache.size() != cacheSize ||
      p.blockTables.size() != size_t(p.numSeqs * p.maxBlocks) ||
      p.contextLens.size() != size_t(p.numSeqs))
    return "an operand's size does not match the dimensions";
  if (!std::isfinite(p.kScale) || !std::isfinite(p.vScale) ||
      !std::isfinite(p.softmaxScale))
    return "a scale is not finite";
  for (const std::vector<float> *heads : {&p.kHeadScales, &p.vHeadScales}) {
    if (!heads->empty() && heads->size() != size_t(p.numKVHeads))
      return "per-head scales are not one per KV head";
    for (float s : *heads)
      if (!std::isfinite(s))
        return "a scale is not finite";
  }
  for (size_t i = 0; i < p.query.size(); ++i)
    if (!std::isfinite(p.query[i]) ||
        roundToType(p.query[i], p.type) != double(p.query[i])) {
      os << "query element " << i << " (" << p.query[i] << ") is not a finite "
         << getAttentionTypeName(p.type);
      return os.str();
    }
  const std::vector<double> &table = getCodeTable(p.cacheFormat);
  for (const std::vector<uint16_t> *cache : {&p.keyCache, &p.valueCache})
    for (uint16_t code : *cache)
      if (code >= table.size()) {
        os << "cache code " << code << " is wider than "
           << getCacheFormatName(p.cacheFormat);
        return os.str();
      }
  const size_t rowSize = size_t(p.numKVHeads * p.headSize);
  for (int64_t b = 0; b < p.numSeqs; ++b) {
    int64_t len = p.contextLens[b];
    if (len < 0 || len > p.maxBlocks * p.blockSize) {
      os << "context_lens[" << b << "] = " << len << " is outside [0, "
         << p.maxBlocks * p.blockSize << "]";
      return os.str();
    }
    for (int64_t j = 0; j < len; ++j) {
      int64_t i = j / p.blockSize;
      int32_t blk = p.blockTables[b * p.maxBlocks + i];
      if (blk < 0 || blk >= p.numBlocks) {
        os << "block_tables[" << b << "][" << i << "] = " << blk
           << " is outside [0, " << p.numBlocks << ")";
        return os.str();
      }
      size_t base = (size_t(blk) * p.blockSize + j % p.blockSize) * rowSize;
      for (size_t e = 0; e < rowSize; ++e)
        if (!std::isfinite(table[p.keyCache[base + e]]) ||
            !std::isfinite(table[p.valueCache[base + e]])) {
          os << "token " << j << " of sequence " << b
             << " has a non-finite cache value";
          return os.str();
        }
    }
  }
  return "";
}

DecodeAttentionReference mlir::kvq::test::computeDecodeAttentionReference(
    const DecodeAttentionProblem &p, double expRelError, unsigned rescales) {
  KernelArithmetic arithmetic;
  arithmetic.expRelError = expRelError;
  arithmetic.rescales = rescales;
  return computeDecodeAttentionReference(p, arithmetic);
}

KernelArithmetic
mlir::kvq::test::getTensorCoreArithmetic(const DecodeAttentionProblem &p,
                                         int64_t tilesPerWarp,
                                         int64_t splitMerges, bool fp8Query) {
  KernelArithmetic a;
  a.rescales = unsigned(std::max<int64_t>(tilesPerWarp, 1)) + 1 +
               unsigned(std::max<int64_t>(splitMerges, 1));
  const bool bf16Operands = p.cacheFormat == CacheFormat::BF16;
  int64_t terms = 1;
  if (!fp8Query) {
    if (p.type == AttentionType::F32)
      terms = bf16Operands ? 3 : 2;
    else if (p.type == AttentionType::F16 && bf16Operands)
      terms = 2;
  }
  // 18 * 2^-23 per MMA, times (1 + 2^-9) for the partial sums' own error.
  const double perMMA = 18 * 0x1p-23 * (1 + 0x1p-9);
  a.dotRelError = perMMA * double(terms * (p.headSize / 16));
  a.accRelError = perMMA * double(std::max<int64_t>(tilesPerWarp, 1));
  if (!fp8Query && !bf16Operands && p.type != AttentionType::F16) {
    // Q in f16 terms: one term of a bf16 query is exact in f16's normal
    // range, two of an f32 query leave 2^-22 |q|; below 2^-14 each term
    // loses up to 2^-25 (half f16's subnormal spacing).
    a.queryRel = p.type == AttentionType::F32 ? 0x1p-22 : 0;
    a.queryAbs = 0x1p-25 * (1 + 0x1p-10);
    a.queryMax = 65504;
  } else if (!fp8Query && bf16Operands && p.type == AttentionType::F32) {
    a.queryAbs = 0x1p-126; // three bf16 terms: exact above bf16's underflow
  }
  if (bf16Operands) {
    a.weightRel = 0x1p-8;
  } else {
    a.weightRel = 0x1p-11;
    a.weightAbs = 0x1p-25;
  }
  return a;
}

DecodeAttentionReference mlir::kvq::test::computeDecodeAttentionReference(
    const DecodeAttentionProblem &p, const KernelArithmetic &arithmetic) {
  DecodeAttentionReference ref;
  const double expRelError = arithmetic.expRelError;
  const unsigned rescales = arithmetic.rescales;
  if (!(expRelError >= 0 && (rescales + 1.0) * expRelError <= 0x1p-4) ||
      rescales > (1u << 20)) {
    ref.error = "expRelError must be >= 0 with (rescales + 1) * expRelError "
                "<= 2^-4, and rescales at most 2^20";
    return ref;
  }
  ref.error = validateProblem(p);
  if (!ref.error.empty())
    return ref;
  const int64_t D = p.headSize, group = p.numHeads / p.numKVHeads;
  ref.out.assign(p.outputSize(), 0.0);
  ref.bound.assign(p.outputSize(), 0.0);
  const std::vector<double> &table = getCodeTable(p.cacheFormat);
  const TypeParams out = getTypeParams(p.type);
  const double inf = std::numeric_limits<double>::infinity();
  // Step 7: long double with the platform's unit roundoff.
  const ArithmeticModel refModel{
      std::numeric_limits<long double>::epsilon() / 2, 0.0, 0x1p-60, 0};
  ArithmeticModel kernelModel{0x1p-24, 0x1p-126, expRelError, rescales};
  kernelModel.dotRel = arithmetic.dotRelError;
  kernelModel.accRel = arithmetic.accRelError;
  kernelModel.queryRel = arithmetic.queryRel;
  kernelModel.queryAbs = arithmetic.queryAbs;
  kernelModel.weightRel = arithmetic.weightRel;
  kernelModel.weightAbs = arithmetic.weightAbs;

  for (int64_t b = 0; b < p.numSeqs; ++b) {
    const int64_t L = p.contextLens[b];
    if (L == 0)
      continue; // zeros, exactly
    for (int64_t h = 0; h < p.numHeads; ++h) {
      const int64_t g = h / group;
      // sigma is exact in double (and long double): a product of two
      // floats.
      const double sigma = double(p.softmaxScale) * double(p.kScaleOf(g));
      const long double sigmaL = sigma;
      const double vScale = p.vScaleOf(g), vScaleAbs = std::fabs(vScale);
      const float *q = &p.query[(b * p.numHeads + h) * D];
      RowData row;
      row.length = L;
      row.headSize = D;
      row.sigmaAbs = std::fabs(sigma);
      row.values = p.valueCache.data();
      row.table = table.data();
      row.rowBase.resize(L);
      row.absDot.resize(L);
      row.absKey.resize(L);
      row.logP.resize(L);
      bool queryFits = true;
      for (int64_t d = 0; d < D; ++d)
        queryFits &= std::fabs(q[d]) <= arithmetic.queryMax;
      std::vector<long double> s(L);
      for (int64_t j = 0; j < L; ++j) {
        int32_t blk = p.blockTables[b * p.maxBlocks + j / p.blockSize];
        row.rowBase[j] =
            ((size_t(blk) * p.blockSize + j % p.blockSize) * p.numKVHeads + g) *
            D;
        // Each product (at most 24 x 11 significant bits) is exact.
        long double dot = 0, absDot = 0, absKey = 0;
        for (int64_t d = 0; d < D; ++d) {
          double k = table[p.keyCache[row.rowBase[j] + d]];
          long double prod = (long double)q[d] * k;
          dot += prod;
          absDot += std::fabs(prod);
          absKey += std::fabs(k);
        }
        s[j] = sigmaL * dot;
        row.absDot[j] = double(absDot);
        row.absKey[j] = double(absKey);
      }
      long double sMax = *std::max_element(s.begin(), s.end());
      std::vector<long double> num(D, 0.0L);
      long double den = 0;
      for (int64_t j = 0; j < L; ++j) {
        long double pj = std::exp(s[j] - sMax);
        row.logP[j] = double(s[j] - sMax);
        den += pj;
        for (int64_t d = 0; d < D; ++d)
          num[d] += pj * row.v(j, d);
      }
      std::vector<double> o(D);
      for (int64_t d = 0; d < D; ++d)
        o[d] = double(num[d] / den);
      RowSums sums = getRowSums(row);

      // Step 7: the reference's own error, then the slack of o.
      std::vector<double> zero(D, 0.0);
      std::vector<double> qRef = boundRatio(refModel, row, sums, o, zero);
      std::vector<double> slack(D), refErr(D);
      for (int64_t d = 0; d < D; ++d) {
        double absO = std::fabs(o[d]);
        slack[d] = qRef[d] + (refModel.u + 0x1p-53) * (absO + qRef[d]);
        double y =
            boundScaled(refModel, vScaleAbs, absO, qRef[d], sums.sumAbsV[d]);
        refErr[d] = y + 0x1p-53 * (vScaleAbs * absO + y) + 0x1p-1074;
      }
      // Steps 1-6 for the kernel.
      bool scoresFit = queryFits;
      for (int64_t j = 0; j < L; ++j)
        scoresFit &= 2 * row.sigmaAbs * row.absDot[j] < 0x1p126;
      std::vector<double> qKer = boundRatio(kernelModel, row, sums, o, slack);
      for (int64_t d = 0; d < D; ++d) {
        size_t i = size_t((b * p.numHeads + h) * D + d);
        long double exact = (long double)vScale * num[d] / den;
        ref.out[i] = double(exact);
        double absO = std::fabs(o[d]) + slack[d];
        double y =
            boundScaled(kernelModel, vScaleAbs, absO, qKer[d], sums.sumAbsV[d]);
        double bound = y + out.unitRoundoff * (vScaleAbs * absO + y) +
                       out.halfMinSubnormal;
        bool fits = scoresFit && 4 * sums.sumAbsV[d] < 0x1p126 &&
                    4 * vScaleAbs < 0x1p126 &&
                    vScaleAbs * absO + y < out.overflowThreshold;
        ref.bound[i] = fits && std::isfinite(bound)
                           ? (bound + refErr[d]) * (1 + 0x1p-10)
                           : inf;
      }
    }
  }
  return ref;
}

std::vector<double>
mlir::kvq::test::emulateKernelF32(const DecodeAttentionProblem &p,
                                  int64_t chunkSize, KernelFault fault) {
  if (!validateProblem(p).empty())
    return {};
  const int64_t D = p.headSize, group = p.numHeads / p.numKVHeads;
  std::vector<double> out(p.outputSize(), 0.0);
  std::vector<float> table;
  for (double v : getCodeTable(p.cacheFormat))
    table.push_back(float(v)); // exact: every cache value is an f32
  std::vector<float> s, acc(D), chunkAcc(D);
  std::vector<size_t> rowBase;
  for (int64_t b = 0; b < p.numSeqs; ++b) {
    int64_t L = p.contextLens[b];
    if (fault == KernelFault::DropLastToken && L > 0)
      --L;
    if (L == 0)
      continue;
    for (int64_t h = 0; h < p.numHeads; ++h) {
      const int64_t g =
          fault == KernelFault::KVHeadModulo ? h % p.numKVHeads : h / group;
      // RN32 of the exact product (exact in double).
      const float c = float(double(p.softmaxScale) * double(p.kScaleOf(g)));
      const float *q = &p.query[(b * p.numHeads + h) * D];
      s.resize(L);
      rowBase.resize(L);
      for (int64_t j = 0; j < L; ++j) {
        int32_t blk = p.blockTables[b * p.maxBlocks + j / p.blockSize];
        rowBase[j] =
            ((size_t(blk) * p.blockSize + j % p.blockSize) * p.numKVHeads + g) *
            D;
        float dot = 0;
        for (int64_t d = 0; d < D; ++d)
          dot += q[d] * table[p.keyCache[rowBase[j] + d]];
        s[j] = dot * c;
      }
      const float M = *std::max_element(s.begin(), s.end());
      const int64_t chunk = chunkSize > 0 ? chunkSize : L;
      float l = 0;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t c0 = 0; c0 < L; c0 += chunk) {
        const int64_t c1 = std::min(L, c0 + chunk);
        const float mc = *std::max_element(&s[c0], &s[c0] + (c1 - c0));
        float lc = 0;
        std::fill(chunkAcc.begin(), chunkAcc.end(), 0.0f);
        for (int64_t j = c0; j < c1; ++j) {
          float e = std::exp(s[j] - mc);
          if (fault == KernelFault::CoarseExp)
            e *= j % 2 ? 1 + 0x1p-12f : 1 - 0x1p-12f;
          float w = fault == KernelFault::ProbsInBF16 ? roundToBF16(e) : e;
          lc += e;
          for (int64_t d = 0; d < D; ++d)
            chunkAcc[d] += w * table[p.valueCache[rowBase[j] + d]];
        }
        const float alpha = std::exp(mc - M);
        l += alpha * lc;
        for (int64_t d = 0; d < D; ++d)
          acc[d] += alpha * chunkAcc[d];
      }
      const float factor = p.vScaleOf(g) / l;
      for (int64_t d = 0; d < D; ++d)
        out[(b * p.numHeads + h) * D + d] =
            roundToType(acc[d] * factor, p.type);
    }
  }
  return out;
}

namespace {
/// Portable randomness: std::mt19937's sequence is specified, the standard
/// distributions are not.
class Random {
public:
  explicit Random(uint32_t seed) : gen(seed) {}
  double uniform() { return ((gen() >> 8) + 0.5) * 0x1p-24; }
  double normal() {
    double r = std::sqrt(-2 * std::log(uniform()));
    return r * std::cos(2 * 3.14159265358979323846 * uniform());
  }
  uint32_t below(uint32_t n) { return uint32_t(gen() % n); }

private:
  std::mt19937 gen;
};
} // namespace

DecodeAttentionProblem
mlir::kvq::test::makeRandomProblem(const RandomProblemOptions &opts) {
  Random rng(opts.seed);
  DecodeAttentionProblem p;
  p.numSeqs = int64_t(opts.contextLens.size());
  p.numHeads = opts.numHeads;
  p.numKVHeads = opts.numKVHeads;
  p.headSize = opts.headSize;
  p.blockSize = opts.blockSize;
  p.type = opts.type;
  p.cacheFormat = opts.cacheFormat;
  p.contextLens = opts.contextLens;
  const int64_t BS = p.blockSize, D = p.headSize;
  int64_t longest = 0, needed = 0;
  for (int32_t len : opts.contextLens) {
    int64_t blocks = (len + BS - 1) / BS;
    longest = std::max(longest, blocks);
    needed += blocks;
  }
  p.maxBlocks = std::max<int64_t>(1, longest + opts.paddingBlocks);
  p.numBlocks = std::max<int64_t>(1, needed + opts.unusedBlocks);

  // Fisher-Yates: the sequences' blocks are scattered over the cache.
  std::vector<int32_t> perm(p.numBlocks);
  for (int64_t i = 0; i < p.numBlocks; ++i)
    perm[i] = int32_t(i);
  for (int64_t i = p.numBlocks - 1; i > 0; --i)
    std::swap(perm[i], perm[rng.below(uint32_t(i + 1))]);
  p.blockTables.assign(size_t(p.numSeqs * p.maxBlocks), kPoisonBlock);
  size_t next = 0;
  for (int64_t b = 0; b < p.numSeqs; ++b)
    for (int64_t i = 0; i < (p.contextLens[b] + BS - 1) / BS; ++i)
      p.blockTables[b * p.maxBlocks + i] = perm[next++];

  p.query.resize(p.outputSize());
  for (float &x : p.query)
    x = float(roundToType(opts.queryStd * rng.normal(), p.type));
  p.softmaxScale = float(1 / std::sqrt(double(D)));
  bool quantized = getCacheElementBytes(p.cacheFormat) == 1;
  if (quantized) {
    double max = getFormatMax(p.cacheFormat);
    p.kScale = float(4 * opts.keyStd / max);
    p.vScale = float((std::fabs(opts.valueMean) + 4 * opts.valueStd) / max);
    if (opts.perHeadScales)
      for (int64_t g = 0; g < p.numKVHeads; ++g) {
        double spread = std::pow(opts.headSpread, double(g % 4));
        p.kHeadScales.push_back(float(p.kScale * spread));
        p.vHeadScales.push_back(float(p.vScale * spread));
      }
  }

  const size_t cacheSize = size_t(p.numBlocks * BS * p.numKVHeads * D);
  p.keyCache.assign(cacheSize, getPoisonCode(p.cacheFormat));
  p.valueCache.assign(cacheSize, getPoisonCode(p.cacheFormat));
  const std::vector<double> &table = getCodeTable(p.cacheFormat);
  auto encode = [&](double x) {
    uint16_t code = encodeCacheValue(p.cacheFormat, x);
    return std::isfinite(table[code]) ? code : uint16_t(0);
  };
  for (int64_t b = 0; b < p.numSeqs; ++b)
    for (int64_t j = 0; j < p.contextLens[b]; ++j) {
      int64_t blk = p.blockTables[b * p.maxBlocks + j / BS];
      size_t base = size_t((blk * BS + j % BS) * p.numKVHeads * D);
      for (size_t e = 0; e < size_t(p.numKVHeads * D); ++e) {
        int64_t g = int64_t(e) / D;
        p.keyCache[base + e] =
            encode(opts.keyStd * rng.normal() / p.kScaleOf(g));
        p.valueCache[base + e] = encode(
            (opts.valueMean + opts.valueStd * rng.normal()) / p.vScaleOf(g));
      }
    }
  return p;
}

BoundCheck
mlir::kvq::test::checkAgainstReference(const DecodeAttentionProblem &p,
                                       const DecodeAttentionReference &ref,
                                       const std::vector<double> &got) {
  const double inf = std::numeric_limits<double>::infinity();
  BoundCheck check;
  if (got.size() != ref.out.size() || ref.out.size() != p.outputSize()) {
    check.violations = std::max<size_t>(1, ref.out.size());
    check.firstViolation = 0;
    check.maxErrorOverBound = inf;
    return check;
  }
  const size_t D = size_t(p.headSize);
  for (size_t row = 0; row < got.size(); row += D) {
    double rowMax = 0;
    for (size_t i = row; i < row + D; ++i)
      rowMax = std::max(rowMax, std::fabs(ref.out[i]));
    const double rowUlp = getSpacing(rowMax, p.type);
    for (size_t i = row; i < row + D; ++i) {
      double err = std::fabs(got[i] - ref.out[i]);
      if (!(err <= ref.bound[i]) && check.violations++ == 0)
        check.firstViolation = i;
      double ratio = ref.bound[i] > 0 ? err / ref.bound[i]
                     : err == 0       ? 0.0
                                      : inf;
      check.maxErrorOverBound =
          std::max(check.maxErrorOverBound, std::isnan(ratio) ? inf : ratio);
      check.maxErrorUlps =
          std::max(check.maxErrorUlps, ulpsOf(got[i], ref.out[i], p.type));
      check.maxBoundUlps =
          std::max(check.maxBoundUlps,
                   ulpsOf(ref.out[i] + ref.bound[i], ref.out[i], p.type));
      check.maxErrorRowUlps =
          std::max(check.maxErrorRowUlps, std::isnan(err) ? inf : err / rowUlp);
      check.maxBoundRowUlps =
          std::max(check.maxBoundRowUlps, ref.bound[i] / rowUlp);
    }
  }
  return check;
}

std::string mlir::kvq::test::describeElement(const DecodeAttentionProblem &p,
                                             size_t index) {
  std::ostringstream os;
  size_t d = index % size_t(p.headSize);
  size_t h = (index / size_t(p.headSize)) % size_t(p.numHeads);
  size_t b = index / size_t(p.headSize * p.numHeads);
  os << "seq " << b << ", head " << h << ", dim " << d;
  return os.str();
}
