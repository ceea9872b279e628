// RUN: kvq-opt %s --kvq-to-amdgcn --kvq-write-isa=output=%t.gfx942.s | FileCheck %s --check-prefix=HOST
// RUN: FileCheck %s --check-prefix=GFX942 < %t.gfx942.s
// RUN: kvq-opt %s --kvq-to-amdgcn=chip=gfx950 --kvq-write-isa=output=%t.gfx950.s -o /dev/null
// RUN: FileCheck %s --check-prefix=GFX950 < %t.gfx950.s

// kvq-to-amdgcn: folded kvq IR to one gpu.binary holding the AMDGCN
// assembly of the cache kernels. gfx942 (MI300) converts the FNUZ formats
// with v_cvt_pk_fp8_f32 / v_cvt_pk_f32_fp8; gfx950 (MI350) the OCP ones with
// the same instructions. No ROCm installation is needed (the kernels call
// nothing from the device libraries).

kvq.layer @l0 cache(fp8) resolved(#kvq.resolved_scales<k = 1.000000e-01 checkpoint, v = 1.000000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// HOST-LABEL: llvm.func @fnuz(
// HOST: llvm.call @kvq_cache_store_bf16_f8E4M3FNUZ_8x128_b16(
// HOST: llvm.call @kvq_cache_load_f8E4M3FNUZ_bf16_8x128_b16(
// HOST-LABEL: llvm.func @kvq_cache_store_bf16_f8E4M3FNUZ_8x128_b16(
// HOST: gpu.launch_func @kvq_cache_kernels::@kvq_cache_store_bf16_f8E4M3FNUZ_8x128_b16_kernel blocks
// HOST-LABEL: llvm.func @kvq_cache_load_f8E4M3FNUZ_bf16_8x128_b16(
// HOST: gpu.launch_func @kvq_cache_kernels::@kvq_cache_load_f8E4M3FNUZ_bf16_8x128_b16_kernel blocks
// The kernels last, in one binary.
// HOST: gpu.binary @kvq_cache_kernels [#gpu.object<#rocdl.target<O = 3, chip = "gfx942">

// GFX942: .amdgcn_target "amdgcn-amd-amdhsa--gfx942
// The store reads 16 bytes and writes 8 per stream and work item.
// GFX942-LABEL: kvq_cache_store_bf16_f8E4M3FNUZ_8x128_b16_kernel:
// GFX942: global_load_dwordx4
// GFX942: v_cvt_pk_fp8_f32
// GFX942: global_store_dwordx2
// GFX942: s_endpgm
// GFX942-LABEL: kvq_cache_load_f8E4M3FNUZ_bf16_8x128_b16_kernel:
// GFX942: v_cvt_pk_f32_fp8
// GFX942: global_store_dwordx4
// GFX942: s_endpgm
// gfx942 has no OCP conversion: the software one.
// GFX942-LABEL: kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel:
// GFX942-NOT: v_cvt_pk_{{fp8_f32|f32_fp8}}
// GFX942: s_endpgm
// GFX942-LABEL: kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel:
// GFX942-NOT: v_cvt_pk_{{fp8_f32|f32_fp8}}
// GFX942: s_endpgm
// The kernel ABI: 5 pointers, 4 f32 scales, the 5 leading sizes: 96 bytes
// of kernel arguments.
// GFX942: .kernarg_segment_size: 96
// GFX942-NEXT: .max_flat_workgroup_size: 128
// GFX942-NEXT: .name: kvq_cache_store_bf16_f8E4M3FNUZ_8x128_b16_kernel

// GFX950: .amdgcn_target "amdgcn-amd-amdhsa--gfx950
// GFX950-LABEL: kvq_cache_store_bf16_f8E4M3FNUZ_8x128_b16_kernel:
// GFX950-NOT: v_cvt_pk_{{fp8_f32|f32_fp8}}
// GFX950: s_endpgm
// GFX950-LABEL: kvq_cache_load_f8E4M3FNUZ_bf16_8x128_b16_kernel:
// GFX950-NOT: v_cvt_pk_{{fp8_f32|f32_fp8}}
// GFX950: s_endpgm
// GFX950-LABEL: kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel:
// GFX950: v_cvt_pk_fp8_f32
// GFX950: global_store_dwordx2
// GFX950: s_endpgm
// GFX950-LABEL: kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel:
// GFX950: v_cvt_pk_f32_fp8
// GFX950: s_endpgm
func.func @fnuz(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FNUZ>, %s: memref<?xi64>, %o: memref<?x8x128xbf16>) {
  kvq.cache_store @l0 (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @l0 (%kc, %kc) at %s into (%o, %o) : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

func.func @ocp(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>, %o: memref<?x8x128xbf16>) {
  kvq.cache_store @l0 (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @l0 (%kc, %kc) at %s into (%o, %o) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}
