//===- KVQOps.td - kvq operations --------------------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQOPS_TD
#define KVQ_DIALECT_KVQ_IR_KVQOPS_TD

include "kvq/Dialect/KVQ/IR/KVQAttrs.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class KVQ_Op<string mnemonic, list<Trait> traits = []>
    : Op<KVQ_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// LayerOp
//===----------------------------------------------------------------------===//

def KVQ_LayerOp : KVQ_Op<"layer", [Symbol]> {
  let summary = "an attention layer and its KV-cache quantization scales";
  let description = [{
    Declares one attention layer. Cache ops refer to it by symbol, so every
    store and load of the layer uses the same scales.

    - `prefix`: the layer's name prefix in the checkpoint (for example
      `model.layers.12`, the decoder layer whose `self_attn.k_scale` and
      so on hold the scales); checkpoint import matches tensor names
      against it. Defaults to the symbol name when absent.
    - `cache`: the KV-cache dtype (`#kvq.kv_cache_dtype`).
    - `method`: the scale-folding rules of the checkpoint's producer
      (`#kvq.scale_method`): `method(compressed_tensors)`; absent means
      `base`. Set by `kvq-import-checkpoint` from the checkpoint's
      `config.json`.
    - `calculate_kv_scales`: K/V scales are computed at run time from the
      first batch instead of taken from the checkpoint.
    - `checkpoint`: the raw scales (`#kvq.scales`), present until
      `kvq-fold-scales` consumes them.
    - `resolved`: the final scales (`#kvq.resolved_scales`), present after
      `kvq-fold-scales`. Lowering requires them.
    - `checkpoint_tensors` (optional, in the attribute dictionary): the
      checkpoint tensor each raw scale came from, as `{k = "name", ...}`, so
      diagnostics can name it.

    Example:

    ```mlir
    // Before kvq-fold-scales.
    kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
        checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)
    // After.
    kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
        resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint,
                 v = 7.000000e-02 checkpoint, q = 1.000000e+00 default,
                 prob = 1.000000e+00 default>)
    ```
  }];
  let arguments = (ins
    SymbolNameAttr:$sym_name,
    OptionalAttr<StrAttr>:$prefix,
    KVQ_KVCacheDtypeAttr:$kv_cache_dtype,
    OptionalAttr<KVQ_ScaleMethodAttr>:$scale_method,
    UnitAttr:$calculate_kv_scales,
    OptionalAttr<KVQ_ScalesAttr>:$checkpoint_scales,
    OptionalAttr<KVQ_ResolvedScalesAttr>:$resolved_scales,
    OptionalAttr<DictionaryAttr>:$checkpoint_tensors);
  let assemblyFormat = [{
    $sym_name (`prefix` `(` $prefix^ `)`)?
    `cache` `(` custom<KVCacheDtype>($kv_cache_dtype) `)`
    (`method` `(` custom<ScaleMethod>($scale_method)^ `)`)?
    (`calculate_kv_scales` $calculate_kv_scales^)?
    (`checkpoint` `(` $checkpoint_scales^ `)`)?
    (`resolved` `(` $resolved_scales^ `)`)? attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The checkpoint prefix: `prefix` if set, else the symbol name.
    ::llvm::StringRef getCheckpointPrefix() {
      if (auto p = getPrefix())
        return *p;
      return getSymName();
    }
    /// Whether the cache stores quantized values (fp8* or int8).
    bool isQuantized() {
      return getKvCacheDtype() != ::mlir::kvq::KVCacheDtype::Auto;
    }
    /// The folding rules: `method` if set, else base.
    ::mlir::kvq::ScaleMethod getScaleMethodOrBase() {
      return getScaleMethod().value_or(::mlir::kvq::ScaleMethod::Base);
    }
    /// The checkpoint tensor the raw scale `kind` came from, or an empty
    /// string.
    ::llvm::StringRef getCheckpointTensor(::mlir::kvq::ScaleKind kind);
  }];
}

//===----------------------------------------------------------------------===//
// Cache ops
//===----------------------------------------------------------------------===//

