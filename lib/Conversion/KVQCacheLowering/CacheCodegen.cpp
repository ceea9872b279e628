//===- CacheCodegen.cpp - numerics and accesses of cache code -------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The per-element numerics of the cache ops (their semantics are in the ops'
// descriptions, KVQOps.td) and the reads and writes of one work item, shared
// by the CPU loops and the GPU kernels.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::kvq;

//===----------------------------------------------------------------------===//
// Element numerics
//===----------------------------------------------------------------------===//

/// `elem`, or a vector of it shaped like `like`.
Type mlir::kvq::shapedLike(Type like, Type elem) {
  if (auto vec = dyn_cast<VectorType>(like))
    return vec.clone(elem);
  return elem;
}

Value mlir::kvq::floatConst(OpBuilder &b, Location loc, Type type,
                            const llvm::APFloat &value) {
  auto attr = FloatAttr::get(getElementTypeOrSelf(type), value);
  if (auto vec = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(vec, attr));
  return arith::ConstantOp::create(b, loc, attr);
}

Value mlir::kvq::f32Const(OpBuilder &b, Location loc, Type type, float value) {
  return floatConst(b, loc, type, llvm::APFloat(value));
}

/// x / s for f32 `x` (scalar or vector) as in ScaledDivision.h: a clamp, a
/// multiply by RN(1/s) and one FMA correction, branch-free. Only for the
/// (scale, activation type) pairs proveReciprocalDivision() accepts.
static Value divideByReciprocal(OpBuilder &b, Location loc, Value x,
                                const StreamScales &d) {
  Type type = x.getType();
  // maximumf / minimumf propagate NaN, as the division would.
  Value x1 = arith::MinimumFOp::create(
      b, loc, arith::MaximumFOp::create(b, loc, x, d.negBound), d.bound);
  Value q0 = arith::MulFOp::create(b, loc, x1, d.reciprocal);
  // llvm.intr.fma: one rounding on every target (math.fma would reach some
  // GPUs through a device library call).
  Value e = LLVM::FMAOp::create(b, loc, d.negScale, q0, x1);
  Value q = LLVM::FMAOp::create(b, loc, e, d.reciprocal, q0);
  Value isZero = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, q0,
                                       f32Const(b, loc, type, 0.0f));
  return arith::SelectOp::create(b, loc, isZero, q0, q);
}

/// Store numerics for activations `x` (scalar or vector of f16 / bf16 /
/// f32) into cache elements of type `cacheElem`:
///   fp8:  convert(f32(x) / s), round to nearest even, saturating (target)
///   int8: clamp(roundeven(f32(x) / s), -128, 127), NaN -> 0
///   auto: x unchanged (`quantized` false)
/// The quotient is that of a true IEEE division, computed without a
/// division instruction where `scales` has the reciprocal (a product proven
/// to give the same cache bytes, corrected by an FMA if `scales` has the
/// clamp bounds).
Value mlir::kvq::quantize(OpBuilder &b, Location loc, const KVQTarget &target,
                          Value x, Type cacheElem, bool quantized,
                          const StreamScales &scales) {
  if (!quantized)
    return x;
  Type f32 = shapedLike(x.getType(), b.getF32Type());
  // f16 / bf16 -> f32 is exact.
  Value f = getElementTypeOrSelf(x.getType()).isF32()
                ? x
                : arith::ExtFOp::create(b, loc, f32, x).getResult();
  Value q;
  if (scales.negScale)
    q = divideByReciprocal(b, loc, f, scales);
  else if (scales.reciprocal)
    q = arith::MulFOp::create(b, loc, f, scales.reciprocal);
  else
    q = arith::DivFOp::create(b, loc, f, scales.scale);

  if (cacheElem.isSignlessInteger(8)) {
    // Clamp to [-128, 127] first (ordered compares are false for NaN), then
    // force NaN to 0. Clamping before rounding is the same as after: the
    // bounds are integers and rounding is monotonic.
    auto select = [&](arith::CmpFPredicate pred, Value lhs, Value rhs,
                      Value ifTrue, Value ifFalse) {
      Value c = arith::CmpFOp::create(b, loc, pred, lhs, rhs);
      return arith::SelectOp::create(b, loc, c, ifTrue, ifFalse).getResult();
    };
    Value hi = f32Const(b, loc, f32, 127.0f);
    Value lo = f32Const(b, loc, f32, -128.0f);
    Value c = select(arith::CmpFPredicate::OGT, q, hi, hi, q);
    c = select(arith::CmpFPredicate::OLT, c, lo, lo, c);
    c = select(arith::CmpFPredicate::UNO, q, q, f32Const(b, loc, f32, 0.0f), c);
    // Round half to even with the f32 adder: for |c| <= 2^22, c + 1.5*2^23
    // lies in [2^23, 2^24) where the f32 spacing is exactly 1, so the sum is
    // round_half_even(c) + 1.5*2^23 exactly, and subtracting 1.5*2^23 again
    // is exact. (No fast-math flags: nothing may reassociate this.) The
    // integral result converts to i32 exactly. (Reading the integer from the
    // low bits of the sum instead is shorter, but NVPTX then stores the f32
    // register with st.b8, and an H100 wrote 0xFF for 0.)
    Value magic = f32Const(b, loc, f32, 12582912.0f);
    Value r = arith::SubFOp::create(
        b, loc, arith::AddFOp::create(b, loc, c, magic), magic);
    Value i = arith::FPToSIOp::create(
        b, loc, shapedLike(x.getType(), b.getI32Type()), r);
    return arith::TruncIOp::create(b, loc,
                                   shapedLike(x.getType(), b.getI8Type()), i);
  }

  auto f8Type = cast<FloatType>(cacheElem);
  Value bits = target.truncToBits(b, loc, q, f8Type);
  return arith::BitcastOp::create(b, loc, shapedLike(x.getType(), f8Type),
                                  bits);
}

