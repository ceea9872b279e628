// llama-tiny, one decode step: for each of the 8 layers, each sequence's
// new token is stored into the layer's fp8 paged cache, then its query (32
// heads, 4 per KV head) attends to the sequence's whole context, reading
// the cache with the layer's K and V scales. Store and attention name the
// same layer, so they cannot disagree on a scale. The scales come from a
// checkpoint, as for model.mlir:
//
//   kvq-opt examples/llama-tiny/decode-step.mlir \
//     --kvq-import-checkpoint=checkpoint=examples/llama-tiny/quark \
//     --kvq-fold-scales --kvq-to-llvm     # or --kvq-to-ptx=chip=sm_90,
//                                         # --kvq-to-amdgcn=chip=gfx950

kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
kvq.layer @model.layers.1 prefix("model.layers.1") cache(fp8)
kvq.layer @model.layers.2 prefix("model.layers.2") cache(fp8)
kvq.layer @model.layers.3 prefix("model.layers.3") cache(fp8)
kvq.layer @model.layers.4 prefix("model.layers.4") cache(fp8)
kvq.layer @model.layers.5 prefix("model.layers.5") cache(fp8)
kvq.layer @model.layers.6 prefix("model.layers.6") cache(fp8)
kvq.layer @model.layers.7 prefix("model.layers.7") cache(fp8)

// Layer 0: store the new tokens, then attend.
func.func @decode_step_layer_0(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.0 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.0 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Layer 1: store the new tokens, then attend.
func.func @decode_step_layer_1(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.1 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.1 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Layer 2: store the new tokens, then attend.
func.func @decode_step_layer_2(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.2 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.2 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Layer 3: store the new tokens, then attend.
func.func @decode_step_layer_3(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.3 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.3 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Layer 4: store the new tokens, then attend.
func.func @decode_step_layer_4(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.4 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.4 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Layer 5: store the new tokens, then attend.
func.func @decode_step_layer_5(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.5 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.5 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Layer 6: store the new tokens, then attend.
func.func @decode_step_layer_6(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.6 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.6 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Layer 7: store the new tokens, then attend.
func.func @decode_step_layer_7(
    %q: memref<?x32x128xbf16>, %k: memref<?x8x128xbf16>,
    %v: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %k_cache: memref<?x16x8x128xf8E4M3FN>,
    %v_cache: memref<?x16x8x128xf8E4M3FN>,
    %block_tables: memref<?x?xi32>, %context_lens: memref<?xi32>,
    %out: memref<?x32x128xbf16>) {
  kvq.cache_store @model.layers.7 (%k, %v) into (%k_cache, %v_cache)
      at %slots : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
                  memref<?xi64>
  kvq.paged_attention @model.layers.7 (%q) cache(%k_cache, %v_cache)
      blocks(%block_tables, %context_lens) into(%out)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}