def KVQ_CacheOpInterface : OpInterface<"CacheOpInterface"> {
  let cppNamespace = "::mlir::kvq";
  let description = [{
    A cache op: `kvq.cache_store`, `kvq.fused_cache_store` or
    `kvq.cache_load`. They move the K and V rows of tokens between
    activations and the paged caches of a layer, so the fold, the lowering
    and the checks see them through one view: two streams (K, V), each from
    a source memref (or, for the fused store, a region) to a destination
    memref, with the slots of the tokens.
  }];
  let methods = [
    InterfaceMethod<"The layer whose caches and scales the op uses.",
                    "::mlir::FlatSymbolRefAttr", "getLayerAttr">,
    InterfaceMethod<"Whether the op writes the caches (a store).",
                    "bool", "isStore">,
    InterfaceMethod<"The type of the caches (both are equal).",
                    "::mlir::ShapedType", "getCacheType">,
    InterfaceMethod<"The type of the activations: the store's sources, the "
                    "load's outputs (both streams are equal).",
                    "::mlir::ShapedType", "getActivationType">,
    InterfaceMethod<"The memrefs in stream order: slot_mapping, K source, "
                    "V source, K destination, V destination (the sources "
                    "are null for kvq.fused_cache_store, whose region "
                    "computes K and V).",
                    "::std::array<::mlir::Value, 5>", "getStreamOperands">,
  ];
}

class KVQ_CacheOp<string mnemonic, list<Trait> traits = []>
    : KVQ_Op<mnemonic, traits # [KVQ_CacheOpInterface,
        DeclareOpInterfaceMethods<SymbolUserOpInterface>,
        DestinationStyleOpInterface,
        DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]>;

// Activations and caches: memrefs (the memref form) or ranked tensors (the
// tensor form, destination-passing: the caches or outputs are also results).
def KVQ_TensorOrMemRef : AnyTypeOf<[AnyMemRef, AnyRankedTensor],
                                   "ranked tensor or memref">;
def KVQ_SlotMapping : AnyTypeOf<[MemRefRankOf<[I64], [1]>,
                                 TensorRankOf<[I64], [1]>],
                                "1-D tensor or memref of i64">;

