// RUN: rm -rf %t && python3 %S/Inputs/make_checkpoints.py %t
// RUN: kvq-opt %s -verify-diagnostics \
// RUN:   --kvq-import-checkpoint=checkpoint=%t/redundant.safetensors | FileCheck %s

// Two producers' names for the same scale with the same value: the first by
// vLLM's remap order is kept, the other named in a remark.

// CHECK: kvq.layer @l0
// CHECK-SAME: checkpoint_tensors = {k = "model.layers.0.self_attn.k_proj.k_scale", v = "model.layers.0.self_attn.v_scale"}
// expected-remark @below {{[REDUNDANT-SCALE]}}
kvq.layer @l0 prefix("model.layers.0") cache(fp8)
