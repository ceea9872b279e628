//===- Passes.td - kvq conversion passes ------------------*- tablegen -*-===//
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
    Rewrites every `kvq.cache_store` and `kvq.cache_load` of the module into
    a call of a function shared by every cache op of the same signature, with
    the K and V scales of its layer's `#kvq.resolved_scales` as f32
    constant operands, then erases the `kvq.layer` ops no longer
    referenced. The function holds host `scf` loops (`target=cpu`) or one
    `gpu.launch` (`target=nvvm`, `target=rocdl`). A model of N layers thus
    gets a few functions and kernels, not N: the lowered IR stays about the
    size of the input (bench/RESULTS.md, "Compile time").

    ```mlir
    %ks = arith.constant 5.000000e-02 : f32
    %vs = arith.constant 7.000000e-02 : f32
    call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(%slots, %k, %v, %kc, %vc,
        %ks, %vs) : (memref<?xi64>, memref<?x8x128xbf16>, ..., f32, f32) -> ()
    ```

    The signature is the op kind, the five memref types, and for a
    quantizing store how each stream computes its quotient (below: the
    product `mul`, the corrected product `fma`, or `divf`, whichever is
    proven for its scale). The function is a private `func.func` at the end
    of the module named
    `kvq_cache_<store|load>_<source elem>_<destination elem>_<H>x<D>_b<block size>`
    (`dyn` for a dynamic size), plus, for a quantizing store whose streams
    do not both multiply, `_<quotient>` when both streams use the same one
    (`_divf`, `_fma`) and `_k<quotient>_v<quotient>` otherwise
    (`_kmul_vdivf`), uniqued with a
    numeric suffix if the name is taken (or another signature has it, e.g.
    the same shapes with a static token count). It takes
    `(slot_mapping, K source, V source, K destination, V destination,
    k_scale: f32, v_scale: f32)`. The library API is `KVQCacheFunctions` and
    `populateKVQCacheLoweringPatterns` (KVQCacheLowering.h).
    A cache op whose layer has no resolved scales (run `kvq-fold-scales`
    first) is an error located at the op, with a note at the layer.

    ### Semantics (identical on every target, bit for bit)

    Shapes: activations `[T, H, D]`, caches `[num_blocks, block_size, H, D]`,
    `slot_mapping[T]` (i64). Token `t` with `slot = slot_mapping[t] >= 0`
    maps to cache row `[slot / block_size, slot % block_size]`; tokens with
    `slot < 0` are skipped: the store leaves the cache row, the load the
    output row, untouched. Slots must be below `num_blocks * block_size`.
    K uses the layer's K scale `sk`, V its V scale `sv` (`s` below).

    Store, `cache[...] = q(x)`:
    - fp8 (`f8E4M3FN`, `f8E4M3FNUZ`, `f8E5M2`, `f8E5M2FNUZ`):
      `q = convert(f32(x) / s)` with the quotient of a true f32 division,
      round to nearest even (subnormal results included), saturating: finite values
      beyond the largest finite one (448, 240, 57344, 57344) and +-inf become
      +-max. NaN stays NaN: every NaN input (any sign, any payload) becomes
      `0x7F` for `f8E4M3FN` and `f8E5M2` (what NVIDIA's
      `cvt.rn.satfinite` produces; GPU arithmetic does not keep the sign of a
      NaN, so no target could promise it) and `0x80` for the FNUZ formats,
      whose zero is always `0x00` (they have no -0).
    - int8: `q = clamp(round_half_even(f32(x) / s), -128, 127)`, NaN -> 0.
    - auto: plain copy.

    The quotient: with `quantize-division=divf`, an `arith.divf`. Else no
    division instruction where one of two cheaper forms is proven, for the
    layer's scale, the activation type and the cache format, to give every
    input the cache byte of the division (see
    `include/kvq/Conversion/KVQCacheLowering/ScaledDivision.h`):
    - the product `q = x * RN(1/s)` alone (default `quantize-division=auto`;
      proven for 19,999 of 20,000 log-uniform scales in [1e-4, 1e3] for
      bf16 into f8E4M3FN, 19,981 into i8);
    - the branch-free `x1 = minimumf(maximumf(x, -B), B)` (B = s * 2^17),
      `q0 = x1 * RN(1/s)`, `q = fma(fma(-s, q0, x1), RN(1/s), q0)`
      (`llvm.intr.fma`), `q0` where it is zero: every bf16 / f16 case with
      a scale in [2^-60, 2^60] (`auto` where the product is not proven, and
      `quantize-division=fma`);
    - `arith.divf` otherwise (f32 activations, extreme scales).
    On NVIDIA the division is an FCHK-guarded sequence with a slow-path
    call that costs registers and occupancy (store kernel 40 registers
    instead of 32 on sm_90).

    Load, `out[t, h, d] = r(cache[...])`:
    - fp8 and int8: `r = round_to_out_type(f32(c) * s)`, round to nearest
      even (f32 outputs: the f32 product). Every NaN output is the positive
      quiet NaN with only the quiet bit set (`0x7FC0` bf16, `0x7E00` f16,
      `0x7FC00000` f32). Products beyond the output type's range are +-inf.
    - auto: plain copy.
    Activations and outputs may be f16, bf16 or f32.

    ### Targets (`target`, `chip`)

    - `cpu` (no chip): `scf.for` over tokens, heads and elements with
      `memref.load`/`memref.store` and the integer-only software conversion
      (the reference).
    - `nvvm`, `chip=sm_<N>`: sm_89 and newer convert `f8E4M3FN` and `f8E5M2`
      with `nvvm.convert.f32x2.to.f8x2` (`cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32`)
      and `nvvm.convert.f8x2.to.f16x2` (`cvt.rn.f16x2.{e4m3x2,e5m2x2}`);
      older chips, and the FNUZ formats, use the software conversion.
    - `rocdl`, `chip=gfx<...>`: gfx94x converts the FNUZ formats, gfx950 and
      gfx12 the OCP ones, with `amdgpu.packed_trunc_2xfp8` (after a
      NaN-preserving clamp to +-max: the instruction does not saturate) and
      `amdgpu.ext_packed_fp8`; other formats use software. A format that is
      not the chip's own is accepted (software), since store and load both
      come from kvq and agree on the bytes.

    ### GPU form and kernel ABI

    The function of a GPU signature computes RN(1/s) of both scales on the
    host (an f32 division) and runs one `gpu.launch` (outlined into the
    gpu.module `@kvq_cache_kernels`) with a 1-D grid of `threads-per-block`
    threads (default 128). A work item is one token and one chunk of its
    `[H, D]` row: as many elements as make one 16-byte access of the wider
    of the source and destination element types, so 8 for bf16 / f16 <->
    fp8 / int8 (the store reads 16 bytes and writes 8 per stream, the load
    reads 8 and writes 16) and 4 with f32 activations;
    `work_items = T * H * D / chunk`. The thread moves the chunk of K and of
    V; consecutive threads take consecutive chunks, so a warp reads and
    writes contiguous memory. This vector path needs `D` static and a
    multiple of the chunk (64, 128, 256 all are) and identity-layout
    (contiguous) activations and caches, and assumes base pointers aligned
    to the access size (cudaMalloc / hipMalloc give 256); otherwise a work
    item is one element (`work_items = T * H * D`).
    A store thread takes one work item per pass of its loop; a load thread
    takes two, one grid (`grid * threads_per_block` items) apart, reading
    both slots, then both cache rows, before converting: a gather waits for
    its slot, and two gathers in flight hide more of that (`items` = 1 for
    the store, 2 for the load). The gathers are unconditional (cache row 0
    for a negative slot), so a load into an empty cache launches nothing.
    The host code launches
    `max(1, ceil(work_items / (threads_per_block * items)))` blocks. NVVM
    kernels loop grid-stride (any grid size is correct, a smaller one
    slower); ROCDL kernels make one pass (reading gridDim there needs the
    ROCm device libraries), so the grid must be exactly the host's. After
    outlining the block size is a known constant (PTX `.maxntid 128`), so a
    launcher must use exactly `threads-per-block` threads. No branch
    depends on a slot: the stores are predicated on it (NVVM: inline
    `@p st.global.{b32,v2.b32,v4.b32}`).

    Measured on an H100 80GB HBM3 (bench/RESULTS.md; H = 8, D = 128,
    block 16, bf16 <-> f8E4M3FN, sm_90, 128 threads per block, single
    launches with a cold L2): at T = 32768 the store moves its bytes at
    102% and the load at 95% of the bandwidth of a 256 MiB device-to-device
    copy, at T = 4096 at 76%; the T = 256 store takes about 5 us, 2.4 us per
    call in a CUDA graph. Every byte of the exhaustive on-device checks
    matched the CPU reference and PyTorch.

    Kernel parameters after `gpu-kernel-outlining`: the host splits each
    memref with `memref.extract_strided_metadata` and the kernel rebuilds it
    with `memref.reinterpret_cast`, so a kernel takes, in order:
    1. the base buffers (rank-0 memrefs) of *slot_mapping, K source,
       V source, K destination, V destination* (store: slot_mapping, key,
       value, key_cache, value_cache; load: slot_mapping, key_cache,
       value_cache, key_out, value_out);
    2. four f32: `k_scale, RN(1/k_scale), v_scale, RN(1/v_scale)` (every
       kernel takes all four; a load, a divf store and a plain copy ignore
       some);
    3. for each of the five memrefs in the same order, the offset, sizes
       and strides its type leaves dynamic (offset first, then sizes, then
       strides), as i64.
    `kvq-to-ptx` and `kvq-to-amdgcn` pass the base buffers as bare pointers
    (`gpu-to-llvm{use-bare-pointers-for-kernels}` with the matching option
    of `convert-gpu-to-nvvm` / `convert-gpu-to-rocdl`): for the usual
    operands (only the leading size dynamic) that is 14 parameters, 96
    bytes. (With the default memref calling convention on both sides a base
    buffer is 3 parameters: allocated pointer, aligned pointer, offset 0.)
    On an H100 the 14 parameters made launches 0.3-0.5 us shorter than the
    49 of whole memref descriptors (bench/gpu/exp2). A memref whose layout
    is not strided is passed whole (its descriptor), which the bare-pointer
    convention rejects. A store kernel computes each stream's quotient as
    its name says (no suffix: the product alone for both): the product and
    the corrected product give the bytes of a division only for the scales
    `proveReciprocalProduct` (for the kernel's activation type and cache
    format) resp. `proveReciprocalDivision` accept, which kvq checks at
    compile time for the layer's scale; a launcher of its own must pass only
    such scales. With `kvq-to-ptx` the kernels of a module
    are the entries of one PTX module, named `<function>_kernel`
    (`kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel`). For a store of
    `memref<?x8x128xbf16>` into `memref<?x16x8x128xf8E4M3FN>` with scales
    0.05 and 0.07:

    ```
    pointers: slots, key, value, kc, vc
    scales:   0.05f, 20.0f, 0.07f, RN(1/0.07f)
    sizes:    T, T, T, NB, NB        (i64)
    grid = (max(1, ceil(T * 128 / 128)), 1, 1), block = (128, 1, 1)
    ```
    (The load into bf16 of the same shapes: slots, kc, vc, key_out,
    value_out, the same scales, sizes T, NB, NB, T, T; `T * 128` work
    items, grid `max(1, ceil(T * 128 / 256))`.)

    `unittests/Conversion/gpu/kvq-launch.cpp` is a CUDA driver-API launcher
    that follows this ABI.

    ### Example

    ```mlir
    kvq.layer @l0 cache(fp8) resolved(#kvq.resolved_scales<k = 5.0e-02
        checkpoint, v = 5.0e-02 checkpoint, q = 1.0 default,
        prob = 1.0 default>)
    func.func @f(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
                 %s: memref<?xi64>) {
      kvq.cache_store @l0 (%k, %k) into (%kc, %kc) at %s
          : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
      return
    }
    ```
    becomes, with `target=nvvm chip=sm_90`, a call of
    `@kvq_cache_store_bf16_f8E4M3FN_8x128_b16` with the scales 0.05 and 0.05,
    whose `gpu.launch` loads `vector<8xbf16>`, divides by the scale,
    converts pairs with `nvvm.convert.f32x2.to.f8x2 ... {rnd = rn,
    sat = satfinite}` and stores one `vector<8xf8E4M3FN>` per stream; with
    `target=cpu`, the function holds nested `scf.for` loops.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "code to generate: 'cpu' (host loops), 'nvvm' or 'rocdl' (GPU)">,
    Option<"chip", "chip", "std::string", /*default=*/"\"\"",
           "GPU chip: sm_<N> for nvvm (sm_89+ convert natively), gfx<...> "
           "for rocdl (gfx942: FNUZ, gfx950: OCP); none for cpu">,
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
    "::mlir::amdgpu::AMDGPUDialect", "::mlir::LLVM::LLVMDialect",
  ];
}

