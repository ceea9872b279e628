//===- ScaleRules.cpp - KV-cache scale folding rules ----------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Numerics follow the seed's Python/torch semantics:
// - comparisons are IEEE: NaN is neither > 0 nor < 0, so a NaN scale is not
//   "absent" (the sentinel test is `< 0.0`) and not usable (`> 0.0`); -0.0 is
//   not < 0 either; inf > 0 passes.
// - K and V leave torch through `.tolist()` before the FNUZ x2, so they are
//   doubled in double precision. Q and P are doubled in place on the
//   model-dtype parameter (`q_scale *= 2`), so their product is rounded
//   through the model dtype again (x2 is exact there unless it overflows,
//   e.g. 40000 in f16 becomes inf).
//
//===----------------------------------------------------------------------===//

#include "kvq/ScaleRules/ScaleRules.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/ErrorHandling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <tuple>
#include <utility>

using namespace mlir::kvq;
using namespace mlir::kvq::scales;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

llvm::StringRef mlir::kvq::scales::getFindingKey(FindingKind kind) {
  switch (kind) {
  case FindingKind::Int8NeedsCalibration:
    return "INT8-NEEDS-CALIBRATION";
  case FindingKind::QMissing:
    return "Q-MISSING";
  case FindingKind::Int8UnitScale:
    return "INT8-UNIT-SCALE";
  case FindingKind::Fp8UnitScale:
    return "FP8-UNIT-SCALE";
  case FindingKind::UncalibratedQP:
    return "UNCALIBRATED-QP";
  case FindingKind::KScaleInvalid:
    return "K-SCALE-INVALID";
  case FindingKind::PerHeadKV:
    return "PER-HEAD-KV";
  case FindingKind::PerHeadQP:
    return "PER-HEAD-QP";
  case FindingKind::RuntimeScalesFrozen:
    return "RUNTIME-SCALES-FROZEN";
  case FindingKind::KVMissing:
    return "KV-MISSING";
  case FindingKind::CtScaleMissing:
    return "CT-SCALE-MISSING";
  case FindingKind::CtProbIgnored:
    return "CT-PROB-IGNORED";
  case FindingKind::CtFnuz:
    return "CT-FNUZ";
  case FindingKind::HeadCountMismatch:
    return "HEAD-COUNT-MISMATCH";
  case FindingKind::PerHeadMixed:
    return "PER-HEAD-MIXED";
  case FindingKind::TpHeadsIndivisible:
    return "TP-HEADS-INDIVISIBLE";
  }
  llvm_unreachable("unknown FindingKind");
}

RawScale &RawScales::operator[](ScaleKind kind) {
  return selectScale(kind, k, v, q, prob);
}

FinalScale &Result::operator[](ScaleKind kind) {
  return selectScale(kind, k, v, q, prob);
}

const FinalScale &Result::operator[](ScaleKind kind) const {
  return selectScale(kind, k, v, q, prob);
}

llvm::StringRef mlir::kvq::scales::toString(CtFnuz mode) {
  switch (mode) {
  case CtFnuz::Double:
    return "double";
  case CtFnuz::Vllm:
    return "vllm";
  }
  llvm_unreachable("unknown CtFnuz");
}

std::optional<CtFnuz> mlir::kvq::scales::parseCtFnuz(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<CtFnuz>>(name)
      .Case("double", CtFnuz::Double)
      .Case("vllm", CtFnuz::Vllm)
      .Default(std::nullopt);
}

llvm::StringRef mlir::kvq::scales::toString(Severity severity) {
  switch (severity) {
  case Severity::Warning:
    return "warning";
  case Severity::Error:
    return "error";
  }
  llvm_unreachable("unknown Severity");
}

llvm::StringRef mlir::kvq::scales::toString(ModelDtype dtype) {
  switch (dtype) {
  case ModelDtype::None:
    return "none";
  case ModelDtype::BF16:
    return "bf16";
  case ModelDtype::F16:
    return "f16";
  }
  llvm_unreachable("unknown ModelDtype");
}

std::optional<ModelDtype>
mlir::kvq::scales::parseModelDtype(llvm::StringRef name) {
  return llvm::StringSwitch<std::optional<ModelDtype>>(name)
      .Case("none", ModelDtype::None)
      .Cases({"bf16", "bfloat16"}, ModelDtype::BF16)
      .Cases({"f16", "fp16", "float16"}, ModelDtype::F16)
      .Default(std::nullopt);
}

double mlir::kvq::scales::roundToModelDtype(double value, ModelDtype dtype) {
  const llvm::fltSemantics *semantics = nullptr;
  switch (dtype) {
  case ModelDtype::None:
    return value;
  case ModelDtype::BF16:
    semantics = &llvm::APFloat::BFloat();
    break;
  case ModelDtype::F16:
    semantics = &llvm::APFloat::IEEEhalf();
    break;
  }
  llvm::APFloat rounded(value);
  bool losesInfo = false;
  rounded.convert(*semantics, llvm::APFloat::rmNearestTiesToEven, &losesInfo);
  return rounded.convertToDouble();
}

