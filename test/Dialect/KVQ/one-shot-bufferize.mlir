// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   | FileCheck %s
// The bufferized step lowers like any memref-form cache op.
// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" \
// RUN:   --kvq-to-llvm | FileCheck %s --check-prefix=LLVM
// LLVM-LABEL: llvm.func @decode_step(
// LLVM: llvm.call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(
// LLVM: llvm.call @kvq_cache_load_f8E4M3FN_bf16_8x128_b16(

// The tensor forms of the cache ops are destination-passing: the store's
// caches and the load's outputs bufferize in place into the memref form,
// with no allocation and no copy of a cache.

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CHECK-LABEL: func.func @decode_step(
// CHECK-SAME:    %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[S:[a-z0-9]+]]: memref<?xi64>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[KO:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[VO:[a-z0-9]+]]: memref<?x8x128xbf16>)
// CHECK-NOT:     memref.alloc
// CHECK-NOT:     memref.copy
// CHECK:         kvq.cache_store @l(%[[K]], %[[V]]) into(%[[KC]], %[[VC]]) at %[[S]] : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
// CHECK-NOT:     memref.copy
// CHECK:         kvq.cache_load @l(%[[KC]], %[[VC]]) at %[[S]] into(%[[KO]], %[[VO]]) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
// CHECK-NOT:     memref.copy
// CHECK:         return %[[KC]], %[[VC]], %[[KO]], %[[VO]]
func.func @decode_step(%k: tensor<?x8x128xbf16>, %v: tensor<?x8x128xbf16>,
                       %s: tensor<?xi64>,
                       %kc: tensor<?x16x8x128xf8E4M3FN>,
                       %vc: tensor<?x16x8x128xf8E4M3FN>,
                       %ko: tensor<?x8x128xbf16>, %vo: tensor<?x8x128xbf16>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>,
        tensor<?x8x128xbf16>, tensor<?x8x128xbf16>) {
  %kc2, %vc2 = kvq.cache_store @l (%k, %v) into (%kc, %vc) at %s
      : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  %ko2, %vo2 = kvq.cache_load @l (%kc2, %vc2) at %s into (%ko, %vo)
      : tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>, tensor<?x8x128xbf16>
      -> tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
  return %kc2, %vc2, %ko2, %vo2
      : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>,
        tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// The old key cache is read after the store: in place is impossible, and
// kvq refuses to copy a cache.
func.func @old_cache_read_after_store(%k: tensor<?x8x128xbf16>,
                                      %s: tensor<?xi64>,
                                      %kc: tensor<?x16x8x128xf8E4M3FN>,
                                      %vc: tensor<?x16x8x128xf8E4M3FN>,
                                      %ko: tensor<?x8x128xbf16>,
                                      %vo: tensor<?x8x128xbf16>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x8x128xbf16>) {
  // expected-error @below {{cannot bufferize 'kvq.cache_store' in place: the cache operand #2 would be copied (its old value is used after this op, or it is also another destination); use the op's results from here on}}
  %kc2, %vc2 = kvq.cache_store @l (%k, %k) into (%kc, %vc) at %s
      : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  %ko2, %vo2 = kvq.cache_load @l (%kc, %vc2) at %s into (%ko, %vo)
      : tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>, tensor<?x8x128xbf16>
      -> tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
  return %kc2, %ko2 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x8x128xbf16>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// One tensor as both outputs of a load.
func.func @one_tensor_two_outputs(%s: tensor<?xi64>,
                                  %kc: tensor<?x16x8x128xf8E4M3FN>,
                                  %o: tensor<?x8x128xbf16>)
    -> (tensor<?x8x128xbf16>, tensor<?x8x128xbf16>) {
  // expected-error @below {{cannot bufferize 'kvq.cache_load' in place: the output operand #3 would be copied}}
  %ko, %vo = kvq.cache_load @l (%kc, %kc) at %s into (%o, %o)
      : tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>, tensor<?x8x128xbf16>
      -> tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
  return %ko, %vo : tensor<?x8x128xbf16>, tensor<?x8x128xbf16>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// A decode step on tensors: store the new tokens, then attend over the
// updated caches; everything in place.
// CHECK-LABEL: func.func @store_then_attend(
// CHECK-SAME:    %[[Q:[a-z0-9]+]]: memref<?x32x128xbf16>, %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[S:[a-z0-9]+]]: memref<?xi64>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[BT:[a-z0-9]+]]: memref<?x?xi32>, %[[CL:[a-z0-9]+]]: memref<?xi32>, %[[O:[a-z0-9]+]]: memref<?x32x128xbf16>)
// CHECK-NOT:     memref.alloc
// CHECK:         kvq.cache_store @l(%[[K]], %[[K]]) into(%[[KC]], %[[VC]])
// CHECK-NOT:     memref.copy
// CHECK:         kvq.paged_attention @l(%[[Q]]) cache(%[[KC]], %[[VC]]) blocks(%[[BT]], %[[CL]]) into(%[[O]])
// CHECK:         return %[[O]]
// LLVM-LABEL: llvm.func @store_then_attend(
// LLVM: llvm.call @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16(
func.func @store_then_attend(%q: tensor<?x32x128xbf16>, %k: tensor<?x8x128xbf16>,
                             %s: tensor<?xi64>,
                             %kc: tensor<?x16x8x128xf8E4M3FN>,
                             %vc: tensor<?x16x8x128xf8E4M3FN>,
                             %bt: tensor<?x?xi32>, %cl: tensor<?xi32>,
                             %o: tensor<?x32x128xbf16>) -> tensor<?x32x128xbf16> {
  %kc2, %vc2 = kvq.cache_store @l (%k, %k) into (%kc, %vc) at %s
      : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  %out = kvq.paged_attention @l (%q) cache(%kc2, %vc2) blocks(%bt, %cl)
      into(%o) : tensor<?x32x128xbf16>, tensor<?x16x8x128xf8E4M3FN>,
      tensor<?x?xi32>, tensor<?xi32> -> tensor<?x32x128xbf16>
  return %out : tensor<?x32x128xbf16>
}
