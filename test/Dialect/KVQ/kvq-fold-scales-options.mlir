// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false missing-scales=error" | FileCheck %s

// missing-scales=error (strict, for production builds): a quantized cache
// without k/v scales and a missing q are errors; the values and the other
// warnings are those of the default mode.

// expected-error @below {{[KV-MISSING] the 'fp8_e4m3' KV cache is quantized but the checkpoint has no k/v scales (k = absent, v = absent); strict mode rejects the default K = V = 1.0}}
// expected-error @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[FP8-UNIT-SCALE]}}
kvq.layer @strict_no_scales cache(fp8_e4m3)

// -----

// expected-error @below {{[INT8-NEEDS-CALIBRATION]}}
// expected-error @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[INT8-UNIT-SCALE]}}
kvq.layer @strict_int8 cache(int8)

// -----

// Fully calibrated layers pass strict mode.
// CHECK-LABEL: kvq.layer @strict_ok
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint
kvq.layer @strict_ok cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)