std::string mlir::kvq::scales::formatScale(double value) {
  if (std::isnan(value))
    return "nan";
  if (std::isinf(value))
    return value < 0 ? "-inf" : "inf";
  // Python's repr: the fewest significant digits that read back to the same
  // double (17 always do), in fixed notation for decimal exponents -4..15 and
  // in scientific notation ("1e-08") otherwise.
  char buffer[400];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buffer, sizeof(buffer), "%.*e", digits - 1, value);
    if (std::strtod(buffer, nullptr) == value)
      break;
  }
  std::snprintf(buffer, sizeof(buffer), "%.*e", digits - 1, value);
  const int exponent = std::atoi(std::strchr(buffer, 'e') + 1);
  if (exponent < -4 || exponent >= 16)
    return buffer;
  std::snprintf(buffer, sizeof(buffer), "%.*f",
                std::max(0, digits - 1 - exponent), value);
  std::string text(buffer);
  if (text.find('.') == std::string::npos)
    text += ".0";
  return text;
}

std::optional<std::vector<unsigned>>
mlir::kvq::scales::shardKvHeads(unsigned numKvHeads, unsigned tpSize,
                                unsigned tpRank) {
  if (numKvHeads == 0 || tpSize == 0 || tpRank >= tpSize)
    return std::nullopt;
  std::vector<unsigned> heads;
  if (numKvHeads >= tpSize) {
    if (numKvHeads % tpSize)
      return std::nullopt;
    const unsigned perRank = numKvHeads / tpSize;
    for (unsigned head = tpRank * perRank; head < (tpRank + 1) * perRank;
         ++head)
      heads.push_back(head);
  } else {
    if (tpSize % numKvHeads)
      return std::nullopt;
    heads.push_back(tpRank / (tpSize / numKvHeads));
  }
  return heads;
}

std::vector<double>
mlir::kvq::scales::reduceToKvHeads(const std::vector<double> &values,
                                   unsigned numKvHeads) {
  std::vector<double> reduced;
  if (numKvHeads == 0 || values.size() % numKvHeads)
    return reduced;
  const size_t group = values.size() / numKvHeads;
  for (unsigned head = 0; head < numKvHeads; ++head) {
    double max = values[head * group];
    for (size_t i = head * group; i < (head + 1) * group; ++i)
      max = std::isnan(max) || std::isnan(values[i])
                ? std::numeric_limits<double>::quiet_NaN()
                : std::max(max, values[i]);
    reduced.push_back(max);
  }
  return reduced;
}

bool Result::failed() const {
  for (const Finding &finding : findings)
    if (finding.severity == Severity::Error)
      return true;
  return false;
}

//===----------------------------------------------------------------------===//
// The rules
//===----------------------------------------------------------------------===//

namespace {

/// One raw scale after model-dtype rounding, seen the way the seed sees it.
struct Scale {
  enum class Kind { Missing, PerTensor, NotPerTensor };
  Kind kind = Kind::Missing;
  double value = -1.0;       // for PerTensor
  size_t numElements = 0;    // for NotPerTensor
  std::vector<double> heads; // for NotPerTensor, rounded

  Scale(const RawScale &raw, ModelDtype modelDtype) {
    if (!raw)
      return;
    if (raw->size() != 1) {
      kind = Kind::NotPerTensor;
      numElements = raw->size();
      for (double head : *raw)
        heads.push_back(roundToModelDtype(head, modelDtype));
      return;
    }
    kind = Kind::PerTensor;
    value = roundToModelDtype(raw->front(), modelDtype);
  }

  bool isPerHead() const { return kind == Kind::NotPerTensor; }
  /// Per-head with at least one head (zero elements cannot be folded).
  bool hasHeads() const { return isPerHead() && numElements > 0; }
  /// The value head `head` sees: its own, the per-tensor value every head
  /// shares, or the sentinel -1.0 when absent.
  double at(size_t head) const { return isPerHead() ? heads[head] : value; }
  /// The seed's `scale < 0.0` on its -1.0 sentinel.
  bool isAbsent() const {
    return kind == Kind::Missing || (kind == Kind::PerTensor && value < 0.0);
  }
  /// The seed's `scale > 0.0` (inf passes, NaN does not).
  bool isPositive() const { return kind == Kind::PerTensor && value > 0.0; }

  /// "absent", "-1.0 (absent)", "0.05" or "8 elements".
  std::string describe() const {
    switch (kind) {
    case Kind::Missing:
      return "absent";
    case Kind::NotPerTensor:
      return std::to_string(numElements) + " elements";
    case Kind::PerTensor:
      return value < 0.0 ? formatScale(value) + " (absent)"
                         : formatScale(value);
    }
    llvm_unreachable("unknown Scale::Kind");
  }
};

std::string formatFixed6(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.6f", value);
  return buffer;
}

class Folder {
public:
  Folder(const RawScales &raw, KVCacheDtype dtype, bool calculateKvScales,
         const Options &options, const HeadCounts &counts)
      : q(raw.q, options.modelDtype), k(raw.k, options.modelDtype),
        v(raw.v, options.modelDtype), prob(raw.prob, options.modelDtype),
        dtype(dtype), options(options), counts(counts) {
    result.calculateKvScales = calculateKvScales;
  }

