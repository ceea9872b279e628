//===- KVQAttrs.cpp - kvq attributes --------------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQAttrs.h"
#include "kvq/Dialect/KVQ/IR/KVQDialect.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kvq;

#define GET_ATTRDEF_CLASSES
#include "kvq/Dialect/KVQ/IR/KVQAttrs.cpp.inc"

void KVQDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "kvq/Dialect/KVQ/IR/KVQAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

std::optional<std::string>
mlir::kvq::checkCacheElementType(KVCacheDtype dtype, Type cacheType,
                                 Type activationType) {
  auto describe = [](Type t) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << t;
    return s;
  };
  switch (dtype) {
  case KVCacheDtype::Auto:
    if (cacheType == activationType)
      return std::nullopt;
    return "expects the cache element type to be the activation type " +
           describe(activationType) + " for kv cache dtype 'auto', got " +
           describe(cacheType);
  case KVCacheDtype::Fp8:
  case KVCacheDtype::Fp8E4M3:
    if (isa<Float8E4M3FNType, Float8E4M3FNUZType>(cacheType))
      return std::nullopt;
    return "expects cache element type f8E4M3FN or f8E4M3FNUZ for kv cache "
           "dtype '" +
           stringifyKVCacheDtype(dtype).str() + "', got " + describe(cacheType);
  case KVCacheDtype::Fp8E5M2:
    if (isa<Float8E5M2Type, Float8E5M2FNUZType>(cacheType))
      return std::nullopt;
    return "expects cache element type f8E5M2 or f8E5M2FNUZ for kv cache "
           "dtype 'fp8_e5m2', got " +
           describe(cacheType);
  case KVCacheDtype::Int8:
    if (cacheType.isSignlessInteger(8))
      return std::nullopt;
    return "expects cache element type i8 for kv cache dtype 'int8', got " +
           describe(cacheType);
  }
  llvm_unreachable("unknown KVCacheDtype");
}

SmallVector<double> mlir::kvq::getScaleValues(Attribute scale) {
  SmallVector<double> values;
  if (auto f = dyn_cast_if_present<FloatAttr>(scale)) {
    values.push_back(f.getValueAsDouble());
  } else if (auto d = dyn_cast_if_present<DenseFPElementsAttr>(scale)) {
    for (APFloat v : d.getValues<APFloat>()) {
      bool lost;
      v.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
      values.push_back(v.convertToDouble());
    }
  }
  return values;
}

//===----------------------------------------------------------------------===//
// ScalesAttr
//===----------------------------------------------------------------------===//

LogicalResult ScalesAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 Attribute k, Attribute v, Attribute q,
                                 Attribute prob) {
  Attribute fields[] = {k, v, q, prob};
  for (ScaleKind kind : kScaleKinds) {
    Attribute scale = fields[static_cast<unsigned>(kind)];
    StringRef name = stringifyScaleKind(kind);
    if (!scale)
      continue;
    if (isa<FloatAttr>(scale))
      continue;
    auto dense = dyn_cast<DenseElementsAttr>(scale);
    if (!dense)
      return emitError() << "scale '" << name
                         << "' must be a float or a dense float tensor, got "
                         << scale;
    auto type = dense.getType();
    if (!isa<FloatType>(type.getElementType()))
      return emitError() << "scale '" << name
                         << "' must have a float element type, got "
                         << type.getElementType();
    if (type.getNumElements() == 0)
      return emitError() << "scale '" << name
                         << "' must have at least one element, got " << type;
    if (type.getRank() > 3)
      return emitError() << "scale '" << name
                         << "' must have rank at most 3 (per-tensor or "
                            "per-head), got rank "
                         << type.getRank();
  }
  return success();
}

Attribute ScalesAttr::getScale(ScaleKind kind) const {
  Attribute k = getK(), v = getV(), q = getQ(), prob = getProb();
  return selectScale(kind, k, v, q, prob);
}

//===----------------------------------------------------------------------===//
// ResolvedScalesAttr
//===----------------------------------------------------------------------===//

static std::string formatAPFloat(const APFloat &value) {
  SmallString<16> str;
  value.toString(str);
  return str.str().str();
}

/// The per-head values of field `name`: at least one, each finite and
/// positive, and `value` (the field's single value) their max.
static LogicalResult verifyHeads(function_ref<InFlightDiagnostic()> emitError,
                                 StringRef name, const APFloat &value,
                                 DenseF32ArrayAttr heads) {
  if (heads.empty())
    return emitError() << "per-head resolved scale '" << name
                       << "' must have at least one head";
  float max = 0.0f;
  for (auto [head, headValue] : llvm::enumerate(heads.asArrayRef())) {
    APFloat apValue(headValue);
    if (!apValue.isFiniteNonZero() || apValue.isNegative())
      return emitError() << "resolved scale '" << name << "' of head " << head
                         << " must be finite and positive, got "
                         << formatAPFloat(apValue);
    max = std::max(max, headValue);
  }
  if (&value.getSemantics() != &APFloat::IEEEsingle() ||
      value.convertToFloat() != max)
    return emitError() << "resolved scale '" << name << "' is "
                       << formatAPFloat(value)
                       << ", but the value of a per-head field must be the "
                          "max over its heads, "
                       << formatAPFloat(APFloat(max));
  return success();
}

