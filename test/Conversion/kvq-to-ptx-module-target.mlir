// RUN: kvq-opt %s --kvq-to-ptx --kvq-write-isa=output=%t.ptx -o /dev/null
// RUN: FileCheck %s < %t.ptx
// RUN: kvq-opt %s --kvq-set-target=target=nvvm | FileCheck %s --check-prefix=KEEP

// The module states sm_80: kvq-to-ptx (no chip option) and
// kvq-set-target{target=nvvm} (a kind without a chip) take it, rather than
// the sm_90 default of a module that states nothing. sm_80 has no fp8
// conversion instructions: the software conversion.
// CHECK: .target sm_80
// CHECK-NOT: cvt.rn.satfinite.e4m3x2.f32
// KEEP: gpu.module @kvq_cache_kernels [#nvvm.target<O = 3, chip = "sm_80">]
// KEEP-NOT: sm_90

gpu.module @kvq_cache_kernels [#nvvm.target<O = 3, chip = "sm_80">] {}
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @store(%k: memref<?x8x128xbf16>, %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %s : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  return
}
