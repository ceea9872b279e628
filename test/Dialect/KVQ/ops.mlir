// RUN: kvq-opt %s | kvq-opt | FileCheck %s
// RUN: kvq-opt %s --mlir-print-op-generic | kvq-opt | FileCheck %s
// RUN: kvq-opt %s --verify-roundtrip | FileCheck %s

// Round trip of every kvq attribute form, every kvq.layer clause and the
// cache ops on every cache element type, printed and re-parsed, and through
// the generic form (which catches an attribute that only parses with its
// `#kvq.` prefix elided).

//===----------------------------------------------------------------------===//
// kvq.layer clauses
//===----------------------------------------------------------------------===//

// CHECK-LABEL: kvq.layer @layer.only_cache_dtype cache(fp8){{$}}
kvq.layer @layer.only_cache_dtype cache(fp8)

// CHECK-LABEL: kvq.layer @layer.with_prefix prefix("model.layers.7") cache(fp8){{$}}
kvq.layer @layer.with_prefix prefix("model.layers.7") cache(fp8)

// CHECK-LABEL: kvq.layer @layer.cache_auto cache(auto){{$}}
kvq.layer @layer.cache_auto cache(auto)

// CHECK-LABEL: kvq.layer @layer.cache_fp8_e4m3 cache(fp8_e4m3){{$}}
kvq.layer @layer.cache_fp8_e4m3 cache(fp8_e4m3)

// CHECK-LABEL: kvq.layer @layer.cache_fp8_e5m2 cache(fp8_e5m2){{$}}
kvq.layer @layer.cache_fp8_e5m2 cache(fp8_e5m2)

// CHECK-LABEL: kvq.layer @layer.cache_int8 cache(int8){{$}}
kvq.layer @layer.cache_int8 cache(int8)

// CHECK-LABEL: kvq.layer @layer.calculate_kv_scales cache(fp8) calculate_kv_scales{{$}}
kvq.layer @layer.calculate_kv_scales cache(fp8) calculate_kv_scales

// The `#kvq.` prefix of a clause's attribute is optional and not printed.
// CHECK-LABEL: kvq.layer @layer.checkpoint_full_form cache(fp8) checkpoint(<k = 5.000000e-02 : f32, v = 7.000000e-02 : f32>){{$}}
kvq.layer @layer.checkpoint_full_form cache(fp8)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)

// CHECK-LABEL: kvq.layer @layer.checkpoint_short_form cache(fp8) checkpoint(<k = 5.000000e-02 : f32>){{$}}
kvq.layer @layer.checkpoint_short_form cache(fp8) checkpoint(<k = 0.05 : f32>)

// CHECK-LABEL: kvq.layer @layer.resolved cache(fp8_e4m3)
// CHECK-SAME:    resolved(<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>){{$}}
kvq.layer @layer.resolved cache(fp8_e4m3)
    resolved(#kvq.resolved_scales<k = 0.05 checkpoint, v = 0.07 checkpoint,
                                  q = 1.0 default, prob = 1.0 default>)

// CHECK-LABEL: kvq.layer @layer.checkpoint_tensors cache(fp8)
// CHECK-SAME:    checkpoint(<k = 5.000000e-02 : f32, v = 7.000000e-02 : f32>)
// CHECK-SAME:    {checkpoint_tensors = {k = "model.layers.3.self_attn.k_scale", prob = "model.layers.3.self_attn.prob_scale", q = "model.layers.3.self_attn.q_scale", v = "model.layers.3.self_attn.v_scale"}}
kvq.layer @layer.checkpoint_tensors cache(fp8)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)
    {checkpoint_tensors = {q = "model.layers.3.self_attn.q_scale",
                           k = "model.layers.3.self_attn.k_scale",
                           v = "model.layers.3.self_attn.v_scale",
                           prob = "model.layers.3.self_attn.prob_scale"}}

