// REQUIRES: ptxas
// RUN: kvq-opt %s --kvq-to-ptx=chip=sm_90 --kvq-write-isa=output=%t.sm90.ptx -o /dev/null
// RUN: %ptxas -arch=sm_90 %t.sm90.ptx -o %t.sm90.cubin
// RUN: kvq-opt %s --kvq-to-ptx=chip=sm_80 --kvq-write-isa=output=%t.sm80.ptx -o /dev/null
// RUN: %ptxas -arch=sm_80 %t.sm80.ptx -o %t.sm80.cubin
// RUN: %ptxas -arch=sm_90 -v %t.sm90.ptx -o /dev/null 2>&1 \
// RUN:   | FileCheck %s --implicit-check-not="{{[1-9][0-9]*}} bytes spill"

// The PTX of kvq-to-ptx assembles with NVIDIA's ptxas, without spills.

// CHECK-DAG: Compiling entry function 'kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel' for 'sm_90'
// CHECK-DAG: Compiling entry function 'kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel' for 'sm_90'
// CHECK: 0 bytes spill stores, 0 bytes spill loads

kvq.layer @l0 cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 2.500000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

func.func @store(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @l0 (%k, %v) into (%kc, %vc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

func.func @load(%kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>) {
  kvq.cache_load @l0 (%kc, %vc) at %s into (%k, %v) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}
