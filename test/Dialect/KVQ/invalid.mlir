// RUN: kvq-opt %s -split-input-file -verify-diagnostics

// One case per diagnostic of the kvq dialect: the verifiers and parsers in
// lib/Dialect/KVQ/IR and the constraints ODS generates from KVQOps.td.
// Symbol and function names state the case.

//===----------------------------------------------------------------------===//
// #kvq.scales (ScalesAttr::verify)
//===----------------------------------------------------------------------===//

// expected-error @+1 {{scale 'k' must be a float or a dense float tensor, got 1 : i32}}
kvq.layer @scales_k_is_an_integer cache(fp8) checkpoint(#kvq.scales<k = 1 : i32>)

// -----

// expected-error @+1 {{scale 'v' must be a float or a dense float tensor, got "0.05"}}
kvq.layer @scales_v_is_a_string cache(fp8) checkpoint(#kvq.scales<v = "0.05">)

// -----

// expected-error @+2 {{scale 'v' must have a float element type, got 'i32'}}
kvq.layer @scales_v_is_an_integer_tensor cache(fp8)
    checkpoint(#kvq.scales<v = dense<1> : tensor<2xi32>>)

// -----

// expected-error @+2 {{scale 'q' must have at least one element, got 'tensor<0xf32>'}}
kvq.layer @scales_q_is_an_empty_tensor cache(fp8)
    checkpoint(#kvq.scales<q = dense<> : tensor<0xf32>>)

// -----

// expected-error @+2 {{scale 'prob' must have rank at most 3 (per-tensor or per-head), got rank 4}}
kvq.layer @scales_prob_of_rank_4 cache(fp8)
    checkpoint(#kvq.scales<prob = dense<1.0> : tensor<1x1x1x1xf32>>)

// -----

//===----------------------------------------------------------------------===//
// #kvq.scales (generated parser)
//===----------------------------------------------------------------------===//

// expected-error @+1 {{duplicate or unknown struct parameter name: kv}}
kvq.layer @scales_unknown_field cache(fp8) checkpoint(#kvq.scales<kv = 0.05 : f32>)

// -----

// expected-error @+2 {{duplicate or unknown struct parameter name: k}}
kvq.layer @scales_duplicate_field cache(fp8)
    checkpoint(#kvq.scales<k = 0.05 : f32, k = 0.07 : f32>)

// -----

// expected-error @+2 {{expected '='}}
kvq.layer @scales_field_without_name cache(fp8)
    checkpoint(#kvq.scales<dense<[0.1]> : tensor<1xf32>>)

// -----

//===----------------------------------------------------------------------===//
// #kvq.resolved_scales (ResolvedScalesAttr::verify and ::parse)
//===----------------------------------------------------------------------===//

// Note: "resolved scale '...' must be an f32" cannot be reached from text (the
// parser reads every value as f32); it guards the C++ builders.

// expected-error @+2 {{resolved scale 'v' is marked doubled, but the scales were not folded for an FNUZ target (no 'fnuz')}}
kvq.layer @resolved_doubled_without_fnuz cache(fp8)
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 checkpoint doubled,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'k' must be finite and positive, got NaN}}
kvq.layer @resolved_k_is_nan cache(fp8)
    resolved(#kvq.resolved_scales<k = 0x7FC00000 checkpoint, v = 1.0 checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'v' must be finite and positive, got 0}}
kvq.layer @resolved_v_is_zero cache(fp8)
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 0.0 checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'q' must be finite and positive, got -1}}
kvq.layer @resolved_q_is_negative cache(fp8)
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 checkpoint,
                                  q = -1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'prob' must be finite and positive, got +Inf}}
kvq.layer @resolved_prob_is_infinite cache(fp8)
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 checkpoint,
                                  q = 1.0 default, prob = 0x7F800000 default>)

// -----

// A literal beyond the f32 range becomes +Inf and is rejected as such.
// expected-error @+2 {{resolved scale 'k' must be finite and positive, got +Inf}}
kvq.layer @resolved_k_overflows_f32 cache(fp8)
    resolved(#kvq.resolved_scales<k = 1.0e40 checkpoint, v = 1.0 checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

kvq.layer @resolved_unknown_rule cache(fp8)
    // expected-error @+1 {{unknown scale rule 'guessed'}}
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 guessed,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

kvq.layer @resolved_fields_out_of_order cache(fp8)
    // expected-error @+1 {{expected 'v'}}
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, q = 1.0 default,
                                  v = 1.0 checkpoint, prob = 1.0 default>)

// -----

kvq.layer @resolved_missing_prob cache(fp8)
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 checkpoint,
    // expected-error @+1 {{expected ','}}
                                  q = 1.0 default>)

// -----

kvq.layer @resolved_value_is_an_integer_literal cache(fp8)
    // expected-error @+2 {{unexpected decimal integer literal for a floating point value}}
    // expected-note @+1 {{add a trailing dot to make the literal a float}}
    resolved(#kvq.resolved_scales<k = 1 checkpoint, v = 1.0 checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

kvq.layer @resolved_misspelled_fnuz cache(fp8)
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 checkpoint,
    // expected-error @+1 {{expected 'fnuz'}}
                                  q = 1.0 default, prob = 1.0 default, fnux>)

// -----

// expected-error @+2 {{resolved scale 'k' of head 1 must be finite and positive, got 0}}
kvq.layer @resolved_per_head_k_head_is_zero cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.0] checkpoint, v = [1.0, 1.0] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'q' of head 0 must be finite and positive, got NaN}}
kvq.layer @resolved_per_head_q_head_is_nan cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.5] checkpoint, v = [1.0, 1.0] checkpoint,
                                  q = [0x7FC00000, 1.0] checkpoint, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'v' of head 2 must be finite and positive, got -2}}
