// RUN: kvq-opt %s --kvq-lower-cache-ops --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,CPU
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,GPU
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=rocdl chip=gfx950" --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,GPU
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --gpu-kernel-outlining | FileCheck %s --check-prefix=OUTLINE
// RUN: kvq-opt %s --kvq-lower-cache-ops="quantize-division=fma" | FileCheck %s --check-prefix=FMA

// Per-head K and V scales (compressed-tensors attn_head): every KV head is
// quantized and dequantized with its own scale, with the numerics of a
// per-tensor scale of that value. The cache ops of per-head layers call
// `_per_head` functions that take the scales as vector<H x f32> constants;
// every per-head layer of the same shapes shares the function. One
// quotient per stream, proven for every head's scale.

kvq.layer @heads cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 2.000000e-02] checkpoint, v = [2.500000e-01, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @heads_b cache(fp8) resolved(#kvq.resolved_scales<k = [2.000000e-02, 5.000000e-02] checkpoint, v = [7.000000e-02, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @heads_fma cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 3.000000e-02] checkpoint, v = [7.000000e-02, 1.000000e+30] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @one_head cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02] checkpoint, v = [2.500000e-01] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @tensor cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 2.500000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @q_heads cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 2.500000e-01 checkpoint, q = [1.000000e+00, 2.000000e+00] checkpoint, prob = 1.000000e+00 default>)

// Two per-head layers, one function (each scale of both is proven for the
// product alone). @heads_fma: K's head 1 (0.03) needs the FMA correction,
// so K's stream takes it for both heads; V's head 1 (1e30) is beyond the
// proofs, so V divides for both.
// CHECK-LABEL: func.func @store_heads(
// CHECK-DAG: %[[K:.*]] = arith.constant dense<[5.000000e-02, 2.000000e-02]> : vector<2xf32>
// CHECK-DAG: %[[V:.*]] = arith.constant dense<[2.500000e-01, 7.000000e-02]> : vector<2xf32>
// CHECK-DAG: %[[KB:.*]] = arith.constant dense<[2.000000e-02, 5.000000e-02]> : vector<2xf32>
// CHECK-DAG: %[[VB:.*]] = arith.constant dense<7.000000e-02> : vector<2xf32>
// CHECK: call @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[K]], %[[V]]) : (memref<?xi64>, memref<?x2x128xbf16>, memref<?x2x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?x16x2x128xf8E4M3FN>, vector<2xf32>, vector<2xf32>) -> ()
// CHECK-NEXT: call @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KB]], %[[VB]])
// CHECK-NEXT: call @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head_kfma_vdivf(
// FMA-LABEL: func.func @store_heads(
// FMA: call @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head_fma(
// FMA: call @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head_fma(
// FMA: call @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head_kfma_vdivf(
func.func @store_heads(%k: memref<?x2x128xbf16>, %v: memref<?x2x128xbf16>, %kc: memref<?x16x2x128xf8E4M3FN>, %vc: memref<?x16x2x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @heads (%k, %v) into (%kc, %vc) at %s : memref<?x2x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @heads_b (%k, %v) into (%kc, %vc) at %s : memref<?x2x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @heads_fma (%k, %v) into (%kc, %vc) at %s : memref<?x2x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?xi64>
  return
}

// CHECK-LABEL: func.func @load_heads(
// CHECK: call @kvq_cache_load_f8E4M3FN_bf16_2x128_b16_per_head(
func.func @load_heads(%kc: memref<?x16x2x128xf8E4M3FN>, %vc: memref<?x16x2x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x2x128xbf16>, %v: memref<?x2x128xbf16>) {
  kvq.cache_load @heads (%kc, %vc) at %s into (%k, %v) : memref<?x16x2x128xf8E4M3FN>, memref<?xi64>, memref<?x2x128xbf16>
  return
}

// One KV head (a tensor-parallel rank with fewer heads than ranks) is one
// scale: the per-tensor function, shared with a per-tensor layer. A
// per-head q alone leaves K and V per-tensor.
// CHECK-LABEL: func.func @per_tensor_alike(
// CHECK-DAG: %[[KS:.*]] = arith.constant 5.000000e-02 : f32
// CHECK-DAG: %[[VS:.*]] = arith.constant 2.500000e-01 : f32
// CHECK: call @kvq_cache_store_bf16_f8E4M3FN_1x128_b16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KS]], %[[VS]])
// CHECK-NEXT: call @kvq_cache_store_bf16_f8E4M3FN_1x128_b16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KS]], %[[VS]])
// CHECK-NEXT: call @kvq_cache_store_bf16_f8E4M3FN_2x128_b16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KS]], %[[VS]])
func.func @per_tensor_alike(%k: memref<?x1x128xbf16>, %kc: memref<?x16x1x128xf8E4M3FN>, %k2: memref<?x2x128xbf16>, %kc2: memref<?x16x2x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @one_head (%k, %k) into (%kc, %kc) at %s : memref<?x1x128xbf16>, memref<?x16x1x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @tensor (%k, %k) into (%kc, %kc) at %s : memref<?x1x128xbf16>, memref<?x16x1x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @q_heads (%k2, %k2) into (%kc2, %kc2) at %s : memref<?x2x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?xi64>
  return
}

// The store function: each head's scale and RN(1/s) (an IEEE division per
// head, the value the proofs checked), then the head's reciprocal picked
// per element (on the CPU, in the head loop) or per work item (on GPUs,
// 8 elements of one head), by a select on the head index.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head(
// CHECK-SAME: %[[KV:[a-z0-9]+]]: vector<2xf32>, %[[VV:[a-z0-9]+]]: vector<2xf32>)
// CHECK: %[[K0:.*]] = vector.extract %[[KV]][0] : f32 from vector<2xf32>
// CHECK: %[[RK0:.*]] = arith.divf %{{.*}}, %[[K0]] : f32
// CHECK: %[[K1:.*]] = vector.extract %[[KV]][1] : f32 from vector<2xf32>
// CHECK: %[[RK1:.*]] = arith.divf %{{.*}}, %[[K1]] : f32
// CHECK: %[[V0:.*]] = vector.extract %[[VV]][0] : f32 from vector<2xf32>
// CHECK: %[[RV0:.*]] = arith.divf %{{.*}}, %[[V0]] : f32
// CHECK: %[[V1:.*]] = vector.extract %[[VV]][1] : f32 from vector<2xf32>
// CHECK: %[[RV1:.*]] = arith.divf %{{.*}}, %[[V1]] : f32
// CPU: scf.if
// CPU: scf.for %[[H:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CPU-NEXT: %[[IS1:.*]] = arith.cmpi eq, %[[H]], %{{.*}} : index
// CPU-NEXT: %[[RK:.*]] = arith.select %[[IS1]], %[[RK1]], %[[RK0]] : f32
// CPU-NEXT: %[[RV:.*]] = arith.select %[[IS1]], %[[RV1]], %[[RV0]] : f32
// CPU: %[[XK:.*]] = arith.extf %{{.*}} : bf16 to f32
// CPU-NEXT: arith.mulf %[[XK]], %[[RK]] : f32
// GPU: gpu.launch
// GPU: %[[IS1:.*]] = arith.cmpi eq, %{{.*}}, %{{.*}} : index
// GPU-NEXT: %[[RK:.*]] = arith.select %[[IS1]], %[[RK1]], %[[RK0]] : f32
// GPU-NEXT: %[[RV:.*]] = arith.select %[[IS1]], %[[RV1]], %[[RV0]] : f32
// GPU-DAG: %[[RKV:.*]] = vector.broadcast %[[RK]] : f32 to vector<8xf32>
// GPU-DAG: %[[XK:.*]] = arith.extf %{{.*}} : vector<8xbf16> to vector<8xf32>
// GPU: arith.mulf %[[XK]], %[[RKV]] : vector<8xf32>

// The load function: the head's scale, picked the same way.
// CHECK-LABEL: func.func private @kvq_cache_load_f8E4M3FN_bf16_2x128_b16_per_head(
// CHECK-SAME: %[[KV:[a-z0-9]+]]: vector<2xf32>, %[[VV:[a-z0-9]+]]: vector<2xf32>)
// CHECK: %[[K0:.*]] = vector.extract %[[KV]][0] : f32 from vector<2xf32>
// CHECK: %[[K1:.*]] = vector.extract %[[KV]][1] : f32 from vector<2xf32>
// CHECK: arith.select %{{.*}}, %[[K1]], %[[K0]] : f32

// The kernel of a per-head function takes the pair s, RN(1/s) of each head,
// K's then V's: 4 * H f32 (docs/KernelABI.md).
// OUTLINE: gpu.func @kvq_cache_store_bf16_f8E4M3FN_2x128_b16_per_head_kernel(%{{.*}}: memref<i64>, %{{.*}}: memref<bf16>, %{{.*}}: memref<bf16>, %{{.*}}: memref<f8E4M3FN>, %{{.*}}: memref<f8E4M3FN>, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: index)
