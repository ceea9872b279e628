//===- AttentionKernel.cpp - kvq.paged_attention on NVIDIA tensor cores ---===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The GPU form of `kvq.paged_attention` (NVVM, sm_80 and newer), the design
// the H200 study of bench/RESULTS.md chose:
//
// - Grid (split, KV head, sequence), 4 warps per CTA. A CTA serves every
//   query head of its KV head, so each cache byte is read once per step.
//   The context is cut into tiles of 16 tokens (a cache block holds
//   block_size / 16); split `x` takes tiles [x * st, (x + 1) * st), warp w
//   every 4th of them from w. A warp loads its next tile while it computes
//   one: into registers, or, in the staged kernel (8-bit caches with
//   128-byte rows, splits of two tiles a warp or more), its next two into
//   two stages of shared memory by cp.async, which keeps as many bytes in
//   flight with fewer CTAs.
// - Per tile, on the tensor cores (`mma.sync` m16n8k16, f32 accumulation):
//   S^T = K Q^T (M = the 16 tokens, N = 8 query heads, K = head dims) and
//   out^T += V^T P^T (M = 16 head dims, N = 8 heads, K = the 16 tokens).
//   The operands are f16 (fp8, int8 and f16 caches: every cache value is
//   exact in f16) or bf16 (a bf16 cache). K and V are converted as they
//   are loaded; Q once per CTA, as the sum of as many f16 / bf16 terms as
//   make it exact (one for bf16 -> f16 in f16's range, two for f32 -> f16,
//   three for f32 -> bf16).
// - Online softmax in the log2 domain (the score scale carries log2(e)),
//   `ex2.approx.f32`; P is rounded to the operand type for P.V and the sum
//   of the weights is taken from the rounded values, so the same weight
//   enters the numerator and the denominator.
// - The warps of a CTA are merged in shared memory; with one split the CTA
//   writes the output, else its partial state (max, sum, acc) goes to the
//   workspace and the CTA of the (sequence, KV head) that finishes last
//   merges them (an atomic counter, reset by that CTA).
//
// The kernel ABI and the split rule: docs/KernelABI.md. The error bound:
// unittests/Attention/DecodeAttentionReference.h.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace mlir::kvq;

/// Warps per CTA, and query heads one N-tile of the MMAs holds.
static constexpr int64_t kWarps = 4, kHeadsPerTile = 8;
/// Tokens per tile (the M of S^T, the K of P.V).
static constexpr int64_t kTileTokens = 16;
/// Tiles whose cache block numbers a CTA keeps in shared memory at once.
static constexpr int64_t kTableTiles = 512;
/// The fewest tiles a split takes (docs/KernelABI.md).
static constexpr int64_t kMinSplitTiles = 4;
static_assert(kAttentionStagedMinTiles == 2 * kWarps,
              "the staged kernel starts at two tiles a warp");

int64_t mlir::kvq::getAttentionResidentCTAs(const ModuleTarget &target) {
  // The CTAs per SM times the SM count of the chip's largest part: H100 /
  // H200 132, A100 108, RTX 4090 128.
  unsigned sm = target.getSmVersion();
  int64_t sms = sm >= 90 ? 132 : sm == 89 ? 128 : sm == 80 ? 108 : 84;
  return kAttentionCTAsPerSM * sms;
}

std::optional<std::string>
mlir::kvq::getAttentionKernelLimit(const KVQTarget &target,
                                   const AttentionSignature &sig) {
  std::string why;
  llvm::raw_string_ostream os(why);
  auto identity = [](MemRefType t) { return t.getLayout().isIdentity(); };
  if (!identity(sig.query) || !identity(sig.cache)) {
    os << "needs contiguous queries, outputs and caches on the GPU (got "
       << sig.query << " and " << sig.cache << ")";
    return why;
  }
  if (ShapedType::isDynamic(sig.query.getDimSize(1)) ||
      ShapedType::isDynamic(sig.cache.getDimSize(2)) ||
      ShapedType::isDynamic(sig.query.getDimSize(2)) ||
      ShapedType::isDynamic(sig.cache.getDimSize(1))) {
    os << "needs static num_heads, num_kv_heads, head_size and block_size "
          "on the GPU (got "
       << sig.query << " and " << sig.cache << ")";
    return why;
  }
  return std::nullopt;
}

std::optional<std::string>
mlir::kvq::getTensorCoreAttentionLimit(const KVQTarget &target,
                                       const AttentionSignature &sig) {
  std::string why;
  llvm::raw_string_ostream os(why);
  const ModuleTarget &mt = target.getModuleTarget();
  if (mt.getKind() != TargetKind::NVVM) {
    os << "has no tensor-core kernel for " << mt.describe();
    return why;
  }
  if (mt.getSmVersion() < 80) {
    os << "has no tensor-core kernel before sm_80 (mma.sync m16n8k16 with "
          "f16 and bf16 operands), target "
       << mt.describe();
    return why;
  }
  if (sig.precision == AttentionPrecision::Fp8QKPV) {
    os << "has no tensor-core kernel for precision 'fp8_qk_pv'";
    return why;
  }
  int64_t heads = sig.query.getDimSize(1), kvHeads = sig.cache.getDimSize(2);
  int64_t headSize = sig.query.getDimSize(2), block = sig.cache.getDimSize(1);
  if (heads / kvHeads > kHeadsPerTile) {
    os << "has a tensor-core kernel for at most " << kHeadsPerTile
       << " query heads per KV head, got " << heads / kvHeads;
    return why;
  }
  if (headSize != 64 && headSize != 128 && headSize != 256) {
    os << "has a tensor-core kernel for head sizes 64, 128 and 256, got "
       << headSize;
    return why;
  }
  if (block % kTileTokens != 0) {
    os << "has a tensor-core kernel for block sizes that are multiples of "
       << kTileTokens << ", got " << block;
    return why;
  }
  return std::nullopt;
}

namespace {
/// Builds the kernel body of one attention signature. Lane l of a warp is
/// (g, t) = (l / 4, l % 4), the MMA's group and thread-in-group.
class AttentionKernelBuilder {
public:
  /// With `staged` (where canStage(sig)), the warps' cache tiles go
  /// through shared memory.
  AttentionKernelBuilder(OpBuilder &b, Location loc, const KVQTarget &target,
                         const AttentionSignature &sig, bool staged)
      : b(b), loc(loc), target(target), sig(sig) {
    cacheElem = sig.cache.getElementType();
    cacheBytes = sig.cache.getElementTypeBitWidth() / 8;
    numHeads = sig.query.getDimSize(1);
    numKVHeads = sig.cache.getDimSize(2);
    group = numHeads / numKVHeads;
    headSize = sig.query.getDimSize(2);
    blockSize = sig.cache.getDimSize(1);
    bf16Operands = cacheElem.isBF16();
    operandType = bf16Operands ? Type(b.getBF16Type()) : b.getF16Type();
    Type q = sig.query.getElementType();
    fp8Q = sig.precision != AttentionPrecision::Dequantized;
    if (fp8Q || q == operandType)
      queryTerms = 1;
    else if (q.isF32())
      queryTerms = bf16Operands ? 3 : 2;
    else
      queryTerms = q.isF16() ? 2 : 1; // f16 -> bf16: 2; bf16 -> f16: 1
    // K: lane t holds 16-byte pieces at elements kPitch * i + kPiece * t.
    kPiece = 16 / cacheBytes;
    kPitch = 4 * kPiece;
    // V: lane g holds vBytes-byte pieces at elements vPitch * i + vPiece * g.
    int64_t rowBytes = headSize * cacheBytes;
    vBytes = rowBytes >= 128 ? 16 : rowBytes / 8;
    vPiece = vBytes / cacheBytes;
    vPitch = 8 * vPiece;
    // A tile's K and V rows (16 each), and the stages per warp that hold
    // them in shared memory (0: the tile ahead is held in registers).
    tileBytes = 2 * kTileTokens * headSize * cacheBytes;
    stages = staged && canStage(sig) ? 2 : 0;
  }

  /// Whether the kernel of `sig` has a staged form (the stages' swizzle is
  /// for rows of 8 chunks of 16 bytes).
  static bool canStage(const AttentionSignature &sig) {
    return hasStagedAttentionKernel(sig.cache.getElementTypeBitWidth(),
                                    sig.query.getDimSize(2));
  }

  /// Bytes of the shared buffer that holds the warps' cache stages and,
  /// after the tile loop, their states' accumulators (warp w's in its own
  /// stage 0: [stage][warp][tileBytes]).
  int64_t sharedStateBytes() const {
    return std::max(kWarps * kHeadsPerTile * headSize * 4,
                    stages * kWarps * tileBytes);
  }

  /// Everything inside the launch: the rebuilt memrefs (q, kc, vc, bt, cl,
  /// out, ws or null), the CTA's score scale (log2 domain), the V scales
  /// (one, or one per KV head: selected where the output is written, as a
  /// selected value held across the tile loop costs a register that a
  /// kernel parameter does not), the CTA's Q scale, the tiles per split.
  void build(gpu::LaunchOp launch, ArrayRef<Value> memrefs, Value scoreScale,
             ValueRange vScales, Value qScale, Value splitTiles);

private:
  /// In the staged kernel, the last CTA's merge of the `nsplit` splits'
  /// states of its `group` heads and writing of the output (see the
  /// definition).
  void buildStagedSplitMerge(
      Value nsplit, Value tid, Value lane, Value warp, Value states,
      Value partials, Value smStages, function_ref<Value(Value, Value)> slotOf,
      function_ref<void(Value, Value, Value, Value)> writeOut);