  Result run() {
    if (options.tpSize > 1 && !shard())
      return std::move(result);
    if (options.method == ScaleMethod::CompressedTensors) {
      foldCompressedTensors();
      return std::move(result);
    }
    if (!isQuantized(dtype)) {
      // The cache holds the model dtype: K/V are 1.0 whatever the checkpoint
      // says.
      result.k = result.v = {1.0, ScaleRule::NotQuantized, false};
    } else if (result.calculateKvScales) {
      // Computed at run time; 1.0 until then.
      result.k = result.v = {1.0, ScaleRule::Runtime, false};
    } else {
      foldKV();
    }
    foldQP();
    return std::move(result);
  }

private:
  void add(Severity severity, FindingKind kind, std::optional<ScaleKind> field,
           std::string message, std::string note = {}) {
    result.findings.push_back(
        {severity, kind, std::move(message), field, std::move(note)});
  }

  std::string dtypeName() const {
    return "'" + stringifyKVCacheDtype(dtype).str() + "'";
  }

  /// The FNUZ factor of K and V: fp8 caches only, never int8.
  double kvFactor() const { return options.fnuz && isFp8(dtype) ? 2.0 : 1.0; }

  /// The KV block of the seed; only for a quantized cache with
  /// calculate_kv_scales off.
  void foldKV() {
    const double factor = kvFactor();
    const bool doubled = factor == 2.0;
    if (k.isPerHead() || v.isPerHead()) {
      if (!foldKVHeads(factor, doubled))
        kvValid = false;
    } else if (k.isPositive() && v.isPositive()) {
      result.k = {k.value * factor, ScaleRule::Checkpoint, doubled};
      result.v = {v.value * factor, ScaleRule::Checkpoint, doubled};
    } else if (k.isAbsent() && v.isAbsent()) {
      // No scales at all: 1.0, never doubled.
      result.k = result.v = {1.0, ScaleRule::Default, false};
      if (dtype == KVCacheDtype::Int8) {
        add(options.strict ? Severity::Error : Severity::Warning,
            FindingKind::Int8NeedsCalibration, ScaleKind::K,
            "int8 KV cache requires calibrated scaling factors but the "
            "checkpoint has no k/v scales (k = " +
                k.describe() + ", v = " + v.describe() +
                "); using the default scale 1.0 will likely cause severe "
                "accuracy loss; either (1) use a checkpoint with calibrated "
                "k/v scales, (2) set calculate_kv_scales for on-the-fly "
                "calibration, or (3) use an fp8 KV cache instead; expected: "
                "scale = absmax(tensor) / 127 for int8");
      } else if (options.strict) {
        add(Severity::Error, FindingKind::KVMissing, ScaleKind::K,
            "the " + dtypeName() +
                " KV cache is quantized but the checkpoint has no k/v scales "
                "(k = " +
                k.describe() + ", v = " + v.describe() +
                "); strict mode rejects the default K = V = 1.0");
      }
    } else if (k.isPositive()) {
      // A single scale (e.g. a legacy `kv_scale` loaded as k) is duplicated:
      // max(k, v) where v is not > 0 is k.
      result.k = result.v = {k.value * factor, ScaleRule::Duplicated, doubled};
    } else {
      std::string reason;
      if (k.isAbsent())
        reason = "only v present";
      else if (k.value == 0.0)
        reason = "k = 0";
      else
        reason = "k is NaN";
      add(Severity::Error, FindingKind::KScaleInvalid, ScaleKind::K,
          "invalid k scale for the " + dtypeName() + " KV cache (" + reason +
              "): k = " + k.describe() + ", v = " + v.describe() +
              "; k must be > 0 unless k and v are both absent (vLLM dies on "
              "`assert k_scale > 0`)");
      kvValid = false;
    }

    if (q.isAbsent())
      addQMissing();
    if (!kvValid)
      return;

    const double kFinal = result.k.value, vFinal = result.v.value;
    if (dtype == KVCacheDtype::Int8 && (kFinal == 1.0 || vFinal == 1.0)) {
      add(Severity::Warning, FindingKind::Int8UnitScale,
          kFinal == 1.0 ? ScaleKind::K : ScaleKind::V,
          "int8 KV cache using scale k=" + formatFixed6(kFinal) +
              ", v=" + formatFixed6(vFinal) +
              "; scale 1.0 is likely incorrect for int8 and will cause "
              "accuracy issues; expected: scale = absmax(tensor) / 127 for "
              "int8; this will result in value overflow and severe precision "
              "loss");
    }
    if (kFinal == 1.0 && vFinal == 1.0 &&
        (dtype == KVCacheDtype::Fp8 || dtype == KVCacheDtype::Fp8E4M3)) {
      std::string note;
      if (result.k.doubled && result.v.doubled) {
        note = "the checkpoint scales (k = " + k.describe() +
               ", v = " + v.describe() +
               ") were doubled to 1.0 for the FNUZ fp8 format, which is the "
               "correct scale: a false alarm vLLM has too, as it tests the "
               "folded value";
      }
      add(Severity::Warning, FindingKind::Fp8UnitScale, ScaleKind::K,
          "using KV cache scaling factor 1.0 for fp8_e4m3 (K = V = 1.0 for "
          "the " +
              dtypeName() + " KV cache from k = " + k.describe() +
              ", v = " + v.describe() +
              "); if this is unintended, verify that the k/v scaling factors "
              "are properly set in the checkpoint",
          std::move(note));
    }
  }

