// One decoder layer's attention input side, as a model compiler emits it:
// linalg on tensors from the hidden state to the attention output, with
// kvq's tensor-form cache store and paged attention in the middle. For each
// sequence's new token (one per sequence, a decode step):
//
//   q = x Wq, k = x Wk, v = x Wv     linalg.matmul, bf16 in, f32 out
//   q, k -> [tokens, heads, 64]      tensor.expand_shape
//   RoPE on q and k                  linalg.generic, rotate-half (GPT-NeoX)
//                                    form, cos / sin read at each token's
//                                    position
//   store k, v into the fp8 caches   kvq.cache_store (tensor form); the
//                                    pipeline fuses k's RoPE into it
//                                    (kvq-fuse-cache-producers)
//   attend over the updated caches   kvq.paged_attention (tensor form)
//
// Shapes: hidden 256, 4 query heads and 2 KV heads of size 64, 16-token
// blocks, positions below 128. The number of tokens, of cache blocks and
// the block table width are dynamic. The layer takes its scales from layer
// 0 of the bundled Quark checkpoint of llama-tiny (per-tensor scales: they
// do not depend on the head count).
//
// The pipeline to the CPU (docs/ModelCompilers.md, "A layer step on
// tensors"; test/Examples/llama-layer.test runs it, and
// unittests/Conversion/KVQLayerStepExecTest.cpp executes the result):
//
//   kvq-opt examples/llama-layer/decode-layer.mlir \
//     --kvq-import-checkpoint=checkpoint=examples/llama-tiny/quark \
//     --kvq-fold-scales --kvq-fuse-cache-producers \
//     --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
//     --drop-equivalent-buffer-results --buffer-deallocation-pipeline \
//     --convert-linalg-to-loops --expand-strided-metadata --lower-affine \
//     --kvq-to-llvm
//
// kvq-fuse-cache-producers moves k's RoPE into the store
// (kvq.fused_cache_store): the store's code reads the k projection, the
// positions and the tables, and the rotated k is never written to memory.
// q's RoPE stays (the attention reads q). For PTX, --kvq-to-ptx=chip=sm_90
// in place of the last three passes (the linalg parts stay host loops).
//
// The caches bufferize in place: the step writes the caller's cache
// buffers, with no allocation or copy of a cache. The step is private, as a
// model compiler's per-layer function called from its model step is: its
// results are the caller's buffers (the caches and the output), which
// drop-equivalent-buffer-results removes (it leaves public functions
// alone), so that buffer-deallocation-pipeline only frees the temporaries
// (projections, q's RoPE output). Of a public function the pipeline would
// clone the returned caches, as it must return buffers its caller owns.

// Every layer of the model is declared, as a model compiler declares them;
// the step below is layer 0's.
kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
kvq.layer @model.layers.1 prefix("model.layers.1") cache(fp8)
kvq.layer @model.layers.2 prefix("model.layers.2") cache(fp8)
kvq.layer @model.layers.3 prefix("model.layers.3") cache(fp8)
kvq.layer @model.layers.4 prefix("model.layers.4") cache(fp8)
kvq.layer @model.layers.5 prefix("model.layers.5") cache(fp8)
kvq.layer @model.layers.6 prefix("model.layers.6") cache(fp8)
kvq.layer @model.layers.7 prefix("model.layers.7") cache(fp8)

#token = affine_map<(t, h, d) -> (t)>
#elem = affine_map<(t, h, d) -> (t, h, d)>