  // Constants and small ops.
  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value i32(int64_t v) { return arith::ConstantIntOp::create(b, loc, v, 32); }
  Value f32(float v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value fmax(Value x, Value y) {
    return arith::MaximumFOp::create(b, loc, x, y);
  }
  Value cmpi(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, loc, p, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  Value isNegInf(Value x) {
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, x,
                                 f32(-std::numeric_limits<float>::infinity()));
  }
  /// `address` (an index) as a pointer into address space `space`: 3
  /// (shared; the address is a shared-window one) or 1 (global; generic).
  Value pointer(Value address, unsigned space) {
    Value i64 = arith::IndexCastUIOp::create(b, loc, b.getI64Type(), address);
    if (space == 3)
      return LLVM::IntToPtrOp::create(
          b, loc, LLVM::LLVMPointerType::get(b.getContext(), 3), i64);
    return LLVM::AddrSpaceCastOp::create(
        b, loc, LLVM::LLVMPointerType::get(b.getContext(), space),
        LLVM::IntToPtrOp::create(
            b, loc, LLVM::LLVMPointerType::get(b.getContext()), i64));
  }
  /// 2^x (KVQTarget::exp2: ex2.approx.f32).
  Value exp2(Value x) { return target.exp2(b, loc, x); }
  Value shuffle(Value v, Value offsetOrLane, gpu::ShuffleMode mode);
  Value shuffleXor(Value v, int64_t mask) {
    return shuffle(v, i32(mask), gpu::ShuffleMode::XOR);
  }
  Value permute(Value lo, Value hi, int64_t selector);
  /// `words` consecutive 32-bit words of `memref` from `indices` (the
  /// address aligned to 4 * words bytes).
  SmallVector<Value> loadWords(Value memref, ValueRange indices, int64_t words);
  /// Two operand-type values (f32) rounded and packed into an i32 (low half
  /// first); `rounded` gets them back as f32.
  Value packOperands(Value lo, Value hi, Value *roundedLo = nullptr,
                     Value *roundedHi = nullptr);
  /// The 16-bit half `half` of `word`, two cache elements, as an operand
  /// pair (i32; exact).
  Value cachePairToOperands(Value word, int64_t half);
  /// D = A B + C, m16n8k16: a[4], b[2] packed pairs (i32), c vector<4xf32>.
  Value mma(ArrayRef<Value> a, ArrayRef<Value> bOps, Value c);

  OpBuilder &b;
  Location loc;
  const KVQTarget &target;
  const AttentionSignature &sig;
  Type cacheElem, operandType;
  int64_t cacheBytes, numHeads, numKVHeads, group, headSize, blockSize;
  bool bf16Operands, fp8Q;
  int64_t queryTerms;
  int64_t kPiece, kPitch, vBytes, vPiece, vPitch;
  int64_t tileBytes, stages;
};
} // namespace

Value AttentionKernelBuilder::shuffle(Value v, Value offsetOrLane,
                                      gpu::ShuffleMode mode) {
  return gpu::ShuffleOp::create(b, loc, v, offsetOrLane, i32(32), mode)
      .getShuffleResult();
}

Value AttentionKernelBuilder::permute(Value lo, Value hi, int64_t selector) {
  return NVVM::PermuteOp::create(b, loc, b.getI32Type(), lo, hi, i32(selector),
                                 NVVM::PermuteMode::DEFAULT);
}

SmallVector<Value> AttentionKernelBuilder::loadWords(Value memref,
                                                     ValueRange indices,
                                                     int64_t words) {
  auto type = cast<MemRefType>(memref.getType());
  int64_t bytes = 4 * words;
  int64_t elems = bytes * 8 / type.getElementTypeBitWidth();
  Value v = vector::LoadOp::create(
      b, loc, VectorType::get({elems}, type.getElementType()), memref, indices,
      /*nontemporal=*/false, llvm::Align(bytes));
  Type elem = type.getElementType();
  if (!elem.isInteger(8) && !elem.isInteger(32))
    v = vector::BitCastOp::create(
        b, loc,
        VectorType::get({elems},
                        b.getIntegerType(type.getElementTypeBitWidth())),
        v);
  v = vector::BitCastOp::create(b, loc,
                                VectorType::get({words}, b.getI32Type()), v);
  SmallVector<Value> out;
  for (int64_t w = 0; w < words; ++w)
    out.push_back(vector::ExtractOp::create(b, loc, v, w));
  return out;
}

Value AttentionKernelBuilder::packOperands(Value lo, Value hi, Value *roundedLo,
                                           Value *roundedHi) {
  auto f32x2 = VectorType::get({2}, b.getF32Type());
  auto tx2 = VectorType::get({2}, operandType);
  Value pair =
      vector::FromElementsOp::create(b, loc, f32x2, ValueRange{lo, hi});
  Value t = arith::TruncFOp::create(b, loc, tx2, pair);
  if (roundedLo) {
    Value back = arith::ExtFOp::create(b, loc, f32x2, t);
    *roundedLo = vector::ExtractOp::create(b, loc, back, 0);
    *roundedHi = vector::ExtractOp::create(b, loc, back, 1);
  }
  Value word = vector::BitCastOp::create(
      b, loc, VectorType::get({1}, b.getI32Type()), t);
  return vector::ExtractOp::create(b, loc, word, 0);
}

Value AttentionKernelBuilder::cachePairToOperands(Value word, int64_t half) {
  if (cacheBytes == 2) // the pair itself (f16 or bf16 operands)
    return word;
  Value bits = word;
  if (half)
    bits = arith::ShRUIOp::create(b, loc, bits, i32(16));
  bits = arith::TruncIOp::create(b, loc, b.getI16Type(), bits);
  auto i8x2 = VectorType::get({2}, b.getI8Type());
  auto f16x2 = VectorType::get({2}, b.getF16Type());
  Value bytes = vector::BitCastOp::create(
      b, loc, i8x2,
      vector::BroadcastOp::create(b, loc, VectorType::get({1}, b.getI16Type()),
                                  bits));
  Value halves;
  auto f8 = dyn_cast<FloatType>(cacheElem);
  if (!f8) // int8: exact in f16
    halves = arith::SIToFPOp::create(b, loc, f16x2, bytes);
  else if (target.supports(f8))
    halves = NVVM::ConvertF8x2ToF16x2Op::create(
        b, loc, f16x2, bytes, b.getBoolAttr(false), TypeAttr::get(f8));
  else // software decode; every fp8 value is exact in f16
    halves = arith::TruncFOp::create(b, loc, f16x2,
                                     target.extFromBits(b, loc, bytes, f8));
  Value w = vector::BitCastOp::create(
      b, loc, VectorType::get({1}, b.getI32Type()), halves);
  return vector::ExtractOp::create(b, loc, w, 0);
}

/// One inline PTX statement with side effects and at most one result, for
/// what LLVM 22's NVPTX backend does not select or orders too weakly.
static Value inlinePTX(OpBuilder &b, Location loc, Type result,
                       ValueRange operands, StringRef text,
                       StringRef constraints) {
  auto op = LLVM::InlineAsmOp::create(
      b, loc, result ? TypeRange{result} : TypeRange{}, operands, text,
      constraints, /*has_side_effects=*/true, /*is_align_stack=*/false,
      LLVM::tailcallkind::TailCallKind::None,
      LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
      /*operand_attrs=*/ArrayAttr());
  return result ? op.getResult(0) : Value();
}

Value AttentionKernelBuilder::mma(ArrayRef<Value> a, ArrayRef<Value> bOps,
                                  Value c) {
  SmallVector<Value> av, bv, cv;
  auto asOperand = [&](Value word) -> Value {
    if (bf16Operands)
      return word;
    return LLVM::BitcastOp::create(b, loc, VectorType::get({2}, b.getF16Type()),
                                   word);
  };
  for (Value v : a)
    av.push_back(asOperand(v));
  for (Value v : bOps)
    bv.push_back(asOperand(v));
  for (int64_t i = 0; i < 4; ++i)
    cv.push_back(vector::ExtractOp::create(b, loc, c, i));
  Type f32 = b.getF32Type();
  auto resType =
      LLVM::LLVMStructType::getLiteral(b.getContext(), {f32, f32, f32, f32});
  NVVM::MMATypes ptx =
      bf16Operands ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  auto op = NVVM::MmaOp::create(
      b, loc, resType, av, bv, cv, ArrayRef<int64_t>{16, 8, 16}, std::nullopt,
      std::nullopt, std::array<NVVM::MMATypes, 2>{ptx, ptx},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value> d;
  for (int64_t i = 0; i < 4; ++i)
    d.push_back(LLVM::ExtractValueOp::create(b, loc, op, i));
  return vector::FromElementsOp::create(b, loc, VectorType::get({4}, f32), d);
}

// With D = 128 a warp's 32 lanes hold one head's dims, 4 each (thread e
// of the CTA takes head e / 32, dims 4 (e % 32) .. + 3), and the merge runs
// in batches of kAttentionStagedMergeBatch splits whose loads are all in
// flight together, one L2 round trip a batch: lane i loads the (max, sum)
// of split c + i, and each lane the accumulators of its dims of splits c ..
// c + 15 into registers and of splits c + 16 .. c + 31 into its own slots
// of the stages (cp.async; the tile loop has drained them). The batch's
// maximum and weighted sum are reduced across the warp, and each split's
// weight exp2(m - M), computed once by its lane, is shuffled to the others
// for the accumulators. The online rescaling between batches is the direct
// merge's.
void AttentionKernelBuilder::buildStagedSplitMerge(
    Value nsplit, Value tid, Value lane, Value warp, Value states,
    Value partials, Value smStages, function_ref<Value(Value, Value)> slotOf,
    function_ref<void(Value, Value, Value, Value)> writeOut) {
  using P = arith::CmpIPredicate;
  constexpr int64_t batch = kAttentionStagedMergeBatch, inRegisters = batch / 2,
                    staged = batch - inRegisters;
  assert(headSize == 128 && batch == 32 && "a lane per split of a batch");
  assert(kWarps * staged * 32 * 16 <= stages * kWarps * tileBytes &&
         "every warp's slots fit the stages");
  Type f32T = b.getF32Type();
  auto f32x2 = VectorType::get({2}, f32T);
  auto f32x4 = VectorType::get({4}, f32T);
  const float negInf = -std::numeric_limits<float>::infinity();
  Value zeros4 = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(f32x4, b.getF32FloatAttr(0.0f)));
  Value empty = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(f32x2, ArrayRef<float>{negInf, 0.0f}));
  // Lane l's slot for staged split j of a batch: [warp][j][l], 16 bytes.
  Value slots = memref::ViewOp::create(
      b, loc,
      MemRefType::get({kWarps * staged * 32 * 4}, f32T,
                      MemRefLayoutAttrInterface(),
                      cast<MemRefType>(smStages.getType()).getMemorySpace()),
      smStages, idx(0), ValueRange{});
  auto slotIndex = [&](int64_t j) {
    return mul(add(mul(add(mul(warp, idx(staged)), idx(j)), idx(32)), lane),
               idx(4));
  };
  Value slotsAddress =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, slots);
  Value partialsAddress =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, partials);
  Value d = mul(lane, idx(4));
  scf::ForOp::create(
      b, loc, tid, idx(group * 32), idx(kWarps * 32), ValueRange{},
      [&](OpBuilder &, Location, Value e, ValueRange) {
        Value head = arith::DivUIOp::create(b, loc, e, idx(32));
        Value slot0 = slotOf(head, idx(0));
        auto loop = scf::ForOp::create(
            b, loc, idx(0), nsplit, idx(batch),
            ValueRange{f32(negInf), f32(0.0f), zeros4},
            [&](OpBuilder &, Location, Value c0, ValueRange run) {
              // Split s's slot if s < nsplit, else split 0's: the slots
              // past nsplit hold another launch's states or are past the
              // workspace; what is loaded for them is not used.
              auto slotOfSplit = [&](Value s, Value valid) {
                return add(slot0, select(valid, s, idx(0)));
              };
              Value s = add(c0, lane);
              Value valid = cmpi(P::ult, s, nsplit);
              Value ml =
                  select(valid,
                         vector::LoadOp::create(
                             b, loc, f32x2, states,
                             ValueRange{mul(slotOfSplit(s, valid), idx(2))},
                             /*nontemporal=*/false, llvm::Align(8)),
                         empty);
              SmallVector<Value> accs;
              for (int64_t j = 0; j < batch; ++j) {
                Value sj = add(c0, idx(j));
                Value validJ = cmpi(P::ult, sj, nsplit);
                Value at = add(mul(slotOfSplit(sj, validJ), idx(headSize)), d);
                if (j < inRegisters) {
                  accs.push_back(
                      select(validJ,
                             vector::LoadOp::create(
                                 b, loc, f32x4, partials, ValueRange{at},
                                 /*nontemporal=*/false, llvm::Align(16)),
                             zeros4));
                  continue;
                }
                // Zero-filled past nsplit (0 bytes copied).
                NVVM::CpAsyncOp::create(
                    b, loc,
                    pointer(add(slotsAddress,
                                mul(slotIndex(j - inRegisters), idx(4))),
                            3),
                    pointer(add(partialsAddress, mul(at, idx(4))), 1),
                    b.getI32IntegerAttr(16),
                    NVVM::LoadCacheModifierKindAttr::get(
                        b.getContext(), NVVM::LoadCacheModifierKind::CG),
                    select(validJ, i32(16), i32(0)));
              }
              NVVM::CpAsyncCommitGroupOp::create(b, loc);

              Value m = vector::ExtractOp::create(b, loc, ml, 0);
              Value l = vector::ExtractOp::create(b, loc, ml, 1);
              Value mx = fmax(run[0], m);
              for (int64_t o = 16; o >= 1; o /= 2)
                mx = fmax(mx, shuffleXor(mx, o));
              Value shift = select(isNegInf(mx), f32(0.0f), mx);
              Value r = exp2(arith::SubFOp::create(b, loc, run[0], shift));
              Value w = select(isNegInf(m), f32(0.0f),
                               exp2(arith::SubFOp::create(b, loc, m, shift)));
              Value sum = fmul(w, l);
              for (int64_t o = 16; o >= 1; o /= 2)
                sum = fadd(sum, shuffleXor(sum, o));
              Value total = fadd(fmul(run[1], r), sum);
              Value acc =
                  fmul(run[2], vector::BroadcastOp::create(b, loc, f32x4, r));
              auto accumulate = [&](int64_t j, Value accJ) {
                Value wj = shuffle(w, i32(j), gpu::ShuffleMode::IDX);
                acc = arith::AddFOp::create(
                    b, loc, acc,
                    fmul(vector::BroadcastOp::create(b, loc, f32x4, wj), accJ));
              };
              for (int64_t j = 0; j < inRegisters; ++j)
                accumulate(j, accs[j]);
              // A lane reads only its own slots, so its own copies' wait
              // suffices; and the next batch's copies into them issue after
              // these loads' values were used.
              NVVM::CpAsyncWaitGroupOp::create(b, loc, 0);
              for (int64_t j = inRegisters; j < batch; ++j)
                accumulate(j, vector::LoadOp::create(
                                  b, loc, f32x4, slots,
                                  ValueRange{slotIndex(j - inRegisters)},
                                  /*nontemporal=*/false, llvm::Align(16)));
              scf::YieldOp::create(b, loc, ValueRange{mx, total, acc});
            });
        writeOut(head, d, loop.getResult(2), loop.getResult(1));
        scf::YieldOp::create(b, loc);
      });
}

