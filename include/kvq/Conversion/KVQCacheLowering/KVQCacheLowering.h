//===- KVQCacheLowering.h - lower kvq cache ops -----------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The lowering of `kvq.cache_store` and `kvq.cache_load`, for model compilers
// that run it inside their own pipelines:
//
//   auto target = kvq::createKVQTarget("nvvm", "sm_90", emitError);
//   if (failed(kvq::checkCacheOpsLowerable(module))) ...;
//   kvq::KVQCacheFunctions functions(**target);
//   RewritePatternSet patterns(ctx);
//   kvq::populateKVQCacheLoweringPatterns(patterns, functions);
//   ConversionTarget legal(*ctx); legal.addIllegalOp<...>(); ...
//
// One lowering serves every target; a `KVQTarget` only says how a pair of
// f32 values becomes two fp8 bytes (and back), and whether the cache op
// becomes host loops (CPU) or a `gpu.launch`.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_KVQCACHELOWERING_KVQCACHELOWERING_H
#define KVQ_CONVERSION_KVQCACHELOWERING_KVQCACHELOWERING_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/DenseMap.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace mlir::kvq {

/// How the cache ops of one compilation target convert between f32 and the
/// fp8 cache formats, and which form the lowered code takes.
///
/// Conversion contract (every implementation, native or not):
/// - trunc: round to nearest even, saturate to +-max finite (+-inf too),
///   NaN to the format's NaN (see SmallFloatFormat::nanBits);
/// - ext: exact.
/// The base class implements both in software (SoftwareConversion.h), which
/// is what every target uses for a format it `!supports()`.
class KVQTarget {
public:
  enum class Kind { CPU, NVVM, ROCDL };

  virtual ~KVQTarget();

  Kind getKind() const { return kind; }
  /// "cpu", "nvvm" or "rocdl".
  StringRef getName() const;
  /// The chip ("sm_90", "gfx942"), empty for the CPU.
  StringRef getChip() const { return chip; }
  /// Whether the cache ops become a `gpu.launch` (else host `scf` loops).
  bool isGPU() const { return kind != Kind::CPU; }

  /// Whether the chip converts f32 to and from `f8Type` natively; formats it
  /// lacks use the software conversion.
  virtual bool supports(FloatType f8Type) const { return false; }

  /// Converts `a` and `b` (f32) to `f8Type`, returning `vector<2xi8>` holding
  /// the two bytes in order (`a` first, at the lower address once stored).
  /// Only called for formats `supports()` accepts.
  virtual Value truncPair(OpBuilder &b, Location loc, Value a, Value bb,
                          FloatType f8Type) const;
  /// Converts `vector<2xi8>` holding two `f8Type` values to two f32.
  virtual std::pair<Value, Value> extPair(OpBuilder &b, Location loc,
                                          Value packed, FloatType f8Type) const;

  /// Stores `value` (a 1-D vector) to `memref[indices]` when `predicate`
  /// (i1) holds. The base class emits `scf.if` around a `vector.store`. A
  /// target may instead store without a branch: LLVM sinks loads whose only
  /// use is inside a conditional block into that block, so with a branch
  /// the loads that compute `value` wait for the predicate's own load
  /// (two memory round trips in a row instead of one).
  virtual void storeIf(OpBuilder &b, Location loc, Value predicate, Value value,
                       Value memref, ValueRange indices) const;

  /// Adds the dialects the hooks create (for a pass's dependentDialects).
  virtual void getDependentDialects(DialectRegistry &registry) const {}

  /// f32 (scalar or 1-D vector) to fp8 bits (i8 or vector of i8): through
  /// truncPair where supported, else in software.
  Value truncToBits(OpBuilder &b, Location loc, Value f32s,
                    FloatType f8Type) const;
  /// fp8 bits (i8 or 1-D vector of i8) to f32 (same shape).
  Value extFromBits(OpBuilder &b, Location loc, Value bits,
                    FloatType f8Type) const;

protected:
  KVQTarget(Kind kind, std::string chip) : kind(kind), chip(std::move(chip)) {}

private:
  Kind kind;
  std::string chip;
};

