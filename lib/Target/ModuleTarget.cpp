//===- ModuleTarget.cpp - what a module is compiled for -------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Target/ModuleTarget.h"

#include "kvq/Dialect/KVQ/IR/KVQAttrs.h"

#include "mlir/Dialect/AMDGPU/Utils/Chipset.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

using namespace mlir;
using namespace mlir::kvq;

StringRef mlir::kvq::stringifyTargetKind(TargetKind kind) {
  switch (kind) {
  case TargetKind::CPU:
    return "cpu";
  case TargetKind::NVVM:
    return "nvvm";
  case TargetKind::ROCDL:
    return "rocdl";
  }
  llvm_unreachable("unknown TargetKind");
}

/// Parses "sm_<N>" with an optional "a"/"f" feature suffix ("sm_90a").
static std::optional<unsigned> parseSmVersion(StringRef chip) {
  if (!chip.consume_front("sm_"))
    return std::nullopt;
  if (chip.ends_with("a") || chip.ends_with("f"))
    chip = chip.drop_back();
  unsigned version;
  if (chip.empty() || chip.getAsInteger(10, version) || version < 20)
    return std::nullopt;
  return version;
}

FailureOr<ModuleTarget>
ModuleTarget::parse(StringRef kind, StringRef chip,
                    function_ref<InFlightDiagnostic()> emitError) {
  if (kind.empty())
    kind = chip.starts_with("sm_")   ? "nvvm"
           : chip.starts_with("gfx") ? "rocdl"
           : chip.empty()            ? "cpu"
                                     : "";
  if (kind == "cpu") {
    if (!chip.empty())
      return emitError() << "chip '" << chip
                         << "' given for target 'cpu', which takes none";
    return ModuleTarget();
  }
  bool chipGiven = !chip.empty();
  if (kind == "nvvm") {
    if (chip.empty())
      chip = "sm_90";
    std::optional<unsigned> sm = parseSmVersion(chip);
    if (!sm)
      return emitError() << "unknown NVIDIA chip '" << chip
                         << "', expected sm_<version> such as sm_80 or sm_90";
    return ModuleTarget(TargetKind::NVVM, chip.str(), *sm, chipGiven);
  }
  if (kind == "rocdl") {
    if (chip.empty())
      chip = "gfx942";
    if (failed(amdgpu::Chipset::parse(chip)))
      return emitError() << "unknown AMD chip '" << chip
                         << "', expected gfx<version> such as gfx942 or gfx950";
    return ModuleTarget(TargetKind::ROCDL, chip.str(), 0, chipGiven);
  }
  if (!kind.empty())
    return emitError() << "unknown target '" << kind
                       << "', expected cpu, nvvm or rocdl";
  return emitError() << "unknown chip '" << chip
                     << "', expected sm_<version> (NVIDIA) or gfx<version> "
                        "(AMD)";
}

std::optional<ModuleTarget> ModuleTarget::fromAttr(Attribute attr) {
  auto quiet = [] { return InFlightDiagnostic(); };
  FailureOr<ModuleTarget> target = failure();
  if (isa<CPUTargetAttr>(attr))
    return ModuleTarget();
  if (auto nvvm = dyn_cast<NVVM::NVVMTargetAttr>(attr))
    target = parse("nvvm", nvvm.getChip(), quiet);
  else if (auto rocdl = dyn_cast<ROCDL::ROCDLTargetAttr>(attr))
    target = parse("rocdl", rocdl.getChip(), quiet);
  if (failed(target))
    return std::nullopt;
  return *target;
}

bool ModuleTarget::hasFnuzFp8() const {
  if (kind != TargetKind::ROCDL)
    return false;
  FailureOr<amdgpu::Chipset> chipset = amdgpu::Chipset::parse(chip);
  return succeeded(chipset) && chipset->majorVersion == 9 &&
         chipset->minorVersion == 4;
}

bool ModuleTarget::hasOcpFp8() const {
  switch (kind) {
  case TargetKind::CPU:
    return false;
  case TargetKind::NVVM:
    return smVersion >= 89;
  case TargetKind::ROCDL: {
    FailureOr<amdgpu::Chipset> chipset = amdgpu::Chipset::parse(chip);
    return succeeded(chipset) && amdgpu::hasOcpFp8(*chipset);
  }
  }
  llvm_unreachable("unknown TargetKind");
}

std::optional<bool> ModuleTarget::getFp8Format() const {
  if (kind == TargetKind::CPU)
    return std::nullopt;
  return hasFnuzFp8();
}

Attribute ModuleTarget::toAttr(MLIRContext *context, unsigned optLevel) const {
  switch (kind) {
  case TargetKind::CPU:
    return CPUTargetAttr::get(context);
  case TargetKind::NVVM:
    return NVVM::NVVMTargetAttr::get(context, optLevel, "nvptx64-nvidia-cuda",
                                     chip);
  case TargetKind::ROCDL:
    return ROCDL::ROCDLTargetAttr::get(context, optLevel, "amdgcn-amd-amdhsa",
                                       chip);
  }
  llvm_unreachable("unknown TargetKind");
}