void AttentionKernelBuilder::build(gpu::LaunchOp launch,
                                   ArrayRef<Value> memrefs, Value scoreScale,
                                   ValueRange vScales, Value qScale,
                                   Value splitTiles) {
  Value query = memrefs[0], keys = memrefs[1], values = memrefs[2],
        tables = memrefs[3], lens = memrefs[4], out = memrefs[5],
        workspace = memrefs[6];
  Type f32T = b.getF32Type();
  auto f32x4 = VectorType::get({4}, f32T);
  const float negInf = -std::numeric_limits<float>::infinity();
  const int64_t chunks = headSize / 16, mTiles = headSize / 16;
  using P = arith::CmpIPredicate;

  // Shared memory (workgroup attributions of the launch).
  Value smTable = launch.getWorkgroupAttributions()[0];
  Value smMax = launch.getWorkgroupAttributions()[1];
  Value smSum = launch.getWorkgroupAttributions()[2];
  Value smStages = launch.getWorkgroupAttributions()[3];
  Value smAcc = memref::ViewOp::create(
      b, loc,
      MemRefType::get({kWarps, kHeadsPerTile, headSize}, f32T,
                      MemRefLayoutAttrInterface(),
                      cast<MemRefType>(smStages.getType()).getMemorySpace()),
      smStages, idx(0), ValueRange{});
  Value smLast = launch.getWorkgroupAttributions()[4];

  Value split = launch.getBlockIds().x, kvHead = launch.getBlockIds().y,
        seq = launch.getBlockIds().z;
  Value numSplitsGrid = launch.getGridSize().x;
  Value tid = launch.getThreadIds().x;
  Value lane = arith::RemUIOp::create(b, loc, tid, idx(32));
  Value warp = arith::DivUIOp::create(b, loc, tid, idx(32));
  Value g = arith::DivUIOp::create(b, loc, lane, idx(4));
  Value t = arith::RemUIOp::create(b, loc, lane, idx(4));

  // What the CTA reads first, the context length, its part of the block
  // table and the queries, is requested before anything waits on the
  // length: the queries' lines are prefetched into the L1 (the loads
  // themselves, after the split's extent is known, hit it), the table's
  // first chunk is loaded, then the length. Each is a DRAM trip; issued
  // together, the cache's loads wait for one of them, not for two.
  Value qHeadBase = mul(kvHead, idx(group));
  {
    int64_t qBytes = sig.query.getElementTypeBitWidth() / 8;
    int64_t rowBytes = group * headSize * qBytes;
    int64_t lines = rowBytes / 128 + 1; // + 1: rows need not be aligned
    Value rowsStart =
        mul(add(mul(seq, idx(numHeads)), qHeadBase), idx(headSize * qBytes));
    auto ifLine = scf::IfOp::create(b, loc, cmpi(P::ult, tid, idx(lines)),
                                    /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifLine.thenBlock());
    Value offset =
        arith::MinUIOp::create(b, loc, add(rowsStart, mul(tid, idx(128))),
                               add(rowsStart, idx(rowBytes - 1)));
    Value address = add(
        memref::ExtractAlignedPointerAsIndexOp::create(b, loc, query), offset);
    // Inline PTX: LLVM 22's NVPTX backend selects no llvm.nvvm.prefetch.
    inlinePTX(b, loc, Type(),
              ValueRange{arith::IndexCastUIOp::create(b, loc, b.getI64Type(),
                                                      address)},
              "prefetch.L1 [$0];", "l");
  }
  Value first = mul(split, splitTiles);
  // The block numbers of tiles [first + base, first + end) (those inside
  // the table) into shared memory. The first chunk is loaded before the
  // context length: entries past a sequence's end may be loaded, never
  // used.
  Value tilesPerBlock = idx(blockSize / kTileTokens);
  Value tableCols = dimOf(b, loc, tables, 1);
  auto loadTable = [&](Value base, Value end) {
    scf::ForOp::create(
        b, loc, add(base, tid), end, idx(kWarps * 32), ValueRange{},
        [&](OpBuilder &, Location, Value k, ValueRange) {
          Value col =
              arith::DivUIOp::create(b, loc, add(first, k), tilesPerBlock);
          auto inside = scf::IfOp::create(b, loc, cmpi(P::ult, col, tableCols),
                                          /*withElseRegion=*/false);
          {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToStart(inside.thenBlock());
            Value entry =
                memref::LoadOp::create(b, loc, tables, ValueRange{seq, col});
            memref::StoreOp::create(
                b, loc, entry, smTable,
                ValueRange{arith::SubIOp::create(b, loc, k, base)});
          }
          scf::YieldOp::create(b, loc);
        });
  };
  loadTable(idx(0),
            arith::MinUIOp::create(b, loc, splitTiles, idx(kTableTiles)));

  // The split's tiles. A negative length reads nothing.
  Value len32 = arith::MaxSIOp::create(
      b, loc, memref::LoadOp::create(b, loc, lens, ValueRange{seq}), i32(0));
  Value len = arith::IndexCastOp::create(b, loc, b.getIndexType(), len32);
  Value numTiles = arith::CeilDivUIOp::create(b, loc, len, idx(kTileTokens));
  Value nsplit = arith::MaxUIOp::create(
      b, loc, arith::CeilDivUIOp::create(b, loc, numTiles, splitTiles), idx(1));

  // Q^T fragments (B operand of S^T = K Q^T): lane (g, t) holds head g
  // (zero for g >= G), dims d0 .. d0 + 3 of chunk c.
  Value headOfLane = arith::MinUIOp::create(b, loc, g, idx(group - 1));
  Value qHead = add(qHeadBase, headOfLane);
  Value laneHasHead = cmpi(P::ult, g, idx(group));
  auto chunkDim = [&](int64_t c) {
    int64_t pos = 4 * c;
    return add(idx(kPitch * (pos / kPiece) + pos % kPiece),
               mul(t, idx(kPiece)));
  };
  // qFrag[term][chunk] = {b0, b1}.
  SmallVector<SmallVector<std::array<Value, 2>>> qFrag(queryTerms);
  Value qScales = vector::BroadcastOp::create(b, loc, f32x4, qScale);
  Value zero32 = i32(0);
  for (int64_t c = 0; c < chunks; ++c) {
    Value x = vector::LoadOp::create(
        b, loc, VectorType::get({4}, sig.query.getElementType()), query,
        ValueRange{seq, qHead, chunkDim(c)}, /*nontemporal=*/false,
        llvm::Align(4 * sig.query.getElementTypeBitWidth() / 8));
    Value xf = sig.query.getElementType().isF32()
                   ? x
                   : arith::ExtFOp::create(b, loc, f32x4, x).getResult();
    if (fp8Q) // fp8_qk: Q quantized as the store quantizes, then decoded
      xf = decodeToF32(b, loc, target,
                       quantize(b, loc, target, xf, cacheElem,
                                /*quantized=*/true,
                                StreamScales{qScales, {}, {}, {}, {}}));
    SmallVector<Value> rest;
    for (int64_t e = 0; e < 4; ++e)
      rest.push_back(vector::ExtractOp::create(b, loc, xf, e));
    for (int64_t term = 0; term < queryTerms; ++term) {
      SmallVector<Value> r(4);
      Value w0 = packOperands(rest[0], rest[1], &r[0], &r[1]);
      Value w1 = packOperands(rest[2], rest[3], &r[2], &r[3]);
      // The remainder is exact in f32 (x minus its rounding).
      for (int64_t e = 0; e < 4; ++e)
        rest[e] = arith::SubFOp::create(b, loc, rest[e], r[e]);
      qFrag[term].push_back(
          {select(laneHasHead, w0, zero32), select(laneHasHead, w1, zero32)});
    }
  }

  // Split 0 of an empty sequence runs (it writes zeros); the splits past a
  // sequence's end exit.
  Value active = cmpi(P::ult, split, nsplit);
  auto ifActive = scf::IfOp::create(b, loc, active, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard activeGuard(b);
  b.setInsertionPointToStart(ifActive.thenBlock());
  Value count = arith::MinUIOp::create(
      b, loc, splitTiles,
      arith::SubIOp::create(
          b, loc, arith::MaxUIOp::create(b, loc, numTiles, first), first));

  // Per-lane state: acc[mt] (dims of m-tile mt x heads 2t, 2t+1), the
  // running maxima and sums of heads 2t and 2t+1.
  SmallVector<Value> init;
  Value zeros4 = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(f32x4, b.getF32FloatAttr(0.0f)));
  for (int64_t mt = 0; mt < mTiles; ++mt)
    init.push_back(zeros4);
  init.append({f32(negInf), f32(negInf), f32(0.0f), f32(0.0f)});

  // Addresses for the stages' asynchronous copies.
  auto addressOf = [&](Value memref) -> Value {
    return memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
  };
  Value smStagesAddress, keysAddress, valuesAddress;
  if (stages) {
    smStagesAddress = addressOf(smStages);
    keysAddress = addressOf(keys);
    valuesAddress = addressOf(values);
  }

  // Table chunks of kTableTiles tiles.
  auto tableLoop = scf::ForOp::create(
      b, loc, idx(0), count, idx(kTableTiles), init,
      [&](OpBuilder &, Location, Value base, ValueRange state0) {
        Value end =
            arith::MinUIOp::create(b, loc, count, add(base, idx(kTableTiles)));
        auto later = scf::IfOp::create(b, loc, cmpi(P::ne, base, idx(0)),
                                       /*withElseRegion=*/false);
        {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToStart(later.thenBlock());
          gpu::BarrierOp::create(b, loc); // the previous chunk is done
          loadTable(base, end);
        }
        gpu::BarrierOp::create(b, loc);
        // The cache words of tile k (of this chunk) a lane holds: K rows g
        // and g + 8 (lane t's pieces), then V rows 2t, 2t + 1, 2t + 8,
        // 2t + 9 (lane g's pieces), unmasked.
        const int64_t kWords = 2 * (headSize / kPitch) * 4;
        const int64_t vWordsPerRow = (headSize / vPitch) * (vBytes / 4);
        // Tile k's cache block (from the table chunk in shared memory) and
        // its first row in that block.
        auto tileStart = [&](Value k) -> std::pair<Value, Value> {
          Value tile = add(first, k);
          Value blk = arith::IndexCastOp::create(
              b, loc, b.getIndexType(),
              memref::LoadOp::create(
                  b, loc, smTable,
                  ValueRange{arith::SubIOp::create(b, loc, k, base)}));
          return {blk, mul(arith::RemUIOp::create(b, loc, tile, tilesPerBlock),
                           idx(kTileTokens))};
        };
        auto loadTile = [&](Value k) {
          auto [blk, row0] = tileStart(k);
          SmallVector<Value> words;
          for (int64_t r = 0; r < 2; ++r) {
            Value row = add(row0, add(g, idx(8 * r)));
            for (int64_t i = 0; i < headSize / kPitch; ++i)
              llvm::append_range(words,
                                 loadWords(keys,
                                           ValueRange{blk, row, kvHead,
                                                      add(idx(kPitch * i),
                                                          mul(t, idx(kPiece)))},
                                           4));
          }
          for (int64_t j = 0; j < 4; ++j) {
            Value row =
                add(row0, add(mul(t, idx(2)), idx((j & 1) + 8 * (j >> 1))));
            for (int64_t i = 0; i < headSize / vPitch; ++i)
              llvm::append_range(words,
                                 loadWords(values,
                                           ValueRange{blk, row, kvHead,
                                                      add(idx(vPitch * i),
                                                          mul(g, idx(vPiece)))},
                                           vBytes / 4));
          }
          return words;
        };
        // Software pipelining: with an 8-bit cache a warp's next tile is
        // loaded before its current tile is computed (past the chunk's end,
        // its last tile again, which is in bounds), so a warp always has a
        // tile's loads in flight. A 16-bit cache's tile is twice the bytes
        // (as many in flight unpipelined) and twice the registers: held
        // ahead, it spilled under the 4-CTA register budget.
        const int64_t ahead = stages ? 0 : cacheBytes == 1 ? 1 : 0;
        Value lastTile = arith::SubIOp::create(b, loc, end, idx(1));
        auto nextTile = [&](Value k) {
          return arith::MinUIOp::create(b, loc, k, lastTile).getResult();
        };
        // With `stages`, a warp's tiles go through shared memory instead:
        // tile k is copied (cp.async, 16 bytes a lane, bypassing the L1)
        // into stage (k / 4) % stages of the warp while the tiles before
        // it are computed, so `stages` tiles' loads are in flight without
        // registers held for them. A row's 16-byte chunks are stored
        // XOR-swizzled so that the fragment reads below are free of bank
        // conflicts: K row r's chunk c at c ^ 4 (r % 2), V row r's at
        // c ^ 2 ((r / 2) % 4). The copies address the caches from their
        // base pointers (contiguous, offset 0: docs/KernelABI.md).
        const int64_t rowBytes = headSize * cacheBytes,
                      rowChunks = rowBytes / 16;
        auto stageOffset = [&](Value stage) {
          return mul(add(mul(stage, idx(kWarps)), warp), idx(tileBytes));
        };
        auto issueTile = [&](Value k, Value stage) {
          auto [blk, row0] = tileStart(k);
          Value dst0 = add(smStagesAddress, stageOffset(stage));
          // Lane l copies chunk c = l % rowChunks of rows r0 + rowsPerPass
          // * u (r0 = l / rowChunks), of K then of V: the swizzled chunk
          // of K is the same for every u, V's alternates with u's parity.
          const int64_t rowsPerPass = 32 / rowChunks;
          Value r0 = arith::DivUIOp::create(b, loc, lane, idx(rowChunks));
          Value c = arith::RemUIOp::create(b, loc, lane, idx(rowChunks));
          Value kPos = arith::XOrIOp::create(
              b, loc, c,
              mul(arith::RemUIOp::create(b, loc, r0, idx(2)), idx(4)));
          Value vPos = arith::XOrIOp::create(
              b, loc, c,
              mul(arith::RemUIOp::create(
                      b, loc, arith::DivUIOp::create(b, loc, r0, idx(2)),
                      idx(4)),
                  idx(2)));
          Value vPosOdd = arith::XOrIOp::create(b, loc, vPos, idx(4));
          Value srcRow =
              add(mul(add(mul(add(mul(blk, idx(blockSize)), add(row0, r0)),
                              idx(numKVHeads)),
                          kvHead),
                      idx(rowBytes)),
                  mul(c, idx(16)));
          Value dstRow = add(dst0, mul(r0, idx(rowBytes)));
          for (int64_t u = 0; u < kTileTokens / rowsPerPass; ++u) {
            int64_t rowStep = rowsPerPass * u;
            for (bool isV : {false, true}) {
              Value pos = isV ? (u % 2 ? vPosOdd : vPos) : kPos;
              Value dst =
                  add(dstRow, add(mul(pos, idx(16)),
                                  idx((isV ? kTileTokens * rowBytes : 0) +
                                      rowStep * rowBytes)));
              Value src =
                  add(isV ? valuesAddress : keysAddress,
                      add(srcRow, idx(rowStep * numKVHeads * rowBytes)));
              NVVM::CpAsyncOp::create(
                  b, loc, pointer(dst, 3), pointer(src, 1),
                  b.getI32IntegerAttr(16),
                  NVVM::LoadCacheModifierKindAttr::get(
                      b.getContext(), NVVM::LoadCacheModifierKind::CG),
                  /*cpSize=*/Value());
            }
          }
        };
        // Tile k's copies, if k < end, as one group (empty past the end).
        auto issueIfInside = [&](Value k, Value stage) {
          auto inside = scf::IfOp::create(b, loc, cmpi(P::ult, k, end),
                                          /*withElseRegion=*/false);
          {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToStart(inside.thenBlock());
            issueTile(k, stage);
          }
          NVVM::CpAsyncCommitGroupOp::create(b, loc);
        };
        auto syncWarp = [&] { NVVM::SyncWarpOp::create(b, loc, i32(-1)); };
        // The words loadTile gives, from stage `stage`.
        auto readTile = [&](Value stage) {
          Value s0 = stageOffset(stage);
          SmallVector<Value> words;
          for (int64_t r = 0; r < 2; ++r) {
            Value row = add(g, idx(8 * r));
            Value swizzle =
                mul(arith::RemUIOp::create(b, loc, g, idx(2)), idx(4));
            for (int64_t i = 0; i < headSize / kPitch; ++i) {
              Value pos =
                  arith::XOrIOp::create(b, loc, add(idx(4 * i), t), swizzle);
              llvm::append_range(
                  words,
                  loadWords(smStages,
                            ValueRange{add(s0, add(mul(row, idx(rowBytes)),
                                                   mul(pos, idx(16))))},
                            4));
            }
          }
          for (int64_t j = 0; j < 4; ++j) {
            Value row = add(mul(t, idx(2)), idx((j & 1) + 8 * (j >> 1)));
            Value swizzle = mul(t, idx(2));
            for (int64_t i = 0; i < headSize / vPitch; ++i) {
              Value pos =
                  arith::XOrIOp::create(b, loc, add(idx(8 * i), g), swizzle);
              llvm::append_range(
                  words,
                  loadWords(smStages,
                            ValueRange{add(s0, add(idx(kTileTokens * rowBytes),
                                                   add(mul(row, idx(rowBytes)),
                                                       mul(pos, idx(16)))))},
                            vBytes / 4));
            }
          }
          return words;
        };
        for (int64_t d = 0; d < stages; ++d)
          issueIfInside(add(base, add(warp, idx(d * kWarps))), idx(d));
        SmallVector<Value> loopInit(state0.begin(), state0.end());
        for (int64_t d = 0; d < ahead; ++d)
          llvm::append_range(
              loopInit,
              loadTile(nextTile(add(base, add(warp, idx(d * kWarps))))));
        const int64_t numState = state0.size();
        auto tileLoop = scf::ForOp::create(
            b, loc, add(base, warp), end, idx(kWarps), loopInit,
            [&](OpBuilder &, Location, Value k, ValueRange iter) {
              ValueRange state = iter.take_front(numState);
              // The words of tiles k, k + 4, ..., k + 4 * ahead.
              SmallVector<Value> window(iter.drop_front(numState));
              if (stages) {
                Value stage = arith::RemUIOp::create(
                    b, loc,
                    arith::DivUIOp::create(
                        b, loc, arith::SubIOp::create(b, loc, k, base),
                        idx(kWarps)),
                    idx(stages));
                NVVM::CpAsyncWaitGroupOp::create(b, loc, stages - 1);
                syncWarp(); // every lane's copies of tile k have landed
                window = readTile(stage);
                syncWarp(); // every lane has read the stage
                issueIfInside(add(k, idx(stages * kWarps)), stage);
              } else {
                llvm::append_range(
                    window, loadTile(nextTile(add(k, idx(ahead * kWarps)))));
              }
              const int64_t oneTile = window.size() / (ahead + 1);
              ArrayRef<Value> words =
                  ArrayRef<Value>(window).take_front(oneTile);
              SmallVector<Value> prefetched(window.begin() + oneTile,
                                            window.end());
              SmallVector<Value> acc(state.begin(), state.begin() + mTiles);
              Value m0 = state[mTiles], m1 = state[mTiles + 1],
                    l0 = state[mTiles + 2], l1 = state[mTiles + 3];
              Value tok0 = mul(add(first, k), idx(kTileTokens));
              Value valid = arith::SubIOp::create(b, loc, len, tok0); // >= 1
              SmallVector<SmallVector<Value>> kw(2);
              for (int64_t r = 0; r < 2; ++r)
                kw[r].assign(words.begin() + r * kWords / 2,
                             words.begin() + (r + 1) * kWords / 2);
              // V rows past the end are zero: P = 0 times a NaN of an unused
              // row would be NaN.
              std::array<SmallVector<Value>, 4> vw;
              for (int64_t j = 0; j < 4; ++j) {
                Value tokInTile =
                    add(mul(t, idx(2)), idx((j & 1) + 8 * (j >> 1)));
                Value inside = cmpi(P::ult, tokInTile, valid);
                for (int64_t w = 0; w < vWordsPerRow; ++w)
                  vw[j].push_back(select(
                      inside, words[kWords + j * vWordsPerRow + w], zero32));
              }
              // S^T: s0 (token g, head 2t), s1 (g, 2t + 1), s2 (g + 8, 2t),
              // s3 (g + 8, 2t + 1).
              Value sc = zeros4;
              for (int64_t c = 0; c < chunks; ++c) {
                std::array<Value, 4> a;
                if (cacheBytes == 1) {
                  a = {cachePairToOperands(kw[0][c], 0),
                       cachePairToOperands(kw[1][c], 0),
                       cachePairToOperands(kw[0][c], 1),
                       cachePairToOperands(kw[1][c], 1)};
                } else {
                  a = {kw[0][2 * c], kw[1][2 * c], kw[0][2 * c + 1],
                       kw[1][2 * c + 1]};
                }
                for (int64_t term = 0; term < queryTerms; ++term)
                  sc = mma(a, {qFrag[term][c][0], qFrag[term][c][1]}, sc);
              }
              SmallVector<Value> s;
              for (int64_t e = 0; e < 4; ++e) {
                Value x =
                    fmul(vector::ExtractOp::create(b, loc, sc, e), scoreScale);
                Value tok = add(g, idx(e < 2 ? 0 : 8));
                s.push_back(select(cmpi(P::ult, tok, valid), x, f32(negInf)));
              }
              // Online softmax (log2 domain) for heads 2t and 2t + 1.
              Value x0 = fmax(s[0], s[2]), x1 = fmax(s[1], s[3]);
              for (int64_t o : {4, 8, 16}) {
                x0 = fmax(x0, shuffleXor(x0, o));
                x1 = fmax(x1, shuffleXor(x1, o));
              }
              Value n0 = fmax(m0, x0), n1 = fmax(m1, x1);
              // A head whose maximum is still -inf subtracts 0 instead.
              Value z0 = select(isNegInf(n0), f32(0.0f), n0);
              Value z1 = select(isNegInf(n1), f32(0.0f), n1);
              Value al0 = exp2(arith::SubFOp::create(b, loc, m0, z0));
              Value al1 = exp2(arith::SubFOp::create(b, loc, m1, z1));
              std::array<Value, 4> p, pr;
              for (int64_t e = 0; e < 4; ++e)
                p[e] =
                    exp2(arith::SubFOp::create(b, loc, s[e], e % 2 ? z1 : z0));
              // P rounded to the operand type: X0 (head 2t: tokens g, g + 8),
              // X1 (head 2t + 1); the sums take the rounded weights.
              Value X0 = packOperands(p[0], p[2], &pr[0], &pr[2]);
              Value X1 = packOperands(p[1], p[3], &pr[1], &pr[3]);
              Value nl0 = fadd(fmul(l0, al0), fadd(pr[0], pr[2]));
              Value nl1 = fadd(fmul(l1, al1), fadd(pr[1], pr[3]));
              Value alpha = vector::FromElementsOp::create(
                  b, loc, f32x4, ValueRange{al0, al1, al0, al1});
              // P^T as the B operand: lane (g, t) needs head g, tokens 2t,
              // 2t + 1 (b0) and 2t + 8, 2t + 9 (b1), held by lanes (2t, g / 2)
              // and (2t + 1, g / 2).
              Value srcA = arith::IndexCastOp::create(
                  b, loc, b.getI32Type(),
                  add(mul(t, idx(8)),
                      arith::DivUIOp::create(b, loc, g, idx(2))));
              Value srcB = arith::AddIOp::create(b, loc, srcA, i32(4));
              Value a0 = shuffle(X0, srcA, gpu::ShuffleMode::IDX);
              Value a1 = shuffle(X1, srcA, gpu::ShuffleMode::IDX);
              Value c0 = shuffle(X0, srcB, gpu::ShuffleMode::IDX);
              Value c1 = shuffle(X1, srcB, gpu::ShuffleMode::IDX);
              Value odd = cmpi(P::ne, arith::RemUIOp::create(b, loc, g, idx(2)),
                               idx(0));
              Value fa = select(odd, a1, a0), fb = select(odd, c1, c0);
              std::array<Value, 2> pb = {permute(fa, fb, 0x5410),
                                         permute(fa, fb, 0x7632)};
              // out^T += V^T P^T, m-tile mt = pair mt of lane g's elements.
              SmallVector<Value> next;
              for (int64_t mt = 0; mt < mTiles; ++mt) {
                std::array<Value, 4> a;
                if (cacheBytes == 1) {
                  int64_t w = mt / 2;
                  int64_t sel = mt % 2 ? 0x7362 : 0x5140;
                  Value lo = permute(vw[0][w], vw[1][w], sel);
                  Value hi = permute(vw[2][w], vw[3][w], sel);
                  a = {cachePairToOperands(lo, 0), cachePairToOperands(lo, 1),
                       cachePairToOperands(hi, 0), cachePairToOperands(hi, 1)};
                } else {
                  a = {permute(vw[0][mt], vw[1][mt], 0x5410),
                       permute(vw[0][mt], vw[1][mt], 0x7632),
                       permute(vw[2][mt], vw[3][mt], 0x5410),
                       permute(vw[2][mt], vw[3][mt], 0x7632)};
                }
                next.push_back(
                    mma(a, pb, arith::MulFOp::create(b, loc, acc[mt], alpha)));
              }
              next.append({n0, n1, nl0, nl1});
              llvm::append_range(next, prefetched);
              scf::YieldOp::create(b, loc, next);
            });
        if (stages) {
          // Nothing is in flight into the stages past the loop (the state
          // accumulators and the next chunk reuse them).
          NVVM::CpAsyncWaitGroupOp::create(b, loc, 0);
          syncWarp();
        }
        scf::YieldOp::create(b, loc,
                             tileLoop.getResults().take_front(numState));
      });
  ValueRange state = tableLoop.getResults();
  Value m0 = state[mTiles], m1 = state[mTiles + 1];
  Value l0 = state[mTiles + 2], l1 = state[mTiles + 3];
  for (int64_t o : {4, 8, 16}) {
    l0 = fadd(l0, shuffleXor(l0, o));
    l1 = fadd(l1, shuffleXor(l1, o));
  }

  // Warp state -> shared memory (heads < G).
  Value h0 = mul(t, idx(2)), h1 = add(h0, idx(1));
  Value has0 = cmpi(P::ult, h0, idx(group)),
        has1 = cmpi(P::ult, h1, idx(group));
  auto storeIf = [&](Value cond, Value v, Value memref, ValueRange indices) {
    auto ifOp = scf::IfOp::create(b, loc, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    memref::StoreOp::create(b, loc, v, memref, indices);
  };
  Value g0 = cmpi(P::eq, g, idx(0));
  storeIf(arith::AndIOp::create(b, loc, g0, has0), m0, smMax,
          ValueRange{warp, h0});
  storeIf(arith::AndIOp::create(b, loc, g0, has0), l0, smSum,
          ValueRange{warp, h0});
  storeIf(arith::AndIOp::create(b, loc, g0, has1), m1, smMax,
          ValueRange{warp, h1});
  storeIf(arith::AndIOp::create(b, loc, g0, has1), l1, smSum,
          ValueRange{warp, h1});
  for (int64_t mt = 0; mt < mTiles; ++mt) {
    int64_t pos = 2 * mt;
    Value dim =
        add(idx(vPitch * (pos / vPiece) + pos % vPiece), mul(g, idx(vPiece)));
    Value dim1 = add(dim, idx(1));
    Value acc = state[mt];
    auto e = [&](int64_t i) {
      return vector::ExtractOp::create(b, loc, acc, i);
    };
    storeIf(has0, e(0), smAcc, ValueRange{warp, h0, dim});
    storeIf(has1, e(1), smAcc, ValueRange{warp, h1, dim});
    storeIf(has0, e(2), smAcc, ValueRange{warp, h0, dim1});
    storeIf(has1, e(3), smAcc, ValueRange{warp, h1, dim1});
  }
  gpu::BarrierOp::create(b, loc);

  // The CTA's result: thread e takes head e / (D / 4), dims 4 (e % (D / 4))
  // .. + 3.
  const int64_t quads = headSize / 4;
  auto headDims = [&](Value e) -> std::pair<Value, Value> {
    return {arith::DivUIOp::create(b, loc, e, idx(quads)),
            mul(arith::RemUIOp::create(b, loc, e, idx(quads)), idx(4))};
  };
  // out[seq, head] = o * (s_v / l), zeros when l = 0.
  Type outElem = sig.query.getElementType();
  auto writeOut = [&](Value head, Value d, Value o, Value l) {
    Value positive =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, l, f32(0.0f));
    Value factor =
        select(positive,
               arith::DivFOp::create(
                   b, loc, selectHeadScale(b, loc, vScales, kvHead), l),
               f32(0.0f));
    Value y = fmul(o, vector::BroadcastOp::create(b, loc, f32x4, factor));
    if (!outElem.isF32())
      y = arith::TruncFOp::create(b, loc, VectorType::get({4}, outElem), y);
    vector::StoreOp::create(
        b, loc, y, out, ValueRange{seq, add(mul(kvHead, idx(group)), head), d},
        /*nontemporal=*/false,
        llvm::Align(4 * outElem.getIntOrFloatBitWidth() / 8));
  };
  // Merges `n` >= 1 states (m_i, l_i, acc_i) read by `read(i, valid)`,
  // online in batches of `batch` states whose loads are in flight together
  // (`valid` is i < n; an invalid state reads as the empty one, (-inf, 0,
  // 0)): per batch, the running maximum M grows to M' (-inf while every
  // state is empty), the sums are rescaled by exp2(M - M') and take
  // exp2(m_i - M') l_i and exp2(m_i - M') acc_i (0 for an empty state).
  // Returns (M, l, acc).
  auto merge = [&](Value n, int64_t batch,
                   function_ref<std::array<Value, 3>(Value, Value)> read)
      -> std::array<Value, 3> {
    auto loop = scf::ForOp::create(
        b, loc, idx(0), n, idx(batch),
        ValueRange{f32(negInf), f32(0.0f), zeros4},
        [&](OpBuilder &, Location, Value i, ValueRange run) {
          SmallVector<std::array<Value, 3>> states;
          for (int64_t u = 0; u < batch; ++u) {
            Value j = add(i, idx(u));
            states.push_back(read(j, cmpi(P::ult, j, n)));
          }
          Value mx = run[0];
          for (auto &st : states)
            mx = fmax(mx, st[0]);
          Value shift = select(isNegInf(mx), f32(0.0f), mx);
          Value r = exp2(arith::SubFOp::create(b, loc, run[0], shift));
          Value l = fmul(run[1], r);
          Value acc =
              fmul(run[2], vector::BroadcastOp::create(b, loc, f32x4, r));
          for (auto &st : states) {
            Value f = select(isNegInf(st[0]), f32(0.0f),
                             exp2(arith::SubFOp::create(b, loc, st[0], shift)));
            l = fadd(l, fmul(f, st[1]));
            acc = arith::AddFOp::create(
                b, loc, acc,
                fmul(vector::BroadcastOp::create(b, loc, f32x4, f), st[2]));
          }
          scf::YieldOp::create(b, loc, ValueRange{mx, l, acc});
        });
    return {loop.getResult(0), loop.getResult(1), loop.getResult(2)};
  };
  // Warp w's state of `head` (dims d .. d + 3), from shared memory (every
  // warp's state is there: `valid` is always true).
  auto readWarp = [&](Value head, Value d) {
    return [&, head, d](Value w, Value) -> std::array<Value, 3> {
      return {
          memref::LoadOp::create(b, loc, smMax, ValueRange{w, head}),
          memref::LoadOp::create(b, loc, smSum, ValueRange{w, head}),
          vector::LoadOp::create(b, loc, f32x4, smAcc, ValueRange{w, head, d})};
    };
  };

  // Workspace views: counters [B * Hkv] i32, states [B, Hq, splits, 2] f32,
  // accumulators [B, Hq, splits, D] f32.
  Value counters, states, partials;
  Value numSeqs = dimOf(b, loc, query, 0);
  if (workspace) {
    Value counterBytes =
        mul(arith::CeilDivUIOp::create(
                b, loc, mul(mul(numSeqs, idx(numKVHeads)), idx(4)), idx(16)),
            idx(16));
    Value slots = mul(mul(numSeqs, idx(numHeads)), numSplitsGrid);
    Value stateBytes =
        mul(arith::CeilDivUIOp::create(b, loc, mul(slots, idx(8)), idx(16)),
            idx(16));
    auto view = [&](Value offset, Value elems, Type elem) {
      return memref::ViewOp::create(
          b, loc, MemRefType::get({ShapedType::kDynamic}, elem), workspace,
          offset, ValueRange{elems});
    };
    counters = view(idx(0), mul(numSeqs, idx(numKVHeads)), b.getI32Type());
    states = view(counterBytes, mul(slots, idx(2)), f32T);
    partials =
        view(add(counterBytes, stateBytes), mul(slots, idx(headSize)), f32T);
  }
  auto slotOf = [&](Value head, Value s) {
    return add(
        mul(add(mul(seq, idx(numHeads)), add(mul(kvHead, idx(group)), head)),
            numSplitsGrid),
        s);
  };

  Value single = cmpi(P::eq, nsplit, idx(1));
  Value writesOut =
      workspace ? single
                : arith::ConstantIntOp::create(b, loc, 1, 1).getResult();
  auto ifSingle = scf::IfOp::create(b, loc, writesOut, /*withElseRegion=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifSingle.thenBlock());
    scf::ForOp::create(
        b, loc, tid, idx(group * quads), idx(kWarps * 32), ValueRange{},
        [&](OpBuilder &, Location, Value e, ValueRange) {
          auto [head, d] = headDims(e);
          auto [mx, l, o] = merge(idx(kWarps), kWarps, readWarp(head, d));
          writeOut(head, d, o, l);
          scf::YieldOp::create(b, loc);
        });
  }
  if (workspace) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifSingle.elseBlock());
    // This split's partial state.
    scf::ForOp::create(
        b, loc, tid, idx(group * quads), idx(kWarps * 32), ValueRange{},
        [&](OpBuilder &, Location, Value e, ValueRange) {
          auto [head, d] = headDims(e);
          auto [maxAll, l, o] = merge(idx(kWarps), kWarps, readWarp(head, d));
          Value slot = slotOf(head, split);
          vector::StoreOp::create(b, loc, o, partials,
                                  ValueRange{add(mul(slot, idx(headSize)), d)},
                                  /*nontemporal=*/false, llvm::Align(16));
          auto first4 = scf::IfOp::create(b, loc, cmpi(P::eq, d, idx(0)),
                                          /*withElseRegion=*/false);
          {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPointToStart(first4.thenBlock());
            vector::StoreOp::create(
                b, loc,
                vector::FromElementsOp::create(
                    b, loc, VectorType::get({2}, f32T), ValueRange{maxAll, l}),
                states, ValueRange{mul(slot, idx(2))}, /*nontemporal=*/false,
                llvm::Align(8));
          }
          scf::YieldOp::create(b, loc);
        });
    // The last CTA of (seq, kvHead) to finish merges the splits. The
    // barrier orders every thread's partial-state stores before the
    // leader's; the leader releases them (GPU scope, cumulative over what
    // the barrier ordered before it), counts the CTA in, and acquires the
    // other CTAs' states, all in one acquire-release atomic; the second
    // barrier orders that acquire before the merge's loads (the pattern of
    // cooperative groups' grid sync: one thread's ordering, not every
    // thread's).
    gpu::BarrierOp::create(b, loc);
    Value counterAt = add(mul(seq, idx(numKVHeads)), kvHead);
    auto leader = scf::IfOp::create(b, loc, cmpi(P::eq, tid, idx(0)),
                                    /*withElseRegion=*/false);
    {
      OpBuilder::InsertionGuard g2(b);
      b.setInsertionPointToStart(leader.thenBlock());
      // Inline PTX: a fence on each side of a relaxed atomic cost about
      // 0.33 us each (bench/RESULTS.md), and LLVM 22's NVPTX backend made
      // a plain atom.global.add.u32 of an acq_rel atomicrmw.
      Value counter = arith::IndexCastUIOp::create(
          b, loc, b.getI64Type(),
          add(memref::ExtractAlignedPointerAsIndexOp::create(b, loc, counters),
              mul(counterAt, idx(4))));
      Value prev =
          inlinePTX(b, loc, b.getI32Type(), ValueRange{counter},
                    "atom.acq_rel.gpu.add.u32 $0, [$1], 1;", "=r,l,~{memory}");
      Value last = cmpi(
          P::eq, arith::IndexCastOp::create(b, loc, b.getIndexType(), prev),
          arith::SubIOp::create(b, loc, nsplit, idx(1)));
      memref::StoreOp::create(
          b, loc, arith::ExtUIOp::create(b, loc, b.getI32Type(), last), smLast,
          ValueRange{idx(0)});
      auto reset = scf::IfOp::create(b, loc, last, /*withElseRegion=*/false);
      b.setInsertionPointToStart(reset.thenBlock());
      memref::StoreOp::create(b, loc, i32(0), counters, ValueRange{counterAt});
    }
    gpu::BarrierOp::create(b, loc);
    Value isLast =
        cmpi(P::ne,
             arith::IndexCastOp::create(
                 b, loc, b.getIndexType(),
                 memref::LoadOp::create(b, loc, smLast, ValueRange{idx(0)})),
             idx(0));
    auto ifLast = scf::IfOp::create(b, loc, isLast, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g2(b);
    b.setInsertionPointToStart(ifLast.thenBlock());
    // The staged kernel merges more than one direct batch of splits its
    // own way (buildStagedSplitMerge); at most one batch, its shuffles and
    // copies cost more than they save (bench/RESULTS.md).
    if (stages) {
      auto ifMany = scf::IfOp::create(
          b, loc, cmpi(P::ugt, nsplit, idx(kAttentionMergeBatch)),
          /*withElseRegion=*/true);
      b.setInsertionPointToStart(ifMany.thenBlock());
      buildStagedSplitMerge(nsplit, tid, lane, warp, states, partials, smStages,
                            slotOf, writeOut);
      b.setInsertionPointToStart(ifMany.elseBlock());
    }
    scf::ForOp::create(
        b, loc, tid, idx(group * quads), idx(kWarps * 32), ValueRange{},
        [&](OpBuilder &, Location, Value e, ValueRange) {
          auto [head, d] = headDims(e);
          // Split s's state, loaded only for s < nsplit (the slots past
          // it hold another launch's states, or are past the workspace):
          // one 8-byte load of (m, l), one 16-byte load of acc, at
          // offsets from the head's first slot.
          Value slot0 = slotOf(head, idx(0));
          auto f32x2 = VectorType::get({2}, f32T);
          Value empty = arith::ConstantOp::create(
              b, loc,
              DenseElementsAttr::get(f32x2, ArrayRef<float>{negInf, 0.0f}));
          auto [mx, l, o] = merge(
              nsplit, kAttentionMergeBatch,
              [&](Value s, Value valid) -> std::array<Value, 3> {
                auto ifValid =
                    scf::IfOp::create(b, loc, TypeRange{f32x2, f32x4}, valid,
                                      /*withElseRegion=*/true);
                {
                  OpBuilder::InsertionGuard g3(b);
                  b.setInsertionPointToStart(ifValid.thenBlock());
                  Value slot = add(slot0, s);
                  Value ml = vector::LoadOp::create(
                      b, loc, f32x2, states, ValueRange{mul(slot, idx(2))},
                      /*nontemporal=*/false, llvm::Align(8));
                  Value acc = vector::LoadOp::create(
                      b, loc, f32x4, partials,
                      ValueRange{add(mul(slot, idx(headSize)), d)},
                      /*nontemporal=*/false, llvm::Align(16));
                  scf::YieldOp::create(b, loc, ValueRange{ml, acc});
                  b.setInsertionPointToStart(ifValid.elseBlock());
                  scf::YieldOp::create(b, loc, ValueRange{empty, zeros4});
                }
                Value ml = ifValid.getResult(0);
                return {vector::ExtractOp::create(b, loc, ml, 0),
                        vector::ExtractOp::create(b, loc, ml, 1),
                        ifValid.getResult(1)};
              });
          writeOut(head, d, o, l);
          scf::YieldOp::create(b, loc);
        });
  }
}

