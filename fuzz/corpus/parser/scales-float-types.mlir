func.func @scales_each_field_and_float_type() attributes {
  a_all_fields = #kvq.scales<k = 0.05 : f32, v = 0.07 : f16, q = 0.1 : bf16, prob = 0.2 : f64>,
  f_f64_full_precision = #kvq.scales<k = 0.123456789012345 : f64>,
  g_empty = #kvq.scales<>
} {
  return
}
