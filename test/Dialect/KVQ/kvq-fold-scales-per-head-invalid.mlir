// Errors of per-head scales in kvq-fold-scales (see
// kvq-fold-scales-per-head.mlir), located at the layer with a note naming
// the checkpoint tensor; the message names the head.
// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false"

// expected-error @below {{[HEAD-COUNT-MISMATCH] k has 2 per-head scales but the layer has 8 KV heads}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.k_scale'}}
kvq.layer @kv_count_mismatch cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = 0.05 : f32, q = 0.5 : f32>)
    {checkpoint_tensors = {k = "model.layers.0.self_attn.k_scale"}}
func.func @kv_count_mismatch_store(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @kv_count_mismatch (%k, %k) into (%kc, %kc) at %s
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

// expected-error @below {{[HEAD-COUNT-MISMATCH] v has 3 per-head scales but k has 2; both must have one per KV head}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.v_scale'}}
kvq.layer @kv_lengths_differ cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = dense<[0.1, 0.2, 0.3]> : tensor<3xf32>, q = 0.5 : f32>)
    {checkpoint_tensors = {v = "model.layers.0.self_attn.v_scale"}}

// -----

// expected-error @below {{[HEAD-COUNT-MISMATCH] q has 2 per-head scales but the layer has 4 attention heads}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.q_scale'}}
kvq.layer @q_count_mismatch cache(fp8) method(compressed_tensors)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = dense<[0.1, 0.2]> : tensor<2xf32>, q = dense<[0.1, 0.2]> : tensor<2xf32>>)
    {checkpoint_tensors = {q = "model.layers.0.self_attn.q_scale"}}
func.func @q_count_mismatch_step(%q: memref<?x4x128xbf16>, %kc: memref<?x16x2x128xf8E4M3FN>,
                                 %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  kvq.paged_attention @q_count_mismatch (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x4x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

// expected-error @below {{[HEAD-COUNT-MISMATCH] q has 3 per-head scales, not a multiple of the 2 KV heads they are reduced to}}
kvq.layer @q_not_a_multiple cache(fp8) method(compressed_tensors)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = dense<[0.1, 0.2]> : tensor<2xf32>, q = dense<[0.1, 0.2, 0.3]> : tensor<3xf32>>)

// -----

// A head whose k is not > 0: the error names the head and the tensor.
// expected-error @below {{[K-SCALE-INVALID] invalid k scale of head 1 for the 'fp8_e4m3' KV cache (k = 0): k = 0.0, v = 0.25; k must be > 0 for every head}}
// expected-note @below {{checkpoint tensor 'model.layers.3.self_attn.k_scale'}}
kvq.layer @k_zero_head cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.5, 0.0]> : tensor<2xf32>, v = dense<[0.25, 0.25]> : tensor<2xf32>, q = 0.5 : f32>)
    {checkpoint_tensors = {k = "model.layers.3.self_attn.k_scale"}}

// -----

// A v head that is 0 among usable ones would make that head duplicated and
// the others not.
// expected-error @below {{[PER-HEAD-MIXED] the per-head k/v scales of the 'fp8_e4m3' KV cache fold by different rules: head 0 by 'checkpoint' (k = 0.5, v = 0.375), head 1 by 'duplicated' (k = 0.25, v = 0.0); every head must have usable (> 0) scales, or none}}
// expected-note @below {{checkpoint tensor 'model.layers.3.self_attn.v_scale'}}
kvq.layer @v_zero_head cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.5, 0.25]> : tensor<2xf32>, v = dense<[0.375, 0.0]> : tensor<2xf32>, q = 0.5 : f32>)
    {checkpoint_tensors = {v = "model.layers.3.self_attn.v_scale"}}

// -----

// expected-error @below {{[PER-HEAD-MIXED] the per-head q scales fold by different rules: head 1 by 'checkpoint' (q = 0.25), head 0 by 'default' (q = nan); every head must have a usable (> 0) scale, or none}}
// expected-note @below {{checkpoint tensor 'model.layers.3.self_attn.q_scale'}}
kvq.layer @q_nan_head cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.5, 0.25]> : tensor<2xf32>, v = dense<[0.5, 0.25]> : tensor<2xf32>, q = dense<[0x7FC00000, 0.25]> : tensor<2xf32>>)
    {checkpoint_tensors = {q = "model.layers.3.self_attn.q_scale"}}

// -----

// compressed-tensors copies each value: a negative head is no usable scale.
// expected-error @below {{[SCALE-NOT-FINITE] final v scale of head 1 -1.0 is not a finite positive f32; kernels cannot use it}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.v_scale'}}
kvq.layer @ct_negative_head cache(fp8) method(compressed_tensors)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = dense<[0.1, -1.0]> : tensor<2xf32>, q = 0.5 : f32>)
    {checkpoint_tensors = {v = "model.layers.0.self_attn.v_scale"}}

// -----

// A per-head q needs the KV head count: here neither an op nor k/v give it.
// expected-error @below {{[HEAD-COUNT-MISMATCH] q has 2 per-head scales, but the layer's number of KV heads is unknown (no cache or attention op states it, and k and v are not per-head), so they cannot be reduced to KV heads}}
kvq.layer @q_unknown_kv_heads cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = dense<[0.1, 0.2]> : tensor<2xf32>>)
