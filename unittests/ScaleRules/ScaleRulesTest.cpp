//===- ScaleRulesTest.cpp - KV-cache scale folding rules tests ------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// One table row per line of the decision table, warning and error; then the
// acceptance examples of the scale rules, and the helpers. Values are
// compared exactly: the rules must give vLLM's values bit for bit.
//
//===----------------------------------------------------------------------===//

#include "kvq/ScaleRules/ScaleRules.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

using namespace mlir::kvq;
using namespace mlir::kvq::scales;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

const RawScale none = std::nullopt;
RawScale s(double value) { return std::vector<double>{value}; }
RawScale heads(std::vector<double> values) { return values; }

RawScales scales(RawScale k, RawScale v, RawScale q = none,
                 RawScale prob = none) {
  RawScales raw;
  raw.k = std::move(k);
  raw.v = std::move(v);
  raw.q = std::move(q);
  raw.prob = std::move(prob);
  return raw;
}

Options opts(bool fnuz = false, ModelDtype modelDtype = ModelDtype::None,
             QFallback qFallback = QFallback::SeedFinal, bool strict = false) {
  Options options;
  options.fnuz = fnuz;
  options.modelDtype = modelDtype;
  options.qFallback = qFallback;
  options.strict = strict;
  return options;
}
const Options plain = opts();
const Options fnuz = opts(/*fnuz=*/true);
const Options bf16 = opts(false, ModelDtype::BF16);
const Options f16 = opts(false, ModelDtype::F16);
const Options strict =
    opts(false, ModelDtype::None, QFallback::SeedFinal, true);
const Options qFromK = opts(false, ModelDtype::None, QFallback::K);
/// Tensor parallelism: rank `rank` of `size`.
Options tp(unsigned size, unsigned rank,
           ScaleMethod method = ScaleMethod::Base) {
  Options options;
  options.tpSize = size;
  options.tpRank = rank;
  options.method = method;
  return options;
}
const Options qFromKFnuz = opts(true, ModelDtype::None, QFallback::K);

constexpr KVCacheDtype Auto = KVCacheDtype::Auto;
constexpr KVCacheDtype Fp8 = KVCacheDtype::Fp8;
constexpr KVCacheDtype E4M3 = KVCacheDtype::Fp8E4M3;
constexpr KVCacheDtype E5M2 = KVCacheDtype::Fp8E5M2;
constexpr KVCacheDtype Int8 = KVCacheDtype::Int8;

FinalScale ckpt(double value, bool doubled = false) {
  return {value, ScaleRule::Checkpoint, doubled};
}
FinalScale dup(double value, bool doubled = false) {
  return {value, ScaleRule::Duplicated, doubled};
}
FinalScale kfb(double value, bool doubled = false) {
  return {value, ScaleRule::KFallback, doubled};
}
/// A per-head final scale: the heads and their max.
FinalScale ph(std::vector<double> heads, ScaleRule rule = ScaleRule::Checkpoint,
              bool doubled = false) {
  double max = heads.front();
  for (double head : heads)
    max = std::max(max, head);
  return {max, rule, doubled, std::move(heads)};
}
const FinalScale dflt{1.0, ScaleRule::Default, false};
const FinalScale notQuant{1.0, ScaleRule::NotQuantized, false};
const FinalScale runtime{1.0, ScaleRule::Runtime, false};

/// An expected finding: kind, severity, the field it names and a key fact of
/// its message.
struct Expect {
  FindingKind kind;
  Severity severity;
  const char *field;
  const char *fact;
};
constexpr Severity W = Severity::Warning;
constexpr Severity E = Severity::Error;
using FK = FindingKind;

// The findings most rows share.
const Expect qMissing{FK::QMissing, W, "q", "does not provide a q scaling"};
const Expect uncalibrated11{FK::UncalibratedQP, W, "q",
                            "q_scale 1.0 and/or prob_scale 1.0"};
const Expect fp8Unit{FK::Fp8UnitScale, W, "k", "scaling factor 1.0"};

struct Case {
  const char *name;
  RawScales raw;
  KVCacheDtype dtype;
  bool calculateKvScales;
  Options options;
  FinalScale k, v, q, prob;
  bool calculateKvScalesAfter;
  std::vector<Expect> findings;
  /// The layer's head counts (unknown unless given).
  HeadCounts heads = {};
};

std::ostream &operator<<(std::ostream &os, const Case &c) {
  return os << c.name;
}

void expectScale(const FinalScale &actual, const FinalScale &expected,
                 const char *what) {
  SCOPED_TRACE(what);
  if (std::isnan(expected.value))
    EXPECT_TRUE(std::isnan(actual.value)) << actual.value;
  else
    EXPECT_EQ(actual.value, expected.value);
  EXPECT_EQ(stringifyScaleRule(actual.rule), stringifyScaleRule(expected.rule));
  EXPECT_EQ(actual.doubled, expected.doubled);
  EXPECT_EQ(actual.heads, expected.heads);
}

/// Checks the scales, the flag and the findings (in order) of one fold, and
/// the form every message must have.
void expectFold(const Result &result, const FinalScale &k, const FinalScale &v,
                const FinalScale &q, const FinalScale &prob,
                bool calculateKvScalesAfter,
                const std::vector<Expect> &findings) {
  expectScale(result.k, k, "K");
  expectScale(result.v, v, "V");
  expectScale(result.q, q, "Q");
  expectScale(result.prob, prob, "P");
  EXPECT_EQ(result.calculateKvScales, calculateKvScalesAfter);

  bool anyError = false;
  for (const Expect &e : findings)
    anyError |= e.severity == E;
  EXPECT_EQ(result.failed(), anyError);

  ASSERT_EQ(result.findings.size(), findings.size()) << [&] {
    std::string all;
    for (const Finding &f : result.findings)
      all += "\n  [" + getFindingKey(f.kind).str() + "] " + f.message;
    return all;
  }();
  for (size_t i = 0; i < findings.size(); ++i) {
    const Finding &actual = result.findings[i];
    const Expect &expected = findings[i];
    SCOPED_TRACE("finding #" + std::to_string(i) + ": [" +
                 getFindingKey(actual.kind).str() + "] " + actual.message);
    EXPECT_EQ(getFindingKey(actual.kind), getFindingKey(expected.kind));
    EXPECT_EQ(actual.severity, expected.severity);
    EXPECT_EQ(actual.field ? stringifyScaleKind(*actual.field) : "",
              llvm::StringRef(expected.field));
    EXPECT_NE(actual.message.find(expected.fact), std::string::npos)
        << "missing fact: " << expected.fact;
    // Lowercase start, no trailing period, no key prefix.
    ASSERT_FALSE(actual.message.empty());
    EXPECT_TRUE(std::islower(static_cast<unsigned char>(actual.message[0])));
    EXPECT_NE(actual.message.back(), '.');
    EXPECT_NE(actual.message.front(), '[');
    EXPECT_NE(actual.message.rfind(getFindingKey(actual.kind).str(), 0), 0u);
    if (!actual.note.empty()) {
      EXPECT_NE(actual.note.back(), '.');
    }
  }
}

Result fold(const Case &c) {
  return foldScales(c.raw, c.dtype, c.calculateKvScales, c.options, c.heads);
}

//===----------------------------------------------------------------------===//
// The decision table
//===----------------------------------------------------------------------===//

