//===- KVQCacheLowering.h - lower kvq cache ops -----------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The lowering of `kvq.cache_store` and `kvq.cache_load`, for model compilers
// that run it inside their own pipelines. All of it, as kvq-lower-cache-ops
// runs it:
//
//   FailureOr<ModuleTarget> target =
//       kvq::resolveModuleTarget(module, std::nullopt, "my-compiler");
//   if (failed(target) ||
//       failed(kvq::lowerKVQCacheOps(module, *kvq::createKVQTarget(*target))))
//     ...;
//
// or, inside a compiler's own conversion, the patterns:
//
//   if (failed(kvq::checkCacheOpsLowerable(module))) ...;
//   kvq::KVQCacheFunctions functions(*kvqTarget);
//   RewritePatternSet patterns(ctx);
//   kvq::populateKVQCacheLoweringPatterns(patterns, functions);
//
// The functions and kernels the ops become are described in
// docs/KernelABI.md.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_KVQCACHELOWERING_KVQCACHELOWERING_H
#define KVQ_CONVERSION_KVQCACHELOWERING_KVQCACHELOWERING_H

#include "kvq/Conversion/KVQCacheLowering/KVQTarget.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/DenseMap.h"

#include <memory>
#include <optional>
#include <utility>

namespace mlir::kvq {

/// Emits an error at every kvq cache op under `root` that cannot be lowered
/// (the tensor form: bufferize first; its layer has no
/// `#kvq.resolved_scales`; its activation type is not f16, bf16 or f32; or
/// its layer has per-head K and V scales and the op's KV head dimension is
/// not static and equal to their number), with a note at the layer. Call
/// before applying the patterns: they refuse such ops silently.
LogicalResult checkCacheOpsLowerable(Operation *root);

/// How the store path computes x / s (ScaledDivision.h).
enum class QuantizeDivision {
  /// The cheapest form proven to give the cache bytes of the division for
  /// the layer's scale, the activation type and the cache format: the
  /// product x * RN(1/s) (proveReciprocalProduct(): almost every bf16 / f16
  /// case), else that product with one FMA correction
  /// (proveReciprocalDivision(): every bf16 / f16 case with a scale in
  /// [2^-60, 2^60]), else an `arith.divf`.
  Auto,
  /// Never the plain product: the corrected product where proven, else an
  /// `arith.divf`.
  FMA,
  /// Always `arith.divf`.
  DivF,
};

/// "auto", "fma" or "divf" (the `quantize-division` option), else
/// std::nullopt.
std::optional<QuantizeDivision> parseQuantizeDivision(StringRef name);

/// Options of the cache-op lowering (kvq-lower-cache-ops's, less the target).
struct KVQCacheLoweringOptions {
  /// Block size of the `gpu.launch` of GPU targets (a multiple of 32 in
  /// [32, 1024]).
  int64_t threadsPerBlock = 128;
  QuantizeDivision quantizeDivision = QuantizeDivision::Auto;
};

/// What a lowered cache op calls: `callee(operands..., k_scale, v_scale)`,
/// the scales f32, or vector<H x f32> where the layer has per-head scales.
struct KVQCacheCall {
  func::FuncOp callee;
  /// The op's memrefs: slot_mapping, K source, V source, K destination,
  /// V destination. A kvq.fused_cache_store has no sources: slot_mapping,
  /// the caches, then the values its regions read (getFusedStoreOperands).
  SmallVector<Value, 5> operands;
  /// The layer's resolved K and V scales (per-head: the max over heads).
  float scales[2] = {1.0f, 1.0f};
  /// Per-head K and V scales, one per KV head, which the call passes
  /// instead of `scales`; empty for per-tensor scales (and for a per-head
  /// layer with an `auto` cache, which copies).
  SmallVector<float> headScales[2];
};

/// The functions that lowered cache ops call: one per cache signature (op
/// kind, operand types, and for a quantizing store the quotient proven for
/// each stream's scale: the product alone, the FMA-corrected product or a
/// division; ScaledDivision.h), shared by every cache op with that
/// signature, with the layer's scales as f32 operands. A 10,000-layer
/// model thus gets a few functions (GPU: a few kernels), not one per op.
///
/// Each is a private `func.func` at the end of the cache op's module,
/// taking the op's five memrefs and its two scales (two vectors of one per
/// KV head where the layer's K and V scales are per-head: a signature of
/// its own, shared by every per-head layer of the same shapes); its body is
/// the host loops (CPU) or, on GPUs, RN(1/s) of each scale and one
/// `gpu.launch`.
/// Names, parameters and launch geometry: docs/KernelABI.md.
///
/// Thread-safe. Creating a function changes the module's body: a pass that
/// converts functions on several threads calls createAll() first, so that
/// the threads only look functions up.
class KVQCacheFunctions {
public:
  /// `target` must outlive this object.
  KVQCacheFunctions(const KVQTarget &target,
                    const KVQCacheLoweringOptions &options = {});
  ~KVQCacheFunctions();
  KVQCacheFunctions(const KVQCacheFunctions &) = delete;
  KVQCacheFunctions &operator=(const KVQCacheFunctions &) = delete;

