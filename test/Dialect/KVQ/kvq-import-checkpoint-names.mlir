// RUN: rm -rf %t && python3 %S/Inputs/make_checkpoints.py %t
// RUN: kvq-opt %s -verify-diagnostics \
// RUN:   --kvq-import-checkpoint=checkpoint=%t/names.safetensors | FileCheck %s

// Names of other producers and architectures: every tensor whose name says it
// is a scale or an offset is attached or reported at its layer.

// vLLM's default rule: a `.k_scale` on the module that holds the attention,
// whatever the model calls it (NemotronH `mixer`, GPT-NeoX `attention`,
// GPT-2 `attn`, Falcon `self_attention`).
// CHECK-LABEL: kvq.layer @nemotron_attn
// CHECK-SAME: checkpoint(<k = 5.000000e-02 : f32, v = 6.250000e-02 : f32, q = 2.000000e-02 : f32>)
// CHECK-SAME: checkpoint_tensors = {k = "backbone.layers.0.mixer.k_scale", q = "backbone.layers.0.mixer.q_scale", v = "backbone.layers.0.mixer.v_scale"}
kvq.layer @nemotron_attn prefix("backbone.layers.0") cache(fp8)
// CHECK-LABEL: kvq.layer @nemotron_kv_scale
// CHECK-SAME: checkpoint(<k = 3.000000e-02 : f32>)
// expected-warning @below {{[DEPRECATED-KV-SCALE] 'backbone.layers.2.mixer.kv_scale' is a single scale for K and V (legacy-kv-scale, deprecated): it is used as the K scale and the scale rules copy it to V}}
kvq.layer @nemotron_kv_scale prefix("backbone.layers.2") cache(fp8)
// CHECK-LABEL: kvq.layer @neox
// CHECK-SAME: checkpoint(<k = 5.000000e-02 : f32, v = 7.000000e-02 : f32>)
// CHECK-SAME: k = "gpt_neox.layers.0.attention.k_scale"
kvq.layer @neox prefix("gpt_neox.layers.0") cache(fp8)
// CHECK-LABEL: kvq.layer @gpt2
// CHECK-SAME: checkpoint(<k = 1.250000e-01 : bf16, v = 2.500000e-01 : bf16>)
// CHECK-SAME: k = "transformer.h.0.attn.k_scale"
kvq.layer @gpt2 prefix("transformer.h.0") cache(fp8)
// CHECK-LABEL: kvq.layer @falcon
// CHECK-SAME: checkpoint(<k = 5.000000e-01 : f32, v = 7.500000e-01 : f32>)
// CHECK-SAME: k = "transformer.h.1.self_attention.k_scale"
kvq.layer @falcon prefix("transformer.h.1") cache(fp8_e4m3)

// sharktank's reading of Quark: one KV-cache scale, K's and V's.
// CHECK-LABEL: kvq.layer @sharktank
// CHECK-SAME: checkpoint(<k = 4.000000e-02 : f32>)
// CHECK-SAME: checkpoint_tensors = {k = "model.layers.0.self_attn.kv_cache_scale"}
// expected-remark @below {{[SHARED-KV-SCALE] 'model.layers.0.self_attn.kv_cache_scale' is one scale for K and V (sharktank): it is used as the K scale and the scale rules copy it to V}}
kvq.layer @sharktank prefix("model.layers.0") cache(fp8)

// Ascend msModelSlim int8 KV: per-channel scales with offsets, reported with
// the reason; nothing is attached, so the layer has no scale either.
// CHECK-LABEL: kvq.layer @msmodelslim
// CHECK-NOT: checkpoint(
// expected-warning-re @below {{[PER-CHANNEL-KV-SCALE] 'model.layers.1.self_attn.k_proj.kv_cache_scale' in '{{.*}}names.safetensors' (shape [8]) is a per-channel KV-cache scale of an asymmetric scheme (msmodelslim, with kv_cache_offset): kvq supports only symmetric per-tensor or per-head scales; it is ignored}}
// expected-warning @below {{[PER-CHANNEL-KV-SCALE] 'model.layers.1.self_attn.v_proj.kv_cache_scale' in '}}
// expected-warning @below {{[ZERO-POINT] 'model.layers.1.self_attn.k_proj.kv_cache_offset' in '}}
// expected-warning @below {{[ZERO-POINT] 'model.layers.1.self_attn.v_proj.kv_cache_offset' in '}}
// expected-warning @below {{[NO-CHECKPOINT-SCALES] no attention scale found for the int8 KV cache of prefix 'model.layers.1'}}
kvq.layer @msmodelslim prefix("model.layers.1") cache(int8)

// `mlp` is not an attention module: vLLM drops its k_scale too.
// CHECK-LABEL: kvq.layer @mlp
// CHECK-NOT: checkpoint(
// expected-warning @below {{[UNMATCHED-SCALE] scale tensor 'model.layers.2.mlp.k_scale' in '}}
kvq.layer @mlp prefix("model.layers.2") cache(auto)
