// llama-tiny-attn-head, tensor-parallel rank of tp-size 8: the KV-cache side
// of a 4-layer Llama-style model with 4 KV heads of size 128 (16 attention
// heads), bf16 activations, an fp8 (e4m3) paged KV cache of 16-token blocks.
// With tp-size 8 (more ranks than KV heads) each KV head is replicated on
// 8 / 4 = 2 ranks and rank r holds head r / 2 alone: the shapes below have
// 1 head.
//
// The scales come from the compressed-tensors attn_head checkpoint next to
// this file (one scale per head), folded for one rank:
//
//   kvq-opt examples/llama-tiny-attn-head/model-tp8.mlir \
//     --kvq-import-checkpoint=checkpoint=examples/llama-tiny-attn-head \
//     --kvq-fold-scales="tp-size=8 tp-rank=1 report=-"

kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
kvq.layer @model.layers.1 prefix("model.layers.1") cache(fp8)
kvq.layer @model.layers.2 prefix("model.layers.2") cache(fp8)
kvq.layer @model.layers.3 prefix("model.layers.3") cache(fp8)

// Layer 0: write the new tokens' K and V into the cache, read them back.
func.func @layer_0_kv_cache(%k: memref<?x1x128xbf16>, %v: memref<?x1x128xbf16>,
                           %k_cache: memref<?x16x1x128xf8E4M3FN>,
                           %v_cache: memref<?x16x1x128xf8E4M3FN>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x1x128xbf16>, %v_out: memref<?x1x128xbf16>) {
  kvq.cache_store @model.layers.0 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x1x128xbf16>, memref<?x16x1x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @model.layers.0 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x1x128xf8E4M3FN>, memref<?xi64>, memref<?x1x128xbf16>
  return
}

// Layer 1: write the new tokens' K and V into the cache, read them back.
func.func @layer_1_kv_cache(%k: memref<?x1x128xbf16>, %v: memref<?x1x128xbf16>,
                           %k_cache: memref<?x16x1x128xf8E4M3FN>,
                           %v_cache: memref<?x16x1x128xf8E4M3FN>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x1x128xbf16>, %v_out: memref<?x1x128xbf16>) {
  kvq.cache_store @model.layers.1 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x1x128xbf16>, memref<?x16x1x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @model.layers.1 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x1x128xf8E4M3FN>, memref<?xi64>, memref<?x1x128xbf16>
  return
}

// Layer 2: write the new tokens' K and V into the cache, read them back.
func.func @layer_2_kv_cache(%k: memref<?x1x128xbf16>, %v: memref<?x1x128xbf16>,
                           %k_cache: memref<?x16x1x128xf8E4M3FN>,
                           %v_cache: memref<?x16x1x128xf8E4M3FN>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x1x128xbf16>, %v_out: memref<?x1x128xbf16>) {
  kvq.cache_store @model.layers.2 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x1x128xbf16>, memref<?x16x1x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @model.layers.2 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x1x128xf8E4M3FN>, memref<?xi64>, memref<?x1x128xbf16>
  return
}

// Layer 3: write the new tokens' K and V into the cache, read them back.
func.func @layer_3_kv_cache(%k: memref<?x1x128xbf16>, %v: memref<?x1x128xbf16>,
                           %k_cache: memref<?x16x1x128xf8E4M3FN>,
                           %v_cache: memref<?x16x1x128xf8E4M3FN>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x1x128xbf16>, %v_out: memref<?x1x128xbf16>) {
  kvq.cache_store @model.layers.3 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x1x128xbf16>, memref<?x16x1x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @model.layers.3 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x1x128xf8E4M3FN>, memref<?xi64>, memref<?x1x128xbf16>
  return
}