  void addQMissing() {
    qAbsentInKV = true;
    std::string message = "the checkpoint does not provide a q scaling "
                          "factor (q = " +
                          q.describe() + "); ";
    std::string note;
    if (options.qFallback == QFallback::K && kvValid) {
      message += "Q = K = " + formatScale(result.k.value) +
                 " is applied, as vLLM's \"Setting it to k_scale\" "
                 "promises";
    } else if (options.qFallback == QFallback::K) {
      message += "Q = K cannot be applied because K is invalid, so Q = 1.0";
    } else {
      message += "vLLM logs \"Setting it to k_scale\" but its Q/P block "
                 "then overwrites Q with 1.0: the final Q is 1.0, not K (" +
                 (kvValid ? "K = " + formatScale(result.k.value)
                          : std::string("K is invalid")) +
                 ")";
      note = "vLLM reproduces this quirk (issues #51534, #38975); the "
             "q-fallback=k option applies Q = K instead";
    }
    message += "; this only matters for fp8 attention backends (flash-attn "
               "or flashinfer)";
    add(options.strict ? Severity::Error : Severity::Warning,
        FindingKind::QMissing, ScaleKind::Q, std::move(message),
        std::move(note));
  }

  /// The Q/P block of the seed; always runs.
  void foldQP() {
    const double factor = options.fnuz ? 2.0 : 1.0;
    const bool doubled = options.fnuz;
    bool qpValid = true;

    if (q.isPerHead()) {
      qpValid = foldQPerHead(factor, doubled);
    } else if (q.isPositive()) {
      // Doubled in place on the model-dtype parameter.
      result.q = {roundToModelDtype(q.value * factor, options.modelDtype),
                  ScaleRule::Checkpoint, doubled};
      if (result.calculateKvScales && isQuantized(dtype)) {
        add(Severity::Warning, FindingKind::RuntimeScalesFrozen, ScaleKind::Q,
            "the checkpoint q scale (q = " + q.describe() +
                ") switches calculate_kv_scales off after the KV block was "
                "skipped for it, so K = V = 1.0 for good and are never "
                "computed at run time for the " +
                dtypeName() + " KV cache",
            "drop calculate_kv_scales to use the checkpoint's k/v scales, or "
            "drop the q scale to compute all scales at run time");
      }
      result.calculateKvScales = false;
    } else if (qAbsentInKV && kvValid && options.qFallback == QFallback::K) {
      result.q = {result.k.value, ScaleRule::KFallback, result.k.doubled,
                  result.k.heads};
    } else {
      result.q = {1.0, ScaleRule::Default, false};
    }

    if (prob.isPerHead()) {
      addPerHeadQP(prob, ScaleKind::Prob);
      qpValid = false;
    } else if (prob.isPositive()) {
      result.prob = {roundToModelDtype(prob.value * factor, options.modelDtype),
                     ScaleRule::Checkpoint, doubled};
    } else {
      result.prob = {1.0, ScaleRule::Default, false};
    }

    if (!qpValid || dtype != KVCacheDtype::Fp8)
      return;
    const double qFinal = result.q.value, pFinal = result.prob.value;
    if (qFinal != 1.0 && pFinal != 1.0)
      return;
    std::string note;
    auto addNote = [&](std::string text) {
      if (!note.empty())
        note += "; ";
      note += std::move(text);
    };
    if (qFinal == 1.0 && qAbsentInKV &&
        options.qFallback == QFallback::SeedFinal)
      addNote("Q is 1.0 because vLLM's fallback to k_scale is overwritten "
              "(see Q-MISSING)");
    for (auto [kind, raw] :
         {std::pair<ScaleKind, const Scale *>{ScaleKind::Q, &q},
          {ScaleKind::Prob, &prob}}) {
      const FinalScale &scale = result[kind];
      if (scale.value == 1.0 && scale.doubled &&
          scale.rule == ScaleRule::Checkpoint)
        addNote("the checkpoint " + stringifyScaleKind(kind).str() + " scale " +
                raw->describe() +
                " was doubled to 1.0 for the FNUZ fp8 format, which is the "
                "correct scale: a false alarm vLLM has too");
    }
    add(Severity::Warning, FindingKind::UncalibratedQP,
        qFinal == 1.0 ? ScaleKind::Q : ScaleKind::Prob,
        "using uncalibrated q_scale " + formatScale(qFinal) +
            " and/or prob_scale " + formatScale(pFinal) +
            " with fp8 attention; this may cause accuracy issues; make sure "
            "q/prob scaling factors are available in the fp8 checkpoint",
        std::move(note));
  }

