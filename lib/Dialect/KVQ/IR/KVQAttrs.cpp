//===- KVQAttrs.cpp - kvq attributes --------------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQAttrs.h"
#include "kvq/Dialect/KVQ/IR/KVQDialect.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/TypeSwitch.h"

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

LogicalResult ResolvedScalesAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, APFloat k, ScaleRule kRule,
    APFloat v, ScaleRule vRule, APFloat q, ScaleRule qRule, APFloat prob,
    ScaleRule probRule, bool fnuz, unsigned doubled) {
  const APFloat *values[] = {&k, &v, &q, &prob};
  for (ScaleKind kind : kScaleKinds) {
    const APFloat *value = values[static_cast<unsigned>(kind)];
    StringRef name = stringifyScaleKind(kind);
    if (&value->getSemantics() != &APFloat::IEEEsingle())
      return emitError() << "resolved scale '" << name << "' must be an f32";
    if (!value->isFiniteNonZero() || value->isNegative()) {
      SmallString<16> str;
      value->toString(str);
      return emitError() << "resolved scale '" << name
                         << "' must be finite and positive, got " << str;
    }
    if (!fnuz && (doubled >> static_cast<unsigned>(kind) & 1))
      return emitError() << "resolved scale '" << name
                         << "' is marked doubled, but the scales were not "
                            "folded for an FNUZ target (no 'fnuz')";
  }
  if (doubled >> std::size(kScaleKinds))
    return emitError() << "doubled mask " << doubled
                       << " names no scale (expected bits 0 to 3)";
  return success();
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
  // `<` `k` `=` float rule [`doubled`] `,` `v` ... `prob` ... [`,` `fnuz`] `>`
  SmallVector<APFloat, 4> values;
  SmallVector<ScaleRule, 4> rules;
  unsigned doubled = 0;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess())
    return {};
  for (ScaleKind kind : kScaleKinds) {
    StringRef name = stringifyScaleKind(kind);
    if (kind != kScaleKinds[0] && parser.parseComma())
      return {};
    APFloat value(APFloat::IEEEsingle());
    StringRef ruleName;
    if (parser.parseKeyword(name) || parser.parseEqual() ||
        parser.parseFloat(APFloat::IEEEsingle(), value) ||
        parser.parseKeyword(&ruleName))
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
      values[2], rules[2], values[3], rules[3], fnuz, doubled);
}

void ResolvedScalesAttr::print(AsmPrinter &printer) const {
  printer << "<";
  for (ScaleKind kind : kScaleKinds) {
    if (kind != kScaleKinds[0])
      printer << ", ";
    printer << stringifyScaleKind(kind) << " = ";
    printer.printFloat(getValue(kind));
    printer << " " << stringifyScaleRule(getRule(kind));
    if (isDoubled(kind))
      printer << " doubled";
  }
  if (getFnuz())
    printer << ", fnuz";
  printer << ">";
}