// Every clause at once (prefix, dtype, calculate_kv_scales, resolved, and an
// extra discardable attribute kept in the attribute dictionary).
// CHECK-LABEL: kvq.layer @layer.all_clauses prefix("model.layers.0") cache(fp8_e5m2) calculate_kv_scales
// CHECK-SAME:    resolved(<k = 1.000000e+00 runtime, v = 1.000000e+00 runtime, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// CHECK-SAME:    {checkpoint_tensors = {q = "model.layers.0.self_attn.q_scale"}, note = "kept"}
kvq.layer @layer.all_clauses prefix("model.layers.0") cache(fp8_e5m2)
    calculate_kv_scales
    resolved(#kvq.resolved_scales<k = 1.0 runtime, v = 1.0 runtime,
                                  q = 1.0 default, prob = 1.0 default>)
    {checkpoint_tensors = {q = "model.layers.0.self_attn.q_scale"},
     note = "kept"}

//===----------------------------------------------------------------------===//
// #kvq.scales
//===----------------------------------------------------------------------===//

// Fields print in declaration order (q, k, v, prob) whatever the input order;
// the float type records the checkpoint dtype.
// CHECK-LABEL: func.func @scales_each_field_and_float_type()
// CHECK-SAME:    a_all_fields = #kvq.scales<k = 5.000000e-02 : f32, v = 7.000730e-02 : f16, q = 1.000980e-01 : bf16, prob = 2.000000e-01 : f64>
// CHECK-SAME:    b_only_q = #kvq.scales<q = 1.250000e-01 : f32>
// CHECK-SAME:    c_only_k = #kvq.scales<k = 1.250000e-01 : f16>
// CHECK-SAME:    d_only_v = #kvq.scales<v = 1.250000e-01 : bf16>
// CHECK-SAME:    e_only_prob = #kvq.scales<prob = 1.250000e-01 : f64>
// CHECK-SAME:    f_f64_full_precision = #kvq.scales<k = 0.123456789012345 : f64>
// CHECK-SAME:    g_empty = #kvq.scales<>
func.func @scales_each_field_and_float_type() attributes {
  a_all_fields = #kvq.scales<k = 0.05 : f32, v = 0.07 : f16, q = 0.1 : bf16, prob = 0.2 : f64>,
  b_only_q = #kvq.scales<q = 0.125 : f32>,
  c_only_k = #kvq.scales<k = 0.125 : f16>,
  d_only_v = #kvq.scales<v = 0.125 : bf16>,
  e_only_prob = #kvq.scales<prob = 0.125 : f64>,
  f_f64_full_precision = #kvq.scales<k = 0.123456789012345 : f64>,
  g_empty = #kvq.scales<>
} {
  return
}

// The attribute mirrors the checkpoint: zero, negative, NaN and infinite
// values are kept for kvq-fold-scales to diagnose.
// CHECK-LABEL: func.func @scales_suspicious_values_are_kept()
// CHECK-SAME:    scales = #kvq.scales<k = 0.000000e+00 : f32, v = -1.000000e+00 : f32, q = 0x7F800000 : f32, prob = 0x7FC00000 : f32>
func.func @scales_suspicious_values_are_kept() attributes {
  scales = #kvq.scales<k = 0.0 : f32, v = -1.0 : f32, q = 0x7F800000 : f32, prob = 0x7FC00000 : f32>
} {
  return
}

// Dense tensors: one element (per-tensor), per-head, rank 0 to 3, splat, and
// each float element type.
// CHECK-LABEL: func.func @scales_dense_tensors()
// CHECK-SAME:    a_per_head = #kvq.scales<k = dense<[5.000000e-01, 2.500000e-01, 1.250000e-01, 6.250000e-02, 1.000000e+00, 2.000000e+00, 4.000000e+00, 8.000000e+00]> : tensor<8xf32>, v = dense<5.000000e-01> : tensor<1xbf16>>
// CHECK-SAME:    b_ranks = #kvq.scales<k = dense<{{\[\[}}1.000000e+00, 2.000000e+00]]> : tensor<1x2xf16>, v = dense<1.000000e+00> : tensor<2x2x2xf32>, q = dense<2.500000e-01> : tensor<f64>>
// CHECK-SAME:    c_mixed = #kvq.scales<k = dense<[1.000000e-01, 2.000000e-01]> : tensor<2xf32>, q = 1.000000e+00 : f32, prob = dense<1.000000e+00> : tensor<1xf64>>
func.func @scales_dense_tensors() attributes {
  a_per_head = #kvq.scales<k = dense<[0.5, 0.25, 0.125, 0.0625, 1.0, 2.0, 4.0, 8.0]>
                                   : tensor<8xf32>, v = dense<0.5> : tensor<1xbf16>>,
  b_ranks = #kvq.scales<k = dense<[[1.0, 2.0]]> : tensor<1x2xf16>, v = dense<1.0> : tensor<2x2x2xf32>, q = dense<0.25> : tensor<f64>>,
  c_mixed = #kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, q = 1.0 : f32, prob = dense<1.0> : tensor<1xf64>>
} {
  return
}

