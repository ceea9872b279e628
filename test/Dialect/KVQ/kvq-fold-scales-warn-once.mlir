// RUN: kvq-opt %s -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false warn-once=true" | FileCheck %s

// vLLM's warning_once: each warning once per module, at its first layer,
// with a count of the others. Errors stay per layer.

// CHECK-LABEL: kvq.layer @l0
// expected-warning @below {{only matters for fp8 attention backends (flash-attn or flashinfer) (reported once; 2 more layer(s) have it)}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{properly set in the checkpoint (reported once; 1 more layer(s) have it)}}
kvq.layer @l0 cache(fp8_e4m3)
// CHECK-LABEL: kvq.layer @l1
kvq.layer @l1 cache(fp8_e4m3)
// CHECK-LABEL: kvq.layer @l2
kvq.layer @l2 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32>)
