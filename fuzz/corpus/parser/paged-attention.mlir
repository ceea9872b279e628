kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.0e-02 checkpoint, v = 7.0e-02 checkpoint, q = 1.0 default, prob = 1.0 default>)
func.func @f(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q) scale(0.125) precision(fp8_qk_pv) : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
