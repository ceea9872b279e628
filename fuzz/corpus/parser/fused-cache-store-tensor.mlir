kvq.layer @l cache(int8) resolved(#kvq.resolved_scales<k = 5.0e-02 checkpoint, v = 7.0e-02 checkpoint, q = 1.0 default, prob = 1.0 default>)
func.func @f(%k: tensor<?x8x64xf32>, %s: tensor<?xi64>, %kc: tensor<?x16x8x64xi8>) -> (tensor<?x16x8x64xi8>, tensor<?x16x8x64xi8>) {
  %c1 = arith.constant 1 : index
  %a, %b = kvq.fused_cache_store @l into (%kc, %kc) at %s : tensor<?x16x8x64xi8>, tensor<?xi64> -> tensor<?x16x8x64xi8>, tensor<?x16x8x64xi8> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = tensor.extract %k[%t, %h, %d] : tensor<?x8x64xf32>
    %p = arith.xori %d, %c1 : index
    %xp = tensor.extract %k[%t, %h, %p] : tensor<?x8x64xf32>
    %y = arith.subf %x, %xp : f32
    kvq.yield %y, %x : f32, f32
  }
  return %a, %b : tensor<?x16x8x64xi8>, tensor<?x16x8x64xi8>
}
