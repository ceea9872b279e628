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

#include "kvq/Checkpoint/ScaleNames.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringMap.h"

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
