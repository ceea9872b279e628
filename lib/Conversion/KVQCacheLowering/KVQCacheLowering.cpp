//===- KVQCacheLowering.cpp - lower kvq cache ops to loops / GPU ----------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// `kvq.cache_store` / `kvq.cache_load` become either host loops (CPU) or one
// `gpu.launch` each (NVVM, ROCDL). Both forms share the per-element numerics
// (quantize / dequantize below) and differ only in how they walk the tokens.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"

#include "kvq/Conversion/KVQCacheLowering/ScaledDivision.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Threading.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringSwitch.h"

#include <array>
#include <mutex>
#include <optional>

using namespace mlir;
using namespace mlir::kvq;

//===----------------------------------------------------------------------===//
// Element numerics
//===----------------------------------------------------------------------===//

/// `elem`, or a vector of it shaped like `like`.
static Type shapedLike(Type like, Type elem) {
  if (auto vec = dyn_cast<VectorType>(like))
    return vec.clone(elem);
  return elem;
}

static Value floatConst(OpBuilder &b, Location loc, Type type,
                        const llvm::APFloat &value) {
  auto attr = FloatAttr::get(getElementTypeOrSelf(type), value);
  if (auto vec = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(vec, attr));
  return arith::ConstantOp::create(b, loc, attr);
}

static Value f32Const(OpBuilder &b, Location loc, Type type, float value) {
  return floatConst(b, loc, type, llvm::APFloat(value));
}

