//===- ScaleNames.cpp - attention scale tensors by producer ---------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/ScaleNames.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>
#include <cstring>

using namespace llvm;
using namespace mlir::kvq;
using namespace mlir::kvq::checkpoint;

std::optional<MatchedScale> &LayerMatch::get(ScaleKind field) {
  switch (field) {
  case ScaleKind::Q:
    return q;
  case ScaleKind::K:
    return k;
  case ScaleKind::V:
    return v;
  case ScaleKind::Prob:
    return prob;
  }
  llvm_unreachable("unknown ScaleKind");
}

const std::optional<MatchedScale> &LayerMatch::get(ScaleKind field) const {
  return const_cast<LayerMatch *>(this)->get(field);
}

bool ScaleMatches::hasErrors() const {
  return llvm::any_of(findings,
                      [](const MatchFinding &f) { return f.isError(); });
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

namespace {
using F = ScaleKind;
using A = PrefixAlias;
using S = SharedKV;
} // namespace

static const ScaleNamePattern kPatterns[] = {
    // vLLM's remap order.
    {"modelopt", "self_attn.k_proj.k_scale", F::K, S::No, A::None},
    {"modelopt", "self_attn.v_proj.v_scale", F::V, S::No, A::None},
    {"fused-qkv", "self_attn.qkv_proj.k_scale", F::K, S::No, A::None},
    {"fused-qkv", "self_attn.qkv_proj.v_scale", F::V, S::No, A::None},
    {"nemotron-h", "mixer.k_proj.k_scale", F::K, S::No, A::None},
    {"nemotron-h", "mixer.v_proj.v_scale", F::V, S::No, A::None},
    {"hunyuan", "self_attn.q.scale", F::Q, S::No, A::None},
    {"hunyuan", "self_attn.k_cache.scale", F::K, S::No, A::None},
    {"hunyuan", "self_attn.v_cache.scale", F::V, S::No, A::None},
    {"llm-compressor", "self_attn.q_scale", F::Q, S::No, A::None},
    {"llm-compressor", "self_attn.k_scale", F::K, S::No, A::None},
    {"llm-compressor", "self_attn.v_scale", F::V, S::No, A::None},
    {"legacy-kv-scale", "self_attn.kv_scale", F::K, S::Deprecated, A::None},
    // vLLM's default rule loads any `X.k_scale` whose module X holds the
    // layer's attention (as `X.attn`), whatever X is called. kvq does not
    // know the model's modules, so it takes the names models give that child
    // of the decoder layer: Falcon's and Bloom's `self_attention`, GPT-NeoX's
    // and InternLM2's `attention`, GPT-2's and MPT's `attn`, NemotronH's
    // `mixer`. A scale under any other module (`mlp.k_scale`, for which vLLM
    // would look for an `mlp.attn` no model has) or deeper
    // (`self_attn.attn.k_scale`) is reported as unmatched rather than taken
    // for the layer's.
    {"vllm-default", "self_attention.q_scale", F::Q, S::No, A::None},
    {"vllm-default", "self_attention.k_scale", F::K, S::No, A::None},
    {"vllm-default", "self_attention.v_scale", F::V, S::No, A::None},
    {"vllm-default", "attention.q_scale", F::Q, S::No, A::None},
    {"vllm-default", "attention.k_scale", F::K, S::No, A::None},
    {"vllm-default", "attention.v_scale", F::V, S::No, A::None},
    {"vllm-default", "attn.q_scale", F::Q, S::No, A::None},
    {"vllm-default", "attn.k_scale", F::K, S::No, A::None},
    {"vllm-default", "attn.v_scale", F::V, S::No, A::None},
    {"vllm-default", "mixer.q_scale", F::Q, S::No, A::None},
    {"vllm-default", "mixer.k_scale", F::K, S::No, A::None},
    {"vllm-default", "mixer.v_scale", F::V, S::No, A::None},
    // vLLM maps any `.kv_scale` to K the same way.
    {"legacy-kv-scale", "self_attention.kv_scale", F::K, S::Deprecated,
     A::None},
    {"legacy-kv-scale", "attention.kv_scale", F::K, S::Deprecated, A::None},
    {"legacy-kv-scale", "attn.kv_scale", F::K, S::Deprecated, A::None},
    {"legacy-kv-scale", "mixer.kv_scale", F::K, S::Deprecated, A::None},
    // Mapped by the quantization config in vLLM.
    {"quark", "self_attn.q_proj.output_scale", F::Q, S::No, A::None},
    {"quark", "self_attn.k_proj.output_scale", F::K, S::No, A::None},
    {"quark", "self_attn.v_proj.output_scale", F::V, S::No, A::None},
    {"quark", "self_attn.prob_output_scale", F::Prob, S::No, A::None},
    // Quark checkpoints as sharktank reads them: one KV-cache scale (a
    // dequantization scale, like kv_scale) for K and V.
    {"sharktank", "self_attn.kv_cache_scale", F::K, S::Current, A::None},
    // Mapped by the Mistral name mapping in vLLM.
    {"mistral", "attention.q_fake_quantizer.qscale_act", F::Q, S::No,
     A::StripModel},
    {"mistral", "attention.k_fake_quantizer.qscale_act", F::K, S::No,
     A::StripModel},
    {"mistral", "attention.v_fake_quantizer.qscale_act", F::V, S::No,
     A::StripModel},
    {"mistral", "attention.kv_fake_quantizer.qscale_act", F::K, S::Deprecated,
     A::StripModel},
    {"mistral", "q_fake_quantizer.qscale_act", F::Q, S::No, A::StripModel},
    {"mistral", "k_fake_quantizer.qscale_act", F::K, S::No, A::StripModel},
    {"mistral", "v_fake_quantizer.qscale_act", F::V, S::No, A::StripModel},
    {"mistral", "kv_fake_quantizer.qscale_act", F::K, S::Deprecated,
     A::StripModel},
    // TensorRT-LLM checkpoints.
    {"tensorrt-llm", "attention.kv_cache_scaling_factor", F::K, S::Deprecated,
     A::TransformerModel},
};

ArrayRef<ScaleNamePattern> mlir::kvq::checkpoint::getScaleNamePatterns() {
  return kPatterns;
}

/// Splits \p name into its last two dot-separated components.
static std::pair<StringRef, StringRef> lastTwo(StringRef name) {
  size_t dot = name.rfind('.');
  if (dot == StringRef::npos)
    return {StringRef(), name};
  StringRef rest = name.take_front(dot);
  size_t parentDot = rest.rfind('.');
  StringRef parent =
      parentDot == StringRef::npos ? rest : rest.drop_front(parentDot + 1);
  return {parent, name.drop_front(dot + 1)};
}

static bool isProj(StringRef parent) {
  return parent == "q_proj" || parent == "k_proj" || parent == "v_proj" ||
         parent == "qkv_proj";
}

static bool isCache(StringRef parent) {
  return parent == "k_cache" || parent == "v_cache" || parent == "q";
}

static bool isFakeQuantizer(StringRef parent) {
  return parent == "q_fake_quantizer" || parent == "k_fake_quantizer" ||
         parent == "v_fake_quantizer" || parent == "kv_fake_quantizer";
}

bool mlir::kvq::checkpoint::isScaleLikeName(StringRef name) {
  auto [parent, last] = lastTwo(name);
  if (last == "q_scale" || last == "k_scale" || last == "v_scale" ||
      last == "kv_scale" || last == "kv_cache_scale" ||
      last == "prob_output_scale" || last == "kv_cache_scaling_factor")
    return true;
  if (last == "output_scale")
    return isProj(parent);
  if (last == "scale")
    return isCache(parent);
  if (last == "qscale_act")
    return isFakeQuantizer(parent);
  return false;
}

bool mlir::kvq::checkpoint::isZeroPointName(StringRef name) {
  auto [parent, last] = lastTwo(name);
  if (last == "q_zero_point" || last == "k_zero_point" ||
      last == "v_zero_point" || last == "kv_zero_point" ||
      last == "kv_cache_zero_point" || last == "kv_cache_offset" ||
      last == "prob_output_zero_point")
    return true;
  if (last == "output_zero_point")
    return isProj(parent);
  if (last == "zero_point")
    return isCache(parent) || isFakeQuantizer(parent);
  return false;
}

bool mlir::kvq::checkpoint::isPerChannelKvCacheScaleName(StringRef name) {
  auto [parent, last] = lastTwo(name);
  return last == "kv_cache_scale" && (parent == "k_proj" || parent == "v_proj");
}

//===----------------------------------------------------------------------===//
// Matching
//===----------------------------------------------------------------------===//

/// The other prefix \p alias makes of \p prefix, or empty if none.
static std::string getAliasPrefix(PrefixAlias alias, StringRef prefix) {
  if (alias == PrefixAlias::None || !prefix.starts_with("model."))
    return {};
  StringRef rest = prefix.drop_front(strlen("model."));
  if (alias == PrefixAlias::StripModel)
    return rest.str();
  return ("transformer." + rest).str();
}

/// `<prefix>.<suffix>`, or `<suffix>` for the empty prefix, in \p buffer.
static StringRef joinName(StringRef prefix, StringRef suffix,
                          SmallVectorImpl<char> &buffer) {
  buffer.clear();
  if (!prefix.empty()) {
    buffer.append(prefix.begin(), prefix.end());
    buffer.push_back('.');
  }
  buffer.append(suffix.begin(), suffix.end());
  return StringRef(buffer.data(), buffer.size());
}

/// Equal values, NaN equal to NaN (two tensors holding NaN do not conflict;
/// the scale rules reject NaN anyway).
static bool sameValues(ArrayRef<double> a, ArrayRef<double> b) {
  if (a.size() != b.size())
    return false;
  for (auto [x, y] : llvm::zip_equal(a, b))
    if (!(x == y || (std::isnan(x) && std::isnan(y))))
      return false;
  return true;
}

namespace {
/// Matches one layer's patterns and records findings.
class Matcher {
public:
  Matcher(const Checkpoint &checkpoint, ScaleMatches &result)
      : checkpoint(checkpoint), result(result) {}

  void matchLayer(LayerMatch &layer);
  void reportUnclaimed(const StringMap<unsigned> &prefixIndex);

private:
  void matchTensor(LayerMatch &layer, const ScaleNamePattern &pattern,
                   const TensorRef &ref);
  void addFinding(MatchFinding::Kind kind, StringRef tensorName,
                  StringRef otherTensorName, StringRef layerPrefix,
                  const Twine &message) {
    result.findings.push_back(MatchFinding{kind, tensorName.str(),
                                           otherTensorName.str(),
                                           layerPrefix.str(), message.str()});
  }

  const Checkpoint &checkpoint;
  ScaleMatches &result;
  DenseSet<const TensorInfo *> claimed;
};
} // namespace

void Matcher::matchLayer(LayerMatch &layer) {
  SmallString<128> buffer;
  for (const ScaleNamePattern &pattern : kPatterns) {
    if (std::optional<TensorRef> ref =
            checkpoint.lookup(joinName(layer.prefix, pattern.suffix, buffer)))
      matchTensor(layer, pattern, *ref);
    if (pattern.alias == PrefixAlias::None)
      continue;
    std::string alias = getAliasPrefix(pattern.alias, layer.prefix);
    if (alias.empty())
      continue;
    if (std::optional<TensorRef> ref =
            checkpoint.lookup(joinName(alias, pattern.suffix, buffer)))
      matchTensor(layer, pattern, *ref);
  }
}

void Matcher::matchTensor(LayerMatch &layer, const ScaleNamePattern &pattern,
                          const TensorRef &ref) {
  claimed.insert(ref.info);
  StringRef name = ref.getName();
  StringRef fieldName = stringifyScaleKind(pattern.field);
  if (pattern.shared == SharedKV::Deprecated)
    addFinding(MatchFinding::Deprecated, name, "", layer.prefix,
               "'" + name + "' is a single scale for K and V (" +
                   pattern.convention +
                   ", deprecated): it is used as the K scale and the scale "
                   "rules copy it to V; re-export with separate k_scale and "
                   "v_scale");

  Expected<std::vector<double>> values = checkpoint.readScale(ref);
  if (!values) {
    addFinding(MatchFinding::ReadError, name, "", layer.prefix,
               "cannot read the " + fieldName + " scale of layer '" +
                   layer.prefix + "': " + toString(values.takeError()));
    return;
  }

  std::optional<MatchedScale> &slot = layer.get(pattern.field);
  if (!slot) {
    slot = MatchedScale{pattern.field,
                        name.str(),
                        ref.file->path,
                        pattern.convention,
                        ref.info->shape,
                        std::move(*values),
                        pattern.shared != SharedKV::No};
    // Said only when it is used: a shared scale that loses to another name
    // is in that conflict or redundancy finding instead.
    if (pattern.shared == SharedKV::Current)
      addFinding(MatchFinding::SharedKvScale, name, "", layer.prefix,
                 "'" + name + "' is one scale for K and V (" +
                     pattern.convention +
                     "): it is used as the K scale and the scale rules copy "
                     "it to V");
    return;
  }
  if (sameValues(slot->values, *values)) {
    addFinding(MatchFinding::Redundant, slot->tensorName, name, layer.prefix,
               "'" + name + "' (" + pattern.convention + ") repeats the " +
                   fieldName + " scale of layer '" + layer.prefix +
                   "' given by '" + slot->tensorName + "' (" +
                   slot->convention + "); the latter is used");
    return;
  }
  addFinding(MatchFinding::Conflict, slot->tensorName, name, layer.prefix,
             "conflicting " + fieldName + " scales for layer '" + layer.prefix +
                 "': '" + slot->tensorName + "' (" + slot->convention +
                 ") and '" + name + "' (" + pattern.convention +
                 ") hold different values");
}

/// The longest layer prefix in \p prefixIndex that \p name is under, or
/// empty. Tries each dot position: linear in the length of the name.
static StringRef findLayerPrefix(StringRef name,
                                 const StringMap<unsigned> &prefixIndex,
                                 ArrayRef<LayerMatch> layers) {
  for (size_t dot = name.rfind('.'); dot != StringRef::npos && dot > 0;
       dot = name.rfind('.', dot - 1)) {
    auto it = prefixIndex.find(name.take_front(dot));
    if (it != prefixIndex.end())
      return layers[it->second].prefix;
  }
  return {};
}

/// \p shape as `[8, 128]`.
static std::string formatShape(ArrayRef<int64_t> shape) {
  std::string result = "[";
  for (auto [index, dim] : llvm::enumerate(shape)) {
    if (index)
      result += ", ";
    result += std::to_string(dim);
  }
  return result + "]";
}

void Matcher::reportUnclaimed(const StringMap<unsigned> &prefixIndex) {
  for (const TensorRef &ref : checkpoint.tensors()) {
    StringRef name = ref.getName();
    if (isZeroPointName(name)) {
      StringRef layer = findLayerPrefix(name, prefixIndex, result.layers);
      addFinding(MatchFinding::ZeroPoint, name, "", layer,
                 "'" + name + "' in '" + ref.file->path +
                     "' is a zero point: asymmetric KV-cache quantization is "
                     "not supported, only symmetric scales; it is ignored");
      continue;
    }
    if (claimed.contains(ref.info))
      continue;
    if (isPerChannelKvCacheScaleName(name)) {
      // Its shape says how many channels, which tells the user that the
      // scale is not one kvq could take for the whole layer.
      StringRef layer = findLayerPrefix(name, prefixIndex, result.layers);
      addFinding(MatchFinding::PerChannel, name, "", layer,
                 "'" + name + "' in '" + ref.file->path + "' (shape " +
                     formatShape(ref.info->shape) +
                     ") is a per-channel KV-cache scale of an asymmetric "
                     "scheme (msmodelslim, with kv_cache_offset): kvq "
                     "supports only symmetric per-tensor or per-head "
                     "scales; it is ignored");
      continue;
    }
    if (!isScaleLikeName(name))
      continue;
    StringRef layer = findLayerPrefix(name, prefixIndex, result.layers);
    if (layer.empty())
      addFinding(MatchFinding::Unmatched, name, "", layer,
                 "scale tensor '" + name + "' in '" + ref.file->path +
                     "' matches no attention layer; it is ignored");
    else
      addFinding(MatchFinding::Unmatched, name, "", layer,
                 "scale tensor '" + name + "' in '" + ref.file->path +
                     "' is under layer '" + layer +
                     "' but follows no known naming convention; it is "
                     "ignored");
  }
}

Expected<ScaleMatches>
mlir::kvq::checkpoint::matchScales(const Checkpoint &checkpoint,
                                   ArrayRef<std::string> layerPrefixes) {
  ScaleMatches result;
  // Layer prefixes and their aliases, for placing unclaimed tensors. An alias
  // never displaces a real prefix.
  StringMap<unsigned> prefixIndex;
  result.layers.reserve(layerPrefixes.size());
  for (auto [index, prefix] : llvm::enumerate(layerPrefixes)) {
    if (!prefixIndex.try_emplace(prefix, index).second)
      return createStringError(
          std::make_error_code(std::errc::invalid_argument),
          "layer prefix '" + prefix + "' is given twice");
    LayerMatch layer;
    layer.prefix = prefix;
    result.layers.push_back(std::move(layer));
  }
  for (auto [index, prefix] : llvm::enumerate(layerPrefixes))
    for (PrefixAlias alias :
         {PrefixAlias::StripModel, PrefixAlias::TransformerModel}) {
      std::string aliasPrefix = getAliasPrefix(alias, prefix);
      if (!aliasPrefix.empty())
        prefixIndex.try_emplace(aliasPrefix, index);
    }

  Matcher matcher(checkpoint, result);
  for (LayerMatch &layer : result.layers)
    matcher.matchLayer(layer);
  matcher.reportUnclaimed(prefixIndex);
  return result;
}
