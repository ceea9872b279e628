// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-lower-cache-ops
// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-lower-cache-ops="target=nvvm chip=sm_90"

// Every error the lowering emits, located at the cache op, with a note at
// the layer. (Unknown layers and mismatched cache types are the verifier's.)

// expected-note @below {{layer @unfolded declared here}}
kvq.layer @unfolded cache(fp8) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32>)
func.func @store_without_resolved_scales(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @below {{cannot lower: layer @unfolded has no resolved scales; run kvq-fold-scales first}}
  kvq.cache_store @unfolded (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

// expected-note @below {{layer @unfolded declared here}}
kvq.layer @unfolded cache(int8)
func.func @load_without_resolved_scales(%kc: memref<?x16x8x128xi8>, %s: memref<?xi64>, %k: memref<?x8x128xbf16>) {
  // expected-error @below {{cannot lower: layer @unfolded has no resolved scales; run kvq-fold-scales first}}
  kvq.cache_load @unfolded (%kc, %kc) at %s into (%k, %k) : memref<?x16x8x128xi8>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// -----

// expected-note @below {{layer @l declared here}}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @f64_activations(%k: memref<?x8x128xf64>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @below {{cannot lower: activation element type 'f64' is not supported, expected f16, bf16 or f32}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xf64>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @tensor_form(%k: tensor<?x8x128xbf16>, %kc: tensor<?x16x8x128xf8E4M3FN>, %s: tensor<?xi64>) -> tensor<?x16x8x128xf8E4M3FN> {
  // expected-error @below {{cannot lower the tensor form of 'kvq.cache_store': bufferize it first (one-shot-bufferize)}}
  %kc2, %vc2 = kvq.cache_store @l (%k, %k) into (%kc, %kc) at %s : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64> -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc2 : tensor<?x16x8x128xf8E4M3FN>
}

// -----

// Per-head scales: each KV head is quantized with its own scale, so the
// op's head dimension must be the number of scales (the rank's heads after
// tensor-parallel sharding).
// expected-note @below {{layer @per_head declared here}}
kvq.layer @per_head cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [5.000000e-02, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @store_with_more_heads_than_scales(%k: memref<?x4x128xbf16>, %kc: memref<?x16x4x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @below {{cannot lower: layer @per_head has 2 per-head K and V scales, but dimension 1 (KV heads) of 'memref<?x4x128xbf16>' is 4; fold the checkpoint for this shard (kvq-fold-scales tp-size, tp-rank)}}
  kvq.cache_store @per_head (%k, %k) into (%kc, %kc) at %s : memref<?x4x128xbf16>, memref<?x16x4x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

// expected-note @below {{layer @per_head declared here}}
kvq.layer @per_head cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [5.000000e-02, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @load_with_dynamic_heads(%kc: memref<?x16x?x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x?x128xbf16>) {
  // expected-error @below {{cannot lower: layer @per_head has 2 per-head K and V scales, but dimension 1 (KV heads) of 'memref<?x?x128xbf16>' is dynamic; per-head scales need a static head count}}
  kvq.cache_load @per_head (%kc, %kc) at %s into (%k, %k) : memref<?x16x?x128xf8E4M3FN>, memref<?xi64>, memref<?x?x128xbf16>
  return
}