namespace {
/// How a quantizing store computes x / s (ScaledDivision.h), per stream.
enum class Quotient : uint8_t {
  /// arith.divf.
  Division,
  /// A clamp, RN(x * RN(1/s)) and one FMA correction: proven by
  /// proveReciprocalDivision() for the scale and activation type.
  CorrectedProduct,
  /// RN(x * RN(1/s)) alone: proven by proveReciprocalProduct() for the
  /// scale, activation type and cache format.
  Product,
};

/// The scale values of one stream, shaped like the elements a work item
/// converts (f32 or vector<N x f32>), computed once before the loop.
struct StreamScales {
  /// s.
  Value scale;
  /// Quotient::Product and CorrectedProduct: RN(1/s).
  Value reciprocal;
  /// Quotient::CorrectedProduct: -s and the clamp bounds +-s * 2^17 (exact:
  /// a power-of-two multiple).
  Value negScale, bound, negBound;
};
} // namespace

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
static Value quantize(OpBuilder &b, Location loc, const KVQTarget &target,
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
static Value dequantize(OpBuilder &b, Location loc, const KVQTarget &target,
                        Value c, Type outElem, bool quantized,
                        const StreamScales &scales) {
  if (!quantized)
    return c;
  Type cacheElem = getElementTypeOrSelf(c.getType());
  Type f32 = shapedLike(c.getType(), b.getF32Type());
  Value f;
  if (cacheElem.isSignlessInteger(8)) {
    f = arith::SIToFPOp::create(b, loc, f32, c);
  } else {
    auto f8Type = cast<FloatType>(cacheElem);
    Value bits = arith::BitcastOp::create(
        b, loc, shapedLike(c.getType(), b.getI8Type()), c);
    f = target.extFromBits(b, loc, bits, f8Type);
  }
  Value y = arith::MulFOp::create(b, loc, f, scales.scale);
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

//===----------------------------------------------------------------------===//
// The cache function of one signature
//===----------------------------------------------------------------------===//
//
// Every cache op calls a function shared by all cache ops of its signature
// (op kind, operand types, how each stream computes its quotient): the
// function takes the op's memrefs and the layer's K and V scales as
// operands, so that an N-layer model gets a few functions (kernels) instead
// of N.

namespace {
/// A cache op's signature: what its function's code depends on.
struct CacheSignature {
  bool isStore = false;
  /// The cache holds fp8 / int8 (not a plain copy of the activations).
  bool quantized = false;
  /// Quantizing store only, per stream (K, V): how x / s is computed
  /// (proven for the layer's scale where it is not a division).
  std::array<Quotient, 2> quotient = {Quotient::Division, Quotient::Division};
  /// slot_mapping, K source, V source, K destination, V destination.
  std::array<MemRefType, 5> types;

  using Key = std::tuple<unsigned, Type, Type, Type, Type, Type>;
  Key key() const {
    unsigned flags = isStore | quantized << 1 | unsigned(quotient[0]) << 2 |
                     unsigned(quotient[1]) << 4;
    return {flags, types[0], types[1], types[2], types[3], types[4]};
  }
  MemRefType actType() const { return isStore ? types[1] : types[3]; }
  MemRefType cacheType() const { return isStore ? types[3] : types[1]; }
};

/// A cache op seen through its signature, plus the values it calls with.
struct CacheOpInfo {
  CacheSignature signature;
  /// The op's memref operands, in the order of CacheSignature::types.
  std::array<Value, 5> operands;
  /// The layer's K and V scales.
  float scales[2] = {1.0f, 1.0f};
};

/// The code of a cache function: two streams (K, V) that each move elements
/// from a `src` memref to a `dst` memref through an element conversion,
/// with the function's arguments as operands.
struct CacheOpPlan {
  bool isStore = false;
  bool quantized = false;
  Value slots;
  struct Stream {
    Value src, dst;
    /// The scale (f32); the store's RN(1/s) unless it divides.
    Value scale, reciprocal;
    Quotient quotient = Quotient::Division;
  } streams[2];
  MemRefType actType, cacheType;

  Value act(int s) const { return isStore ? streams[s].src : streams[s].dst; }
  Value cache(int s) const { return isStore ? streams[s].dst : streams[s].src; }
};
} // namespace

/// The signature and call operands of `op`; failure if it cannot be
/// lowered (see checkCacheOpsLowerable). Looks up the layer in `symbols`.
/// Leaves `quotient` at Division: proving more is the caller's.
static FailureOr<CacheOpInfo> describeCacheOp(Operation *op,
                                              SymbolTableCollection &symbols) {
  CacheOpInfo info;
  CacheSignature &sig = info.signature;
  LayerOp layer;
  if (auto store = dyn_cast<CacheStoreOp>(op)) {
    sig.isStore = true;
    layer = symbols.lookupNearestSymbolFrom<LayerOp>(op, store.getLayerAttr());
    info.operands = {store.getSlotMapping(), store.getKey(), store.getValue(),
                     store.getKeyCache(), store.getValueCache()};
  } else {
    auto load = cast<CacheLoadOp>(op);
    layer = symbols.lookupNearestSymbolFrom<LayerOp>(op, load.getLayerAttr());
    info.operands = {load.getSlotMapping(), load.getKeyCache(),
                     load.getValueCache(), load.getKeyOut(),
                     load.getValueOut()};
  }
  for (auto [type, value] : llvm::zip(sig.types, info.operands))
    type = cast<MemRefType>(value.getType());
  if (!layer || !layer.getResolvedScalesAttr())
    return failure();
  Type actElem = sig.actType().getElementType();
  if (!isa<Float16Type, BFloat16Type, Float32Type>(actElem))
    return failure();
  ResolvedScalesAttr scales = layer.getResolvedScalesAttr();
  info.scales[0] = scales.getKFloat();
  info.scales[1] = scales.getVFloat();
  sig.quantized = layer.isQuantized();
  return info;
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

/// The scales of both streams of `plan` for work items of `width` elements.
static std::array<StreamScales, 2> prepareScales(OpBuilder &b, Location loc,
                                                 const CacheOpPlan &plan,
                                                 int64_t width) {
  Type like = b.getF32Type();
  if (width > 1)
    like = VectorType::get({width}, like);
  return {prepareStreamScales(b, loc, plan.streams[0], plan.isStore, like),
          prepareStreamScales(b, loc, plan.streams[1], plan.isStore, like)};
}

/// Size `dim` of `memref` as an index value (a constant when static).
static Value dimOf(OpBuilder &b, Location loc, Value memref, int64_t dim) {
  auto type = cast<MemRefType>(memref.getType());
  if (!type.isDynamicDim(dim))
    return arith::ConstantIndexOp::create(b, loc, type.getDimSize(dim));
  return memref::DimOp::create(b, loc, memref, dim);
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
static std::array<Value, 2> loadSources(OpBuilder &b, Location loc,
                                        const CacheOpPlan &plan, int64_t width,
                                        ValueRange srcIdx) {
  std::array<Value, 2> in;
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
static void storeConverted(OpBuilder &b, Location loc, const KVQTarget &target,
                           const CacheOpPlan &plan,
                           const std::array<StreamScales, 2> &scales,
                           int64_t width, std::array<Value, 2> in,
                           ValueRange dstIdx, Value predicate = nullptr) {
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
static Value readSlot(OpBuilder &b, Location loc, const CacheOpPlan &plan,
                      Value t, bool gpu) {
  if (!gpu)
    return memref::LoadOp::create(b, loc, plan.slots, ValueRange{t});
  Value one = vector::LoadOp::create(
      b, loc, VectorType::get({1}, b.getI64Type()), plan.slots, ValueRange{t},
      /*nontemporal=*/false, llvm::Align(8));
  return vector::ExtractOp::create(b, loc, one, 0);
}

/// slot >= 0.
static Value isValidSlot(OpBuilder &b, Location loc, Value slot) {
  Value zero = arith::ConstantIntOp::create(b, loc, 0, 64);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, slot, zero);
}

/// The cache row of a valid `slot`: (slot / block_size, slot % block_size).
static std::pair<Value, Value> cacheRow(OpBuilder &b, Location loc,
                                        const CacheOpPlan &plan, Value slot) {
  Value s = arith::IndexCastOp::create(b, loc, b.getIndexType(), slot);
  Value blockSize = dimOf(b, loc, plan.cache(0), 1);
  return {arith::DivUIOp::create(b, loc, s, blockSize),
          arith::RemUIOp::create(b, loc, s, blockSize)};
}

/// Emits `if (slot_mapping[t] >= 0) { body(blk, row) }`.
static void forValidSlot(OpBuilder &b, Location loc, const CacheOpPlan &plan,
                         Value t, bool gpu,
                         function_ref<void(OpBuilder &, Value, Value)> body) {
  Value slot = readSlot(b, loc, plan, t, gpu);
  scf::IfOp::create(b, loc, isValidSlot(b, loc, slot),
                    [&](OpBuilder &nb, Location nloc) {
                      auto [blk, row] = cacheRow(nb, nloc, plan, slot);
                      body(nb, blk, row);
                      scf::YieldOp::create(nb, nloc);
                    });
}

//===----------------------------------------------------------------------===//
// CPU form: scf loops
//===----------------------------------------------------------------------===//

/// for t in [0, T): if slot[t] >= 0: for h, d: K and V element by element.
static void buildLoops(OpBuilder &b, Location loc, const KVQTarget &target,
                       const CacheOpPlan &plan) {
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  Value numTokens = dimOf(b, loc, plan.slots, 0);
  Value numHeads = dimOf(b, loc, plan.act(0), 1);
  Value headSize = dimOf(b, loc, plan.act(0), 2);
  std::array<StreamScales, 2> scales = prepareScales(b, loc, plan, 1);
  scf::ForOp::create(
      b, loc, c0, numTokens, c1, ValueRange{},
      [&](OpBuilder &b, Location loc, Value t, ValueRange) {
        forValidSlot(
            b, loc, plan, t, /*gpu=*/false,
            [&](OpBuilder &b, Value blk, Value row) {
              scf::ForOp::create(
                  b, loc, c0, numHeads, c1, ValueRange{},
                  [&](OpBuilder &b, Location loc, Value h, ValueRange) {
                    scf::ForOp::create(
                        b, loc, c0, headSize, c1, ValueRange{},
                        [&](OpBuilder &b, Location loc, Value d, ValueRange) {
                          SmallVector<Value> act{t, h, d},
                              cache{blk, row, h, d};
                          storeConverted(
                              b, loc, target, plan, scales, /*width=*/1,
                              loadSources(b, loc, plan, 1,
                                          plan.isStore ? act : cache),
                              plan.isStore ? cache : act);
                          scf::YieldOp::create(b, loc);
                        });
                    scf::YieldOp::create(b, loc);
                  });
            });
        scf::YieldOp::create(b, loc);
      });
}

//===----------------------------------------------------------------------===//
// GPU form: one gpu.launch
//===----------------------------------------------------------------------===//

/// Elements per GPU work item: as many as make one 16-byte access of the
/// wider of the source and destination element types: 8 for bf16 / f16 <->
/// fp8 / int8 (the store reads 16 bytes and writes 8, the load reads 8 and
/// writes 16), 4 with f32 activations. Every access of a warp is then
/// contiguous (512 bytes per 16-byte instruction). Measured on an H100
/// (bench/gpu/exp2: hand-written twins of the store kernel, kvq's
/// arithmetic): 16 elements per item (two 16-byte reads, one 16-byte write
/// per stream) took 11.94-12.03 us at T = 4096 and 5.73-5.81 us at T = 256
/// (single launch), 8 elements per item 11.46-11.52 and 5.38-5.39. A load
/// that wrote 16 bf16 outputs as two 16-byte halves ran at 71% of copy
/// bandwidth at T = 32768, 8 outputs per item near copy speed.
static int64_t elementsPerWorkItem(const CacheOpPlan &plan) {
  auto bytes = [](MemRefType type) {
    return std::max<int64_t>(1, type.getElementTypeBitWidth() / 8);
  };
  return std::max<int64_t>(
      2, kAccessBytes / std::max(bytes(plan.actType), bytes(plan.cacheType)));
}

/// Whether `type` is contiguous (identity layout) with a static head size
/// that is a multiple of `width`: then every `width`-element chunk of a
/// head row is one aligned access.
static bool isVectorizable(MemRefType type, int64_t width) {
  int64_t headSize = type.getDimSize(type.getRank() - 1);
  return type.getLayout().isIdentity() && !ShapedType::isDynamic(headSize) &&
         headSize % width == 0;
}

/// Work items a GPU thread of the load takes per pass of its loop: two,
/// so that it has two gathers (slot, then cache row) in flight at once. On
/// an H100 (bench/RESULTS.md, runs 7 and 8) the load at T = 4096 took 10.39
/// instead of 11.37 us per call in a CUDA graph, and 17.94 instead of
/// 18.62 us at D = 256 single-launch. The store reads its rows without
/// waiting for the slot; a hand-written two-item store gained nothing.
constexpr int64_t kLoadItemsPerThread = 2;

/// Work items per token and in total, for `width` elements per item (1:
/// the scalar path), from the memrefs of `plan`.
static std::pair<Value, Value> workItemCounts(OpBuilder &b, Location loc,
                                              const CacheOpPlan &plan,
                                              int64_t width) {
  Value numTokens = dimOf(b, loc, plan.slots, 0);
  Value numHeads = dimOf(b, loc, plan.act(0), 1);
  Value headSize = dimOf(b, loc, plan.act(0), 2);
  Value rowItems = arith::MulIOp::create(b, loc, numHeads, headSize);
  if (width > 1)
    rowItems = arith::DivUIOp::create(
        b, loc, rowItems, arith::ConstantIndexOp::create(b, loc, width));
  Value total = arith::MulIOp::create(b, loc, numTokens, rowItems);
  return {rowItems, total};
}

/// max(1, ceil(total / perBlock)) blocks.
static Value gridSizeFor(OpBuilder &b, Location loc, Value total,
                         int64_t perBlock) {
  return arith::MaxUIOp::create(
      b, loc,
      arith::CeilDivUIOp::create(
          b, loc, total, arith::ConstantIndexOp::create(b, loc, perBlock)),
      arith::ConstantIndexOp::create(b, loc, 1));
}

/// The body of the launch of buildLaunch(), on the memrefs of `plan` as
/// the kernel sees them.
static void buildKernelBody(OpBuilder &b, Location loc, const KVQTarget &target,
                            const CacheOpPlan &plan, gpu::LaunchOp launch,
                            int64_t threadsPerBlock, int64_t width,
                            bool vectorized, int64_t items) {
  auto gridSize = [&](OpBuilder &b, Location loc, Value total) {
    return gridSizeFor(b, loc, total, threadsPerBlock * items);
  };
  std::array<StreamScales, 2> scales = prepareScales(b, loc, plan, width);
  // The block size is the constant threadsPerBlock (no read of blockDim).
  Value bid = launch.getBlockIds().x, tid = launch.getThreadIds().x;
  Value bdim = arith::ConstantIndexOp::create(b, loc, threadsPerBlock);
  Value first = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, bid, bdim), tid);
  // Plain variables, not a structured binding: the loop body captures them.
  std::pair<Value, Value> counts = workItemCounts(b, loc, plan, width);
  Value rowItems = counts.first, kernelTotal = counts.second;
  // NVIDIA: a grid-stride loop (gridDim is a special register), so any grid
  // size is correct. AMD: reading gridDim calls __ockl_get_num_groups from
  // the ROCm device libraries, which gpu-module-to-binary would then need;
  // there the kernel recomputes the host's grid size, and each thread does
  // one pass (the grid covers every work item).
  Value stride, step;
  if (target.getKind() == KVQTarget::Kind::ROCDL) {
    stride = arith::MulIOp::create(b, loc, gridSize(b, loc, kernelTotal), bdim);
    step = arith::MaxUIOp::create(b, loc, kernelTotal,
                                  arith::ConstantIndexOp::create(b, loc, 1));
  } else {
    stride = arith::MulIOp::create(b, loc, launch.getGridSize().x, bdim);
    step = items == 1 ? stride
                      : arith::MulIOp::create(
                            b, loc, stride,
                            arith::ConstantIndexOp::create(b, loc, items));
  }
  scf::ForOp::create(
      b, loc, first, kernelTotal, step, ValueRange{},
      [&](OpBuilder &b, Location loc, Value base, ValueRange) {
        // Token, head and element of work item `i`.
        auto position = [&](Value i) -> std::array<Value, 3> {
          Value t = arith::DivUIOp::create(b, loc, i, rowItems);
          Value r = arith::RemUIOp::create(b, loc, i, rowItems);
          Value headSize = dimOf(b, loc, plan.act(0), 2);
          if (!vectorized)
            return {t, arith::DivUIOp::create(b, loc, r, headSize),
                    arith::RemUIOp::create(b, loc, r, headSize)};
          Value chunks = arith::DivUIOp::create(
              b, loc, headSize, arith::ConstantIndexOp::create(b, loc, width));
          return {t, arith::DivUIOp::create(b, loc, r, chunks),
                  arith::MulIOp::create(
                      b, loc, arith::RemUIOp::create(b, loc, r, chunks),
                      arith::ConstantIndexOp::create(b, loc, width))};
        };
        if (plan.isStore) {
          // The store reads activation row t whatever the slot: the K / V
          // loads, the slot load and the conversion are unconditional and
          // only the two stores depend on the slot (KVQTarget::storeIf), so
          // that the slot and data reads are in flight together. (A cache
          // row computed from a negative slot is never stored to.)
          auto [t, h, d] = position(base);
          std::array<Value, 2> in =
              loadSources(b, loc, plan, width, ValueRange{t, h, d});
          Value slot = readSlot(b, loc, plan, t, /*gpu=*/true);
          auto [blk, row] = cacheRow(b, loc, plan, slot);
          storeConverted(b, loc, target, plan, scales, width, in,
                         ValueRange{blk, row, h, d}, isValidSlot(b, loc, slot));
          scf::YieldOp::create(b, loc);
          return;
        }
        // The load's source row is the slot's. So that the items' gathers
        // overlap, every item's slot is read first, then every item's
        // cache row, unconditionally (row 0 where the slot is negative),
        // then the outputs are converted and stored where the slot is
        // valid (KVQTarget::storeIf). With a branch per gather, LLVM sinks
        // the second slot read below the first branch, which then waits
        // for it: three memory round trips for two items instead of two.
        // Item j is base + j * stride; one past the end reads the slot of
        // item `base` and stores nothing.
        struct Item {
          std::array<Value, 3> pos;
          Value valid;
          std::array<Value, 2> in;
        };
        SmallVector<Item> work(items);
        SmallVector<Value> slots;
        for (int64_t j = 0; j < items; ++j) {
          Value i = base, inRange;
          if (j > 0) {
            i = arith::AddIOp::create(
                b, loc, base,
                arith::MulIOp::create(
                    b, loc, stride, arith::ConstantIndexOp::create(b, loc, j)));
            inRange = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                            i, kernelTotal);
            i = arith::SelectOp::create(b, loc, inRange, i, base);
          }
          work[j].pos = position(i);
          Value slot = readSlot(b, loc, plan, work[j].pos[0], /*gpu=*/true);
          work[j].valid = isValidSlot(b, loc, slot);
          if (inRange)
            work[j].valid =
                arith::AndIOp::create(b, loc, work[j].valid, inRange);
          slots.push_back(arith::SelectOp::create(
              b, loc, work[j].valid, slot,
              arith::ConstantIntOp::create(b, loc, 0, 64)));
        }
        for (auto [item, slot] : llvm::zip(work, slots)) {
          auto [blk, row] = cacheRow(b, loc, plan, slot);
          item.in = loadSources(b, loc, plan, width,
                                ValueRange{blk, row, item.pos[1], item.pos[2]});
        }
        for (Item &item : work)
          storeConverted(b, loc, target, plan, scales, width, item.in,
                         ValueRange(item.pos), item.valid);
        scf::YieldOp::create(b, loc);
      });
  gpu::TerminatorOp::create(b, loc);
}

namespace {
/// A memref operand of a kernel, split on the host into its base buffer (a
/// rank-0 memref: one bare pointer in the kernel ABI) and the offset, sizes
/// and strides its type leaves dynamic; the kernel rebuilds the memref with
/// `memref.reinterpret_cast`. The outlined kernel then takes one pointer
/// and the dynamic sizes (for the usual operands: the token or block
/// count) per memref instead of a whole descriptor: 14 parameters instead
/// of 49, which on an H100 made each launch 0.3-0.5 us shorter (bench/gpu/
/// exp2: the T = 256 store 5.02 instead of 5.39 us single launch, 2.44
/// instead of 2.72 us per call in a CUDA graph). A memref whose layout is
/// not strided is passed whole.
struct KernelMemRef {
  Value whole;
  Value base;
  OpFoldResult offset;
  SmallVector<OpFoldResult> sizes, strides;

  /// On the host, before the launch.
  static KernelMemRef split(OpBuilder &b, Location loc, Value memref) {
    auto type = cast<MemRefType>(memref.getType());
    KernelMemRef km;
    km.whole = memref;
    int64_t offset;
    SmallVector<int64_t> strides;
    if (failed(type.getStridesAndOffset(strides, offset)))
      return km;
    auto metadata = memref::ExtractStridedMetadataOp::create(b, loc, memref);
    auto pick = [&](int64_t value, Value dynamic) -> OpFoldResult {
      if (ShapedType::isDynamic(value))
        return dynamic;
      return b.getIndexAttr(value);
    };
    km.base = metadata.getBaseBuffer();
    km.offset = pick(offset, metadata.getOffset());
    for (int64_t d = 0; d < type.getRank(); ++d) {
      km.sizes.push_back(pick(type.getDimSize(d), metadata.getSizes()[d]));
      km.strides.push_back(pick(strides[d], metadata.getStrides()[d]));
    }
    return km;
  }

  /// The pointer (or the whole memref), first thing in the kernel body:
  /// gpu-kernel-outlining orders the kernel's parameters by first use.
  void touchBase(OpBuilder &b, Location loc) const {
    if (base)
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, base);
    else
      memref::DimOp::create(b, loc, whole, 0);
  }

  /// The memref, rebuilt in the kernel.
  Value rebuild(OpBuilder &b, Location loc) const {
    if (!base)
      return whole;
    return memref::ReinterpretCastOp::create(b, loc,
                                             cast<MemRefType>(whole.getType()),
                                             base, offset, sizes, strides);
  }
};
} // namespace

/// The launch: a 1-D grid of `threadsPerBlock`-thread blocks, grid-stride
/// over work items. A work item is one token and one chunk of
/// elementsPerWorkItem() elements of the token's [H, D] row on the vector
/// path, one (token, element) otherwise; consecutive threads take
/// consecutive chunks of a token, so a warp reads and writes contiguous
/// memory. The thread moves K and V of its item; a load thread takes
/// kLoadItemsPerThread items per pass, `stride` (all threads of the grid)
/// apart, and the grid has that many times fewer blocks.
static void buildLaunch(OpBuilder &b, Location loc, const KVQTarget &target,
                        const CacheOpPlan &plan, int64_t threadsPerBlock,
                        ValueRange scalars) {
  const int64_t chunk = elementsPerWorkItem(plan);
  const bool vectorized = isVectorizable(plan.actType, chunk) &&
                          isVectorizable(plan.cacheType, chunk);
  const int64_t width = vectorized ? chunk : 1;

  const int64_t items = plan.isStore ? 1 : kLoadItemsPerThread;
  // A load gathers its cache rows without waiting for the slot test (see
  // below), which reads row 0 for a negative slot: with an empty cache
  // (every slot must then be negative) it launches nothing.
  OpBuilder::InsertionGuard hostGuard(b);
  if (!plan.isStore) {
    Value nonEmpty = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::ugt, dimOf(b, loc, plan.cache(0), 0),
        arith::ConstantIndexOp::create(b, loc, 0));
    auto ifNonEmpty =
        scf::IfOp::create(b, loc, nonEmpty, /*withElseRegion=*/false);
    b.setInsertionPointToStart(ifNonEmpty.thenBlock());
  }
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  Value tpb = arith::ConstantIndexOp::create(b, loc, threadsPerBlock);
  Value blocks = gridSizeFor(b, loc, workItemCounts(b, loc, plan, width).second,
                             threadsPerBlock * items);
  std::array<Value, 5> memrefs = {plan.slots, plan.streams[0].src,
                                  plan.streams[1].src, plan.streams[0].dst,
                                  plan.streams[1].dst};
  std::array<KernelMemRef, 5> kernelMemRefs;
  for (auto [km, memref] : llvm::zip(kernelMemRefs, memrefs))
    km = KernelMemRef::split(b, loc, memref);
  // All cache kernels of a module go to one gpu.module, so that a pipeline
  // produces one binary (one PTX / AMDGCN text) per module.
  auto launch = gpu::LaunchOp::create(
      b, loc, blocks, c1, c1, tpb, c1, c1, /*dynamicSharedMemorySize=*/nullptr,
      /*asyncTokenType=*/nullptr, /*asyncDependencies=*/{},
      /*workgroupAttributions=*/{}, /*privateAttributions=*/{},
      /*clusterSizeX=*/nullptr, /*clusterSizeY=*/nullptr,
      /*clusterSizeZ=*/nullptr,
      FlatSymbolRefAttr::get(b.getContext(), kKernelModuleName));

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(&launch.getBody().front());
  // Fix the kernel's parameter order (the ABI documented in the pass):
  // gpu-kernel-outlining turns the values the body uses from above into
  // parameters in order of first use, so touch the memrefs' base pointers
  // first, in the order slot_mapping, K source, V source, K destination,
  // V destination, then the f32 `scalars` (k_scale, RN(1/k_scale), v_scale,
  // RN(1/v_scale)), by dead ops (folded away once the kernel is outlined; a
  // load does not use the reciprocals, yet every kernel takes them), then
  // rebuild the memrefs from their dynamic offsets, sizes and strides, in
  // the same order. The body uses the rebuilt memrefs.
  for (const KernelMemRef &km : kernelMemRefs)
    km.touchBase(b, loc);
  for (Value scalar : scalars)
    arith::NegFOp::create(b, loc, scalar);
  CacheOpPlan kernelPlan = plan;
  std::array<Value *, 5> kernelValues = {
      &kernelPlan.slots, &kernelPlan.streams[0].src, &kernelPlan.streams[1].src,
      &kernelPlan.streams[0].dst, &kernelPlan.streams[1].dst};
  for (auto [km, value] : llvm::zip(kernelMemRefs, kernelValues))
    *value = km.rebuild(b, loc);
  buildKernelBody(b, loc, target, kernelPlan, launch, threadsPerBlock, width,
                  vectorized, items);
}

