// RUN: not kvq-opt %s --kvq-lower-cache-ops="target=spirv" 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=nvvm" | FileCheck %s --check-prefix=NVNOCHIP
// RUN: not kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=gfx942" 2>&1 | FileCheck %s --check-prefix=NVCHIP
// RUN: kvq-opt %s --kvq-lower-cache-ops="target=rocdl" | FileCheck %s --check-prefix=AMDNOCHIP
// RUN: not kvq-opt %s --kvq-lower-cache-ops="target=rocdl chip=sm_90" 2>&1 | FileCheck %s --check-prefix=AMDCHIP
// RUN: not kvq-opt %s --kvq-lower-cache-ops="target=cpu chip=sm_90" 2>&1 | FileCheck %s --check-prefix=CPUCHIP
// RUN: not kvq-opt %s --kvq-lower-cache-ops="chip=hopper" 2>&1 | FileCheck %s --check-prefix=NOKIND
// RUN: not kvq-opt %s --kvq-lower-cache-ops="target=nvvm chip=sm_90 threads-per-block=100" 2>&1 | FileCheck %s --check-prefix=TPB
// RUN: not kvq-opt %s --kvq-lower-cache-ops="quantize-division=fast" 2>&1 | FileCheck %s --check-prefix=DIV
// RUN: not kvq-opt %s --kvq-to-ptx="chip=sm90" 2>&1 | FileCheck %s --check-prefix=PIPE
// RUN: not kvq-opt %s --kvq-limit-kernel-registers=max-registers=8 2>&1 | FileCheck %s --check-prefix=MAXREG
// RUN: not kvq-opt %s --kvq-to-ptx=max-registers=300 2>&1 | FileCheck %s --check-prefix=MAXREG300
// RUN: not kvq-opt %s --kvq-lower-cache-ops --kvq-write-isa 2>&1 | FileCheck %s --check-prefix=ISA
// RUN: not kvq-opt %s --kvq-to-ptx --kvq-write-isa=output=%t/no/such/dir/k.ptx 2>&1 | FileCheck %s --check-prefix=ISAFILE

// Options are checked once, before anything runs; each mistake is an error
// and a non-zero exit. A GPU kind without a chip takes the kind's default
// chip, and states it in the module.

// TARGET: error: kvq-lower-cache-ops: unknown target 'spirv', expected cpu, nvvm or rocdl
// NVNOCHIP: gpu.module @kvq_cache_kernels [#nvvm.target<O = 3, chip = "sm_90">]
// NVCHIP: error: kvq-lower-cache-ops: unknown NVIDIA chip 'gfx942', expected sm_<version> such as sm_80 or sm_90
// AMDNOCHIP: gpu.module @kvq_cache_kernels [#rocdl.target<O = 3, chip = "gfx942">]
// AMDCHIP: error: kvq-lower-cache-ops: unknown AMD chip 'sm_90', expected gfx<version> such as gfx942 or gfx950
// CPUCHIP: error: kvq-lower-cache-ops: chip 'sm_90' given for target 'cpu', which takes none
// NOKIND: error: kvq-lower-cache-ops: unknown chip 'hopper', expected sm_<version> (NVIDIA) or gfx<version> (AMD)
// TPB: error: kvq-lower-cache-ops: threads-per-block must be a multiple of 32 in [32, 1024], got 100
// DIV: error: kvq-lower-cache-ops: unknown quantize-division 'fast', expected auto, fma or divf
// PIPE: error: kvq-set-target: unknown NVIDIA chip 'sm90', expected sm_<version> such as sm_80 or sm_90
// MAXREG: error: kvq-limit-kernel-registers: max-registers must be 0 or in [24, 255], got 8
// MAXREG300: error: kvq-limit-kernel-registers: max-registers must be 0 or in [24, 255], got 300
// ISA: error: kvq-write-isa: no gpu.binary object in assembly form; run gpu-module-to-binary{format=isa} (or kvq-to-ptx / kvq-to-amdgcn) first
// ISAFILE: error: kvq-write-isa: cannot open output file '{{.*}}k.ptx'
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 1.000000e+00 default, v = 1.000000e+00 default, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
func.func @store(%k: memref<4x2x16xbf16>, %kc: memref<2x4x2x16xf8E4M3FN>, %s: memref<4xi64>) {
  kvq.cache_store @l (%k, %k) into (%kc, %kc) at %s : memref<4x2x16xbf16>, memref<2x4x2x16xf8E4M3FN>, memref<4xi64>
  return
}
