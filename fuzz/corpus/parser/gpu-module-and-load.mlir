gpu.module @kernels {}
kvq.layer @conflict cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)
func.func @load(%k: memref<?x8x128xf16>, %kc: memref<?x16x8x128xf8E4M3FNUZ>, %s: memref<?xi64>) {
  kvq.cache_load @conflict (%kc, %kc) at %s into (%k, %k) : memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>, memref<?x8x128xf16>
  return
}
