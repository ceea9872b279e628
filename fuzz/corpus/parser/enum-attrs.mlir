func.func @enum_attrs_standalone() attributes {
  dtype_auto = #kvq.kv_cache_dtype<auto>,
  dtype_fp8_e4m3 = #kvq.kv_cache_dtype<fp8_e4m3>,
  dtype_int8 = #kvq.kv_cache_dtype<int8>,
  rule_checkpoint = #kvq.scale_rule<checkpoint>,
  rule_not_quantized = #kvq.scale_rule<not_quantized>,
  rule_k_fallback = #kvq.scale_rule<k_fallback>
} {
  return
}
