//===- Passes.h - kvq conversion passes and pipelines -----------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_PASSES_H
#define KVQ_CONVERSION_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::kvq {

#define GEN_PASS_DECL
#include "kvq/Conversion/Passes.h.inc"

/// Options of the `kvq-to-ptx` and `kvq-to-amdgcn` pipelines.
struct KVQToGPUPipelineOptions
    : public PassPipelineOptions<KVQToGPUPipelineOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip",
      llvm::cl::desc("GPU chip (kvq-to-ptx: sm_<N>, default sm_90; "
                     "kvq-to-amdgcn: gfx<...>, default gfx942)"),
      llvm::cl::init("")};
  PassOptions::Option<unsigned> optLevel{
      *this, "opt-level", llvm::cl::desc("LLVM optimization level (0-3)"),
      llvm::cl::init(3)};
  PassOptions::Option<int64_t> threadsPerBlock{
      *this, "threads-per-block",
      llvm::cl::desc("threads per block of the cache kernels"),
      llvm::cl::init(128)};
  PassOptions::Option<std::string> quantizeDivision{
      *this, "quantize-division",
      llvm::cl::desc("how the store computes x / s: 'auto', 'fma' or "
                     "'divf' (ScaledDivision.h)"),
      llvm::cl::init("auto")};
  PassOptions::Option<int64_t> maxRegisters{
      *this, "max-registers",
      llvm::cl::desc("kvq-to-ptx: register cap of the cache kernels (see "
                     "kvq-limit-kernel-registers; 0: none)"),
      llvm::cl::init(48)};
};

/// Options of the `kvq-to-llvm` pipeline.
struct KVQToLLVMPipelineOptions
    : public PassPipelineOptions<KVQToLLVMPipelineOptions> {
  PassOptions::Option<std::string> quantizeDivision{
      *this, "quantize-division",
      llvm::cl::desc("how the store computes x / s: 'auto', 'fma' or "
                     "'divf' (ScaledDivision.h)"),
      llvm::cl::init("auto")};
};

/// `kvq-to-llvm`: folded kvq IR to the LLVM dialect for the host CPU
/// (mlir-runner / ExecutionEngine): kvq-lower-cache-ops{target=cpu}, then
/// scf, arith (bf16 conversions expanded to integer ops), memref, func to
/// LLVM.
void buildKVQToLLVMPipeline(OpPassManager &pm,
                            const KVQToLLVMPipelineOptions &options = {});

/// `kvq-to-ptx`: kvq-lower-cache-ops{target=nvvm}, kernel outlining,
/// kvq-align-workgroup-buffers, kvq-limit-kernel-registers, NVVM lowering,
/// and `gpu-module-to-binary{format=isa}`: the module's `gpu.binary` ops
/// hold PTX text (see kvq-write-isa), the host code is in the LLVM dialect.
void buildKVQToPTXPipeline(OpPassManager &pm,
                           const KVQToGPUPipelineOptions &options);

/// `kvq-to-amdgcn`: the same for ROCDL; the binaries hold AMDGCN assembly.
void buildKVQToAMDGCNPipeline(OpPassManager &pm,
                              const KVQToGPUPipelineOptions &options);

/// Registers the kvq conversion passes and the kvq-to-llvm, kvq-to-ptx and
/// kvq-to-amdgcn pipelines with the global registry.
void registerKVQConversionPasses();

namespace detail {
#define GEN_PASS_REGISTRATION
#include "kvq/Conversion/Passes.h.inc"
} // namespace detail

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_PASSES_H
