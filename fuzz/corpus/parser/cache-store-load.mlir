kvq.layer @l0 cache(fp8)
func.func @cache_f8E4M3FN_dynamic(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                                  %kc: memref<?x16x8x128xf8E4M3FN>,
                                  %vc: memref<?x16x8x128xf8E4M3FN>,
                                  %slots: memref<?xi64>) {
  kvq.cache_store @l0 (%k, %v) into (%kc, %vc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @l0 (%kc, %vc) at %slots into (%k, %v)
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}
