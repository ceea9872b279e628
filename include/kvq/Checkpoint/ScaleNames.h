//===- ScaleNames.h - attention scale tensors by producer -------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Finds the Q/K/V/softmax scales of each attention layer in a checkpoint, by
// the names every known producer gives them, and reports what does not fit:
// two producers' tensors that disagree, scale tensors no layer claims, legacy
// shared K/V scales and zero points.
//
// A layer is named by its decoder-layer prefix (`model.layers.12`); the
// tensor of a pattern is `<prefix>.<suffix>`, or just `<suffix>` for the
// empty prefix. The patterns, in the order in which the first one that gives
// a field wins (vLLM's remap order, then the producers vLLM maps elsewhere):
//
//   modelopt         self_attn.k_proj.k_scale, self_attn.v_proj.v_scale
//   fused-qkv        self_attn.qkv_proj.{k,v}_scale
//   nemotron-h       mixer.k_proj.k_scale, mixer.v_proj.v_scale
//   hunyuan          self_attn.q.scale, self_attn.{k,v}_cache.scale
//   llm-compressor   self_attn.{q,k,v}_scale
//   legacy-kv-scale  self_attn.kv_scale (K only, deprecated)
//   vllm-default     {self_attention,attention,attn,mixer}.{q,k,v}_scale:
//                    vLLM's default rule (any `.k_scale` on a module that
//                    holds the attention) on the other names models give
//                    that module; their `.kv_scale` is legacy-kv-scale
//   quark            self_attn.{q,k,v}_proj.output_scale,
//                    self_attn.prob_output_scale (Prob)
//   sharktank        self_attn.kv_cache_scale (K only: one scale for K and
//                    V, as sharktank reads Quark checkpoints)
//   mistral          attention.{q,k,v}_fake_quantizer.qscale_act and
//                    {q,k,v}_fake_quantizer.qscale_act (the quantizer directly
//                    under the prefix, for callers whose prefix is the
//                    attention module); kv_fake_quantizer.qscale_act in both
//                    places gives K only, deprecated
//   tensorrt-llm     attention.kv_cache_scaling_factor (K only, deprecated)
//
// Mistral consolidated and TensorRT-LLM checkpoints root their layers
// differently from Hugging Face models (`layers.N`, `transformer.layers.N`);
// for a prefix `model.X` their patterns also try `X` (mistral) and
// `transformer.X` (tensorrt-llm), after the prefix itself.
//
// A shared K/V scale (kv_scale, kv_fake_quantizer, kv_cache_scaling_factor,
// kv_cache_scale) fills only K, with `legacyKvScale` set: the scale rules
// copy it to V.
//
// Names that say they are a scale or an offset but that kvq cannot use are
// reported, never dropped: zero points and offsets (asymmetric schemes), and
// Ascend msModelSlim's per-channel `{k,v}_proj.kv_cache_scale`.
//
// Matching does one hash lookup per layer and pattern and one pass over the
// tensors, so it is linear in the number of layers plus tensors.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CHECKPOINT_SCALENAMES_H
#define KVQ_CHECKPOINT_SCALENAMES_H

#include "kvq/Checkpoint/Checkpoint.h"

#include "kvq/Dialect/KVQ/IR/KVQEnums.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::kvq::checkpoint {

/// The scales of one attention layer are the dialect's ScaleKind
/// (KVQEnums.h): `stringifyScaleKind` spells them "k", "v", "q", "prob".

/// Where a pattern looks besides `<prefix>.<suffix>`.
enum class PrefixAlias {
  None,
  StripModel,       // `model.X` -> `X` (Mistral consolidated)
  TransformerModel, // `model.X` -> `transformer.X` (TensorRT-LLM)
};

/// Whether a pattern's tensor is one scale for both K and V.
enum class SharedKV {
  No,
  Deprecated, // a legacy name (kv_scale, ...), reported as deprecated
  Current,    // a producer's current name for one K/V scale (sharktank)
};

/// One naming rule of one producer.
struct ScaleNamePattern {
  const char *convention; // "llm-compressor", "modelopt", ...
  const char *suffix;     // after `<prefix>.`
  ScaleKind field;
  SharedKV shared; // K only, copied to V by the scale rules, unless No
  PrefixAlias alias;
};