//===----------------------------------------------------------------------===//
// Cache functions
//===----------------------------------------------------------------------===//

/// `type`'s spelling for a symbol name ("bf16", "f8E4M3FN", "i8").
static std::string typeName(Type type) {
  std::string name;
  llvm::raw_string_ostream os(name);
  type.print(os);
  return name;
}

/// The name of the function of `sig` (before uniquing):
/// kvq_cache_<store|load>_<src elem>_<dst elem>_<H>x<D>_b<block size>,
/// "dyn" for a dynamic size, then for a quantizing store whose streams do
/// not both use the plain product (Quotient::Product) the quotient of each
/// stream, `mul`, `fma` (CorrectedProduct) or `divf`: `_<q>` when both
/// streams agree (`_divf`), else `_k<q>_v<q>` (`_kmul_vfma`).
static std::string functionName(const CacheSignature &sig) {
  auto size = [](MemRefType type, int64_t dim) -> std::string {
    return type.isDynamicDim(dim) ? "dyn"
                                  : std::to_string(type.getDimSize(dim));
  };
  MemRefType act = sig.actType(), cache = sig.cacheType();
  std::string name = sig.isStore ? "kvq_cache_store_" : "kvq_cache_load_";
  name += typeName(sig.types[1].getElementType()) + "_" +
          typeName(sig.types[3].getElementType()) + "_" + size(act, 1) + "x" +
          size(act, 2) + "_b" + size(cache, 1);
  auto spelling = [](Quotient quotient) {
    switch (quotient) {
    case Quotient::Division:
      return "divf";
    case Quotient::CorrectedProduct:
      return "fma";
    case Quotient::Product:
      return "mul";
    }
    llvm_unreachable("unknown quotient");
  };
  auto [k, v] = sig.quotient;
  if (!sig.isStore || !sig.quantized ||
      (k == Quotient::Product && v == Quotient::Product))
    return name;
  if (k == v)
    return name + "_" + spelling(k);
  return name + "_k" + spelling(k) + "_v" + spelling(v);
}

