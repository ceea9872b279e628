// RUN: kvq-opt %s --kvq-lower-attention | FileCheck %s \
// RUN:     --implicit-check-not=llvm.fence --implicit-check-not=atomic_rmw
// RUN: kvq-opt %s --kvq-to-ptx --kvq-write-isa=output=%t.ptx -o /dev/null
// RUN: FileCheck %s --check-prefix=PTX --implicit-check-not=fence \
// RUN:     --implicit-check-not=membar < %t.ptx

// On an NVIDIA target kvq.paged_attention becomes one gpu.launch per call:
// grid (splits, KV heads, sequences) of 128 threads, the split count from
// the workspace's size (docs/KernelABI.md), tensor-core tiles (mma.sync
// m16n8k16 on f16 operands converted from e4m3 by cvt), exp2 by
// ex2.approx.f32 with log2(e) folded into the score scale.

gpu.module @kvq_cache_kernels [#nvvm.target<chip = "sm_90">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// CHECK-LABEL: func.func @decode
// RN(0.05 * 1/sqrt(128) * log2(e)) = 0.0063758716.
// CHECK: call @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// CHECK-LABEL: func.func private @kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws(
// CHECK: %[[WS:.*]] = memref.dim %arg6
// Splits of 8 tiles or more (two a warp) run the staged kernel: each
// warp's next two tiles go to its two stages in shared memory by cp.async
// (32 KiB, where the warps' states go after the tile loop).
// CHECK: %[[STAGED:.*]] = arith.cmpi uge, %{{.*}}, %c8
// CHECK: scf.if %[[STAGED]] {
// CHECK: gpu.launch
// CHECK-SAME: threads(%{{.*}}, %{{.*}}, %{{.*}}) in (%{{.*}} = %c128
// CHECK-SAME: module(@kvq_cache_kernels) function(@kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws_staged_kernel)
// CHECK-SAME: workgroup(%{{.*}} : memref<512xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<4x8xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<4x8xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<32768xi8, #gpu.address_space<workgroup>>, %{{.*}} : memref<1xi32, #gpu.address_space<workgroup>>)
// CHECK-COUNT-8: nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 16, cache =  cg
// CHECK: nvvm.cp.async.commit.group
// CHECK: nvvm.cp.async.wait.group 1
// CHECK: nvvm.bar.warp.sync
// CHECK: nvvm.mma.sync
// CHECK: nvvm.cp.async.wait.group 0
// CHECK: "atom.acq_rel.gpu.add.u32 $0, [$1], 1;"
// Above 16 splits its last CTA merges 32 splits a batch with every load in
// flight: lane i loads split i's (max, sum), each lane 16 splits'
// accumulators into registers and 16 into its stage slots (zero-filled
// past the split count); the weights are shuffled from the lanes that
// computed them. Up to 16, the direct merge (checked below).
// CHECK: vector.load %{{.*}} : memref<?xf32>, vector<2xf32>
// CHECK-COUNT-16: vector.load %{{.*}} : memref<?xf32>, vector<4xf32>
// CHECK-COUNT-16: nvvm.cp.async.shared.global %{{.*}}, %{{.*}}, 16, cache =  cg, %{{.*}} :
// CHECK: nvvm.cp.async.commit.group
// CHECK: gpu.shuffle  xor
// CHECK: gpu.shuffle  idx
// CHECK: nvvm.cp.async.wait.group 0
// CHECK-COUNT-16: vector.load %{{.*}} : memref<8192xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// CHECK: gpu.terminator
// Shorter splits run the unstaged kernel, which holds a warp's next tile
// in registers.
// CHECK: } else {
// CHECK: gpu.launch
// CHECK-SAME: threads(%{{.*}}, %{{.*}}, %{{.*}}) in (%{{.*}} = %c128
// CHECK-SAME: module(@kvq_cache_kernels) workgroup(%{{.*}} : memref<512xi32, #gpu.address_space<workgroup>>, %{{.*}} : memref<4x8xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<4x8xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<16384xi8, #gpu.address_space<workgroup>>, %{{.*}} : memref<1xi32, #gpu.address_space<workgroup>>)
// The first DRAM trips go out together, before anything waits on the
// context length: a prefetch of the queries' lines into the L1, the
// table's first chunk, then the length; the queries' loads come after.
// CHECK: "prefetch.L1 [$0];"
// CHECK: scf.for
// CHECK: memref.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<?x?xi32>
// CHECK: memref.load %{{.*}}[%{{.*}}] : memref<?xi32>
// CHECK: vector.load %{{.*}} : memref<?x32x128xbf16>, vector<4xbf16>
// CHECK: nvvm.convert.f8x2.to.f16x2
// CHECK: nvvm.mma.sync
// CHECK: ex2.approx.f32
// CHECK: gpu.shuffle  idx
// CHECK: nvvm.prmt
// CHECK: nvvm.mma.sync
// The last CTA of a (sequence, KV head) merges the splits: after a
// barrier, the leader alone releases the CTA's partial states, counts the
// CTA in and acquires the others' with one acquire-release atomic (no
// fence anywhere: --implicit-check-not); a second barrier orders that
// before the merge's loads.
// CHECK: gpu.barrier
// CHECK: "atom.acq_rel.gpu.add.u32 $0, [$1], 1;"
// CHECK: gpu.barrier
// It loads split s's (max, sum) in 8 bytes and its accumulators in 16,
// only for s below the sequence's split count.
// CHECK: scf.if %{{.*}} -> (vector<2xf32>, vector<4xf32>)
// CHECK: vector.load %{{.*}} : memref<?xf32>, vector<2xf32>
// CHECK: vector.load %{{.*}} : memref<?xf32>, vector<4xf32>
// CHECK: gpu.terminator
func.func @decode(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>,
                  %bt: memref<?x?xi32>, %cl: memref<?xi32>,
                  %o: memref<?x32x128xbf16>, %ws: memref<?xi8>) {
  kvq.paged_attention @l (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%o)
      workspace(%ws : memref<?xi8>)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}

// PTX: .visible .entry kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws_staged_kernel(
// PTX-COUNT-7: .param .u64 .ptr
// PTX: cp.async.cg.shared.global [%{{.*}}], [%{{.*}}], 16;
// PTX: cp.async.wait_group 1;
// PTX: atom.acq_rel.gpu.add.u32
// PTX-COUNT-16: ld.global.v4.b32
// PTX-COUNT-16: cp.async.cg.shared.global [%{{.*}}], [%{{.*}}], 16, %r{{[0-9]+}};
// PTX: ret;
// PTX: .visible .entry kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_ws_kernel(
// PTX-COUNT-7: .param .u64 .ptr
// PTX-COUNT-3: .param .f32
// PTX: prefetch.L1
// PTX: ld.global.b32
// PTX: ld.global.b32
// PTX: bar.sync
// PTX: cvt.rn.f16x2.e4m3x2
// PTX: mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32
// PTX: ex2.approx.f32
// PTX: bar.sync
// PTX: atom.acq_rel.gpu.add.u32
// PTX: bar.sync
// PTX: ld.global.v2.b32
// PTX: ld.global.v4.b32
// PTX: ret;