/// All patterns, in priority order (see the file comment).
llvm::ArrayRef<ScaleNamePattern> getScaleNamePatterns();

/// Whether \p name ends like an attention scale of some producer: a last
/// component `q_scale`, `k_scale`, `v_scale`, `kv_scale`, `kv_cache_scale`,
/// `prob_output_scale` or `kv_cache_scaling_factor`; `output_scale` under
/// `{q,k,v,qkv}_proj`; `scale` under `k_cache`, `v_cache` or `q`; `qscale_act`
/// under `{q,k,v,kv}_fake_quantizer`. Weight and activation scales
/// (`k_proj.weight_scale`, `input_scale`) are not attention scales.
bool isScaleLikeName(llvm::StringRef name);

/// Whether \p name is the zero point of an attention scale: the names of
/// isScaleLikeName with `scale` spelled `zero_point` (`k_zero_point`,
/// `k_proj.output_zero_point`, `k_cache.zero_point`, ...), and
/// `kv_cache_offset` (msModelSlim's spelling).
bool isZeroPointName(llvm::StringRef name);

/// Whether \p name is a per-channel KV-cache scale of Ascend msModelSlim's
/// asymmetric int8 scheme: `kv_cache_scale` under `k_proj` or `v_proj`, one
/// value per output channel, paired with a `kv_cache_offset`. kvq takes
/// per-tensor and per-head symmetric scales only, so it reports these.
bool isPerChannelKvCacheScaleName(llvm::StringRef name);

/// One scale found for one field of one layer.
struct MatchedScale {
  ScaleKind field = ScaleKind::K;
  std::string tensorName;
  std::string file;
  std::string convention;
  std::vector<int64_t> shape;
  std::vector<double> values;
  /// The value came from a single shared K/V scale (for K only).
  bool legacyKvScale = false;
};

/// The scales of one layer; a field no tensor gives stays empty.
struct LayerMatch {
  std::string prefix;
  std::optional<MatchedScale> q, k, v, prob;

  std::optional<MatchedScale> &get(ScaleKind field);
  const std::optional<MatchedScale> &get(ScaleKind field) const;
};

/// Something matching found that the caller should report.
struct MatchFinding {
  enum Kind {
    /// Error: two tensors give one field of one layer different values.
    /// tensorName is the one kept (first by priority), otherTensorName the
    /// other.
    Conflict,
    /// Warning: a scale-like tensor that no layer's pattern claims.
    /// layerPrefix is set if the tensor is under a known layer.
    Unmatched,
    /// Warning: a legacy shared K/V scale was matched.
    Deprecated,
    /// Warning: an attention zero point; asymmetric KV quantization is not
    /// supported.
    ZeroPoint,
    /// Warning: a per-channel KV-cache scale (isPerChannelKvCacheScaleName),
    /// not attached; layerPrefix is set if the tensor is under a known layer.
    PerChannel,
    /// Remark: a current (not deprecated) shared K/V scale was matched; it
    /// fills K and the scale rules copy it to V.
    SharedKvScale,
    /// Error: a matched tensor cannot be read as a scale.
    ReadError,
    /// Note: two tensors give one field of one layer the same values; the
    /// first by priority (tensorName) is kept, otherTensorName ignored.
    Redundant,
  };
  Kind kind;
  std::string tensorName, otherTensorName, layerPrefix, message;

  bool isError() const { return kind == Conflict || kind == ReadError; }
};

/// The result of matchScales.
struct ScaleMatches {
  /// One per layer prefix, in the order given.
  std::vector<LayerMatch> layers;
  /// Per layer in layer order (conflicts, read errors, shared K/V scales,
  /// redundancies), then unmatched tensors, zero points and per-channel
  /// scales in tensor order.
  std::vector<MatchFinding> findings;

  bool hasErrors() const;
};

/// Matches the scales of the layers \p layerPrefixes in \p checkpoint. Fails
/// only if a prefix is given twice; every problem of the checkpoint is a
/// finding.
llvm::Expected<ScaleMatches>
matchScales(const Checkpoint &checkpoint,
            llvm::ArrayRef<std::string> layerPrefixes);

} // namespace mlir::kvq::checkpoint

#endif // KVQ_CHECKPOINT_SCALENAMES_H
