//===- KVQOps.td - kvq operations --------------------------*- tablegen -*-===//
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
      `model.layers.12`, the decoder layer whose `self_attn.k_scale` and
      so on hold the scales); checkpoint import matches tensor names
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
    $sym_name (`prefix` `(` $prefix^ `)`)?
    `cache` `(` custom<KVCacheDtype>($kv_cache_dtype) `)`
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
    A cache op: `kvq.cache_store` or `kvq.cache_load`. Both move the K and V
    rows of tokens between activations and the paged caches of a layer, so
    the fold, the lowering and the checks see them through one view:
    two streams (K, V), each from a source memref to a destination memref,
    with the slots of the tokens.
  }];
  let methods = [
    InterfaceMethod<"The layer whose caches and scales the op uses.",
                    "::mlir::FlatSymbolRefAttr", "getLayerAttr">,
    InterfaceMethod<"Whether the op writes the caches (a store).",
                    "bool", "isStore">,
    InterfaceMethod<"The type of the caches (both are equal).",
                    "::mlir::MemRefType", "getCacheType">,
    InterfaceMethod<"The type of the activations: the store's sources, the "
                    "load's outputs (both streams are equal).",
                    "::mlir::MemRefType", "getActivationType">,
    InterfaceMethod<"The memrefs in stream order: slot_mapping, K source, "
                    "V source, K destination, V destination.",
                    "::std::array<::mlir::Value, 5>", "getStreamOperands">,
  ];
}

class KVQ_CacheOp<string mnemonic, list<Trait> traits = []>
    : KVQ_Op<mnemonic, traits # [KVQ_CacheOpInterface,
        DeclareOpInterfaceMethods<SymbolUserOpInterface>]>;

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
  let extraClassDeclaration = [{
    bool isStore() { return true; }
    ::mlir::MemRefType getCacheType() { return getKeyCache().getType(); }
    ::mlir::MemRefType getActivationType() { return getKey().getType(); }
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
  let extraClassDeclaration = [{
    bool isStore() { return false; }
    ::mlir::MemRefType getCacheType() { return getKeyCache().getType(); }
    ::mlir::MemRefType getActivationType() { return getKeyOut().getType(); }
    ::std::array<::mlir::Value, 5> getStreamOperands() {
      return {getSlotMapping(), getKeyCache(), getValueCache(), getKeyOut(),
              getValueOut()};
    }
  }];
}

#endif // KVQ_DIALECT_KVQ_IR_KVQOPS_TD
