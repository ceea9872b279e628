//===- ModuleTarget.h - what a module is compiled for -----------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The one place where kvq learns what a module is compiled for. The IR states
// it once:
//
//   gpu.module @kvq_cache_kernels [#rocdl.target<chip = "gfx942">] {}  // AMD
//   gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}    //
//   NVIDIA module attributes {kvq.target = #kvq.cpu_target} {...} // CPU
//
// written by a frontend or by `kvq-set-target`. kvq-fold-scales (FNUZ or
// OCP), kvq-lower-cache-ops (chip, native conversions), the kvq-to-*
// pipelines and kvq-write-isa all read it through lookupModuleTarget(), and
// a pass option that names another target is an error located at the
// attribute that states the module's.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_TARGET_MODULETARGET_H
#define KVQ_TARGET_MODULETARGET_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Support/LLVM.h"

#include <optional>
#include <string>

namespace mlir::kvq {

/// The kinds of code kvq generates: host loops, NVIDIA or AMD kernels.
enum class TargetKind { CPU, NVVM, ROCDL };

/// "cpu", "nvvm" or "rocdl".
StringRef stringifyTargetKind(TargetKind kind);

/// The module attribute naming a CPU target (`#kvq.cpu_target`).
inline constexpr StringLiteral kTargetAttrName = "kvq.target";

/// The gpu.module the cache kernels are outlined into (`gpu.launch ...
/// module(@kvq_cache_kernels)`): one per module, so that a pipeline produces
/// one binary; kvq-set-target states a GPU target on it.
inline constexpr StringLiteral kKernelModuleName = "kvq_cache_kernels";

/// A compilation target: its kind and, for GPUs, a validated chip.
class ModuleTarget {
public:
  /// The CPU target.
  ModuleTarget() = default;

  /// Parses a target as pass options give it: `kind` "cpu", "nvvm",
  /// "rocdl" or "" (then taken from the chip: sm_<N> is nvvm, gfx<...>
  /// rocdl), `chip` "sm_<N>[a|f]", "gfx<...>" or "" (then the kind's
  /// default, sm_90 or gfx942). Reports a bad name or chip through
  /// `emitError`.
  static FailureOr<ModuleTarget>
  parse(StringRef kind, StringRef chip,
        function_ref<InFlightDiagnostic()> emitError);

  /// The target an attribute states (`#nvvm.target`, `#rocdl.target`,
  /// `#kvq.cpu_target`), or std::nullopt for any other attribute or a chip
  /// kvq does not know.
  static std::optional<ModuleTarget> fromAttr(Attribute attr);

  TargetKind getKind() const { return kind; }
  /// The chip ("sm_90", "gfx942"), empty for the CPU.
  StringRef getChip() const { return chip; }
  bool isGPU() const { return kind != TargetKind::CPU; }

  /// NVIDIA: the compute capability (90 for sm_90a), else 0.
  unsigned getSmVersion() const { return smVersion; }

  /// Whether the chip's own fp8 formats are the FNUZ ones (f8E4M3FNUZ,
  /// f8E5M2FNUZ: AMD gfx94x, MI300). This decides kvq-fold-scales's x2.
  bool hasFnuzFp8() const;
  /// Whether the chip converts the OCP formats (f8E4M3FN, f8E5M2)
  /// natively: NVIDIA sm_89 and newer, AMD gfx950 and gfx12.
  bool hasOcpFp8() const;
  /// Whether the fp8 format of the target is fixed and FNUZ (true), fixed
  /// and OCP (false), or free (std::nullopt: the CPU, which converts every
  /// format in software, so kvq-fold-scales{fp8-format=...} chooses).
  std::optional<bool> getFp8Format() const;

  /// The attribute that states this target: `#kvq.cpu_target`, or an
  /// `#nvvm.target` / `#rocdl.target` of the chip at `optLevel`.
  Attribute toAttr(MLIRContext *context, unsigned optLevel = 3) const;

  /// "cpu", "nvvm chip=sm_90", "rocdl chip=gfx942".
  std::string describe() const;

  bool operator==(const ModuleTarget &other) const {
    return kind == other.kind && chip == other.chip;
  }
  bool operator!=(const ModuleTarget &other) const { return !(*this == other); }

  /// Whether this target, asked for by an option, agrees with the `stated`
  /// one: the same kind, and the same chip unless the option named none
  /// (`target=nvvm` agrees with a module's sm_80; only the default chip
  /// of a module that states nothing is sm_90).
  bool agreesWith(const ModuleTarget &stated) const {
    return kind == stated.kind && (!chipGiven || chip == stated.chip);
  }

private:
  ModuleTarget(TargetKind kind, std::string chip, unsigned smVersion,
               bool chipGiven)
      : kind(kind), chip(std::move(chip)), smVersion(smVersion),
        chipGiven(chipGiven) {}

  TargetKind kind = TargetKind::CPU;
  std::string chip;
  unsigned smVersion = 0;
  /// The chip was named (not the kind's default).
  bool chipGiven = true;
};

/// The target `module` states, with the attribute that states it (the
/// first, when several agree), or std::nullopt when it states none. Reads
/// the module's `kvq.target` attribute and the targets of its `gpu.module`
/// and `gpu.binary` ops. Two that name different targets are an error
/// (`[TARGET-CONFLICT]`, at the second): kvq compiles a module for one
/// target.
struct StatedTarget {
  ModuleTarget target;
  Attribute attr;
  Operation *op;
};
FailureOr<std::optional<StatedTarget>> lookupModuleTarget(ModuleOp module);

/// The target a pass compiles `module` for: the module's, which `request`
/// (a pass option, if given) must equal (else an error naming `passName`,
/// located at the module's target); `request` when the module states none;
/// else the CPU.
FailureOr<ModuleTarget>
resolveModuleTarget(ModuleOp module, const std::optional<ModuleTarget> &request,
                    StringRef passName);

/// States `target` in `module` if it states none (kvq-set-target): a GPU
/// target goes on every `gpu.module` without targets, and on
/// `gpu.module @kvq_cache_kernels`, created if missing; the CPU target is
/// the `kvq.target` attribute. Does nothing if the module already states
/// `target`; fails, with an error, if it states another.
LogicalResult setModuleTarget(ModuleOp module, const ModuleTarget &target,
                              unsigned optLevel = 3);

} // namespace mlir::kvq

#endif // KVQ_TARGET_MODULETARGET_H
