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
} // namespace

static const ScaleNamePattern kPatterns[] = {
    // vLLM's remap order.
    {"modelopt", "self_attn.k_proj.k_scale", F::K, false, A::None},
    {"modelopt", "self_attn.v_proj.v_scale", F::V, false, A::None},
    {"fused-qkv", "self_attn.qkv_proj.k_scale", F::K, false, A::None},
    {"fused-qkv", "self_attn.qkv_proj.v_scale", F::V, false, A::None},
    {"nemotron-h", "mixer.k_proj.k_scale", F::K, false, A::None},
    {"nemotron-h", "mixer.v_proj.v_scale", F::V, false, A::None},
    {"hunyuan", "self_attn.q.scale", F::Q, false, A::None},
    {"hunyuan", "self_attn.k_cache.scale", F::K, false, A::None},
    {"hunyuan", "self_attn.v_cache.scale", F::V, false, A::None},
    {"llm-compressor", "self_attn.q_scale", F::Q, false, A::None},
    {"llm-compressor", "self_attn.k_scale", F::K, false, A::None},
    {"llm-compressor", "self_attn.v_scale", F::V, false, A::None},
    {"legacy-kv-scale", "self_attn.kv_scale", F::K, true, A::None},
    // Mapped by the quantization config in vLLM.
    {"quark", "self_attn.q_proj.output_scale", F::Q, false, A::None},
    {"quark", "self_attn.k_proj.output_scale", F::K, false, A::None},
    {"quark", "self_attn.v_proj.output_scale", F::V, false, A::None},
    {"quark", "self_attn.prob_output_scale", F::Prob, false, A::None},
    // Mapped by the Mistral name mapping in vLLM.
    {"mistral", "attention.q_fake_quantizer.qscale_act", F::Q, false,
     A::StripModel},
    {"mistral", "attention.k_fake_quantizer.qscale_act", F::K, false,
     A::StripModel},
    {"mistral", "attention.v_fake_quantizer.qscale_act", F::V, false,
     A::StripModel},
    {"mistral", "attention.kv_fake_quantizer.qscale_act", F::K, true,
     A::StripModel},
    {"mistral", "q_fake_quantizer.qscale_act", F::Q, false, A::StripModel},
    {"mistral", "k_fake_quantizer.qscale_act", F::K, false, A::StripModel},
    {"mistral", "v_fake_quantizer.qscale_act", F::V, false, A::StripModel},
    {"mistral", "kv_fake_quantizer.qscale_act", F::K, true, A::StripModel},
    // TensorRT-LLM checkpoints.
    {"tensorrt-llm", "attention.kv_cache_scaling_factor", F::K, true,
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
      last == "kv_scale" || last == "prob_output_scale" ||
      last == "kv_cache_scaling_factor")
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
      last == "prob_output_zero_point")
    return true;
  if (last == "output_zero_point")
    return isProj(parent);
  if (last == "zero_point")
    return isCache(parent) || isFakeQuantizer(parent);
  return false;
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
  if (pattern.legacyKvScale)
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
    slot =
        MatchedScale{pattern.field,        name.str(),      ref.file->path,
                     pattern.convention,   ref.info->shape, std::move(*values),
                     pattern.legacyKvScale};
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
    if (!isScaleLikeName(name) || claimed.contains(ref.info))
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
