kvq.layer @l cache(int8) resolved(<k = 0.05 checkpoint, v = 0.05 checkpoint, q = 1.0 default, prob = 1.0 default>)
func.func @store(%k: memref<4x2x64xf16>, %kc: memref<3x16x2x64xi8>, %slots: memref<4xi64>) {
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %slots
      : memref<4x2x64xf16>, memref<3x16x2x64xi8>, memref<4xi64>
  return
}
