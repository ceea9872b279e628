// RUN: kvq-opt %s --kvq-lower-cache-ops --canonicalize --cse | FileCheck %s --check-prefix=CPU
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90" --gpu-kernel-outlining | FileCheck %s --check-prefix=NVVM
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=rocdl chip=gfx950" --canonicalize --cse | FileCheck %s --check-prefix=ROCDL
// RUN: kvq-opt %s --kvq-to-ptx=chip=sm_90 --kvq-write-isa=output=%t.ptx -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX --implicit-check-not=fma.rn.f32 < %t.ptx
// RUN: kvq-opt %s --kvq-to-amdgcn=chip=gfx950 --kvq-write-isa=output=%t.s -o /dev/null
// RUN: FileCheck %s --check-prefix=GCN < %t.s
// RUN: kvq-opt %s --kvq-to-llvm | FileCheck %s --check-prefix=LLVM

// kvq.fused_cache_store (what kvq-fuse-cache-producers and one-shot-
// bufferize make of RoPE + kvq.cache_store) lowers as kvq.cache_store does:
// one function (its own: the region is part of its code), the same loops
// and kernel, with the region cloned where the store loads K and V. The
// function takes slot_mapping, the caches, then what the region reads (in
// order of first use), then the scales.

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CPU-LABEL: func.func @rope_store(
// CPU-SAME:    %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[POS:[a-z0-9]+]]: memref<?xi64>, %[[COS:[a-z0-9]+]]: memref<4096x64xf32>, %[[SIN:[a-z0-9]+]]: memref<4096x64xf32>, %[[S:[a-z0-9]+]]: memref<?xi64>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>)
// CPU-DAG:     %[[KS:.*]] = arith.constant 5.000000e-02 : f32
// CPU-DAG:     %[[VS:.*]] = arith.constant 7.000000e-02 : f32
// CPU:         call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused(%[[S]], %[[KC]], %[[VC]], %[[K]], %[[POS]], %[[COS]], %[[SIN]], %[[V]], %[[KS]], %[[VS]])
// CPU-NOT:     kvq.
// CPU-LABEL: func.func private @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused(
// CPU-SAME:    %[[S:[a-z0-9]+]]: memref<?xi64>, %[[KC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[a-z0-9]+]]: memref<?x16x8x128xf8E4M3FN>, %[[K:[a-z0-9]+]]: memref<?x8x128xbf16>, %[[POS:[a-z0-9]+]]: memref<?xi64>, %[[COS:[a-z0-9]+]]: memref<4096x64xf32>, %[[SIN:[a-z0-9]+]]: memref<4096x64xf32>, %[[V:[a-z0-9]+]]: memref<?x8x128xbf16>, %{{.*}}: f32, %{{.*}}: f32)
// CPU:         scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step
// CPU:           memref.load %[[S]][%[[T]]]
// CPU:           scf.if
// CPU:             scf.for %[[H:.*]] = %{{.*}} to %{{.*}} step
// CPU:               scf.for %[[D:.*]] = %{{.*}} to %{{.*}} step
// CPU:                 %[[P:.*]] = memref.load %[[POS]][%[[T]]] {alignment = 8 : i64} : memref<?xi64>
// CPU:                 %[[X:.*]] = memref.load %[[K]][%[[T]], %[[H]], %[[D]]] : memref<?x8x128xbf16>
// CPU:                 %[[XP:.*]] = memref.load %[[K]][%[[T]], %[[H]], %{{.*}}] : memref<?x8x128xbf16>
// CPU:                 memref.load %[[COS]]
// CPU:                 memref.load %[[SIN]]
// CPU:                 %[[Y:.*]] = arith.truncf %{{.*}} : f32 to bf16
// CPU:                 %[[XV:.*]] = memref.load %[[V]][%[[T]], %[[H]], %[[D]]] : memref<?x8x128xbf16>
// CPU:                 arith.extf %[[Y]] : bf16 to f32
// CPU:                 memref.store %{{.*}}, %[[KC]]
// CPU:                 arith.extf %[[XV]] : bf16 to f32
// CPU:                 memref.store %{{.*}}, %[[VC]]

// The kernel: the store's parameters without the K and V sources, then
// the base buffers of what the region reads, then every dynamic size.
// NVVM:      gpu.launch_func @kvq_cache_kernels::@kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused_kernel
// NVVM-SAME:   args(%{{.*}} : memref<i64>, %{{.*}} : memref<f8E4M3FN>, %{{.*}} : memref<f8E4M3FN>, %{{.*}} : f32, %{{.*}} : f32, %{{.*}} : f32, %{{.*}} : f32, %{{.*}} : memref<bf16>, %{{.*}} : memref<i64>, %{{.*}} : memref<f32>, %{{.*}} : memref<f32>, %{{.*}} : memref<bf16>, %{{.*}} : index, %{{.*}} : index, %{{.*}} : index, %{{.*}} : index, %{{.*}} : index, %{{.*}} : index)
// A work item computes 8 consecutive elements d0 .. d0 + 7. What does not
// depend on d (the position load, its cast) is cloned once per work item;
// i64 loads get their natural alignment (else NVPTX reads two halves).
// Each load whose innermost index is a function f of d alone that reads
// one aligned vector across the work item (f evaluated for every d at
// compile time), its other indices independent of d, is one 16-byte-
// aligned vector load: K's x_d and V (f(d) = d), the partner
// x_{(d+64) mod 128} (f(d0) is 8-aligned, elements in order) and the cos /
// sin rows at the position (f(d) = d mod 64, the row index loaded once).
// NVVM-LABEL: gpu.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused_kernel(
// NVVM:        %[[P:.*]] = memref.load %{{.*}}[%[[T:.*]]] {alignment = 8 : i64} : memref<?xi64>
// NVVM-NEXT:   %[[ROW:.*]] = arith.index_cast %[[P]] : i64 to index
// NVVM-NEXT:   %[[XROW:.*]] = vector.load %[[KM:.*]][%[[T]], %[[H:.*]], %[[D:.*]]] {alignment = 16 : i64} : memref<?x8x128xbf16>, vector<8xbf16>
// NVVM-NEXT:   %[[SUM:.*]] = arith.addi %[[D]], %{{.*}} : index
// NVVM-NEXT:   %[[PI:.*]] = arith.remui %[[SUM]], %{{.*}} : index
// NVVM-NEXT:   %[[XP:.*]] = vector.load %[[KM]][%[[T]], %[[H]], %[[PI]]] {alignment = 16 : i64} : memref<?x8x128xbf16>, vector<8xbf16>
// NVVM-NEXT:   %[[I:.*]] = arith.remui %[[D]], %{{.*}} : index
// NVVM-NEXT:   %[[COS:.*]] = vector.load %{{.*}}[%[[ROW]], %[[I]]] {alignment = 16 : i64} : memref<4096x64xf32>, vector<8xf32>
// NVVM-NEXT:   %[[I2:.*]] = arith.remui %[[D]], %{{.*}} : index
// NVVM-NEXT:   %[[SIN:.*]] = vector.load %{{.*}}[%[[ROW]], %[[I2]]] {alignment = 16 : i64} : memref<4096x64xf32>, vector<8xf32>
// NVVM-NEXT:   %[[VROW:.*]] = vector.load %{{.*}}[%[[T]], %[[H]], %[[D]]] {alignment = 16 : i64} : memref<?x8x128xbf16>, vector<8xbf16>
// NVVM-NOT:    memref.load
// NVVM:        vector.extract %[[XROW]][0]
// NVVM-NEXT:   vector.extract %[[XP]][0]
// NVVM-NEXT:   vector.extract %[[COS]][0]
// NVVM-NEXT:   vector.extract %[[SIN]][0]
// NVVM-NOT:    memref.load
// NVVM:        vector.extract %[[SIN]][7]
// NVVM-NOT:    memref.load
// NVVM:        vector.extract %[[VROW]][7]
// NVVM-NOT:    memref.load
// NVVM:        vector.from_elements {{.*}} : vector<8xbf16>
// NVVM:        vector.from_elements {{.*}} : vector<8xbf16>
// NVVM:        nvvm.convert.f32x2.to.f8x2

// The interleaved partner d xor 1: one vector load at f(d0) - 1 = d0,
// whose elements the work item takes in pairs swapped.
// NVVM-LABEL: gpu.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused_0_kernel(
// NVVM:        %[[XOR:.*]] = arith.xori %[[D:.*]], %{{.*}} : index
// NVVM:        %[[BASE:.*]] = arith.subi %[[XOR]], %{{.*}} : index
// NVVM:        %[[XP:.*]] = vector.load %[[KM:.*]][%[[T:.*]], %[[H:.*]], %[[BASE]]] {alignment = 16 : i64} : memref<?x8x128xbf16>, vector<8xbf16>
// NVVM:        %[[X:.*]] = vector.load %[[KM]][%[[T]], %[[H]], %[[D]]] {alignment = 16 : i64} : memref<?x8x128xbf16>, vector<8xbf16>
// NVVM-NEXT:   vector.extract %[[XP]][1]
// NVVM-NEXT:   vector.extract %[[X]][0]
// NVVM:        vector.extract %[[XP]][0]
// NVVM-NEXT:   vector.extract %[[X]][1]
// NVVM:        vector.extract %[[XP]][7]
// NVVM-NEXT:   vector.extract %[[X]][6]
// NVVM:        vector.extract %[[XP]][6]
// NVVM-NEXT:   vector.extract %[[X]][7]
// NVVM-NOT:    memref.load

// What stays one load per element: a stride of 2 (f(d) = 2d: 16 elements
// per work item, not a permutation of 8) and an index read from memory
// (whose own load, idx[d], is a vector load).
// NVVM-LABEL: gpu.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused_1_kernel(
// NVVM:        %[[IDX:.*]] = vector.load %{{.*}}[%{{.*}}] {alignment = 16 : i64} : memref<128xi32>, vector<8xi32>
// NVVM-NOT:    vector.load {{.*}} : memref<?x8x256xbf16>
// NVVM:        %[[D2:.*]] = arith.muli %{{.*}}, %{{.*}} : index
// NVVM-NEXT:   memref.load %[[KM:.*]][%[[T:.*]], %[[H:.*]], %[[D2]]] : memref<?x8x256xbf16>
// NVVM-NEXT:   %[[I0:.*]] = vector.extract %[[IDX]][0] : i32 from vector<8xi32>
// NVVM-NEXT:   %[[J0:.*]] = arith.index_cast %[[I0]] : i32 to index
// NVVM-NEXT:   memref.load %[[KM]][%[[T]], %[[H]], %[[J0]]] : memref<?x8x256xbf16>
// NVVM-COUNT-14: memref.load %[[KM]][%[[T]], %[[H]], %{{.*}}] : memref<?x8x256xbf16>
// NVVM-NOT:    vector.load {{.*}} : memref<?x8x256xbf16>
// NVVM-NOT:    memref.load %[[KM]]
// NVVM:        vector.from_elements {{.*}} : vector<8xbf16>

// ROCDL:     gpu.launch
// ROCDL-COUNT-2: vector.load {{.*}} : memref<?x8x128xbf16>, vector<8xbf16>
// ROCDL-COUNT-2: vector.load {{.*}} : memref<4096x64xf32>, vector<8xf32>
// ROCDL-NEXT:  vector.load {{.*}} : memref<?x8x128xbf16>, vector<8xbf16>
// ROCDL-NOT:   memref.load
// ROCDL:       vector.from_elements {{.*}} : vector<8xbf16>
// ROCDL:       amdgpu.packed_trunc_2xfp8

// Products and sums keep their own roundings (no contraction to FMA): the
// bytes of the CPU.
// PTX:       .entry kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused_kernel(
// PTX-COUNT-18: .param
// PTX-NEXT:  {{^}})
// The position is one 8-byte load, K's and V's rows, the partner and the
// cos / sin rows 16-byte loads (32 bytes of f32 per table: two each).
// PTX-NOT:   ld.global.b16
// PTX-NOT:   ld.global.b32
// PTX:       ld.global.b64
// PTX-NOT:   ld.global.b16
// PTX-NOT:   ld.global.b32
// PTX-COUNT-7: ld.global.v4.b32
// PTX-NOT:   ld.global.b16
// PTX-NOT:   ld.global.b32
// PTX:       mul.rn.f32
// PTX:       add.rn.f32
// PTX:       cvt.rn.satfinite.e4m3x2.f32
// GCN:       .globl kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused_kernel
// GCN:       v_cvt_pk_fp8_f32
// LLVM:      llvm.func @rope_store(
// LLVM:        llvm.call @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused(
// LLVM:      llvm.func @kvq_cache_store_bf16_f8E4M3FN_8x128_b16_fused(
func.func @rope_store(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
    %positions: memref<?xi64>, %cos: memref<4096x64xf32>,
    %sin: memref<4096x64xf32>, %slots: memref<?xi64>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>) {
  %c64 = arith.constant 64 : index
  %c128 = arith.constant 128 : index
  kvq.fused_cache_store @l into (%kc, %vc) at %slots
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %k[%t, %h, %d] : memref<?x8x128xbf16>
    %dp = arith.addi %d, %c64 : index
    %partner = arith.remui %dp, %c128 : index
    %xp = memref.load %k[%t, %h, %partner] : memref<?x8x128xbf16>
    %p = memref.load %positions[%t] : memref<?xi64>
    %row = arith.index_cast %p : i64 to index
    %i = arith.remui %d, %c64 : index
    %c = memref.load %cos[%row, %i] : memref<4096x64xf32>
    %s = memref.load %sin[%row, %i] : memref<4096x64xf32>
    %xf = arith.extf %x : bf16 to f32
    %xpf = arith.extf %xp : bf16 to f32
    %neg = arith.negf %xpf : f32
    %first = arith.cmpi ult, %d, %c64 : index
    %r = arith.select %first, %neg, %xpf : f32
    %xc = arith.mulf %xf, %c : f32
    %rs = arith.mulf %r, %s : f32
    %y = arith.addf %xc, %rs : f32
    %yb = arith.truncf %y : f32 to bf16
    %xv = memref.load %v[%t, %h, %d] : memref<?x8x128xbf16>
    kvq.yield %yb, %xv : bf16, bf16
  }
  return
}