kvq.layer @resolved_per_head_v_head_is_negative cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.5, 0.5] checkpoint, v = [1.0, 1.0, -2.0] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'k' of head 0 must be finite and positive, got +Inf}}
kvq.layer @resolved_per_head_k_head_overflows_f32 cache(fp8)
    resolved(#kvq.resolved_scales<k = [1.0e40] checkpoint, v = [1.0] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scales 'k' and 'v' must be both per-head or both per-tensor, got per-head 'k' and per-tensor 'v'}}
kvq.layer @resolved_per_head_k_per_tensor_v cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.5] checkpoint, v = 1.0 checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{per-head resolved scale 'v' has 3 head(s), expected 2 like 'k'}}
kvq.layer @resolved_per_head_v_length_differs cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.5] checkpoint, v = [1.0, 1.0, 1.0] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+2 {{per-head resolved scale 'q' has 4 head(s), expected 2 like 'k'}}
kvq.layer @resolved_per_head_q_not_reduced_to_kv_heads cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.5] checkpoint, v = [1.0, 1.0] checkpoint,
                                  q = [1.0, 1.0, 1.0, 1.0] checkpoint, prob = 1.0 default>)

// -----

// expected-error @+2 {{resolved scale 'k' is marked doubled, but the scales were not folded for an FNUZ target (no 'fnuz')}}
kvq.layer @resolved_per_head_doubled_without_fnuz cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.5] checkpoint doubled, v = [1.0, 1.0] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

kvq.layer @resolved_per_head_prob cache(fp8)
    resolved(#kvq.resolved_scales<k = [0.5, 0.5] checkpoint, v = [1.0, 1.0] checkpoint,
    // expected-error @+1 {{resolved scale 'prob' has no per-head form (one value for all heads)}}
                                  q = 1.0 default, prob = [1.0, 1.0] default>)

// -----