// One row per case: name, raw scales (k, v, q, prob), cache dtype,
// calculate_kv_scales, options, then the expected K, V, Q, P, the flag after
// the rules and the findings in order.
// clang-format off
const Case decisionTable[] = {
    // --- KV row 1: k > 0 and v > 0 -> k*F, v*F --------------------------
    {"KVRow1BothPositiveFp8", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Fp8,
     false, plain, ckpt(0.05), ckpt(0.1), ckpt(0.2), ckpt(0.3), false, {}},
    {"KVRow1BothPositiveFp8E4M3Fnuz", scales(s(0.05), s(0.1), s(0.2), s(0.3)),
     E4M3, false, fnuz, ckpt(0.1, true), ckpt(0.2, true), ckpt(0.4, true),
     ckpt(0.6, true), false, {}},
    {"KVRow1BothPositiveFp8E5M2Fnuz", scales(s(0.05), s(0.1)), E5M2, false,
     fnuz, ckpt(0.1, true), ckpt(0.2, true), dflt, dflt, false,
     {qMissing}},
    {"KVRow1BothPositiveFp8E5M2", scales(s(0.05), s(0.1), s(0.2)), E5M2, false,
     plain, ckpt(0.05), ckpt(0.1), ckpt(0.2), dflt, false, {}},
    // int8 never gets the FNUZ factor on K/V; q and prob still do.
    {"KVRow1Int8FnuzNotDoubled", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Int8,
     false, fnuz, ckpt(0.05), ckpt(0.1), ckpt(0.4, true), ckpt(0.6, true),
     false, {}},
    {"KVRow1Int8", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Int8, false, plain,
     ckpt(0.05), ckpt(0.1), ckpt(0.2), ckpt(0.3), false, {}},

    // --- KV row 2: both absent -> 1.0, 1.0 (no F) -----------------------
    {"KVRow2BothAbsentFp8", scales(none, none), Fp8, false, plain, dflt, dflt,
     dflt, dflt, false,
     {qMissing, {FK::Fp8UnitScale, W, "k", "for fp8_e4m3"}, uncalibrated11}},
    {"KVRow2BothAbsentFp8FnuzNoFactor", scales(none, none), Fp8, false, fnuz,
     dflt, dflt, dflt, dflt, false, {qMissing, fp8Unit, uncalibrated11}},
    {"KVRow2NegativeSentinelsFp8E4M3", scales(s(-1.0), s(-1.0)), E4M3, false,
     plain, dflt, dflt, dflt, dflt, false,
     {{FK::QMissing, W, "q", "q = absent"},
      {FK::Fp8UnitScale, W, "k", "k = -1.0 (absent), v = -1.0 (absent)"}}},
    {"KVRow2NegativeScalesAreAbsent", scales(s(-0.5), s(-3.0), s(-2.0)), E4M3,
     false, plain, dflt, dflt, dflt, dflt, false,
     {{FK::QMissing, W, "q", "q = -2.0 (absent)"}, fp8Unit}},
    {"KVRow2NegativeInfinityIsAbsent", scales(s(-kInf), s(-kInf)), E5M2, false,
     plain, dflt, dflt, dflt, dflt, false, {qMissing}},
    {"KVRow2BothAbsentFp8E5M2", scales(none, none), E5M2, false, plain, dflt,
     dflt, dflt, dflt, false, {qMissing}},
    {"KVRow2BothAbsentInt8", scales(none, none), Int8, false, plain, dflt, dflt,
     dflt, dflt, false,
     {{FK::Int8NeedsCalibration, W, "k", "severe accuracy loss"},
      qMissing,
      {FK::Int8UnitScale, W, "k", "k=1.000000, v=1.000000"}}},
    {"KVRow2BothAbsentInt8Fnuz", scales(none, none, s(0.25), s(0.5)), Int8,
     false, fnuz, dflt, dflt, ckpt(0.5, true), ckpt(1.0, true), false,
     {{FK::Int8NeedsCalibration, W, "k", "absmax(tensor) / 127"},
      {FK::Int8UnitScale, W, "k", "absmax(tensor) / 127"}}},
    {"KVRow2StrictFp8", scales(none, none), Fp8, false, strict, dflt, dflt,
     dflt, dflt, false,
     {{FK::KVMissing, E, "k", "no k/v scales"},
      {FK::QMissing, E, "q", "does not provide a q scaling"}, fp8Unit,
      uncalibrated11}},
    {"KVRow2StrictFp8E5M2", scales(none, none, s(0.2)), E5M2, false, strict,
     dflt, dflt, ckpt(0.2), dflt, false,
     {{FK::KVMissing, E, "k", "strict mode rejects the default"}}},
    {"KVRow2StrictInt8", scales(none, none, s(0.2)), Int8, false, strict, dflt,
     dflt, ckpt(0.2), dflt, false,
     {{FK::Int8NeedsCalibration, E, "k", "on-the-fly calibration"},
      {FK::Int8UnitScale, W, "k", "overflow"}}},

    // --- KV row 3: k > 0, v absent / 0 / NaN -> both max(k, v)*F --------
    {"KVRow3LegacyKvScale", scales(s(0.05), none, s(0.2), s(0.3)), Fp8, false,
     plain, dup(0.05), dup(0.05), ckpt(0.2), ckpt(0.3), false, {}},
    {"KVRow3VZero", scales(s(0.05), s(0.0), s(0.2), s(0.3)), Fp8, false, plain,
     dup(0.05), dup(0.05), ckpt(0.2), ckpt(0.3), false, {}},
    {"KVRow3VNaN", scales(s(0.05), s(kNaN), s(0.2), s(0.3)), Fp8, false, plain,
     dup(0.05), dup(0.05), ckpt(0.2), ckpt(0.3), false, {}},
    {"KVRow3VNegative", scales(s(0.05), s(-3.0), s(0.2), s(0.3)), Fp8, false,
     plain, dup(0.05), dup(0.05), ckpt(0.2), ckpt(0.3), false, {}},
    {"KVRow3Fp8E4M3Fnuz", scales(s(0.05), none), E4M3, false, fnuz,
     dup(0.1, true), dup(0.1, true), dflt, dflt, false, {qMissing}},
    {"KVRow3Int8FnuzNotDoubled", scales(s(0.05), none, s(0.2)), Int8, false,
     fnuz, dup(0.05), dup(0.05), ckpt(0.4, true), dflt, false, {}},
    {"KVRow3Fp8E4M3UnitScale", scales(s(1.0), none, s(0.2)), E4M3, false, plain,
     dup(1.0), dup(1.0), ckpt(0.2), dflt, false,
     {{FK::Fp8UnitScale, W, "k", "k = 1.0, v = absent"}}},

    // --- KV row 4: otherwise -> error (the seed's assert k_scale > 0) ---
    {"KVRow4OnlyV", scales(none, s(0.05), s(0.2), s(0.3)), Fp8, false, plain,
     dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "only v present"}}},
    {"KVRow4OnlyVMentionsAssert", scales(none, s(0.05), s(0.2), s(0.3)), E4M3,
     false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "`assert k_scale > 0`"}}},
    {"KVRow4KZero", scales(s(0.0), s(0.05), s(0.2), s(0.3)), Fp8, false, plain,
     dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "k = 0"}}},
    {"KVRow4KZeroVAbsent", scales(s(0.0), none, s(0.2), s(0.3)), Fp8, false,
     plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "k = 0.0, v = absent"}}},
    {"KVRow4KNegativeZero", scales(s(-0.0), s(-1.0), s(0.2), s(0.3)), Fp8,
     false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "k = 0"}}},
    {"KVRow4KNaN", scales(s(kNaN), s(0.05), s(0.2), s(0.3)), Fp8, false, plain,
     dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "k is NaN"}}},
    {"KVRow4KNaNVAbsent", scales(s(kNaN), none, s(0.2), s(0.3)), Fp8, false,
     plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "k = nan, v = absent"}}},
    {"KVRow4KAbsentVNaN", scales(none, s(kNaN), s(0.2), s(0.3)), Fp8, false,
     plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "only v present"}}},
    {"KVRow4KAbsentVZero", scales(s(-1.0), s(0.0), s(0.2), s(0.3)), Fp8, false,
     plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "k = -1.0 (absent), v = 0.0"}}},
    {"KVRow4KNegativeInfinityVPositive", scales(s(-kInf), s(0.1), s(0.2)), E5M2,
     false, plain, dflt, dflt, ckpt(0.2), dflt, false,
     {{FK::KScaleInvalid, E, "k", "k = -inf (absent)"}}},
    // After a KV error Q-MISSING is still reported, the K/V value checks are
    // not (K and V have no value).
    {"KVRow4Int8OnlyV", scales(none, s(0.05)), Int8, false, plain, dflt, dflt,
     dflt, dflt, false,
     {{FK::KScaleInvalid, E, "k", "'int8' KV cache"},
      {FK::QMissing, W, "q", "not K (K is invalid)"}}},
    {"KVRow4Fp8KeepsQPChecks", scales(s(0.0), s(0.0)), Fp8, false, plain, dflt,
     dflt, dflt, dflt, false,
     {{FK::KScaleInvalid, E, "k", "k = 0"}, qMissing, uncalibrated11}},

    // --- Per-head scales: each head by the same rows ---------------------
    {"PerHeadKVCheckpoint", scales(heads({0.1, 0.2}), heads({0.3, 0.4}),
     s(0.2), s(0.3)), Fp8, false, plain, ph({0.1, 0.2}), ph({0.3, 0.4}),
     ckpt(0.2), ckpt(0.3), false, {}, {2, std::nullopt}},
    {"PerHeadKVFnuzDoubled", scales(heads({0.1, 0.2}), heads({0.3, 0.4}),
     s(0.2), s(0.3)), E4M3, false, fnuz,
     ph({0.2, 0.4}, ScaleRule::Checkpoint, true),
     ph({0.6, 0.8}, ScaleRule::Checkpoint, true), ckpt(0.4, true),
     ckpt(0.6, true), false, {}},
    // A per-tensor scale beside a per-head one is every head's.
    {"PerHeadK", scales(heads({0.1, 0.2}), s(0.1), s(0.2), s(0.3)), Fp8, false,
     plain, ph({0.1, 0.2}), ph({0.1, 0.1}), ckpt(0.2), ckpt(0.3), false, {}},
    {"PerHeadV", scales(s(0.1), heads({0.1, 0.2, 0.3}), s(0.2), s(0.3)), Int8,
     false, plain, ph({0.1, 0.1, 0.1}), ph({0.1, 0.2, 0.3}), ckpt(0.2),
     ckpt(0.3), false, {}},
    {"PerHeadKAndV", scales(heads({0.1, 0.2}), heads({0.1, 0.2}), s(0.2)),
     E5M2, false, plain, ph({0.1, 0.2}), ph({0.1, 0.2}), ckpt(0.2), dflt,
     false, {}},
    // A single per-head kv scale is duplicated, head by head.
    {"PerHeadKVAbsent", scales(heads({0.1, 0.2}), none, s(0.2), s(0.3)), Fp8,
     false, plain, ph({0.1, 0.2}, ScaleRule::Duplicated),
     ph({0.1, 0.2}, ScaleRule::Duplicated), ckpt(0.2), ckpt(0.3), false, {}},
    {"PerHeadDuplicatedFnuz", scales(heads({0.1, 0.2}), none, s(0.2), s(0.3)),
     Fp8, false, fnuz, ph({0.2, 0.4}, ScaleRule::Duplicated, true),
     ph({0.2, 0.4}, ScaleRule::Duplicated, true), ckpt(0.4, true),
     ckpt(0.6, true), false, {}},
    // k must be > 0 at every head: the error names the head.
    {"PerHeadVKZero", scales(s(0.0), heads({0.1, 0.2}), s(0.2), s(0.3)), Fp8,
     false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "invalid k scale of head 0 for the 'fp8' "
                                  "KV cache (k = 0)"}}},
    {"PerHeadKZeroHead", scales(heads({0.1, 0.0}), heads({0.1, 0.1}), s(0.2),
     s(0.3)), Fp8, false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "head 1 for the 'fp8' KV cache (k = 0)"}}},
    {"PerHeadKNaNHead", scales(heads({kNaN, 0.1}), heads({0.1, 0.1}), s(0.2),
     s(0.3)), Fp8, false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "head 0 for the 'fp8' KV cache (k is NaN)"}}},
    {"PerHeadOnlyV", scales(none, heads({0.1, 0.2}), s(0.2), s(0.3)), Fp8,
     false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::KScaleInvalid, E, "k", "head 0 for the 'fp8' KV cache (only v "
                                  "present)"}}},
    // Heads that would fold by different rows.
    {"PerHeadVZeroHeadMixed", scales(heads({0.1, 0.2}), heads({0.3, 0.0}),
     s(0.2), s(0.3)), Fp8, false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3),
     false,
     {{FK::PerHeadMixed, E, "v", "head 0 by 'checkpoint' (k = 0.1, v = 0.3), "
                                 "head 1 by 'duplicated' (k = 0.2, v = 0.0)"}}},
    {"PerHeadNegativeHeadMixed", scales(heads({-1.0, 0.2}), heads({-1.0, 0.3}),
     s(0.2), s(0.3)), Fp8, false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3),
     false,
     {{FK::PerHeadMixed, E, "k", "head 0 by 'default' (k = -1.0, v = -1.0), "
                                 "head 1 by 'checkpoint'"}}},
    {"EmptyKIsNotPerTensor", scales(heads({}), s(0.1), s(0.2), s(0.3)), Fp8,
     false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::PerHeadKV, E, "k", "k has 0 elements"}}},
    {"PerHeadKIgnoredForAuto", scales(heads({0.1, 0.2}), s(0.1), s(0.2)), Auto,
     false, plain, notQuant, notQuant, ckpt(0.2), dflt, false, {}},
    {"PerHeadKIgnoredAtRuntime", scales(heads({0.1, 0.2}), s(0.1)), Fp8, true,
     plain, runtime, runtime, dflt, dflt, true, {uncalibrated11}},
    // Counts against the layer's heads.
    {"PerHeadKVCountMismatch", scales(heads({0.1, 0.2}), heads({0.1, 0.2}),
     s(0.2), s(0.3)), Fp8, false, plain, dflt, dflt, ckpt(0.2), ckpt(0.3),
     false,
     {{FK::HeadCountMismatch, E, "k", "k has 2 per-head scales but the layer "
                                      "has 4 KV heads"},
      {FK::HeadCountMismatch, E, "v", "v has 2 per-head scales but the layer "
                                      "has 4 KV heads"}},
     {4, std::nullopt}},
    {"PerHeadKVLengthsDiffer", scales(heads({0.1, 0.2}),
     heads({0.1, 0.2, 0.3}), s(0.2), s(0.3)), Fp8, false, plain, dflt, dflt,
     ckpt(0.2), ckpt(0.3), false,
     {{FK::HeadCountMismatch, E, "v", "v has 3 per-head scales but k has 2"}}},

    // --- Per-head q: reduced to KV heads by the group max ----------------
    {"PerHeadQ", scales(s(0.1), s(0.1), heads({0.1, 0.2}), s(0.3)), Fp8, false,
     plain, ckpt(0.1), ckpt(0.1), ph({0.1, 0.2}), ckpt(0.3), false, {},
     {2, std::nullopt}},
    {"PerHeadQReducedGroupMax", scales(heads({0.1, 0.2}), heads({0.1, 0.2}),
     heads({0.1, 0.3, 0.2, 0.05}), s(0.3)), Fp8, false, plain, ph({0.1, 0.2}),
     ph({0.1, 0.2}), ph({0.3, 0.2}), ckpt(0.3), false, {}, {2, 4}},
    {"PerHeadQFnuzDoubled", scales(heads({0.1, 0.2}), heads({0.1, 0.2}),
     heads({0.1, 0.3, 0.2, 0.05}), s(0.3)), Fp8, false, fnuz,
     ph({0.2, 0.4}, ScaleRule::Checkpoint, true),
     ph({0.2, 0.4}, ScaleRule::Checkpoint, true),
     ph({0.6, 0.4}, ScaleRule::Checkpoint, true), ckpt(0.6, true), false, {}},
    {"PerHeadQFallbackK", scales(heads({0.1, 0.2}), heads({0.1, 0.2})), Fp8,
     false, qFromK, ph({0.1, 0.2}), ph({0.1, 0.2}),
     ph({0.1, 0.2}, ScaleRule::KFallback), dflt, false,
     {{FK::QMissing, W, "q", "Q = K = 0.2 is applied"},
      {FK::UncalibratedQP, W, "prob", "prob_scale 1.0"}}},
    {"PerHeadQAllNegativeIsDefault", scales(s(0.1), s(0.1), heads({-1.0, -1.0}),
     s(0.3)), Fp8, false, plain, ckpt(0.1), ckpt(0.1), dflt, ckpt(0.3), false,
     {{FK::UncalibratedQP, W, "q", "q_scale 1.0"}}, {2, std::nullopt}},
    {"PerHeadQZeroHeadMixed", scales(s(0.1), s(0.1),
     heads({0.1, 0.0, 0.2, 0.3}), s(0.3)), Fp8, false, plain, ckpt(0.1),
     ckpt(0.1), dflt, ckpt(0.3), false,
     {{FK::PerHeadMixed, E, "q", "head 0 by 'checkpoint' (q = 0.1), head 1 by "
                                 "'default' (q = 0.0)"}},
     {2, std::nullopt}},
    {"PerHeadQCountMismatch", scales(s(0.1), s(0.1), heads({0.1, 0.2, 0.3, 0.4}),
     s(0.3)), Fp8, false, plain, ckpt(0.1), ckpt(0.1), dflt, ckpt(0.3), false,
     {{FK::HeadCountMismatch, E, "q", "q has 4 per-head scales but the layer "
                                      "has 8 attention heads"}},
     {2, 8}},
    {"PerHeadQNotMultiple", scales(heads({0.1, 0.2}), heads({0.1, 0.2}),
     heads({0.1, 0.2, 0.3}), s(0.3)), Fp8, false, plain, ph({0.1, 0.2}),
     ph({0.1, 0.2}), dflt, ckpt(0.3), false,
     {{FK::HeadCountMismatch, E, "q", "q has 3 per-head scales, not a "
                                      "multiple of the 2 KV heads"}}},
    {"PerHeadQAuto", scales(none, none, heads({0.1, 0.2})), Auto, false, plain,
     notQuant, notQuant, dflt, dflt, false,
     {{FK::HeadCountMismatch, E, "q", "the layer's number of KV heads is "
                                      "unknown"}}},
    {"PerHeadProb", scales(s(0.1), s(0.1), s(0.2), heads({1, 2, 3, 4})), Fp8,
     false, plain, ckpt(0.1), ckpt(0.1), ckpt(0.2), dflt, false,
     {{FK::PerHeadQP, E, "prob", "prob has 4 elements"}}},
    {"PerHeadQAndKV", scales(heads({1, 2}), s(1), heads({1, 2}), heads({1, 2})),
     Fp8, false, plain, ph({1, 2}), ph({1, 1}), ph({1, 2}), dflt, false,
     {{FK::PerHeadQP, E, "prob", "prob has 2"}}},

    // --- Tensor parallelism: per-head scales sharded for one rank ---------
    {"TpShardKV", scales(heads({0.1, 0.2, 0.3, 0.4}),
     heads({0.5, 0.6, 0.7, 0.8}), s(0.2), s(0.3)), Fp8, false, tp(2, 1),
     ph({0.3, 0.4}), ph({0.7, 0.8}), ckpt(0.2), ckpt(0.3), false, {}, {2}},
    // Fewer KV heads than ranks: each is replicated on 2 ranks.
    {"TpShardReplicated", scales(heads({0.1, 0.2}), heads({0.3, 0.4}), s(0.2),
     s(0.3)), Fp8, false, tp(4, 3), ph({0.2}), ph({0.4}), ckpt(0.2),
     ckpt(0.3), false, {}, {1}},
    // q is reduced over the whole model first, then sharded as k and v.
    {"TpShardQReducedFirst", scales(heads({0.1, 0.2}), heads({0.3, 0.4}),
     heads({0.1, 0.5, 0.2, 0.05})), Fp8, false,
     tp(2, 0, ScaleMethod::CompressedTensors), ph({0.1}), ph({0.3}),
     ph({0.5}), dflt, false, {}, {1, 2}},
    {"TpPerTensorUntouched", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Fp8,
     false, tp(4, 2), ckpt(0.05), ckpt(0.1), ckpt(0.2), ckpt(0.3), false, {}},
    {"TpHeadsIndivisible", scales(heads({1, 2, 3, 4, 5, 6}),
     heads({1, 2, 3, 4, 5, 6}), s(0.2), s(0.3)), Fp8, false, tp(4, 0), dflt,
     dflt, dflt, dflt, false,
     {{FK::TpHeadsIndivisible, E, "k", "the 6 KV heads of the per-head k/v "
                                       "scales cannot be sharded over "
                                       "tp-size 4"}}},
    {"TpCountMismatchAfterSharding", scales(heads({1, 2, 3, 4, 5, 6, 7, 8}),
     heads({1, 2, 3, 4, 5, 6, 7, 8}), s(0.2), s(0.3)), Fp8, false, tp(2, 0),
     dflt, dflt, ckpt(0.2), ckpt(0.3), false,
     {{FK::HeadCountMismatch, E, "k", "k has 4 per-head scales (the heads of "
                                      "tp-rank 0 of tp-size 2, from 8 in the "
                                      "checkpoint) but the layer has 8 KV "
                                      "heads"},
      {FK::HeadCountMismatch, E, "v", "v has 4 per-head scales"}},
     {8}},
    {"TpQCountAfterReduction", scales(heads({1, 2, 3, 4, 5, 6, 7, 8}),
     heads({1, 2, 3, 4, 5, 6, 7, 8}), heads({1, 2, 3, 4, 5, 6, 7, 8})), Fp8,
     false, tp(2, 1, ScaleMethod::CompressedTensors), dflt, dflt, dflt, dflt,
     false,
     {{FK::HeadCountMismatch, E, "k", "k has 4 per-head scales"},
      {FK::HeadCountMismatch, E, "v", "v has 4 per-head scales"},
      {FK::HeadCountMismatch, E, "q", "q has 4 per-head scales (the heads of "
                                      "tp-rank 1 of tp-size 2, from 8 in the "
                                      "checkpoint) after the reduction to KV "
                                      "heads, but the layer has 8 KV heads"}},
     {8}},
    {"TpQCountMismatch", scales(heads({0.1, 0.2}), heads({0.3, 0.4}),
     heads({0.1, 0.2, 0.3, 0.4})), Fp8, false,
     tp(2, 0, ScaleMethod::CompressedTensors), dflt, dflt, dflt, dflt, false,
     {{FK::HeadCountMismatch, E, "q", "q has 4 per-head scales but the model "
                                      "has 3 attention heads on each of 2 "
                                      "ranks"}},
     {1, 3}},
    {"TpQUnknownKvHeads", scales(s(0.1), s(0.1), heads({0.1, 0.2})), Fp8,
     false, tp(2, 0), dflt, dflt, dflt, dflt, false,
     {{FK::HeadCountMismatch, E, "q", "needed to shard them for tp-rank 0 of "
                                      "tp-size 2"}}},

    // --- auto: K = V = 1.0, only the Q/P block ----------------------------
    {"AutoIgnoresKV", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Auto, false,
     plain, notQuant, notQuant, ckpt(0.2), ckpt(0.3), false, {}},
    {"AutoNoScalesNoWarnings", scales(none, none), Auto, false, plain,
     notQuant, notQuant, dflt, dflt, false, {}},
    {"AutoInvalidKNoError", scales(s(0.0), s(0.05)), Auto, false, plain,
     notQuant, notQuant, dflt, dflt, false, {}},
    {"AutoFnuz", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Auto, false, fnuz,
     notQuant, notQuant, ckpt(0.4, true), ckpt(0.6, true), false, {}},
    {"AutoStrictNoScales", scales(none, none), Auto, false, strict, notQuant,
     notQuant, dflt, dflt, false, {}},
    {"AutoCalculateWithQ", scales(none, none, s(0.3)), Auto, true, plain,
     notQuant, notQuant, ckpt(0.3), dflt, false, {}},
    {"AutoCalculateWithoutQ", scales(none, none), Auto, true, plain, notQuant,
     notQuant, dflt, dflt, true, {}},

    // --- calculate_kv_scales on a quantized cache: KV block skipped -------
    {"RuntimeFp8NoQ", scales(s(0.05), s(0.1)), Fp8, true, plain, runtime,
     runtime, dflt, dflt, true, {uncalibrated11}},
    {"RuntimeFp8E4M3NoQ", scales(s(0.05), s(0.1)), E4M3, true, plain, runtime,
     runtime, dflt, dflt, true, {}},
    {"RuntimeFp8QFreezes", scales(s(0.05), s(0.1), s(0.3)), Fp8, true, plain,
     runtime, runtime, ckpt(0.3), dflt, false,
     {{FK::RuntimeScalesFrozen, W, "q", "K = V = 1.0 for good"},
      {FK::UncalibratedQP, W, "prob", "q_scale 0.3 and/or prob_scale 1.0"}}},
    {"RuntimeInt8QFreezesFnuz", scales(none, none, s(0.3), s(0.2)), Int8, true,
     fnuz, runtime, runtime, ckpt(0.6, true), ckpt(0.4, true), false,
     {{FK::RuntimeScalesFrozen, W, "q", "q = 0.3"}}},
    {"RuntimeInt8NoWarnings", scales(none, none), Int8, true, plain, runtime,
     runtime, dflt, dflt, true, {}},
    {"RuntimeFp8E5M2Strict", scales(none, none), E5M2, true, strict, runtime,
     runtime, dflt, dflt, true, {}},
    {"RuntimeQZeroKeepsCalculation", scales(none, none, s(0.0)), E5M2, true,
     plain, runtime, runtime, dflt, dflt, true, {}},

    // --- the q check of the KV block: `q_scale < 0.0` ---------------------
    {"QZeroIsNotMissing", scales(s(0.1), s(0.1), s(0.0), s(0.3)), Fp8, false,
     plain, ckpt(0.1), ckpt(0.1), dflt, ckpt(0.3), false,
     {{FK::UncalibratedQP, W, "q", "q_scale 1.0 and/or prob_scale 0.3"}}},
    {"QNaNIsNotMissing", scales(s(0.1), s(0.1), s(kNaN), s(0.3)), E4M3, false,
     plain, ckpt(0.1), ckpt(0.1), dflt, ckpt(0.3), false, {}},
    {"QNegativeIsMissing", scales(s(0.1), s(0.1), s(-0.5), s(0.3)), E4M3,
     false, plain, ckpt(0.1), ckpt(0.1), dflt, ckpt(0.3), false,
     {{FK::QMissing, W, "q", "Setting it to k_scale"}}},
    {"QMissingTellsTheQuirk", scales(s(0.1), s(0.2), none, s(0.3)), E4M3,
     false, plain, ckpt(0.1), ckpt(0.2), dflt, ckpt(0.3), false,
     {{FK::QMissing, W, "q", "overwrites Q with 1.0: the final Q is 1.0, "
                             "not K (K = 0.1)"}}},
    {"QMissingStrict", scales(s(0.1), s(0.2), none, s(0.3)), E4M3, false,
     strict, ckpt(0.1), ckpt(0.2), dflt, ckpt(0.3), false,
     {{FK::QMissing, E, "q", "flash-attn or flashinfer"}}},

    // --- prob ---------------------------------------------------------------
    {"ProbZero", scales(s(0.1), s(0.1), s(0.2), s(0.0)), E4M3,
     false, plain, ckpt(0.1), ckpt(0.1), ckpt(0.2), dflt, false, {}},
    {"ProbNaN", scales(s(0.1), s(0.1), s(0.2), s(kNaN)), E4M3, false, plain,
     ckpt(0.1), ckpt(0.1), ckpt(0.2), dflt, false, {}},
    {"ProbNegative", scales(s(0.1), s(0.1), s(0.2), s(-1.0)), E4M3, false,
     fnuz, ckpt(0.2, true), ckpt(0.2, true), ckpt(0.4, true), dflt, false, {}},

    // --- UNCALIBRATED-QP: dtype == "fp8" exactly ---------------------------
    {"UncalibratedQPProbMissing", scales(s(0.1), s(0.1), s(0.2)), Fp8, false,
     plain, ckpt(0.1), ckpt(0.1), ckpt(0.2), dflt, false,
     {{FK::UncalibratedQP, W, "prob", "q_scale 0.2 and/or prob_scale 1.0"}}},
    {"UncalibratedQPNotForFp8E4M3", scales(s(0.1), s(0.1)), E4M3, false, plain,
     ckpt(0.1), ckpt(0.1), dflt, dflt, false, {qMissing}},
    {"UncalibratedQPNotForInt8", scales(s(0.1), s(0.1), s(0.2)), Int8, false,
     plain, ckpt(0.1), ckpt(0.1), ckpt(0.2), dflt, false, {}},
    {"UncalibratedQPNotForAuto", scales(none, none), Auto, false, plain,
     notQuant, notQuant, dflt, dflt, false, {}},
    {"UncalibratedQPCheckpointOnes", scales(s(0.1), s(0.1), s(1.0), s(1.0)),
     Fp8, false, plain, ckpt(0.1), ckpt(0.1), ckpt(1.0), ckpt(1.0), false,
     {{FK::UncalibratedQP, W, "q", "with fp8 attention"}}},
    {"UncalibratedQPFnuzDoubledHalf", scales(s(0.1), s(0.1), s(0.5), s(0.5)),
     Fp8, false, fnuz, ckpt(0.2, true), ckpt(0.2, true), ckpt(1.0, true),
     ckpt(1.0, true), false,
     {{FK::UncalibratedQP, W, "q", "q_scale 1.0 and/or prob_scale 1.0"}}},

    // --- INT8-UNIT-SCALE and FP8-UNIT-SCALE --------------------------------
    {"Int8UnitScaleK", scales(s(1.0), s(0.05), s(0.2)), Int8, false, plain,
     ckpt(1.0), ckpt(0.05), ckpt(0.2), dflt, false,
     {{FK::Int8UnitScale, W, "k", "k=1.000000, v=0.050000"}}},
    {"Int8UnitScaleV", scales(s(0.05), s(1.0), s(0.2)), Int8, false, plain,
     ckpt(0.05), ckpt(1.0), ckpt(0.2), dflt, false,
     {{FK::Int8UnitScale, W, "v", "k=0.050000, v=1.000000"}}},
    {"Int8HalfFnuzNoUnitScale", scales(s(0.5), s(0.5), s(0.2)), Int8, false,
     fnuz, ckpt(0.5), ckpt(0.5), ckpt(0.4, true), dflt, false, {}},
    {"Fp8UnitScaleCheckpointOnes", scales(s(1.0), s(1.0), s(0.2), s(0.3)),
     E4M3, false, plain, ckpt(1.0), ckpt(1.0), ckpt(0.2), ckpt(0.3), false,
     {{FK::Fp8UnitScale, W, "k", "verify that the k/v scaling factors"}}},
    {"Fp8UnitScaleFp8", scales(s(1.0), s(1.0), s(0.2), s(0.3)), Fp8, false,
     plain, ckpt(1.0), ckpt(1.0), ckpt(0.2), ckpt(0.3), false, {fp8Unit}},
    {"Fp8UnitScaleOnlyKOne", scales(s(1.0), s(0.5), s(0.2), s(0.3)), E4M3,
     false, plain, ckpt(1.0), ckpt(0.5), ckpt(0.2), ckpt(0.3), false, {}},
    {"Fp8UnitScaleNotForE5M2", scales(s(1.0), s(1.0), s(0.2), s(0.3)), E5M2,
     false, plain, ckpt(1.0), ckpt(1.0), ckpt(0.2), ckpt(0.3), false, {}},
    {"Fp8UnitScaleDuplicatedHalfFnuz", scales(s(0.5), none, s(0.2), s(0.3)),
     E4M3, false, fnuz, dup(1.0, true), dup(1.0, true), ckpt(0.4, true),
     ckpt(0.6, true), false,
     {{FK::Fp8UnitScale, W, "k", "k = 0.5, v = absent"}}},

    // --- QFallback::K: Q = K, as the seed's message promises --------------
    {"QFallbackKFp8", scales(s(0.05), s(0.1), none, s(0.3)), Fp8, false, qFromK,
     ckpt(0.05), ckpt(0.1), kfb(0.05), ckpt(0.3), false,
     {{FK::QMissing, W, "q", "Q = K = 0.05 is applied"}}},
    {"QFallbackKFnuzCopiesDoubledK", scales(s(0.05), none, none, s(0.3)), E4M3,
     false, qFromKFnuz, dup(0.1, true), dup(0.1, true), kfb(0.1, true),
     ckpt(0.6, true), false,
     {{FK::QMissing, W, "q", "Q = K = 0.1 is applied"}}},
    {"QFallbackKInt8Defaults", scales(none, none), Int8, false, qFromK, dflt,
     dflt, kfb(1.0), dflt, false,
     {{FK::Int8NeedsCalibration, W, "k", "calibrated scaling factors"},
      {FK::QMissing, W, "q", "Q = K = 1.0 is applied"},
      {FK::Int8UnitScale, W, "k", "k=1.000000"}}},
    {"QFallbackKFp8Defaults", scales(none, none), Fp8, false, qFromK, dflt,
     dflt, kfb(1.0), dflt, false,
     {{FK::QMissing, W, "q", "Q = K = 1.0"}, fp8Unit,
      {FK::UncalibratedQP, W, "q", "q_scale 1.0"}}},
    {"QFallbackKQPresent", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Fp8, false,
     qFromK, ckpt(0.05), ckpt(0.1), ckpt(0.2), ckpt(0.3), false, {}},
    {"QFallbackKQZeroIsNotMissing", scales(s(0.05), s(0.1), s(0.0), s(0.3)),
     E4M3, false, qFromK, ckpt(0.05), ckpt(0.1), dflt, ckpt(0.3), false, {}},
    {"QFallbackKAuto", scales(s(0.05), s(0.1)), Auto, false, qFromK, notQuant,
     notQuant, dflt, dflt, false, {}},
    {"QFallbackKRuntime", scales(s(0.05), s(0.1)), E4M3, true, qFromK, runtime,
     runtime, dflt, dflt, true, {}},
    {"QFallbackKInvalidK", scales(none, s(0.1)), E4M3, false, qFromK, dflt,
     dflt, dflt, dflt, false,
     {{FK::KScaleInvalid, E, "k", "only v present"},
      {FK::QMissing, W, "q", "Q = K cannot be applied"}}},

    // --- model-dtype rounding (RNE) of every raw value first ----------------
    {"BF16Rounding", scales(s(0.0123456789), s(0.1), s(0.3), s(0.6)), E4M3,
     false, bf16, ckpt(0.0123291015625), ckpt(0.10009765625),
     ckpt(0.30078125), ckpt(0.6015625), false, {}},
    {"F16Rounding", scales(s(0.0123456789), s(0.1), s(0.3), s(0.6)), E4M3,
     false, f16, ckpt(0.0123443603515625), ckpt(0.0999755859375),
     ckpt(0.300048828125), ckpt(0.60009765625), false, {}},
    {"BF16RoundingFnuz", scales(s(0.05), none, s(0.2)), E4M3, false,
     opts(true, ModelDtype::BF16), dup(0.10009765625, true),
     dup(0.10009765625, true), ckpt(0.400390625, true), dflt, false, {}},
    // 0.999 rounds to 1.0 in bf16: the unit-scale warning sees the rounded
    // value, as in vLLM.
    {"BF16RoundsToUnitScale", scales(s(0.999), s(0.999), s(0.2)), E4M3, false,
     bf16, ckpt(1.0), ckpt(1.0), ckpt(0.2001953125), dflt, false,
     {{FK::Fp8UnitScale, W, "k", "k = 1.0, v = 1.0"}}},
    // 1e-8 underflows to 0 in f16, so k is no longer > 0.
    {"F16UnderflowToZero", scales(s(1e-8), s(1e-8), s(0.2)), E4M3, false, f16,
     dflt, dflt, ckpt(0.199951171875), dflt, false,
     {{FK::KScaleInvalid, E, "k", "k = 0"}}},
    // -1e-9 rounds to -0.0 in f16: not < 0, so q is not "missing".
    {"F16NegativeTinyIsNotAbsent", scales(s(0.1), s(0.1), s(-1e-9)), E4M3,
     false, f16, ckpt(0.0999755859375), ckpt(0.0999755859375), dflt, dflt,
     false, {}},
    {"F16OverflowToInfinity", scales(s(1e5), s(1e5), s(0.2)), E4M3, false, f16,
     ckpt(kInf), ckpt(kInf), ckpt(0.199951171875), dflt, false, {}},
    // K/V are doubled as Python floats, Q in place in the model dtype.
    {"F16FnuzDoublingKVInDoubleQInF16",
     scales(s(40000.0), s(40000.0), s(40000.0), s(0.25)), Fp8, false,
     opts(true, ModelDtype::F16), ckpt(80000.0, true), ckpt(80000.0, true),
     ckpt(kInf, true), ckpt(0.5, true), false, {}},
    {"BF16NaNStaysNaN", scales(s(0.1), s(kNaN), s(kNaN)), E4M3, false, bf16,
     dup(0.10009765625), dup(0.10009765625), dflt, dflt, false, {}},

    // --- inf passes `> 0` (the pass diagnoses non-finite final values) ----
    {"InfKAccepted", scales(s(kInf), s(0.1), s(0.2), s(0.3)), Fp8, false,
     plain, ckpt(kInf), ckpt(0.1), ckpt(0.2), ckpt(0.3), false, {}},
    {"InfKDuplicated", scales(s(kInf), none, s(0.2), s(0.3)), E4M3, false,
     fnuz, dup(kInf, true), dup(kInf, true), ckpt(0.4, true), ckpt(0.6, true),
     false, {}},
    {"InfQAndProb", scales(s(0.1), s(0.1), s(kInf), s(kInf)), Fp8, false, plain,
     ckpt(0.1), ckpt(0.1), ckpt(kInf), ckpt(kInf), false, {}},
};
// clang-format on

