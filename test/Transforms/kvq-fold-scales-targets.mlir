// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false" | FileCheck %s
// RUN: not kvq-opt %s -split-input-file --kvq-fold-scales="summary=false fp8-format=fnuz" \
// RUN:   2>&1 | FileCheck %s --check-prefix=FORCED

// FNUZ is decided from the gpu.module targets: gfx942 is FNUZ; gfx950,
// gfx1201, NVVM and no target are OCP.

gpu.module @k [#rocdl.target<chip = "gfx950">] {}
// CHECK-LABEL: kvq.layer @gfx950
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e-01 checkpoint, prob = 1.000000e+00 default>)
// fp8-format=fnuz overrides the target.
// FORCED-LABEL: kvq.layer @gfx950
// FORCED-SAME: resolved(<k = 1.000000e-01 checkpoint, v = 1.000000e-01 checkpoint, q = 2.000000e-01 checkpoint, prob = 1.000000e+00 default, fnuz>)
kvq.layer @gfx950 cache(fp8_e4m3) checkpoint(#kvq.scales<q = 0.1 : f32, k = 0.05 : f32, v = 0.05 : f32>)

// -----

gpu.module @k [#nvvm.target<chip = "sm_90">] {}
// CHECK-LABEL: kvq.layer @sm90
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint, q = 1.000000e-01 checkpoint, prob = 1.000000e+00 default>)
kvq.layer @sm90 cache(fp8_e4m3) checkpoint(#kvq.scales<q = 0.1 : f32, k = 0.05 : f32, v = 0.05 : f32>)

// -----

gpu.module @k [#rocdl.target<chip = "gfx1201">] {}
// CHECK-LABEL: kvq.layer @gfx12
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint
kvq.layer @gfx12 cache(fp8_e4m3) checkpoint(#kvq.scales<q = 0.1 : f32, k = 0.05 : f32, v = 0.05 : f32>)

// -----

gpu.module @a [#rocdl.target<chip = "gfx942">] {}
// expected-error @below {{[TARGET-CONFLICT] targets disagree on the fp8 format: #rocdl.target<chip = "gfx942"> is FNUZ but #nvvm.target<chip = "sm_90"> is OCP; compile them separately or set kvq-fold-scales{fp8-format=...}}}
gpu.module @b [#nvvm.target<chip = "sm_90">] {}
kvq.layer @conflict cache(fp8_e4m3) checkpoint(#kvq.scales<q = 0.1 : f32, k = 0.05 : f32, v = 0.05 : f32>)

// -----

// An FNUZ cache on an OCP target is a silent 2x error: refused.
gpu.module @k [#nvvm.target<chip = "sm_90">] {}
kvq.layer @fnuz_cache_on_ocp cache(fp8_e4m3) checkpoint(#kvq.scales<q = 0.1 : f32, k = 0.05 : f32, v = 0.05 : f32>)
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
