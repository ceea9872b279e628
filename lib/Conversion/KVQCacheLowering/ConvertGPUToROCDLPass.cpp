//===- ConvertGPUToROCDLPass.cpp - kvq-convert-gpu-to-rocdl ---------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/Passes.h"
#include "kvq/Target/ModuleTarget.h"

#include "mlir/Conversion/GPUToROCDL/GPUToROCDLPass.h"
#include "mlir/Dialect/AMDGPU/IR/AMDGPUDialect.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"
#include "mlir/Pass/PassManager.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQCONVERTGPUTOROCDL
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
struct KVQConvertGPUToROCDLPass final
    : kvq::impl::KVQConvertGPUToROCDLBase<KVQConvertGPUToROCDLPass> {
  using Base::Base;

  void runOnOperation() override {
    gpu::GPUModuleOp module = getOperation();
    std::optional<ModuleTarget> target;
    if (ArrayAttr targets = module.getTargetsAttr())
      for (Attribute attr : targets)
        if (std::optional<ModuleTarget> t = ModuleTarget::fromAttr(attr);
            t && t->getKind() == TargetKind::ROCDL)
          target = t;
    if (!target) {
      module.emitError() << "kvq-convert-gpu-to-rocdl: gpu.module @"
                         << module.getSymName()
                         << " has no #rocdl.target; run kvq-set-target first";
      return signalPassFailure();
    }
    OpPassManager pm(gpu::GPUModuleOp::getOperationName());
    ConvertGpuOpsToROCDLOpsOptions options;
    options.chipset = target->getChip().str();
    options.useBarePtrCallConv = true;
    pm.addPass(createConvertGpuOpsToROCDLOps(options));
    if (failed(runPipeline(pm, module)))
      signalPassFailure();
  }
};
} // namespace