  /// vLLM's CompressedTensorsKVCacheMethod: placeholders are 1.0, so each
  /// scale is its checkpoint value or 1.0; no duplication, no prob scale,
  /// calculate_kv_scales untouched. vLLM applies no FNUZ factor; kvq does
  /// (CtFnuz::Double, with CT-FNUZ) unless asked for parity.
  void foldCompressedTensors() {
    const bool quantized = isQuantized(dtype);
    const bool applyFnuz = options.fnuz && options.ctFnuz == CtFnuz::Double;
    const bool kvFromCheckpoint = quantized && !result.calculateKvScales;
    bool anyDoubled = false;
    auto foldOne = [&](const Scale &scale, ScaleKind kind, bool doubles,
                       bool reportMissing) {
      FinalScale &final = result[kind];
      std::string field = stringifyScaleKind(kind).str();
      if (scale.isPerHead()) {
        // strategy attn_head: the loaded values, q reduced to KV heads.
        std::optional<std::vector<double>> heads =
            kind == ScaleKind::Q ? reduceQ() : kvHeadsOf(scale, kind);
        if (!heads)
          return;
        for (double &head : *heads) {
          if (doubles && applyFnuz)
            head = kind == ScaleKind::Q
                       ? roundToModelDtype(head * 2.0, options.modelDtype)
                       : head * 2.0;
        }
        anyDoubled |= doubles && applyFnuz;
        final = perHead(std::move(*heads), ScaleRule::Checkpoint,
                        doubles && applyFnuz);
        return;
      }
      if (scale.kind == Scale::Kind::Missing) {
        final = {1.0, ScaleRule::Default, false};
        if (reportMissing)
          add(options.strict ? Severity::Error : Severity::Warning,
              FindingKind::CtScaleMissing, kind,
              "the compressed-tensors checkpoint has no " + field +
                  " scale for the " + dtypeName() + " KV cache; " + field +
                  " = 1.0, vLLM's placeholder (vLLM says nothing)");
        return;
      }
      // vLLM copies the loaded value as it is; a non-positive or NaN one is
      // caught by the final finiteness check of the pass.
      double value = scale.value;
      if (doubles && applyFnuz) {
        value = kind == ScaleKind::Q
                    ? roundToModelDtype(value * 2.0, options.modelDtype)
                    : value * 2.0;
        anyDoubled = true;
      }
      final = {value, ScaleRule::Checkpoint, doubles && applyFnuz};
    };
    if (!quantized)
      result.k = result.v = {1.0, ScaleRule::NotQuantized, false};
    else if (result.calculateKvScales)
      result.k = result.v = {1.0, ScaleRule::Runtime, false};
    else {
      foldOne(k, ScaleKind::K, isFp8(dtype), /*reportMissing=*/true);
      foldOne(v, ScaleKind::V, isFp8(dtype), /*reportMissing=*/true);
      // Per-head k beside a per-tensor v (or the reverse): every head gets
      // the per-tensor value, so both have one value per KV head.
      broadcastKV();
    }
    foldOne(q, ScaleKind::Q, /*doubles=*/true,
            /*reportMissing=*/kvFromCheckpoint);
    result.prob = {1.0, ScaleRule::Default, false};
    if (prob.kind != Scale::Kind::Missing)
      add(Severity::Warning, FindingKind::CtProbIgnored, ScaleKind::Prob,
          "compressed-tensors has no prob scale: the checkpoint's (prob = " +
              prob.describe() + ") is not used, P = 1.0");
    if (anyDoubled)
      add(Severity::Warning, FindingKind::CtFnuz, std::nullopt,
          "compressed-tensors scales doubled for the FNUZ fp8 format, as in "
          "vLLM's base path; vLLM's compressed-tensors path does not double "
          "them, so values up to 448 of scales calibrated for OCP fp8 "
          "(amax / 448) saturate at 240 there",
          "ct-fnuz=vllm gives exact vLLM parity (no doubling)");
  }

