// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false" | FileCheck %s

// FNUZ is decided from the module's target (ModuleTarget.h): gfx942 is
// FNUZ; gfx950, gfx1201, NVVM, the CPU and no target are OCP.

gpu.module @k [#rocdl.target<chip = "gfx950">] {}
// CHECK-LABEL: kvq.layer @gfx950
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e-01 checkpoint, prob = 1.000000e+00 default>)
kvq.layer @gfx950 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

gpu.module @k [#nvvm.target<chip = "sm_90">] {}
// CHECK-LABEL: kvq.layer @sm90
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e-01 checkpoint, prob = 1.000000e+00 default>)
kvq.layer @sm90 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

gpu.module @k [#rocdl.target<chip = "gfx1201">] {}
// CHECK-LABEL: kvq.layer @gfx12
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint
kvq.layer @gfx12 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// expected-note @below {{first target stated here}}
gpu.module @a [#rocdl.target<chip = "gfx942">] {}
// expected-error @below {{[TARGET-CONFLICT] the module's targets disagree: #rocdl.target<chip = "gfx942"> and #nvvm.target<chip = "sm_90">; kvq compiles a module for one target: compile them separately}}
gpu.module @b [#nvvm.target<chip = "sm_90">] {}
kvq.layer @conflict cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// An FNUZ cache on an OCP target is a silent 2x error: refused.
gpu.module @k [#nvvm.target<chip = "sm_90">] {}
kvq.layer @fnuz_cache_on_ocp cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)
func.func @store(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FNUZ>, %s: memref<?xi64>) {
  // expected-error @below {{[FP8-FORMAT-MISMATCH] cache element type 'f8E4M3FNUZ' is FNUZ but the target's fp8 format is OCP (layer @fnuz_cache_on_ocp); the same bytes would be read as values 2x apart}}
  kvq.cache_store @fnuz_cache_on_ocp (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?xi64>
  return
}

// -----

// And the reverse: an OCP cache on gfx942.
gpu.module @k [#rocdl.target<chip = "gfx942">] {}
kvq.layer @ocp_cache_on_fnuz cache(fp8_e5m2) checkpoint(#kvq.scales<q = 0.1 : f32>)
func.func @load(%k: memref<?x8x128xf16>, %kc: memref<?x16x8x128xf8E5M2>, %s: memref<?xi64>) {
  // expected-error @below {{[FP8-FORMAT-MISMATCH] cache element type 'f8E5M2' is OCP but the target's fp8 format is FNUZ (layer @ocp_cache_on_fnuz)}}
  kvq.cache_load @ocp_cache_on_fnuz (%kc, %kc) at %s into (%k, %k) : memref<?x16x8x128xf8E5M2>, memref<?xi64>, memref<?x8x128xf16>
  return
}

// -----

// gfx942 alone, with no option: FNUZ, checkpoint values doubled.
gpu.module @kvq_cache_kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @gfx942
// CHECK-SAME: resolved(<k = 1.000000e-01 checkpoint doubled, v = 1.000000e-01 checkpoint doubled, q = 2.000000e-01 checkpoint doubled, prob = 1.000000e+00 default, fnuz>)
kvq.layer @gfx942 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// The CPU states no fp8 format: OCP unless fp8-format says otherwise.
module attributes {kvq.target = #kvq.cpu_target} {
  // CHECK-LABEL: kvq.layer @cpu
  // CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint
  kvq.layer @cpu cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)
}

// -----

// The attention op reads the cache too: an FNUZ cache on an OCP target is
// refused there as well.
gpu.module @k [#nvvm.target<chip = "sm_90">] {}
kvq.layer @attention_fnuz_on_ocp cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)
func.func @attend(%q: memref<?x32x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FNUZ>, %bt: memref<?x?xi32>, %cl: memref<?xi32>) {
  // expected-error @below {{[FP8-FORMAT-MISMATCH] cache element type 'f8E4M3FNUZ' is FNUZ but the target's fp8 format is OCP (layer @attention_fnuz_on_ocp); the same bytes would be read as values 2x apart}}
  kvq.paged_attention @attention_fnuz_on_ocp (%q) cache(%kc, %kc) blocks(%bt, %cl) into(%q)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?x?xi32>, memref<?xi32>
  return
}