class DecisionTable : public ::testing::TestWithParam<Case> {};

TEST_P(DecisionTable, Folds) {
  const Case &c = GetParam();
  Result result = fold(c);
  expectFold(result, c.k, c.v, c.q, c.prob, c.calculateKvScalesAfter,
             c.findings);
}

INSTANTIATE_TEST_SUITE_P(ScaleRules, DecisionTable,
                         ::testing::ValuesIn(decisionTable),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           return std::string(info.param.name);
                         });

//===----------------------------------------------------------------------===//
// The compressed-tensors rules (vLLM's CompressedTensorsKVCacheMethod)
//===----------------------------------------------------------------------===//

Options ct(bool fnuz = false, CtFnuz mode = CtFnuz::Double, bool strict = false,
           ModelDtype modelDtype = ModelDtype::None) {
  Options options = opts(fnuz, modelDtype, QFallback::SeedFinal, strict);
  options.method = ScaleMethod::CompressedTensors;
  options.ctFnuz = mode;
  return options;
}
const Options ctPlain = ct();
const Options ctFnuzDouble = ct(/*fnuz=*/true);
const Options ctFnuzVllm = ct(/*fnuz=*/true, CtFnuz::Vllm);
const Options ctStrict = ct(false, CtFnuz::Double, /*strict=*/true);
const Options ctQFromK = [] {
  Options options = ct();
  options.qFallback = QFallback::K;
  return options;
}();

