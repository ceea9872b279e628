// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-set-target=chip=gfx950
// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-lower-cache-ops=chip=gfx950
// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-to-amdgcn=chip=gfx950
// RUN: not kvq-opt %s --kvq-to-llvm 2>&1 | FileCheck %s --check-prefix=CPU
// RUN: echo 'module attributes {kvq.target = 3 : i32} {}' | not kvq-opt --kvq-set-target 2>&1 \
// RUN:   | FileCheck %s --check-prefix=BADATTR

// An option naming another target than the one the module states is an
// error at the attribute that states it, whichever pass reads the target.

// expected-error-re @below {{kvq-{{(set-target|lower-cache-ops)}}: target rocdl chip=gfx950 contradicts the module's target #rocdl.target<chip = "gfx942">}}
// expected-note @below {{drop the option, or compile a copy of the module without this target}}
gpu.module @kvq_cache_kernels [#rocdl.target<chip = "gfx942">] {}

// CPU: error: kvq-lower-cache-ops: target cpu contradicts the module's target #rocdl.target<chip = "gfx942">
// BADATTR: error: 'kvq.target' must be a target kvq compiles for (#kvq.cpu_target, #nvvm.target, #rocdl.target), got 3 : i32