def KVQ_CacheStoreOp : KVQ_CacheOp<"cache_store", [
    AllTypesMatch<["key", "value"]>,
    AllTypesMatch<["key_cache", "value_cache"]>]> {
  let summary = "quantize new tokens' K and V into a layer's paged caches";
  let description = [{
    Writes the keys and values of `num_tokens` new tokens into the paged KV
    caches of layer `@layer`, quantized with the layer's resolved K and V
    scales (`vLLM`'s `reshape_and_cache_flash`, NHD layout).

    - `key`, `value`: `memref<num_tokens x num_kv_heads x head_size x T>`,
      `T` a float type (typically bf16 or f16).
    - `key_cache`, `value_cache`:
      `memref<num_blocks x block_size x num_kv_heads x head_size x C>`, `C`
      the cache element type of the layer's dtype (see `#kvq.kv_cache_dtype`).
    - `slot_mapping`: `memref<num_tokens x i64>`: token `t` goes to block
      `slot / block_size`, row `slot % block_size`. A negative slot marks
      padding: that token is skipped and the cache is left untouched.

    Semantics, identical on every target, bit for bit, with `s` the K (or
    V) scale:
    - fp8 (`f8E4M3FN`, `f8E4M3FNUZ`, `f8E5M2`, `f8E5M2FNUZ`):
      `cache = convert(f32(x) / s)` with the quotient of a true f32
      division, rounded to nearest even (subnormal results included) and
      saturating: finite values beyond the largest finite one (448, 240,
      57344, 57344) and +-inf become +-max. Every NaN input (any sign, any
      payload) becomes `0x7F` for `f8E4M3FN` and `f8E5M2` (what NVIDIA's
      `cvt.rn.satfinite` produces; GPU arithmetic does not keep the sign of
      a NaN, so no target could promise it) and `0x80` for the FNUZ
      formats, whose zero is always `0x00` (they have no -0).
    - `int8`: `clamp(round_half_even(f32(x) / s), -128, 127)`, NaN -> 0.
    - `auto`: a plain copy.
    - Padding: a token whose slot is negative is skipped; its cache rows
      keep their bytes. Slots must be below `num_blocks * block_size`.

    How the quotient is computed (a division, or a product by `RN(1/s)`
    proven to give the same bytes for the layer's scale) is the lowering's
    choice (`kvq-lower-cache-ops{quantize-division}`); the bytes are not.

    Tensor form: with ranked tensors for every operand, the op is
    destination-passing and returns the updated caches (`-> type, type`);
    `one-shot-bufferize` turns it into the memref form in place, and refuses
    (an error at the op) where the old cache value is still used after the
    store, rather than copying a cache.

    Example:

    ```mlir
    kvq.cache_store @model.layers.0 (%k, %v) into (%kc, %vc) at %slots
        : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
    %kc1, %vc1 = kvq.cache_store @model.layers.0 (%kt, %vt) into (%kct, %vct)
        at %st : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>,
        tensor<?xi64> -> tensor<?x16x8x128xf8E4M3FN>,
                         tensor<?x16x8x128xf8E4M3FN>
    ```
  }];
  let arguments = (ins
    FlatSymbolRefAttr:$layer,
    Arg<KVQ_TensorOrMemRef, "new keys">:$key,
    Arg<KVQ_TensorOrMemRef, "new values">:$value,
    Arg<KVQ_TensorOrMemRef, "paged key cache">:$key_cache,
    Arg<KVQ_TensorOrMemRef, "paged value cache">:$value_cache,
    Arg<KVQ_SlotMapping, "slot of each token">:$slot_mapping);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    $layer `(` $key `,` $value `)` `into` `(` $key_cache `,` $value_cache `)`
    `at` $slot_mapping attr-dict `:` type($key) `,` type($key_cache) `,`
    type($slot_mapping) (`->` type($results)^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    bool isStore() { return true; }
    /// The destinations: the caches.
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(*this, 2, 2);
    }
    ::mlir::ShapedType getCacheType() {
      return ::llvm::cast<::mlir::ShapedType>(getKeyCache().getType());
    }
    ::mlir::ShapedType getActivationType() {
      return ::llvm::cast<::mlir::ShapedType>(getKey().getType());
    }
    ::std::array<::mlir::Value, 5> getStreamOperands() {
      return {getSlotMapping(), getKey(), getValue(), getKeyCache(),
              getValueCache()};
    }
  }];
}

def KVQ_CacheLoadOp : KVQ_CacheOp<"cache_load", [
    AllTypesMatch<["key_out", "value_out"]>,
    AllTypesMatch<["key_cache", "value_cache"]>]> {
  let summary = "gather K and V from paged caches and dequantize them";
  let description = [{
    Reads back the keys and values of `num_tokens` tokens from the paged KV
    caches of layer `@layer`, dequantized with the layer's resolved scales.

    Semantics, identical on every target, bit for bit, with `s` the K (or
    V) scale:
    - fp8 and `int8`: `out = round_to_out_type(f32(cache) * s)`, rounded to
      nearest even (f32 outputs: the f32 product). Every NaN output is the
      positive quiet NaN with only the quiet bit set (`0x7FC0` bf16,
      `0x7E00` f16, `0x7FC00000` f32); products beyond the output type's
      range are +-inf.
    - `auto`: a plain copy.
    - Padding: a token whose slot is negative leaves its output rows
      untouched.

    Tensor form: with ranked tensors for every operand, `key_out` and
    `value_out` are the destinations and the op returns them updated
    (`-> type, type`); it bufferizes in place like the store.

    - `key_cache`, `value_cache`:
      `memref<num_blocks x block_size x num_kv_heads x head_size x C>`.
    - `slot_mapping`: `memref<num_tokens x i64>`, the slot of each token to
      read (for a sequence: `block_table[t / block_size] * block_size +
      t % block_size`). A negative slot leaves that token's output rows
      untouched.
    - `key_out`, `value_out`:
      `memref<num_tokens x num_kv_heads x head_size x T>`, `T` a float type.

    Example:

    ```mlir
    kvq.cache_load @model.layers.0 (%kc, %vc) at %slots into (%ko, %vo)
        : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
    ```
  }];
  let arguments = (ins
    FlatSymbolRefAttr:$layer,
    Arg<KVQ_TensorOrMemRef, "paged key cache">:$key_cache,
    Arg<KVQ_TensorOrMemRef, "paged value cache">:$value_cache,
    Arg<KVQ_SlotMapping, "slot of each token">:$slot_mapping,
    Arg<KVQ_TensorOrMemRef, "dequantized keys">:$key_out,
    Arg<KVQ_TensorOrMemRef, "dequantized values">:$value_out);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    $layer `(` $key_cache `,` $value_cache `)` `at` $slot_mapping
    `into` `(` $key_out `,` $value_out `)` attr-dict `:` type($key_cache) `,`
    type($slot_mapping) `,` type($key_out) (`->` type($results)^)?
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    bool isStore() { return false; }
    /// The destinations: the outputs.
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(*this, 3, 2);
    }
    ::mlir::ShapedType getCacheType() {
      return ::llvm::cast<::mlir::ShapedType>(getKeyCache().getType());
    }
    ::mlir::ShapedType getActivationType() {
      return ::llvm::cast<::mlir::ShapedType>(getKeyOut().getType());
    }
    ::std::array<::mlir::Value, 5> getStreamOperands() {
      return {getSlotMapping(), getKeyCache(), getValueCache(), getKeyOut(),
              getValueOut()};
    }
  }];
}

