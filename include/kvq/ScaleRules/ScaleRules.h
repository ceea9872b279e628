//===- ScaleRules.h - KV-cache scale folding rules --------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The rules that fold the raw quantization scales of one attention layer's
// checkpoint (q, k, v, prob) into the final scales K, V, Q, P. They reproduce
// `BaseKVCacheMethod.process_weights_after_loading` of vLLM's
// `model_executor/layers/quantization/kv_cache.py` in its variant with an int8
// KV cache (the reference, "the seed" below) value for value, and report each
// condition the seed logs or raises as a Finding instead of a log line or an
// exception.
//
// This library needs no IR: the `kvq-fold-scales` pass is a thin adapter that
// turns Findings into diagnostics located at the layer.
//
// Summary of the rules (F = 2 on FNUZ fp8 targets, else 1):
//
//   KV block, only for a quantized cache with calculate_kv_scales off; rows
//   are tried top to bottom, a negative value counts as absent:
//     k > 0, v > 0            K = k*F, V = v*F           Rule::Checkpoint
//     k, v absent             K = V = 1.0 (no F)         Rule::Default
//     k > 0, v absent/0/NaN   K = V = max(k, v)*F = k*F  Rule::Duplicated
//     otherwise               error K-SCALE-INVALID
//   F applies to K/V for fp8* caches only, never for int8.
//   Q/P block, always: Q = q*F if q > 0 else 1.0; P = prob*F if prob > 0
//   else 1.0. F applies to q/prob whenever the target is FNUZ.
//
// Per-head scales (more than one element; compressed-tensors `attn_head`
// writes k and v as [num_kv_heads] or [num_kv_heads, 1, 1] and q as
// [num_heads, 1, 1]) fold head by head with the same rules, on both paths:
//   - a per-tensor k or v beside a per-head one is broadcast to every head;
//   - q is first reduced from attention heads to KV heads by the max over
//     each group of num_heads / num_kv_heads consecutive heads (vLLM's
//     compressed-tensors loader); prob has no per-head form (PER-HEAD-QP);
//   - base path: every head of k/v (and of q) must fold by the same row of
//     the table; a head that would fold by another (a 0, NaN or negative
//     value among positive ones) is an error naming the head
//     (PER-HEAD-MIXED, or K-SCALE-INVALID for a k head that is not > 0);
//   - the count must match the layer's heads where they are known
//     (HEAD-COUNT-MISMATCH); without a known KV head count, k and v must
//     agree and give it, and a per-head q needs one.
// A per-head final scale holds its heads in FinalScale::heads and the max
// over them in FinalScale::value (the per-layer float vLLM's other code
// reads); the warnings that test a final value (INT8-UNIT-SCALE,
// FP8-UNIT-SCALE, UNCALIBRATED-QP) test that max.
//
// ScaleMethod::CompressedTensors (vLLM's CompressedTensorsKVCacheMethod):
// each of k, v, q is its checkpoint value, or 1.0 when missing (reported,
// CT-SCALE-MISSING); no duplication, P = 1.0 (a prob scale is ignored, and
// reported), calculate_kv_scales is left as it is. On FNUZ, kvq doubles as
// the base path does and warns (CT-FNUZ); CtFnuz::Vllm does not double.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_SCALERULES_SCALERULES_H
#define KVQ_SCALERULES_SCALERULES_H

#include "kvq/Dialect/KVQ/IR/KVQEnums.h"

#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::kvq::scales {

// The KV-cache dtype (mlir::kvq::KVCacheDtype, as serving engines spell
// `--kv-cache-dtype`) and the rule that produced a final scale
// (mlir::kvq::ScaleRule) are the dialect's enums (KVQEnums.h). Fp8 and
// Fp8E4M3 store the same bytes; only UNCALIBRATED-QP tells them apart (it
// fires for Fp8 alone). When a single KV scale is duplicated (the third row
// of the KV block: k > 0 and v absent, 0 or NaN, e.g. a legacy `kv_scale`),
// both K and V get ScaleRule::Duplicated: both are the one value max(k, v).

/// The dtype vLLM keeps the raw scale parameters in; every raw value is
/// rounded through it (round to nearest, ties to even) before the rules run.
/// None keeps the raw values as given.
enum class ModelDtype { None, BF16, F16 };

