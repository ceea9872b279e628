//===- Pipelines.cpp - kvq-to-llvm, kvq-to-ptx, kvq-to-amdgcn -------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::kvq;

void mlir::kvq::buildKVQToLLVMPipeline(
    OpPassManager &pm, const KVQToLLVMPipelineOptions &options) {
  KVQLowerCacheOpsOptions lower;
  lower.target = "cpu";
  lower.quantizeDivision = options.quantizeDivision;
  pm.addPass(createKVQLowerCacheOps(lower));
  pm.addPass(createSCFToControlFlowPass());
  // bf16 <-> f32 as integer ops (round to nearest even): LLVM would call
  // compiler-rt helpers for them on hosts without native bf16.
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

/// The part the NVVM and ROCDL pipelines share, around `deviceLowering`.
static void buildGPUPipeline(OpPassManager &pm, StringRef target,
                             StringRef chip,
                             const KVQToGPUPipelineOptions &options,
                             function_ref<void(OpPassManager &)> attach,
                             function_ref<void(OpPassManager &)> device,
                             int64_t maxRegisters = 0) {
  KVQLowerCacheOpsOptions lower;
  lower.target = target.str();
  lower.chip = chip.str();
  lower.threadsPerBlock = options.threadsPerBlock;
  lower.quantizeDivision = options.quantizeDivision;
  pm.addPass(createKVQLowerCacheOps(lower));
  pm.addPass(createGpuKernelOutliningPass());
  if (maxRegisters)
    pm.addPass(createKVQLimitKernelRegisters({maxRegisters}));
  pm.addPass(createSCFToControlFlowPass());
  attach(pm);
  OpPassManager &gpuModule = pm.nest<gpu::GPUModuleOp>();
  device(gpuModule);
  gpuModule.addPass(createCanonicalizerPass());
  gpuModule.addPass(createCSEPass());
  gpuModule.addPass(createReconcileUnrealizedCastsPass());
  // Kernels take their memrefs (rank-0 base buffers, see
  // kvq-lower-cache-ops) as bare pointers, on both sides of the launch.
  GpuToLLVMConversionPassOptions toLLVM;
  toLLVM.kernelBarePtrCallConv = true;
  pm.addPass(createGpuToLLVMConversionPass(toLLVM));
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void mlir::kvq::buildKVQToPTXPipeline(OpPassManager &pm,
                                      const KVQToGPUPipelineOptions &options) {
  std::string chip = options.chip.empty() ? "sm_90" : options.chip.getValue();
  buildGPUPipeline(
      pm, "nvvm", chip, options,
      [&](OpPassManager &pm) {
        GpuNVVMAttachTargetOptions attach;
        attach.chip = chip;
        attach.optLevel = options.optLevel;
        pm.addPass(createGpuNVVMAttachTarget(attach));
      },
      [](OpPassManager &pm) {
        ConvertGpuOpsToNVVMOpsOptions nvvm;
        nvvm.useBarePtrCallConv = true;
        pm.addPass(createConvertGpuOpsToNVVMOps(nvvm));
      },
      options.maxRegisters);
}

void mlir::kvq::buildKVQToAMDGCNPipeline(
    OpPassManager &pm, const KVQToGPUPipelineOptions &options) {
  std::string chip = options.chip.empty() ? "gfx942" : options.chip.getValue();
  buildGPUPipeline(
      pm, "rocdl", chip, options,
      [&](OpPassManager &pm) {
        GpuROCDLAttachTargetOptions attach;
        attach.chip = chip;
        attach.optLevel = options.optLevel;
        pm.addPass(createGpuROCDLAttachTarget(attach));
      },
      [&](OpPassManager &pm) {
        ConvertGpuOpsToROCDLOpsOptions rocdl;
        rocdl.chipset = chip;
        rocdl.useBarePtrCallConv = true;
        pm.addPass(createConvertGpuOpsToROCDLOps(rocdl));
      });
}

void mlir::kvq::registerKVQConversionPasses() {
  detail::registerKVQConversionPasses();
  PassPipelineRegistration<KVQToLLVMPipelineOptions>(
      "kvq-to-llvm",
      "lower folded kvq IR to the LLVM dialect for the host CPU "
      "(runnable with mlir-runner / ExecutionEngine)",
      buildKVQToLLVMPipeline);
  PassPipelineRegistration<KVQToGPUPipelineOptions>(
      "kvq-to-ptx",
      "lower folded kvq IR to NVIDIA kernels: gpu.binary ops holding PTX "
      "(chip=sm_90 by default), host code in the LLVM dialect",
      buildKVQToPTXPipeline);
  PassPipelineRegistration<KVQToGPUPipelineOptions>(
      "kvq-to-amdgcn",
      "lower folded kvq IR to AMD kernels: gpu.binary ops holding AMDGCN "
      "assembly (chip=gfx942 by default), host code in the LLVM dialect",
      buildKVQToAMDGCNPipeline);
}