void mlir::kvq::buildAttentionLaunch(OpBuilder &b, Location loc,
                                     const KVQTarget &target,
                                     const AttentionSignature &sig,
                                     Block *entry) {
  const bool hasWorkspace = bool(sig.workspace);
  const int64_t numMemRefs = hasWorkspace ? 7 : 6;
  SmallVector<Value> memrefs(entry->getArguments().take_front(numMemRefs));
  // The score, V and Q scales, one each or one per KV head.
  const int64_t numScales = sig.getScaleCount();
  SmallVector<Value> scaleValues = getAttentionScaleValues(
      b, loc, sig, entry->getArguments().slice(numMemRefs, 3));
  ValueRange scales = scaleValues;
  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  auto mul = [&](Value x, Value y) -> Value {
    return arith::MulIOp::create(b, loc, x, y);
  };
  auto ceilDiv = [&](Value x, Value y) -> Value {
    return arith::CeilDivUIOp::create(b, loc, x, y);
  };
  const int64_t numHeads = sig.query.getDimSize(1),
                numKVHeads = sig.cache.getDimSize(2),
                headSize = sig.query.getDimSize(2),
                blockSize = sig.cache.getDimSize(1);

  Value numSeqs = dimOf(b, loc, memrefs[0], 0);
  OpBuilder::InsertionGuard hostGuard(b);
  auto nonEmpty = scf::IfOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, numSeqs, idx(0)),
      /*withElseRegion=*/false);
  b.setInsertionPointToStart(nonEmpty.thenBlock());

  // The split rule (docs/KernelABI.md): as many splits as bring the grid to
  // the chip's resident CTAs, no fewer than kMinSplitTiles tiles each, no
  // more than kAttentionMaxSplits or the workspace holds.
  Value maxTiles = arith::MaxUIOp::create(
      b, loc, mul(dimOf(b, loc, memrefs[3], 1), idx(blockSize / kTileTokens)),
      idx(1));
  Value splitTiles = maxTiles;
  if (hasWorkspace) {
    Value bytes = dimOf(b, loc, memrefs[6], 0);
    Value counterBytes =
        mul(ceilDiv(mul(numSeqs, idx(4 * numKVHeads)), idx(16)), idx(16));
    Value perSplit = mul(numSeqs, idx(numHeads * (headSize + 4) * 4));
    Value fits = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, bytes,
                                       counterBytes);
    Value cap = arith::SelectOp::create(
        b, loc, fits,
        arith::DivUIOp::create(
            b, loc, arith::SubIOp::create(b, loc, bytes, counterBytes),
            perSplit),
        idx(0));
    // Never more than one wave: a second, partial one costs a whole wave.
    Value want = arith::MinUIOp::create(
        b, loc,
        arith::DivUIOp::create(
            b, loc, idx(getAttentionResidentCTAs(target.getModuleTarget())),
            mul(numSeqs, idx(numKVHeads))),
        idx(kAttentionMaxSplits));
    Value splits = arith::MinUIOp::create(
        b, loc, want,
        arith::MinUIOp::create(b, loc, cap,
                               ceilDiv(maxTiles, idx(kMinSplitTiles))));
    splits = arith::MaxUIOp::create(b, loc, splits, idx(1));
    splitTiles = ceilDiv(maxTiles, splits);
  }
  Value gridX = ceilDiv(maxTiles, splitTiles);

  SmallVector<KernelMemRef> kernelMemRefs;
  for (Value memref : memrefs)
    kernelMemRefs.push_back(KernelMemRef::split(b, loc, memref));
  MLIRContext *ctx = b.getContext();
  Attribute shared =
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto sharedType = [&](ArrayRef<int64_t> shape, Type elem) {
    return MemRefType::get(shape, elem, MemRefLayoutAttrInterface(), shared);
  };
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  // One launch of the kernel, staged or not; the staged one is named apart
  // (docs/KernelABI.md).
  auto emitLaunch = [&](bool staged) {
    OpBuilder::InsertionGuard launchGuard(b);
    AttentionKernelBuilder kernel(b, loc, target, sig, staged);
    SmallVector<Type> workgroup = {
        sharedType({kTableTiles}, i32),
        sharedType({kWarps, kHeadsPerTile}, f32),
        sharedType({kWarps, kHeadsPerTile}, f32),
        sharedType({kernel.sharedStateBytes()}, b.getI8Type()),
        sharedType({1}, i32)};
    FlatSymbolRefAttr function;
    if (staged) {
      StringAttr host = SymbolTable::getSymbolName(entry->getParentOp());
      function = FlatSymbolRefAttr::get(
          ctx, (host.getValue() + kAttentionStagedKernelSuffix).str());
    }
    Value c1 = idx(1);
    auto launch = gpu::LaunchOp::create(
        b, loc, gridX, idx(numKVHeads), numSeqs, idx(kWarps * 32), c1, c1,
        /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr,
        /*asyncDependencies=*/{}, workgroup, /*privateAttributions=*/{},
        /*clusterSizeX=*/nullptr, /*clusterSizeY=*/nullptr,
        /*clusterSizeZ=*/nullptr,
        FlatSymbolRefAttr::get(ctx, kKernelModuleName), function);
    b.setInsertionPointToStart(&launch.getBody().front());
    // The kernel's parameters in order (docs/KernelABI.md): the memrefs'
    // pointers, the f32 scalars, the tiles per split, then the dynamic
    // sizes.
    for (const KernelMemRef &km : kernelMemRefs)
      km.touchBase(b, loc);
    for (Value scalar : scales)
      arith::NegFOp::create(b, loc, scalar);
    arith::AddIOp::create(b, loc, splitTiles, splitTiles);
    // The CTA's KV head's (selects on uniform values, once per CTA).
    Value kvHead = launch.getBlockIds().y;
    Value scoreScale =
        selectHeadScale(b, loc, scales.slice(0, numScales), kvHead);
    Value qScale =
        selectHeadScale(b, loc, scales.slice(2 * numScales, numScales), kvHead);
    SmallVector<Value> kernelValues;
    for (const KernelMemRef &km : kernelMemRefs)
      kernelValues.push_back(km.rebuild(b, loc));
    if (!hasWorkspace)
      kernelValues.push_back(Value());
    kernel.build(launch, kernelValues, scoreScale,
                 scales.slice(numScales, numScales), qScale, splitTiles);
    gpu::TerminatorOp::create(b, loc);
  };
  if (!AttentionKernelBuilder::canStage(sig)) {
    emitLaunch(/*staged=*/false);
    return;
  }
  // Splits of at least kAttentionStagedMinTiles tiles run the staged
  // kernel.
  auto ifStaged = scf::IfOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, splitTiles,
                            idx(kAttentionStagedMinTiles)),
      /*withElseRegion=*/true);
  b.setInsertionPointToStart(ifStaged.thenBlock());
  emitLaunch(/*staged=*/true);
  b.setInsertionPointToStart(ifStaged.elseBlock());
  emitLaunch(/*staged=*/false);
}
