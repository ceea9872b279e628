func.func @scales_dense_tensors() attributes {
  a_per_head = #kvq.scales<k = dense<[0.5, 0.25, 0.125, 0.0625, 1.0, 2.0, 4.0, 8.0]>
                                   : tensor<8xf32>, v = dense<0.5> : tensor<1xbf16>>,
  b_ranks = #kvq.scales<k = dense<[[1.0, 2.0]]> : tensor<1x2xf16>, v = dense<1.0> : tensor<2x2x2xf32>, q = dense<0.25> : tensor<f64>>
} {
  return
}