/// Builds the function of `sig` at the end of `module`'s body (named in
/// `symbols`' table of it, uniqued) and returns it.
static func::FuncOp buildCacheFunction(ModuleOp module,
                                       SymbolTableCollection &symbols,
                                       const CacheSignature &sig, Location loc,
                                       const KVQTarget &target,
                                       const KVQCacheLoweringOptions &options) {
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Type f32 = b.getF32Type();
  SmallVector<Type> argTypes(sig.types.begin(), sig.types.end());
  argTypes.append({f32, f32});
  auto fn = func::FuncOp::create(b, loc, functionName(sig),
                                 b.getFunctionType(argTypes, {}));
  fn.setPrivate();
  symbols.getSymbolTable(module).insert(fn);
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);

  CacheOpPlan plan;
  plan.isStore = sig.isStore;
  plan.quantized = sig.quantized;
  plan.actType = sig.actType();
  plan.cacheType = sig.cacheType();
  plan.slots = entry->getArgument(0);
  // RN(1/s), on the host: an IEEE f32 division, the value the proofs of
  // ScaledDivision.h checked. (Every GPU kernel takes it.)
  Value one = f32Const(b, loc, f32, 1.0f);
  SmallVector<Value> scalars;
  for (int s = 0; s < 2; ++s) {
    Value scale = entry->getArgument(5 + s);
    bool divides = sig.quotient[s] == Quotient::Division;
    Value reciprocal = !divides || target.isGPU()
                           ? arith::DivFOp::create(b, loc, one, scale)
                           : Value();
    plan.streams[s] = {entry->getArgument(1 + s), entry->getArgument(3 + s),
                       scale, divides ? Value() : reciprocal, sig.quotient[s]};
    scalars.append({scale, reciprocal});
  }
  if (target.isGPU())
    buildLaunch(b, loc, target, plan, options.threadsPerBlock, scalars);
  else
    buildLoops(b, loc, target, plan);
  func::ReturnOp::create(b, loc);
  return fn;
}

