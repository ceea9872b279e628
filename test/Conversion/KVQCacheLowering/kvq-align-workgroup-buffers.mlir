// RUN: kvq-opt %s --kvq-lower-attention --gpu-kernel-outlining \
// RUN:     --kvq-align-workgroup-buffers | FileCheck %s
// RUN: kvq-opt %s --kvq-to-ptx --kvq-write-isa=output=%t.ptx -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX < %t.ptx

// Every workgroup buffer of a kernel of @kvq_cache_kernels without an
// alignment gets 16 bytes, the widest access the kernels make (16-byte
// vector loads, cp.async); an alignment already there is kept, and other
// gpu.modules are left alone. kvq-to-ptx runs it after outlining: no
// shared variable of the PTX is aligned to less than 16 bytes.

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CHECK-LABEL: gpu.module @other
// CHECK: gpu.func @user_kernel() workgroup(%{{.*}} : memref<64xi8, #gpu.address_space<workgroup>>) kernel
gpu.module @other [#nvvm.target<chip = "sm_90">] {
  gpu.func @user_kernel() workgroup(%w : memref<64xi8, #gpu.address_space<workgroup>>) kernel {
    gpu.return
  }
}

// CHECK-LABEL: gpu.module @kvq_cache_kernels
// CHECK: gpu.func @aligned_kernel() workgroup(%{{.*}} : memref<64xi8, #gpu.address_space<workgroup>> {llvm.align = 64 : i64}, %{{.*}} : memref<4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}) kernel
// CHECK: gpu.func @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws_staged_kernel(
// CHECK-SAME: workgroup(%{{.*}} : memref<512xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<4x8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<4x8xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<32768xi8, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %{{.*}} : memref<1xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK: gpu.func @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws_kernel(
// CHECK-SAME: %{{.*}} : memref<16384xi8, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}
gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {
  gpu.func @aligned_kernel() workgroup(%w : memref<64xi8, #gpu.address_space<workgroup>> {llvm.align = 64 : i64}, %x : memref<4xf32, #gpu.address_space<workgroup>>) kernel {
    gpu.return
  }
}

// PTX-NOT: .shared .align {{[1248]}} {{.*}}__wg_
// PTX: .shared .align 16 .b8 __wg_kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws_staged_kernel_3[32768];
// PTX-NOT: .shared .align {{[1248]}} {{.*}}__wg_
func.func @attend(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>, %o: memref<?x32x128xbf16>, %ws: memref<?xi8>) {
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o) workspace(%ws : memref<?xi8>) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
