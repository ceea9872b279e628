// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --pass-pipeline='builtin.module(gpu.module(kvq-convert-gpu-to-rocdl))' \
// RUN:   | FileCheck %s

// convert-gpu-to-rocdl with the chipset of the gpu.module's target: the
// fp8 packing of gfx942 becomes its ROCDL intrinsic (the upstream pass left
// at its default chipset leaves amdgpu.packed_trunc_2xfp8 unconverted).

// CHECK-LABEL: gpu.module @k
// CHECK: rocdl.cvt.pk.fp8.f32
// CHECK-NOT: amdgpu.packed_trunc_2xfp8
gpu.module @k [#rocdl.target<chip = "gfx942">] {
  gpu.func @f(%a: f32, %b: f32, %out: memref<4xf8E4M3FNUZ>) kernel {
    %p = amdgpu.packed_trunc_2xfp8 %a, %b into undef[word 0] : f32 to vector<4xf8E4M3FNUZ>
    %c0 = arith.constant 0 : index
    vector.store %p, %out[%c0] : memref<4xf8E4M3FNUZ>, vector<4xf8E4M3FNUZ>
    gpu.return
  }
}

// -----

// expected-error @below {{kvq-convert-gpu-to-rocdl: gpu.module @nvidia has no #rocdl.target; run kvq-set-target first}}
gpu.module @nvidia [#nvvm.target<chip = "sm_90">] {}
