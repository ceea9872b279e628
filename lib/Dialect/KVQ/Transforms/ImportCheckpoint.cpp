//===- ImportCheckpoint.cpp - kvq-import-checkpoint pass ------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// A thin adapter over the mlir::kvq::checkpoint library: matches each layer's
// prefix against the checkpoint's tensor names and attaches what it finds as
// raw `checkpoint` scales; every matching finding becomes a diagnostic.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/JSONCheck.h"
#include "kvq/Checkpoint/ScaleNames.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"
#include "kvq/ScaleRules/ScaleRules.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQIMPORTCHECKPOINT
#include "kvq/Dialect/KVQ/Transforms/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;
namespace ckpt = mlir::kvq::checkpoint;

/// The MLIR float type of a scale-readable safetensors dtype.
static FloatType getFloatType(Builder &b, ckpt::DType dtype) {
  switch (dtype) {
  case ckpt::DType::F64:
    return b.getF64Type();
  case ckpt::DType::F16:
    return b.getF16Type();
  case ckpt::DType::BF16:
    return b.getBF16Type();
  default:
    return b.getF32Type();
  }
}

/// A FloatAttr for a per-tensor scale ([] or [1]), else a dense tensor with
/// the tensor's shape, in the checkpoint dtype (values are exact in it).
static Attribute buildScale(Builder &b, const ckpt::MatchedScale &scale,
                            ckpt::DType dtype) {
  FloatType type = getFloatType(b, dtype);
  auto toAPFloat = [&](double value) {
    APFloat f(value);
    bool lost;
    f.convert(type.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    return f;
  };
  if (scale.values.size() == 1 && scale.shape.size() <= 1)
    return FloatAttr::get(type, toAPFloat(scale.values.front()));
  SmallVector<APFloat> values = llvm::map_to_vector(scale.values, toAPFloat);
  auto tensorType = RankedTensorType::get(scale.shape, type);
  return DenseElementsAttr::get(tensorType, values);
}

//===----------------------------------------------------------------------===//
// config.json: the producer's quantization config
//===----------------------------------------------------------------------===//

/// A config.json larger than this is not a model config (they are a few KB).
static constexpr uint64_t kMaxConfigSize = 16ull << 20;

/// What the config says about the folding rules.
struct ConfigMethod {
  std::string path; // the config.json read, empty when there is none
  ScaleMethod method = ScaleMethod::Base;
  /// The model's `num_key_value_heads`, where the config states it: the
  /// number of values a per-head K or V scale must have.
  std::optional<int64_t> numKVHeads;
};

/// A JSON scalar as Python's str() prints it in vLLM's messages.
static std::string pythonStr(const llvm::json::Value *value) {
  if (!value || value->kind() == llvm::json::Value::Null)
    return "None";
  if (std::optional<bool> b = value->getAsBoolean())
    return *b ? "True" : "False";
  if (std::optional<llvm::StringRef> str = value->getAsString())
    return str->str();
  if (std::optional<int64_t> i = value->getAsInteger())
    return std::to_string(*i);
  if (std::optional<double> d = value->getAsNumber())
    return scales::formatScale(*d);
  return "?";
}

/// Reads the config.json next to the checkpoint, if there is one, and
/// validates a compressed-tensors kv_cache_scheme as vLLM's
/// CompressedTensorsKVCacheMethod.validate_kv_cache_scheme does.
static FailureOr<ConfigMethod> readConfig(ModuleOp module,
                                          StringRef checkpoint) {
  ConfigMethod result;
  SmallString<256> path(checkpoint);
  if (!llvm::sys::fs::is_directory(checkpoint)) {
    path = llvm::sys::path::parent_path(checkpoint);
    if (path.empty())
      path = ".";
  }
  llvm::sys::path::append(path, "config.json");
  llvm::sys::fs::file_status status;
  if (llvm::sys::fs::status(path, status) ||
      status.type() == llvm::sys::fs::file_type::file_not_found)
    return result;
  result.path = path.str().str();
  auto error = [&]() {
    return emitError(module.getLoc())
           << "kvq-import-checkpoint: " << result.path << ": ";
  };
  auto invalid = [&]() { return error() << "[CT-CONFIG-INVALID] "; };
  if (status.type() != llvm::sys::fs::file_type::regular_file) {
    invalid() << "cannot read: not a regular file";
    return failure();
  }
  if (status.getSize() > kMaxConfigSize) {
    invalid() << "file is " << status.getSize()
              << " bytes, more than the limit of " << kMaxConfigSize;
    return failure();
  }
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer) {
    invalid() << "cannot read: " << buffer.getError().message();
    return failure();
  }
  llvm::Expected<llvm::json::Value> json =
      ckpt::parseStrictJSON((*buffer)->getBuffer());
  if (!json) {
    invalid() << "not valid JSON: " << llvm::toString(json.takeError());
    return failure();
  }
  const llvm::json::Object *root = json->getAsObject();
  if (!root) {
    invalid() << "not a JSON object";
    return failure();
  }
  if (const llvm::json::Value *heads = root->get("num_key_value_heads");
      heads && heads->kind() != llvm::json::Value::Null) {
    std::optional<int64_t> count = heads->getAsInteger();
    if (!count || *count < 1) {
      std::string text;
      llvm::raw_string_ostream os(text);
      os << *heads;
      invalid() << "'num_key_value_heads' must be a positive integer, got "
                << text;
      return failure();
    }
    result.numKVHeads = *count;
  }
  const llvm::json::Value *qc = root->get("quantization_config");
  if (!qc || qc->kind() == llvm::json::Value::Null)
    return result;
  const llvm::json::Object *qcObject = qc->getAsObject();
  if (!qcObject) {
    invalid() << "'quantization_config' is not an object";
    return failure();
  }
  const llvm::json::Value *scheme = qcObject->get("kv_cache_scheme");
  if (!scheme || scheme->kind() == llvm::json::Value::Null)
    return result;
  const llvm::json::Object *fields = scheme->getAsObject();
  if (!fields) {
    invalid() << "'quantization_config.kv_cache_scheme' is not an object";
    return failure();
  }
  // Types first: vLLM reads the fields with dict.get (absent = None).
  auto isNull = [](const llvm::json::Value *v) {
    return !v || v->kind() == llvm::json::Value::Null;
  };
  const llvm::json::Value *numBits = fields->get("num_bits");
  const llvm::json::Value *type = fields->get("type");
  const llvm::json::Value *strategy = fields->get("strategy");
  const llvm::json::Value *symmetric = fields->get("symmetric");
  for (auto [name, value, expected, ok] :
       {std::make_tuple("num_bits", numBits, "a number",
                        isNull(numBits) || numBits->getAsNumber()),
        std::make_tuple("type", type, "a string",
                        isNull(type) || type->getAsString()),
        std::make_tuple("strategy", strategy, "a string",
                        isNull(strategy) || strategy->getAsString()),
        std::make_tuple("symmetric", symmetric, "a boolean",
                        isNull(symmetric) || symmetric->getAsBoolean())}) {
    if (ok)
      continue;
    std::string text;
    llvm::raw_string_ostream os(text);
    os << *value;
    invalid() << "'quantization_config.kv_cache_scheme." << name << "' must be "
              << expected << " or null, got " << text;
    return failure();
  }
  // vLLM's checks, in its order and words (note the `and`: an int8 or an
  // fp4 scheme passes the first).
  std::optional<StringRef> typeName =
      isNull(type) ? std::nullopt : type->getAsString();
  std::optional<double> bits =
      isNull(numBits) ? std::nullopt : numBits->getAsNumber();
  auto unsupported = [&]() { return error() << "[CT-SCHEME-UNSUPPORTED] "; };
  if (typeName != StringRef("float") && bits != 8.0) {
    unsupported() << "Currently supported kv cache quantization is "
                     "num_bits=8, type=float, however received num_bits="
                  << pythonStr(numBits) << ", type=" << pythonStr(type);
    return failure();
  }
  std::optional<StringRef> strategyName =
      isNull(strategy) ? std::nullopt : strategy->getAsString();
  if (strategyName != StringRef("tensor") &&
      strategyName != StringRef("attn_head")) {
    unsupported() << "Invalid strategy for compressed-tensors KV cache. "
                     "Expected strategies: ('tensor', 'attn_head'), found "
                     "strategy: "
                  << pythonStr(strategy);
    return failure();
  }
  if (isNull(symmetric) || !*symmetric->getAsBoolean()) {
    unsupported() << "Only support symmetric scaling factor for "
                     "compressed-tensors KV cache. However found symmetric: "
                  << pythonStr(symmetric);
    return failure();
  }
  // strategy attn_head: the scale tensors are per head ([num_kv_heads, 1,
  // 1] for k and v, [num_heads, 1, 1] for q); they are read as any scale,
  // and kvq-fold-scales folds them per head.
  result.method = ScaleMethod::CompressedTensors;
  return result;
}