const Expect ctMissingK{FK::CtScaleMissing, W, "k", "no k scale"};
const Expect ctMissingV{FK::CtScaleMissing, W, "v", "no v scale"};
const Expect ctMissingQ{FK::CtScaleMissing, W, "q", "no q scale"};
const Expect ctDoubled{FK::CtFnuz, W, "", "saturate at 240"};
const Expect ctProbIgnored{FK::CtProbIgnored, W, "prob", "prob = 0.3"};

// clang-format off
const Case compressedTensorsTable[] = {
    // All three scales: taken as they are, P = 1.0, no warnings.
    {"CtAllScales", scales(s(0.05), s(0.1), s(0.2)), Fp8, false, ctPlain,
     ckpt(0.05), ckpt(0.1), ckpt(0.2), dflt, false, {}},
    // No UNCALIBRATED-QP, FP8-UNIT-SCALE or Q-MISSING: vLLM's CT path warns
    // about none of them; a missing q is CT-SCALE-MISSING.
    {"CtUnitScalesNoBaseWarnings", scales(s(1.0), s(1.0), s(1.0)), Fp8, false,
     ctPlain, ckpt(1.0), ckpt(1.0), ckpt(1.0), dflt, false, {}},
    // Placeholders are 1.0: each missing scale is 1.0, and reported.
    {"CtMissingQ", scales(s(0.05), s(0.1)), Fp8, false, ctPlain, ckpt(0.05),
     ckpt(0.1), dflt, dflt, false, {ctMissingQ}},
    {"CtMissingAll", scales(none, none), E4M3, false, ctPlain, dflt, dflt, dflt,
     dflt, false, {ctMissingK, ctMissingV, ctMissingQ}},
    // No duplication of a single kv scale (the base path gives V = k).
    {"CtSingleKNotDuplicated", scales(s(0.05), none, s(0.2)), Fp8, false,
     ctPlain, ckpt(0.05), dflt, ckpt(0.2), dflt, false, {ctMissingV}},
    // Only v: no K-SCALE-INVALID, K = 1.0.
    {"CtOnlyV", scales(none, s(0.1), s(0.2)), Fp8, false, ctPlain, dflt,
     ckpt(0.1), ckpt(0.2), dflt, false, {ctMissingK}},
    // Values are copied as they are (no -1 sentinel): the pass's final check
    // rejects a non-positive one (SCALE-NOT-FINITE).
    {"CtZeroAndNegativeCopied", scales(s(0.0), s(-1.0), s(0.2)), Fp8, false,
     ctPlain, ckpt(0.0), ckpt(-1.0), ckpt(0.2), dflt, false, {}},
    // No prob scale: a checkpoint's is ignored, and reported.
    {"CtProbIgnored", scales(s(0.05), s(0.1), s(0.2), s(0.3)), Fp8, false,
     ctPlain, ckpt(0.05), ckpt(0.1), ckpt(0.2), dflt, false, {ctProbIgnored}},
    // calculate_kv_scales untouched, even with a checkpoint q.
    {"CtCalculateKvScalesUntouched", scales(s(0.05), s(0.1), s(0.2)), Fp8, true,
     ctPlain, runtime, runtime, ckpt(0.2), dflt, true, {}},
    {"CtCalculateKvScalesNoQ", scales(none, none), Fp8, true, ctPlain, runtime,
     runtime, dflt, dflt, true, {}},
    // auto cache: K = V = 1.0, q as given, a missing q not reported.
    {"CtAutoCache", scales(s(0.05), s(0.1), s(0.2)), Auto, false, ctPlain,
     notQuant, notQuant, ckpt(0.2), dflt, false, {}},
    {"CtAutoCacheNoQ", scales(none, none), Auto, false, ctPlain, notQuant,
     notQuant, dflt, dflt, false, {}},
    // FNUZ, default: doubled as in the base path (defaults never), warned.
    {"CtFnuzDoubled", scales(s(0.05), s(0.1), s(0.2)), Fp8, false,
     ctFnuzDouble, ckpt(0.1, true), ckpt(0.2, true), ckpt(0.4, true), dflt,
     false, {ctDoubled}},
    {"CtFnuzDoubledMissingQ", scales(s(0.05), s(0.1)), E4M3, false,
     ctFnuzDouble, ckpt(0.1, true), ckpt(0.2, true), dflt, dflt, false,
     {ctMissingQ, ctDoubled}},
    // int8: K/V never doubled; q still is.
    {"CtFnuzInt8", scales(s(0.05), s(0.1), s(0.2)), Int8, false, ctFnuzDouble,
     ckpt(0.05), ckpt(0.1), ckpt(0.4, true), dflt, false, {ctDoubled}},
    // Nothing to double: no CT-FNUZ.
    {"CtFnuzNothingDoubled", scales(none, none), Fp8, false, ctFnuzDouble, dflt,
     dflt, dflt, dflt, false, {ctMissingK, ctMissingV, ctMissingQ}},
    // ct-fnuz=vllm: exact vLLM parity, no factor, nothing said.
    {"CtFnuzVllmParity", scales(s(0.05), s(0.1), s(0.2)), Fp8, false,
     ctFnuzVllm, ckpt(0.05), ckpt(0.1), ckpt(0.2), dflt, false, {}},
    // Strict mode: a missing scale is an error.
    {"CtStrictMissing", scales(s(0.05), none, s(0.2)), Fp8, false, ctStrict,
     ckpt(0.05), dflt, ckpt(0.2), dflt, false,
     {{FK::CtScaleMissing, E, "v", "no v scale"}}},
    // q-fallback is a base-path option: Q stays 1.0.
    {"CtQFallbackIgnored", scales(s(0.05), s(0.1)), Fp8, false, ctQFromK,
     ckpt(0.05), ckpt(0.1), dflt, dflt, false, {ctMissingQ}},
    // strategy attn_head: the loaded values per head, q reduced to KV heads
    // by the group max; a per-tensor v beside a per-head k is every head's.
    {"CtPerHeadK", scales(heads({0.1, 0.2}), s(0.1), s(0.2)), Fp8, false,
     ctPlain, ph({0.1, 0.2}), ph({0.1, 0.1}), ckpt(0.2), dflt, false, {}},
    {"CtPerHeadQ", scales(s(0.1), s(0.1), heads({0.1, 0.2})), Fp8, false,
     ctPlain, ckpt(0.1), ckpt(0.1), ph({0.2}), dflt, false, {}, {1, 2}},
    {"CtAttnHead", scales(heads({0.1, 0.2}), heads({0.3, 0.4}),
     heads({0.1, 0.5, 0.2, 0.05})), Fp8, false, ctPlain, ph({0.1, 0.2}),
     ph({0.3, 0.4}), ph({0.5, 0.2}), dflt, false, {}, {2, 4}},
    {"CtAttnHeadMissingVDefault", scales(heads({0.1, 0.2}), none,
     heads({0.1, 0.5})), Fp8, false, ctPlain, ph({0.1, 0.2}),
     ph({1.0, 1.0}, ScaleRule::Default), ph({0.1, 0.5}), dflt, false,
     {ctMissingV}},
    {"CtAttnHeadFnuzDoubled", scales(heads({0.1, 0.2}), heads({0.3, 0.4}),
     heads({0.1, 0.5, 0.2, 0.05})), Fp8, false, ctFnuzDouble,
     ph({0.2, 0.4}, ScaleRule::Checkpoint, true),
     ph({0.6, 0.8}, ScaleRule::Checkpoint, true),
     ph({1.0, 0.4}, ScaleRule::Checkpoint, true), dflt, false, {ctDoubled},
     {2, 4}},
    {"CtAttnHeadFnuzVllm", scales(heads({0.1, 0.2}), heads({0.3, 0.4})), Fp8,
     false, ctFnuzVllm, ph({0.1, 0.2}), ph({0.3, 0.4}), dflt, dflt, false,
     {ctMissingQ}},
    {"CtAttnHeadCountMismatch", scales(heads({0.1, 0.2}), heads({0.3, 0.4}),
     s(0.2)), Fp8, false, ctPlain, dflt, dflt, ckpt(0.2), dflt, false,
     {{FK::HeadCountMismatch, E, "k", "k has 2 per-head scales but the layer "
                                      "has 8 KV heads"},
      {FK::HeadCountMismatch, E, "v", "v has 2 per-head scales but the layer "
                                      "has 8 KV heads"}},
     {8, std::nullopt}},
};
// clang-format on