/// What Q becomes when a quantized cache's checkpoint has no q scale.
/// SeedFinal: Q = 1.0, the seed's final value (it logs "Setting it to
/// k_scale" and then overwrites Q with 1.0). K: Q = K, as that log promises.
enum class QFallback { SeedFinal, K };

/// What the compressed-tensors rules do on an FNUZ target. Double: x2 as in
/// the base path (scales calibrated as amax/448 would otherwise saturate at
/// 240), with a CT-FNUZ warning. Vllm: exact vLLM parity, no x2.
enum class CtFnuz { Double, Vllm };

struct Options {
  bool fnuz = false; // target fp8 is FNUZ (AMD gfx942): F = 2
  /// Which producer's rules: vLLM's BaseKVCacheMethod (the seed) or
  /// CompressedTensorsKVCacheMethod.
  ScaleMethod method = ScaleMethod::Base;
  CtFnuz ctFnuz = CtFnuz::Double;
  ModelDtype modelDtype = ModelDtype::None;
  QFallback qFallback = QFallback::SeedFinal;
  bool strict = false; // missing scales are errors (production builds)
                       // instead of warnings
  /// Tensor parallelism: per-head scales are sharded for rank `tpRank` of
  /// `tpSize` before folding (see shardKvHeads). 1 and 0: no sharding.
  unsigned tpSize = 1;
  unsigned tpRank = 0;
};

/// A raw checkpoint scale: absent (std::nullopt) or its element values in
/// checkpoint order; one element = per-tensor ([], [1]); more = per-head.
/// A per-tensor value < 0 also counts as absent (vLLM's sentinel is -1.0).
/// Zero elements count as not per-tensor, like per-head.
using RawScale = std::optional<std::vector<double>>;
struct RawScales {
  RawScale q, k, v, prob;
  RawScale &operator[](ScaleKind kind);
};

enum class Severity { Warning, Error };

enum class FindingKind {
  Int8NeedsCalibration, // INT8-NEEDS-CALIBRATION
  QMissing,             // Q-MISSING
  Int8UnitScale,        // INT8-UNIT-SCALE
  Fp8UnitScale,         // FP8-UNIT-SCALE
  UncalibratedQP,       // UNCALIBRATED-QP
  KScaleInvalid,        // K-SCALE-INVALID: the seed's `assert k_scale > 0`
                        // (only v present, k = 0/NaN, ...)
  PerHeadKV,            // PER-HEAD-KV: "Only support per-tensor scaling
                        // factor for fp8 KV cache"
  PerHeadQP,            // PER-HEAD-QP: "Only support per-tensor scaling
                        // factor for fp8-quantized Q/prob"
  RuntimeScalesFrozen,  // RUNTIME-SCALES-FROZEN: calculate_kv_scales +
                        // checkpoint q: KV block was skipped, q switches
                        // calculation off, K=V stay 1.0 for good
  KVMissing,            // KV-MISSING: strict mode only: quantized cache, no
                        // k/v scales in the checkpoint
  CtScaleMissing,       // CT-SCALE-MISSING: compressed-tensors: a k, v or q
                        // scale is missing and folds to vLLM's 1.0
  CtProbIgnored,        // CT-PROB-IGNORED: compressed-tensors has no prob
                        // scale; the checkpoint's is not used
  CtFnuz,               // CT-FNUZ: compressed-tensors on FNUZ: kvq doubles,
                        // vLLM does not
  HeadCountMismatch,    // HEAD-COUNT-MISMATCH: a per-head scale's element
                        // count does not match the layer's heads
  PerHeadMixed,         // PER-HEAD-MIXED: the heads of a per-head scale
                        // would fold by different rules (0, NaN or a
                        // negative value among positive ones)
  TpHeadsIndivisible,   // TP-HEADS-INDIVISIBLE: the KV heads cannot be
                        // sharded over tp-size ranks
};

/// Stable upper-case key, e.g. "Q-MISSING" (used in messages and tests).
llvm::StringRef getFindingKey(FindingKind kind);

