// llama-tiny for AMD gfx942 (MI300), whose fp8 is FNUZ: model.mlir with
// f8E4M3FNUZ caches (sed s/f8E4M3FN>/f8E4M3FNUZ>/g model.mlir) and the
// target stated once, on the kernels' gpu.module: kvq-fold-scales folds
// for FNUZ and kvq-to-amdgcn lowers for gfx942 with no option.
gpu.module @kvq_cache_kernels [#rocdl.target<O = 3, chip = "gfx942">] {}

// llama-tiny: the KV-cache side of a small Llama-style model, 8 decoder
// layers, 8 KV heads of size 128, bf16 activations, an fp8 (e4m3) paged KV
// cache of 16-token blocks.
//
// The layers carry no scales: they come from a checkpoint
// (examples/llama-tiny/<producer>/, one folder per checkpoint producer)
// through kvq-import-checkpoint, then kvq-fold-scales folds them.
//
//   kvq-opt examples/llama-tiny/model.mlir --kvq-layer-report -o /dev/null

kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
kvq.layer @model.layers.1 prefix("model.layers.1") cache(fp8)
kvq.layer @model.layers.2 prefix("model.layers.2") cache(fp8)
kvq.layer @model.layers.3 prefix("model.layers.3") cache(fp8)
kvq.layer @model.layers.4 prefix("model.layers.4") cache(fp8)
kvq.layer @model.layers.5 prefix("model.layers.5") cache(fp8)
kvq.layer @model.layers.6 prefix("model.layers.6") cache(fp8)
kvq.layer @model.layers.7 prefix("model.layers.7") cache(fp8)

// Layer 0: write the new tokens' K and V into the cache, read them back.
func.func @layer_0_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.0 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.0 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// Layer 1: write the new tokens' K and V into the cache, read them back.
func.func @layer_1_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.1 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.1 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// Layer 2: write the new tokens' K and V into the cache, read them back.
func.func @layer_2_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.2 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.2 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// Layer 3: write the new tokens' K and V into the cache, read them back.
func.func @layer_3_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.3 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.3 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// Layer 4: write the new tokens' K and V into the cache, read them back.
func.func @layer_4_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.4 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.4 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// Layer 5: write the new tokens' K and V into the cache, read them back.
func.func @layer_5_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.5 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.5 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// Layer 6: write the new tokens' K and V into the cache, read them back.
func.func @layer_6_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.6 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.6 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// Layer 7: write the new tokens' K and V into the cache, read them back.
func.func @layer_7_kv_cache(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                           %k_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %v_cache: memref<?x16x8x128xf8E4M3FNUZ>,
                           %slots: memref<?xi64>,
                           %k_out: memref<?x8x128xbf16>, %v_out: memref<?x8x128xbf16>) {
  kvq.cache_store @model.layers.7 (%k, %v) into (%k_cache, %v_cache) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  kvq.cache_load @model.layers.7 (%k_cache, %v_cache) at %slots into (%k_out, %v_out)
      : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xbf16>
  return
}