//===----------------------------------------------------------------------===//
// #kvq.resolved_scales, #kvq.scale_rule, #kvq.kv_cache_dtype
//===----------------------------------------------------------------------===//

// Each rule once, values in f32 (1.0e-45 is the smallest f32 denormal), and
// the trailing `fnuz` marker.
// CHECK-LABEL: func.func @resolved_scales_each_rule()
// CHECK-SAME:    a = #kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 5.000000e-02 duplicated, q = 1.000000e+00 default, prob = 1.000000e+00 not_quantized>
// CHECK-SAME:    b = #kvq.resolved_scales<k = 1.000000e+00 runtime, v = 1.230000e-02 checkpoint, q = 1.000000e+00 k_fallback, prob = 6.550400e+04 default>
// CHECK-SAME:    c_fnuz = #kvq.resolved_scales<k = 1.000000e-01 checkpoint, v = 1.000000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.401300e-45 default, fnuz>
func.func @resolved_scales_each_rule() attributes {
  a = #kvq.resolved_scales<k = 0.05 checkpoint, v = 0.05 duplicated,
                           q = 1.0 default, prob = 1.0 not_quantized>,
  b = #kvq.resolved_scales<k = 1.0 runtime, v = 0.0123 checkpoint,
                           q = 1.0 k_fallback, prob = 65504.0 default>,
  c_fnuz = #kvq.resolved_scales<k = 0.1 checkpoint, v = 0.1 checkpoint,
                                q = 1.0 default, prob = 1.0e-45 default, fnuz>
} {
  return
}

// Per-head scales: a list per field, one value per KV head; q already
// reduced to KV heads. A per-tensor q (or prob) sits beside per-head k and v.
// CHECK-LABEL: func.func @resolved_scales_per_head()
// CHECK-SAME:    all = #kvq.resolved_scales<k = [1.000000e-01, 2.000000e-01] checkpoint, v = [3.000000e-01, 4.000000e-01] checkpoint, q = [5.000000e-01, 6.000000e-01] checkpoint, prob = 1.000000e+00 default>
// CHECK-SAME:    fnuz_doubled = #kvq.resolved_scales<k = [2.000000e-01, 4.000000e-01, 6.000000e-01] checkpoint doubled, v = [2.000000e-01, 4.000000e-01, 6.000000e-01] duplicated doubled, q = 1.000000e+00 default, prob = 1.000000e+00 default, fnuz>
// CHECK-SAME:    one_head = #kvq.resolved_scales<k = [5.000000e-02] checkpoint, v = [7.000000e-02] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>
// CHECK-SAME:    q_only = #kvq.resolved_scales<k = 1.000000e+00 not_quantized, v = 1.000000e+00 not_quantized, q = [2.500000e-01, 1.250000e-01] checkpoint, prob = 1.000000e+00 default>
func.func @resolved_scales_per_head() attributes {
  all = #kvq.resolved_scales<k = [0.1, 0.2] checkpoint,
                             v = [0.3, 0.4] checkpoint,
                             q = [0.5, 0.6] checkpoint, prob = 1.0 default>,
  fnuz_doubled = #kvq.resolved_scales<
      k = [0.2, 0.4, 0.6] checkpoint doubled,
      v = [0.2, 0.4, 0.6] duplicated doubled, q = 1.0 default,
      prob = 1.0 default, fnuz>,
  one_head = #kvq.resolved_scales<k = [0.05] checkpoint, v = [0.07] checkpoint,
                                  q = 1.0 default, prob = 1.0 default>,
  q_only = #kvq.resolved_scales<k = 1.0 not_quantized, v = 1.0 not_quantized,
                                q = [0.25, 0.125] checkpoint,
                                prob = 1.0 default>
} {
  return
}