/// The quiet NaN every NaN output is replaced with: positive, only the
/// quiet bit set (0x7FC00000, 0x7E00, 0x7FC0). Hardware and libraries
/// disagree on NaN payloads; one spelling keeps GPU and CPU bit-exact.
static llvm::APFloat canonicalNaN(FloatType type) {
  return llvm::APFloat::getQNaN(type.getFloatSemantics());
}

/// Load numerics for cache elements `c` (scalar or vector) to outputs of
/// type `outElem`: out = round_to_out(f32(c) * s), NaN -> canonicalNaN.
Value mlir::kvq::decodeToF32(OpBuilder &b, Location loc,
                             const KVQTarget &target, Value c) {
  Type elem = getElementTypeOrSelf(c.getType());
  Type f32 = shapedLike(c.getType(), b.getF32Type());
  if (elem.isF32())
    return c;
  if (elem.isSignlessInteger(8))
    return arith::SIToFPOp::create(b, loc, f32, c);
  auto floatType = cast<FloatType>(elem);
  if (floatType.getWidth() != 8) // bf16, f16: exact
    return arith::ExtFOp::create(b, loc, f32, c);
  Value bits = arith::BitcastOp::create(
      b, loc, shapedLike(c.getType(), b.getI8Type()), c);
  return target.extFromBits(b, loc, bits, floatType);
}

Value mlir::kvq::dequantize(OpBuilder &b, Location loc, const KVQTarget &target,
                            Value c, Type outElem, bool quantized,
                            const StreamScales &scales) {
  if (!quantized)
    return c;
  Type cacheElem = getElementTypeOrSelf(c.getType());
  Value y = arith::MulFOp::create(b, loc, decodeToF32(b, loc, target, c),
                                  scales.scale);
  Type outType = shapedLike(c.getType(), outElem);
  Value out = outElem.isF32()
                  ? y
                  : arith::TruncFOp::create(b, loc, outType, y).getResult();
  if (cacheElem.isSignlessInteger(8))
    return out; // finite * finite: never NaN
  Value isNaN = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, y, y);
  Value nan =
      floatConst(b, loc, outType, canonicalNaN(cast<FloatType>(outElem)));
  return arith::SelectOp::create(b, loc, isNaN, nan, out);
}

