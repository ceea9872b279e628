// Per-head scales (compressed-tensors strategy attn_head, or any per-head
// tensor): each head folded by the rules of a per-tensor scale, q reduced
// from attention heads to KV heads by the max over each group. The layer's
// KV heads are dim 2 of its caches, its attention heads dim 1 of the
// queries of its kvq.paged_attention.
// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false" | FileCheck %s
// The fold report shows each per-head field's range (JSON lists every
// head: kvq-layer-report.mlir).
// RUN: kvq-opt %s -split-input-file \
// RUN:   --kvq-fold-scales="summary=false report=-" -o /dev/null 2>/dev/null \
// RUN:   | FileCheck %s --check-prefix=REPORT
// REPORT: ct_attn_head  ct_attn_head  fp8    0.100000001..0.200000003 [2 heads] (checkpoint)  0.300000012..0.400000006 [2 heads] (checkpoint)  0.200000003..0.5 [2 heads] (checkpoint)  1 (default)
// REPORT: base_duplicated  base_duplicated  fp8    0.100000001..0.200000003 [2 heads] (duplicated)  0.100000001..0.200000003 [2 heads] (duplicated)  0.5 (checkpoint)  0.25 (checkpoint)
// REPORT: ct_attn_head_fnuz  ct_attn_head_fnuz  fp8    0.200000003..0.400000006 [2 heads] (checkpoint x2)

// compressed-tensors attn_head as llm-compressor writes it: k, v and q of
// shape [heads, 1, 1]; 2 KV heads, 4 attention heads.
// CHECK-LABEL: kvq.layer @ct_attn_head
// CHECK-SAME: resolved(<k = [1.000000e-01, 2.000000e-01] checkpoint, v = [3.000000e-01, 4.000000e-01] checkpoint, q = [5.000000e-01, 2.000000e-01] checkpoint, prob = 1.000000e+00 default>)
kvq.layer @ct_attn_head cache(fp8) method(compressed_tensors)
    checkpoint(#kvq.scales<k = dense<[[[0.1]], [[0.2]]]> : tensor<2x1x1xf32>,
                           v = dense<[[[0.3]], [[0.4]]]> : tensor<2x1x1xf32>,
                           q = dense<[[[0.1]], [[0.5]], [[0.2]], [[0.05]]]> : tensor<4x1x1xf32>>)
func.func @ct_attn_head_step(%q: memref<?x4x128xbf16>, %kc: memref<?x16x2x128xf8E4M3FN>,
                             %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  kvq.paged_attention @ct_attn_head (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x4x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

// Base rules, one per-head kv scale (shape [2]): duplicated head by head.
// The cache op gives the 2 KV heads.
// CHECK-LABEL: kvq.layer @base_duplicated
// CHECK-SAME: resolved(<k = [1.000000e-01, 2.000000e-01] duplicated, v = [1.000000e-01, 2.000000e-01] duplicated, q = 5.000000e-01 checkpoint, prob = 2.500000e-01 checkpoint>)
kvq.layer @base_duplicated cache(fp8)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, q = 0.5 : f32, prob = 0.25 : f32>)
func.func @base_duplicated_store(%k: memref<?x2x128xbf16>, %kc: memref<?x16x2x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @base_duplicated (%k, %k) into (%kc, %kc) at %s
      : memref<?x2x128xbf16>, memref<?x16x2x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

// Without a cache or attention op, the per-head scales give the KV head
// count (here 3); a per-tensor v is every head's.
// CHECK-LABEL: kvq.layer @no_cache_op
// CHECK-SAME: resolved(<k = [1.000000e-01, 2.000000e-01, 3.000000e-01] checkpoint, v = [5.000000e-02, 5.000000e-02, 5.000000e-02] checkpoint, q = 5.000000e-01 checkpoint
kvq.layer @no_cache_op cache(fp8_e4m3)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2, 0.3]> : tensor<3xf32>, v = 0.05 : f32, q = 0.5 : f32>)

// -----

// On FNUZ (gfx942) every head is doubled, as a per-tensor scale is; here the
// KV head count comes from k and v (no cache op).
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @ct_attn_head_fnuz
// CHECK-SAME: resolved(<k = [2.000000e-01, 4.000000e-01] checkpoint doubled, v = [6.000000e-01, 8.000000e-01] checkpoint doubled, q = [1.000000e+00, 4.000000e-01] checkpoint doubled, prob = 1.000000e+00 default, fnuz>)
// expected-warning @below {{[CT-FNUZ]}}
// expected-note @below {{ct-fnuz=vllm gives exact vLLM parity}}
kvq.layer @ct_attn_head_fnuz cache(fp8) method(compressed_tensors)
    checkpoint(#kvq.scales<k = dense<[[[0.1]], [[0.2]]]> : tensor<2x1x1xf32>,
                           v = dense<[[[0.3]], [[0.4]]]> : tensor<2x1x1xf32>,
                           q = dense<[[[0.1]], [[0.5]], [[0.2]], [[0.05]]]> : tensor<4x1x1xf32>>)

// -----

// Base rules on FNUZ: a per-head duplicated kv scale, doubled head by head.
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @base_duplicated_fnuz
// CHECK-SAME: resolved(<k = [2.000000e-01, 4.000000e-01] duplicated doubled, v = [2.000000e-01, 4.000000e-01] duplicated doubled, q = 5.000000e-01 checkpoint doubled, prob = 2.500000e-01 checkpoint doubled, fnuz>)
kvq.layer @base_duplicated_fnuz cache(fp8)
    checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, q = 0.25 : f32, prob = 0.125 : f32>)
