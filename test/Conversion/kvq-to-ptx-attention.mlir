// RUN: kvq-opt %s --kvq-to-ptx --kvq-write-isa=output=%t.ptx \
// RUN:   --mlir-print-op-on-diagnostic=false -o /dev/null 2>/dev/null
// RUN: FileCheck %s < %t.ptx

// The portable attention kernel for NVIDIA before sm_80 and its ABI
// (docs/KernelABI.md): the 6 memrefs' pointers, the score, V and Q scales,
// then the 8 dynamic sizes (query dim 0, the caches' dim 0, the block
// table's dims 0 and 1 and stride 0, context_lens dim 0, out dim 0), no
// split size and no workspace; ex2.approx for the weights.

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_75">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CHECK: .target sm_75
// CHECK-LABEL: .visible .entry kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws_kernel(
// CHECK-COUNT-6: .param .u64 .ptr .align 1 kvq_paged_attention_{{.*}}_kernel_param_{{[0-9]+}},
// CHECK-COUNT-3: .param .f32 kvq_paged_attention_{{.*}}_kernel_param_{{[0-9]+}},
// CHECK-COUNT-7: .param .u64 kvq_paged_attention_{{.*}}_kernel_param_{{[0-9]+}},
// CHECK-NEXT: .param .u64 kvq_paged_attention_{{.*}}_kernel_param_16{{$}}
// CHECK-NEXT: )
// CHECK: ex2.approx.f32
// CHECK-NOT: mma.sync
func.func @attend(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
                  %vc: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>,
                  %cl: memref<?xi32>, %o: memref<?x32x128xbf16>,
                  %ws: memref<?xi8>) {
  kvq.paged_attention @l (%q) cache(%kc, %vc) blocks(%bt, %cl) into(%o) workspace(%ws : memref<?xi8>)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
