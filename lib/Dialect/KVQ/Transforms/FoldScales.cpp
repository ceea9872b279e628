//===- FoldScales.cpp - kvq-fold-scales pass ------------------------------===//
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
#include "kvq/Target/ModuleTarget.h"

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
  // Every op that reads or writes a layer's cache: the cache ops and the
  // attention op.
  module.walk([&](Operation *op) {
    Type element;
    FlatSymbolRefAttr layer;
    if (auto cacheOp = dyn_cast<CacheOpInterface>(op)) {
      element = cacheOp.getCacheType().getElementType();
      layer = cacheOp.getLayerAttr();
    } else if (auto attention = dyn_cast<PagedAttentionOp>(op)) {
      element =
          cast<ShapedType>(attention.getKeyCache().getType()).getElementType();
      layer = attention.getLayerAttr();
    } else {
      return;
    }
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

static rules::RawScale toRaw(Attribute scale) {
  if (!scale)
    return std::nullopt;
  SmallVector<double> values = getScaleValues(scale);
  return std::vector<double>(values.begin(), values.end());
}

/// The head counts the IR states for each layer: the KV-head dim (2) of the
/// caches of its cache ops and attention ops, the query-head dim (1) of its
/// attention ops. The first static size wins (the ops' verifiers keep the
/// caches of one op alike; ops that disagree about a layer are not this
/// pass's concern). A layer no op names with a static size has unknown
/// counts: its per-head scales then fix the KV head count.
static llvm::DenseMap<StringAttr, rules::HeadCounts>
collectHeadCounts(ModuleOp module) {
  llvm::DenseMap<StringAttr, rules::HeadCounts> counts;
  auto take = [](std::optional<unsigned> &slot, Type type, unsigned dim) {
    auto shaped = dyn_cast<ShapedType>(type);
    if (slot || !shaped || !shaped.hasRank() || shaped.getRank() <= dim ||
        shaped.isDynamicDim(dim))
      return;
    slot = shaped.getDimSize(dim);
  };
  module.walk([&](Operation *op) {
    if (auto cacheOp = dyn_cast<CacheOpInterface>(op)) {
      take(counts[cacheOp.getLayerAttr().getAttr()].numKvHeads,
           cacheOp.getCacheType(), 2);
    } else if (auto attention = dyn_cast<PagedAttentionOp>(op)) {
      rules::HeadCounts &layer = counts[attention.getLayerAttr().getAttr()];
      take(layer.numKvHeads, attention.getKeyCache().getType(), 2);
      take(layer.numHeads, attention.getQuery().getType(), 1);
    }
  });
  return counts;
}

namespace {
/// Per-module tallies for the summary remark.
struct Tally {
  unsigned folded = 0, defaulted = 0, duplicated = 0, doubled = 0, warned = 0,
           failed = 0;
};

struct KVQFoldScalesPass final
    : mlir::kvq::impl::KVQFoldScalesBase<KVQFoldScalesPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  LogicalResult parseOptions(rules::Options &options, ModuleOp module);
  /// Folds one layer; returns false if it had an error.
  bool foldLayer(LayerOp layer, const rules::Options &options,
                 const rules::HeadCounts &counts, Tally &tally);
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
  if (method != "auto" && method != "base" && method != "compressed-tensors")
    return bad("method", method, "'auto', 'base' or 'compressed-tensors'");
  std::optional<rules::CtFnuz> ctMode = rules::parseCtFnuz(ctFnuz);
  if (!ctMode)
    return bad("ct-fnuz", ctFnuz, "'double' or 'vllm'");
  options.ctFnuz = *ctMode;
  const unsigned size = tpSize, rank = tpRank;
  if (size == 0)
    return bad("tp-size", "0", "at least 1");
  if (rank >= size)
    return emitError(module.getLoc())
           << "kvq-fold-scales: invalid tp-rank '" << rank
           << "', expected 0 to " << size - 1 << " for tp-size " << size;
  options.tpSize = size;
  options.tpRank = rank;
  if (fp8Format != "auto" && fp8Format != "ocp" && fp8Format != "fnuz")
    return bad("fp8-format", fp8Format, "'auto', 'ocp' or 'fnuz'");
  FailureOr<std::optional<StatedTarget>> stated = lookupModuleTarget(module);
  if (failed(stated))
    return failure();
  std::optional<bool> targetFnuz =
      *stated ? (*stated)->target.getFp8Format() : std::nullopt;
  if (fp8Format == "auto") {
    options.fnuz = targetFnuz.value_or(false);
    return success();
  }
  options.fnuz = fp8Format == "fnuz";
  if (targetFnuz && *targetFnuz != options.fnuz)
    return (*stated)->op->emitError()
           << "kvq-fold-scales: fp8-format=" << fp8Format
           << " contradicts the module's target " << (*stated)->attr
           << ", whose fp8 format is " << (*targetFnuz ? "FNUZ" : "OCP");
  return success();
}

void KVQFoldScalesPass::emitFinding(LayerOp layer,
                                    const rules::Finding &finding,
                                    unsigned repeats) {
  std::string text =
      ("[" + rules::getFindingKey(finding.kind) + "] " + finding.message).str();
  if (repeats > 1)
    text += " (reported once; " + std::to_string(repeats - 1) +
            " more layer(s) have it)";
  InFlightDiagnostic diag = finding.severity == rules::Severity::Error
                                ? emitError(layer.getLoc(), text)
                                : emitWarning(layer.getLoc(), text);
  if (finding.field)
    if (StringRef tensor = layer.getCheckpointTensor(*finding.field);
        !tensor.empty())
      diag.attachNote() << "checkpoint tensor '" << tensor << "'";
  if (!finding.note.empty())
    diag.attachNote() << finding.note;
}

bool KVQFoldScalesPass::foldLayer(LayerOp layer,
                                  const rules::Options &moduleOptions,
                                  const rules::HeadCounts &counts,
                                  Tally &tally) {
  rules::Options options = moduleOptions;
  if (method == "auto")
    options.method = layer.getScaleMethodOrBase();
  else
    options.method =
        method == "base" ? ScaleMethod::Base : ScaleMethod::CompressedTensors;
  rules::RawScales raw;
  if (ScalesAttr scales = layer.getCheckpointScalesAttr())
    for (ScaleKind kind : kScaleKinds)
      raw[kind] = toRaw(scales.getScale(kind));
  rules::Result result =
      rules::foldScales(raw, layer.getKvCacheDtype(),
                        layer.getCalculateKvScales(), options, counts);

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
  SmallVector<float, 4> values;
  SmallVector<SmallVector<float>, 4> heads;
  SmallVector<ScaleKind> doubled;
  bool ok = true;
  auto toF32 = [&](ScaleKind kind, double raw,
                   std::optional<size_t> head) -> float {
    APFloat value(raw);
    bool lost;
    value.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven, &lost);
    if (!value.isFiniteNonZero() || value.isNegative()) {
      InFlightDiagnostic diag = emitError(layer.getLoc())
                                << "[SCALE-NOT-FINITE] final "
                                << stringifyScaleKind(kind) << " scale ";
      if (head)
        diag << "of head " << *head << " ";
      diag << rules::formatScale(raw)
           << " is not a finite positive f32; kernels cannot use it";
      if (StringRef tensor = layer.getCheckpointTensor(kind); !tensor.empty())
        diag.attachNote() << "checkpoint tensor '" << tensor << "'";
      ok = false;
    }
    return value.convertToFloat();
  };
  for (ScaleKind kind : kScaleKinds) {
    const rules::FinalScale &scale = result[kind];
    SmallVector<float> &fieldHeads = heads.emplace_back();
    // A per-head scale reports each bad head, and its max only through them.
    if (scale.heads.empty())
      values.push_back(toF32(kind, scale.value, std::nullopt));
    else
      values.push_back(1.0f);
    for (auto [head, value] : llvm::enumerate(scale.heads))
      fieldHeads.push_back(toF32(kind, value, head));
    if (scale.doubled)
      doubled.push_back(kind);
  }
  if (!ok)
    return false;
  tally.doubled += doubled.size();

  layer.setResolvedScalesAttr(ResolvedScalesAttr::getPerHead(
      layer.getContext(), values[0], result.k.rule, heads[0], values[1],
      result.v.rule, heads[1], values[2], result.q.rule, heads[2], values[3],
      result.prob.rule, options.fnuz,
      ResolvedScalesAttr::doubledMask(doubled)));
  layer.setCalculateKvScales(result.calculateKvScales);
  layer.removeCheckpointScalesAttr();
  layer.removeCheckpointTensorsAttr();
  // The folded layer states the rules that produced its resolved scales
  // (no clause for the base rules), also when the option overrode them.
  if (options.method == ScaleMethod::Base)
    layer.removeScaleMethodAttr();
  else
    layer.setScaleMethod(options.method);

  ++tally.folded;
  tally.defaulted += result.k.rule == ScaleRule::Default;
  tally.duplicated += result.v.rule == ScaleRule::Duplicated;
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
  llvm::DenseMap<StringAttr, rules::HeadCounts> counts =
      collectHeadCounts(module);
  for (LayerOp layer : module.getOps<LayerOp>()) {
    if (layer.getResolvedScalesAttr())
      continue;
    if (!foldLayer(layer, options, counts.lookup(layer.getSymNameAttr()),
                   tally))
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
