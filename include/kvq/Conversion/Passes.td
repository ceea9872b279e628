//===- Passes.td - kvq conversion passes -------------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_PASSES_TD
#define KVQ_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def KVQLowerCacheOps : Pass<"kvq-lower-cache-ops", "::mlir::ModuleOp"> {
  let summary = "lower kvq.cache_store and kvq.cache_load to loops or kernels";
  let description = [{
    Rewrites every `kvq.cache_store` and `kvq.cache_load` (semantics on the
    ops) into a call of a function shared by every cache op of the same
    signature, with its layer's resolved K and V scales as f32 constants,
    then erases the `kvq.layer` ops no longer referenced. For the module's
    target (`kvq-set-target`; none: the CPU) the function holds host `scf`
    loops, or one `gpu.launch` outlined later into
    `gpu.module @kvq_cache_kernels`. Function names, kernel parameters and
    launch geometry: docs/KernelABI.md. A cache op whose layer has no
    resolved scales is an error.

    A layer with per-head K and V scales (one per KV head, e.g.
    compressed-tensors `attn_head`, sharded by `kvq-fold-scales tp-size`)
    quantizes and dequantizes each head with its own scale, with exactly
    the numerics of a per-tensor scale of that value: its cache ops call
    `..._per_head` functions that take the scales as `vector<H x f32>`
    constants. The op's head dimension must be static and equal to the
    number of scales (an error otherwise).

    `target` and `chip` lower a module that states no target (and then
    state it); naming another target than the module's is an error.
    `quantize-division` chooses how the store computes `x / s`
    (ScaledDivision.h).

    ```mlir
    kvq.cache_store @l0 (%k, %v) into (%kc, %vc) at %s
        : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
    // becomes
    %ks = arith.constant 5.000000e-02 : f32
    %vs = arith.constant 7.000000e-02 : f32
    call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(%s, %k, %v, %kc, %vc,
        %ks, %vs) : (memref<?xi64>, ..., f32, f32) -> ()
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"\"",
           "'cpu', 'nvvm' or 'rocdl' (default: the module's target, else "
           "the chip's, else cpu)">,
    Option<"chip", "chip", "std::string", /*default=*/"\"\"",
           "GPU chip: sm_<N> (sm_89+ convert fp8 natively) or gfx<...> "
           "(gfx942: FNUZ, gfx950: OCP)">,
    Option<"threadsPerBlock", "threads-per-block", "int64_t",
           /*default=*/"128", "threads per block of the GPU launch">,
    Option<"quantizeDivision", "quantize-division", "std::string",
           /*default=*/"\"auto\"",
           "how the store computes x / s: 'auto' (multiply by RN(1/s), "
           "alone or with one FMA correction, whichever is proven to give "
           "the division's cache bytes, else divide), 'fma' (never the "
           "product alone) or 'divf' (always arith.divf)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::memref::MemRefDialect", "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::ROCDL::ROCDLDialect",
    "::mlir::amdgpu::AMDGPUDialect", "::mlir::LLVM::LLVMDialect",
  ];
}

def KVQLowerAttention : Pass<"kvq-lower-attention", "::mlir::ModuleOp"> {
  let summary = "lower kvq.paged_attention (CPU loops, GPU kernels)";
  let description = [{
    Rewrites every `kvq.paged_attention` (semantics on the op) into a call
    of a function shared by the ops of the same signature (query and cache
    types, precision), with the layer's scales as f32 constants: the score
    scale `RN(s_k * scale)` (`RN(s_q * s_k * scale)` in the fp8 modes, one
    rounding of the exact product), `s_v`, `s_q` and `s_p`. For the CPU
    (the module's target, or none) the function holds host loops: per
    sequence and query head, the maximum score, then the exponentials and
    the weighted sum of the V rows, in f32. For a GPU target the function
    launches one kernel (score scale times log2(e), no `s_p`): on NVIDIA
    sm_80+ the tensor-core kernel (flash-decoding over the op's
    workspace; for 8-bit caches with 128-element heads, a staged form of it
    when a split has two tiles a warp or more), elsewhere (AMD, older
    chips, shapes it does not cover) the portable kernel, the CPU's loops
    with one thread per query head and sequence, with a remark at the op
    saying why (also for `fp8_qk_pv`, whose function then takes `s_p`).
    ABIs and the split rule: docs/KernelABI.md. Dynamic head counts and
    sizes and strided memrefs are errors at the op on a GPU. Runs before
    `kvq-lower-cache-ops` in the kvq-to-* pipelines.

    ```mlir
    kvq.paged_attention @l0 (%q) cache(%kc, %vc) blocks(%bt, %cl) into(%o)
        : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, ...
    // becomes
    call @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16(%q, %kc, %vc, %bt,
        %cl, %o, %c, %sv, %sq, %sp) : (...) -> ()
    ```
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect",
    "::mlir::gpu::GPUDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::ROCDL::ROCDLDialect", "::mlir::amdgpu::AMDGPUDialect",
    "::mlir::LLVM::LLVMDialect",
  ];
}

def KVQAlignWorkgroupBuffers
    : Pass<"kvq-align-workgroup-buffers", "::mlir::ModuleOp"> {
  let summary = "align the outlined kvq kernels' workgroup buffers to 16 bytes";
  let description = [{
    Sets `llvm.align = 16` on every workgroup attribution without an
    alignment of every kernel `gpu.func` of the `gpu.module
    @kvq_cache_kernels`. The attention kernels access their shared buffers
    with 16-byte vector loads and `cp.async` copies; a buffer of `i8` is
    otherwise declared with the alignment of its element (`.align 1` in
    PTX), and such an access is then aligned only by where ptxas happens to
    place it. Run it after `gpu-kernel-outlining`, which does not carry
    attributes of a `gpu.launch` over; `kvq-to-ptx` and `kvq-to-amdgcn` do.

    ```
    kvq-opt m.mlir --kvq-lower-attention --gpu-kernel-outlining \
        --kvq-align-workgroup-buffers
    ```
  }];
}

def KVQLimitKernelRegisters
    : Pass<"kvq-limit-kernel-registers", "::mlir::ModuleOp"> {
  let summary = "set the register limits of the outlined kvq kernels (NVVM)";
  let description = [{
    Sets `nvvm.maxnreg = max-registers` on every cache kernel `gpu.func` of
    the `gpu.module @kvq_cache_kernels` that has no register limit yet and
    does no `arith.divf` (a true division's slow path keeps registers live),
    and `nvvm.minctasm = 4` on every attention kernel
    (`kvq_paged_attention_*`): the split rule of the attention lowering
    counts on 4 resident CTAs per SM (docs/KernelABI.md).
    Left alone, ptxas gives the store kernel 32 registers and then issues
    the V and slot loads only after converting K, so a thread waits for two
    memory round trips; with a cap it issues every load first
    (bench/RESULTS.md has the measurements). Run it after
    `gpu-kernel-outlining`, which does not carry attributes of a
    `gpu.launch` over. `kvq-to-ptx` runs it with 48; `max-registers=0`
    leaves the cache kernels alone.

    ```
    kvq-opt m.mlir --kvq-lower-cache-ops=chip=sm_90 --gpu-kernel-outlining \
        --kvq-limit-kernel-registers=max-registers=48
    ```
  }];
  let options = [
    Option<"maxRegisters", "max-registers", "int64_t", /*default=*/"48",
           "registers per thread (24 to 255; 0: no limit)">,
  ];
}

def KVQConvertGPUToROCDL
    : Pass<"kvq-convert-gpu-to-rocdl", "::mlir::gpu::GPUModuleOp"> {
  let summary = "convert-gpu-to-rocdl for the chip of the gpu.module's target";
  let description = [{
    Runs upstream `convert-gpu-to-rocdl` on the gpu.module with its
    `chipset` taken from the module's `#rocdl.target` (the upstream pass
    takes it only as an option, and leaves the fp8 conversions of other
    chipsets unconverted). `kvq-to-amdgcn` uses it, so that the chip is
    stated once, by the target. A gpu.module without a ROCDL target is an
    error.

    ```
    kvq-opt k.mlir \
      --pass-pipeline='builtin.module(gpu.module(kvq-convert-gpu-to-rocdl))'
    ```
  }];
  let dependentDialects = ["::mlir::ROCDL::ROCDLDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::cf::ControlFlowDialect",
                           "::mlir::amdgpu::AMDGPUDialect"];
}

