//===- KVQEnums.td - kvq enum attributes -------------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQENUMS_TD
#define KVQ_DIALECT_KVQ_IR_KVQENUMS_TD

include "kvq/Dialect/KVQ/IR/KVQDialect.td"
include "mlir/IR/EnumAttr.td"

def KVQ_KVCacheDtype : I32EnumAttr<"KVCacheDtype", "KV-cache storage dtype", [
    I32EnumAttrCase<"Auto", 0, "auto">,
    I32EnumAttrCase<"Fp8", 1, "fp8">,
    I32EnumAttrCase<"Fp8E4M3", 2, "fp8_e4m3">,
    I32EnumAttrCase<"Fp8E5M2", 3, "fp8_e5m2">,
    I32EnumAttrCase<"Int8", 4, "int8">]> {
  let cppNamespace = "::mlir::kvq";
  let genSpecializedAttr = 0;
}

def KVQ_KVCacheDtypeAttr : EnumAttr<KVQ_Dialect, KVQ_KVCacheDtype,
                                    "kv_cache_dtype"> {
  let assemblyFormat = "`<` $value `>`";
  let summary = "the KV-cache dtype of an attention layer";
  let description = [{
    The names serving engines use for `--kv-cache-dtype`:

    | value      | cache element type             | quantized |
    |------------|--------------------------------|-----------|
    | `auto`     | the activation type            | no        |
    | `fp8`      | `f8E4M3FN` or `f8E4M3FNUZ`     | yes       |
    | `fp8_e4m3` | `f8E4M3FN` or `f8E4M3FNUZ`     | yes       |
    | `fp8_e5m2` | `f8E5M2` or `f8E5M2FNUZ`       | yes       |
    | `int8`     | `i8`                           | yes       |

    `fp8` and `fp8_e4m3` store the same bytes; they differ only in the
    warnings the scale rules give (`UNCALIBRATED-QP` fires for `fp8` alone,
    as in vLLM). The FNUZ variants are for AMD gfx942 (MI300) targets.
  }];
}

def KVQ_ScaleRule : I32EnumAttr<"ScaleRule",
    "which rule of the scale-folding table produced a final scale", [
    I32EnumAttrCase<"Checkpoint", 0, "checkpoint">,
    I32EnumAttrCase<"Duplicated", 1, "duplicated">,
    I32EnumAttrCase<"Default", 2, "default">,
    I32EnumAttrCase<"NotQuantized", 3, "not_quantized">,
    I32EnumAttrCase<"Runtime", 4, "runtime">,
    I32EnumAttrCase<"KFallback", 5, "k_fallback">]> {
  let cppNamespace = "::mlir::kvq";
  let genSpecializedAttr = 0;
}

def KVQ_ScaleRuleAttr : EnumAttr<KVQ_Dialect, KVQ_ScaleRule, "scale_rule"> {
  let assemblyFormat = "`<` $value `>`";
  let summary = "the rule that produced a resolved scale";
  let description = [{
    - `checkpoint`: the checkpoint's own value (times 2 on FNUZ targets where
      the rules say so).
    - `duplicated`: one KV scale given (e.g. a legacy `kv_scale`), copied to
      the other as `max(k, v)`.
    - `default`: absent from the checkpoint; 1.0.
    - `not_quantized`: the KV cache is `auto`; K and V are 1.0 whatever the
      checkpoint says.
    - `runtime`: `calculate_kv_scales` is set; 1.0 until computed at run time
      (or for good, when a checkpoint q scale switched calculation off).
    - `k_fallback`: Q taken from K (the `q-fallback=k` option).
  }];
}

def KVQ_ScaleMethod : I32EnumAttr<"ScaleMethod",
    "which producer's scale-folding rules apply to a layer", [
    I32EnumAttrCase<"Base", 0, "base">,
    I32EnumAttrCase<"CompressedTensors", 1, "compressed_tensors">]> {
  let cppNamespace = "::mlir::kvq";
  let genSpecializedAttr = 0;
}

def KVQ_ScaleMethodAttr : EnumAttr<KVQ_Dialect, KVQ_ScaleMethod,
                                   "scale_method"> {
  let assemblyFormat = "`<` $value `>`";
  let summary = "the scale-folding rules of a layer's checkpoint producer";
  let description = [{
    - `base`: vLLM's `BaseKVCacheMethod` (the seed's rules; the default
      when a layer states no method).
    - `compressed_tensors`: vLLM's `CompressedTensorsKVCacheMethod`, for
      checkpoints whose `config.json` declares a compressed-tensors
      `kv_cache_scheme` (llm-compressor): missing scales are 1.0, a single
      KV scale is not duplicated, no prob scale.

    `kvq-import-checkpoint` sets it from the checkpoint's `config.json`;
    `kvq-fold-scales` reads it (its `method` option overrides it).
  }];
}

def KVQ_AttentionPrecision : I32EnumAttr<"AttentionPrecision",
    "the arithmetic of decode attention over a quantized cache", [
    I32EnumAttrCase<"Dequantized", 0, "dequantized">,
    I32EnumAttrCase<"Fp8QK", 1, "fp8_qk">,
    I32EnumAttrCase<"Fp8QKPV", 2, "fp8_qk_pv">]> {
  let cppNamespace = "::mlir::kvq";
  let genSpecializedAttr = 0;
}

def KVQ_AttentionPrecisionAttr : EnumAttr<KVQ_Dialect, KVQ_AttentionPrecision,
                                          "attention_precision"> {
  let assemblyFormat = "`<` $value `>`";
  let summary = "the arithmetic of kvq.paged_attention";
  let description = [{
    - `dequantized`: K and V are dequantized on the fly (exactly: every
      cache value is an f32), Q stays in its own type, everything is
      accumulated in f32.
    - `fp8_qk`: FP8 attention for QK^T: Q is quantized with the layer's Q
      scale to the cache's fp8 format (the store's saturating
      round-to-nearest-even), the scores are sums of products of fp8
      values (each product exact in f32), and the product of the Q and K
      scales is undone on the f32 scores. P.V as in `dequantized`.
    - `fp8_qk_pv`: also P: each probability is quantized with the layer's
      prob scale to the cache's fp8 format before P.V, and the output is
      normalized by the sum of the quantized probabilities (see
      `kvq.paged_attention`).
  }];
}

def KVQ_ScaleKind : I32EnumAttr<"ScaleKind",
    "one of the four attention scales of a layer", [
    I32EnumAttrCase<"K", 0, "k">,
    I32EnumAttrCase<"V", 1, "v">,
    I32EnumAttrCase<"Q", 2, "q">,
    I32EnumAttrCase<"Prob", 3, "prob">]> {
  let cppNamespace = "::mlir::kvq";
  // Names and order of the scales everywhere: attribute fields, checkpoint
  // tensor keys, diagnostics and the layer report's columns.
  let genSpecializedAttr = 0;
}

#endif // KVQ_DIALECT_KVQ_IR_KVQENUMS_TD