struct Finding {
  Severity severity;
  FindingKind kind;
  /// Full text: lowercase start, no trailing period, states the values
  /// involved; does not begin with the key (the pass prefixes "[KEY] ").
  std::string message;
  /// The raw scale this is about, if one (so the pass can name the
  /// checkpoint tensor). Findings about k and v together
  /// (INT8-NEEDS-CALIBRATION, KV-MISSING, FP8-UNIT-SCALE) name K.
  std::optional<ScaleKind> field;
  /// Optional extra explanation, e.g. for the FNUZ false alarm of
  /// FP8-UNIT-SCALE, or the q quirk. Empty when there is none.
  std::string note;
};

struct FinalScale {
  double value = 1.0;
  ScaleRule rule = ScaleRule::Default;
  /// The FNUZ x2 was applied. For Rule::KFallback: Q copies K's flag.
  bool doubled = false;
  /// Per-head values, one per KV head, in head order (`value` is their
  /// max); empty for a per-tensor scale.
  std::vector<double> heads = {};
};

/// The head counts of a layer, where the IR states them (the KV-cache dim
/// of its cache ops, the query-head dim of its attention op).
struct HeadCounts {
  std::optional<unsigned> numKvHeads;
  std::optional<unsigned> numHeads;
};

struct Result {
  /// Final scales. Where an error was found for a field, its scale is left
  /// at 1.0 / Rule::Default and means nothing.
  FinalScale k, v, q, prob;
  FinalScale &operator[](ScaleKind kind);
  const FinalScale &operator[](ScaleKind kind) const;
  bool calculateKvScales = false; // the flag after the rules ran
  /// In the order the seed would log/raise them. Unlike the seed, the rules
  /// go on after an error and report the other fields too; a check whose
  /// input is an erroneous field (INT8-UNIT-SCALE and FP8-UNIT-SCALE after a
  /// KV error, UNCALIBRATED-QP after a Q/P error) is skipped.
  std::vector<Finding> findings;
  /// Whether any finding is an Error.
  bool failed() const;
};

/// Folds one layer's raw scales into its final scales. `heads` are checked
/// against the element counts of per-head scales where known.
Result foldScales(const RawScales &raw, KVCacheDtype dtype,
                  bool calculateKvScales, const Options &options,
                  const HeadCounts &heads = {});

/// The KV heads tensor-parallel rank `tpRank` of `tpSize` holds, as vLLM's
/// loader shards them: with n = numKvHeads / tpSize heads per rank, rank r
/// takes [r*n, (r+1)*n); when numKvHeads < tpSize, each KV head is
/// replicated on tpSize / numKvHeads ranks and rank r takes head
/// r / (tpSize / numKvHeads). Returns std::nullopt when neither count
/// divides the other (or tpRank >= tpSize).
std::optional<std::vector<unsigned>>
shardKvHeads(unsigned numKvHeads, unsigned tpSize, unsigned tpRank);

/// Reduces per-attention-head q scales to KV heads: the max over each group
/// of `values.size() / numKvHeads` consecutive heads (NaN if one is NaN, as
/// torch's amax). `values.size()` must be a multiple of `numKvHeads`.
std::vector<double> reduceToKvHeads(const std::vector<double> &values,
                                    unsigned numKvHeads);

//===----------------------------------------------------------------------===//
// Helpers (also used by the rules themselves)
//===----------------------------------------------------------------------===//

/// "double" or "vllm"; parseCtFnuz accepts the same.
llvm::StringRef toString(CtFnuz mode);
std::optional<CtFnuz> parseCtFnuz(llvm::StringRef);

/// "warning" or "error".
llvm::StringRef toString(Severity severity);
/// "none", "bf16", "f16"; parseModelDtype also accepts "fp16" and "bfloat16",
/// "float16".
llvm::StringRef toString(ModelDtype dtype);
std::optional<ModelDtype> parseModelDtype(llvm::StringRef);

/// Rounds `value` to the model dtype (round to nearest, ties to even) and
/// returns it as a double; overflow gives inf, NaN stays NaN. ModelDtype::None
/// returns `value` unchanged.
double roundToModelDtype(double value, ModelDtype dtype);

/// Formats a scale the way Python prints a float: the shortest text that
/// reads back to the same double, with ".0" on integral values ("1.0",
/// "0.05", "1e-08", "inf", "nan").
std::string formatScale(double value);

} // namespace mlir::kvq::scales

#endif // KVQ_SCALERULES_SCALERULES_H
