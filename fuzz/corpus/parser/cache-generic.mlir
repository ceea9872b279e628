kvq.layer @l cache(fp8)
func.func @store_generic(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FNUZ>, %slots: memref<?xi64>) {
  "kvq.cache_store"(%k, %k, %kc, %kc, %slots) <{layer = @l}>
      : (memref<?x8x128xbf16>, memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>,
         memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>) -> ()
  return
}
