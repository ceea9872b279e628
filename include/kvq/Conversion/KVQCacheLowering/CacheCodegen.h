//===- CacheCodegen.h - building blocks of kvq's cache code -----*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The code both forms of a cache function share: the per-element numerics
// (quantize, dequantize; the semantics are on the ops in KVQOps.td) and the
// reads and writes of one work item. The CPU form (buildCacheLoops) and the
// GPU form (buildCacheLaunch, whose kernel ABI is docs/KernelABI.md) differ
// only in how they walk the tokens.
//
// For kvq's own lowerings; a model compiler uses KVQCacheLowering.h.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_KVQCACHELOWERING_CACHECODEGEN_H
#define KVQ_CONVERSION_KVQCACHELOWERING_CACHECODEGEN_H

#include "kvq/Conversion/KVQCacheLowering/KVQTarget.h"
#include "kvq/Dialect/KVQ/IR/KVQEnums.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/APFloat.h"

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace mlir::kvq {

/// Bytes of the wider element type (source or destination) a GPU work item
/// moves per stream (K, V): one 16-byte access (8 bf16 activations into 8
/// fp8 cache bytes, 8 cache bytes into 8 bf16 outputs, 4 f32, ...).
inline constexpr int64_t kAccessBytes = 16;

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

/// The code of a cache function: two streams (K, V) that each move elements
/// from a `src` memref to a `dst` memref through an element conversion,
/// with the function's arguments as operands.
struct CacheOpPlan {
  bool isStore = false;
  bool quantized = false;
  Value slots;
  struct Stream {
    Value src, dst;
    /// The scale (f32); the store's RN(1/s) unless it divides. Null for
    /// per-head scales.
    Value scale, reciprocal;
    /// Per-head scales (f32, one per KV head, in head order) and, where
    /// `reciprocal` would be set, their RN(1/s); empty for one scale.
    SmallVector<Value> headScales, headReciprocals;
    Quotient quotient = Quotient::Division;
  } streams[2];
  MemRefType actType, cacheType;
  /// kvq.fused_cache_store (no `src`): emits the activations of both
  /// streams at the `width` elements from (t, h, d) `indices` (a scalar for
  /// width 1, else a vector), with `operands` the `producerOperands` as the
  /// code at the insertion point sees them (setFusedProducer()).
  std::function<std::array<Value, 2>(OpBuilder &, Location, ValueRange indices,
                                     int64_t width, ValueRange operands)>
      produce;
  /// The values `produce` reads (the function's arguments after the
  /// caches): a GPU kernel takes them as parameters.
  SmallVector<Value> producerOperands;

  /// Whether each KV head has its own K and V scales (then the scales of
  /// an element depend on its head: prepareScales with `head`).
  bool isPerHead() const { return !streams[0].headScales.empty(); }

  Value act(int s) const { return isStore ? streams[s].src : streams[s].dst; }
  Value cache(int s) const { return isStore ? streams[s].dst : streams[s].src; }
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

//===----------------------------------------------------------------------===//
// Element numerics
//===----------------------------------------------------------------------===//

/// `elem`, or a vector of it shaped like `like`.
Type shapedLike(Type like, Type elem);
/// A float constant of `type` (scalar or vector, splat).
Value floatConst(OpBuilder &b, Location loc, Type type,
                 const llvm::APFloat &value);
Value f32Const(OpBuilder &b, Location loc, Type type, float value);

/// Store numerics: activations `x` (scalar or vector of f16 / bf16 / f32)
/// to cache elements of type `cacheElem` (`kvq.cache_store`); `x` itself
/// when not `quantized`.
Value quantize(OpBuilder &b, Location loc, const KVQTarget &target, Value x,
               Type cacheElem, bool quantized, const StreamScales &scales);

/// The exact f32 value of cache elements `c` (scalar or vector): an fp8 or
/// int8 code, or the bf16 / f16 / f32 of an `auto` cache. No scale.
Value decodeToF32(OpBuilder &b, Location loc, const KVQTarget &target, Value c);

/// Load numerics: cache elements `c` to outputs of type `outElem`
/// (`kvq.cache_load`); `c` itself when not `quantized`.
Value dequantize(OpBuilder &b, Location loc, const KVQTarget &target, Value c,
                 Type outElem, bool quantized, const StreamScales &scales);

/// The scales of both streams of `plan` for work items of `width` elements.
/// For a per-head plan, those of KV head `head` (an index value): the
/// head's scalars picked by a chain of selects, then shaped as for one
/// scale, so that each head gets exactly the numerics of a per-tensor
/// scale of its value. `head` is ignored (may be null) otherwise.
std::array<StreamScales, 2> prepareScales(OpBuilder &b, Location loc,
                                          const CacheOpPlan &plan,
                                          int64_t width, Value head = nullptr);

/// `type`'s spelling for a symbol name ("bf16", "f8E4M3FN", "i8").
std::string getTypeSpelling(Type type);

//===----------------------------------------------------------------------===//
// Reads and writes of a work item
//===----------------------------------------------------------------------===//

/// Size `dim` of `memref` as an index value (a constant when static).
Value dimOf(OpBuilder &b, Location loc, Value memref, int64_t dim);

/// Size `dim` of the activations [T, H, D] of `plan`: of the activation
/// memref, or for a fused store (no source) of the slots and caches.
Value activationDim(OpBuilder &b, Location loc, const CacheOpPlan &plan,
                    int64_t dim);

//===----------------------------------------------------------------------===//
// kvq.fused_cache_store
//===----------------------------------------------------------------------===//

/// The values the region of `op` reads from above, constants aside (those
/// are cloned): its function's arguments after the caches, in this order.
SmallVector<Value> getFusedStoreOperands(FusedCacheStoreOp op);

/// Makes `plan` compute its activations with the region of `op`, which
/// reads `operands` (the function's arguments for getFusedStoreOperands()).
/// `op` must outlive the code generation.
void setFusedProducer(CacheOpPlan &plan, FusedCacheStoreOp op,
                      ValueRange operands);

/// Whether the `width` elements of a work item read one aligned vector of
/// a row of `rowSize` elements, given `index[d]`, the innermost index a
/// region load reads for each d of the head (index.size() elements, work
/// items starting at the multiples of `width`): the permutation `perm`
/// with index[d0 + i] = base + perm[i] for every work item d0 and i <
/// width, where base is a multiple of `width` and every index lies in
/// [0, rowSize). Element i then takes element perm[i] of the vector load
/// at base. None where no such permutation exists (a stride other than 1,
/// a read that straddles two vectors, two elements reading the same one,
/// permutations that differ between work items) or `width` does not
/// divide index.size() and `rowSize`.
std::optional<SmallVector<int64_t>>
getWorkItemPermutation(ArrayRef<int64_t> index, int64_t width, int64_t rowSize);

/// A memref operand of a kernel, split on the host into its base buffer (a
/// rank-0 memref: one bare pointer in the kernel ABI) and the offset, sizes
/// and strides its type leaves dynamic; the kernel rebuilds the memref with
/// `memref.reinterpret_cast`. The outlined kernel then takes one pointer
/// and the dynamic sizes (for the usual operands: the token or block
/// count) per memref instead of a whole descriptor: 14 parameters instead
/// of 49 for a cache op, which made launches shorter (commit c0cad3a). A
/// memref whose layout is not strided is passed whole. The ABI:
/// docs/KernelABI.md.
struct KernelMemRef {
  Value whole;
  Value base;
  OpFoldResult offset;
  SmallVector<OpFoldResult> sizes, strides;

  /// On the host, before the launch.
  static KernelMemRef split(OpBuilder &b, Location loc, Value memref);
  /// The pointer (or the whole memref), first thing in the kernel body:
  /// gpu-kernel-outlining orders the kernel's parameters by first use.
  void touchBase(OpBuilder &b, Location loc) const;
  /// The memref, rebuilt in the kernel.
  Value rebuild(OpBuilder &b, Location loc) const;
};

/// Loads `width` consecutive elements (1: scalar, else a vector) of the
/// source of both streams (K and V) of `plan` at `srcIdx`.
std::array<Value, 2> loadSources(OpBuilder &b, Location loc,
                                 const CacheOpPlan &plan, int64_t width,
                                 ValueRange srcIdx);

/// Converts the loaded elements `in` of both streams and stores them to
/// their destinations at `dstIdx`, only where `predicate` holds if given
/// (through KVQTarget::storeIf).
void storeConverted(OpBuilder &b, Location loc, const KVQTarget &target,
                    const CacheOpPlan &plan,
                    const std::array<StreamScales, 2> &scales, int64_t width,
                    std::array<Value, 2> in, ValueRange dstIdx,
                    Value predicate = nullptr);

/// slot_mapping[t] (on GPUs an explicitly 8-byte-aligned load).
Value readSlot(OpBuilder &b, Location loc, const CacheOpPlan &plan, Value t,
               bool gpu);
/// slot >= 0.
Value isValidSlot(OpBuilder &b, Location loc, Value slot);
/// The cache row of a valid `slot`: (slot / block_size, slot % block_size).
std::pair<Value, Value> cacheRow(OpBuilder &b, Location loc,
                                 const CacheOpPlan &plan, Value slot);

//===----------------------------------------------------------------------===//
// The two forms
//===----------------------------------------------------------------------===//

/// CPU: for t in [0, T): if slot[t] >= 0: for h, d: K and V element by
/// element (CacheLoops.cpp).
void buildCacheLoops(OpBuilder &b, Location loc, const KVQTarget &target,
                     const CacheOpPlan &plan);

/// GPU: one `gpu.launch` into `gpu.module @kvq_cache_kernels`, whose
/// kernel takes the memrefs of `plan` and `scalars` (k_scale, RN(1/k_scale),
/// v_scale, RN(1/v_scale); per-head: the pair of each KV head, K's then
/// V's) as docs/KernelABI.md describes (CacheKernel.cpp).
void buildCacheLaunch(OpBuilder &b, Location loc, const KVQTarget &target,
                      const CacheOpPlan &plan, int64_t threadsPerBlock,
                      ValueRange scalars);

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// What the code of an attention function depends on.
struct AttentionSignature {
  MemRefType query, cache, tables, lens;
  /// Null without a workspace.
  MemRefType workspace;
  AttentionPrecision precision;
  /// Per-head scales: the function takes the score, V and Q scales as
  /// vectors of one value per KV head (this many, the cache's static dim
  /// 2); 0: as f32.
  int64_t headScales = 0;

  /// How many values of each of the score, V and Q scales the function
  /// takes.
  int64_t getScaleCount() const { return headScales ? headScales : 1; }

  auto key() const {
    return std::make_tuple(
        query.getAsOpaquePointer(), cache.getAsOpaquePointer(),
        tables.getAsOpaquePointer(), lens.getAsOpaquePointer(),
        workspace ? workspace.getAsOpaquePointer() : nullptr,
        unsigned(precision), headScales);
  }
};

/// Why the GPU `target` has no attention kernel for `sig` (the end of a
/// sentence that starts "kvq.paged_attention "), or std::nullopt when it
/// has one.
std::optional<std::string>
getAttentionKernelLimit(const KVQTarget &target, const AttentionSignature &sig);

/// Why the tensor-core kernel (NVVM, buildAttentionLaunch) does not take
/// `sig` (the end of a sentence that starts "kvq.paged_attention "), or
/// std::nullopt when it does. A signature it does not take gets the
/// portable kernel (buildPortableAttentionLaunch).
std::optional<std::string>
getTensorCoreAttentionLimit(const KVQTarget &target,
                            const AttentionSignature &sig);

/// The prefix of the attention functions' and kernels' names
/// (docs/KernelABI.md).
inline constexpr llvm::StringLiteral kAttentionNamePrefix =
    "kvq_paged_attention_";

/// CTAs of the NVVM attention kernel an SM runs at once: the kernel asks
/// ptxas for it (`nvvm.minctasm`, set by kvq-limit-kernel-registers), and
/// the split rule counts on it.
inline constexpr int64_t kAttentionCTAsPerSM = 4;

/// Split states the last CTA of a (sequence, KV head) loads at once and
/// merges in one rescaling step (the merge is online over such batches).
inline constexpr int64_t kAttentionMergeBatch = 16;

/// The same for the staged kernel above kAttentionMergeBatch splits: half
/// of a batch's accumulators go to registers, half by cp.async into its
/// stages, a lane of each head's warp loads one split's (max, sum)
/// (docs/KernelABI.md).
inline constexpr int64_t kAttentionStagedMergeBatch = 32;

/// The most splits the split rule gives a (sequence, KV head): two merge
/// batches (one in the staged kernel). With the staged kernel, one sequence of
/// 32768 tokens took 29.8-30.4 us in 24 splits, 30.1-30.3 in 32, 30.4-30.6 in
/// 16 and 31.7 in 48 on an H100 (bench/RESULTS.md): fewer splits are fewer
/// states to merge, and the stages keep the bytes in flight with fewer CTAs; 32
/// of the equal two keep more in flight, which a faster card needs.
inline constexpr int64_t kAttentionMaxSplits = 2 * kAttentionMergeBatch;

/// Splits of at least this many tiles (two a warp) run the staged form of
/// the tensor-core kernel where the signature has one
/// (hasStagedAttentionKernel): each warp's next two tiles are copied into
/// shared memory (cp.async) while it computes, instead of one held in
/// registers. Shorter splits (a tile a warp) keep the unstaged kernel.
inline constexpr int64_t kAttentionStagedMinTiles = 8;

/// The staged kernel's name: the host function's name and this suffix (the
/// unstaged kernel's is "_kernel").
inline constexpr llvm::StringLiteral kAttentionStagedKernelSuffix =
    "_staged_kernel";

/// Whether the tensor-core kernel of a cache of `cacheBits`-bit elements and
/// `headSize`-element heads has a staged form: 8-bit caches with 128-byte
/// rows.
inline bool hasStagedAttentionKernel(int64_t cacheBits, int64_t headSize) {
  return cacheBits == 8 && headSize == 128;
}

/// CTAs of the attention kernel the chip runs at once, the split rule's
/// target (docs/KernelABI.md).
int64_t getAttentionResidentCTAs(const ModuleTarget &target);

/// The host code of the GPU attention function of `sig`: the split rule
/// and one `gpu.launch` (of the staged kernel or the unstaged one, chosen
/// by the tiles per split, where the signature has both). `entry`'s arguments:
/// query, key cache, value cache, block tables, context lengths, output, the
/// workspace if `sig` has one, then the f32 score scale (log2 domain: RN(s_k *
/// scale * log2(e)), times s_q in the fp8 modes), V scale and Q scale; with
/// per-head scales (`sig.headScales`), three vectors of one value per KV
/// head, which the kernel takes as that many f32 each.
void buildAttentionLaunch(OpBuilder &b, Location loc, const KVQTarget &target,
                          const AttentionSignature &sig, Block *entry);

/// Threads per block of the portable attention kernel.
inline constexpr int64_t kPortableAttentionThreads = 64;

/// The f32 scale values of an attention function of `sig` from its scale
/// arguments `args` (score, V, Q, then the prob scale where it has one):
/// the elements of the per-head vectors in order, else `args` itself.
SmallVector<Value> getAttentionScaleValues(OpBuilder &b, Location loc,
                                           const AttentionSignature &sig,
                                           ValueRange args);

/// The scale of KV head `head` among `scales` (one per KV head, or one for
/// every head): a chain of selects, kernels and loops read it from no
/// memory.
Value selectHeadScale(OpBuilder &b, Location loc, ValueRange scales,
                      Value head);

/// The host code of the portable GPU attention function of `sig` (any GPU
/// target; docs/KernelABI.md): one thread per (sequence, query head), the
/// CPU form's two passes over the context, exp through KVQTarget::exp2.
/// `entry`'s arguments as for buildAttentionLaunch (the workspace unused).
void buildPortableAttentionLaunch(OpBuilder &b, Location loc,
                                  const KVQTarget &target,
                                  const AttentionSignature &sig, Block *entry);

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_KVQCACHELOWERING_CACHECODEGEN_H
