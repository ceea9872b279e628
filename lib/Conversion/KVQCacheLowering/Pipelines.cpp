//===- Pipelines.cpp - kvq-to-llvm, kvq-to-ptx, kvq-to-amdgcn -------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/Passes.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"

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
  // The CPU is the target of a module that states none; a module that
  // states a GPU target is an error here.
  pm.addPass(createKVQLowerAttention());
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

/// The part the NVVM and ROCDL pipelines share, around `device` (the
/// lowering of the gpu.module's ops). The chip is the module's (stated by
/// the frontend or kvq-set-target), else `options.chip`, else the kind's
/// default; an option that contradicts the module is an error.
static void buildGPUPipeline(OpPassManager &pm, StringRef kind,
                             const KVQToGPUPipelineOptions &options,
                             function_ref<void(OpPassManager &)> device,
                             int64_t maxRegisters = 0) {
  KVQSetTargetOptions target;
  target.target = kind.str();
  target.chip = options.chip;
  target.optLevel = options.optLevel;
  pm.addPass(createKVQSetTarget(target));
  pm.addPass(createKVQLowerAttention());
  KVQLowerCacheOpsOptions lower;
  lower.threadsPerBlock = options.threadsPerBlock;
  lower.quantizeDivision = options.quantizeDivision;
  pm.addPass(createKVQLowerCacheOps(lower));
  pm.addPass(createGpuKernelOutliningPass());
  pm.addPass(createKVQAlignWorkgroupBuffers());
  if (kind == "nvvm")
    pm.addPass(createKVQLimitKernelRegisters({maxRegisters}));
  pm.addPass(createSCFToControlFlowPass());
  OpPassManager &gpuModule = pm.nest<gpu::GPUModuleOp>();
  device(gpuModule);
  gpuModule.addPass(createCanonicalizerPass());
  gpuModule.addPass(createCSEPass());
  gpuModule.addPass(createReconcileUnrealizedCastsPass());
  // Kernels take their memrefs (rank-0 base buffers, docs/KernelABI.md) as
  // bare pointers, on both sides of the launch.
  GpuToLLVMConversionPassOptions toLLVM;
  toLLVM.kernelBarePtrCallConv = true;
  pm.addPass(createGpuToLLVMConversionPass(toLLVM));
  pm.addPass(createReconcileUnrealizedCastsPass());
  if (kind == "nvvm")
    pm.addNestedPass<gpu::GPUModuleOp>(createKVQCheckLibdevice());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(binary));
}

void mlir::kvq::buildKVQToPTXPipeline(OpPassManager &pm,
                                      const KVQToGPUPipelineOptions &options) {
  buildGPUPipeline(
      pm, "nvvm", options,
      [](OpPassManager &pm) {
        ConvertGpuOpsToNVVMOpsOptions nvvm;
        nvvm.useBarePtrCallConv = true;
        pm.addPass(createConvertGpuOpsToNVVMOps(nvvm));
      },
      options.maxRegisters);
}

void mlir::kvq::buildKVQToAMDGCNPipeline(
    OpPassManager &pm, const KVQToGPUPipelineOptions &options) {
  buildGPUPipeline(pm, "rocdl", options, [](OpPassManager &pm) {
    pm.addPass(createKVQConvertGPUToROCDL());
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
      "(the module's chip, else chip=, else sm_90), host code in the LLVM "
      "dialect",
      buildKVQToPTXPipeline);
  PassPipelineRegistration<KVQToGPUPipelineOptions>(
      "kvq-to-amdgcn",
      "lower folded kvq IR to AMD kernels: gpu.binary ops holding AMDGCN "
      "assembly (the module's chip, else chip=, else gfx942), host code in "
      "the LLVM dialect",
      buildKVQToAMDGCNPipeline);
}