/// The scales of `stream` shaped like `like` (f32 or a vector of f32), for
/// a store when `isStore`.
static StreamScales prepareStreamScales(OpBuilder &b, Location loc,
                                        const CacheOpPlan::Stream &stream,
                                        bool isStore, Type like) {
  auto shaped = [&](Value scalar) -> Value {
    if (auto vec = dyn_cast<VectorType>(like))
      return vector::BroadcastOp::create(b, loc, vec, scalar);
    return scalar;
  };
  StreamScales scales;
  scales.scale = shaped(stream.scale);
  if (!isStore || stream.quotient == Quotient::Division)
    return scales;
  scales.reciprocal = shaped(stream.reciprocal);
  if (stream.quotient == Quotient::Product)
    return scales;
  Value bound = arith::MulFOp::create(
      b, loc, stream.scale, f32Const(b, loc, b.getF32Type(), 0x1p17f));
  scales.negScale = shaped(arith::NegFOp::create(b, loc, stream.scale));
  scales.bound = shaped(bound);
  scales.negBound = shaped(arith::NegFOp::create(b, loc, bound));
  return scales;
}

/// values[head] for an index `head` < values.size(), by a chain of
/// selects on `isHead` (isHead[i]: head == i, for i >= 1). Not a vector
/// extract at a dynamic position: NVPTX lowers that through local memory.
static Value selectHead(OpBuilder &b, Location loc, ArrayRef<Value> values,
                        ArrayRef<Value> isHead) {
  Value picked = values.front();
  for (size_t i = 1; i < values.size(); ++i)
    picked = arith::SelectOp::create(b, loc, isHead[i], values[i], picked);
  return picked;
}

/// The scales of both streams of `plan` for work items of `width` elements.
std::array<StreamScales, 2> mlir::kvq::prepareScales(OpBuilder &b, Location loc,
                                                     const CacheOpPlan &plan,
                                                     int64_t width,
                                                     Value head) {
  Type like = b.getF32Type();
  if (width > 1)
    like = VectorType::get({width}, like);
  std::array<CacheOpPlan::Stream, 2> streams = {plan.streams[0],
                                                plan.streams[1]};
  if (plan.isPerHead()) {
    // The scalars of KV head `head`: from here on a per-head stream is a
    // per-tensor stream with that head's scale and reciprocal (the same
    // quotient, proven for every head's scale).
    size_t numHeads = streams[0].headScales.size();
    SmallVector<Value> isHead(numHeads);
    for (size_t i = 1; i < numHeads; ++i)
      isHead[i] =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, head,
                                arith::ConstantIndexOp::create(b, loc, i));
    for (CacheOpPlan::Stream &stream : streams) {
      stream.scale = selectHead(b, loc, stream.headScales, isHead);
      if (!stream.headReciprocals.empty())
        stream.reciprocal = selectHead(b, loc, stream.headReciprocals, isHead);
    }
  }
  return {prepareStreamScales(b, loc, streams[0], plan.isStore, like),
          prepareStreamScales(b, loc, streams[1], plan.isStore, like)};
}

std::string mlir::kvq::getTypeSpelling(Type type) {
  std::string name;
  llvm::raw_string_ostream os(name);
  type.print(os);
  return name;
}

//===----------------------------------------------------------------------===//
// Reads and writes of a work item
//===----------------------------------------------------------------------===//

/// Size `dim` of `memref` as an index value (a constant when static).
Value mlir::kvq::dimOf(OpBuilder &b, Location loc, Value memref, int64_t dim) {
  auto type = cast<MemRefType>(memref.getType());
  if (!type.isDynamicDim(dim))
    return arith::ConstantIndexOp::create(b, loc, type.getDimSize(dim));
  return memref::DimOp::create(b, loc, memref, dim);
}

Value mlir::kvq::activationDim(OpBuilder &b, Location loc,
                               const CacheOpPlan &plan, int64_t dim) {
  if (Value act = plan.act(0))
    return dimOf(b, loc, act, dim);
  return dim == 0 ? dimOf(b, loc, plan.slots, 0)
                  : dimOf(b, loc, plan.cache(0), dim + 1);
}

/// Vector accesses are aligned to their size, up to 16 bytes: they start at
/// multiples of `width` elements of contiguous memrefs whose base pointers
/// are 16-byte aligned (documented requirement of the GPU form).
static llvm::Align accessAlign(Type elem, int64_t width) {
  return llvm::Align(std::min<uint64_t>(
      kAccessBytes, width * std::max(1u, elem.getIntOrFloatBitWidth() / 8)));
}