  /// Tensor parallelism: replaces the per-head k, v (and q, reduced to KV
  /// heads first, over the whole model) by the heads of rank tpRank.
  /// Returns false, with the other results left at their defaults, when
  /// the heads cannot be sharded.
  bool shard() {
    if (!k.hasHeads() && !v.hasHeads() && !q.hasHeads())
      return true;
    const std::string rank = "tp-rank " + std::to_string(options.tpRank) +
                             " of tp-size " + std::to_string(options.tpSize);
    // The model's KV heads: those of the per-head k and v.
    std::optional<size_t> total;
    for (auto [scale, kind] :
         {std::pair<const Scale *, ScaleKind>{&k, ScaleKind::K},
          {&v, ScaleKind::V}}) {
      if (!scale->hasHeads())
        continue;
      if (total && *total != scale->numElements) {
        addHeadCountMismatch(
            kind, "v has " + std::to_string(scale->numElements) +
                      " per-head scales but k has " + std::to_string(*total) +
                      "; both must have one per KV head");
        return false;
      }
      total = scale->numElements;
    }
    if (!total) {
      addHeadCountMismatch(
          ScaleKind::Q,
          "q has " + std::to_string(q.numElements) +
              " per-head scales, but the model's number of KV heads, needed "
              "to shard them for " +
              rank + ", is unknown (k and v are not per-head)");
      return false;
    }
    std::optional<std::vector<unsigned>> mine =
        shardKvHeads(*total, options.tpSize, options.tpRank);
    if (!mine) {
      add(Severity::Error, FindingKind::TpHeadsIndivisible,
          k.hasHeads() ? ScaleKind::K : ScaleKind::V,
          "the " + std::to_string(*total) +
              " KV heads of the per-head k/v scales cannot be sharded over "
              "tp-size " +
              std::to_string(options.tpSize) +
              ": one must divide the other (vLLM's tensor-parallel rule)");
      return false;
    }
    if (q.hasHeads()) {
      // Reduced over the whole model, so that every rank holding a
      // replicated KV head uses the same q scale for it.
      if (counts.numHeads &&
          q.numElements != *counts.numHeads * size_t(options.tpSize)) {
        addHeadCountMismatch(ScaleKind::Q,
                             "q has " + std::to_string(q.numElements) +
                                 " per-head scales but the model has " +
                                 std::to_string(*counts.numHeads) +
                                 " attention heads on each of " +
                                 std::to_string(options.tpSize) + " ranks");
        return false;
      }
      if (q.numElements % *total) {
        addHeadCountMismatch(ScaleKind::Q,
                             "q has " + std::to_string(q.numElements) +
                                 " per-head scales, not a multiple of the " +
                                 std::to_string(*total) +
                                 " KV heads they are reduced to");
        return false;
      }
      q.heads = reduceToKvHeads(q.heads, *total);
      q.numElements = q.heads.size();
      qReduced = true;
    }
    for (Scale *scale : {&k, &v, &q}) {
      if (!scale->hasHeads())
        continue;
      std::vector<double> heads;
      for (unsigned head : *mine)
        heads.push_back(scale->heads[head]);
      scale->heads = std::move(heads);
      scale->numElements = scale->heads.size();
    }
    shardedFrom = *total;
    return true;
  }

  /// " (the heads of tp-rank r of tp-size t, from N in the checkpoint)"
  /// when the scales were sharded, else "".
  std::string shardNote() const {
    if (!shardedFrom)
      return "";
    return " (the heads of tp-rank " + std::to_string(options.tpRank) +
           " of tp-size " + std::to_string(options.tpSize) + ", from " +
           std::to_string(*shardedFrom) + " in the checkpoint)";
  }

  /// A per-head final scale: the heads and their max.
  static FinalScale perHead(std::vector<double> heads, ScaleRule rule,
                            bool doubled) {
    double max = heads.front();
    for (double head : heads)
      max = std::isnan(max) || std::isnan(head)
                ? std::numeric_limits<double>::quiet_NaN()
                : std::max(max, head);
    return {max, rule, doubled, std::move(heads)};
  }

  void addHeadCountMismatch(ScaleKind kind, std::string message) {
    add(Severity::Error, FindingKind::HeadCountMismatch, kind,
        std::move(message));
  }

  /// The number of KV heads: the layer's where known, else that of the
  /// per-head k and v; reports a mismatch and returns nullopt.
  std::optional<unsigned> numKvHeads(bool reportUnknown, ScaleKind forKind) {
    if (counts.numKvHeads)
      return *counts.numKvHeads;
    if (k.hasHeads() && v.hasHeads() && k.numElements != v.numElements) {
      if (!kvCountReported)
        addHeadCountMismatch(ScaleKind::V,
                             "v has " + std::to_string(v.numElements) +
                                 " per-head scales but k has " +
                                 std::to_string(k.numElements) +
                                 "; both must have one per KV head");
      kvCountReported = true;
      return std::nullopt;
    }
    if (k.hasHeads())
      return k.numElements;
    if (v.hasHeads())
      return v.numElements;
    if (reportUnknown)
      addHeadCountMismatch(
          forKind, stringifyScaleKind(forKind).str() + " has " +
                       std::to_string(q.numElements) +
                       " per-head scales, but the layer's number of KV heads "
                       "is unknown (no cache or attention op states it, and "
                       "k and v are not per-head), so they cannot be reduced "
                       "to KV heads");
    return std::nullopt;
  }

  /// The heads of a per-head k or v, checked against the KV head count.
  std::optional<std::vector<double>> kvHeadsOf(const Scale &scale,
                                               ScaleKind kind) {
    if (!scale.hasHeads()) {
      addEmpty(scale, kind);
      return std::nullopt;
    }
    std::optional<unsigned> n = numKvHeads(false, kind);
    if (!n)
      return std::nullopt;
    if (scale.numElements != *n) {
      addHeadCountMismatch(kind, stringifyScaleKind(kind).str() + " has " +
                                     std::to_string(scale.numElements) +
                                     " per-head scales" + shardNote() +
                                     " but the layer has " +
                                     std::to_string(*n) + " KV heads");
      return std::nullopt;
    }
    return scale.heads;
  }

