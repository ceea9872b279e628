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

// Per-head scales: no kernel takes them yet, so the lowering refuses them
// rather than use one value for every head.
// expected-note @below {{layer @per_head declared here}}
kvq.layer @per_head cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [5.000000e-02, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @store_with_per_head_scales(%k: memref<?x2x128xbf16>, %kc: memref<?x16x2x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @below {{cannot lower: layer @per_head has per-head scales (2 KV heads); per-head scales have no kernel yet}}
  kvq.cache_store @per_head (%k, %k) into (%kc, %kc) at %s : memref<?x2x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

// expected-note @below {{layer @per_head declared here}}
kvq.layer @per_head cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = [1.000000e+00, 2.000000e+00] checkpoint, prob = 1.000000e+00 default>)
func.func @load_with_per_head_q(%kc: memref<?x16x2x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x2x128xbf16>) {
  // expected-error @below {{cannot lower: layer @per_head has per-head scales (2 KV heads); per-head scales have no kernel yet}}
  kvq.cache_load @per_head (%kc, %kc) at %s into (%k, %k) : memref<?x16x2x128xf8E4M3FN>, memref<?xi64>, memref<?x2x128xbf16>
  return
}