/// Loads `width` consecutive elements (1: scalar, else a vector) of the
/// source of both streams (K and V) of `plan` at `srcIdx`.
std::array<Value, 2> mlir::kvq::loadSources(OpBuilder &b, Location loc,
                                            const CacheOpPlan &plan,
                                            int64_t width, ValueRange srcIdx) {
  std::array<Value, 2> in;
  if (plan.produce) // a fused store: its region at the `width` elements
    return plan.produce(b, loc, srcIdx, width, plan.producerOperands);
  for (int s = 0; s < 2; ++s) {
    Value src = plan.streams[s].src;
    Type elem = cast<MemRefType>(src.getType()).getElementType();
    if (width == 1)
      in[s] = memref::LoadOp::create(b, loc, src, srcIdx);
    else
      in[s] = vector::LoadOp::create(b, loc, VectorType::get({width}, elem),
                                     src, srcIdx, /*nontemporal=*/false,
                                     accessAlign(elem, width));
  }
  return in;
}

/// Converts the loaded elements `in` of both streams and stores them to
/// their destinations at `dstIdx`.
///
/// Both streams are loaded before either is stored, so that a GPU thread
/// has both loads in flight at once (the memrefs may alias as far as LLVM
/// knows, so it would not hoist a load above a store by itself). On an
/// H100 with 128-thread blocks this and the interleaved order run equally
/// fast; with 256-thread blocks the store is 2% slower this way and the
/// load 1% faster.
///
/// With a `predicate` (GPU store), the stores happen only where it holds,
/// through KVQTarget::storeIf.
void mlir::kvq::storeConverted(OpBuilder &b, Location loc,
                               const KVQTarget &target, const CacheOpPlan &plan,
                               const std::array<StreamScales, 2> &scales,
                               int64_t width, std::array<Value, 2> in,
                               ValueRange dstIdx, Value predicate) {
  for (int s = 0; s < 2; ++s) {
    const CacheOpPlan::Stream &stream = plan.streams[s];
    Type dstElem = cast<MemRefType>(stream.dst.getType()).getElementType();
    Value out = plan.isStore ? quantize(b, loc, target, in[s], dstElem,
                                        plan.quantized, scales[s])
                             : dequantize(b, loc, target, in[s], dstElem,
                                          plan.quantized, scales[s]);
    if (predicate)
      target.storeIf(b, loc, predicate, out, stream.dst, dstIdx);
    else if (width == 1)
      memref::StoreOp::create(b, loc, out, stream.dst, dstIdx);
    else
      vector::StoreOp::create(b, loc, out, stream.dst, dstIdx,
                              /*nontemporal=*/false,
                              accessAlign(dstElem, width));
  }
}

/// slot_mapping[t].
///
/// On GPUs the slot is read with an explicit 8-byte alignment: an
/// unannotated load gets the alignment of LLVM's default data layout when
/// translated (4 for i64), and NVPTX then splits it into two 32-bit loads.
Value mlir::kvq::readSlot(OpBuilder &b, Location loc, const CacheOpPlan &plan,
                          Value t, bool gpu) {
  if (!gpu)
    return memref::LoadOp::create(b, loc, plan.slots, ValueRange{t});
  Value one = vector::LoadOp::create(
      b, loc, VectorType::get({1}, b.getI64Type()), plan.slots, ValueRange{t},
      /*nontemporal=*/false, llvm::Align(8));
  return vector::ExtractOp::create(b, loc, one, 0);
}

/// slot >= 0.
Value mlir::kvq::isValidSlot(OpBuilder &b, Location loc, Value slot) {
  Value zero = arith::ConstantIntOp::create(b, loc, 0, 64);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, slot, zero);
}

/// The cache row of a valid `slot`: (slot / block_size, slot % block_size).
std::pair<Value, Value> mlir::kvq::cacheRow(OpBuilder &b, Location loc,
                                            const CacheOpPlan &plan,
                                            Value slot) {
  Value s = arith::IndexCastOp::create(b, loc, b.getIndexType(), slot);
  Value blockSize = dimOf(b, loc, plan.cache(0), 1);
  return {arith::DivUIOp::create(b, loc, s, blockSize),
          arith::RemUIOp::create(b, loc, s, blockSize)};
}
