//===- LayerReport.cpp - per-layer table of scales ------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/Transforms/Passes.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/ToolOutputFile.h"

#include <algorithm>

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQLAYERREPORT
#include "kvq/Dialect/KVQ/Transforms/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
/// One scale cell: its value and how it came about.
struct Cell {
  std::string value; // "0.05", "1", "0.1..0.4 [8 heads]", "-" (absent)
  std::string how;   // a rule name, or "raw" / "absent" before folding
  std::optional<double> number; // for per-head scales, the max over heads
  bool doubled = false;         // the FNUZ x2 correction was applied
  SmallVector<double> heads;    // per-head values; empty for one value
};
} // namespace

static std::string formatDouble(double v) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << llvm::format("%.9g", v);
  return s;
}

/// A per-head cell: "min..max [n heads]", the number its max (the
/// per-layer value vLLM gives code that reads one scale).
static Cell perHeadCell(SmallVector<double> heads, std::string how,
                        bool doubled) {
  auto [min, max] = std::minmax_element(heads.begin(), heads.end());
  std::string text = formatDouble(*min) + ".." + formatDouble(*max) + " [" +
                     std::to_string(heads.size()) + " heads]";
  double number = *max;
  return {std::move(text), std::move(how), number, doubled, std::move(heads)};
}

static Cell rawCell(Attribute scale) {
  if (!scale)
    return {"-", "absent", std::nullopt};
  SmallVector<double> values = getScaleValues(scale);
  if (values.size() == 1)
    return {formatDouble(values[0]), "raw", values[0]};
  return perHeadCell(std::move(values), "raw", /*doubled=*/false);
}

/// `doubled`: the FNUZ x2 correction applied to this value.
static Cell resolvedCell(ResolvedScalesAttr resolved, ScaleKind kind) {
  std::string rule = stringifyScaleRule(resolved.getRule(kind)).str();
  bool doubled = resolved.isDoubled(kind);
  if (resolved.isPerHead(kind)) {
    ArrayRef<float> heads = resolved.getHeads(kind);
    return perHeadCell(SmallVector<double>(heads.begin(), heads.end()), rule,
                       doubled);
  }
  double d = resolved.getValue(kind).convertToFloat();
  return {formatDouble(d), rule, d, doubled};
}

/// The cells of `layer`, in kScaleKinds order.
static SmallVector<Cell, 4> cellsOf(LayerOp layer) {
  SmallVector<Cell, 4> cells;
  ResolvedScalesAttr resolved = layer.getResolvedScalesAttr();
  ScalesAttr raw = layer.getCheckpointScalesAttr();
  for (ScaleKind kind : kScaleKinds) {
    if (resolved)
      cells.push_back(resolvedCell(resolved, kind));
    else
      cells.push_back(rawCell(raw ? raw.getScale(kind) : Attribute()));
  }
  return cells;
}

void mlir::kvq::printLayerReport(ModuleOp module, llvm::raw_ostream &os,
                                 bool json) {
  SmallVector<LayerOp> layers(module.getOps<LayerOp>());
  if (json) {
    llvm::json::Array rows;
    for (LayerOp layer : layers) {
      llvm::json::Object row{
          {"layer", layer.getSymName()},
          {"prefix", layer.getCheckpointPrefix()},
          {"kv_cache_dtype", stringifyKVCacheDtype(layer.getKvCacheDtype())},
          {"calculate_kv_scales", layer.getCalculateKvScales()},
          {"resolved", bool(layer.getResolvedScalesAttr())}};
      for (auto [kind, cell] : llvm::zip(kScaleKinds, cellsOf(layer))) {
        llvm::json::Object scale{{"rule", cell.how}, {"doubled", cell.doubled}};
        if (cell.number)
          scale["value"] = *cell.number;
        else
          scale["value"] = cell.value;
        if (!cell.heads.empty()) {
          // Every head's value, and the range the table shows.
          scale["heads"] = llvm::json::Array(cell.heads);
          scale["min"] = *llvm::min_element(cell.heads);
          scale["max"] = *llvm::max_element(cell.heads);
        }
        row[stringifyScaleKind(kind).str()] = std::move(scale);
      }
      rows.push_back(std::move(row));
    }
    os << llvm::formatv("{0:2}", llvm::json::Value(std::move(rows))) << "\n";
    return;
  }

  // Aligned text table.
  SmallVector<SmallVector<std::string>> table;
  SmallVector<std::string> header = {"layer", "prefix", "cache"};
  for (ScaleKind kind : kScaleKinds) // K, V, Q, P
    header.push_back(stringifyScaleKind(kind).take_front().upper());
  table.push_back(std::move(header));
  for (LayerOp layer : layers) {
    SmallVector<std::string> row = {
        layer.getSymName().str(), layer.getCheckpointPrefix().str(),
        stringifyKVCacheDtype(layer.getKvCacheDtype()).str() +
            (layer.getCalculateKvScales() ? "+calc" : "")};
    for (const Cell &cell : cellsOf(layer))
      row.push_back(cell.value + " (" + cell.how + (cell.doubled ? " x2" : "") +
                    ")");
    table.push_back(std::move(row));
  }
  SmallVector<size_t> widths(table.front().size(), 0);
  for (auto &row : table)
    for (auto [i, cell] : llvm::enumerate(row))
      widths[i] = std::max(widths[i], cell.size());
  for (auto &row : table) {
    for (auto [i, cell] : llvm::enumerate(row)) {
      os << cell;
      if (i + 1 != row.size())
        os.indent(widths[i] - cell.size() + 2);
    }
    os << "\n";
  }
}

namespace {
struct KVQLayerReportPass final
    : mlir::kvq::impl::KVQLayerReportBase<KVQLayerReportPass> {
  using Base::Base;

  void runOnOperation() override {
    if (format != "table" && format != "json") {
      emitError(getOperation().getLoc())
          << "kvq-layer-report: unknown format '" << format
          << "', expected 'table' or 'json'";
      return signalPassFailure();
    }
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file = openOutputFile(output, &error);
    if (!file) {
      emitError(getOperation().getLoc())
          << "kvq-layer-report: cannot open '" << output << "': " << error;
      return signalPassFailure();
    }
    printLayerReport(getOperation(), file->os(), format == "json");
    file->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
