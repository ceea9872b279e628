// RUN: kvq-opt %s --kvq-lower-cache-ops="target=rocdl chip=gfx942" --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,GFX942
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=rocdl chip=gfx950" --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,GFX950
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=rocdl chip=gfx90a" --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,GFX90A

// AMD: gfx942 converts the FNUZ formats natively, gfx950 the OCP ones, with
// amdgpu.packed_trunc_2xfp8 after a clamp to +-max (the instruction does not
// saturate; the ordered compares keep NaN) and amdgpu.ext_packed_fp8; other
// formats, and chips without fp8 (gfx90a), use the software conversion.
// There is no grid-stride loop (gridDim would need the ROCm device
// libraries): one work item per thread.

kvq.layer @e4m3 cache(fp8) resolved(#kvq.resolved_scales<k = 1.000000e-01 checkpoint, v = 2.000000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// The cache ops call one function per signature (see
// kvq-lower-cache-ops-cpu.mlir); here are their bodies.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FNUZ_2x128_b16(
// GFX942-DAG: %[[MAX:.*]] = arith.constant 2.400000e+02 : f32
// GFX942-DAG: %[[MIN:.*]] = arith.constant -2.400000e+02 : f32
// CHECK: gpu.launch
// CHECK-NOT: gpu.grid_dim
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[WORK:.*]] step %[[WORK]]
// GFX942: %[[A:.*]] = vector.extract %{{.*}}[0] : f32 from vector<8xf32>
// GFX942: %[[B:.*]] = vector.extract %{{.*}}[1] : f32 from vector<8xf32>
// GFX942: %[[OVER:.*]] = arith.cmpf ogt, %[[A]], %[[MAX]] : f32
// GFX942: %[[A1:.*]] = arith.select %[[OVER]], %[[MAX]], %[[A]] : f32
// GFX942: %[[UNDER:.*]] = arith.cmpf olt, %[[A1]], %[[MIN]] : f32
// GFX942: %[[A2:.*]] = arith.select %[[UNDER]], %[[MIN]], %[[A1]] : f32
// GFX942: %[[P:.*]] = amdgpu.packed_trunc_2xfp8 %[[A2]], %{{.*}} into undef[word 0] : f32 to vector<4xf8E4M3FNUZ>
// GFX942: %[[PB:.*]] = arith.bitcast %[[P]] : vector<4xf8E4M3FNUZ> to vector<4xi8>
// GFX942: vector.shuffle %[[PB]], %[[PB]] [0, 1] : vector<4xi8>, vector<4xi8>
// GFX942-COUNT-3: amdgpu.packed_trunc_2xfp8
// GFX950-NOT: amdgpu.packed_trunc_2xfp8
// GFX90A-NOT: amdgpu.packed_trunc_2xfp8
// CHECK: vector.store %{{.*}} {alignment = 8 : i64} : memref<8x16x2x128xf8E4M3FNUZ>, vector<8xf8E4M3FNUZ>
// CHECK-LABEL: func.func private @kvq_cache_load_f8E4M3FNUZ_bf16_2x128_b16(
// GFX942: amdgpu.ext_packed_fp8 %{{.*}}[0] : vector<2xf8E4M3FNUZ> to vector<2xf32>
// GFX950-NOT: amdgpu.ext_packed_fp8
// CHECK: vector.store %{{.*}} {alignment = 16 : i64} : memref<8x2x128xbf16>, vector<8xbf16>
func.func @fnuz(%k: memref<8x2x128xbf16>, %kc: memref<8x16x2x128xf8E4M3FNUZ>, %s: memref<8xi64>, %o: memref<8x2x128xbf16>) {
  kvq.cache_store @e4m3 (%k, %k) into (%kc, %kc) at %s : memref<8x2x128xbf16>, memref<8x16x2x128xf8E4M3FNUZ>, memref<8xi64>
  kvq.cache_load @e4m3 (%kc, %kc) at %s into (%o, %o) : memref<8x16x2x128xf8E4M3FNUZ>, memref<8xi64>, memref<8x2x128xbf16>
  return
}

// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_2x128_b16(
// GFX950-DAG: %[[MAX:.*]] = arith.constant 4.480000e+02 : f32
// GFX950: amdgpu.packed_trunc_2xfp8 %{{.*}}, %{{.*}} into undef[word 0] : f32 to vector<4xf8E4M3FN>
// GFX942-NOT: amdgpu.packed_trunc_2xfp8
// GFX90A-NOT: amdgpu.
// CHECK-LABEL: func.func private @kvq_cache_load_f8E4M3FN_bf16_2x128_b16(
// GFX950: amdgpu.ext_packed_fp8 %{{.*}}[0] : vector<2xf8E4M3FN> to vector<2xf32>
// GFX942-NOT: amdgpu.ext_packed_fp8
// GFX90A-NOT: amdgpu.
// CHECK: return
func.func @ocp(%k: memref<8x2x128xbf16>, %kc: memref<8x16x2x128xf8E4M3FN>, %s: memref<8xi64>, %o: memref<8x2x128xbf16>) {
  kvq.cache_store @e4m3 (%k, %k) into (%kc, %kc) at %s : memref<8x2x128xbf16>, memref<8x16x2x128xf8E4M3FN>, memref<8xi64>
  kvq.cache_load @e4m3 (%kc, %kc) at %s into (%o, %o) : memref<8x16x2x128xf8E4M3FN>, memref<8xi64>, memref<8x2x128xbf16>
  return
}
