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