class CompressedTensorsTable : public ::testing::TestWithParam<Case> {};

TEST_P(CompressedTensorsTable, Folds) {
  const Case &c = GetParam();
  Result result = fold(c);
  expectFold(result, c.k, c.v, c.q, c.prob, c.calculateKvScalesAfter,
             c.findings);
}

INSTANTIATE_TEST_SUITE_P(ScaleRules, CompressedTensorsTable,
                         ::testing::ValuesIn(compressedTensorsTable),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           return std::string(info.param.name);
                         });

TEST(ScaleRulesHelpers, CtFnuzRoundTrip) {
  for (CtFnuz mode : {CtFnuz::Double, CtFnuz::Vllm})
    EXPECT_EQ(parseCtFnuz(toString(mode)), mode);
  EXPECT_EQ(parseCtFnuz("x2"), std::nullopt);
}

//===----------------------------------------------------------------------===//
// Notes
//===----------------------------------------------------------------------===//

const Finding *findKind(const Result &result, FindingKind kind) {
  for (const Finding &finding : result.findings)
    if (finding.kind == kind)
      return &finding;
  return nullptr;
}

TEST(ScaleRulesNotes, Fp8UnitScaleNoteOnlyWhenDoubled) {
  Result fromDefaults = foldScales(scales(none, none), E4M3, false, fnuz);
  const Finding *f = findKind(fromDefaults, FK::Fp8UnitScale);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->note.empty()) << f->note;

  Result fromOnes = foldScales(scales(s(1.0), s(1.0)), E4M3, false, plain);
  f = findKind(fromOnes, FK::Fp8UnitScale);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->note.empty()) << f->note;

  Result fromHalf = foldScales(scales(s(0.5), none), E4M3, false, fnuz);
  f = findKind(fromHalf, FK::Fp8UnitScale);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->note.find("false alarm"), std::string::npos) << f->note;
}