std::string ModuleTarget::describe() const {
  std::string text = stringifyTargetKind(kind).str();
  if (!chip.empty())
    text += " chip=" + chip;
  return text;
}

FailureOr<std::optional<StatedTarget>>
mlir::kvq::lookupModuleTarget(ModuleOp module) {
  std::optional<StatedTarget> stated;
  auto see = [&](Attribute attr, Operation *op) -> LogicalResult {
    std::optional<ModuleTarget> target = ModuleTarget::fromAttr(attr);
    if (!target)
      return success(); // not a target kvq compiles for (e.g. SPIR-V)
    if (!stated) {
      stated = StatedTarget{*target, attr, op};
      return success();
    }
    if (stated->target == *target)
      return success();
    InFlightDiagnostic diag =
        op->emitError() << "[TARGET-CONFLICT] the module's targets disagree: "
                        << stated->attr << " and " << attr
                        << "; kvq compiles a module for one target: compile "
                           "them separately";
    diag.attachNote(stated->op->getLoc()) << "first target stated here";
    return failure();
  };
  if (Attribute attr = module->getAttr(kTargetAttrName)) {
    if (!ModuleTarget::fromAttr(attr))
      return module.emitError()
             << "'" << kTargetAttrName
             << "' must be a target kvq compiles for (#kvq.cpu_target, "
                "#nvvm.target, #rocdl.target), got "
             << attr;
    if (failed(see(attr, module)))
      return failure();
  }
  WalkResult result = module.walk([&](Operation *op) {
    if (auto gpuModule = dyn_cast<gpu::GPUModuleOp>(op)) {
      if (ArrayAttr targets = gpuModule.getTargetsAttr())
        for (Attribute attr : targets)
          if (failed(see(attr, op)))
            return WalkResult::interrupt();
      return WalkResult::skip();
    }
    if (auto binary = dyn_cast<gpu::BinaryOp>(op)) {
      for (Attribute object : binary.getObjects())
        if (auto obj = dyn_cast<gpu::ObjectAttr>(object))
          if (failed(see(obj.getTarget(), op)))
            return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  return stated;
}

/// Checks that `request` is the target `stated`; else an error at the op
/// stating it.
static LogicalResult checkRequest(const StatedTarget &stated,
                                  const ModuleTarget &request,
                                  StringRef passName) {
  if (request.agreesWith(stated.target))
    return success();
  InFlightDiagnostic diag = stated.op->emitError()
                            << passName << ": target " << request.describe()
                            << " contradicts the module's target "
                            << stated.attr;
  diag.attachNote() << "drop the option, or compile a copy of the module "
                       "without this target";
  return failure();
}

FailureOr<ModuleTarget>
mlir::kvq::resolveModuleTarget(ModuleOp module,
                               const std::optional<ModuleTarget> &request,
                               StringRef passName) {
  FailureOr<std::optional<StatedTarget>> stated = lookupModuleTarget(module);
  if (failed(stated))
    return failure();
  if (!*stated)
    return request.value_or(ModuleTarget());
  if (request && failed(checkRequest(**stated, *request, passName)))
    return failure();
  return (*stated)->target;
}

LogicalResult mlir::kvq::setModuleTarget(ModuleOp module,
                                         const ModuleTarget &target,
                                         unsigned optLevel) {
  FailureOr<std::optional<StatedTarget>> stated = lookupModuleTarget(module);
  if (failed(stated))
    return failure();
  if (*stated)
    return checkRequest(**stated, target, "kvq-set-target");
  MLIRContext *context = module.getContext();
  Attribute attr = target.toAttr(context, optLevel);
  if (!target.isGPU()) {
    module->setAttr(kTargetAttrName, attr);
    return success();
  }
  auto targets = ArrayAttr::get(context, {attr});
  bool hasKernelModule = false;
  module.walk([&](gpu::GPUModuleOp gpuModule) {
    hasKernelModule |= gpuModule.getSymName() == kKernelModuleName &&
                       gpuModule->getParentOp() == module;
    if (!gpuModule.getTargetsAttr() || gpuModule.getTargetsAttr().empty())
      gpuModule.setTargetsAttr(targets);
  });
  if (!hasKernelModule) {
    // At the end, where gpu-kernel-outlining would create it.
    OpBuilder b(context);
    b.setInsertionPointToEnd(module.getBody());
    auto kernels = gpu::GPUModuleOp::create(b, module.getLoc(),
                                            kKernelModuleName, targets);
    SymbolTable(module).insert(kernels);
  }
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  UnitAttr::get(context));
  return success();
}