//===----------------------------------------------------------------------===//
// FusedCacheStoreOp
//===----------------------------------------------------------------------===//

def KVQ_FusedCacheStoreOp : KVQ_CacheOp<"fused_cache_store", [
    AllTypesMatch<["key_cache", "value_cache"]>, RecursiveMemoryEffects]> {
  let summary = "quantize K and V computed by a region into a layer's paged "
                "caches";
  let description = [{
    `kvq.cache_store` whose keys and values are not read from memory but
    computed, element by element, by its region: the
    store with its producers (the projection's epilogue, RoPE, any
    elementwise chain) fused in. `kvq-fuse-cache-producers` creates it from
    a tensor-form `kvq.cache_store` and the linalg ops that produce its K
    and V; the store's kernel then reads the producers' inputs and never
    writes K or V to memory.

    The region takes the token, KV head and element indices `(t, h, d)`
    (`index`, `t` in `[0, num_tokens)`, `h` in `[0, num_kv_heads)`, `d` in
    `[0, head_size)`, the sizes of `slot_mapping` and the caches) and
    yields the key and the value at that position with `kvq.yield`: two
    floats of the type a `kvq.cache_store` would have taken (the same
    type). It reads what it needs from values defined above
    (`tensor.extract`, after bufferization `memref.load`) and must not
    write memory. The store then behaves exactly as `kvq.cache_store` of
    the tensors the region describes, bit for bit on every target: the
    same quantization, the same padding rule (a token whose slot is
    negative is skipped), the same lowering. The region may be evaluated
    any number of times for a position, in any order, also for padding
    tokens (as the producers it replaces were).

    Why a region, not tiling: the cache kernels are written by kvq (the
    quantization must be exact, the scatter is paged), one work item per
    token row chunk; what fusing a producer needs is its value at each
    (t, h, d) of that item, including positions other items own (RoPE's
    partner element). A scalar region is the smallest thing every lowering
    (CPU loops, NVVM, ROCDL) can inline at its own work item, and it is
    the body of the fused linalg ops themselves (as upstream elementwise
    fusion inlines bodies). One region for both streams, like a
    `linalg.generic` with two outputs (which buffer deallocation accepts
    without a RegionBranchOpInterface).

    Tensor form: with tensor caches and slots, the op returns the updated
    caches and bufferizes in place like `kvq.cache_store`; the region's
    `tensor.extract` ops bufferize to `memref.load`. The memref form's
    region must use no tensor.

    Example (the store of RoPE'd keys, rotate-half form, f32 activations):

    ```mlir
    %kc1, %vc1 = kvq.fused_cache_store @model.layers.0
        into (%kc, %vc) at %slots
        : tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
        -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN> {
      ^bb0(%t: index, %h: index, %d: index):
        %x = tensor.extract %k[%t, %h, %d] : tensor<?x8x128xf32>
        ...
        %xv = tensor.extract %v[%t, %h, %d] : tensor<?x8x128xf32>
        kvq.yield %y, %xv : f32, f32
      }
    ```
  }];
  let arguments = (ins
    FlatSymbolRefAttr:$layer,
    Arg<KVQ_TensorOrMemRef, "paged key cache">:$key_cache,
    Arg<KVQ_TensorOrMemRef, "paged value cache">:$value_cache,
    Arg<KVQ_SlotMapping, "slot of each token">:$slot_mapping);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $layer `into` `(` $key_cache `,` $value_cache `)` `at` $slot_mapping
    attr-dict `:` type($key_cache) `,` type($slot_mapping)
    (`->` type($results)^)? $body
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    bool isStore() { return true; }
    /// The destinations: the caches.
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(*this, 0, 2);
    }
    ::mlir::ShapedType getCacheType() {
      return ::llvm::cast<::mlir::ShapedType>(getKeyCache().getType());
    }
    /// The type of the K and V the region computes, as `kvq.cache_store`
    /// would take them: [num_tokens, num_kv_heads, head_size] of the
    /// yielded type (null before the region is verified), a memref with
    /// the identity layout in the memref form.
    ::mlir::ShapedType getActivationType();
    /// slot_mapping, no K or V source (null: the region computes them),
    /// the K and V caches.
    ::std::array<::mlir::Value, 5> getStreamOperands() {
      return {getSlotMapping(), nullptr, nullptr, getKeyCache(),
              getValueCache()};
    }
    /// The region's terminator (null before verification).
    YieldOp getYield();
  }];
}