LogicalResult ResolvedScalesAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, APFloat k, ScaleRule kRule,
    APFloat v, ScaleRule vRule, APFloat q, ScaleRule qRule, APFloat prob,
    ScaleRule probRule, bool fnuz, unsigned doubled, DenseF32ArrayAttr kHeads,
    DenseF32ArrayAttr vHeads, DenseF32ArrayAttr qHeads) {
  const APFloat *values[] = {&k, &v, &q, &prob};
  DenseF32ArrayAttr heads[] = {kHeads, vHeads, qHeads, {}};
  for (ScaleKind kind : kScaleKinds) {
    const APFloat *value = values[static_cast<unsigned>(kind)];
    StringRef name = stringifyScaleKind(kind);
    if (&value->getSemantics() != &APFloat::IEEEsingle())
      return emitError() << "resolved scale '" << name << "' must be an f32";
    // Per-head values first: a bad head also makes the max bad, and the
    // message should name the head.
    if (DenseF32ArrayAttr fieldHeads = heads[static_cast<unsigned>(kind)];
        fieldHeads && failed(verifyHeads(emitError, name, *value, fieldHeads)))
      return failure();
    if (!value->isFiniteNonZero() || value->isNegative())
      return emitError() << "resolved scale '" << name
                         << "' must be finite and positive, got "
                         << formatAPFloat(*value);
    if (!fnuz && (doubled >> static_cast<unsigned>(kind) & 1))
      return emitError() << "resolved scale '" << name
                         << "' is marked doubled, but the scales were not "
                            "folded for an FNUZ target (no 'fnuz')";
  }
  if (static_cast<bool>(kHeads) != static_cast<bool>(vHeads))

    return emitError() << "resolved scales 'k' and 'v' must be both per-head "
                          "or both per-tensor, got "
                       << (kHeads ? "per-head" : "per-tensor") << " 'k' and "
                       << (vHeads ? "per-head" : "per-tensor") << " 'v'";
  DenseF32ArrayAttr first;
  StringRef firstName;
  for (auto [name, fieldHeads] :
       {std::pair<StringRef, DenseF32ArrayAttr>{"k", kHeads},
        {"v", vHeads},
        {"q", qHeads}}) {
    if (!fieldHeads)
      continue;
    if (!first) {
      first = fieldHeads;
      firstName = name;
    } else if (fieldHeads.size() != first.size()) {
      return emitError() << "per-head resolved scale '" << name << "' has "
                         << fieldHeads.size() << " head(s), expected "
                         << first.size() << " like '" << firstName << "'";
    }
  }
  if (doubled >> std::size(kScaleKinds))
    return emitError() << "doubled mask " << doubled
                       << " names no scale (expected bits 0 to 3)";
  return success();
}

DenseF32ArrayAttr ResolvedScalesAttr::getHeadsAttr(ScaleKind kind) const {
  DenseF32ArrayAttr k = getKHeads(), v = getVHeads(), q = getQHeads(), prob;
  return selectScale(kind, k, v, q, prob);
}

ArrayRef<float> ResolvedScalesAttr::getHeads(ScaleKind kind) const {
  if (DenseF32ArrayAttr heads = getHeadsAttr(kind))
    return heads.asArrayRef();
  return {};
}

unsigned ResolvedScalesAttr::getNumHeads() const {
  for (ScaleKind kind : kScaleKinds)
    if (DenseF32ArrayAttr heads = getHeadsAttr(kind))
      return heads.size();
  return 0;
}

float ResolvedScalesAttr::getHeadValue(ScaleKind kind, unsigned head) const {
  if (DenseF32ArrayAttr heads = getHeadsAttr(kind))
    return heads[head];
  return getValue(kind).convertToFloat();
}

ResolvedScalesAttr ResolvedScalesAttr::getPerHead(
    MLIRContext *context, float k, ScaleRule kRule, ArrayRef<float> kHeads,
    float v, ScaleRule vRule, ArrayRef<float> vHeads, float q, ScaleRule qRule,
    ArrayRef<float> qHeads, float prob, ScaleRule probRule, bool fnuz,
    unsigned doubled) {
  auto field = [&](float &value, ArrayRef<float> heads) -> DenseF32ArrayAttr {
    if (heads.empty())
      return {};
    value = *llvm::max_element(heads);
    return DenseF32ArrayAttr::get(context, heads);
  };
  DenseF32ArrayAttr kAttr = field(k, kHeads), vAttr = field(v, vHeads),
                    qAttr = field(q, qHeads);
  return get(context, APFloat(k), kRule, APFloat(v), vRule, APFloat(q), qRule,
             APFloat(prob), probRule, fnuz, doubled, kAttr, vAttr, qAttr);
}

