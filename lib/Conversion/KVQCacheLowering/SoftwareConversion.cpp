//===- SoftwareConversion.cpp - integer-only f32 <-> fp8 conversion -------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/SoftwareConversion.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/APFloat.h"

using namespace mlir;
using namespace mlir::kvq;

//===----------------------------------------------------------------------===//
// SmallFloatFormat
//===----------------------------------------------------------------------===//

std::optional<SmallFloatFormat> SmallFloatFormat::get(FloatType type) {
  const llvm::fltSemantics &sem = type.getFloatSemantics();
  using llvm::APFloat;
  using llvm::APFloatBase;
  unsigned width = APFloatBase::semanticsSizeInBits(sem);
  unsigned precision = APFloatBase::semanticsPrecision(sem);
  if (width > 16 || !APFloatBase::semanticsHasSignedRepr(sem) ||
      !APFloatBase::semanticsHasZero(sem) ||
      !APFloatBase::semanticsHasNaN(sem) || precision < 2)
    return std::nullopt;

  SmallFloatFormat f;
  f.bitWidth = width;
  f.mantBits = precision - 1;
  f.expBits = width - 1 - f.mantBits;
  // The smallest normal exponent is 1 - bias for every format with
  // subnormals (exponent field 1).
  f.bias = 1 - APFloatBase::semanticsMinExponent(sem);

  // Tell the three NaN spellings apart by the NaN APFloat builds.
  uint64_t nan = APFloat::getQNaN(sem).bitcastToAPInt().getZExtValue();
  if (APFloatBase::semanticsHasInf(sem))
    f.nan = NaNEncoding::IEEE;
  else if (nan == (1u << (width - 1)))
    f.nan = NaNEncoding::NegativeZero;
  else if (nan == (1u << (width - 1)) - 1)
    f.nan = NaNEncoding::AllOnes;
  else
    return std::nullopt;

  APFloat largest = APFloat::getLargest(sem);
  f.maxFiniteBits = largest.bitcastToAPInt().getZExtValue();
  bool losesInfo = false;
  largest.convert(APFloat::IEEEsingle(), APFloat::rmNearestTiesToEven,
                  &losesInfo);
  if (losesInfo)
    return std::nullopt;
  f.maxFiniteAsF32Bits = largest.bitcastToAPInt().getZExtValue();

  // The algorithms below need the format to fit f32's exponent range.
  if (f.expBits > 8 || f.mantBits > 23)
    return std::nullopt;
  return f;
}

uint32_t SmallFloatFormat::nanBits() const {
  if (nan == NaNEncoding::NegativeZero)
    return 1u << (bitWidth - 1);
  return (1u << (bitWidth - 1)) - 1;
}

//===----------------------------------------------------------------------===//
// Builders
//===----------------------------------------------------------------------===//

namespace {
/// Creates integer constants and ops of one shape (scalar or vector).
struct IntBuilder {
  OpBuilder &b;
  Location loc;
  Type shape; // the i32 (or vector of i32) type the values have