/// Creates the target named `name` ("cpu", "nvvm" or "rocdl") for `chip`
/// ("" for cpu; "sm_<N>[a|f]" for nvvm; "gfx<...>" for rocdl). Reports a
/// bad name or chip through `emitError` and returns failure.
///
/// - cpu: software conversion everywhere; the cache ops become scf loops.
/// - nvvm: sm_89 and newer convert f8E4M3FN and f8E5M2 natively
///   (`nvvm.convert.f32x2.to.f8x2` rn satfinite, `nvvm.convert.f8x2.to.f16x2`);
///   older chips, and the FNUZ formats on any chip, use software.
/// - rocdl: gfx94x converts the FNUZ formats natively, gfx950 and gfx12 the
///   OCP ones (`amdgpu.packed_trunc_2xfp8` after a NaN-preserving clamp to
///   +-max, `amdgpu.ext_packed_fp8`); the other formats, and chips without
///   fp8, use software. (A format that is not the chip's own is not an
///   error: store and load both come from kvq, so the bytes stay
///   consistent; the conversion is just slower.)
FailureOr<std::unique_ptr<KVQTarget>>
createKVQTarget(StringRef name, StringRef chip,
                function_ref<InFlightDiagnostic()> emitError);

/// Emits an error at every kvq cache op under `root` that cannot be lowered
/// (its layer has no `#kvq.resolved_scales`, or its activation type is not
/// f16, bf16 or f32), with a note at the layer. Call before applying the
/// patterns: they refuse such ops silently.
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

/// What a lowered cache op calls: `callee(operands..., k_scale, v_scale)`.
struct KVQCacheCall {
  func::FuncOp callee;
  /// The op's memrefs: slot_mapping, K source, V source, K destination,
  /// V destination.
  SmallVector<Value, 5> operands;
  /// The layer's resolved K and V scales.
  float scales[2] = {1.0f, 1.0f};
};

/// The functions that lowered cache ops call: one per cache signature (op
/// kind, operand types, and for a quantizing store the quotient proven for
/// each stream's scale: the product alone, the FMA-corrected product or a
/// division; ScaledDivision.h), shared by every cache op with that
/// signature, with the layer's scales as f32 operands. A 10,000-layer
/// model thus gets a few functions (GPU: a few kernels), not one per op.
///
/// Each is a private `func.func` at the end of the cache op's module:
///   kvq_cache_<store|load>_<src elem>_<dst elem>_<H>x<D>_b<block size>
///   [_fma | _divf | _k<q>_v<q>]  (q: mul, fma, divf; no suffix: mul for
///   both, e.g. kvq_cache_store_bf16_f8E4M3FN_8x128_b16)
/// (uniqued if taken), taking the op's five memrefs and its two scales.
/// Its body is the host loops (CPU) or, on GPUs, RN(1/s) of both scales
/// and one `gpu.launch` (see kvq-lower-cache-ops for the kernel ABI).
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

/// Erases the kvq.layer ops under `root` that no symbol use refers to any
/// more (after lowering every cache op).
void eraseUnusedLayers(Operation *root);

/// The gpu.module the cache kernels are outlined into (`gpu.launch ...
/// module(@kvq_cache_kernels)`): one per module, so that a pipeline produces
/// one binary.
inline constexpr llvm::StringLiteral kKernelModuleName = "kvq_cache_kernels";

/// Bytes of the wider element type (source or destination) a GPU work item
/// moves per stream (K, V): one 16-byte access (8 bf16 activations into 8
/// fp8 cache bytes, 8 cache bytes into 8 bf16 outputs, 4 f32, ...).
inline constexpr int64_t kAccessBytes = 16;

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_KVQCACHELOWERING_KVQCACHELOWERING_H