// x: [tokens, 256] bf16; Wq: [256, 4 * 64], Wk, Wv: [256, 2 * 64] bf16;
// positions, slots: [tokens] i64 (slot -1: padding, not stored); cos, sin:
// [128, 32] f32; caches: [blocks, 16, 2, 64] fp8; block tables:
// [tokens, max_blocks] i32; context lengths: [tokens] i32 (each including
// the new token); out: [tokens, 4, 64] f32. Returns the attention output
// and the updated caches.
func.func private @decode_layer(
    %x: tensor<?x256xbf16>, %wq: tensor<256x256xbf16>,
    %wk: tensor<256x128xbf16>, %wv: tensor<256x128xbf16>,
    %positions: tensor<?xi64>, %cos: tensor<128x32xf32>,
    %sin: tensor<128x32xf32>, %slots: tensor<?xi64>,
    %k_cache: tensor<?x16x2x64xf8E4M3FN>,
    %v_cache: tensor<?x16x2x64xf8E4M3FN>,
    %block_tables: tensor<?x?xi32>, %context_lens: tensor<?xi32>,
    %out: tensor<?x4x64xf32>)
    -> (tensor<?x4x64xf32>, tensor<?x16x2x64xf8E4M3FN>,
        tensor<?x16x2x64xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %c32 = arith.constant 32 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %x, %c0 : tensor<?x256xbf16>

  // Projections: bf16 products (exact in f32) summed in f32.
  %q_empty = tensor.empty(%n) : tensor<?x256xf32>
  %q_init = linalg.fill ins(%zero : f32)
      outs(%q_empty : tensor<?x256xf32>) -> tensor<?x256xf32>
  %q_flat = linalg.matmul
      ins(%x, %wq : tensor<?x256xbf16>, tensor<256x256xbf16>)
      outs(%q_init : tensor<?x256xf32>) -> tensor<?x256xf32>
  %k_empty = tensor.empty(%n) : tensor<?x128xf32>
  %k_init = linalg.fill ins(%zero : f32)
      outs(%k_empty : tensor<?x128xf32>) -> tensor<?x128xf32>
  %k_flat = linalg.matmul
      ins(%x, %wk : tensor<?x256xbf16>, tensor<256x128xbf16>)
      outs(%k_init : tensor<?x128xf32>) -> tensor<?x128xf32>
  %v_empty = tensor.empty(%n) : tensor<?x128xf32>
  %v_init = linalg.fill ins(%zero : f32)
      outs(%v_empty : tensor<?x128xf32>) -> tensor<?x128xf32>
  %v_flat = linalg.matmul
      ins(%x, %wv : tensor<?x256xbf16>, tensor<256x128xbf16>)
      outs(%v_init : tensor<?x128xf32>) -> tensor<?x128xf32>

  // Heads.
  %q_heads = tensor.expand_shape %q_flat [[0], [1, 2]]
      output_shape [%n, 4, 64] : tensor<?x256xf32> into tensor<?x4x64xf32>
  %k_heads = tensor.expand_shape %k_flat [[0], [1, 2]]
      output_shape [%n, 2, 64] : tensor<?x128xf32> into tensor<?x2x64xf32>
  %v = tensor.expand_shape %v_flat [[0], [1, 2]]
      output_shape [%n, 2, 64] : tensor<?x128xf32> into tensor<?x2x64xf32>

  // Rotary position embedding, rotate-half (GPT-NeoX) form, head size 64:
  // for d < 32, y_d = x_d cos_d - x_{d+32} sin_d; for d >= 32,
  // y_d = x_d cos_{d-32} + x_{d-32} sin_{d-32}, cos_i = cos[position][i].
  // Written y_d = x_d c + r_d s with r_d = -x_{d+32} or x_{d-32}: f32, one
  // rounding per product and one for the sum.
  %q_rot_empty = tensor.empty(%n) : tensor<?x4x64xf32>
  %q = linalg.generic {indexing_maps = [#elem, #token, #elem],
                      iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%q_heads, %positions : tensor<?x4x64xf32>, tensor<?xi64>)
      outs(%q_rot_empty : tensor<?x4x64xf32>) {
  ^bb0(%xd: f32, %p: i64, %unused: f32):
    %t = linalg.index 0 : index
    %h = linalg.index 1 : index
    %d = linalg.index 2 : index
    %row = arith.index_cast %p : i64 to index
    %i = arith.remui %d, %c32 : index
    %dp = arith.addi %d, %c32 : index
    %partner = arith.remui %dp, %c64 : index
    %c = tensor.extract %cos[%row, %i] : tensor<128x32xf32>
    %s = tensor.extract %sin[%row, %i] : tensor<128x32xf32>
    %xp = tensor.extract %q_heads[%t, %h, %partner] : tensor<?x4x64xf32>
    %neg = arith.negf %xp : f32
    %first = arith.cmpi ult, %d, %c32 : index
    %r = arith.select %first, %neg, %xp : f32
    %xc = arith.mulf %xd, %c : f32
    %rs = arith.mulf %r, %s : f32
    %yd = arith.addf %xc, %rs : f32
    linalg.yield %yd : f32
  } -> tensor<?x4x64xf32>
  %k_rot_empty = tensor.empty(%n) : tensor<?x2x64xf32>
  %k = linalg.generic {indexing_maps = [#elem, #token, #elem],
                      iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k_heads, %positions : tensor<?x2x64xf32>, tensor<?xi64>)
      outs(%k_rot_empty : tensor<?x2x64xf32>) {
  ^bb0(%xd: f32, %p: i64, %unused: f32):
    %t = linalg.index 0 : index
    %h = linalg.index 1 : index
    %d = linalg.index 2 : index
    %row = arith.index_cast %p : i64 to index
    %i = arith.remui %d, %c32 : index
    %dp = arith.addi %d, %c32 : index
    %partner = arith.remui %dp, %c64 : index
    %c = tensor.extract %cos[%row, %i] : tensor<128x32xf32>
    %s = tensor.extract %sin[%row, %i] : tensor<128x32xf32>
    %xp = tensor.extract %k_heads[%t, %h, %partner] : tensor<?x2x64xf32>
    %neg = arith.negf %xp : f32
    %first = arith.cmpi ult, %d, %c32 : index
    %r = arith.select %first, %neg, %xp : f32
    %xc = arith.mulf %xd, %c : f32
    %rs = arith.mulf %r, %s : f32
    %yd = arith.addf %xc, %rs : f32
    linalg.yield %yd : f32
  } -> tensor<?x2x64xf32>

  // Quantize the new K and V into the caches, then attend over them.
  %k_cache1, %v_cache1 = kvq.cache_store @model.layers.0 (%k, %v)
      into (%k_cache, %v_cache) at %slots
      : tensor<?x2x64xf32>, tensor<?x16x2x64xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x2x64xf8E4M3FN>, tensor<?x16x2x64xf8E4M3FN>
  %o = kvq.paged_attention @model.layers.0 (%q) cache(%k_cache1, %v_cache1)
      blocks(%block_tables, %context_lens) into(%out)
      : tensor<?x4x64xf32>, tensor<?x16x2x64xf8E4M3FN>, tensor<?x?xi32>,
        tensor<?xi32> -> tensor<?x4x64xf32>
  return %o, %k_cache1, %v_cache1
      : tensor<?x4x64xf32>, tensor<?x16x2x64xf8E4M3FN>,
        tensor<?x16x2x64xf8E4M3FN>
}
