// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --kvq-lower-attention --gpu-kernel-outlining --kvq-limit-kernel-registers | FileCheck %s
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --kvq-lower-attention --gpu-kernel-outlining --kvq-limit-kernel-registers=max-registers=64 | FileCheck %s --check-prefix=R64
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --kvq-lower-attention --gpu-kernel-outlining --kvq-limit-kernel-registers=max-registers=0 | FileCheck %s --check-prefix=NONE
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90 quantize-division=divf" --kvq-lower-attention --gpu-kernel-outlining --kvq-limit-kernel-registers | FileCheck %s --check-prefix=DIVF

// Every outlined cache kernel gets nvvm.maxnreg (48 by default), except
// those with a true division (quantize-division=divf: the store); every
// attention kernel gets nvvm.minctasm = 4 (the split rule's residency),
// with any max-registers; kernels of other gpu.modules are left alone.

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CHECK-LABEL: gpu.module @other
// CHECK: gpu.func @user_kernel() kernel {
gpu.module @other {
  gpu.func @user_kernel() kernel {
    gpu.return
  }
}

func.func @store(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}
func.func @load(%kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x8x128xbf16>) {
  kvq.cache_load @l (%kc, %kc) at %s into (%k, %k) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

func.func @attend(%q: memref<?x8x64xbf16>, %kc: memref<?x16x2x64xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>, %o: memref<?x8x64xbf16>) {
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o) : memref<?x8x64xbf16>, memref<?x16x2x64xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// CHECK-LABEL: gpu.module @kvq_cache_kernels
// CHECK: gpu.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.maxnreg = 48 : i32}
// CHECK: gpu.func @kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.maxnreg = 48 : i32}
// R64: gpu.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.maxnreg = 64 : i32}
// R64: gpu.func @kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.maxnreg = 64 : i32}
// CHECK: gpu.func @kvq_paged_attention_bf16_f8E4M3FN_8x2x64_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.minctasm = 4 : i32}
// R64: gpu.func @kvq_paged_attention_bf16_f8E4M3FN_8x2x64_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.minctasm = 4 : i32}
// NONE-NOT: nvvm.maxnreg
// NONE: gpu.func @kvq_paged_attention_bf16_f8E4M3FN_8x2x64_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.minctasm = 4 : i32}
// NONE-NOT: nvvm.maxnreg
// DIVF: gpu.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_divf_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>} {
// DIVF: arith.divf
// DIVF: gpu.func @kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel({{.*}}) kernel attributes {known_block_size = array<i32: 128, 1, 1>, nvvm.maxnreg = 48 : i32}