struct KVQCacheFunctions::Impl {
  Impl(const KVQTarget &target, const KVQCacheLoweringOptions &options)
      : target(target), options(options) {}

  const KVQTarget &target;
  KVQCacheLoweringOptions options;
  /// Guards everything below: a frozen pattern set is shared by every
  /// thread that applies it, and the collection fills itself in on use.
  std::mutex mutex;
  SymbolTableCollection symbols;
  DenseMap<std::pair<Operation *, CacheSignature::Key>, func::FuncOp> functions;
};

KVQCacheFunctions::KVQCacheFunctions(const KVQTarget &target,
                                     const KVQCacheLoweringOptions &options)
    : impl(std::make_unique<Impl>(target, options)) {}

KVQCacheFunctions::~KVQCacheFunctions() = default;

/// cacheThresholdBits() of a cache element type (fp8 or i8).
static unsigned thresholdBitsOf(Type cacheElem) {
  auto format = dyn_cast<FloatType>(cacheElem);
  return cacheThresholdBits(format ? &format.getFloatSemantics() : nullptr);
}

/// The cheapest quotient `division` allows that is proven to give the cache
/// bytes of a division by `scale` for every activation of `act` in a cache
/// whose rounding thresholds have `thresholdBits` significant bits.
static Quotient proveQuotient(QuantizeDivision division, float scale, Type act,
                              unsigned thresholdBits) {
  const llvm::fltSemantics &sem = cast<FloatType>(act).getFloatSemantics();
  if (division == QuantizeDivision::Auto &&
      proveReciprocalProduct(scale, sem, thresholdBits))
    return Quotient::Product;
  if (proveReciprocalDivision(scale, sem))
    return Quotient::CorrectedProduct;
  return Quotient::Division;
}