  /// q's per-attention-head scales reduced to KV heads by the group max.
  std::optional<std::vector<double>> reduceQ() {
    if (!q.hasHeads()) {
      addEmpty(q, ScaleKind::Q);
      return std::nullopt;
    }
    if (qReduced) {
      // Sharded: already one per KV head of this rank.
      std::optional<unsigned> n = numKvHeads(true, ScaleKind::Q);
      if (!n)
        return std::nullopt;
      if (q.numElements != *n) {
        addHeadCountMismatch(ScaleKind::Q,
                             "q has " + std::to_string(q.numElements) +
                                 " per-head scales" + shardNote() +
                                 " after the reduction to KV heads, but the "
                                 "layer has " +
                                 std::to_string(*n) + " KV heads");
        return std::nullopt;
      }
      return q.heads;
    }
    if (counts.numHeads && q.numElements != *counts.numHeads) {
      addHeadCountMismatch(ScaleKind::Q,
                           "q has " + std::to_string(q.numElements) +
                               " per-head scales but the layer has " +
                               std::to_string(*counts.numHeads) +
                               " attention heads");
      return std::nullopt;
    }
    std::optional<unsigned> n = numKvHeads(true, ScaleKind::Q);
    if (!n)
      return std::nullopt;
    if (q.numElements % *n) {
      addHeadCountMismatch(ScaleKind::Q,
                           "q has " + std::to_string(q.numElements) +
                               " per-head scales, not a multiple of the " +
                               std::to_string(*n) +
                               " KV heads they are reduced to");
      return std::nullopt;
    }
    return reduceToKvHeads(q.heads, *n);
  }

  void addEmpty(const Scale &scale, ScaleKind kind) {
    add(Severity::Error,
        kind == ScaleKind::Q ? FindingKind::PerHeadQP : FindingKind::PerHeadKV,
        kind,
        "per-head scale " + stringifyScaleKind(kind).str() + " has " +
            scale.describe() + ", at least one per KV head is needed");
  }

  /// compressed-tensors: a per-head k or v beside a per-tensor one.
  void broadcastKV() {
    if (result.k.heads.empty() == result.v.heads.empty())
      return;
    FinalScale &perTensor = result.k.heads.empty() ? result.k : result.v;
    size_t n = std::max(result.k.heads.size(), result.v.heads.size());
    perTensor.heads.assign(n, perTensor.value);
  }

  /// The KV block for per-head k or v: each head by the rows of the table;
  /// all heads must take the same row. Returns false on an error.
  bool foldKVHeads(double factor, bool doubled) {
    if ((k.isPerHead() && !k.hasHeads()) || (v.isPerHead() && !v.hasHeads())) {
      for (auto [scale, kind] :
           {std::pair<const Scale *, ScaleKind>{&k, ScaleKind::K},
            {&v, ScaleKind::V}})
        if (scale->isPerHead() && !scale->hasHeads())
          addEmpty(*scale, kind);
      return false;
    }
    std::optional<unsigned> n = numKvHeads(false, ScaleKind::K);
    if (!n)
      return false;
    bool countsOk = true;
    for (auto [scale, kind] :
         {std::pair<const Scale *, ScaleKind>{&k, ScaleKind::K},
          {&v, ScaleKind::V}}) {
      if (scale->isPerHead() && scale->numElements != *n) {
        addHeadCountMismatch(kind, stringifyScaleKind(kind).str() + " has " +
                                       std::to_string(scale->numElements) +
                                       " per-head scales" + shardNote() +
                                       " but the layer has " +
                                       std::to_string(*n) + " KV heads");
        countsOk = false;
      }
    }
    if (!countsOk)
      return false;

    // The row of the table each head takes.
    std::vector<double> kOut, vOut;
    std::optional<ScaleRule> rule;
    size_t ruleHead = 0;
    for (size_t head = 0; head < *n; ++head) {
      // A per-tensor scale (or an absent one, -1.0) is every head's.
      const double kh = k.at(head), vh = v.at(head);
      ScaleRule headRule;
      if (kh > 0.0 && vh > 0.0) {
        headRule = ScaleRule::Checkpoint;
        kOut.push_back(kh * factor);
        vOut.push_back(vh * factor);
      } else if (kh < 0.0 && vh < 0.0) {
        headRule = ScaleRule::Default;
        kOut.push_back(1.0);
        vOut.push_back(1.0);
      } else if (kh > 0.0) {
        headRule = ScaleRule::Duplicated;
        kOut.push_back(kh * factor);
        vOut.push_back(kh * factor);
      } else {
        std::string reason = kh < 0.0    ? "only v present"
                             : kh == 0.0 ? "k = 0"
                                         : "k is NaN";
        add(Severity::Error, FindingKind::KScaleInvalid, ScaleKind::K,
            "invalid k scale of head " + std::to_string(head) + " for the " +
                dtypeName() + " KV cache (" + reason +
                "): k = " + formatScale(kh) + ", v = " + formatScale(vh) +
                "; k must be > 0 for every head (vLLM dies on `assert "
                "k_scale > 0`)");
        return false;
      }
      if (!rule) {
        rule = headRule;
        ruleHead = head;
      } else if (*rule != headRule) {
        // The field whose value is not usable at one of the two heads.
        const double kFirst = k.at(ruleHead), vFirst = v.at(ruleHead);
        ScaleKind field =
            kh > 0.0 && kFirst > 0.0 ? ScaleKind::V : ScaleKind::K;
        add(Severity::Error, FindingKind::PerHeadMixed, field,
            "the per-head k/v scales of the " + dtypeName() +
                " KV cache fold by different rules: head " +
                std::to_string(ruleHead) + " by '" +
                stringifyScaleRule(*rule).str() + "' (k = " +
                formatScale(kFirst) + ", v = " + formatScale(vFirst) +
                "), head " + std::to_string(head) + " by '" +
                stringifyScaleRule(headRule).str() +
                "' (k = " + formatScale(kh) + ", v = " + formatScale(vh) +
                "); every head must have usable (> 0) scales, or none");
        return false;
      }
    }
    const bool headsDoubled = doubled && *rule != ScaleRule::Default;
    result.k = perHead(std::move(kOut), *rule, headsDoubled);
    result.v = perHead(std::move(vOut), *rule, headsDoubled);
    return true;
  }

