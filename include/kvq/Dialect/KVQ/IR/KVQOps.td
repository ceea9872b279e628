//===- KVQOps.td - kvq operations -------------------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQOPS_TD
#define KVQ_DIALECT_KVQ_IR_KVQOPS_TD

include "kvq/Dialect/KVQ/IR/KVQAttrs.td"
include "mlir/IR/SymbolInterfaces.td"
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
      `model.layers.12`, the decoder layer whose `self_attn.k_scale` (and so on) hold the scales); checkpoint import matches tensor names
      against it. Defaults to the symbol name when absent.
    - `cache`: the KV-cache dtype (`#kvq.kv_cache_dtype`).
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
    UnitAttr:$calculate_kv_scales,
    OptionalAttr<KVQ_ScalesAttr>:$checkpoint_scales,
    OptionalAttr<KVQ_ResolvedScalesAttr>:$resolved_scales,
    OptionalAttr<DictionaryAttr>:$checkpoint_tensors);
  let assemblyFormat = [{
    $sym_name (`prefix` `(` $prefix^ `)`)? `cache` `(` custom<KVCacheDtype>($kv_cache_dtype) `)`
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
    /// The checkpoint tensor a raw scale came from ("q", "k", "v", "prob"),
    /// or an empty string.
    ::llvm::StringRef getCheckpointTensor(::llvm::StringRef field);
  }];
}

//===----------------------------------------------------------------------===//
// Cache ops
//===----------------------------------------------------------------------===//

class KVQ_CacheOp<string mnemonic, list<Trait> traits = []>
    : KVQ_Op<mnemonic, traits # [
        DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  code extraCacheClassDeclaration = [{
    /// The layer this op stores to or loads from, or null.
    LayerOp lookupLayer();
  }];
}

def KVQ_CacheStoreOp : KVQ_CacheOp<"cache_store", [
    AllTypesMatch<["key", "value"]>,
    AllTypesMatch<["key_cache", "value_cache"]>]> {
  let summary = "quantize new tokens' K and V and scatter them into paged caches";
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

    For each stored element, with `s` the K (or V) scale:
    `cache = convert(float(x) / s)` rounding to nearest even and saturating
    to the format's largest finite value (NaN stays NaN); for `int8`,
    `clamp(round_half_even(float(x) / s), -128, 127)`; for `auto`, a plain
    copy. The division is a true f32 division, as the reference kernels do.

    Example:

    ```mlir
    kvq.cache_store @model.layers.0 (%k, %v) into (%kc, %vc) at %slots
        : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
    ```
  }];
  let arguments = (ins
    FlatSymbolRefAttr:$layer,
    Arg<AnyMemRef, "new keys", [MemRead]>:$key,
    Arg<AnyMemRef, "new values", [MemRead]>:$value,
    Arg<AnyMemRef, "paged key cache", [MemWrite]>:$key_cache,
    Arg<AnyMemRef, "paged value cache", [MemWrite]>:$value_cache,
    Arg<MemRefRankOf<[I64], [1]>, "slot of each token", [MemRead]>:$slot_mapping);
  let assemblyFormat = [{
    $layer `(` $key `,` $value `)` `into` `(` $key_cache `,` $value_cache `)`
    `at` $slot_mapping attr-dict `:` type($key) `,` type($key_cache) `,`
    type($slot_mapping)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = extraCacheClassDeclaration;
}

def KVQ_CacheLoadOp : KVQ_CacheOp<"cache_load", [
    AllTypesMatch<["key_out", "value_out"]>,
    AllTypesMatch<["key_cache", "value_cache"]>]> {
  let summary = "gather K and V from paged caches and dequantize them";
  let description = [{
    Reads back the keys and values of `num_tokens` tokens from the paged KV
    caches of layer `@layer`, dequantized with the layer's resolved scales:
    `out = round_to_out_type(float(cache) * s)`, `s` the K (or V) scale;
    for `auto`, a plain copy.

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
    Arg<AnyMemRef, "paged key cache", [MemRead]>:$key_cache,
    Arg<AnyMemRef, "paged value cache", [MemRead]>:$value_cache,
    Arg<MemRefRankOf<[I64], [1]>, "slot of each token", [MemRead]>:$slot_mapping,
    Arg<AnyMemRef, "dequantized keys", [MemWrite]>:$key_out,
    Arg<AnyMemRef, "dequantized values", [MemWrite]>:$value_out);
  let assemblyFormat = [{
    $layer `(` $key_cache `,` $value_cache `)` `at` $slot_mapping
    `into` `(` $key_out `,` $value_out `)` attr-dict `:` type($key_cache) `,`
    type($slot_mapping) `,` type($key_out)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = extraCacheClassDeclaration;
}

#endif // KVQ_DIALECT_KVQ_IR_KVQOPS_TD