namespace {
struct KVQImportCheckpointPass final
    : mlir::kvq::impl::KVQImportCheckpointBase<KVQImportCheckpointPass> {
  using Base::Base;

  void runOnOperation() override;
};
} // namespace

void KVQImportCheckpointPass::runOnOperation() {
  ModuleOp module = getOperation();
  if (checkpoint.empty()) {
    emitError(module.getLoc())
        << "kvq-import-checkpoint: no checkpoint given; set "
           "checkpoint=<file.safetensors | index.json | directory>";
    return signalPassFailure();
  }
  llvm::Expected<ckpt::Checkpoint> opened = ckpt::Checkpoint::open(checkpoint);
  if (!opened) {
    emitError(module.getLoc())
        << "kvq-import-checkpoint: " << llvm::toString(opened.takeError());
    return signalPassFailure();
  }

  FailureOr<ConfigMethod> config = readConfig(module, checkpoint);
  if (mlir::failed(config))
    return signalPassFailure();

  // Diagnostics are emitted at the layer's location, not on the layer op:
  // Operation::emitError would attach the op printed in full, which for an
  // op directly in the module means numbering the whole module, once per
  // diagnostic (10,000 warnings took minutes).
  SmallVector<LayerOp> layers(module.getOps<LayerOp>());
  bool failed = false;
  std::vector<std::string> prefixes;
  llvm::StringMap<LayerOp> byPrefix;
  for (LayerOp layer : layers) {
    if (layer.getCheckpointScalesAttr() || layer.getResolvedScalesAttr()) {
      emitError(layer.getLoc(),
                "[SCALES-TWICE] layer already carries scales; take them from "
                "the IR or from the checkpoint, not both");
      failed = true;
    }
    prefixes.push_back(layer.getCheckpointPrefix().str());
    auto [it, inserted] = byPrefix.insert({prefixes.back(), layer});
    if (!inserted) {
      emitError(layer.getLoc())
          << "[PREFIX-TWICE] checkpoint prefix '" << prefixes.back()
          << "' is also the prefix of layer @" << it->second.getSymName()
          << "; each layer needs its own scales";
      failed = true;
    }
  }
  if (failed)
    return signalPassFailure();

  llvm::Expected<ckpt::ScaleMatches> matches =
      ckpt::matchScales(*opened, prefixes);
  if (!matches) {
    emitError(module.getLoc())
        << "kvq-import-checkpoint: " << llvm::toString(matches.takeError());
    return signalPassFailure();
  }

  // Attach the scales.
  Builder b(&getContext());
  for (auto [layer, match] : llvm::zip(layers, matches->layers)) {
    Attribute fields[4];
    SmallVector<NamedAttribute> tensors;
    bool layerFailed = false;
    for (ScaleKind field : kScaleKinds) {
      const std::optional<ckpt::MatchedScale> &scale = match.get(field);
      if (!scale)
        continue;
      std::optional<ckpt::TensorRef> ref = opened->lookup(scale->tensorName);
      ckpt::DType dtype = ref ? ref->info->dtype : ckpt::DType::F32;
      Attribute value = buildScale(b, *scale, dtype);
      // A checkpoint shape can break the rules of #kvq.scales (no element,
      // rank above 3): report it rather than build an invalid attribute,
      // which would print as IR that does not parse.
      Attribute alone[4] = {};
      alone[static_cast<int>(field)] = value;
      Location loc = layer.getLoc();
      auto emitScaleError = [&] {
        InFlightDiagnostic diag = emitError(loc, "[SCALE-UNREADABLE] ");
        diag.attachNote() << "checkpoint tensor '" << scale->tensorName << "'";
        return diag;
      };
      if (mlir::failed(ScalesAttr::verify(emitScaleError, alone[0], alone[1],
                                          alone[2], alone[3]))) {
        layerFailed = true;
        continue;
      }
      // A per-head K or V scale has one value per KV head of the model
      // (before tensor-parallel sharding): config.json says how many.
      if (config->numKVHeads &&
          (field == ScaleKind::K || field == ScaleKind::V) &&
          scale->values.size() > 1 &&
          int64_t(scale->values.size()) != *config->numKVHeads) {
        emitError(loc) << "[CONFIG-HEAD-COUNT] layer @" << layer.getSymName()
                       << ": checkpoint tensor '" << scale->tensorName
                       << "' has " << scale->values.size()
                       << " per-head scales, but " << config->path
                       << " has num_key_value_heads = " << *config->numKVHeads;
        layerFailed = true;
        continue;
      }
      fields[static_cast<int>(field)] = value;
      tensors.push_back(b.getNamedAttr(stringifyScaleKind(field),
                                       b.getStringAttr(scale->tensorName)));
    }
    if (layerFailed) {
      failed = true;
      continue;
    }
    if (tensors.empty()) {
      if (layer.isQuantized())
        emitWarning(layer.getLoc())
            << "[NO-CHECKPOINT-SCALES] no attention scale found for the "
            << stringifyKVCacheDtype(layer.getKvCacheDtype())
            << " KV cache of prefix '" << match.prefix << "' in '" << checkpoint
            << "'; the scale rules will use defaults";
      continue;
    }
    layer.setCheckpointScalesAttr(ScalesAttr::get(
        &getContext(), fields[0], fields[1], fields[2], fields[3]));
    layer.setCheckpointTensorsAttr(b.getDictionaryAttr(tensors));
    if (config->method != ScaleMethod::Base)
      layer.setScaleMethod(config->method);
  }

  // Report the findings: at the layer when there is one, else at the module.
  for (const ckpt::MatchFinding &finding : matches->findings) {
    Location loc = module.getLoc();
    if (LayerOp layer = byPrefix.lookup(finding.layerPrefix))
      loc = layer.getLoc();
    switch (finding.kind) {
    case ckpt::MatchFinding::Conflict:
      emitError(loc) << "[SCALE-CONFLICT] " << finding.message;
      failed = true;
      break;
    case ckpt::MatchFinding::ReadError:
      emitError(loc) << "[SCALE-UNREADABLE] " << finding.message;
      failed = true;
      break;
    case ckpt::MatchFinding::Deprecated:
      emitWarning(loc) << "[DEPRECATED-KV-SCALE] " << finding.message;
      break;
    case ckpt::MatchFinding::ZeroPoint:
      emitWarning(loc) << "[ZERO-POINT] " << finding.message;
      break;
    case ckpt::MatchFinding::PerChannel:
      emitWarning(loc) << "[PER-CHANNEL-KV-SCALE] " << finding.message;
      break;
    case ckpt::MatchFinding::SharedKvScale:
      emitRemark(loc) << "[SHARED-KV-SCALE] " << finding.message;
      break;
    case ckpt::MatchFinding::Unmatched:
      emitWarning(loc) << "[UNMATCHED-SCALE] " << finding.message;
      break;
    case ckpt::MatchFinding::Redundant:
      emitRemark(loc) << "[REDUNDANT-SCALE] " << finding.message;
      break;
    }
  }
  if (failed)
    signalPassFailure();
}
