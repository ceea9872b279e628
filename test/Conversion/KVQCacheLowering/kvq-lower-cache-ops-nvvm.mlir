// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,SM90
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_80" --canonicalize --cse | FileCheck %s --check-prefixes=CHECK,SM80
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --gpu-kernel-outlining | FileCheck %s --check-prefix=OUTLINE
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90 quantize-division=divf" | FileCheck %s --check-prefix=DIVF
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90 quantize-division=fma" --canonicalize --cse | FileCheck %s --check-prefix=FMA

// NVIDIA: each cache op becomes one gpu.launch of 128-thread blocks with a
// grid-stride loop; a work item is 8 elements per stream, one 16-byte bf16
// access (the store reads 8 bf16 and writes 8 fp8 bytes, the load the
// reverse). sm_89+
// converts e4m3 / e5m2 with the cvt instructions; sm_80, and FNUZ formats
// on any chip, use the software conversion.

kvq.layer @e4m3 cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 2.500000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @e5m2 cache(fp8_e5m2) resolved(#kvq.resolved_scales<k = 1.000000e+00 default, v = 1.000000e+00 default, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// Each cache op calls the function of its signature with the layer's
// scales; the function computes RN(1/s) on the host and launches.
// CHECK-LABEL: func.func @store_e4m3(
// CHECK-SAME: %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[S:[a-z0-9]+]]: memref<?xi64>)
// CHECK-DAG: %[[KS:.*]] = arith.constant 5.000000e-02 : f32
// CHECK-DAG: %[[VS:.*]] = arith.constant 2.500000e-01 : f32
// CHECK: call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(%[[S]], %[[K]], %[[V]], %[[KC]], %[[VC]], %[[KS]], %[[VS]])

// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(
// CHECK-SAME: %[[S:[a-z0-9]+]]: memref<?xi64>, %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-DAG: %[[C128:.*]] = arith.constant 128 : index
// CHECK-DAG: %[[C1:.*]] = arith.constant 1 : index
// CHECK: %[[KRS:.*]] = arith.divf %[[ONE]], %[[KS]] : f32
// CHECK: %[[VRS:.*]] = arith.divf %[[ONE]], %[[VS]] : f32
// CHECK: %[[T:.*]] = memref.dim %[[S]]
// CHECK: %[[WORK:.*]] = arith.muli %[[T]], %[[C128]] : index
// CHECK: %[[CEIL:.*]] = arith.ceildivui %[[WORK]], %[[C128]] : index
// CHECK: %[[GRID:.*]] = arith.maxui %[[CEIL]], %[[C1]] : index
// CHECK: gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%[[GX:.*]] = %[[GRID]], %{{.*}} = %[[C1]], %{{.*}} = %[[C1]]) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %[[C128]], %{{.*}} = %[[C1]], %{{.*}} = %[[C1]]) module(@kvq_cache_kernels)
// Once per thread: RN(1/s) as vectors.
// CHECK-DAG: %[[KR:.*]] = vector.broadcast %[[KRS]] : f32 to vector<8xf32>
// CHECK-DAG: %[[VR:.*]] = vector.broadcast %[[VRS]] : f32 to vector<8xf32>
// CHECK: %[[STEP:.*]] = arith.muli %[[GX]], %[[C128]] : index
// The store loads K, V and the slot unconditionally; only the two stores
// depend on the slot: a predicated st.global.v2.b32 each (inline PTX, so
// that LLVM has no branch to sink the loads into). x / 0.05 without a
// division: the product x * RN(1/s), proven to give the division's bytes
// for this scale into f8E4M3FN (see ScaledDivision.h).
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %[[WORK]] step %[[STEP]]
// CHECK-NOT: scf.if
// CHECK:   %[[X:.*]] = vector.load %[[K]][%{{.*}}, %{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<?x8x128xbf16>, vector<8xbf16>
// CHECK:   %[[Y:.*]] = vector.load %[[V]][%{{.*}}, %{{.*}}, %{{.*}}] {alignment = 16 : i64} : memref<?x8x128xbf16>, vector<8xbf16>
// CHECK:   %[[SLOTV:.*]] = vector.load %[[S]][%{{.*}}] {alignment = 8 : i64} : memref<?xi64>, vector<1xi64>
// CHECK:   %[[SLOT:.*]] = vector.extract %[[SLOTV]][0] : i64 from vector<1xi64>
// CHECK:   %[[VALID:.*]] = arith.cmpi sge, %[[SLOT]], %{{.*}} : i64
// CHECK:   %[[XF:.*]] = arith.extf %[[X]] : vector<8xbf16> to vector<8xf32>
// CHECK-NEXT: %[[XQ:.*]] = arith.mulf %[[XF]], %[[KR]] : vector<8xf32>
// The cvt puts its first operand in the high byte: element 1 goes first so
// that element 0 lands at the lower address.
// SM90:      %[[E0:.*]] = vector.extract %[[XQ]][0] : f32 from vector<8xf32>
// SM90:      %[[E1:.*]] = vector.extract %[[XQ]][1] : f32 from vector<8xf32>
// SM90:      nvvm.convert.f32x2.to.f8x2 %[[E1]], %[[E0]] {rnd = #nvvm.fp_rnd_mode<rn>, sat = #nvvm.sat_mode<satfinite>} : vector<2xi8>(f8E4M3FN)
// SM90-COUNT-3: nvvm.convert.f32x2.to.f8x2
// SM80-NOT:  nvvm.convert
// SM80:      arith.minui %{{.*}}, %{{.*}} : vector<8xi32>
// CHECK:   %[[BYTES:.*]] = arith.bitcast %{{.*}} : vector<8xi8> to vector<8xf8E4M3FN>
// CHECK:   %[[KPTR:.*]] = memref.extract_aligned_pointer_as_index %[[KC]]
// CHECK:   %[[KADDR:.*]] = arith.addi %[[KPTR]], %{{.*}} : index
// CHECK:   %[[KADDR64:.*]] = arith.index_castui %[[KADDR]] : index to i64
// CHECK:   %[[WORDS:.*]] = vector.bitcast %[[BYTES]] : vector<8xf8E4M3FN> to vector<2xi32>
// CHECK:   %[[W0:.*]] = vector.extract %[[WORDS]][0] : i32 from vector<2xi32>
// CHECK:   %[[W1:.*]] = vector.extract %[[WORDS]][1] : i32 from vector<2xi32>
// CHECK:   %[[P:.*]] = arith.extui %[[VALID]] : i1 to i32
// CHECK:   llvm.inline_asm has_side_effects asm_dialect = att "{{.*}}setp.ne.b32 p, $3, 0;{{.*}}cvta.to.global.u64 g, $0;{{.*}}@p st.global.v2.b32 [g], {$1, $2};{{.*}}", "l,r,r,r,~{memory}" %[[KADDR64]], %[[W0]], %[[W1]], %[[P]]
// CHECK:   %[[YF:.*]] = arith.extf %[[Y]] : vector<8xbf16> to vector<8xf32>
// CHECK-NEXT: arith.mulf %[[YF]], %[[VR]] : vector<8xf32>
// CHECK:   memref.extract_aligned_pointer_as_index %[[VC]]
// CHECK:   llvm.inline_asm
// CHECK-NOT: vector.store
// CHECK-NOT: llvm.intr.fma
// CHECK:   gpu.terminator

// quantize-division=fma: the corrected product (ScaledDivision.h): clamp
// to +-s * 2^17, multiply by RN(1/s), one FMA correction, the product where
// it is zero.
// FMA-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fma(
// FMA: %[[XF:.*]] = arith.extf %{{.*}} : vector<8xbf16> to vector<8xf32>
// FMA: %[[X1:.*]] = arith.maximumf %[[XF]], %{{.*}} : vector<8xf32>
// FMA: %[[X2:.*]] = arith.minimumf %[[X1]], %{{.*}} : vector<8xf32>
// FMA: %[[Q0:.*]] = arith.mulf %[[X2]], %[[KR:.*]] : vector<8xf32>
// FMA: %[[E:.*]] = llvm.intr.fma(%{{.*}}, %[[Q0]], %[[X2]]) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// FMA: %[[Q1:.*]] = llvm.intr.fma(%[[E]], %[[KR]], %[[Q0]]) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// FMA: %[[ISZERO:.*]] = arith.cmpf oeq, %[[Q0]], %{{.*}} : vector<8xf32>
// FMA: arith.select %[[ISZERO]], %[[Q0]], %[[Q1]] : vector<8xi1>, vector<8xf32>
// FMA: nvvm.convert.f32x2.to.f8x2
// FMA: llvm.intr.fma
// FMA: llvm.intr.fma
// FMA: gpu.terminator

// quantize-division=divf: a true division, nothing else.
// DIVF-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_divf(
// DIVF-NOT: llvm.intr.fma
// DIVF: arith.divf %{{.*}}, %{{.*}} : vector<8xf32>
// DIVF-NOT: llvm.intr.fma
// DIVF: arith.divf %{{.*}}, %{{.*}} : vector<8xf32>
// DIVF-NOT: llvm.intr.fma
// DIVF-LABEL: func.func private @kvq_cache_load_f8E4M3FN_bf16_8x128_b16(

// The outlined kernel takes the base buffers of the memrefs (rank-0: one
// bare pointer each with kvq's pipelines) in the documented order
// (slot_mapping, K source, V source, K destination, V destination), then
// k_scale, RN(1/k_scale), v_scale, RN(1/v_scale), then each memref's
// dynamic sizes (here the leading one), and rebuilds the memrefs; the load
// too.
// OUTLINE-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16(
// OUTLINE-SAME: %[[S:[a-z0-9]+]]: memref<?xi64>, %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[KS:[a-z0-9]+]]: f32, %[[VS:[a-z0-9]+]]: f32)
// OUTLINE: %[[KR:.*]] = arith.divf %{{.*}}, %[[KS]] : f32
// OUTLINE: %[[VR:.*]] = arith.divf %{{.*}}, %[[VS]] : f32
// OUTLINE: %[[SB:[a-z0-9_]+]], %{{.*}}, %[[SN:[a-z0-9_]+]], %{{.*}} = memref.extract_strided_metadata %[[S]] : memref<?xi64> -> memref<i64>, index, index, index
// OUTLINE: %[[KB:[a-z0-9_]+]], %{{.*}}, %[[KN:[a-z0-9_]+]]:3, %{{.*}}:3 = memref.extract_strided_metadata %[[K]] : memref<?x8x128xbf16> -> memref<bf16>
// OUTLINE: %[[VB:[a-z0-9_]+]], %{{.*}}, %[[VN:[a-z0-9_]+]]:3, %{{.*}}:3 = memref.extract_strided_metadata %[[V]]
// OUTLINE: %[[KCB:[a-z0-9_]+]], %{{.*}}, %[[KCN:[a-z0-9_]+]]:4, %{{.*}}:4 = memref.extract_strided_metadata %[[KC]] : memref<?x16x8x128xf8E4M3FN> -> memref<f8E4M3FN>
// OUTLINE: %[[VCB:[a-z0-9_]+]], %{{.*}}, %[[VCN:[a-z0-9_]+]]:4, %{{.*}}:4 = memref.extract_strided_metadata %[[VC]]
// OUTLINE: gpu.launch_func @kvq_cache_kernels::@kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}}) args(%[[SB]] : memref<i64>, %[[KB]] : memref<bf16>, %[[VB]] : memref<bf16>, %[[KCB]] : memref<f8E4M3FN>, %[[VCB]] : memref<f8E4M3FN>, %[[KS]] : f32, %[[KR]] : f32, %[[VS]] : f32, %[[VR]] : f32, %[[SN]] : index, %[[KN]]#0 : index, %[[VN]]#0 : index, %[[KCN]]#0 : index, %[[VCN]]#0 : index)
// OUTLINE: gpu.module @kvq_cache_kernels
// OUTLINE: gpu.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_kernel(%[[S:[a-z0-9]+]]: memref<i64>, %[[K:[a-z0-9]+]]: memref<bf16>, %{{.*}}: memref<bf16>, %{{.*}}: memref<f8E4M3FN>, %{{.*}}: memref<f8E4M3FN>, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %[[T:[a-z0-9]+]]: index, %[[TK:[a-z0-9]+]]: index, %{{.*}}: index, %[[NB:[a-z0-9]+]]: index, %{{.*}}: index) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// OUTLINE: memref.reinterpret_cast %[[S]] to offset: [0], sizes: [%[[T]]], strides: [1] : memref<i64> to memref<?xi64>
// OUTLINE: memref.reinterpret_cast %[[K]] to offset: [0], sizes: [%[[TK]], 8, 128], strides: [1024, 128, 1] : memref<bf16> to memref<?x8x128xbf16>
// OUTLINE: memref.reinterpret_cast
// OUTLINE: memref.reinterpret_cast %{{.*}} to offset: [0], sizes: [%[[NB]], 16, 8, 128], strides: [16384, 1024, 128, 1] : memref<f8E4M3FN> to memref<?x16x8x128xf8E4M3FN>
// OUTLINE: gpu.func @kvq_cache_load_f8E4M3FN_bf16_8x128_b16_kernel(%{{.*}}: memref<i64>, %{{.*}}: memref<f8E4M3FN>, %{{.*}}: memref<f8E4M3FN>, %{{.*}}: memref<bf16>, %{{.*}}: memref<bf16>, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index) kernel
func.func @store_e4m3(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @e4m3 (%k, %v) into (%kc, %vc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}

// The load reads 8 cache bytes and writes 8 bf16 (16 bytes) per stream:
// cvt.rn.f16x2.e4m3x2, exact f16 -> f32, times the scale, round to bf16,
// NaN -> 0x7FC0. A thread takes two work items per pass, a grid apart (so
// the grid has half the blocks: ceil(T * 128 / 256)): both slots first,
// then both gathers, unconditionally (cache row 0 for a negative slot, or
// for a second item past the end), then the stores, predicated on the slot.
// An empty cache launches nothing.
// CHECK-LABEL: func.func private @kvq_cache_load_f8E4M3FN_bf16_8x128_b16(
// CHECK-SAME: %[[S:[a-z0-9]+]]: memref<?xi64>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %{{[a-z0-9]+}}: memref<?x16x8x128xf8E4M3FN>, %[[KO:[a-z0-9]+]]: memref<?x8x128xbf16>, %{{[a-z0-9]+}}: memref<?x8x128xbf16>, %[[KSS:[a-z0-9]+]]: f32, %{{[a-z0-9]+}}: f32)
// CHECK-DAG: %[[QNAN:.*]] = arith.constant dense<0x7FC0> : vector<8xbf16>
// CHECK-DAG: %[[C128:.*]] = arith.constant 128 : index
// CHECK-DAG: %[[C256:.*]] = arith.constant 256 : index
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[Z64:.*]] = arith.constant 0 : i64
// CHECK: %[[NB:.*]] = memref.dim %[[KC]], %[[C0]]
// CHECK: %[[NONEMPTY:.*]] = arith.cmpi ugt, %[[NB]], %[[C0]] : index
// CHECK: scf.if %[[NONEMPTY]] {
// CHECK: %[[T:.*]] = memref.dim %[[S]]
// CHECK: %[[WORK:.*]] = arith.muli %[[T]], %[[C128]] : index
// CHECK: %[[CEIL:.*]] = arith.ceildivui %[[WORK]], %[[C256]] : index
// CHECK: gpu.launch blocks(%{{[a-z0-9]+}}, %{{[a-z0-9]+}}, %{{[a-z0-9]+}}) in (%[[GX:[a-z0-9]+]] = %{{[a-z0-9]+}},
// CHECK: %[[KS:.*]] = vector.broadcast %[[KSS]] : f32 to vector<8xf32>
// CHECK: %[[STRIDE:.*]] = arith.muli %[[GX]], %[[C128]] : index
// CHECK: %[[STEP:.*]] = arith.muli %[[GX]], %[[C256]] : index
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %[[WORK]] step %[[STEP]]
// CHECK-NOT: scf.if
// CHECK:   %[[SLOT0V:.*]] = vector.load %[[S]]
// CHECK:   %[[SLOT0:.*]] = vector.extract %[[SLOT0V]][0]
// CHECK:   %[[VALID0:.*]] = arith.cmpi sge, %[[SLOT0]], %[[Z64]]
// CHECK:   %[[SAFE0:.*]] = arith.select %[[VALID0]], %[[SLOT0]], %[[Z64]] : i64
// CHECK:   %[[I1:.*]] = arith.addi %[[I]], %[[STRIDE]] : index
// CHECK:   %[[IN1:.*]] = arith.cmpi ult, %[[I1]], %[[WORK]] : index
// CHECK:   %[[I1S:.*]] = arith.select %[[IN1]], %[[I1]], %[[I]] : index
// CHECK:   vector.load %[[S]]
// CHECK:   %[[VALID1S:.*]] = arith.cmpi sge
// CHECK:   %[[VALID1:.*]] = arith.andi %[[VALID1S]], %[[IN1]] : i1
// CHECK:   %[[SAFE1:.*]] = arith.select %[[VALID1]], %{{.*}}, %[[Z64]] : i64
// CHECK:   arith.index_cast %[[SAFE0]]
// CHECK:   %[[G0K:.*]] = vector.load %[[KC]]{{.*}} {alignment = 8 : i64} : memref<?x16x8x128xf8E4M3FN>, vector<8xf8E4M3FN>
// CHECK:   vector.load
// CHECK:   arith.index_cast %[[SAFE1]]
// CHECK:   %[[G1K:.*]] = vector.load %[[KC]]
// CHECK:   vector.load
// CHECK-NOT: scf.if
// CHECK:   %[[CB:.*]] = arith.bitcast %[[G0K]] : vector<8xf8E4M3FN> to vector<8xi8>
// SM90: %[[PAIR:.*]] = vector.shuffle %[[CB]], %[[CB]] [0, 1] : vector<8xi8>, vector<8xi8>
// SM90: %[[H:.*]] = nvvm.convert.f8x2.to.f16x2 %[[PAIR]] : vector<2xi8>(f8E4M3FN) -> vector<2xf16>
// SM90: arith.extf %[[H]] : vector<2xf16> to vector<2xf32>
// SM80-NOT: nvvm.convert
// CHECK: %[[P:.*]] = arith.mulf %{{.*}}, %[[KS]] : vector<8xf32>
// CHECK: %[[O:.*]] = arith.truncf %[[P]] : vector<8xf32> to vector<8xbf16>
// CHECK: %[[ISNAN:.*]] = arith.cmpf uno, %[[P]], %[[P]] : vector<8xf32>
// CHECK: %[[R:.*]] = arith.select %[[ISNAN]], %[[QNAN]], %[[O]] : vector<8xi1>, vector<8xbf16>
// CHECK: memref.extract_aligned_pointer_as_index %[[KO]]
// CHECK: %[[P0:.*]] = arith.extui %[[VALID0]] : i1 to i32
// CHECK: llvm.inline_asm {{.*}}@p st.global.v4.b32{{.*}}, %[[P0]]
// CHECK: llvm.inline_asm {{.*}}@p st.global.v4.b32{{.*}}, %[[P0]]
// CHECK: arith.bitcast %[[G1K]]
// CHECK: %[[P1:.*]] = arith.extui %[[VALID1]] : i1 to i32
// CHECK: llvm.inline_asm {{.*}}@p st.global.v4.b32{{.*}}, %[[P1]]
// CHECK: llvm.inline_asm {{.*}}@p st.global.v4.b32{{.*}}, %[[P1]]
// CHECK-NOT: vector.store
// CHECK: gpu.terminator
func.func @load_e4m3(%kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>, %k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>) {
  kvq.cache_load @e4m3 (%kc, %vc) at %s into (%k, %v) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}

// e5m2 has its own cvt; f32 outputs take 4 elements (16 bytes) per thread.
// CHECK-LABEL: func.func private @kvq_cache_store_f16_f8E5M2_4x64_b16(
// SM90: nvvm.convert.f32x2.to.f8x2 {{.*}} : vector<2xi8>(f8E5M2)
// CHECK-LABEL: func.func private @kvq_cache_load_f8E5M2_f32_4x64_b16(
// SM90: nvvm.convert.f8x2.to.f16x2 {{.*}} : vector<2xi8>(f8E5M2) -> vector<2xf16>
// SM80-NOT: nvvm.convert
// CHECK: llvm.inline_asm {{.*}}@p st.global.v4.b32
func.func @roundtrip_e5m2(%k: memref<8x4x64xf16>, %kc: memref<4x16x4x64xf8E5M2>, %s: memref<8xi64>, %o: memref<8x4x64xf32>) {
  kvq.cache_store @e5m2 (%k, %k) into (%kc, %kc) at %s : memref<8x4x64xf16>, memref<4x16x4x64xf8E5M2>, memref<8xi64>
  kvq.cache_load @e5m2 (%kc, %kc) at %s into (%o, %o) : memref<4x16x4x64xf8E5M2>, memref<8xi64>, memref<8x4x64xf32>
  return
}

// FNUZ has no NVIDIA instruction: software conversion (max 240.0 =
// 0x43700000 as f32 bits), still vectorized.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FNUZ_2x128_b16(
// CHECK-NOT: nvvm.convert
// CHECK: arith.minui %{{.*}}, %{{.*}} : vector<8xi32>
// CHECK: llvm.inline_asm {{.*}}@p st.global.v2.b32
func.func @store_fnuz(%k: memref<8x2x128xbf16>, %kc: memref<4x16x2x128xf8E4M3FNUZ>, %s: memref<8xi64>) {
  kvq.cache_store @e4m3 (%k, %k) into (%kc, %kc) at %s : memref<8x2x128xbf16>, memref<4x16x2x128xf8E4M3FNUZ>, memref<8xi64>
  return
}

// f32 activations: 4 elements (16 bytes) per work item, so the store writes
// 4 cache bytes per stream: one predicated st.global.b32 each. (An f32
// quotient is never proven division-free: `_divf`.)
// CHECK-LABEL: func.func private @kvq_cache_store_f32_f8E4M3FN_2x64_b16_divf(
// CHECK: vector.load %{{.*}} : memref<8x2x64xf32>, vector<4xf32>
// CHECK: arith.divf %{{.*}}, %{{.*}} : vector<4xf32>
// CHECK: llvm.inline_asm {{.*}}setp.ne.b32 p, $2, 0;{{.*}}@p st.global.b32 [g], $1;{{.*}}", "l,r,r,~{memory}"
func.func @store_f32(%k: memref<8x2x64xf32>, %kc: memref<4x16x2x64xf8E4M3FN>, %s: memref<8xi64>) {
  kvq.cache_store @e4m3 (%k, %k) into (%kc, %kc) at %s : memref<8x2x64xf32>, memref<4x16x2x64xf8E4M3FN>, memref<8xi64>
  return
}

// A head size that is not a multiple of 8 takes the scalar path: one
// element per work item, memref.load / memref.store.
// CHECK-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_2x4_b16(
// CHECK: gpu.launch
// CHECK-NOT: vector.load %{{.*}} : memref<8x2x4xbf16>
// CHECK: memref.load %{{.*}} : memref<8x2x4xbf16>
// SM90: nvvm.convert.f32x2.to.f8x2
// CHECK: memref.store %{{.*}} : memref<4x16x2x4xf8E4M3FN>
func.func @scalar_fallback(%k: memref<8x2x4xbf16>, %kc: memref<4x16x2x4xf8E4M3FN>, %s: memref<8xi64>) {
  kvq.cache_store @e4m3 (%k, %k) into (%kc, %kc) at %s : memref<8x2x4xbf16>, memref<4x16x2x4xf8E4M3FN>, memref<8xi64>
  return
}
