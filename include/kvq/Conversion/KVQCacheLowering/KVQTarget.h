//===- KVQTarget.h - per-target hooks of the cache lowering -----*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// One lowering serves every target; a `KVQTarget` only says how a pair of
// f32 values becomes two fp8 bytes (and back), how a predicated store is
// written, and whether the cache op becomes host loops (CPU) or a
// `gpu.launch`. What the target is comes from the module (ModuleTarget.h).
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_KVQCACHELOWERING_KVQTARGET_H
#define KVQ_CONVERSION_KVQCACHELOWERING_KVQTARGET_H

#include "kvq/Target/ModuleTarget.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Support/LLVM.h"

#include <memory>
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
  virtual ~KVQTarget();

  /// What the code is generated for (kind and chip).
  const ModuleTarget &getModuleTarget() const { return target; }
  TargetKind getKind() const { return target.getKind(); }
  /// Whether the cache ops become a `gpu.launch` (else host `scf` loops).
  bool isGPU() const { return target.isGPU(); }

  /// Whether the chip converts f32 to and from `f8Type` natively (its own
  /// fp8 formats: ModuleTarget::hasOcpFp8, hasFnuzFp8); formats it lacks
  /// use the software conversion.
  bool supports(FloatType f8Type) const;

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

  /// 2^x for an f32 `x` <= 0 (the attention kernels' weights; 2^-inf = 0),
  /// with a relative error below 2^-21, the bound's default exp32 error
  /// (unittests/Attention/DecodeAttentionReference.h). The base class emits
  /// `math.exp2`, for targets whose pipeline lowers it (the CPU).
  virtual Value exp2(OpBuilder &b, Location loc, Value x) const;

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
  explicit KVQTarget(ModuleTarget target) : target(std::move(target)) {}

private:
  ModuleTarget target;
};

/// The hooks of `target`:
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
std::unique_ptr<KVQTarget> createKVQTarget(const ModuleTarget &target);

/// The same for a target given as options (ModuleTarget::parse: `name`
/// "cpu", "nvvm", "rocdl" or "", `chip`); reports a bad name or chip through
/// `emitError`.
FailureOr<std::unique_ptr<KVQTarget>>
createKVQTarget(StringRef name, StringRef chip,
                function_ref<InFlightDiagnostic()> emitError);

namespace detail {
/// The GPU hooks (NVVMTarget.cpp, ROCDLTarget.cpp).
std::unique_ptr<KVQTarget> createNVVMTarget(const ModuleTarget &target);
std::unique_ptr<KVQTarget> createROCDLTarget(const ModuleTarget &target);
} // namespace detail

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_KVQCACHELOWERING_KVQTARGET_H