APFloat ResolvedScalesAttr::getValue(ScaleKind kind) const {
  APFloat k = getK(), v = getV(), q = getQ(), prob = getProb();
  return selectScale(kind, k, v, q, prob);
}

ScaleRule ResolvedScalesAttr::getRule(ScaleKind kind) const {
  ScaleRule k = getKRule(), v = getVRule(), q = getQRule(),
            prob = getProbRule();
  return selectScale(kind, k, v, q, prob);
}

unsigned ResolvedScalesAttr::doubledMask(ArrayRef<ScaleKind> kinds) {
  unsigned mask = 0;
  for (ScaleKind kind : kinds)
    mask |= 1u << static_cast<unsigned>(kind);
  return mask;
}

Attribute ResolvedScalesAttr::parse(AsmParser &parser, Type) {
  // `<` `k` `=` value rule [`doubled`] `,` `v` ... `prob` ... [`,` `fnuz`] `>`
  // where value is a float, or for k, v, q a list `[` float (`,` float)* `]`
  // of per-head values.
  SmallVector<APFloat, 4> values;
  SmallVector<ScaleRule, 4> rules;
  SmallVector<DenseF32ArrayAttr, 4> heads;
  unsigned doubled = 0;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess())
    return {};
  for (ScaleKind kind : kScaleKinds) {
    StringRef name = stringifyScaleKind(kind);
    if (kind != kScaleKinds[0] && parser.parseComma())
      return {};
    APFloat value(APFloat::IEEEsingle());
    DenseF32ArrayAttr fieldHeads;
    if (parser.parseKeyword(name) || parser.parseEqual())
      return {};
    SMLoc valueLoc = parser.getCurrentLocation();
    if (succeeded(parser.parseOptionalLSquare())) {
      if (kind == ScaleKind::Prob) {
        parser.emitError(valueLoc, "resolved scale 'prob' has no per-head "
                                   "form (one value for all heads)");
        return {};
      }
      SmallVector<float> headValues;
      auto parseHead = [&]() -> ParseResult {
        APFloat head(APFloat::IEEEsingle());
        if (parser.parseFloat(APFloat::IEEEsingle(), head))
          return failure();
        headValues.push_back(head.convertToFloat());
        return success();
      };
      if (parser.parseCommaSeparatedList(parseHead) || parser.parseRSquare())
        return {};
      // The single value of a per-head field is the max over its heads (NaN
      // if one is NaN, so that the verifier reports the head).
      float max = headValues.front();
      for (float head : headValues)
        max = std::isnan(max) || std::isnan(head) ? NAN : std::max(max, head);
      value = APFloat(max);
      fieldHeads = DenseF32ArrayAttr::get(parser.getContext(), headValues);
    } else if (parser.parseFloat(APFloat::IEEEsingle(), value)) {
      return {};
    }
    StringRef ruleName;
    if (parser.parseKeyword(&ruleName))
      return {};
    std::optional<ScaleRule> rule = symbolizeScaleRule(ruleName);
    if (!rule) {
      parser.emitError(parser.getCurrentLocation(), "unknown scale rule '")
          << ruleName << "'";
      return {};
    }
    if (succeeded(parser.parseOptionalKeyword("doubled")))
      doubled |= 1u << static_cast<unsigned>(kind);
    values.push_back(value);
    rules.push_back(*rule);
    heads.push_back(fieldHeads);
  }
  bool fnuz = false;
  if (succeeded(parser.parseOptionalComma())) {
    if (parser.parseKeyword("fnuz"))
      return {};
    fnuz = true;
  }
  if (parser.parseGreater())
    return {};
  return parser.getChecked<ResolvedScalesAttr>(
      loc, parser.getContext(), values[0], rules[0], values[1], rules[1],
      values[2], rules[2], values[3], rules[3], fnuz, doubled, heads[0],
      heads[1], heads[2]);
}

void ResolvedScalesAttr::print(AsmPrinter &printer) const {
  printer << "<";
  for (ScaleKind kind : kScaleKinds) {
    if (kind != kScaleKinds[0])
      printer << ", ";
    printer << stringifyScaleKind(kind) << " = ";
    if (DenseF32ArrayAttr heads = getHeadsAttr(kind)) {
      printer << "[";
      llvm::interleaveComma(heads.asArrayRef(), printer, [&](float head) {
        printer.printFloat(APFloat(head));
      });
      printer << "]";
    } else {
      printer.printFloat(getValue(kind));
    }
    printer << " " << stringifyScaleRule(getRule(kind));
    if (isDoubled(kind))
      printer << " doubled";
  }
  if (getFnuz())
    printer << ", fnuz";
  printer << ">";
}