  /// The call that replaces `cacheOp` (a `kvq.cache_store` or
  /// `kvq.cache_load` inside a module), creating its function on first
  /// use. Failure, with no diagnostic, for an op that cannot be lowered
  /// (see checkCacheOpsLowerable).
  FailureOr<KVQCacheCall> lookupOrCreate(Operation *cacheOp);

  /// Replaces `cacheOp` with constants for its scales and a `func.call` of
  /// its function (what the patterns below do). Failure, changing nothing,
  /// where lookupOrCreate fails.
  LogicalResult replaceWithCall(RewriterBase &rewriter, Operation *cacheOp);
  /// The f32 constants replaceWithCall() created, by block and value bits.
  using ScaleConstants = DenseMap<std::pair<Block *, uint32_t>, Value>;
  /// The same with a call lookupOrCreate() or createAll() returned for it.
  /// With `constants`, a scale constant already created in the op's block
  /// (by an earlier call with the same map, for an op before this one) is
  /// reused: a layer's store and load, or 16 cache ops of one layer, then
  /// share two constants.
  static void replaceWithCall(RewriterBase &rewriter, Operation *cacheOp,
                              const KVQCacheCall &call,
                              ScaleConstants *constants = nullptr);

  /// Creates the functions of every cache op under `root` and returns each
  /// lowerable op's call, in walk order. Proves the stores' scales on the
  /// context's thread pool.
  SmallVector<std::pair<Operation *, KVQCacheCall>> createAll(Operation *root);

  struct Impl; // implementation detail

private:
  std::unique_ptr<Impl> impl;
};

/// Adds the patterns that rewrite each `kvq.cache_store` / `kvq.cache_load`
/// into constants for its scales and a `func.call` of its function from
/// `functions`, which must outlive the pattern set.
void populateKVQCacheLoweringPatterns(RewritePatternSet &patterns,
                                      KVQCacheFunctions &functions);

/// Emits at `op` (a cache or attention op) that `layer` has no resolved
/// scales yet, with a note at the layer; returns failure.
LogicalResult emitUnresolvedLayerError(Operation *op, LayerOp layer);

/// Erases the kvq.layer ops under `root` that no symbol use refers to any
/// more (after lowering every cache op).
void eraseUnusedLayers(Operation *root);

/// The whole lowering of kvq-lower-cache-ops: checks every cache op of
/// `module` (checkCacheOpsLowerable), creates the functions (createAll),
/// replaces the ops by calls on the context's thread pool, one task per
/// top-level op, and erases the layers no longer referenced. Fails, with
/// diagnostics, changing nothing, if an op cannot be lowered.
LogicalResult lowerKVQCacheOps(ModuleOp module, const KVQTarget &target,
                               const KVQCacheLoweringOptions &options = {});

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_KVQCACHELOWERING_KVQCACHELOWERING_H