kvq.layer @resolved_per_head_empty_list cache(fp8)
    // expected-error @+1 {{expected floating point literal}}
    resolved(#kvq.resolved_scales<k = [] checkpoint, v = [1.0] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// The lexer balances the brackets of an attribute's body before parsing it.
kvq.layer @resolved_per_head_missing_bracket cache(fp8)
    // expected-error @+1 {{unbalanced '[' character in pretty dialect name}}
    resolved(#kvq.resolved_scales<k = [0.5, 0.5 checkpoint, v = [1.0, 1.0] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

//===----------------------------------------------------------------------===//
// Enum attributes (generated parsers)
//===----------------------------------------------------------------------===//

// expected-error @+2 {{expected ::mlir::kvq::KVCacheDtype to be one of: auto, fp8, fp8_e4m3, fp8_e5m2, int8}}
// expected-error @+1 {{failed to parse KVQ_KVCacheDtypeAttr parameter 'value'}}
func.func @kv_cache_dtype_attr_unknown() attributes {dtype = #kvq.kv_cache_dtype<fp4>} {
  return
}

// -----

// expected-error @+2 {{expected ::mlir::kvq::ScaleRule to be one of: checkpoint, duplicated, default, not_quantized, runtime, k_fallback}}
// expected-error @+1 {{failed to parse KVQ_ScaleRuleAttr parameter 'value'}}
func.func @scale_rule_attr_unknown() attributes {rule = #kvq.scale_rule<guessed>} {
  return
}

// -----

// expected-error @+1 {{unknown attribute `scale` in dialect `kvq`}}
func.func @unknown_kvq_attribute() attributes {a = #kvq.scale<k = 1.0 : f32>} {
  return
}

// -----

//===----------------------------------------------------------------------===//
// kvq.layer (parser, LayerOp::verify, ODS constraints)
//===----------------------------------------------------------------------===//

// expected-error @+1 {{unknown kv cache dtype 'fp4', expected auto, fp8, fp8_e4m3, fp8_e5m2 or int8}}
kvq.layer @layer_unknown_cache_dtype cache(fp4)

// -----

// expected-error @+2 {{invalid kind of attribute specified}}
kvq.layer @layer_checkpoint_holds_resolved_scales cache(fp8)
    checkpoint(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 checkpoint,
                                    q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+1 {{'kvq.layer' op has both raw 'checkpoint' scales and 'resolved' scales; a layer carries one or the other}}
kvq.layer @layer_checkpoint_and_resolved cache(fp8)
    checkpoint(#kvq.scales<k = 1.0 : f32>)
    resolved(#kvq.resolved_scales<k = 1.0 checkpoint, v = 1.0 duplicated,
                                  q = 1.0 default, prob = 1.0 default>)

// -----

// expected-error @+1 {{'kvq.layer' op expects a non-empty checkpoint prefix}}
kvq.layer @layer_empty_prefix prefix("") cache(fp8)

// -----

// expected-error @+1 {{'kvq.layer' op checkpoint_tensors: unknown scale 'kv', expected k, v, q or prob}}
kvq.layer @layer_checkpoint_tensors_unknown_scale cache(fp8)
    {checkpoint_tensors = {kv = "model.layers.0.self_attn.kv_scale"}}

// -----

// expected-error @+1 {{'kvq.layer' op checkpoint_tensors: expects a tensor name string for scale 'k', got 1 : i64}}
kvq.layer @layer_checkpoint_tensors_name_not_a_string cache(fp8)
    {checkpoint_tensors = {k = 1}}

// -----

// expected-error @+2 {{'kvq.layer' op attribute 'checkpoint_tensors' failed to satisfy constraint: dictionary of named attribute values}}
kvq.layer @layer_checkpoint_tensors_not_a_dictionary cache(fp8)
    {checkpoint_tensors = ["model.layers.0.self_attn.k_scale"]}

// -----

// expected-error @+1 {{'kvq.layer' op requires attribute 'kv_cache_dtype'}}
"kvq.layer"() <{sym_name = "layer_generic_without_cache_dtype"}> : () -> ()

// -----

// expected-error @+1 {{Invalid attribute `prefix` in property conversion: 3 : i64}}
"kvq.layer"() <{sym_name = "layer_generic_prefix_not_a_string",
                kv_cache_dtype = #kvq.kv_cache_dtype<fp8>, prefix = 3}> : () -> ()

// -----

// expected-note @+1 {{see existing symbol definition here}}
kvq.layer @layer_defined_twice cache(fp8)
// expected-error @+1 {{redefinition of symbol named 'layer_defined_twice'}}
kvq.layer @layer_defined_twice cache(fp8_e5m2)

// -----

//===----------------------------------------------------------------------===//
// kvq.cache_store / kvq.cache_load: shapes (verifyCacheShapes)
//===----------------------------------------------------------------------===//

kvq.layer @l cache(fp8)
func.func @store_keys_of_rank_2(%k: memref<8x128xbf16>,
                                %kc: memref<?x16x8x128xf8E4M3FN>,
                                %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects keys and values of rank 3 [num_tokens, num_kv_heads, head_size], got 'memref<8x128xbf16>'}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @load_outputs_of_rank_4(%o: memref<?x1x8x128xbf16>,
                                  %kc: memref<?x16x8x128xf8E4M3FN>,
                                  %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op expects outputs of rank 3 [num_tokens, num_kv_heads, head_size], got 'memref<?x1x8x128xbf16>'}}
  kvq.cache_load @l (%kc, %kc) at %slots into (%o, %o)
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x1x8x128xbf16>
  return
}

// -----

kvq.layer @l cache(int8)
func.func @store_integer_keys(%k: memref<?x8x128xi8>, %kc: memref<?x16x8x128xi8>,
                              %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects keys and values of a float element type, got 'i8'}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xi8>, memref<?x16x8x128xi8>, memref<?xi64>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_caches_of_rank_3(%k: memref<?x8x128xbf16>,
                                  %kc: memref<16x8x128xf8E4M3FN>,
                                  %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects caches of rank 4 [num_blocks, block_size, num_kv_heads, head_size], got 'memref<16x8x128xf8E4M3FN>'}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_4_tokens_5_slots(%k: memref<4x8x128xbf16>,
                                  %kc: memref<?x16x8x128xf8E4M3FN>,
                                  %slots: memref<5xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects one slot per token: keys and values have 4 tokens, slot_mapping has 5}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<4x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<5xi64>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_4_heads_into_8_head_caches(%k: memref<?x4x128xbf16>,
                                            %kc: memref<?x16x8x128xf8E4M3FN>,
                                            %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects the same num_kv_heads in keys and values (4) and caches (8)}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<?x4x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @load_head_size_64_from_128(%o: memref<?x8x64xbf16>,
                                      %kc: memref<?x16x8x128xf8E4M3FN>,
                                      %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op expects the same head_size in outputs (64) and caches (128)}}
  kvq.cache_load @l (%kc, %kc) at %slots into (%o, %o)
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x64xbf16>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_block_size_0(%k: memref<?x8x128xbf16>,
                              %kc: memref<?x0x8x128xf8E4M3FN>,
                              %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects a non-zero block_size}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x0x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

//===----------------------------------------------------------------------===//
// kvq.cache_store / kvq.cache_load: the layer (verifyLayerUse and
// checkCacheElementType)
//===----------------------------------------------------------------------===//

func.func @store_unknown_layer(%k: memref<?x8x128xbf16>,
                               %kc: memref<?x16x8x128xf8E4M3FN>,
                               %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op references unknown layer @model.layers.99}}
  kvq.cache_store @model.layers.99 (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// -----

// A symbol that exists but is not a kvq.layer.
func.func @load_from_a_function(%o: memref<?x8x128xbf16>,
                                %kc: memref<?x16x8x128xf8E4M3FN>,
                                %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op references @load_from_a_function, which is a 'func.func', not a kvq.layer}}
  kvq.cache_load @load_from_a_function (%kc, %kc) at %slots into (%o, %o)
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// -----

kvq.layer @cache_auto cache(auto)
func.func @store_auto_bf16_into_f16_cache(%k: memref<?x8x128xbf16>,
                                          %kc: memref<?x16x8x128xf16>,
                                          %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects the cache element type to be the activation type bf16 for kv cache dtype 'auto', got f16 (layer @cache_auto)}}
  kvq.cache_store @cache_auto (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf16>, memref<?xi64>
  return
}

