func.func @scales_suspicious_values_are_kept() attributes {
  scales = #kvq.scales<k = 0.0 : f32, v = -1.0 : f32, q = 0x7F800000 : f32, prob = 0x7FC00000 : f32>
} {
  return
}
