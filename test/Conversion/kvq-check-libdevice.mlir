// RUN: env CUDA_ROOT=%t.none kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --pass-pipeline='builtin.module(gpu.module(kvq-check-libdevice))'
// RUN: rm -rf %t.cuda && mkdir -p %t.cuda/nvvm/libdevice
// RUN: touch %t.cuda/nvvm/libdevice/libdevice.10.bc
// RUN: env CUDA_ROOT=%t.cuda kvq-opt %s -split-input-file \
// RUN:   --pass-pipeline='builtin.module(gpu.module(kvq-check-libdevice))' | FileCheck %s

// kvq-check-libdevice: a kernel that calls libdevice (a fused store's
// math.cos, after convert-gpu-to-nvvm) needs a CUDA toolkit's libdevice
// at serialization; without one, the error is at the first call of each
// function (the math op's location), once per function. With one (here a
// stand-in file), the module passes unchanged.

// CHECK-LABEL: gpu.module @kvq_cache_kernels
// CHECK:         llvm.call @__nv_cosf
gpu.module @kvq_cache_kernels {
  llvm.func @__nv_cosf(f32) -> f32
  llvm.func @__nv_sinf(f32) -> f32
  llvm.func @kernel(%x: f32) -> f32 {
    // expected-error @below {{'__nv_cosf' is a libdevice function, and no CUDA toolkit provides libdevice here (looked for}}
    %c = llvm.call @__nv_cosf(%x) : (f32) -> f32
    %c2 = llvm.call @__nv_cosf(%c) : (f32) -> f32
    // expected-error @below {{'__nv_sinf' is a libdevice function}}
    %s = llvm.call @__nv_sinf(%c2) : (f32) -> f32
    llvm.return %s : f32
  }
}

// -----

// No libdevice call: nothing to check, whatever the machine has.
// CHECK-LABEL: gpu.module @no_library_calls
gpu.module @no_library_calls {
  llvm.func @helper(f32) -> f32
  llvm.func @kernel(%x: f32) -> f32 {
    %y = llvm.call @helper(%x) : (f32) -> f32
    llvm.return %y : f32
  }
}
