kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.0e-02 checkpoint, v = 7.0e-02 checkpoint, q = 1.0 default, prob = 1.0 default>)
func.func @f(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>, %pos: memref<?xi64>, %cos: memref<4096x64xf32>, %s: memref<?xi64>, %kc: memref<?x16x8x128xf8E4M3FN>) {
  %c64 = arith.constant 64 : index
  kvq.fused_cache_store @l into (%kc, %kc) at %s : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %k[%t, %h, %d] : memref<?x8x128xbf16>
    %p = memref.load %pos[%t] : memref<?xi64>
    %row = arith.index_cast %p : i64 to index
    %i = arith.remui %d, %c64 : index
    %c = memref.load %cos[%row, %i] : memref<4096x64xf32>
    %xf = arith.extf %x : bf16 to f32
    %y = arith.mulf %xf, %c : f32
    %yb = arith.truncf %y : f32 to bf16
    %xv = memref.load %v[%t, %h, %d] : memref<?x8x128xbf16>
    kvq.yield %yb, %xv : bf16, bf16
  }
  return
}
