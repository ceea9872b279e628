//===- FoldScales.cpp - kvq-fold-scales pass --------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// A thin adapter over the mlir::kvq::scales library: reads each layer's raw
// checkpoint scales, runs the rules, turns the findings into diagnostics
// located at the layer, and replaces the raw scales by resolved ones.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/Transforms/Passes.h"
#include "kvq/ScaleRules/ScaleRules.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQFOLDSCALES
#include "kvq/Dialect/KVQ/Transforms/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;
namespace rules = mlir::kvq::scales;

//===----------------------------------------------------------------------===//
// Target: FNUZ or OCP
//===----------------------------------------------------------------------===//

/// AMD chips whose fp8 is FNUZ (MI300 class). gfx950 and gfx12 are OCP.
static bool isFnuzChip(StringRef chip) {
  return chip == "gfx940" || chip == "gfx941" || chip == "gfx942";
}

FailureOr<bool> mlir::kvq::detectFnuzTarget(ModuleOp module) {
  // The first target seen decides; a later one that disagrees is an error.
  std::optional<std::pair<bool, Attribute>> decision;
  WalkResult result = module.walk([&](gpu::GPUModuleOp gpuModule) {
    ArrayAttr targets = gpuModule.getTargetsAttr();
    if (!targets)
      return WalkResult::advance();
    for (Attribute target : targets) {
      bool fnuz = false;
      if (auto rocdl = dyn_cast<ROCDL::ROCDLTargetAttr>(target))
        fnuz = isFnuzChip(rocdl.getChip());
      else if (!isa<NVVM::NVVMTargetAttr>(target))
        continue;
      if (!decision) {
        decision = {fnuz, target};
        continue;
      }
      if (decision->first != fnuz) {
        gpuModule.emitError()
            << "[TARGET-CONFLICT] targets disagree on the fp8 format: "
            << decision->second << " is " << (decision->first ? "FNUZ" : "OCP")
            << " but " << target << " is " << (fnuz ? "FNUZ" : "OCP")
            << "; compile them separately or set "
               "kvq-fold-scales{fp8-format=...}";
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  return decision ? decision->first : false;
}

static bool isFnuzType(Type type) {
  return isa<Float8E4M3FNUZType, Float8E5M2FNUZType>(type);
}
static bool isOcpFp8Type(Type type) {
  return isa<Float8E4M3FNType, Float8E5M2Type>(type);
}

/// Cache element types must match the fp8 format of the target: the same
/// byte is worth 2x more read as FN than as FNUZ.
static LogicalResult checkCacheFormats(ModuleOp module, bool fnuz) {
  bool ok = true;
  module.walk([&](Operation *op) {
    Value cache;
    FlatSymbolRefAttr layer;
    if (auto store = dyn_cast<CacheStoreOp>(op)) {
      cache = store.getKeyCache();
      layer = store.getLayerAttr();
    } else if (auto load = dyn_cast<CacheLoadOp>(op)) {
      cache = load.getKeyCache();
      layer = load.getLayerAttr();
    } else {
      return;
    }
    Type element = cast<MemRefType>(cache.getType()).getElementType();
    if (fnuz ? !isOcpFp8Type(element) : !isFnuzType(element))
      return;
    ok = false;
    op->emitError() << "[FP8-FORMAT-MISMATCH] cache element type " << element
                    << " is " << (fnuz ? "OCP" : "FNUZ")
                    << " but the target's fp8 format is "
                    << (fnuz ? "FNUZ" : "OCP") << " (layer " << layer
                    << "); the same bytes would be read as values 2x apart";
  });
  return success(ok);
}

//===----------------------------------------------------------------------===//
// Conversions between the IR and the rules library
//===----------------------------------------------------------------------===//

static rules::CacheDtype toRules(KVCacheDtype dtype) {
  switch (dtype) {
  case KVCacheDtype::Auto:
    return rules::CacheDtype::Auto;
  case KVCacheDtype::Fp8:
    return rules::CacheDtype::Fp8;
  case KVCacheDtype::Fp8E4M3:
    return rules::CacheDtype::Fp8E4M3;
  case KVCacheDtype::Fp8E5M2:
    return rules::CacheDtype::Fp8E5M2;
  case KVCacheDtype::Int8:
    return rules::CacheDtype::Int8;
  }
  llvm_unreachable("unknown KVCacheDtype");
}

static ScaleRule fromRules(rules::Rule rule) {
  switch (rule) {
  case rules::Rule::Checkpoint:
    return ScaleRule::Checkpoint;
  case rules::Rule::Duplicated:
    return ScaleRule::Duplicated;
  case rules::Rule::Default:
    return ScaleRule::Default;
  case rules::Rule::NotQuantized:
    return ScaleRule::NotQuantized;
  case rules::Rule::Runtime:
    return ScaleRule::Runtime;
  case rules::Rule::KFallback:
    return ScaleRule::KFallback;
  }
  llvm_unreachable("unknown rule");
}

static rules::RawScale toRaw(Attribute scale) {
  if (!scale)
    return std::nullopt;
  SmallVector<double> values = getScaleValues(scale);
  return std::vector<double>(values.begin(), values.end());
}

namespace {
/// Per-module tallies for the summary remark.
struct Tally {
  unsigned folded = 0, defaulted = 0, duplicated = 0, doubled = 0,
           warned = 0, failed = 0;
};

struct KVQFoldScalesPass final
    : mlir::kvq::impl::KVQFoldScalesBase<KVQFoldScalesPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  LogicalResult parseOptions(rules::Options &options, ModuleOp module);
  /// Folds one layer; returns false if it had an error.
  bool foldLayer(LayerOp layer, const rules::Options &options, Tally &tally);
  void emitFinding(LayerOp layer, const rules::Finding &finding,
                   unsigned repeats);
  LogicalResult writeReports(ModuleOp module);

  /// warn-once: the first layer of each warning kind and how many repeat it.
  llvm::MapVector<rules::FindingKind,
                  std::tuple<LayerOp, rules::Finding, unsigned>>
      deferredWarnings;
};
} // namespace

LogicalResult KVQFoldScalesPass::parseOptions(rules::Options &options,
                                              ModuleOp module) {
  auto bad = [&](StringRef option, StringRef value, StringRef expected) {
    return emitError(module.getLoc())
           << "kvq-fold-scales: invalid " << option << " '" << value
           << "', expected " << expected;
  };
  if (missingScales == "error")
    options.strict = true;
  else if (missingScales != "warning")
    return bad("missing-scales", missingScales, "'warning' or 'error'");
  if (qFallback == "k")
    options.qFallback = rules::QFallback::K;
  else if (qFallback != "seed")
    return bad("q-fallback", qFallback, "'seed' or 'k'");
  std::optional<rules::ModelDtype> dtype = rules::parseModelDtype(modelDtype);
  if (!dtype)
    return bad("model-dtype", modelDtype, "'none', 'bf16' or 'f16'");
  options.modelDtype = *dtype;
  if (fp8Format == "fnuz") {
    options.fnuz = true;
  } else if (fp8Format == "auto") {
    FailureOr<bool> fnuz = detectFnuzTarget(module);
    if (failed(fnuz))
      return failure();
    options.fnuz = *fnuz;
  } else if (fp8Format != "ocp") {
    return bad("fp8-format", fp8Format, "'auto', 'ocp' or 'fnuz'");
  }
  return success();
}

void KVQFoldScalesPass::emitFinding(LayerOp layer,
                                    const rules::Finding &finding,
                                    unsigned repeats) {
  std::string text = ("[" + rules::getFindingKey(finding.kind) + "] " +
                      finding.message)
                         .str();
  if (repeats > 1)
    text += " (reported once; " + std::to_string(repeats - 1) +
            " more layer(s) have it)";
  InFlightDiagnostic diag = finding.severity == rules::Severity::Error
                                ? emitError(layer.getLoc(), text)
                                : emitWarning(layer.getLoc(), text);
  if (!finding.field.empty())
    if (StringRef tensor = layer.getCheckpointTensor(finding.field);
        !tensor.empty())
      diag.attachNote() << "checkpoint tensor '" << tensor << "'";
  if (!finding.note.empty())
    diag.attachNote() << finding.note;
}

bool KVQFoldScalesPass::foldLayer(LayerOp layer,
                                  const rules::Options &options,
                                  Tally &tally) {
  rules::RawScales raw;
  if (ScalesAttr scales = layer.getCheckpointScalesAttr()) {
    raw.q = toRaw(scales.getQ());
    raw.k = toRaw(scales.getK());
    raw.v = toRaw(scales.getV());
    raw.prob = toRaw(scales.getProb());
  }
  rules::Result result =
      rules::foldScales(raw, toRules(layer.getKvCacheDtype()),
                        layer.getCalculateKvScales(), options);

  bool warned = false;
  for (const rules::Finding &finding : result.findings) {
    if (finding.severity == rules::Severity::Warning) {
      warned = true;
      if (warnOnce) {
        auto [it, inserted] = deferredWarnings.insert(
            {finding.kind, std::make_tuple(layer, finding, 0u)});
        ++std::get<2>(it->second);
        continue;
      }
    }
    emitFinding(layer, finding, /*repeats=*/1);
  }
  tally.warned += warned;
  if (result.failed())
    return false;

  // The kernels use f32 scales; every final value must be a finite,
  // positive f32 (an f64 checkpoint value may round, or overflow to inf).
  SmallVector<APFloat, 4> values;
  bool ok = true;
  for (auto [name, scale] :
       {std::pair<StringRef, rules::FinalScale *>{"k", &result.k},
        {"v", &result.v},
        {"q", &result.q},
        {"prob", &result.prob}}) {
    APFloat value(scale->value);
    bool lost;
    value.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
    if (!value.isFiniteNonZero() || value.isNegative()) {
      InFlightDiagnostic diag =
          emitError(layer.getLoc())
          << "[SCALE-NOT-FINITE] final " << name << " scale "
          << rules::formatScale(scale->value)
          << " is not a finite positive f32; kernels cannot use it";
      if (StringRef tensor = layer.getCheckpointTensor(name); !tensor.empty())
        diag.attachNote() << "checkpoint tensor '" << tensor << "'";
      ok = false;
    }
    values.push_back(value);
    tally.doubled += scale->doubled;
  }
  if (!ok)
    return false;

  layer.setResolvedScalesAttr(ResolvedScalesAttr::get(
      layer.getContext(), values[0], fromRules(result.k.rule), values[1],
      fromRules(result.v.rule), values[2], fromRules(result.q.rule),
      values[3], fromRules(result.prob.rule), options.fnuz));
  layer.setCalculateKvScales(result.calculateKvScales);
  layer.removeCheckpointScalesAttr();
  layer.removeCheckpointTensorsAttr();

  ++tally.folded;
  tally.defaulted += result.k.rule == rules::Rule::Default;
  tally.duplicated += result.v.rule == rules::Rule::Duplicated;
  return true;
}

LogicalResult KVQFoldScalesPass::writeReports(ModuleOp module) {
  for (auto [path, json] :
       {std::pair<StringRef, bool>{report, false}, {reportJson, true}}) {
    if (path.empty())
      continue;
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file = openOutputFile(path, &error);
    if (!file)
      return emitError(module.getLoc())
             << "kvq-fold-scales: cannot write report '" << path
             << "': " << error;
    printLayerReport(module, file->os(), json);
    file->keep();
  }
  return success();
}

void KVQFoldScalesPass::runOnOperation() {
  ModuleOp module = getOperation();
  rules::Options options;
  if (failed(parseOptions(options, module)) ||
      failed(checkCacheFormats(module, options.fnuz)))
    return signalPassFailure();

  Tally tally;
  deferredWarnings.clear();
  for (LayerOp layer : module.getOps<LayerOp>()) {
    if (layer.getResolvedScalesAttr())
      continue;
    if (!foldLayer(layer, options, tally))
      ++tally.failed;
  }
  for (auto &[kind, entry] : deferredWarnings)
    emitFinding(std::get<0>(entry), std::get<1>(entry), std::get<2>(entry));

  if (summary)
    emitRemark(module.getLoc())
        << "kvq-fold-scales: " << tally.folded << " layer(s) folded, "
        << tally.defaulted << " defaulted, " << tally.duplicated
        << " duplicated, " << tally.doubled << " scale(s) doubled for FNUZ, "
        << tally.warned << " warned, " << tally.failed << " failed ("
        << (options.fnuz ? "FNUZ" : "OCP") << " fp8 target)";

  if (tally.failed || failed(writeReports(module)))
    return signalPassFailure();
}
