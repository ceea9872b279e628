// RUN: kvq-opt %s -split-input-file --kvq-set-target=chip=gfx942 | FileCheck %s --check-prefix=AMD
// RUN: kvq-opt %s -split-input-file --kvq-set-target=target=nvvm | FileCheck %s --check-prefix=NV
// RUN: kvq-opt %s -split-input-file --kvq-set-target=target=cpu | FileCheck %s --check-prefix=CPU
// RUN: not kvq-opt %s --kvq-set-target=chip=gfx9x 2>&1 | FileCheck %s --check-prefix=BADCHIP
// RUN: not kvq-opt %s --kvq-set-target="chip=sm_90 opt-level=4" 2>&1 | FileCheck %s --check-prefix=OPT

// kvq-set-target states the module's target once: on the kernels'
// gpu.module (created), on every gpu.module without targets, or as the
// kvq.target attribute for the CPU.

// AMD-LABEL: module attributes {gpu.container_module}
// AMD: gpu.module @other [#rocdl.target<O = 3, chip = "gfx942">]
// AMD: gpu.module @kvq_cache_kernels [#rocdl.target<O = 3, chip = "gfx942">]
// NV: gpu.module @kvq_cache_kernels [#nvvm.target<O = 3, chip = "sm_90">]
// CPU: module attributes {kvq.target = #kvq.cpu_target}
// CPU-NOT: #rocdl
gpu.module @other {}

// BADCHIP: error: kvq-set-target: unknown AMD chip 'gfx9x', expected gfx<version> such as gfx942 or gfx950
// OPT: error: kvq-set-target: opt-level must be 0 to 3, got 4