func.func @pair_swap_store(%k: memref<?x8x128xbf16>, %slots: memref<?xi64>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>) {
  %c1 = arith.constant 1 : index
  kvq.fused_cache_store @l into (%kc, %vc) at %slots
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %partner = arith.xori %d, %c1 : index
    %xp = memref.load %k[%t, %h, %partner] : memref<?x8x128xbf16>
    %x = memref.load %k[%t, %h, %d] : memref<?x8x128xbf16>
    kvq.yield %xp, %x : bf16, bf16
  }
  return
}

func.func @gather_store(%k: memref<?x8x256xbf16>, %idx: memref<128xi32>,
    %slots: memref<?xi64>, %kc: memref<?x16x8x128xf8E4M3FN>,
    %vc: memref<?x16x8x128xf8E4M3FN>) {
  %c2 = arith.constant 2 : index
  kvq.fused_cache_store @l into (%kc, %vc) at %slots
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %d2 = arith.muli %d, %c2 : index
    %strided = memref.load %k[%t, %h, %d2] : memref<?x8x256xbf16>
    %i = memref.load %idx[%d] : memref<128xi32>
    %j = arith.index_cast %i : i32 to index
    %gathered = memref.load %k[%t, %h, %j] : memref<?x8x256xbf16>
    kvq.yield %strided, %gathered : bf16, bf16
  }
  return
}
