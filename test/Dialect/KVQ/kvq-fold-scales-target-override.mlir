// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false fp8-format=ocp"
// RUN: kvq-opt %s -split-input-file --kvq-fold-scales="summary=false fp8-format=fnuz" \
// RUN:   2>&1 | FileCheck %s --check-prefix=FNUZ

// fp8-format may choose only where the target leaves the format free (the
// CPU, or no target); naming the other format than a GPU target's is an
// error at the target.

// expected-error @below {{kvq-fold-scales: fp8-format=ocp contradicts the module's target #rocdl.target<chip = "gfx942">, whose fp8 format is FNUZ}}
gpu.module @kvq_cache_kernels [#rocdl.target<chip = "gfx942">] {}
kvq.layer @gfx942 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// FNUZ-LABEL: kvq.layer @cpu
// FNUZ-SAME: resolved(<k = 1.000000e-01 checkpoint doubled, v = 1.000000e-01 checkpoint doubled
module attributes {kvq.target = #kvq.cpu_target} {
  kvq.layer @cpu cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)
}