// -----

kvq.layer @cache_fp8 cache(fp8)
func.func @store_fp8_into_f8E5M2_cache(%k: memref<?x8x128xbf16>,
                                       %kc: memref<?x16x8x128xf8E5M2>,
                                       %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects cache element type f8E4M3FN or f8E4M3FNUZ for kv cache dtype 'fp8', got f8E5M2 (layer @cache_fp8)}}
  kvq.cache_store @cache_fp8 (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E5M2>, memref<?xi64>
  return
}

// -----

kvq.layer @cache_fp8_e4m3 cache(fp8_e4m3)
func.func @load_fp8_e4m3_from_i8_cache(%o: memref<?x8x128xbf16>,
                                       %kc: memref<?x16x8x128xi8>,
                                       %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op expects cache element type f8E4M3FN or f8E4M3FNUZ for kv cache dtype 'fp8_e4m3', got i8 (layer @cache_fp8_e4m3)}}
  kvq.cache_load @cache_fp8_e4m3 (%kc, %kc) at %slots into (%o, %o)
      : memref<?x16x8x128xi8>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// -----

kvq.layer @cache_fp8_e5m2 cache(fp8_e5m2)
func.func @load_fp8_e5m2_from_f8E4M3FN_cache(%o: memref<?x8x128xbf16>,
                                             %kc: memref<?x16x8x128xf8E4M3FN>,
                                             %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op expects cache element type f8E5M2 or f8E5M2FNUZ for kv cache dtype 'fp8_e5m2', got f8E4M3FN (layer @cache_fp8_e5m2)}}
  kvq.cache_load @cache_fp8_e5m2 (%kc, %kc) at %slots into (%o, %o)
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// -----