  Type withElement(Type elem) const {
    if (auto vec = dyn_cast<VectorType>(shape))
      return vec.clone(elem);
    return elem;
  }
  Value cst(Type type, int64_t v) const {
    auto elem = cast<IntegerType>(getElementTypeOrSelf(type));
    auto attr = IntegerAttr::get(elem, APInt(elem.getWidth(), v,
                                             /*isSigned=*/false,
                                             /*implicitTrunc=*/true));
    if (auto vec = dyn_cast<VectorType>(type))
      return arith::ConstantOp::create(b, loc,
                                       DenseElementsAttr::get(vec, attr));
    return arith::ConstantOp::create(b, loc, attr);
  }
  Value c32(uint32_t v) const { return cst(shape, v); }
  Value i1(bool v) const { return cst(withElement(b.getI1Type()), v ? 1 : 0); }
  Value add(Value x, Value y) const {
    return arith::AddIOp::create(b, loc, x, y);
  }
  Value sub(Value x, Value y) const {
    return arith::SubIOp::create(b, loc, x, y);
  }
  Value band(Value x, Value y) const {
    return arith::AndIOp::create(b, loc, x, y);
  }
  Value bor(Value x, Value y) const {
    return arith::OrIOp::create(b, loc, x, y);
  }
  Value shl(Value x, Value y) const {
    return arith::ShLIOp::create(b, loc, x, y);
  }
  Value lshr(Value x, Value y) const {
    return arith::ShRUIOp::create(b, loc, x, y);
  }
  Value umin(Value x, Value y) const {
    return arith::MinUIOp::create(b, loc, x, y);
  }
  Value cmp(arith::CmpIPredicate p, Value x, Value y) const {
    return arith::CmpIOp::create(b, loc, p, x, y);
  }
  Value select(Value c, Value x, Value y) const {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
};
} // namespace

/// The integer type (or vector of it) of `width` bits shaped like `like`.
static Type intTypeLike(Type like, unsigned width) {
  Type elem = IntegerType::get(like.getContext(), width);
  if (auto vec = dyn_cast<VectorType>(like))
    return vec.clone(elem);
  return elem;
}

Value mlir::kvq::buildTruncF32Bits(OpBuilder &b, Location loc, Value f32Bits,
                                   const SmallFloatFormat &fmt, bool saturate) {
  IntBuilder ib{b, loc, f32Bits.getType()};
  using P = arith::CmpIPredicate;
  const unsigned m = fmt.mantBits;
  const int bias = fmt.bias;

  Value u = f32Bits;
  Value sign = ib.band(u, ib.c32(0x80000000u));
  Value a = ib.band(u, ib.c32(0x7FFFFFFFu)); // |x| as bits, ordered like |x|
  Value isNaN = ib.cmp(P::ugt, a, ib.c32(0x7F800000u));

  // Saturation: every magnitude above the largest finite value (+inf
  // included) becomes that value. Clamping *before* rounding is exact: the
  // largest finite value is representable, and rounding is monotonic, so a
  // value that would round past it saturates to it and nothing else moves.
  if (saturate)
    a = ib.umin(a, ib.c32(fmt.maxFiniteAsF32Bits));

  Value e32 = ib.lshr(a, ib.c32(23)); // biased f32 exponent (0..255)

  // Round-to-nearest-even right shift of a non-negative integer:
  //   rne(v, s) = (v + (2^(s-1) - 1) + ((v >> s) & 1)) >> s
  // Adding just under one half rounds up exactly when the dropped bits are
  // above one half; the kept lsb breaks ties towards even. All values stay
  // below 2^31, so the i32 never wraps.
  auto rneShift = [&](Value v, Value s, Value halfMinusOne) {
    Value lsb = ib.band(ib.lshr(v, s), ib.c32(1));
    return ib.lshr(ib.add(ib.add(v, halfMinusOne), lsb), s);
  };

  // Normal results (f32 exponent e32 >= 128 - bias, i.e. the value is at
  // least the format's smallest normal 2^(1-bias)): rebias the exponent in
  // place and round away the low 23 - m mantissa bits. A mantissa that
  // rounds up to 2^m carries into the exponent, which is what we want.
  const uint32_t rebias = uint32_t(127 - bias) << 23;
  Value normV = ib.sub(a, ib.c32(rebias)); // garbage when not normal: unused
  Value normEnc = rneShift(normV, ib.c32(23 - m), ib.c32((1u << (22 - m)) - 1));

  // Subnormal results: the value is mant * 2^(eEff - 150) with the implicit
  // bit made explicit (f32 subnormals: eEff = 1, no implicit bit); in units
  // of the format's smallest subnormal 2^(1 - bias - m) it is
  // mant >> (151 - bias - m - eEff). The shift is at least 24 - m here; it
  // is clamped to 31 (LLVM shifts >= 32 are poison), where mant < 2^24 still
  // rounds to 0 as it must. A result that rounds up to 2^m is the smallest
  // normal, again correctly encoded.
  Value isF32Normal = ib.cmp(P::ne, e32, ib.c32(0));
  Value implicitBit = ib.select(isF32Normal, ib.c32(0x800000), ib.c32(0));
  Value mant = ib.bor(ib.band(a, ib.c32(0x7FFFFF)), implicitBit);
  Value eEff = ib.select(isF32Normal, e32, ib.c32(1));
  // (Clamped to [1, 31] on the normal path too, where the value is unused,
  // so that no shift amount is ever out of range.)
  Value shift = ib.umin(ib.sub(ib.c32(151 - bias - m), eEff), ib.c32(31));
  shift = arith::MaxUIOp::create(b, loc, shift, ib.c32(1));
  Value half = ib.shl(ib.c32(1), ib.sub(shift, ib.c32(1)));
  Value subEnc = rneShift(mant, shift, ib.sub(half, ib.c32(1)));

  Value isNormal = ib.cmp(P::uge, e32, ib.c32(128 - bias));
  Value enc = ib.select(isNormal, normEnc, subEnc);

  if (!saturate) {
    // Overflow (rounded past the largest finite value, or +-inf): +-inf
    // where the format has it, else NaN (llvm::APFloat's non-saturating
    // conversion).
    Value over = ib.cmp(P::ugt, enc, ib.c32(fmt.maxFiniteBits));
    if (fmt.hasInf())
      enc = ib.select(over, ib.c32(fmt.infBits()), enc);
    else
      isNaN = arith::OrIOp::create(b, loc, isNaN, over);
  }

  // Attach the sign. FNUZ has no -0: a zero result is +0 whatever the sign
  // of the (tiny or zero) input, as in llvm::APFloat.
  Value sign8 = ib.lshr(sign, ib.c32(32 - fmt.bitWidth));
  Value result = ib.bor(sign8, enc);
  if (fmt.nan == SmallFloatFormat::NaNEncoding::NegativeZero)
    result = ib.select(ib.cmp(P::eq, enc, ib.c32(0)), ib.c32(0), result);

  // NaN: the format's one NaN spelling, whatever the input's sign.
  result = ib.select(isNaN, ib.c32(fmt.nanBits()), result);

  return arith::TruncIOp::create(
      b, loc, intTypeLike(f32Bits.getType(), fmt.bitWidth), result);
}

Value mlir::kvq::buildExtToF32Bits(OpBuilder &b, Location loc, Value bits,
                                   const SmallFloatFormat &fmt) {
  Type i32Type = intTypeLike(bits.getType(), 32);
  IntBuilder ib{b, loc, i32Type};
  using P = arith::CmpIPredicate;
  const unsigned w = fmt.bitWidth, m = fmt.mantBits;

  Value v = arith::ExtUIOp::create(b, loc, i32Type, bits);
  Value signBit = ib.shl(ib.lshr(v, ib.c32(w - 1)), ib.c32(31));
  Value mag = ib.band(v, ib.c32((1u << (w - 1)) - 1));
  Value expField = ib.lshr(mag, ib.c32(m));
  Value mantField = ib.band(mag, ib.c32((1u << m) - 1));

  Value magF32;
  if (fmt.expBits == 8) {
    // Same exponent range as f32 (bf16): the bits are a truncated f32, for
    // every value including subnormals, inf and NaN.
    magF32 = ib.shl(mag, ib.c32(23 - m));
  } else {
    // Normal: rebias the exponent, widen the mantissa. Exact.
    Value normal = ib.add(ib.shl(mag, ib.c32(23 - m)),
                          ib.c32(uint32_t(127 - fmt.bias) << 23));
    // Subnormal (exponent field 0): mant * 2^(1 - bias - m). The integer
    // converts to f32 exactly and the power of two lies in f32's normal
    // range for every format narrower than f32's exponent, so the product
    // is exact and involves no f32 subnormal (nothing a flush-to-zero mode
    // could change).
    Type f32Type = i32Type.isInteger(32)
                       ? Type(b.getF32Type())
                       : cast<VectorType>(i32Type).clone(b.getF32Type());
    Value mantF = arith::UIToFPOp::create(b, loc, f32Type, mantField);
    int scaleExp = 1 - fmt.bias - int(m);
    llvm::APFloat scale = llvm::scalbn(llvm::APFloat(1.0f), scaleExp,
                                       llvm::APFloat::rmNearestTiesToEven);
    Attribute scaleAttr = FloatAttr::get(b.getF32Type(), scale);
    Value scaleV =
        isa<VectorType>(f32Type)
            ? arith::ConstantOp::create(
                  b, loc,
                  DenseElementsAttr::get(cast<ShapedType>(f32Type), scaleAttr))
                  .getResult()
            : arith::ConstantOp::create(b, loc, cast<TypedAttr>(scaleAttr))
                  .getResult();
    Value sub = arith::BitcastOp::create(
        b, loc, i32Type, arith::MulFOp::create(b, loc, mantF, scaleV));
    magF32 = ib.select(ib.cmp(P::eq, expField, ib.c32(0)), sub, normal);

    if (fmt.hasInf()) {
      // Top binade: +-inf (NaN is replaced below).
      Value top = ib.cmp(P::eq, expField, ib.c32((1u << fmt.expBits) - 1));
      magF32 = ib.select(top, ib.c32(0x7F800000u), magF32);
    }
  }

  // NaN (any sign, any payload) becomes the positive quiet NaN.
  Value isNaN;
  switch (fmt.nan) {
  case SmallFloatFormat::NaNEncoding::IEEE:
    isNaN = ib.cmp(P::ugt, mag, ib.c32(fmt.infBits()));
    break;
  case SmallFloatFormat::NaNEncoding::AllOnes:
    isNaN = ib.cmp(P::eq, mag, ib.c32((1u << (w - 1)) - 1));
    break;
  case SmallFloatFormat::NaNEncoding::NegativeZero:
    isNaN = ib.cmp(P::eq, v, ib.c32(1u << (w - 1)));
    break;
  }
  Value result = ib.bor(signBit, magF32);
  result = ib.select(isNaN, ib.c32(0x7FC00000u), result);
  return result;
}

Value mlir::kvq::buildSoftwareTruncF(OpBuilder &b, Location loc,
                                     Value f32Values, FloatType type,
                                     bool saturate) {
  std::optional<SmallFloatFormat> fmt = SmallFloatFormat::get(type);
  assert(fmt && "unsupported small float format");
  Value bits = arith::BitcastOp::create(
      b, loc, intTypeLike(f32Values.getType(), 32), f32Values);
  return buildTruncF32Bits(b, loc, bits, *fmt, saturate);
}

Value mlir::kvq::buildSoftwareExtF(OpBuilder &b, Location loc, Value bits,
                                   FloatType type) {
  std::optional<SmallFloatFormat> fmt = SmallFloatFormat::get(type);
  assert(fmt && "unsupported small float format");
  Value f32Bits = buildExtToF32Bits(b, loc, bits, *fmt);
  Type f32Type = b.getF32Type();
  if (auto vec = dyn_cast<VectorType>(f32Bits.getType()))
    f32Type = vec.clone(f32Type);
  return arith::BitcastOp::create(b, loc, f32Type, f32Bits);
}