// CHECK-LABEL: func.func @enum_attrs_standalone()
// CHECK-SAME:    dtype_auto = #kvq.kv_cache_dtype<auto>
// CHECK-SAME:    dtype_fp8 = #kvq.kv_cache_dtype<fp8>
// CHECK-SAME:    dtype_fp8_e4m3 = #kvq.kv_cache_dtype<fp8_e4m3>
// CHECK-SAME:    dtype_fp8_e5m2 = #kvq.kv_cache_dtype<fp8_e5m2>
// CHECK-SAME:    dtype_int8 = #kvq.kv_cache_dtype<int8>
// CHECK-SAME:    rule_checkpoint = #kvq.scale_rule<checkpoint>
// CHECK-SAME:    rule_default = #kvq.scale_rule<default>
// CHECK-SAME:    rule_duplicated = #kvq.scale_rule<duplicated>
// CHECK-SAME:    rule_k_fallback = #kvq.scale_rule<k_fallback>
// CHECK-SAME:    rule_not_quantized = #kvq.scale_rule<not_quantized>
// CHECK-SAME:    rule_runtime = #kvq.scale_rule<runtime>
func.func @enum_attrs_standalone() attributes {
  dtype_auto = #kvq.kv_cache_dtype<auto>,
  dtype_fp8 = #kvq.kv_cache_dtype<fp8>,
  dtype_fp8_e4m3 = #kvq.kv_cache_dtype<fp8_e4m3>,
  dtype_fp8_e5m2 = #kvq.kv_cache_dtype<fp8_e5m2>,
  dtype_int8 = #kvq.kv_cache_dtype<int8>,
  rule_checkpoint = #kvq.scale_rule<checkpoint>,
  rule_duplicated = #kvq.scale_rule<duplicated>,
  rule_default = #kvq.scale_rule<default>,
  rule_not_quantized = #kvq.scale_rule<not_quantized>,
  rule_runtime = #kvq.scale_rule<runtime>,
  rule_k_fallback = #kvq.scale_rule<k_fallback>
} {
  return
}