/// The quotient of each stream of `info` (a quantizing store).
static void proveStreams(CacheOpInfo &info, QuantizeDivision division) {
  Type act = info.signature.actType().getElementType();
  unsigned bits = thresholdBitsOf(info.signature.cacheType().getElementType());
  for (int s = 0; s < 2; ++s)
    info.signature.quotient[s] =
        proveQuotient(division, info.scales[s], act, bits);
}

/// Whether the signature of `info` has a division to prove.
static bool needsProof(const CacheOpInfo &info,
                       const KVQCacheLoweringOptions &options) {
  return info.signature.isStore && info.signature.quantized &&
         options.quantizeDivision != QuantizeDivision::DivF;
}

/// The call for `op`, described by `info` (proven), creating its function
/// in `module` if needed. Under the lock.
static KVQCacheCall callFor(KVQCacheFunctions::Impl &impl, ModuleOp module,
                            Operation *op, const CacheOpInfo &info);

FailureOr<KVQCacheCall> KVQCacheFunctions::lookupOrCreate(Operation *op) {
  auto module = op->getParentOfType<ModuleOp>();
  if (!module)
    return failure();
  FailureOr<CacheOpInfo> info = [&] {
    std::lock_guard<std::mutex> lock(impl->mutex);
    return describeCacheOp(op, impl->symbols);
  }();
  if (failed(info))
    return failure();
  if (needsProof(*info, impl->options))
    proveStreams(*info, impl->options.quantizeDivision);
  std::lock_guard<std::mutex> lock(impl->mutex);
  return callFor(*impl, module, op, *info);
}