def KVQ_YieldOp : KVQ_Op<"yield", [Pure, Terminator, ReturnLike,
                                   HasParent<"FusedCacheStoreOp">]> {
  let summary = "the key and value a kvq.fused_cache_store region computes";
  let description = [{
    Ends the region of `kvq.fused_cache_store` with the K and the V element
    at the region's indices.

    ```mlir
    kvq.yield %k, %v : bf16, bf16
    ```
  }];
  let arguments = (ins Variadic<AnyFloat>:$values);
  let assemblyFormat = "$values attr-dict `:` type($values)";
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def KVQ_PagedAttentionOp : KVQ_Op<"paged_attention", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>,
    AllTypesMatch<["query", "out"]>,
    AllTypesMatch<["key_cache", "value_cache"]>]> {
  let summary = "decode attention over a layer's paged, quantized KV cache";
  let description = [{
    One decode step of attention: each sequence's single query token
    attends to the keys and values of its context, read from the paged
    caches of layer `@layer` exactly as `kvq.cache_store` writes them, with
    the layer's resolved scales.

    - `query`, `out`: `memref<num_seqs x num_heads x head_size x T>`, `T`
      bf16, f16 or f32 (the same type).
    - `key_cache`, `value_cache`:
      `memref<num_blocks x block_size x num_kv_heads x head_size x C>`, `C`
      the cache element type of the layer's dtype.
    - `block_tables`: `memref<num_seqs x max_blocks x i32>`: the physical
      blocks of each sequence in order. Only the first
      `ceil(context_lens[s] / block_size)` entries of a row are read;
      the rest (padding) never is.
    - `context_lens`: `memref<num_seqs x i32>`, each in
      `[0, max_blocks * block_size]`.
    - `scale`: the softmax scale, default `1 / sqrt(head_size)` (f32).
    - `precision`: `#kvq.attention_precision`, default `dequantized`.
    - `workspace` (optional, always a memref): `memref<? x i8>` of device
      scratch that lets a GPU lowering split long contexts across thread
      blocks (flash-decoding); it must be zero-filled when allocated, and
      every call leaves it zero-filled again. Any size is correct: the
      lowering splits no more than the workspace holds (none without
      one). The CPU lowering does not touch it. Sizes: docs/KernelABI.md.

    Grouped-query attention: `num_heads` is a multiple of `num_kv_heads`,
    and query head `h` attends with KV head `h / (num_heads /
    num_kv_heads)`. Token `j < L = context_lens[s]` of sequence `s` is row
    `j % block_size` of block `block_tables[s][j / block_size]`.

    Semantics (`dequantized`), with `k`, `v` the cache values decoded
    exactly (fp8 and int8 codes, or the bf16 / f16 of an `auto` cache) and
    `s_k`, `s_v` the layer's resolved K and V scales:
    `score_j = (q . k_j) * (s_k * scale)`, `p = softmax(score)`,
    `out = s_v * sum_j p_j v_j`. The K scale folds into the softmax scale
    and the V scale is applied once to the result: no cache element is
    multiplied by a scale. `L = 0` writes zeros. With per-head scales on
    the layer (`k = [...]`), `s_k`, `s_v` and `s_q` are those of the query
    head's KV head; the caches then have that many KV heads (the verifier
    checks a static count).

    `fp8_qk`: `q` is first quantized to the cache's fp8 format with the
    layer's Q scale `s_q` (as `kvq.cache_store` quantizes), and
    `score_j = (q_q . k_j) * (s_q * s_k * scale)`. `fp8_qk_pv`: also
    `p_q,j = quantize(p_j / s_p)` with the prob scale `s_p`, and
    `out = s_v * sum_j p_q,j v_j / sum_j p_q,j`: the output is normalized
    by the quantized probabilities themselves, so each output row stays a
    convex combination of the V rows (quantizing P alone loses mass;
    this keeps it). A layer without a checkpoint q (or prob) scale gets
    1.0 from kvq-fold-scales (vLLM's rule) unless `q-fallback=k`, which
    gives Q = K: in the fp8 modes this changes the results, as it does in
    vLLM's fp8 attention backends.

    Tensor form: with ranked tensors for every operand, `out` is the
    destination and the op returns it (`-> type`); it bufferizes in place
    like the cache ops.

    The result is a rounding of this exact value, not bit-exact across
    targets: the kernels accumulate in f32 in their own order and split
    long contexts. The error bound every lowering is tested against is in
    `unittests/Attention/DecodeAttentionReference.h`.

    Example:

    ```mlir
    kvq.paged_attention @model.layers.0 (%q) cache(%kc, %vc)
        blocks(%block_tables, %context_lens) into(%out)
        : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
          memref<?x?xi32>, memref<?xi32>
    ```
  }];
  let arguments = (ins
    FlatSymbolRefAttr:$layer,
    Arg<KVQ_TensorOrMemRef, "queries">:$query,
    Arg<KVQ_TensorOrMemRef, "paged key cache">:$key_cache,
    Arg<KVQ_TensorOrMemRef, "paged value cache">:$value_cache,
    Arg<AnyTypeOf<[MemRefRankOf<[I32], [2]>, TensorRankOf<[I32], [2]>],
                  "2-D tensor or memref of i32">, "block tables">:$block_tables,
    Arg<AnyTypeOf<[MemRefRankOf<[I32], [1]>, TensorRankOf<[I32], [1]>],
                  "1-D tensor or memref of i32">,
        "context lengths">:$context_lens,
    Arg<KVQ_TensorOrMemRef, "outputs">:$out,
    Arg<Optional<MemRefRankOf<[I8], [1]>>, "scratch of the GPU kernels">
        :$workspace,
    OptionalAttr<F32Attr>:$scale,
    DefaultValuedAttr<KVQ_AttentionPrecisionAttr,
        "::mlir::kvq::AttentionPrecision::Dequantized">:$precision);
  let assemblyFormat = [{
    $layer `(` $query `)` `cache` `(` $key_cache `,` $value_cache `)`
    `blocks` `(` $block_tables `,` $context_lens `)` `into` `(` $out `)`
    (`workspace` `(` $workspace^ `:` type($workspace) `)`)?
    (`scale` `(` $scale^ `)`)?
    custom<AttentionPrecision>($precision)
    attr-dict `:` type($query) `,` type($key_cache) `,` type($block_tables)
    `,` type($context_lens) (`->` type($result)^)?
  }];
  let results = (outs Optional<AnyRankedTensor>:$result);
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The destination: the output.
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(*this, 5, 1);
    }
    /// The softmax scale: `scale`, else 1 / sqrt(head_size) rounded to f32
    /// (std::nullopt for a dynamic head size without `scale`).
    std::optional<float> getSoftmaxScale();
  }];
}

#endif // KVQ_DIALECT_KVQ_IR_KVQOPS_TD