TEST(ScaleRulesNotes, UncalibratedQPNotes) {
  Result doubled =
      foldScales(scales(s(0.1), s(0.1), s(0.5), s(0.3)), Fp8, false, fnuz);
  const Finding *f = findKind(doubled, FK::UncalibratedQP);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->note.find("false alarm"), std::string::npos) << f->note;

  Result quirk =
      foldScales(scales(s(0.1), s(0.1), none, s(0.3)), Fp8, false, plain);
  f = findKind(quirk, FK::UncalibratedQP);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->note.find("Q-MISSING"), std::string::npos) << f->note;

  Result plainOnes =
      foldScales(scales(s(0.1), s(0.1), s(1.0), s(0.3)), Fp8, false, plain);
  f = findKind(plainOnes, FK::UncalibratedQP);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->note.empty()) << f->note;
}

TEST(ScaleRulesNotes, QMissingNoteNamesTheOption) {
  Result seedFinal = foldScales(scales(s(0.1), s(0.1)), E4M3, false, plain);
  const Finding *f = findKind(seedFinal, FK::QMissing);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->note.find("q-fallback=k"), std::string::npos) << f->note;

  Result fromK = foldScales(scales(s(0.1), s(0.1)), E4M3, false, qFromK);
  f = findKind(fromK, FK::QMissing);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->message.find("overwrites"), std::string::npos) << f->message;
}

