// Tensor parallelism: per-head scales sharded for one rank with vLLM's
// rule before folding. The caches of the module hold the rank's KV heads.
// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false tp-size=2 tp-rank=1" | FileCheck %s
// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false tp-size=8 tp-rank=5" \
// RUN:   | FileCheck %s --check-prefix=REPLICATED

// 4 KV heads over 2 ranks: rank 1 takes heads 2 and 3. q is reduced to the
// model's 4 KV heads first (max over pairs of its 8 query heads), then
// sharded the same way. Per-tensor scales are every rank's.
// On 8 ranks, each KV head is replicated on 2 ranks: rank 5 takes head 2.
// CHECK-LABEL: kvq.layer @sharded
// CHECK-SAME: resolved(<k = [3.000000e-01, 4.000000e-01] checkpoint, v = [0.699999988, 8.000000e-01] checkpoint, q = [6.000000e-01, 8.000000e-01] checkpoint, prob = 1.000000e+00 default>)
// REPLICATED-LABEL: kvq.layer @sharded
// REPLICATED-SAME: resolved(<k = [3.000000e-01] checkpoint, v = [0.699999988] checkpoint, q = [6.000000e-01] checkpoint, prob = 1.000000e+00 default>)
kvq.layer @sharded cache(fp8) method(compressed_tensors)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2, 0.3, 0.4]> : tensor<4xf32>,
                           v = dense<[0.5, 0.6, 0.7, 0.8]> : tensor<4xf32>,
                           q = dense<[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]> : tensor<8xf32>>)

// -----

// CHECK-LABEL: kvq.layer @per_tensor
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e-01 checkpoint
// REPLICATED-LABEL: kvq.layer @per_tensor
kvq.layer @per_tensor cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// 3 KV heads over 2 (or 8) ranks: neither count divides the other.
// expected-error @below {{[TP-HEADS-INDIVISIBLE] the 3 KV heads of the per-head k/v scales cannot be sharded over tp-size}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.k_scale'}}
kvq.layer @indivisible cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2, 0.3]> : tensor<3xf32>, v = 0.05 : f32, q = 0.1 : f32>)
    {checkpoint_tensors = {k = "model.layers.0.self_attn.k_scale"}}

// -----

// The rank's caches hold 4 KV heads, but its share of the checkpoint's 4 is
// 2 (on 8 ranks: 1).
// expected-error-re @below {{[HEAD-COUNT-MISMATCH] k has {{[12]}} per-head scales (the heads of tp-rank {{[15]}} of tp-size {{[28]}}, from 4 in the checkpoint) but the layer has 4 KV heads}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.k_scale'}}
kvq.layer @count_after_sharding cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2, 0.3, 0.4]> : tensor<4xf32>, q = 0.1 : f32>)
    {checkpoint_tensors = {k = "model.layers.0.self_attn.k_scale"}}
func.func @count_after_sharding_store(%k: memref<?x4x128xbf16>, %kc: memref<?x16x4x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @count_after_sharding (%k, %k) into (%kc, %kc) at %s
      : memref<?x4x128xbf16>, memref<?x16x4x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

// A per-head q alone: the model's KV head count is unknown.
// expected-error @below {{[HEAD-COUNT-MISMATCH] q has 2 per-head scales, but the model's number of KV heads, needed to shard them for tp-rank}}
kvq.layer @q_alone cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = dense<[0.1, 0.2]> : tensor<2xf32>>)

// -----

// The rank's attention op has 3 query heads, so the model 6 (on 8 ranks,
// 24); q has 4.
// expected-error-re @below {{[HEAD-COUNT-MISMATCH] q has 4 per-head scales but the model has 3 attention heads on each of {{[28]}} ranks}}
kvq.layer @q_count_after_sharding cache(fp8) method(compressed_tensors)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = dense<[0.1, 0.2]> : tensor<2xf32>,
                           q = dense<[0.1, 0.2, 0.3, 0.4]> : tensor<4xf32>>)
func.func @q_count_after_sharding_step(%q: memref<?x3x128xbf16>, %kc: memref<?x16x1x128xf8E4M3FN>,
                                       %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  kvq.paged_attention @q_count_after_sharding (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x3x128xbf16>, memref<?x16x1x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