kvq.layer @cache_int8 cache(int8)
func.func @store_int8_into_ui8_cache(%k: memref<?x8x128xbf16>,
                                     %kc: memref<?x16x8x128xui8>,
                                     %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects cache element type i8 for kv cache dtype 'int8', got ui8 (layer @cache_int8)}}
  kvq.cache_store @cache_int8 (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xui8>, memref<?xi64>
  return
}

// -----

//===----------------------------------------------------------------------===//
// kvq.cache_store / kvq.cache_load: ODS-generated constraints
//===----------------------------------------------------------------------===//

kvq.layer @l cache(fp8)
func.func @store_i32_slot_mapping(%k: memref<?x8x128xbf16>,
                                  %kc: memref<?x16x8x128xf8E4M3FN>,
                                  %slots: memref<?xi32>) {
  // expected-error @+1 {{'kvq.cache_store' op operand #4 must be 1-D tensor or memref of i64, but got 'memref<?xi32>'}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi32>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @load_2d_slot_mapping(%o: memref<?x8x128xbf16>,
                                %kc: memref<?x16x8x128xf8E4M3FN>,
                                %slots: memref<?x1xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op operand #2 must be 1-D tensor or memref of i64, but got 'memref<?x1xi64>'}}
  kvq.cache_load @l (%kc, %kc) at %slots into (%o, %o)
      : memref<?x16x8x128xf8E4M3FN>, memref<?x1xi64>, memref<?x8x128xbf16>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_keys_bf16_values_f16(%k: memref<?x8x128xbf16>,
                                      %v: memref<?x8x128xf16>,
                                      %kc: memref<?x16x8x128xf8E4M3FN>,
                                      %slots: memref<?xi64>) {
  // The custom form has one type for both: only the generic form can differ.
  // expected-error @+1 {{'kvq.cache_store' op failed to verify that all of {key, value} have same type}}
  "kvq.cache_store"(%k, %v, %kc, %kc, %slots) <{layer = @l}>
      : (memref<?x8x128xbf16>, memref<?x8x128xf16>, memref<?x16x8x128xf8E4M3FN>,
         memref<?x16x8x128xf8E4M3FN>, memref<?xi64>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_key_cache_f8E4M3FN_value_cache_f8E4M3FNUZ(
    %k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %vc: memref<?x16x8x128xf8E4M3FNUZ>, %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op failed to verify that all of {key_cache, value_cache} have same type}}
  "kvq.cache_store"(%k, %k, %kc, %vc, %slots) <{layer = @l}>
      : (memref<?x8x128xbf16>, memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
         memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @load_key_cache_16_value_cache_32_blocks(
    %o: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %vc: memref<?x32x8x128xf8E4M3FN>, %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op failed to verify that all of {key_cache, value_cache} have same type}}
  "kvq.cache_load"(%kc, %vc, %slots, %o, %o) <{layer = @l}>
      : (memref<?x16x8x128xf8E4M3FN>, memref<?x32x8x128xf8E4M3FN>, memref<?xi64>,
         memref<?x8x128xbf16>, memref<?x8x128xbf16>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @load_key_out_bf16_value_out_f32(
    %ko: memref<?x8x128xbf16>, %vo: memref<?x8x128xf32>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_load' op failed to verify that all of {key_out, value_out} have same type}}
  "kvq.cache_load"(%kc, %kc, %slots, %ko, %vo) <{layer = @l}>
      : (memref<?x16x8x128xf8E4M3FN>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>,
         memref<?x8x128xbf16>, memref<?x8x128xf32>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_tensor_keys(%k: tensor<?x8x128xbf16>,
                             %kc: memref<?x16x8x128xf8E4M3FN>,
                             %slots: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects all operands to be memrefs (the memref form) or all ranked tensors (the tensor form), got 'memref<?x16x8x128xf8E4M3FN>' with 'tensor<?x8x128xbf16>'}}
  "kvq.cache_store"(%k, %k, %kc, %kc, %slots) <{layer = @l}>
      : (tensor<?x8x128xbf16>, tensor<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
         memref<?x16x8x128xf8E4M3FN>, memref<?xi64>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_tensor_caches_without_results(
    %k: tensor<?x8x128xbf16>, %kc: tensor<?x16x8x128xf8E4M3FN>,
    %slots: tensor<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expected the number of tensor results (0) to be equal to the number of output tensors (2)}}
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @store_nested_layer_reference(%k: memref<?x8x128xbf16>,
                                        %kc: memref<?x16x8x128xf8E4M3FN>,
                                        %slots: memref<?xi64>) {
  // expected-error @+1 {{Invalid attribute `layer` in property conversion: @l::@m}}
  "kvq.cache_store"(%k, %k, %kc, %kc, %slots) <{layer = @l::@m}>
      : (memref<?x8x128xbf16>, memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>,
         memref<?x16x8x128xf8E4M3FN>, memref<?xi64>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @attention_query_rank_2(%q: memref<?x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects queries of rank 3 [num_seqs, num_heads, head_size], got 'memref<?x128xbf16>'}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_query_f64(%q: memref<?x32x128xf64>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects queries of element type bf16, f16 or f32, got 'f64'}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x32x128xf64>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_cache_rank_3(%q: memref<?x32x128xbf16>, %c: memref<?x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects caches of rank 4 [num_blocks, block_size, num_kv_heads, head_size], got 'memref<?x8x128xf8E4M3FN>'}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x32x128xbf16>, memref<?x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_batch_mismatch(%q: memref<4x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<3x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects one block table row and one context length per sequence: queries have 4 sequences, block_tables 3, context_lens ?}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<4x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<3x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_head_size_mismatch(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x64xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects the same head_size in queries (128) and caches (64)}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x32x128xbf16>, memref<?x16x8x64xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_zero_block_size(%q: memref<?x32x128xbf16>, %c: memref<?x0x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects non-zero num_kv_heads, block_size and head_size, got caches 'memref<?x0x8x128xf8E4M3FN>' and queries 'memref<?x32x128xbf16>'}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x32x128xbf16>, memref<?x0x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_heads_not_multiple(%q: memref<?x12x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects num_heads (12) to be a multiple of num_kv_heads (8)}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x12x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_negative_scale(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects a finite positive softmax scale, got -5.000000e-01}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) scale(-0.5) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(int8)
func.func @attention_fp8_mode_on_int8(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xi8>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op precision 'fp8_qk' computes on fp8 values and needs an fp8 cache, got 'i8'}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) precision(fp8_qk) : memref<?x32x128xbf16>, memref<?x16x8x128xi8>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(auto)
func.func @attention_fp8_mode_on_auto(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xbf16>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op precision 'fp8_qk_pv' computes on fp8 values and needs an fp8 cache, got 'bf16'}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) precision(fp8_qk_pv) : memref<?x32x128xbf16>, memref<?x16x8x128xbf16>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

kvq.layer @l cache(fp8)
func.func @attention_cache_type_vs_layer(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E5M2>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects cache element type f8E4M3FN or f8E4M3FNUZ for kv cache dtype 'fp8', got f8E5M2 (layer @l)}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E5M2>, memref<?x?xi32>, memref<?xi32>
  return
}
// -----

func.func @attention_unknown_layer(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op references unknown layer @l}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @attention_out_type_differs(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>, %o: memref<?x32x128xf32>) {
  // expected-error @+1 {{'kvq.paged_attention' op failed to verify that all of {query, out} have same type}}
  "kvq.paged_attention"(%q, %c, %c, %bt, %cl, %o) <{layer = @l}> : (memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>, memref<?x32x128xf32>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @attention_block_tables_i64(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi64>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op operand #3 must be 2-D tensor or memref of i32, but got 'memref<?x?xi64>'}}
  "kvq.paged_attention"(%q, %c, %c, %bt, %cl, %q) <{layer = @l}> : (memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi64>, memref<?xi32>, memref<?x32x128xbf16>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @attention_unknown_precision(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{unknown attention precision 'bf16', expected dequantized, fp8_qk or fp8_qk_pv}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) precision(bf16) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @attention_mixed_forms(%q: tensor<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects all operands to be memrefs (the memref form) or all ranked tensors (the tensor form), got 'memref<?x16x8x128xf8E4M3FN>' with 'tensor<?x32x128xbf16>'}}
  "kvq.paged_attention"(%q, %c, %c, %bt, %cl, %q) <{layer = @l}> : (tensor<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>, tensor<?x32x128xbf16>) -> tensor<?x32x128xbf16>
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @attention_strided_workspace(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>, %ws: memref<?xi8, strided<[2]>>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects a contiguous workspace, got 'memref<?xi8, strided<[2]>>'}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) workspace(%ws : memref<?xi8, strided<[2]>>) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

// Per-head scales are one per KV head of the caches (dim 2).
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [5.000000e-02, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @attention_per_head_count(%q: memref<?x32x128xbf16>, %c: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @+1 {{'kvq.paged_attention' op expects a cache of 2 KV heads, one per per-head scale of layer @l, got 8}}
  kvq.paged_attention @l (%q) cache(%c, %c) blocks(%bt, %cl) into(%q) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = [5.000000e-02, 6.000000e-02] checkpoint, v = [5.000000e-02, 7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @store_per_head_count(%k: memref<?x4x128xbf16>, %c: memref<?x16x4x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.cache_store' op expects a cache of 2 KV heads, one per per-head scale of layer @l, got 4}}
  kvq.cache_store @l (%k, %k) into (%c, %c) at %s : memref<?x4x128xbf16>, memref<?x16x4x128xf8E4M3FN>, memref<?xi64>
  return
}