TEST(ScaleRulesNotes, RuntimeScalesFrozenExplainsTheFix) {
  Result r = foldScales(scales(none, none, s(0.3)), E4M3, true, plain);
  const Finding *f = findKind(r, FK::RuntimeScalesFrozen);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->message.find("never computed at run time"), std::string::npos);
  EXPECT_NE(f->note.find("calculate_kv_scales"), std::string::npos);
}

/// Strict mode changes only severities (and adds KV-MISSING): the values are
/// those of the default mode.
TEST(ScaleRulesStrict, SameValuesAsDefaultMode) {
  for (KVCacheDtype dtype : {Auto, Fp8, E4M3, E5M2, Int8}) {
    for (bool calculate : {false, true}) {
      for (const RawScales &raw :
           {scales(none, none), scales(s(0.1), none), scales(s(0.1), s(0.2)),
            scales(none, none, s(0.3), s(0.4))}) {
        Result lax = foldScales(raw, dtype, calculate, plain);
        Result strictResult = foldScales(raw, dtype, calculate, strict);
        SCOPED_TRACE(stringifyKVCacheDtype(dtype).str() +
                     (calculate ? " calc" : ""));
        EXPECT_EQ(lax.k.value, strictResult.k.value);
        EXPECT_EQ(lax.v.value, strictResult.v.value);
        EXPECT_EQ(lax.q.value, strictResult.q.value);
        EXPECT_EQ(lax.prob.value, strictResult.prob.value);
        EXPECT_EQ(lax.calculateKvScales, strictResult.calculateKvScales);
        EXPECT_FALSE(lax.failed());
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Acceptance examples of the scale rules (bf16 model, non-FNUZ unless said)
//===----------------------------------------------------------------------===//

// 1. fp8, k = v = 0.0123456789, no q/prob -> K = V = 0.0123456789
//    (0.0123291015625 with model-dtype rounding), Q = P = 1.0; Q-MISSING and
//    UNCALIBRATED-QP.
TEST(ScaleRulesAcceptance, AcceptanceExample1) {
  RawScales raw = scales(s(0.0123456789), s(0.0123456789));
  expectFold(foldScales(raw, Fp8, false, plain), ckpt(0.0123456789),
             ckpt(0.0123456789), dflt, dflt, false, {qMissing, uncalibrated11});
  expectFold(foldScales(raw, Fp8, false, bf16), ckpt(0.0123291015625),
             ckpt(0.0123291015625), dflt, dflt, false,
             {qMissing, uncalibrated11});
}

// 2. same on FNUZ -> K = V doubled; Q = 1.0 (the default is never doubled).
TEST(ScaleRulesAcceptance, AcceptanceExample2) {
  RawScales raw = scales(s(0.0123456789), s(0.0123456789));
  expectFold(foldScales(raw, Fp8, false, opts(true, ModelDtype::BF16)),
             ckpt(0.024658203125, true), ckpt(0.024658203125, true), dflt, dflt,
             false, {qMissing, uncalibrated11});
  expectFold(foldScales(raw, Fp8, false, fnuz), ckpt(0.0246913578, true),
             ckpt(0.0246913578, true), dflt, dflt, false,
             {qMissing, uncalibrated11});
}

// 3. fp8, a single legacy kv_scale = 0.05 -> K = V = 0.05 * F.
TEST(ScaleRulesAcceptance, AcceptanceExample3) {
  RawScales raw = scales(s(0.05), none);
  expectFold(foldScales(raw, Fp8, false, plain), dup(0.05), dup(0.05), dflt,
             dflt, false, {qMissing, uncalibrated11});
  expectFold(foldScales(raw, Fp8, false, fnuz), dup(0.1, true), dup(0.1, true),
             dflt, dflt, false, {qMissing, uncalibrated11});
  expectFold(foldScales(raw, Fp8, false, bf16), dup(0.050048828125),
             dup(0.050048828125), dflt, dflt, false,
             {qMissing, uncalibrated11});
  expectFold(foldScales(raw, Fp8, false, opts(true, ModelDtype::BF16)),
             dup(0.10009765625, true), dup(0.10009765625, true), dflt, dflt,
             false, {qMissing, uncalibrated11});
}

// 4. fp8, only v present, or k = 0 -> error, located at the layer (the pass
//    locates it; here: an error naming k).
TEST(ScaleRulesAcceptance, AcceptanceExample4) {
  for (const Options &options : {plain, bf16}) {
    Result onlyV = foldScales(scales(none, s(0.05)), Fp8, false, options);
    EXPECT_TRUE(onlyV.failed());
    expectFold(onlyV, dflt, dflt, dflt, dflt, false,
               {{FK::KScaleInvalid, E, "k", "only v present"},
                qMissing,
                uncalibrated11});

    Result kZero = foldScales(scales(s(0.0), s(0.05)), Fp8, false, options);
    EXPECT_TRUE(kZero.failed());
    expectFold(
        kZero, dflt, dflt, dflt, dflt, false,
        {{FK::KScaleInvalid, E, "k", "k = 0"}, qMissing, uncalibrated11});
  }
}

// 5. auto, q = 0.3 on FNUZ -> Q = 0.6, K = V = 1.0, no warnings.
TEST(ScaleRulesAcceptance, AcceptanceExample5) {
  RawScales raw = scales(none, none, s(0.3));
  expectFold(foldScales(raw, Auto, false, fnuz), notQuant, notQuant,
             ckpt(0.6, true), dflt, false, {});
  expectFold(foldScales(raw, Auto, false, opts(true, ModelDtype::BF16)),
             notQuant, notQuant, ckpt(0.6015625, true), dflt, false, {});
}

// 6. fp8_e4m3, k = v = 0.5 on FNUZ -> K = V = 1.0 and FP8-UNIT-SCALE fires
//    (a false alarm the seed has; said in a note).
TEST(ScaleRulesAcceptance, AcceptanceExample6) {
  for (const Options &options : {fnuz, opts(true, ModelDtype::BF16)}) {
    Result r = foldScales(scales(s(0.5), s(0.5)), E4M3, false, options);
    expectFold(r, ckpt(1.0, true), ckpt(1.0, true), dflt, dflt, false,
               {qMissing, {FK::Fp8UnitScale, W, "k", "for fp8_e4m3"}});
    const Finding *f = findKind(r, FK::Fp8UnitScale);
    ASSERT_NE(f, nullptr);
    EXPECT_NE(f->note.find("false alarm"), std::string::npos) << f->note;
    EXPECT_NE(f->note.find("FNUZ"), std::string::npos) << f->note;
  }
}

// 7. int8, no scales -> K = V = 1.0, INT8-NEEDS-CALIBRATION and
//    INT8-UNIT-SCALE.
TEST(ScaleRulesAcceptance, AcceptanceExample7) {
  for (const Options &options : {plain, bf16, fnuz}) {
    Result r = foldScales(scales(none, none), Int8, false, options);
    expectFold(r, dflt, dflt, dflt, dflt, false,
               {{FK::Int8NeedsCalibration, W, "k", "severe accuracy loss"},
                qMissing,
                {FK::Int8UnitScale, W, "k", "k=1.000000, v=1.000000"}});
    const Finding *f = findKind(r, FK::Int8NeedsCalibration);
    ASSERT_NE(f, nullptr);
    for (const char *fact :
         {"default scale 1.0", "(1) use a checkpoint with calibrated",
          "(2) set calculate_kv_scales", "(3) use an fp8 KV cache",
          "absmax(tensor) / 127"})
      EXPECT_NE(f->message.find(fact), std::string::npos) << fact;
  }
}

// 8. fp8, calculate_kv_scales, checkpoint q present -> K = V = 1.0 for good,
//    Q = q * F.
TEST(ScaleRulesAcceptance, AcceptanceExample8) {
  RawScales raw = scales(s(0.05), s(0.1), s(0.3), s(0.4));
  const Expect frozen{FK::RuntimeScalesFrozen, W, "q", "for good"};
  expectFold(foldScales(raw, Fp8, true, plain), runtime, runtime, ckpt(0.3),
             ckpt(0.4), false, {frozen});
  expectFold(foldScales(raw, Fp8, true, fnuz), runtime, runtime,
             ckpt(0.6, true), ckpt(0.8, true), false, {frozen});
  expectFold(foldScales(raw, Fp8, true, bf16), runtime, runtime,
             ckpt(0.30078125), ckpt(0.400390625), false, {frozen});
}

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

TEST(ScaleRulesHelpers, FindingKeys) {
  const std::pair<FindingKind, const char *> keys[] = {
      {FK::Int8NeedsCalibration, "INT8-NEEDS-CALIBRATION"},
      {FK::QMissing, "Q-MISSING"},
      {FK::Int8UnitScale, "INT8-UNIT-SCALE"},
      {FK::Fp8UnitScale, "FP8-UNIT-SCALE"},
      {FK::UncalibratedQP, "UNCALIBRATED-QP"},
      {FK::KScaleInvalid, "K-SCALE-INVALID"},
      {FK::PerHeadKV, "PER-HEAD-KV"},
      {FK::PerHeadQP, "PER-HEAD-QP"},
      {FK::RuntimeScalesFrozen, "RUNTIME-SCALES-FROZEN"},
      {FK::KVMissing, "KV-MISSING"},
      {FK::CtScaleMissing, "CT-SCALE-MISSING"},
      {FK::CtProbIgnored, "CT-PROB-IGNORED"},
      {FK::CtFnuz, "CT-FNUZ"},
      {FK::HeadCountMismatch, "HEAD-COUNT-MISMATCH"},
      {FK::PerHeadMixed, "PER-HEAD-MIXED"},
      {FK::TpHeadsIndivisible, "TP-HEADS-INDIVISIBLE"},
  };
  for (auto [kind, key] : keys)
    EXPECT_EQ(getFindingKey(kind), key);
}

TEST(ScaleRulesHelpers, ShardKvHeads) {
  using Heads = std::vector<unsigned>;
  // n = numKvHeads / tpSize heads per rank: [r*n, (r+1)*n).
  EXPECT_EQ(shardKvHeads(8, 2, 1), Heads({4, 5, 6, 7}));
  EXPECT_EQ(shardKvHeads(8, 8, 3), Heads({3}));
  EXPECT_EQ(shardKvHeads(8, 1, 0), Heads({0, 1, 2, 3, 4, 5, 6, 7}));
  // Fewer KV heads than ranks: head r / (tpSize / numKvHeads).
  EXPECT_EQ(shardKvHeads(2, 8, 3), Heads({0}));
  EXPECT_EQ(shardKvHeads(2, 8, 4), Heads({1}));
  EXPECT_EQ(shardKvHeads(1, 4, 3), Heads({0}));
  // Neither divides the other; a rank out of range.
  EXPECT_EQ(shardKvHeads(6, 4, 0), std::nullopt);
  EXPECT_EQ(shardKvHeads(3, 8, 0), std::nullopt);
  EXPECT_EQ(shardKvHeads(8, 2, 2), std::nullopt);
  EXPECT_EQ(shardKvHeads(0, 2, 0), std::nullopt);
}

TEST(ScaleRulesHelpers, ReduceToKvHeads) {
  // GQA groups of consecutive query heads: the max of each.
  EXPECT_EQ(reduceToKvHeads({0.1, 0.3, 0.2, 0.05}, 2),
            std::vector<double>({0.3, 0.2}));
  EXPECT_EQ(reduceToKvHeads({0.1, 0.3, 0.2, 0.05}, 4),
            std::vector<double>({0.1, 0.3, 0.2, 0.05}));
  EXPECT_EQ(reduceToKvHeads({0.1, 0.3, 0.2, 0.05}, 1),
            std::vector<double>({0.3}));
  // NaN propagates, as torch's amax.
  std::vector<double> withNaN = reduceToKvHeads({0.1, kNaN, 0.2, 0.05}, 2);
  ASSERT_EQ(withNaN.size(), 2u);
  EXPECT_TRUE(std::isnan(withNaN[0]));
  EXPECT_EQ(withNaN[1], 0.2);
  // Not a multiple: nothing.
  EXPECT_TRUE(reduceToKvHeads({0.1, 0.2, 0.3}, 2).empty());
  EXPECT_TRUE(reduceToKvHeads({0.1}, 0).empty());
}

TEST(ScaleRulesHelpers, CacheDtypeRoundTrip) {
  const std::pair<KVCacheDtype, const char *> names[] = {
      {Auto, "auto"},     {Fp8, "fp8"},   {E4M3, "fp8_e4m3"},
      {E5M2, "fp8_e5m2"}, {Int8, "int8"},
  };
  for (auto [dtype, name] : names) {
    EXPECT_EQ(stringifyKVCacheDtype(dtype), name);
    EXPECT_EQ(symbolizeKVCacheDtype(name), dtype);
    EXPECT_EQ(symbolizeKVCacheDtype(stringifyKVCacheDtype(dtype)), dtype);
  }
  for (const char *bad : {"", "FP8", "fp8_e4m3fn", "int4", "bf16", " auto"})
    EXPECT_EQ(symbolizeKVCacheDtype(bad), std::nullopt) << bad;
}

TEST(ScaleRulesHelpers, QuantizedAndFp8) {
  EXPECT_FALSE(isQuantized(Auto));
  EXPECT_FALSE(isFp8(Auto));
  for (KVCacheDtype dtype : {Fp8, E4M3, E5M2}) {
    EXPECT_TRUE(isQuantized(dtype));
    EXPECT_TRUE(isFp8(dtype));
  }
  EXPECT_TRUE(isQuantized(Int8));
  EXPECT_FALSE(isFp8(Int8));
}

TEST(ScaleRulesHelpers, RuleNames) {
  EXPECT_EQ(stringifyScaleRule(ScaleRule::Checkpoint), "checkpoint");
  EXPECT_EQ(stringifyScaleRule(ScaleRule::Duplicated), "duplicated");
  EXPECT_EQ(stringifyScaleRule(ScaleRule::Default), "default");
  EXPECT_EQ(stringifyScaleRule(ScaleRule::NotQuantized), "not_quantized");
  EXPECT_EQ(stringifyScaleRule(ScaleRule::Runtime), "runtime");
  EXPECT_EQ(stringifyScaleRule(ScaleRule::KFallback), "k_fallback");
  // Same order (and so the same values) as mlir::kvq::ScaleRule.
  EXPECT_EQ(static_cast<int>(ScaleRule::Checkpoint), 0);
  EXPECT_EQ(static_cast<int>(ScaleRule::KFallback), 5);
  EXPECT_EQ(toString(Severity::Warning), "warning");
  EXPECT_EQ(toString(Severity::Error), "error");
}

TEST(ScaleRulesHelpers, ModelDtypeRoundTrip) {
  for (ModelDtype dtype : {ModelDtype::None, ModelDtype::BF16, ModelDtype::F16})
    EXPECT_EQ(parseModelDtype(toString(dtype)), dtype);
  EXPECT_EQ(parseModelDtype("bfloat16"), ModelDtype::BF16);
  EXPECT_EQ(parseModelDtype("fp16"), ModelDtype::F16);
  EXPECT_EQ(parseModelDtype("float16"), ModelDtype::F16);
  EXPECT_EQ(parseModelDtype("f32"), std::nullopt);
}

TEST(ScaleRulesHelpers, RoundToModelDtype) {
  EXPECT_EQ(roundToModelDtype(0.0123456789, ModelDtype::None), 0.0123456789);
  EXPECT_EQ(roundToModelDtype(0.0123456789, ModelDtype::BF16), 0.0123291015625);
  EXPECT_EQ(roundToModelDtype(0.0123456789, ModelDtype::F16),
            0.0123443603515625);
  // Ties to even: 1 + 2^-8 lies halfway between bf16 1.0 and 1 + 2^-7.
  EXPECT_EQ(roundToModelDtype(1.0 + 0x1p-8, ModelDtype::BF16), 1.0);
  EXPECT_EQ(roundToModelDtype(1.0 + 3 * 0x1p-8, ModelDtype::BF16),
            1.0 + 0x1p-6);
  EXPECT_EQ(roundToModelDtype(-1.0, ModelDtype::BF16), -1.0);
  EXPECT_EQ(roundToModelDtype(1e5, ModelDtype::F16), kInf);
  EXPECT_EQ(roundToModelDtype(1e5, ModelDtype::BF16), 99840.0);
  EXPECT_EQ(roundToModelDtype(kInf, ModelDtype::BF16), kInf);
  EXPECT_TRUE(std::isnan(roundToModelDtype(kNaN, ModelDtype::F16)));
  double negZero = roundToModelDtype(-1e-9, ModelDtype::F16);
  EXPECT_EQ(negZero, 0.0);
  EXPECT_TRUE(std::signbit(negZero));
}

TEST(ScaleRulesHelpers, FormatScale) {
  EXPECT_EQ(formatScale(1.0), "1.0");
  EXPECT_EQ(formatScale(0.05), "0.05");
  EXPECT_EQ(formatScale(0.1), "0.1");
  EXPECT_EQ(formatScale(0.0123291015625), "0.0123291015625");
  EXPECT_EQ(formatScale(-1.0), "-1.0");
  EXPECT_EQ(formatScale(80000.0), "80000.0");
  EXPECT_EQ(formatScale(1e-8), "1e-08");
  EXPECT_EQ(formatScale(1.5e-5), "1.5e-05");
  EXPECT_EQ(formatScale(0.0001), "0.0001");
  EXPECT_EQ(formatScale(1e16), "1e+16");
  EXPECT_EQ(formatScale(0.0), "0.0");
  EXPECT_EQ(formatScale(-0.0), "-0.0");
  EXPECT_EQ(formatScale(0.30000000000000004), "0.30000000000000004");
  EXPECT_EQ(formatScale(kInf), "inf");
  EXPECT_EQ(formatScale(-kInf), "-inf");
  EXPECT_EQ(formatScale(kNaN), "nan");
}

TEST(ScaleRulesHelpers, ResultFailed) {
  Result r;
  EXPECT_FALSE(r.failed());
  r.findings.push_back(
      {Severity::Warning, FK::QMissing, "w", ScaleKind::Q, ""});
  EXPECT_FALSE(r.failed());
  r.findings.push_back(
      {Severity::Error, FK::KScaleInvalid, "e", ScaleKind::K, ""});
  EXPECT_TRUE(r.failed());
}

} // namespace
