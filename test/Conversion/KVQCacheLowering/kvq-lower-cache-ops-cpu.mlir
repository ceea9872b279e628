// RUN: kvq-opt %s --kvq-lower-cache-ops --canonicalize --cse | FileCheck %s
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=cpu" --canonicalize --cse | FileCheck %s
// RUN: kvq-opt %s --kvq-lower-cache-ops="quantize-division=divf" --canonicalize --cse | FileCheck %s --check-prefix=DIVF
// RUN: kvq-opt %s --kvq-lower-cache-ops="quantize-division=fma" --canonicalize --cse | FileCheck %s --check-prefix=FMA
// RUN: kvq-opt %s --kvq-lower-cache-ops | FileCheck %s --check-prefix=RAW

// The CPU form. Each cache op becomes its layer's K and V scales as f32
// constants and a call of the function of its signature (op kind, operand
// types, quotient of each stream); the function, shared by every op of that
// signature,
// holds scf loops over tokens (skipping slots < 0), heads and elements,
// memref.load / memref.store and the integer-only software conversion.
// Layers are erased once no cache op refers to them.

// CHECK-NOT: kvq.layer
kvq.layer @e4m3 cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 2.500000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @e4m3b cache(fp8) resolved(#kvq.resolved_scales<k = 2.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @e4m3c cache(fp8) resolved(#kvq.resolved_scales<k = 3.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @e5m2 cache(fp8_e5m2) resolved(#kvq.resolved_scales<k = 1.000000e+00 default, v = 1.000000e+00 default, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @i8 cache(int8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 2.500000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @extreme cache(fp8) resolved(#kvq.resolved_scales<k = 1.000000e-30 checkpoint, v = 1.000000e+30 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @half_extreme cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 1.000000e+30 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @plain cache(auto) resolved(#kvq.resolved_scales<k = 1.000000e+00 not_quantized, v = 1.000000e+00 not_quantized, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// Two layers, one signature: one function, called with each layer's
// scales (slot_mapping, K, V, K cache, V cache, k_scale, v_scale).
// CHECK-LABEL: func.func @store_e4m3(
// CHECK-SAME: %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[S:[a-z0-9]+]]: memref<?xi64>)
// CHECK-DAG: %[[KS:.*]] = arith.constant 5.000000e-02 : f32
// CHECK-DAG: %[[VS:.*]] = arith.constant 2.500000e-01 : f32
// CHECK-DAG: %[[KSB:.*]] = arith.constant 2.000000e-02 : f32
// CHECK-DAG: %[[VSB:.*]] = arith.constant 7.000000e-02 : f32
// CHECK: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(%[[S]], %[[K]], %[[V]], %[[KC]], %[[VC]], %[[KS]], %[[VS]]) : (memref<?xi64>, memref<?x8x128xbf16>, memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x16x8x128xf8E4M3FN>, f32, f32) -> ()
// CHECK-NEXT: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(%[[S]], %[[K]], %[[V]], %[[KC]], %[[VC]], %[[KSB]], %[[VSB]])
// CHECK-NOT: kvq.cache_store
// DIVF-LABEL: func.func @store_e4m3(
// DIVF: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_divf(
// DIVF-NEXT: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_divf(
// FMA-LABEL: func.func @store_e4m3(
// FMA: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fma(
// FMA-NEXT: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fma(
func.func @store_e4m3(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @e4m3 (%k, %v) into (%kc, %vc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_store @e4m3b (%k, %v) into (%kc, %vc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// A K scale whose product is not proven for f8E4M3FN (0.03: for x =
// 0x1.8p-11 the quotient is the midpoint 0x1.9p-6, the product one unit
// above it) gets the FMA correction; V (0.07) the product alone.
// CHECK-LABEL: func.func @store_corrected(
// CHECK: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kfma_vmul(
// FMA-LABEL: func.func @store_corrected(
// FMA: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fma(
func.func @store_corrected(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @e4m3c (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// CHECK-LABEL: func.func @store_e4m3fnuz(
// CHECK: call @kvq_cache_store_f16_f8E4M3FNUZ_2x16_b4(
func.func @store_e4m3fnuz(%k: memref<4x2x16xf16>, %kc: memref<2x4x2x16xf8E4M3FNUZ>, %s: memref<4xi64>) {
  kvq.cache_store @e4m3 (%k, %k) into (%kc, %kc) at %s : memref<4x2x16xf16>, memref<2x4x2x16xf8E4M3FNUZ>, memref<4xi64>
  return
}

// f32 activations have too many values for a division-free quotient to be
// proven: a true division (`_divf`).
// CHECK-LABEL: func.func @store_e5m2(
// CHECK: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK: call @kvq_cache_store_f32_f8E5M2_2x16_b4_divf(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[ONE]], %[[ONE]])
func.func @store_e5m2(%k: memref<4x2x16xf32>, %kc: memref<2x4x2x16xf8E5M2>, %s: memref<4xi64>) {
  kvq.cache_store @e5m2 (%k, %k) into (%kc, %kc) at %s : memref<4x2x16xf32>, memref<2x4x2x16xf8E5M2>, memref<4xi64>
  return
}

// CHECK-LABEL: func.func @store_f32(
// CHECK: call @kvq_cache_store_f32_f8E4M3FN_2x16_b4_divf(
func.func @store_f32(%k: memref<4x2x16xf32>, %kc: memref<2x4x2x16xf8E4M3FN>, %s: memref<4xi64>) {
  kvq.cache_store @e4m3 (%k, %k) into (%kc, %kc) at %s : memref<4x2x16xf32>, memref<2x4x2x16xf8E4M3FN>, memref<4xi64>
  return
}

// Scales outside [2^-60, 2^60] are not proven: a true division, for both
// streams (`_divf`) or only for the one with such a scale (`_kmul_vdivf`).
// CHECK-LABEL: func.func @store_extreme_scales(
// CHECK: call @kvq_cache_store_bf16_f8E4M3FN_2x16_b4_divf(
// CHECK: call @kvq_cache_store_bf16_f8E4M3FN_2x16_b4_kmul_vdivf(
func.func @store_extreme_scales(%k: memref<4x2x16xbf16>, %kc: memref<2x4x2x16xf8E4M3FN>, %s: memref<4xi64>) {
  kvq.cache_store @extreme (%k, %k) into (%kc, %kc) at %s : memref<4x2x16xbf16>, memref<2x4x2x16xf8E4M3FN>, memref<4xi64>
  kvq.cache_store @half_extreme (%k, %k) into (%kc, %kc) at %s : memref<4x2x16xbf16>, memref<2x4x2x16xf8E4M3FN>, memref<4xi64>
  return
}

// CHECK-LABEL: func.func @store_int8(
// CHECK: call @kvq_cache_store_bf16_i8_8x128_b16(
func.func @store_int8(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xi8>, %s: memref<?xi64>) {
  kvq.cache_store @i8 (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xi8>, memref<?xi64>
  return
}

// A function name that is taken gets a suffix.
// CHECK-LABEL: func.func @store_auto(
// CHECK: call @kvq_cache_store_bf16_bf16_2x16_b4_0(
func.func @store_auto(%k: memref<4x2x16xbf16>, %kc: memref<2x4x2x16xbf16>, %s: memref<4xi64>) {
  kvq.cache_store @plain (%k, %k) into (%kc, %kc) at %s : memref<4x2x16xbf16>, memref<2x4x2x16xbf16>, memref<4xi64>
  return
}
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_bf16_2x16_b4()
func.func private @kvq_cache_store_bf16_bf16_2x16_b4()

// CHECK-LABEL: func.func @load_e4m3(
// CHECK-SAME: %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[S:[a-z0-9]+]]: memref<?xi64>, %[[K:[a-z0-9]+]]: memref<?x8x128xf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xf16>)
// CHECK-DAG: %[[KS:.*]] = arith.constant 5.000000e-02 : f32
// CHECK-DAG: %[[VS:.*]] = arith.constant 2.500000e-01 : f32
// CHECK: call @kvq_cache_load_f8E4M3FN_f16_8x128_b16(%[[S]], %[[KC]], %[[VC]], %[[K]], %[[V]], %[[KS]], %[[VS]])
// DIVF-LABEL: func.func @load_e4m3(
// DIVF: call @kvq_cache_load_f8E4M3FN_f16_8x128_b16(
func.func @load_e4m3(%kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x8x128xf16>, %v: memref<?x8x128xf16>) {
  kvq.cache_load @e4m3 (%kc, %vc) at %s into (%k, %v) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xf16>
  return
}

// Without canonicalization: the cache ops of a block share the constants
// of equal scales (here a layer's store and load).
// RAW-LABEL: func.func @store_then_load(
// RAW: %[[KS:.*]] = arith.constant 5.000000e-02 : f32
// RAW-NEXT: %[[VS:.*]] = arith.constant 2.500000e-01 : f32
// RAW-NEXT: call @kvq_cache_store_f16_f8E4M3FN_8x128_b16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KS]], %[[VS]])
// RAW-NEXT: call @kvq_cache_load_f8E4M3FN_f16_8x128_b16(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KS]], %[[VS]])
// RAW-NEXT: return
// CHECK-LABEL: func.func @store_then_load(
func.func @store_then_load(%x: memref<?x8x128xf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @e4m3 (%x, %x) into (%kc, %kc) at %s : memref<?x8x128xf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @e4m3 (%kc, %kc) at %s into (%x, %x) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xf16>
  return
}

// CHECK-LABEL: func.func @load_int8(
// CHECK: call @kvq_cache_load_i8_bf16_2x16_b4(
func.func @load_int8(%kc: memref<2x4x2x16xi8>, %s: memref<4xi64>, %k: memref<4x2x16xbf16>) {
  kvq.cache_load @i8 (%kc, %kc) at %s into (%k, %k) : memref<2x4x2x16xi8>, memref<4xi64>, memref<4x2x16xbf16>
  return
}

// CHECK-LABEL: func.func @load_auto(
// CHECK: call @kvq_cache_load_bf16_bf16_2x16_b4(
func.func @load_auto(%kc: memref<2x4x2x16xbf16>, %s: memref<4xi64>, %k: memref<4x2x16xbf16>) {
  kvq.cache_load @plain (%kc, %kc) at %s into (%k, %k) : memref<2x4x2x16xbf16>, memref<4xi64>, memref<4x2x16xbf16>
  return
}

//===----------------------------------------------------------------------===//
// The functions, at the end of the module in the order of first use.
//===----------------------------------------------------------------------===//

// Store into e4m3 (OCP): the K scale for K, the V scale for V; the quotient
// of a true division, computed without one (the product x * RN(1/s),
// proven to give the division's bytes for these scales; see
// ScaledDivision.h), RN(1/s) being an f32 division at the function's entry;
// saturation by clamping |x| (as f32 bits) to 448.0 = 0x43E00000; NaN ->
// 0x7F.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(
// CHECK-SAME: %[[S:[a-z0-9]+]]: memref<?xi64>, %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[MAX:.*]] = arith.constant 1138753536 : i32
// CHECK-DAG: %[[NAN:.*]] = arith.constant 127 : i32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK-DAG: %[[BS:.*]] = arith.constant 16 : index
// CHECK: %[[KR:.*]] = arith.divf %[[ONE]], %[[KS]] : f32
// CHECK: %[[VR:.*]] = arith.divf %[[ONE]], %[[VS]] : f32
// CHECK: %[[T:.*]] = memref.dim %[[S]]
// CHECK-NOT: llvm.intr.fma
// CHECK: scf.for %[[TOK:.*]] = %{{.*}} to %[[T]]
// CHECK:   %[[SLOT:.*]] = memref.load %[[S]][%[[TOK]]]
// CHECK:   %[[VALID:.*]] = arith.cmpi sge, %[[SLOT]], %[[ZERO]] : i64
// CHECK:   scf.if %[[VALID]] {
// CHECK:     %[[SI:.*]] = arith.index_cast %[[SLOT]]
// CHECK:     %[[BLK:.*]] = arith.divui %[[SI]], %[[BS]]
// CHECK:     %[[ROW:.*]] = arith.remui %[[SI]], %[[BS]]
// CHECK:     scf.for %[[H:.*]] =
// CHECK:       scf.for %[[D:.*]] =
// CHECK:         %[[X:.*]] = memref.load %[[K]][%[[TOK]], %[[H]], %[[D]]]
// CHECK:         %[[Y:.*]] = memref.load %[[V]][%[[TOK]], %[[H]], %[[D]]]
// CHECK:         %[[XF:.*]] = arith.extf %[[X]] : bf16 to f32
// CHECK-NEXT:    %[[XQ:.*]] = arith.mulf %[[XF]], %[[KR]] : f32
// CHECK-NEXT:    %[[XB:.*]] = arith.bitcast %[[XQ]] : f32 to i32
// CHECK:         arith.minui %{{.*}}, %[[MAX]] : i32
// CHECK:         arith.select %{{.*}}, %[[NAN]], %{{.*}} : i32
// CHECK:         %[[XI8:.*]] = arith.trunci %{{.*}} : i32 to i8
// CHECK:         %[[XC:.*]] = arith.bitcast %[[XI8]] : i8 to f8E4M3FN
// CHECK:         memref.store %[[XC]], %[[KC]][%[[BLK]], %[[ROW]], %[[H]], %[[D]]]
// CHECK:         %[[YF:.*]] = arith.extf %[[Y]] : bf16 to f32
// CHECK-NEXT:    %[[YQ:.*]] = arith.mulf %[[YF]], %[[VR]] : f32
// CHECK:         memref.store %{{.*}}, %[[VC]][%[[BLK]], %[[ROW]], %[[H]], %[[D]]]
// CHECK-NOT: llvm.intr.fma
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kfma_vmul(

// The corrected product (quantize-division=fma for every stream; auto where
// the product alone is not proven): clamp to +-s * 2^17, multiply by
// RN(1/s), one FMA correction, the product where it is zero.
// FMA-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fma(
// FMA-SAME: %[[S:[a-z0-9]+]]: memref<?xi64>, %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// FMA-DAG: %[[FZERO:.*]] = arith.constant 0.000000e+00 : f32
// FMA-DAG: %[[P17:.*]] = arith.constant 1.310720e+05 : f32
// FMA-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// FMA: %[[KR:.*]] = arith.divf %[[ONE]], %[[KS]] : f32
// FMA: %[[VR:.*]] = arith.divf %[[ONE]], %[[VS]] : f32
// FMA: %[[KB:.*]] = arith.mulf %[[KS]], %[[P17]] : f32
// FMA: %[[KNS:.*]] = arith.negf %[[KS]] : f32
// FMA: %[[KNB:.*]] = arith.negf %[[KB]] : f32
// FMA: %[[VB:.*]] = arith.mulf %[[VS]], %[[P17]] : f32
// FMA: %[[VNS:.*]] = arith.negf %[[VS]] : f32
// FMA:         %[[X:.*]] = memref.load %[[K]]
// FMA:         %[[Y:.*]] = memref.load %[[V]]
// FMA:         %[[XF:.*]] = arith.extf %[[X]] : bf16 to f32
// FMA:         %[[X1:.*]] = arith.maximumf %[[XF]], %[[KNB]] : f32
// FMA:         %[[X2:.*]] = arith.minimumf %[[X1]], %[[KB]] : f32
// FMA:         %[[Q0:.*]] = arith.mulf %[[X2]], %[[KR]] : f32
// FMA:         %[[E:.*]] = llvm.intr.fma(%[[KNS]], %[[Q0]], %[[X2]]) : (f32, f32, f32) -> f32
// FMA:         %[[Q1:.*]] = llvm.intr.fma(%[[E]], %[[KR]], %[[Q0]]) : (f32, f32, f32) -> f32
// FMA:         %[[ISZERO:.*]] = arith.cmpf oeq, %[[Q0]], %[[FZERO]] : f32
// FMA:         %[[XQ:.*]] = arith.select %[[ISZERO]], %[[Q0]], %[[Q1]] : f32
// FMA:         %[[XB:.*]] = arith.bitcast %[[XQ]] : f32 to i32
// FMA:         memref.store %{{.*}}, %[[KC]]
// FMA:         %[[YF:.*]] = arith.extf %[[Y]] : bf16 to f32
// FMA:         %[[Y1:.*]] = arith.maximumf %[[YF]]
// FMA:         %[[Y2:.*]] = arith.minimumf %[[Y1]], %[[VB]]
// FMA:         %[[YQ0:.*]] = arith.mulf %[[Y2]], %[[VR]] : f32
// FMA:         llvm.intr.fma(%[[VNS]], %[[YQ0]], %[[Y2]])
// FMA:         memref.store %{{.*}}, %[[VC]]

// K corrected, V the product alone.
// CHECK-SAME: %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// CHECK: %[[KR:.*]] = arith.divf %{{.*}}, %[[KS]] : f32
// CHECK: %[[VR:.*]] = arith.divf %{{.*}}, %[[VS]] : f32
// CHECK:         %[[XF:.*]] = arith.extf %{{.*}} : bf16 to f32
// CHECK:         arith.maximumf %[[XF]]
// CHECK:         llvm.intr.fma
// CHECK:         llvm.intr.fma
// CHECK:         %[[YF:.*]] = arith.extf %{{.*}} : bf16 to f32
// CHECK-NEXT:    arith.mulf %[[YF]], %[[VR]] : f32
// CHECK-NOT: llvm.intr.fma
// CHECK-LABEL: func.func private @kvq_cache_store_f16_f8E4M3FNUZ_2x16_b4(

// quantize-division=divf: x / s, nothing else.
// DIVF-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_divf(
// DIVF-SAME: %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// DIVF-NOT: llvm.intr.fma
// DIVF: arith.divf %{{.*}}, %[[KS]] : f32
// DIVF-NOT: llvm.intr.fma
// DIVF: arith.divf %{{.*}}, %[[VS]] : f32
// DIVF-NOT: llvm.intr.fma
// DIVF-LABEL: func.func private @kvq_cache_store_f16_f8E4M3FNUZ_2x16_b4_divf(

// FNUZ: max 240.0 = 0x43700000, NaN 0x80, and a zero result loses its sign.
// CHECK-DAG: %[[MAX:.*]] = arith.constant 1131413504 : i32
// CHECK-DAG: %[[NAN:.*]] = arith.constant 128 : i32
// CHECK: arith.minui %{{.*}}, %[[MAX]] : i32
// CHECK: arith.select %{{.*}}, %[[NAN]], %{{.*}} : i32
// CHECK: arith.bitcast %{{.*}} : i8 to f8E4M3FNUZ

// e5m2: max 57344.0 = 0x47600000 (+-inf saturate to it), NaN 0x7F; f32
// activations need no extension.
// CHECK-LABEL: func.func private @kvq_cache_store_f32_f8E5M2_2x16_b4_divf(
// CHECK-DAG: %[[MAX:.*]] = arith.constant 1197473792 : i32
// CHECK-NOT: arith.extf
// CHECK-NOT: llvm.intr.fma
// CHECK: arith.divf
// CHECK: arith.minui %{{.*}}, %[[MAX]] : i32
// CHECK: arith.bitcast %{{.*}} : i8 to f8E5M2

// CHECK-LABEL: func.func private @kvq_cache_store_f32_f8E4M3FN_2x16_b4_divf(
// CHECK-SAME: %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// CHECK-NOT: llvm.intr.fma
// CHECK: arith.divf %{{.*}}, %[[KS]] : f32
// CHECK-NOT: llvm.intr.fma
// CHECK: arith.divf %{{.*}}, %[[VS]] : f32
// CHECK-NOT: llvm.intr.fma

// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_2x16_b4_divf(
// CHECK-SAME: %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// CHECK-NOT: llvm.intr.fma
// CHECK: arith.divf %{{.*}}, %[[KS]] : f32
// CHECK-NOT: llvm.intr.fma
// CHECK: arith.divf %{{.*}}, %[[VS]] : f32
// CHECK-NOT: llvm.intr.fma

// K by the product (RN(1/k_scale) only), V by division.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_2x16_b4_kmul_vdivf(
// CHECK-SAME: %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// CHECK: %[[KR:.*]] = arith.divf %{{.*}}, %[[KS]] : f32
// CHECK-NOT: arith.divf
// CHECK: arith.mulf %{{.*}}, %[[KR]] : f32
// CHECK-NOT: arith.divf
// CHECK: arith.divf %{{.*}}, %[[VS]] : f32
// CHECK-NOT: llvm.intr.fma

// int8: clamp to [-128, 127] with ordered compares, NaN -> 0, round half to
// even with the 1.5 * 2^23 = 0x4B400000 trick, then fptosi.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_i8_8x128_b16(
// CHECK-DAG: %[[MAGIC:.*]] = arith.constant 0x4B400000 : f32
// CHECK-DAG: %[[HI:.*]] = arith.constant 1.270000e+02 : f32
// CHECK-DAG: %[[LO:.*]] = arith.constant -1.280000e+02 : f32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NOT: llvm.intr.fma
// CHECK: %[[Q:.*]] = arith.mulf
// CHECK: %[[GT:.*]] = arith.cmpf ogt, %[[Q]], %[[HI]]
// CHECK: %[[C1:.*]] = arith.select %[[GT]], %[[HI]], %[[Q]]
// CHECK: %[[LT:.*]] = arith.cmpf olt, %[[C1]], %[[LO]]
// CHECK: %[[C2:.*]] = arith.select %[[LT]], %[[LO]], %[[C1]]
// CHECK: %[[ISNAN:.*]] = arith.cmpf uno, %[[Q]], %[[Q]]
// CHECK: %[[C3:.*]] = arith.select %[[ISNAN]], %[[ZERO]], %[[C2]]
// CHECK: %[[UP:.*]] = arith.addf %[[C3]], %[[MAGIC]]
// CHECK: %[[R:.*]] = arith.subf %[[UP]], %[[MAGIC]]
// CHECK: %[[I:.*]] = arith.fptosi %[[R]] : f32 to i32
// CHECK: %[[B:.*]] = arith.trunci %[[I]] : i32 to i8
// CHECK: memref.store %[[B]]

// auto: a plain copy, no arithmetic; the scales are not used.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_bf16_2x16_b4_0(
// CHECK-NOT: arith.divf
// CHECK: %[[X:.*]] = memref.load %{{.*}} : memref<4x2x16xbf16>
// CHECK-NOT: arith.extf
// CHECK: memref.store %[[X]], %{{.*}} : memref<2x4x2x16xbf16>

// Load: exact software widening of the byte to f32, times the scale,
// rounded to the output type; a NaN product becomes the canonical 0x7E00.
// CHECK-LABEL: func.func private @kvq_cache_load_f8E4M3FN_f16_8x128_b16(
// CHECK-SAME: %[[S:[a-z0-9]+]]: memref<?xi64>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[K:[a-z0-9]+]]: memref<?x8x128xf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xf16>, %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// CHECK-DAG: %[[QNAN:.*]] = arith.constant 0x7E00 : f16
// CHECK-NOT: arith.divf
// CHECK: scf.if
// CHECK: %[[C:.*]] = memref.load %[[KC]]
// CHECK: %[[CB:.*]] = arith.bitcast %[[C]] : f8E4M3FN to i8
// CHECK: arith.extui %[[CB]] : i8 to i32
// CHECK: %[[F:.*]] = arith.bitcast %{{.*}} : i32 to f32
// CHECK: %[[P:.*]] = arith.mulf %[[F]], %[[KS]] : f32
// CHECK: %[[O:.*]] = arith.truncf %[[P]] : f32 to f16
// CHECK: %[[ISNAN:.*]] = arith.cmpf uno, %[[P]], %[[P]] : f32
// CHECK: %[[R:.*]] = arith.select %[[ISNAN]], %[[QNAN]], %[[O]] : f16
// CHECK: memref.store %[[R]], %[[K]]
// CHECK: arith.mulf %{{.*}}, %[[VS]] : f32
// CHECK: memref.store %{{.*}}, %[[V]]

// int8 load: sitofp, times the scale; never NaN, so no select.
// CHECK-LABEL: func.func private @kvq_cache_load_i8_bf16_2x16_b4(
// CHECK: %[[F:.*]] = arith.sitofp %{{.*}} : i8 to f32
// CHECK: %[[P:.*]] = arith.mulf %[[F]], %{{.*}} : f32
// CHECK: %[[O:.*]] = arith.truncf %[[P]] : f32 to bf16
// CHECK-NEXT: memref.store %[[O]]

// CHECK-LABEL: func.func private @kvq_cache_load_bf16_bf16_2x16_b4(
// CHECK: %[[X:.*]] = memref.load %{{.*}} : memref<2x4x2x16xbf16>
// CHECK-NOT: arith.truncf
// CHECK: memref.store %[[X]], %{{.*}} : memref<4x2x16xbf16>
