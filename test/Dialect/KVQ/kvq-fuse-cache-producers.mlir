// RUN: kvq-opt %s -split-input-file --kvq-fuse-cache-producers | FileCheck %s
// RUN: kvq-opt %s -split-input-file --kvq-fuse-cache-producers --verify-roundtrip -o /dev/null

// kvq-fuse-cache-producers moves the linalg ops that compute a tensor-form
// store's K and V into a kvq.fused_cache_store: its region is the
// producers' bodies at the store's element (t, h, d), reading the
// producers' inputs, and yields K and V there. Producers that must stay (a reduction, a value with
// other users) stay, and the region reads their result.

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>
#token = affine_map<(t, h, d) -> (t)>
#partner = affine_map<(t, h, d) -> (t, h, (d + 64) mod 128)>

// RoPE, rotate-half (GPT-NeoX) form, on bf16 K computed in f32 and rounded
// back to bf16, cos / sin from tables indexed by each token's position:
// y_d = x_d c_i + r_d s_i, i = d mod 64, r_d = -x_{d+64} (d < 64) or
// x_{d-64}. The partner element is the input read through an indexing map
// with `mod`. V has no producer: the region reads it.
// CHECK-LABEL: func.func @rope_rotate_half_tables(
// CHECK-SAME:    %[[K:[a-z0-9]+]]: tensor<?x8x128xbf16>, %[[V:[a-z0-9]+]]: tensor<?x8x128xbf16>, %[[POS:[a-z0-9]+]]: tensor<?xi64>, %[[COS:[a-z0-9]+]]: tensor<4096x64xf32>, %[[SIN:[a-z0-9]+]]: tensor<4096x64xf32>, %[[S:[a-z0-9]+]]: tensor<?xi64>, %[[KC:[a-z0-9]+]]: tensor<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: tensor<?x16x8x128xf8E4M3FN>)
// CHECK-NOT:     linalg.generic
// CHECK:         %[[R:.*]]:2 = kvq.fused_cache_store @l into(%[[KC]], %[[VC]]) at %[[S]] : tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64> -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN> {
// CHECK-NEXT:    ^bb0(%[[T:.*]]: index, %[[H:.*]]: index, %[[D:.*]]: index):
// CHECK-NEXT:      %[[X:.*]] = tensor.extract %[[K]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xbf16>
// CHECK:           %[[DP:.*]] = arith.addi %[[D]], %{{.*}} : index
// CHECK:           %[[PART:.*]] = arith.select %{{.*}} : index
// CHECK-NEXT:      %[[XP:.*]] = tensor.extract %[[K]][%[[T]], %[[H]], %[[PART]]] : tensor<?x8x128xbf16>
// CHECK-NEXT:      %[[P:.*]] = tensor.extract %[[POS]][%[[T]]] : tensor<?xi64>
// CHECK:           tensor.extract %[[COS]][
// CHECK:           tensor.extract %[[SIN]][
// CHECK:           %[[Y:.*]] = arith.truncf %{{.*}} : f32 to bf16
// CHECK-NEXT:      %[[X2:.*]] = tensor.extract %[[V]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xbf16>
// CHECK-NEXT:      kvq.yield %[[Y]], %[[X2]] : bf16, bf16
// CHECK-NEXT:    }
// CHECK-NEXT:    return %[[R]]#0, %[[R]]#1
func.func @rope_rotate_half_tables(
    %k: tensor<?x8x128xbf16>, %v: tensor<?x8x128xbf16>,
    %positions: tensor<?xi64>, %cos: tensor<4096x64xf32>,
    %sin: tensor<4096x64xf32>, %slots: tensor<?xi64>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %n = tensor.dim %k, %c0 : tensor<?x8x128xbf16>
  %empty = tensor.empty(%n) : tensor<?x8x128xbf16>
  %k_rot = linalg.generic {indexing_maps = [#elem, #partner, #token, #elem],
                           iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k, %k, %positions : tensor<?x8x128xbf16>, tensor<?x8x128xbf16>, tensor<?xi64>)
      outs(%empty : tensor<?x8x128xbf16>) {
  ^bb0(%x: bf16, %xp: bf16, %p: i64, %unused: bf16):
    %d = linalg.index 2 : index
    %row = arith.index_cast %p : i64 to index
    %i = arith.remui %d, %c64 : index
    %c = tensor.extract %cos[%row, %i] : tensor<4096x64xf32>
    %s = tensor.extract %sin[%row, %i] : tensor<4096x64xf32>
    %xf = arith.extf %x : bf16 to f32
    %xpf = arith.extf %xp : bf16 to f32
    %neg = arith.negf %xpf : f32
    %first = arith.cmpi ult, %d, %c64 : index
    %r = arith.select %first, %neg, %xpf : f32
    %xc = arith.mulf %xf, %c : f32
    %rs = arith.mulf %r, %s : f32
    %y = arith.addf %xc, %rs : f32
    %yb = arith.truncf %y : f32 to bf16
    linalg.yield %yb : bf16
  } -> tensor<?x8x128xbf16>
  %kc1, %vc1 = kvq.cache_store @l (%k_rot, %v) into (%kc, %vc) at %slots
      : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>
#token = affine_map<(t, h, d) -> (t)>

// RoPE, interleaved-pairs (GPT-J) form, f32 K, cos / sin computed from the
// position: angle = f32(position) * 10000^(-2i/128), i = d / 2; the
// partner of d is d xor 1, read with tensor.extract in the body (a gather).
// The whole body moves into the region.
// CHECK-LABEL: func.func @rope_interleaved_computed(
// CHECK-SAME:    %[[K:[a-z0-9]+]]: tensor<?x8x128xf32>, %[[V:[a-z0-9]+]]: tensor<?x8x128xf32>, %[[POS:[a-z0-9]+]]: tensor<?xi64>,
// CHECK-NOT:     linalg.generic
// CHECK:         kvq.fused_cache_store @l
// CHECK-NEXT:    ^bb0(%[[T:.*]]: index, %[[H:.*]]: index, %[[D:.*]]: index):
// CHECK-NEXT:      %[[X:.*]] = tensor.extract %[[K]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xf32>
// CHECK-NEXT:      %[[P:.*]] = tensor.extract %[[POS]][%[[T]]] : tensor<?xi64>
// CHECK:           %[[PART:.*]] = arith.xori %[[D]], %{{.*}} : index
// CHECK-NEXT:      %[[XP:.*]] = tensor.extract %[[K]][%[[T]], %[[H]], %[[PART]]] : tensor<?x8x128xf32>
// CHECK:           math.powf
// CHECK:           math.cos
// CHECK:           math.sin
// CHECK:           %[[Y:.*]] = arith.addf
// CHECK-NEXT:      %[[X2:.*]] = tensor.extract %[[V]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xf32>
// CHECK-NEXT:      kvq.yield %[[Y]], %[[X2]] : f32, f32
func.func @rope_interleaved_computed(
    %k: tensor<?x8x128xf32>, %v: tensor<?x8x128xf32>,
    %positions: tensor<?xi64>, %slots: tensor<?xi64>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %base = arith.constant 10000.0 : f32
  %m2over128 = arith.constant -0.015625 : f32
  %n = tensor.dim %k, %c0 : tensor<?x8x128xf32>
  %empty = tensor.empty(%n) : tensor<?x8x128xf32>
  %k_rot = linalg.generic {indexing_maps = [#elem, #token, #elem],
                           iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k, %positions : tensor<?x8x128xf32>, tensor<?xi64>)
      outs(%empty : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %p: i64, %unused: f32):
    %t = linalg.index 0 : index
    %h = linalg.index 1 : index
    %d = linalg.index 2 : index
    %partner = arith.xori %d, %c1 : index
    %xp = tensor.extract %k[%t, %h, %partner] : tensor<?x8x128xf32>
    %i = arith.shrui %d, %c1 : index
    %ii = arith.index_cast %i : index to i64
    %if = arith.uitofp %ii : i64 to f32
    %e = arith.mulf %if, %m2over128 : f32
    %inv = math.powf %base, %e : f32
    %pf = arith.sitofp %p : i64 to f32
    %angle = arith.mulf %pf, %inv : f32
    %c = math.cos %angle : f32
    %s = math.sin %angle : f32
    %odd = arith.andi %d, %c1 : index
    %is_odd = arith.cmpi ne, %odd, %c0 : index
    %neg = arith.negf %xp : f32
    %r = arith.select %is_odd, %xp, %neg : f32
    %xc = arith.mulf %x, %c : f32
    %rs = arith.mulf %r, %s : f32
    %y = arith.addf %xc, %rs : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  %kc1, %vc1 = kvq.cache_store @l (%k_rot, %v) into (%kc, %vc) at %slots
      : tensor<?x8x128xf32>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>
#bias = affine_map<(t, h, d) -> (h, d)>

// An elementwise chain of named and generic ops on V: a bias (broadcast
// over tokens), a product with a gain tensor, a rounding to bf16. Each
// op's value at (t, h, d) is its body at its operands' values there: the
// chain inlines recursively and every op and temporary goes.
// CHECK-LABEL: func.func @elementwise_chain(
// CHECK-SAME:    %[[K:[a-z0-9]+]]: tensor<?x8x128xbf16>, %[[V:[a-z0-9]+]]: tensor<?x8x128xf32>, %[[B:[a-z0-9]+]]: tensor<8x128xf32>, %[[G:[a-z0-9]+]]: tensor<?x8x128xf32>,
// CHECK-NOT:     linalg.
// CHECK-NOT:     tensor.empty
// CHECK:         kvq.fused_cache_store @l
// CHECK-NEXT:    ^bb0(%[[T:.*]]: index, %[[H:.*]]: index, %[[D:.*]]: index):
// CHECK-NEXT:      %[[XK:.*]] = tensor.extract %[[K]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xbf16>
// CHECK-NEXT:      %[[X:.*]] = tensor.extract %[[V]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xf32>
// CHECK-NEXT:      %[[XB:.*]] = tensor.extract %[[B]][%[[H]], %[[D]]] : tensor<8x128xf32>
// CHECK-NEXT:      %[[SUM:.*]] = arith.addf %[[X]], %[[XB]] : f32
// CHECK-NEXT:      %[[XG:.*]] = tensor.extract %[[G]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xf32>
// CHECK-NEXT:      %[[PROD:.*]] = arith.mulf %[[SUM]], %[[XG]] : f32
// CHECK-NEXT:      %[[Y:.*]] = arith.truncf %[[PROD]] : f32 to bf16
// CHECK-NEXT:      kvq.yield %[[XK]], %[[Y]] : bf16, bf16
// CHECK-NEXT:    }
func.func @elementwise_chain(
    %k: tensor<?x8x128xbf16>, %v: tensor<?x8x128xf32>,
    %bias: tensor<8x128xf32>, %gain: tensor<?x8x128xf32>,
    %slots: tensor<?xi64>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %v, %c0 : tensor<?x8x128xf32>
  %e0 = tensor.empty(%n) : tensor<?x8x128xf32>
  %biased = linalg.generic {indexing_maps = [#elem, #bias, #elem],
                            iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%v, %bias : tensor<?x8x128xf32>, tensor<8x128xf32>)
      outs(%e0 : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %b: f32, %unused: f32):
    %y = arith.addf %x, %b : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  %e1 = tensor.empty(%n) : tensor<?x8x128xf32>
  %scaled = linalg.mul ins(%biased, %gain : tensor<?x8x128xf32>, tensor<?x8x128xf32>)
      outs(%e1 : tensor<?x8x128xf32>) -> tensor<?x8x128xf32>
  %e2 = tensor.empty(%n) : tensor<?x8x128xbf16>
  %rounded = linalg.generic {indexing_maps = [#elem, #elem],
                             iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%scaled : tensor<?x8x128xf32>) outs(%e2 : tensor<?x8x128xbf16>) {
  ^bb0(%x: f32, %unused: bf16):
    %y = arith.truncf %x : f32 to bf16
    linalg.yield %y : bf16
  } -> tensor<?x8x128xbf16>
  %kc1, %vc1 = kvq.cache_store @l (%k, %rounded) into (%kc, %vc) at %slots
      : tensor<?x8x128xbf16>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>
#row = affine_map<(t, h, d) -> (t, d)>

// RoPE as a frontend spells it (torch-mlir's rotate_half) on K and V
// sliced out of a fused QKV projection (32 query heads, then 8 K and 8 V
// heads): the halves as slices, linalg.negf, tensor.concat (-x2, x1), then
// x * cos + rotated * sin with per-token cos / sin rows. Slices and
// concatenations are reindexings: a slice reads its source at offset +
// stride * index, a concatenation reads each input at its index within
// that input, (d + 64 - 0) mod 64 and (d + 64 - 64) mod 64 here (in bounds
// outside its range), and selects the input whose range holds d.
// CHECK-LABEL: func.func @rope_rotate_half_concat(
// CHECK-SAME:    %[[QKV:[a-z0-9]+]]: tensor<?x48x128xf32>, %[[COS:[a-z0-9]+]]: tensor<?x128xf32>, %[[SIN:[a-z0-9]+]]: tensor<?x128xf32>,
// CHECK-NOT:     tensor.extract_slice
// CHECK-NOT:     tensor.concat
// CHECK-NOT:     linalg.
// CHECK:         kvq.fused_cache_store @l
// CHECK-NEXT:    ^bb0(%[[T:.*]]: index, %[[H:.*]]: index, %[[D:.*]]: index):
// CHECK-NEXT:      %[[C32:.*]] = arith.constant 32 : index
// CHECK-NEXT:      %[[KH:.*]] = arith.addi %[[H]], %[[C32]] : index
// CHECK-NEXT:      %[[X:.*]] = tensor.extract %[[QKV]][%[[T]], %[[KH]], %[[D]]] : tensor<?x48x128xf32>
// CHECK-NEXT:      %[[C64:.*]] = arith.constant 64 : index
// CHECK-NEXT:      %[[I0:.*]] = arith.remui %[[D]], %[[C64]] : index
// CHECK-NEXT:      %[[C64B:.*]] = arith.constant 64 : index
// CHECK-NEXT:      %[[X2D:.*]] = arith.addi %[[I0]], %[[C64B]] : index
// CHECK:           %[[X2:.*]] = tensor.extract %[[QKV]][%[[T]], %{{.*}}, %[[X2D]]] : tensor<?x48x128xf32>
// CHECK-NEXT:      %[[NEG:.*]] = arith.negf %[[X2]] : f32
// CHECK:           %[[I1:.*]] = arith.remui %[[D]], %{{.*}} : index
// CHECK:           %[[X1:.*]] = tensor.extract %[[QKV]][%[[T]], %{{.*}}, %[[I1]]] : tensor<?x48x128xf32>
// CHECK:           %[[FIRST:.*]] = arith.cmpi ult, %[[D]], %{{.*}} : index
// CHECK-NEXT:      %[[ROT:.*]] = arith.select %[[FIRST]], %[[NEG]], %[[X1]] : f32
// CHECK-NEXT:      %[[C:.*]] = tensor.extract %[[COS]][%[[T]], %[[D]]] : tensor<?x128xf32>
// CHECK-NEXT:      %[[S:.*]] = tensor.extract %[[SIN]][%[[T]], %[[D]]] : tensor<?x128xf32>
// CHECK-NEXT:      %[[XC:.*]] = arith.mulf %[[X]], %[[C]] : f32
// CHECK-NEXT:      %[[RS:.*]] = arith.mulf %[[ROT]], %[[S]] : f32
// CHECK-NEXT:      %[[Y:.*]] = arith.addf %[[XC]], %[[RS]] : f32
// CHECK-NEXT:      %[[C40:.*]] = arith.constant 40 : index
// CHECK-NEXT:      %[[VH:.*]] = arith.addi %[[H]], %[[C40]] : index
// CHECK-NEXT:      %[[XV:.*]] = tensor.extract %[[QKV]][%[[T]], %[[VH]], %[[D]]] : tensor<?x48x128xf32>
// CHECK-NEXT:      kvq.yield %[[Y]], %[[XV]] : f32, f32
func.func @rope_rotate_half_concat(
    %qkv: tensor<?x48x128xf32>, %cos: tensor<?x128xf32>, %sin: tensor<?x128xf32>,
    %slots: tensor<?xi64>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %n = tensor.dim %qkv, %c0 : tensor<?x48x128xf32>
  %k = tensor.extract_slice %qkv[0, 32, 0] [%n, 8, 128] [1, 1, 1]
      : tensor<?x48x128xf32> to tensor<?x8x128xf32>
  %v = tensor.extract_slice %qkv[0, 40, 0] [%n, 8, 128] [1, 1, 1]
      : tensor<?x48x128xf32> to tensor<?x8x128xf32>
  %x1 = tensor.extract_slice %k[0, 0, 0] [%n, 8, 64] [1, 1, 1]
      : tensor<?x8x128xf32> to tensor<?x8x64xf32>
  %x2 = tensor.extract_slice %k[0, 0, 64] [%n, 8, 64] [1, 1, 1]
      : tensor<?x8x128xf32> to tensor<?x8x64xf32>
  %e0 = tensor.empty(%n) : tensor<?x8x64xf32>
  %neg = linalg.negf ins(%x2 : tensor<?x8x64xf32>)
      outs(%e0 : tensor<?x8x64xf32>) -> tensor<?x8x64xf32>
  %rot = tensor.concat dim(2) %neg, %x1
      : (tensor<?x8x64xf32>, tensor<?x8x64xf32>) -> tensor<?x8x128xf32>
  %e1 = tensor.empty(%n) : tensor<?x8x128xf32>
  %k_rot = linalg.generic {indexing_maps = [#elem, #elem, #row, #row, #elem],
                           iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k, %rot, %cos, %sin : tensor<?x8x128xf32>, tensor<?x8x128xf32>,
                                 tensor<?x128xf32>, tensor<?x128xf32>)
      outs(%e1 : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %r: f32, %c: f32, %s: f32, %unused: f32):
    %xc = arith.mulf %x, %c : f32
    %rs = arith.mulf %r, %s : f32
    %y = arith.addf %xc, %rs : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  %kc1, %vc1 = kvq.cache_store @l (%k_rot, %v) into (%kc, %vc) at %slots
      : tensor<?x8x128xf32>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// Not fused: a concatenation along a dimension of dynamic size (here the
// new tokens of two requests): which input holds an index is known only
// at run time. The store reads the concatenation.
// CHECK-LABEL: func.func @dynamic_concat_is_not_fused(
// CHECK:         %[[KV:.*]] = tensor.concat dim(0)
// CHECK:         kvq.cache_store @l(%[[KV]], %[[KV]]) into
// CHECK-NOT:     kvq.fused_cache_store
func.func @dynamic_concat_is_not_fused(
    %a: tensor<?x8x128xf32>, %b: tensor<?x8x128xf32>, %slots: tensor<?xi64>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %kv = tensor.concat dim(0) %a, %b
      : (tensor<?x8x128xf32>, tensor<?x8x128xf32>) -> tensor<?x8x128xf32>
  %kc1, %vc1 = kvq.cache_store @l (%kv, %kv) into (%kc, %vc) at %slots
      : tensor<?x8x128xf32>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// Not fused: the projection. A matmul (here as its head-split generic
// form) has a reduction loop: each element is a sum over the hidden
// dimension, which the store's work item must not recompute per element
// (nor per RoPE partner). The store stays a kvq.cache_store of its result.
// CHECK-LABEL: func.func @projection_is_not_fused(
// CHECK:         %[[KP:.*]] = linalg.generic
// CHECK-SAME:      iterator_types = ["parallel", "parallel", "parallel", "reduction"]
// CHECK:         kvq.cache_store @l(%[[KP]], %{{.*}}) into
// CHECK-NOT:     kvq.fused_cache_store
func.func @projection_is_not_fused(
    %x: tensor<?x256xbf16>, %w: tensor<256x8x128xbf16>,
    %v: tensor<?x8x128xf32>, %slots: tensor<?xi64>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %x, %c0 : tensor<?x256xbf16>
  %e = tensor.empty(%n) : tensor<?x8x128xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<?x8x128xf32>) -> tensor<?x8x128xf32>
  %k = linalg.generic {indexing_maps = [affine_map<(t, h, d, j) -> (t, j)>,
                                        affine_map<(t, h, d, j) -> (j, h, d)>,
                                        affine_map<(t, h, d, j) -> (t, h, d)>],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x256xbf16>, tensor<256x8x128xbf16>)
      outs(%init : tensor<?x8x128xf32>) {
  ^bb0(%a: bf16, %b: bf16, %acc: f32):
    %af = arith.extf %a : bf16 to f32
    %bf = arith.extf %b : bf16 to f32
    %p = arith.mulf %af, %bf : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  } -> tensor<?x8x128xf32>
  %kc1, %vc1 = kvq.cache_store @l (%k, %v) into (%kc, %vc) at %slots
      : tensor<?x8x128xf32>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>

// Not fused: a value with another user. K (x * 2) is also returned (a
// prefill step that attends over the new K directly): fused, it would be
// computed twice, once in the store and once for the return. Its own
// producer (x + 1), used only by it, stays with it. V's producer (x - 1)
// is fused.
// CHECK-LABEL: func.func @value_with_other_users_is_not_fused(
// CHECK-SAME:    %[[K:[a-z0-9]+]]: tensor<?x8x128xf32>, %[[V:[a-z0-9]+]]: tensor<?x8x128xf32>,
// CHECK:         %[[K1:.*]] = linalg.generic {{.*}} ins(%[[K]] :
// CHECK:         arith.addf
// CHECK:         %[[K2:.*]] = linalg.generic {{.*}} ins(%[[K1]] :
// CHECK:         arith.mulf
// CHECK-NOT:     linalg.generic
// CHECK:         %[[R:.*]]:2 = kvq.fused_cache_store @l
// CHECK-NEXT:    ^bb0(%[[T:.*]]: index, %[[H:.*]]: index, %[[D:.*]]: index):
// CHECK-NEXT:      %[[X:.*]] = tensor.extract %[[K2]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xf32>
// CHECK-NEXT:      %[[X2:.*]] = tensor.extract %[[V]][%[[T]], %[[H]], %[[D]]] : tensor<?x8x128xf32>
// CHECK-NEXT:      %[[Y2:.*]] = arith.subf %[[X2]], %{{.*}} : f32
// CHECK-NEXT:      kvq.yield %[[X]], %[[Y2]] : f32, f32
// CHECK:         return %[[R]]#0, %[[R]]#1, %[[K2]]
func.func @value_with_other_users_is_not_fused(
    %k: tensor<?x8x128xf32>, %v: tensor<?x8x128xf32>, %slots: tensor<?xi64>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %vc: tensor<?x16x8x128xf8E4M3FN>)
    -> (tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>,
        tensor<?x8x128xf32>) {
  %c0 = arith.constant 0 : index
  %one = arith.constant 1.0 : f32
  %two = arith.constant 2.0 : f32
  %n = tensor.dim %k, %c0 : tensor<?x8x128xf32>
  %e = tensor.empty(%n) : tensor<?x8x128xf32>
  %k1 = linalg.generic {indexing_maps = [#elem, #elem],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k : tensor<?x8x128xf32>) outs(%e : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %unused: f32):
    %y = arith.addf %x, %one : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  %k2 = linalg.generic {indexing_maps = [#elem, #elem],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k1 : tensor<?x8x128xf32>) outs(%e : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %unused: f32):
    %y = arith.mulf %x, %two : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  %v1 = linalg.generic {indexing_maps = [#elem, #elem],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%v : tensor<?x8x128xf32>) outs(%e : tensor<?x8x128xf32>) {
  ^bb0(%x: f32, %unused: f32):
    %y = arith.subf %x, %one : f32
    linalg.yield %y : f32
  } -> tensor<?x8x128xf32>
  %kc1, %vc1 = kvq.cache_store @l (%k2, %v1) into (%kc, %vc) at %slots
      : tensor<?x8x128xf32>, tensor<?x16x8x128xf8E4M3FN>, tensor<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN>
  return %kc1, %vc1, %k2 : tensor<?x16x8x128xf8E4M3FN>,
      tensor<?x16x8x128xf8E4M3FN>, tensor<?x8x128xf32>
}

// -----

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// The memref form is left alone: its K and V are already in memory.
// CHECK-LABEL: func.func @memref_form_is_left_alone(
// CHECK:         kvq.cache_store @l(
// CHECK-NOT:     kvq.fused_cache_store
func.func @memref_form_is_left_alone(
    %k: memref<?x8x128xf32>, %v: memref<?x8x128xf32>, %slots: memref<?xi64>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>) {
  kvq.cache_store @l (%k, %v) into (%kc, %vc) at %slots
      : memref<?x8x128xf32>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}
