// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-lower-attention | FileCheck %s

// Where the tensor-core kernel does not apply (an AMD target, NVIDIA before
// sm_80, more than 8 query heads per KV head, other head sizes, blocks not
// a multiple of 16), the GPU function launches the portable kernel: one
// thread per (sequence, query head), 64 per block, the CPU form's two
// passes over the context in private rows of head_size f32, exp through
// the target's exp2 (the score scale carries log2(e)). A remark says why.

gpu.module @kvq_cache_kernels [#rocdl.target<chip = "gfx942">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FNUZ_32x8x128_b16(
// CHECK-SAME:    %{{.*}}: memref<?x32x128xbf16>, %{{.*}}: memref<?x16x8x128xf8E4M3FNUZ>, %{{.*}}: memref<?x?xi32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x32x128xbf16>, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32)
// CHECK:       gpu.launch
// CHECK-SAME:    threads(%{{.*}}, %{{.*}}, %{{.*}}) in (%{{.*}} = %c64
// CHECK-SAME:    private(%{{.*}} : memref<128xf32, #gpu.address_space<private>>, %{{.*}} : memref<128xf32, #gpu.address_space<private>>)
// CHECK:       amdgpu.ext_packed_fp8
// CHECK:       rocdl.exp2
// CHECK-NOT:   math.exp
// CHECK:       gpu.terminator
func.func @rocdl_target(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FNUZ>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-remark @below {{kvq-lower-attention: kvq.paged_attention has no tensor-core kernel for rocdl chip=gfx942; lowered to the portable kernel (one thread per query head and sequence)}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_75">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// sm_75 has no fp8 conversion: the software decode, and ex2.approx.
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16(
// CHECK:       gpu.launch
// CHECK-NOT:   nvvm.mma.sync
// CHECK:       llvm.inline_asm asm_dialect = att "ex2.approx.f32 {{.*}}"
func.func @old_chip(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-remark @below {{kvq-lower-attention: kvq.paged_attention has no tensor-core kernel before sm_80 (mma.sync m16n8k16 with f16 and bf16 operands), target nvvm chip=sm_75; lowered to the portable kernel (one thread per query head and sequence)}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_128x8x128_b16(
// CHECK:       gpu.launch
// CHECK-NOT:   nvvm.mma.sync
// CHECK:       gpu.terminator
func.func @gpu_group(%q: memref<?x128x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-remark @below {{kvq-lower-attention: kvq.paged_attention has a tensor-core kernel for at most 8 query heads per KV head, got 16; lowered to the portable kernel (one thread per query head and sequence)}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x128x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_32x8x96_b16(
// CHECK:       private(%{{.*}} : memref<96xf32, #gpu.address_space<private>>, %{{.*}} : memref<96xf32, #gpu.address_space<private>>)
func.func @gpu_head_size(%q: memref<?x32x96xbf16>, %kc: memref<?x16x8x96xf8E4M3FN>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-remark @below {{kvq-lower-attention: kvq.paged_attention has a tensor-core kernel for head sizes 64, 128 and 256, got 96; lowered to the portable kernel (one thread per query head and sequence)}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x32x96xbf16>, memref<?x16x8x96xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// A workspace is accepted and not used (no splits).
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b8_ws(
// CHECK:       gpu.launch
// CHECK-NOT:   memref.view
// CHECK:       gpu.terminator
func.func @gpu_block_size(%q: memref<?x32x128xbf16>, %kc: memref<?x8x8x128xf8E4M3FN>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>, %ws: memref<?xi8>) {
  // expected-remark @below {{kvq-lower-attention: kvq.paged_attention has a tensor-core kernel for block sizes that are multiples of 16, got 8; lowered to the portable kernel (one thread per query head and sequence)}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q) workspace(%ws : memref<?xi8>)
      : memref<?x32x128xbf16>, memref<?x8x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 2.500000e-01 checkpoint, prob = 7.812500e-03 checkpoint>)
// fp8_qk_pv: the GPU function also takes the prob scale (after s_q).
// CHECK-LABEL: func.func @gpu_fp8_qk_pv(
// CHECK:       %[[P:.*]] = arith.constant 7.812500e-03 : f32
// CHECK:       call @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_fp8_qk_pv(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[P]])
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_fp8_qk_pv(
// CHECK-SAME:    f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32)
// CHECK:       gpu.launch
// CHECK-NOT:   nvvm.mma.sync
// CHECK:       gpu.terminator
func.func @gpu_fp8_qk_pv(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-remark @below {{kvq-lower-attention: kvq.paged_attention has no tensor-core kernel for precision 'fp8_qk_pv'; lowered to the portable kernel (one thread per query head and sequence)}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q) precision(fp8_qk_pv)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