def KVQCheckLibdevice
    : Pass<"kvq-check-libdevice", "::mlir::gpu::GPUModuleOp"> {
  let summary = "error where an NVVM kernel calls libdevice and none is found";
  let description = [{
    Read-only. A fused store's region may compute with `math` ops
    (`math.cos`, `math.powf`) that `convert-gpu-to-nvvm` turns into calls of
    libdevice functions (`__nv_cosf`). `gpu-module-to-binary` links
    libdevice from the CUDA toolkit MLIR finds (`$CUDA_ROOT`, else
    `$CUDA_HOME`, else `$CUDA_PATH`: `nvvm/libdevice/libdevice.10.bc`);
    without one it still writes PTX, whose unresolved `.extern` calls
    ptxas and the driver reject. This pass makes that an error at each
    called function's first call, which carries the location of the `math`
    op it came from. `kvq-to-ptx` runs it before serializing; a module
    that calls no `__nv_` function passes whatever the machine has.

    ```
    kvq-opt k.mlir \
      --pass-pipeline='builtin.module(gpu.module(kvq-check-libdevice))'
    ```
  }];
}

def KVQWriteISA : Pass<"kvq-write-isa", "::mlir::ModuleOp"> {
  let summary = "write the assembly held by gpu.binary ops to a file";
  let description = [{
    Read-only. For every `gpu.binary` whose objects were serialized with
    `gpu-module-to-binary{format=isa}` (PTX for NVVM targets, AMDGCN
    assembly for ROCDL ones), writes the object's text to `output`, so it
    can be assembled (`ptxas -arch=sm_90 k.ptx`) or loaded by a driver-API
    launcher (`cuModuleLoadData`). Several objects are written one after
    another, each preceded by a `// kvq-write-isa: @<binary> <target>` line
    when there is more than one.

    ```
    kvq-opt model.mlir --kvq-to-ptx=chip=sm_90 \
        --kvq-write-isa=output=kernels.ptx -o /dev/null
    ```
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "file to write to ('-' for stdout)">,
  ];
}

#endif // KVQ_CONVERSION_PASSES_TD