//===----------------------------------------------------------------------===//
// kvq.cache_store / kvq.cache_load
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @cache_f8E4M3FN_dynamic(
// CHECK-SAME:    %[[K:[^:]*]]: memref<?x8x128xbf16>, %[[V:[^:]*]]: memref<?x8x128xbf16>, %[[KC:[^:]*]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[^:]*]]: memref<?x16x8x128xf8E4M3FN>, %[[S:[^:]*]]: memref<?xi64>)
// CHECK:         kvq.cache_store @layer.only_cache_dtype(%[[K]], %[[V]]) into(%[[KC]], %[[VC]]) at %[[S]] : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
// CHECK:         kvq.cache_load @layer.only_cache_dtype(%[[KC]], %[[VC]]) at %[[S]] into(%[[K]], %[[V]]) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
func.func @cache_f8E4M3FN_dynamic(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                                  %kc: memref<?x16x8x128xf8E4M3FN>,
                                  %vc: memref<?x16x8x128xf8E4M3FN>,
                                  %slots: memref<?xi64>) {
  kvq.cache_store @layer.only_cache_dtype (%k, %v) into (%kc, %vc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @layer.only_cache_dtype (%kc, %vc) at %slots into (%k, %v)
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// CHECK-LABEL: func.func @cache_f8E4M3FNUZ_static(
// CHECK:         kvq.cache_store @layer.cache_fp8_e4m3({{.*}} : memref<4x2x64xf16>, memref<3x16x2x64xf8E4M3FNUZ>, memref<4xi64>
// CHECK:         kvq.cache_load @layer.cache_fp8_e4m3({{.*}} : memref<3x16x2x64xf8E4M3FNUZ>, memref<4xi64>, memref<4x2x64xf16>
func.func @cache_f8E4M3FNUZ_static(%k: memref<4x2x64xf16>, %v: memref<4x2x64xf16>,
                                   %kc: memref<3x16x2x64xf8E4M3FNUZ>,
                                   %vc: memref<3x16x2x64xf8E4M3FNUZ>,
                                   %slots: memref<4xi64>) {
  kvq.cache_store @layer.cache_fp8_e4m3 (%k, %v) into (%kc, %vc) at %slots
      : memref<4x2x64xf16>, memref<3x16x2x64xf8E4M3FNUZ>, memref<4xi64>
  kvq.cache_load @layer.cache_fp8_e4m3 (%kc, %vc) at %slots into (%k, %v)
      : memref<3x16x2x64xf8E4M3FNUZ>, memref<4xi64>, memref<4x2x64xf16>
  return
}

// `fp8` also accepts the FNUZ variant (AMD gfx942).
// CHECK-LABEL: func.func @cache_fp8_on_f8E4M3FNUZ(
// CHECK:         kvq.cache_store @layer.with_prefix({{.*}} : memref<?x8x128xf32>, memref<?x?x8x128xf8E4M3FNUZ>, memref<?xi64>
func.func @cache_fp8_on_f8E4M3FNUZ(%k: memref<?x8x128xf32>,
                                   %kc: memref<?x?x8x128xf8E4M3FNUZ>,
                                   %slots: memref<?xi64>) {
  kvq.cache_store @layer.with_prefix (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xf32>, memref<?x?x8x128xf8E4M3FNUZ>, memref<?xi64>
  return
}

// CHECK-LABEL: func.func @cache_f8E5M2_all_dynamic(
// CHECK:         kvq.cache_store @layer.cache_fp8_e5m2({{.*}} : memref<?x?x?xbf16>, memref<?x?x?x?xf8E5M2>, memref<?xi64>
// CHECK:         kvq.cache_load @layer.cache_fp8_e5m2({{.*}} : memref<?x?x?x?xf8E5M2>, memref<?xi64>, memref<?x?x?xbf16>
func.func @cache_f8E5M2_all_dynamic(%k: memref<?x?x?xbf16>,
                                    %kc: memref<?x?x?x?xf8E5M2>,
                                    %slots: memref<?xi64>) {
  kvq.cache_store @layer.cache_fp8_e5m2 (%k, %k) into (%kc, %kc) at %slots
      : memref<?x?x?xbf16>, memref<?x?x?x?xf8E5M2>, memref<?xi64>
  kvq.cache_load @layer.cache_fp8_e5m2 (%kc, %kc) at %slots into (%k, %k)
      : memref<?x?x?x?xf8E5M2>, memref<?xi64>, memref<?x?x?xbf16>
  return
}

// CHECK-LABEL: func.func @cache_f8E5M2FNUZ_static(
// CHECK:         kvq.cache_store @layer.all_clauses({{.*}} : memref<2x8x128xbf16>, memref<1x16x8x128xf8E5M2FNUZ>, memref<2xi64>
// CHECK:         kvq.cache_load @layer.all_clauses({{.*}} : memref<1x16x8x128xf8E5M2FNUZ>, memref<2xi64>, memref<2x8x128xbf16>
func.func @cache_f8E5M2FNUZ_static(%k: memref<2x8x128xbf16>,
                                   %kc: memref<1x16x8x128xf8E5M2FNUZ>,
                                   %slots: memref<2xi64>) {
  kvq.cache_store @layer.all_clauses (%k, %k) into (%kc, %kc) at %slots
      : memref<2x8x128xbf16>, memref<1x16x8x128xf8E5M2FNUZ>, memref<2xi64>
  kvq.cache_load @layer.all_clauses (%kc, %kc) at %slots into (%k, %k)
      : memref<1x16x8x128xf8E5M2FNUZ>, memref<2xi64>, memref<2x8x128xbf16>
  return
}

// CHECK-LABEL: func.func @cache_i8_static(
// CHECK:         kvq.cache_store @layer.cache_int8({{.*}} : memref<4x8x128xf16>, memref<2x16x8x128xi8>, memref<4xi64>
// CHECK:         kvq.cache_load @layer.cache_int8({{.*}} : memref<2x16x8x128xi8>, memref<4xi64>, memref<4x8x128xf16>
func.func @cache_i8_static(%k: memref<4x8x128xf16>, %kc: memref<2x16x8x128xi8>,
                           %slots: memref<4xi64>) {
  kvq.cache_store @layer.cache_int8 (%k, %k) into (%kc, %kc) at %slots
      : memref<4x8x128xf16>, memref<2x16x8x128xi8>, memref<4xi64>
  kvq.cache_load @layer.cache_int8 (%kc, %kc) at %slots into (%k, %k)
      : memref<2x16x8x128xi8>, memref<4xi64>, memref<4x8x128xf16>
  return
}

// `auto`: the cache holds the activation type itself (here bf16).
// CHECK-LABEL: func.func @cache_auto_bf16(
// CHECK:         kvq.cache_store @layer.cache_auto({{.*}} : memref<?x8x128xbf16>, memref<?x16x8x128xbf16>, memref<?xi64>
// CHECK:         kvq.cache_load @layer.cache_auto({{.*}} : memref<?x16x8x128xbf16>, memref<?xi64>, memref<?x8x128xbf16>
func.func @cache_auto_bf16(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xbf16>,
                           %slots: memref<?xi64>) {
  kvq.cache_store @layer.cache_auto (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xbf16>, memref<?xi64>
  kvq.cache_load @layer.cache_auto (%kc, %kc) at %slots into (%k, %k)
      : memref<?x16x8x128xbf16>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// A cache op may name a layer declared after it (symbol lookup is
// order-independent).
// CHECK-LABEL: func.func @cache_layer_declared_later(
// CHECK:         kvq.cache_store @layer.declared_later(
func.func @cache_layer_declared_later(%k: memref<?x8x128xbf16>,
                                      %kc: memref<?x16x8x128xf8E4M3FN>,
                                      %slots: memref<?xi64>) {
  kvq.cache_store @layer.declared_later (%k, %k) into (%kc, %kc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}
// CHECK-LABEL: kvq.layer @layer.declared_later cache(fp8){{$}}
kvq.layer @layer.declared_later cache(fp8)

//===----------------------------------------------------------------------===//
// kvq.paged_attention
//===----------------------------------------------------------------------===//

kvq.layer @attn cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e-01 checkpoint, prob = 1.000000e+00 default>)
kvq.layer @attn.int8 cache(int8)
kvq.layer @attn.auto cache(auto)

// CHECK-LABEL: func.func @paged_attention
// CHECK-SAME:    (%[[Q:.*]]: memref<?x32x128xbf16>, %[[KC:.*]]: memref<?x16x8x128xf8E4M3FN>, %[[BT:.*]]: memref<?x?xi32>, %[[CL:.*]]: memref<?xi32>, %[[O:.*]]: memref<?x32x128xbf16>
// CHECK:         kvq.paged_attention @attn(%[[Q]]) cache(%[[KC]], %[[KC]]) blocks(%[[BT]], %[[CL]]) into(%[[O]]) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
// CHECK:         kvq.paged_attention @attn(%[[Q]]) cache(%[[KC]], %[[KC]]) blocks(%[[BT]], %[[CL]]) into(%[[O]]) scale(1.250000e-01) precision(fp8_qk)
// CHECK:         kvq.paged_attention @attn(%[[Q]]) cache(%[[KC]], %[[KC]]) blocks(%[[BT]], %[[CL]]) into(%[[O]]) precision(fp8_qk_pv)
func.func @paged_attention(%q: memref<?x32x128xbf16>,
                           %kc: memref<?x16x8x128xf8E4M3FN>,
                           %bt: memref<?x?xi32>, %cl: memref<?xi32>,
                           %o: memref<?x32x128xbf16>) {
  kvq.paged_attention @attn (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  kvq.paged_attention @attn (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o)
      scale(0.125) precision(fp8_qk)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  kvq.paged_attention @attn (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o)
      precision(fp8_qk_pv)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  return
}

// Grouped-query ratios 1 and 8, static shapes, int8 and auto caches.
// CHECK-LABEL: func.func @paged_attention_gqa_and_dtypes
// CHECK:         kvq.paged_attention @attn.int8({{.*}}) : memref<2x8x64xf16>, memref<4x16x8x64xi8>, memref<2x4xi32>, memref<2xi32>
// CHECK:         kvq.paged_attention @attn.auto({{.*}}) : memref<2x64x256xf32>, memref<4x32x8x256xf32>, memref<2x4xi32>, memref<2xi32>
func.func @paged_attention_gqa_and_dtypes(
    %q1: memref<2x8x64xf16>, %c1: memref<4x16x8x64xi8>,
    %q8: memref<2x64x256xf32>, %c8: memref<4x32x8x256xf32>,
    %bt: memref<2x4xi32>, %cl: memref<2xi32>) {
  kvq.paged_attention @attn.int8 (%q1) cache(%c1, %c1) blocks(%bt, %cl) into(%q1)
      : memref<2x8x64xf16>, memref<4x16x8x64xi8>, memref<2x4xi32>, memref<2xi32>
  kvq.paged_attention @attn.auto (%q8) cache(%c8, %c8) blocks(%bt, %cl) into(%q8)
      : memref<2x64x256xf32>, memref<4x32x8x256xf32>, memref<2x4xi32>, memref<2xi32>
  return
}

//===----------------------------------------------------------------------===//
// Tensor forms (destination-passing)
//===----------------------------------------------------------------------===//

// CHECK-LABEL: func.func @tensor_forms
// CHECK:         %[[C:.*]]:2 = kvq.cache_store @attn(%{{.*}}, %{{.*}}) into(%{{.*}}, %{{.*}}) at %{{.*}} : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64> -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
// CHECK:         kvq.cache_load @attn(%[[C]]#0, %[[C]]#1) at %{{.*}} into(%{{.*}}, %{{.*}}) : tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>, tensor<?x8x128xbf16> -> tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
func.func @tensor_forms(%k: tensor<?x8x128xbf16>, %s: tensor<?xi64>,
                        %kc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x8x128xbf16>, tensor<?x8x128xbf16>) {
  %kc2, %vc2 = kvq.cache_store @attn (%k, %k) into (%kc, %kc) at %s
      : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  %ko, %vo = kvq.cache_load @attn (%kc2, %vc2) at %s into (%k, %k)
      : tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>, tensor<?x8x128xbf16>
      -> tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
  return %ko, %vo : tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
}

// CHECK-LABEL: func.func @attention_tensor_form
// CHECK:         kvq.paged_attention @attn(%{{.*}}) cache(%{{.*}}, %{{.*}}) blocks(%{{.*}}, %{{.*}}) into(%{{.*}}) precision(fp8_qk) : tensor<?x32x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?x?xi32>, tensor<?xi32> -> tensor<?x32x128xbf16>
func.func @attention_tensor_form(%q: tensor<?x32x128xbf16>, %kc: tensor<?x16x8x128xf8E4M3FN>,
                                 %bt: tensor<?x?xi32>, %cl: tensor<?xi32>) -> tensor<?x32x128xbf16> {
  %o = kvq.paged_attention @attn (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      precision(fp8_qk)
      : tensor<?x32x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?x?xi32>,
        tensor<?xi32> -> tensor<?x32x128xbf16>
  return %o : tensor<?x32x128xbf16>
}

// The workspace: a memref in both forms.
// CHECK-LABEL: func.func @paged_attention_workspace
// CHECK:         kvq.paged_attention @attn(%{{.*}}) cache(%{{.*}}, %{{.*}}) blocks(%{{.*}}, %{{.*}}) into(%{{.*}}) workspace(%{{.*}} : memref<?xi8>) scale(1.250000e-01) :
// CHECK:         kvq.paged_attention @attn(%{{.*}}) cache(%{{.*}}, %{{.*}}) blocks(%{{.*}}, %{{.*}}) into(%{{.*}}) workspace(%{{.*}} : memref<4096xi8>) : tensor
func.func @paged_attention_workspace(%q: memref<?x32x128xbf16>,
                                     %kc: memref<?x16x8x128xf8E4M3FN>,
                                     %bt: memref<?x?xi32>, %cl: memref<?xi32>,
                                     %ws: memref<?xi8>, %tq: tensor<?x32x128xbf16>,
                                     %tkc: tensor<?x16x8x128xf8E4M3FN>,
                                     %tbt: tensor<?x?xi32>, %tcl: tensor<?xi32>,
                                     %ws2: memref<4096xi8>) -> tensor<?x32x128xbf16> {
  kvq.paged_attention @attn (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      workspace(%ws : memref<?xi8>) scale(0.125)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>,
        memref<?xi32>
  %r = kvq.paged_attention @attn (%tq) cache(%tkc, %tkc) blocks(%tbt, %tcl)
      into(%tq) workspace(%ws2 : memref<4096xi8>)
      : tensor<?x32x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?x?xi32>,
        tensor<?xi32> -> tensor<?x32x128xbf16>
  return %r : tensor<?x32x128xbf16>
}