  /// The Q/P block for a per-head q: reduced to KV heads, then each head
  /// by the q rule; all heads must take the same one. Returns false on an
  /// error.
  bool foldQPerHead(double factor, bool doubled) {
    std::optional<std::vector<double>> heads = reduceQ();
    if (!heads)
      return false;
    bool anyPositive = false, allPositive = true;
    for (double head : q.heads) {
      anyPositive |= head > 0.0;
      allPositive &= head > 0.0;
    }
    if (!anyPositive) {
      // No usable value at all: as an absent q.
      result.q = {1.0, ScaleRule::Default, false};
      return true;
    }
    if (!allPositive) {
      size_t bad = 0, good = 0;
      while (q.heads[bad] > 0.0)
        ++bad;
      while (!(q.heads[good] > 0.0))
        ++good;
      add(Severity::Error, FindingKind::PerHeadMixed, ScaleKind::Q,
          "the per-head q scales fold by different rules: head " +
              std::to_string(good) + " by 'checkpoint' (q = " +
              formatScale(q.heads[good]) + "), head " + std::to_string(bad) +
              " by 'default' (q = " + formatScale(q.heads[bad]) +
              "); every head must have a usable (> 0) scale, or none");
      return false;
    }
    for (double &head : *heads)
      head = roundToModelDtype(head * factor, options.modelDtype);
    result.q = perHead(std::move(*heads), ScaleRule::Checkpoint, doubled);
    if (result.calculateKvScales && isQuantized(dtype))
      add(Severity::Warning, FindingKind::RuntimeScalesFrozen, ScaleKind::Q,
          "the checkpoint q scale (q = " + q.describe() +
              ") switches calculate_kv_scales off after the KV block was "
              "skipped for it, so K = V = 1.0 for good and are never "
              "computed at run time for the " +
              dtypeName() + " KV cache",
          "drop calculate_kv_scales to use the checkpoint's k/v scales, or "
          "drop the q scale to compute all scales at run time");
    result.calculateKvScales = false;
    return true;
  }

  void addPerHeadQP(const Scale &scale, ScaleKind kind) {
    add(Severity::Error, FindingKind::PerHeadQP, kind,
        "per-head Q/prob scales are not supported: " +
            stringifyScaleKind(kind).str() + " has " + scale.describe() +
            ", one per-tensor scale is needed (vLLM: \"Only support "
            "per-tensor scaling factor for fp8-quantized Q/prob\")");
  }

  Scale q, k, v, prob;
  KVCacheDtype dtype;
  const Options &options;
  const HeadCounts &counts;
  Result result;
  /// A k/v count mismatch was reported (once for k, v and q).
  bool kvCountReported = false;
  /// q was reduced to KV heads before sharding (tensor parallelism).
  bool qReduced = false;
  /// The KV heads in the checkpoint, when the scales were sharded.
  std::optional<size_t> shardedFrom;
  /// K and V hold defined values (no KV-block error).
  bool kvValid = true;
  /// The KV block ran and found q absent (the q quirk applies).
  bool qAbsentInKV = false;
};

} // namespace

Result mlir::kvq::scales::foldScales(const RawScales &raw, KVCacheDtype dtype,
                                     bool calculateKvScales,
                                     const Options &options,
                                     const HeadCounts &heads) {
  return Folder(raw, dtype, calculateKvScales, options, heads).run();
}