static KVQCacheCall callFor(KVQCacheFunctions::Impl &impl, ModuleOp module,
                            Operation *op, const CacheOpInfo &info) {
  func::FuncOp &fn = impl.functions[{module, info.signature.key()}];
  if (!fn)
    fn = buildCacheFunction(module, impl.symbols, info.signature, op->getLoc(),
                            impl.target, impl.options);
  KVQCacheCall call;
  call.callee = fn;
  llvm::append_range(call.operands, info.operands);
  call.scales[0] = info.scales[0];
  call.scales[1] = info.scales[1];
  return call;
}

void KVQCacheFunctions::replaceWithCall(RewriterBase &rewriter, Operation *op,
                                        const KVQCacheCall &call,
                                        ScaleConstants *constants) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  Location loc = op->getLoc();
  SmallVector<Value, 7> operands(call.operands.begin(), call.operands.end());
  for (float scale : call.scales) {
    Value *cached = nullptr;
    if (constants) {
      cached = &(*constants)[{op->getBlock(), llvm::bit_cast<uint32_t>(scale)}];
      if (*cached) {
        operands.push_back(*cached);
        continue;
      }
    }
    Value value = arith::ConstantOp::create(rewriter, loc,
                                            rewriter.getF32FloatAttr(scale));
    if (cached)
      *cached = value;
    operands.push_back(value);
  }
  func::CallOp::create(rewriter, loc, call.callee, operands);
  rewriter.eraseOp(op);
}

LogicalResult KVQCacheFunctions::replaceWithCall(RewriterBase &rewriter,
                                                 Operation *op) {
  FailureOr<KVQCacheCall> call = lookupOrCreate(op);
  if (failed(call))
    return failure();
  replaceWithCall(rewriter, op, *call);
  return success();
}

SmallVector<std::pair<Operation *, KVQCacheCall>>
KVQCacheFunctions::createAll(Operation *root) {
  // Describe every op (symbol lookups: one thread), prove the distinct
  // scales of the stores on the thread pool (the expensive part: 20,000
  // bf16 scales take 50 ms on one thread), then create the functions (one
  // thread again).
  struct Entry {
    Operation *op;
    ModuleOp module;
    CacheOpInfo info;
  };
  std::vector<Entry> entries;
  {
    std::lock_guard<std::mutex> lock(impl->mutex);
    root->walk([&](Operation *op) {
      if (!isa<CacheStoreOp, CacheLoadOp>(op))
        return;
      auto module = op->getParentOfType<ModuleOp>();
      if (!module)
        return;
      FailureOr<CacheOpInfo> info = describeCacheOp(op, impl->symbols);
      if (succeeded(info))
        entries.push_back({op, module, *info});
    });
  }
  // Each distinct (scale, activation type, cache thresholds) once: the
  // cache ops of a layer share its scales. (A sorted vector: a hash map of
  // 20,000 keys cost more than the proofs.)
  using ProofKey = std::tuple<uint32_t, const void *, unsigned>;
  auto keyOf = [](float scale, const CacheSignature &sig) {
    return ProofKey(llvm::bit_cast<uint32_t>(scale),
                    sig.actType().getElementType().getAsOpaquePointer(),
                    thresholdBitsOf(sig.cacheType().getElementType()));
  };
  std::vector<ProofKey> keys;
  for (Entry &entry : entries)
    if (needsProof(entry.info, impl->options))
      for (float scale : entry.info.scales)
        keys.push_back(keyOf(scale, entry.info.signature));
  llvm::sort(keys);
  keys.erase(llvm::unique(keys), keys.end());
  std::vector<Quotient> proven(keys.size());
  parallelFor(root->getContext(), 0, keys.size(), [&](size_t i) {
    auto [scaleBits, act, bits] = keys[i];
    proven[i] = proveQuotient(impl->options.quantizeDivision,
                              llvm::bit_cast<float>(scaleBits),
                              Type::getFromOpaquePointer(act), bits);
  });
  for (Entry &entry : entries) {
    if (!needsProof(entry.info, impl->options))
      continue;
    CacheSignature &sig = entry.info.signature;
    for (int s = 0; s < 2; ++s)
      sig.quotient[s] =
          proven[llvm::lower_bound(keys, keyOf(entry.info.scales[s], sig)) -
                 keys.begin()];
  }
  SmallVector<std::pair<Operation *, KVQCacheCall>> calls;
  calls.reserve(entries.size());
  std::lock_guard<std::mutex> lock(impl->mutex);
  for (Entry &entry : entries)
    calls.emplace_back(entry.op,
                       callFor(*impl, entry.module, entry.op, entry.info));
  return calls;
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

namespace {
template <typename OpTy> struct LowerCacheOp final : OpRewritePattern<OpTy> {
  LowerCacheOp(MLIRContext *ctx, KVQCacheFunctions &functions)
      : OpRewritePattern<OpTy>(ctx), functions(functions) {}

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    if (failed(functions.replaceWithCall(rewriter, op)))
      return rewriter.notifyMatchFailure(
          op, "layer without resolved scales or unsupported activation type "
              "(see checkCacheOpsLowerable)");
    return success();
  }

  KVQCacheFunctions &functions;
};
} // namespace