def KVQLimitKernelRegisters
    : Pass<"kvq-limit-kernel-registers", "::mlir::ModuleOp"> {
  let summary = "cap the registers of the outlined kvq cache kernels (NVVM)";
  let description = [{
    Sets `nvvm.maxnreg = max-registers` on every kernel `gpu.func` of the
    `gpu.module @kvq_cache_kernels` that has no register limit yet and does
    no `arith.divf` (a true division's slow path keeps registers live:
    capped at 48, the `quantize-division=divf` store ran at 89% instead of
    101% of copy bandwidth at T = 32768). Run it after
    `gpu-kernel-outlining` (the outlining does not carry attributes of a
    `gpu.launch` over). `kvq-to-ptx` runs it with 48. `max-registers=0`
    does nothing.

    Why: left alone, ptxas gives the store kernel 32 registers and then
    issues the V and slot loads only after converting K, so a thread waits
    for two memory round trips. With a cap of 40 to 64 it issues all five
    loads first (40 registers). On an H100 (bench/RESULTS.md) the decode
    store (T = 256) took 5.33 instead of 5.76 us as a single launch and
    2.72 instead of 3.22 us per call in a CUDA graph; other shapes within
    2%. The load kernels need 24 registers and are unchanged.

    ```
    kvq-opt m.mlir --kvq-lower-cache-ops="target=nvvm chip=sm_90" \
        --gpu-kernel-outlining --kvq-limit-kernel-registers=max-registers=48
    ```
  }];
  let options = [
    Option<"maxRegisters", "max-registers", "int64_t", /*default=*/"48",
           "registers per thread (24 to 255; 0: no limit)">,
  ];
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
