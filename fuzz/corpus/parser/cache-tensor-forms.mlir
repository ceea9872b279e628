kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.0e-02 checkpoint doubled, v = 7.0e-02 checkpoint, q = 1.0 default, prob = 1.0 default, fnuz>)
func.func @f(%k: tensor<?x8x128xbf16>, %s: tensor<?xi64>, %kc: tensor<?x16x8x128xf8E4M3FNUZ>) -> (tensor<?x8x128xbf16>, tensor<?x8x128xbf16>) {
  %kc2, %vc2 = kvq.cache_store @l (%k, %k) into (%kc, %kc) at %s : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FNUZ>, tensor<?xi64> -> tensor<?x16x8x128xf8E4M3FNUZ>, tensor<?x16x8x128xf8E4M3FNUZ>
  %ko, %vo = kvq.cache_load @l (%kc2, %vc2) at %s into (%k, %k) : tensor<?x16x8x128xf8E4M3FNUZ>, tensor<?xi64>, tensor<?x8x128xbf16> -> tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
  return %ko, %vo : tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
}
