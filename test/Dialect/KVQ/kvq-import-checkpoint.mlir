// RUN: rm -rf %t && python3 %S/Inputs/make_checkpoints.py %t
// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-import-checkpoint=checkpoint=%t/mixed.safetensors | FileCheck %s

// Scales of several producers in one file; each becomes a raw scale typed
// with its checkpoint dtype, and its tensor name is recorded.

// expected-warning @below {{[UNMATCHED-SCALE] scale tensor 'model.layers.9.self_attn.k_scale' in '}}
module {
// CHECK-LABEL: kvq.layer @l0
// CHECK-SAME: checkpoint(<k = 5.000000e-02 : f32, v = 7.000000e-02 : f32, q = 1.000980e-01 : bf16>)
// CHECK-SAME: checkpoint_tensors = {k = "model.layers.0.self_attn.k_scale", q = "model.layers.0.self_attn.q_scale", v = "model.layers.0.self_attn.v_scale"}
kvq.layer @l0 prefix("model.layers.0") cache(fp8)
// CHECK-LABEL: kvq.layer @l1
// CHECK-SAME: checkpoint(<k = 2.500000e-01 : f16, v = 1.250000e-01 : f64, prob = 5.000000e-01 : f32>)
// CHECK-SAME: k = "model.layers.1.self_attn.k_proj.k_scale"
// expected-warning @below {{[ZERO-POINT] 'model.layers.1.self_attn.k_zero_point' in '}}
kvq.layer @l1 prefix("model.layers.1") cache(fp8_e4m3)
// CHECK-LABEL: kvq.layer @l2
// CHECK-SAME: checkpoint(<k = 3.000000e-02 : f32>)
// expected-warning @below {{[DEPRECATED-KV-SCALE] 'model.layers.2.self_attn.kv_scale' is a single scale for K and V (legacy-kv-scale, deprecated): it is used as the K scale and the scale rules copy it to V}}
kvq.layer @l2 prefix("model.layers.2") cache(fp8_e4m3)
// CHECK-LABEL: kvq.layer @l3
// CHECK-SAME: checkpoint(<k = dense<[1.000000e-01, 2.000000e-01]> : tensor<2xf32>, v = 1.000000e-01 : f32>)
kvq.layer @l3 prefix("model.layers.3") cache(int8)
// A quantized layer with no scale at all is reported; an auto one is not.
// CHECK-LABEL: kvq.layer @l4
// CHECK-NOT: checkpoint(
// expected-warning @below {{[NO-CHECKPOINT-SCALES] no attention scale found for the int8 KV cache of prefix 'model.layers.4' in '}}
kvq.layer @l4 prefix("model.layers.4") cache(int8)
// CHECK-LABEL: kvq.layer @l5
// CHECK-NOT: checkpoint(
kvq.layer @l5 prefix("model.layers.5") cache(auto)
}

// -----

// Scales come from the IR or from the checkpoint, not both.
module {
// expected-error @below {{[SCALES-TWICE] layer already carries scales; take them from the IR or from the checkpoint, not both}}
kvq.layer @l0 prefix("model.layers.0") cache(fp8) checkpoint(#kvq.scales<k = 0.05 : f32>)
}

// -----

module {
kvq.layer @a prefix("model.layers.0") cache(fp8)
// expected-error @below {{[PREFIX-TWICE] checkpoint prefix 'model.layers.0' is also the prefix of layer @a; each layer needs its own scales}}
kvq.layer @b prefix("model.layers.0") cache(fp8)
}
