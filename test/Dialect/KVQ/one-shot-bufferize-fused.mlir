// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fuse-cache-producers \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   | FileCheck %s

// kvq.fused_cache_store bufferizes as kvq.cache_store does: in place on the
// caches, its region's tensor.extract ops becoming memref.load of the
// buffers they read; no allocation, no copy.

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>

// CHECK-LABEL: func.func @fused_in_place(
// CHECK-SAME:    %[[K:[a-z0-9]+]]: memref<?x8x128xf32>, %[[V:[a-z0-9]+]]: memref<?x8x128xf32>, %[[S:[a-z0-9]+]]: memref<?xi64>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>)
// CHECK-NOT:     memref.alloc
// CHECK:         kvq.fused_cache_store @l into(%[[KC]], %[[VC]]) at %[[S]] : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
// CHECK-NEXT:    ^bb0(%[[T:.*]]: index, %[[H:.*]]: index, %[[D:.*]]: index):
// CHECK-NEXT:      %[[X:.*]] = memref.load %[[K]][%[[T]], %[[H]], %[[D]]] : memref<?x8x128xf32>
// CHECK-NEXT:      %[[Y:.*]] = arith.mulf %[[X]], %[[X]] : f32
// CHECK-NEXT:      %[[XV:.*]] = memref.load %[[V]][%[[T]], %[[H]], %[[D]]] : memref<?x8x128xf32>
// CHECK-NEXT:      kvq.yield %[[Y]], %[[XV]] : f32, f32
// CHECK-NEXT:    }
// CHECK-NOT:     memref.copy
// CHECK:         return %[[KC]], %[[VC]]
func.func @fused_in_place(%k: tensor<?x8x128xf32>, %v: tensor<?x8x128xf32>,
    %s: tensor<?xi64>, %kc: tensor<?x16x8x128xf8E4M3FN>,
    %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %k, %c0 : tensor<?x8x128xf32>
  %e = tensor.empty(%n) : tensor<?x8x128xf32>
  %sq = linalg.generic {indexing_maps = [#elem, #elem],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k : tensor<?x8x128xf32>) outs(%e : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %u: f32):
    %y = arith.mulf %x, %x : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  %kc1, %vc1 = kvq.cache_store @l (%sq, %v) into (%kc, %vc) at %s
      : tensor<?x8x128xf32>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>

// The old cache is read after the fused store: kvq refuses to copy it.
func.func @fused_old_cache_read_after(%k: tensor<?x8x128xf32>,
    %s: tensor<?xi64>, %kc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %k, %c0 : tensor<?x8x128xf32>
  %e = tensor.empty(%n) : tensor<?x8x128xf32>
  %sq = linalg.generic {indexing_maps = [#elem, #elem],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k : tensor<?x8x128xf32>) outs(%e : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %u: f32):
    %y = arith.mulf %x, %x : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  // expected-error @+1 {{cannot bufferize 'kvq.fused_cache_store' in place: the cache operand #0 would be copied (its old value is used after this op, or it is also another destination); use the op's results from here on}}
  %kc1, %vc1 = kvq.cache_store @l (%sq, %sq) into (%kc, %kc) at %s
      : tensor<?x8x128xf32>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %kc : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// A memref-form store in a module with tensor code has nothing to
// bufferize and is left as it is (it used to be reported as not in place).
// CHECK-LABEL: func.func @memref_form_next_to_tensors(
// CHECK:         kvq.cache_store @l(%{{.*}}, %{{.*}}) into(%{{.*}}, %{{.*}}) at %{{.*}} : memref<?x8x128xbf16>
func.func @memref_form_next_to_tensors(%k: memref<?x8x128xbf16>,
    %s: memref<?xi64>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %vc: memref<?x16x8x128xf8E4M3FN>) {
  kvq.cache_store @l (%k, %k) into (%kc, %vc) at %s
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}
