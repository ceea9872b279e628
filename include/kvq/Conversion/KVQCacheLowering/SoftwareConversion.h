//===- SoftwareConversion.h - integer-only f32 <-> fp8 ----------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Builders for conversions between f32 and the small float formats kvq caches
// use (f8E4M3FN, f8E4M3FNUZ, f8E5M2, f8E5M2FNUZ; also f16 and bf16), written
// only with `arith` integer ops on the bits of the f32. They need no hardware
// support, no runtime library and no floating-point rounding mode, so they
// give the same bits on a CPU and on any GPU: this is the reference the native
// GPU conversions are checked against.
//
// Every builder works element-wise on a scalar or on a vector of any shape.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_KVQCACHELOWERING_SOFTWARECONVERSION_H
#define KVQ_CONVERSION_KVQCACHELOWERING_SOFTWARECONVERSION_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Value.h"

#include <cstdint>
#include <optional>

namespace mlir::kvq {

/// The encoding of a binary float format of at most 16 bits, read off its
/// llvm::APFloat semantics: `1 + expBits + mantBits` bits, exponent bias
/// `bias`, subnormals, and one of three ways to spell the special values.
struct SmallFloatFormat {
  enum class NaNEncoding {
    /// IEEE 754: exponent all ones; mantissa 0 is +-inf, else NaN (f16,
    /// bf16, f8E5M2).
    IEEE,
    /// No infinity; S.1111...1 is NaN, the rest of the top binade is finite
    /// (f8E4M3FN).
    AllOnes,
    /// No infinity, no -0; the bit pattern of -0 (0x80) is the only NaN
    /// (f8E4M3FNUZ, f8E5M2FNUZ).
    NegativeZero,
  };

  unsigned bitWidth = 0;
  unsigned expBits = 0;
  unsigned mantBits = 0;
  int bias = 0;
  NaNEncoding nan = NaNEncoding::IEEE;
  /// Encoding (without sign) of the largest finite magnitude.
  uint32_t maxFiniteBits = 0;
  /// The largest finite magnitude, as the bits of an f32 (exact).
  uint32_t maxFiniteAsF32Bits = 0;

  /// The format of `type`, or std::nullopt for types this library does not
  /// handle (wider than 16 bits, no subnormals, unsigned formats...).
  static std::optional<SmallFloatFormat> get(FloatType type);

  bool hasInf() const { return nan == NaNEncoding::IEEE; }
  /// Encoding (without sign) of +inf; only for IEEE formats.
  uint32_t infBits() const { return ((1u << expBits) - 1) << mantBits; }
  /// The NaN the conversions produce, whatever the sign and payload of the
  /// input NaN: the positive all-ones pattern (0x7F for f8E4M3FN and
  /// f8E5M2, 0x7FFF for f16 and bf16) or, for FNUZ, 0x80. This is what
  /// NVIDIA's cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32 produce, and GPUs do not
  /// keep the sign of a NaN through arithmetic anyway.
  uint32_t nanBits() const;
};

/// Converts f32 values, given as their bits (`i32` or a vector of `i32`), to
/// `format`, returning its bits in an integer of the format's width (same
/// shape).
///
/// Rounding is to nearest, ties to even, on the exact value (subnormal
/// results included: the dropped bits are rounded once, never twice).
/// With `saturate`, every finite value beyond the largest finite one, and
/// +-inf, become +-max finite (the "satfinite" of PTX); without it they
/// become +-inf, or NaN for formats without infinity (llvm::APFloat's
/// behaviour). NaN becomes `format.nanBits()`. In FNUZ formats a result of
/// zero is always +0 (0x00), since 0x80 is NaN.
Value buildTruncF32Bits(OpBuilder &b, Location loc, Value f32Bits,
                        const SmallFloatFormat &format, bool saturate);

/// Converts values of `format`, given as bits (an integer of the format's
/// width, or a vector of them), to f32 bits (`i32`, same shape). Exact for
/// every finite value and +-inf; NaN becomes the positive quiet NaN
/// 0x7FC00000.
Value buildExtToF32Bits(OpBuilder &b, Location loc, Value bits,
                        const SmallFloatFormat &format);

/// Convenience wrappers on float values: `f32Values` (f32 or vector of f32)
/// to bits of `type` (i8 / vector of i8 for the f8 types), and back.
Value buildSoftwareTruncF(OpBuilder &b, Location loc, Value f32Values,
                          FloatType type, bool saturate);
Value buildSoftwareExtF(OpBuilder &b, Location loc, Value bits, FloatType type);

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_KVQCACHELOWERING_SOFTWARECONVERSION_H
