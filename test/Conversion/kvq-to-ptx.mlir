// RUN: kvq-opt %s --kvq-to-ptx --kvq-write-isa=output=%t.sm90.ptx | FileCheck %s --check-prefix=HOST
// RUN: FileCheck %s --check-prefix=PTX < %t.sm90.ptx
// RUN: kvq-opt %s --kvq-to-ptx=chip=sm_80 --kvq-write-isa=output=%t.sm80.ptx -o /dev/null
// RUN: kvq-opt %s --kvq-to-ptx=max-registers=0 --kvq-write-isa=output=%t.nocap.ptx -o /dev/null
// RUN: FileCheck %s --check-prefix=NOCAP < %t.nocap.ptx
// RUN: FileCheck %s --check-prefix=SM80 < %t.sm80.ptx

// kvq-to-ptx: folded kvq IR to one gpu.binary holding the PTX of every
// cache kernel of the module (kvq-write-isa writes it out), and host code in
// the LLVM dialect that launches them.

kvq.layer @l0 cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 2.500000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @l1 cache(fp8_e5m2) resolved(#kvq.resolved_scales<k = 1.000000e+00 default, v = 1.000000e+00 default, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// Each cache op calls the host function of its signature, which computes
// RN(1/s) of both scales and launches the signature's kernel.
// HOST-NOT: kvq.
// HOST-LABEL: llvm.func @store(
// HOST: llvm.call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(
// HOST-LABEL: llvm.func @load(
// HOST: llvm.call @kvq_cache_load_f8E4M3FN_bf16_8x128_b16(
// HOST-LABEL: llvm.func @store_e5m2(
// HOST: llvm.call @kvq_cache_store_f16_f8E5M2_8x64_b16(
// HOST-LABEL: llvm.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(
// HOST: llvm.fdiv
// HOST: llvm.fdiv
// HOST: gpu.launch_func @kvq_cache_kernels::@kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) : i64 args(
// HOST-LABEL: llvm.func @kvq_cache_load_f8E4M3FN_bf16_8x128_b16(
// HOST: gpu.launch_func @kvq_cache_kernels::@kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel
// HOST-LABEL: llvm.func @kvq_cache_store_f16_f8E5M2_8x64_b16(
// HOST: gpu.launch_func @kvq_cache_kernels::@kvq_cache_store_f16_f8E5M2_8x64_b16_kernel
// The kernels last, in one binary.
// HOST: gpu.binary @kvq_cache_kernels [#gpu.object<#nvvm.target<O = 3, chip = "sm_90">

// PTX: .target sm_90
// The store: 14 parameters (the pointers of slot_mapping, key, value,
// key_cache, value_cache, then k_scale, RN(1/k_scale), v_scale,
// RN(1/v_scale), then the leading sizes of the five memrefs), 128-thread
// blocks, 8 elements per stream: the two 16-byte K / V loads and the slot
// load back to back, no branch on the slot, the quotient without a
// division (the product by RN(1/s), proven for these scales; no FMA), the
// saturating e4m3 conversion, two predicated 8-byte stores.
// PTX-LABEL: .visible .entry kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel(
// PTX-NEXT: .param .u64 .ptr .align 1 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_0,
// PTX-NEXT: .param .u64 .ptr .align 1 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_1,
// PTX-NEXT: .param .u64 .ptr .align 1 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_2,
// PTX-NEXT: .param .u64 .ptr .align 1 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_3,
// PTX-NEXT: .param .u64 .ptr .align 1 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_4,
// PTX-NEXT: .param .f32 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_5,
// PTX-NEXT: .param .f32 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_6,
// PTX-NEXT: .param .f32 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_7,
// PTX-NEXT: .param .f32 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_8,
// PTX-NEXT: .param .u64 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_9,
// PTX-NEXT: .param .u64 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_10,
// PTX-NEXT: .param .u64 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_11,
// PTX-NEXT: .param .u64 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_12,
// PTX-NEXT: .param .u64 kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel_param_13
// PTX-NEXT: )
// PTX-NEXT: .maxntid 128, 1, 1
// PTX-NEXT: .maxnreg 48
// PTX-NOT: div.rn.f32
// PTX: ld.global.v4.b32
// PTX: ld.global.v4.b32
// PTX: ld.global.b64
// PTX-NOT: {{bra|fma.rn}}
// PTX: mul.rn.f32
// PTX-NOT: {{bra|fma.rn}}
// PTX: cvt.rn.satfinite.e4m3x2.f32
// PTX-NOT: {{bra|fma.rn}}
// PTX: @p st.global.v2.b32
// PTX-NOT: {{bra|fma.rn}}
// PTX: cvt.rn.satfinite.e4m3x2.f32
// PTX-NOT: {{bra|fma.rn}}
// PTX: @p st.global.v2.b32
// PTX-NOT: {{div.rn.f32|fma.rn}}
// PTX: ret;
// The load: 8 cache bytes in, 8 bf16 (16 bytes) out per stream, two work
// items per thread: both slots, then the four gathers, with no branch.
// PTX-LABEL: .visible .entry kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel(
// PTX: .param .u64 kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel_param_13
// PTX-NEXT: )
// PTX: ld.global.b64
// PTX-NOT: bra
// PTX: ld.global.b64
// PTX-NOT: bra
// PTX: ld.global.v4.b16
// PTX-NOT: bra
// PTX: ld.global.v4.b16
// PTX-NOT: bra
// PTX: ld.global.v4.b16
// PTX-NOT: bra
// PTX: ld.global.v4.b16
// PTX-NOT: bra
// PTX: cvt.rn.f16x2.e4m3x2
// PTX: mul.rn.f32
// PTX: cvt.rn.bf16.f32
// PTX: st.global.v4.b32
// PTX: st.global.v4.b32
// PTX: ret;
// PTX-LABEL: .visible .entry kvq_cache_store_f16_f8E5M2_8x64_b16_kernel(
// PTX: cvt.rn.satfinite.e5m2x2.f32
// PTX: st.global.v2.b32

// max-registers=0: no register cap.
// NOCAP: .maxntid 128, 1, 1
// NOCAP-NOT: .maxnreg

// sm_80 has no fp8 conversion: the software one, same accesses.
// SM80: .target sm_80
// SM80-NOT: e4m3x2
// SM80-NOT: e5m2x2
// SM80: st.global.v2.b32
func.func @store(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @l0 (%k, %v) into (%kc, %vc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

func.func @load(%kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>) {
  kvq.cache_load @l0 (%kc, %vc) at %s into (%k, %v) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

func.func @store_e5m2(%k: memref<?x8x64xf16>, %kc: memref<?x16x8x64xf8E5M2>, %s: memref<?xi64>) {
  kvq.cache_store @l1 (%k, %k) into (%kc, %kc) at %s : memref<?x8x64xf16>, memref<?x16x8x64xf8E5M2>, memref<?xi64>
  return
}
