//===- KVQAttrs.cpp - kvq attributes ----------------------------------------===//
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

#include "kvq/Dialect/KVQ/IR/KVQEnums.cpp.inc"

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
           stringifyKVCacheDtype(dtype).str() + "', got " +
           describe(cacheType);
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

LogicalResult
ScalesAttr::verify(function_ref<InFlightDiagnostic()> emitError, Attribute q,
                   Attribute k, Attribute v, Attribute prob) {
  for (auto [name, scale] : {std::pair<StringRef, Attribute>{"q", q},
                             {"k", k},
                             {"v", v},
                             {"prob", prob}}) {
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

//===----------------------------------------------------------------------===//
// ResolvedScalesAttr
//===----------------------------------------------------------------------===//

LogicalResult ResolvedScalesAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, APFloat k, ScaleRule kRule,
    APFloat v, ScaleRule vRule, APFloat q, ScaleRule qRule, APFloat prob,
    ScaleRule probRule, bool fnuz) {
  for (auto [name, value] : {std::pair<StringRef, APFloat *>{"k", &k},
                             {"v", &v},
                             {"q", &q},
                             {"prob", &prob}}) {
    if (&value->getSemantics() != &APFloat::IEEEsingle())
      return emitError() << "resolved scale '" << name << "' must be an f32";
    if (!value->isFiniteNonZero() || value->isNegative()) {
      SmallString<16> str;
      value->toString(str);
      return emitError() << "resolved scale '" << name
                         << "' must be finite and positive, got " << str;
    }
  }
  return success();
}

Attribute ResolvedScalesAttr::parse(AsmParser &parser, Type) {
  // `<` `k` `=` float rule `,` `v` ... `,` `prob` `=` float rule `>`
  SmallVector<APFloat, 4> values;
  SmallVector<ScaleRule, 4> rules;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseLess())
    return {};
  for (StringRef name : {"k", "v", "q", "prob"}) {
    if (name != "k" && parser.parseComma())
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
      values[2], rules[2], values[3], rules[3], fnuz);
}

void ResolvedScalesAttr::print(AsmPrinter &printer) const {
  auto field = [&](StringRef name, const APFloat &value, ScaleRule rule) {
    printer << name << " = ";
    printer.printFloat(value);
    printer << " " << stringifyScaleRule(rule);
  };
  printer << "<";
  field("k", getK(), getKRule());
  printer << ", ";
  field("v", getV(), getVRule());
  printer << ", ";
  field("q", getQ(), getQRule());
  printer << ", ";
  field("prob", getProb(), getProbRule());
  if (getFnuz())
    printer << ", fnuz";
  printer << ">";
}
