// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-lower-attention | FileCheck %s

// kvq.paged_attention becomes a call of a function per signature with the
// layer's scales as constants: the score scale RN(s_k * scale) (fp8 modes:
// RN(s_q * s_k * scale)), s_v, s_q and s_p. The layer goes once unused.

kvq.layer @l0 cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 2.500000e-01 checkpoint, prob = 1.000000e+00 default>)
kvq.layer @l1 cache(fp8) resolved(#kvq.resolved_scales<k = 1.000000e-01 checkpoint, v = 2.000000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CHECK-NOT: kvq.layer
// CHECK-LABEL: func.func @decode
// 0.05 * 1/sqrt(128) = 0.00441941738..., rounded once to f32.
// CHECK-DAG: %[[C0:.*]] = arith.constant 0.00441941759 : f32
// CHECK-DAG: %[[V0:.*]] = arith.constant 7.000000e-02 : f32
// CHECK: call @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[C0]], %[[V0]], %{{.*}}, %{{.*}})
// Another layer, same signature: the same function.
// CHECK: call @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16(
// fp8_qk: 0.25 * 0.05 * 0.125 = 0.0015625 in one rounding.
// CHECK: %[[C2:.*]] = arith.constant 1.562500e-03 : f32
// CHECK: call @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_fp8_qk(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[C2]],
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16(
// The maximum score, then exp, the running sums and the weighted V rows.
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: arith.truncf %{{.*}} : f32 to bf16
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_fp8_qk(
// Q is quantized to e4m3 with the Q scale (a true division) first.
// CHECK: arith.divf
// CHECK: arith.bitcast %{{.*}} : i8 to f8E4M3FN
func.func @decode(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
                  %bt: memref<?x?xi32>, %cl: memref<?xi32>,
                  %o: memref<?x32x128xbf16>) {
  kvq.paged_attention @l0 (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  kvq.paged_attention @l1 (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  kvq.paged_attention @l0 (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o)
      scale(0.125) precision(fp8_qk)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

// expected-note @below {{layer @raw declared here}}
kvq.layer @raw cache(fp8) checkpoint(#kvq.scales<k = 5.000000e-02 : f32>)
func.func @unresolved(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
                      %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @below {{cannot lower: layer @raw has no resolved scales; run kvq-fold-scales first}}
  kvq.paged_attention @raw (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

kvq.layer @l cache(auto) resolved(#kvq.resolved_scales<k = 1.000000e+00 not_quantized, v = 1.000000e+00 not_quantized, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @dynamic_head_size(%q: memref<?x32x?xbf16>, %kc: memref<?x16x8x?xbf16>,
                             %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @below {{cannot lower: the head size is dynamic; give the softmax scale (scale(...))}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x32x?xbf16>, memref<?x16x8x?xbf16>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @gpu_dynamic_heads(%q: memref<?x?x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @below {{kvq-lower-attention: kvq.paged_attention needs static num_heads, num_kv_heads, head_size and block_size on the GPU (got memref<?x?x128xbf16> and memref<?x16x8x128xf8E4M3FN>); lower it for the CPU}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x?x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @gpu_strided(%q: memref<?x32x128xbf16, strided<[8192, 128, 1]>>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @below {{kvq-lower-attention: kvq.paged_attention needs contiguous queries, outputs and caches on the GPU (got memref<?x32x128xbf16, strided<[8192, 128, 1]>> and memref<?x16x8x128xf8E4M3FN>); lower it for the CPU}}
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x32x128xbf16, strided<[8192, 128, 1]>>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @tensor_form(%q: tensor<?x32x128xbf16>, %kc: tensor<?x16x8x128xf8E4M3FN>,
                       %bt: tensor<?x?xi32>, %cl: tensor<?xi32>) -> tensor<?x32x128xbf16> {
  // expected-error @below {{cannot lower the tensor form of 'kvq.paged_attention': bufferize it first (one-shot-bufferize)}}
  %o = kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : tensor<?x32x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?x?xi32>, tensor<?xi32> -> tensor<?x32x128xbf16>
  return %o : tensor<?x32x128xbf16>
}

// -----

// Per-head scales: the function takes the score, V and Q scales as vectors
// of one value per KV head and selects its KV head's.
// RN(0.05 * 0.125) = 0.00625, RN(0.06 * 0.125) = 0.0075.
kvq.layer @per_head cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [5.000000e-02, 7.000000e-02] checkpoint, q = [1.000000e+00, 2.000000e+00] checkpoint, prob = 1.000000e+00 default>)
// CHECK-LABEL: func.func @per_head_scales
// CHECK-DAG: %[[S:.*]] = arith.constant dense<[6.250000e-03, 7.500000e-03]> : vector<2xf32>
// CHECK-DAG: %[[V:.*]] = arith.constant dense<[5.000000e-02, 7.000000e-02]> : vector<2xf32>
// CHECK-DAG: %[[Q:.*]] = arith.constant dense<[1.000000e+00, 2.000000e+00]> : vector<2xf32>
// CHECK: call @kvq_paged_attention_bf16_f8E4M3FN_4x2x128_b16_per_head(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[S]], %[[V]], %[[Q]], %{{.*}}) :
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_4x2x128_b16_per_head(
// CHECK-SAME: %[[SA:[^:]*]]: vector<2xf32>, %[[VA:[^:]*]]: vector<2xf32>, %{{[^:]*}}: vector<2xf32>, %{{[^:]*}}: f32)
// CHECK-DAG: %[[S0:.*]] = vector.extract %[[SA]][0]
// CHECK-DAG: %[[S1:.*]] = vector.extract %[[SA]][1]
// CHECK-DAG: %[[V0:.*]] = vector.extract %[[VA]][0]
// CHECK-DAG: %[[V1:.*]] = vector.extract %[[VA]][1]
// CHECK: %[[IS0:.*]] = arith.cmpi eq, %{{.*}}, %c0
// CHECK: arith.select %[[IS0]], %[[S0]], %[[S1]] : f32
// CHECK: arith.select %{{.*}}, %[[V0]], %[[V1]] : f32
func.func @per_head_scales(%q: memref<?x4x128xbf16>, %kc: memref<?x16x2x128xf8E4M3FN>,
                           %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  kvq.paged_attention @per_head (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      scale(0.125)
      : memref<?x4x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

// expected-note @below {{layer @per_head declared here}}
kvq.layer @per_head cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [5.000000e-02, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @per_head_dynamic_kv_heads(%q: memref<?x4x128xbf16>, %kc: memref<?x16x?x128xf8E4M3FN>,
                                     %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @below {{cannot lower: layer @per_head has per-head scales, which need a static number of KV heads (cache dim 2)}}
  kvq.paged_attention @per_head (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x4x128xbf16>, memref<?x16x?x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
