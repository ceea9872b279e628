// RUN: kvq-opt %s --kvq-to-ptx --kvq-write-isa=output=%t.ptx \
// RUN:   --mlir-print-op-on-diagnostic=false -o /dev/null
// RUN: FileCheck %s < %t.ptx

// Per-head scales in the tensor-core attention kernel's ABI
// (docs/KernelABI.md): after the 7 pointers, the score scales of the 2 KV
// heads, their V scales and their Q scales (6 f32), then the split size
// and the 9 dynamic sizes. A CTA selects its KV head's scales from the
// parameters (selp); nothing loads them from memory.

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [7.000000e-02, 8.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CHECK: .target sm_90
// CHECK-LABEL: .visible .entry kvq_paged_attention_bf16_f8E4M3FN_8x2x128_b16_per_head_ws_kernel(
// CHECK-COUNT-7: .param .u64 .ptr .align 1 kvq_paged_attention_{{.*}}_kernel_param_{{[0-9]+}},
// CHECK-COUNT-6: .param .f32 kvq_paged_attention_{{.*}}_kernel_param_{{[0-9]+}},
// CHECK-COUNT-9: .param .u64 kvq_paged_attention_{{.*}}_kernel_param_{{[0-9]+}},
// CHECK-NEXT: .param .u64 kvq_paged_attention_{{.*}}_kernel_param_22{{$}}
// CHECK-NEXT: )
// CHECK: selp.f32
// CHECK: mma.sync.aligned.m16n8k16
func.func @attend(%q: memref<?x8x128xbf16>, %kc: memref<?x16x2x128xf8E4M3FN>,
                  %vc: memref<?x16x2x128xf8E4M3FN>, %bt: memref<?x?xi32>,
                  %cl: memref<?xi32>, %o: memref<?x8x128xbf16>,
                  %ws: memref<?xi8>) {
  kvq.paged_attention @l (%q) cache(%kc, %vc) blocks(%bt, %cl) into(%o) workspace(%ws : memref<?xi8>)
      : memref<?x8x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