void mlir::kvq::populateKVQCacheLoweringPatterns(RewritePatternSet &patterns,
                                                 KVQCacheFunctions &functions) {
  patterns.add<LowerCacheOp<CacheStoreOp>, LowerCacheOp<CacheLoadOp>>(
      patterns.getContext(), functions);
}

std::optional<QuantizeDivision>
mlir::kvq::parseQuantizeDivision(StringRef name) {
  return llvm::StringSwitch<std::optional<QuantizeDivision>>(name)
      .Case("auto", QuantizeDivision::Auto)
      .Case("fma", QuantizeDivision::FMA)
      .Case("divf", QuantizeDivision::DivF)
      .Default(std::nullopt);
}

//===----------------------------------------------------------------------===//
// Checks and cleanup
//===----------------------------------------------------------------------===//

LogicalResult mlir::kvq::checkCacheOpsLowerable(Operation *root) {
  bool ok = true;
  SymbolTableCollection symbols;
  root->walk([&](Operation *op) {
    if (!isa<CacheStoreOp, CacheLoadOp>(op))
      return;
    LayerOp layer;
    Type actElem;
    if (auto store = dyn_cast<CacheStoreOp>(op)) {
      layer =
          symbols.lookupNearestSymbolFrom<LayerOp>(op, store.getLayerAttr());
      actElem = store.getKey().getType().getElementType();
    } else {
      auto load = cast<CacheLoadOp>(op);
      layer = symbols.lookupNearestSymbolFrom<LayerOp>(op, load.getLayerAttr());
      actElem = load.getKeyOut().getType().getElementType();
    }
    if (!layer)
      return; // the verifier reports unknown layers
    if (!layer.getResolvedScalesAttr()) {
      InFlightDiagnostic diag = op->emitError()
                                << "cannot lower: layer @" << layer.getSymName()
                                << " has no resolved scales; run "
                                   "kvq-fold-scales first";
      diag.attachNote(layer.getLoc())
          << "layer @" << layer.getSymName() << " declared here";
      ok = false;
      return;
    }
    if (!isa<Float16Type, BFloat16Type, Float32Type>(actElem)) {
      InFlightDiagnostic diag = op->emitError()
                                << "cannot lower: activation element type "
                                << actElem << " is not supported, expected "
                                << "f16, bf16 or f32";
      diag.attachNote(layer.getLoc())
          << "layer @" << layer.getSymName() << " declared here";
      ok = false;
    }
  });
  return success(ok);
}

void mlir::kvq::eraseUnusedLayers(Operation *root) {
  SmallVector<LayerOp> layers;
  root->walk([&](LayerOp layer) { layers.push_back(layer); });
  // Every name any symbol reference mentions, in one walk (calling
  // symbolKnownUseEmpty per layer walks the module once per layer).
  // Types hold no symbol references: the walks skip them. The inherent
  // attributes of an op with properties are read one by one:
  // getAttrDictionary() would build and unique a new dictionary per op.
  llvm::DenseSet<StringAttr> referenced;
  auto visit = [&](Attribute attr) {
    attr.walk<WalkOrder::PreOrder>(
        [&](SymbolRefAttr ref) {
          referenced.insert(ref.getRootReference());
          for (FlatSymbolRefAttr nested : ref.getNestedReferences())
            referenced.insert(nested.getAttr());
        },
        [](Type) { return WalkResult::skip(); });
  };
  root->walk([&](Operation *op) {
    if (!op->getPropertiesStorageSize()) {
      visit(op->getAttrDictionary());
      return;
    }
    for (StringAttr name : op->getName().getAttributeNames())
      if (std::optional<Attribute> attr = op->getInherentAttr(name.getValue()))
        if (*attr)
          visit(*attr);
    visit(op->getDiscardableAttrDictionary());
  });
  IRRewriter rewriter(root->getContext());
  for (LayerOp layer : layers)
    if (!referenced.contains(layer.getSymNameAttr()))
      rewriter.eraseOp(layer);
}
