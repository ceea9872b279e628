// RUN: rm -rf %t && python3 %S/Inputs/make_checkpoints.py %t
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/conflict.safetensors 2>&1 | FileCheck %s --check-prefix=CONFLICT
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/names_conflict.safetensors 2>&1 | FileCheck %s --check-prefix=CONFLICT-NAMES
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/int_scale.safetensors 2>&1 | FileCheck %s --check-prefix=UNREADABLE
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/truncated.safetensors 2>&1 | FileCheck %s --check-prefix=TRUNCATED
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/missing.safetensors 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not kvq-opt %s --kvq-import-checkpoint 2>&1 | FileCheck %s --check-prefix=NOPATH
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/sharded | FileCheck %s --check-prefix=SHARDED
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/sharded/model.safetensors.index.json | FileCheck %s --check-prefix=SHARDED

// CONFLICT: error: [SCALE-CONFLICT] {{.*}}'model.layers.0.self_attn.k_proj.k_scale'{{.*}}'model.layers.0.self_attn.k_scale'
// vLLM's default rule on `attn` and sharktank's shared scale disagree with
// ModelOpt's K; the shared scale is not used, so it gets no remark.
// CONFLICT-NAMES-NOT: SHARED-KV-SCALE
// CONFLICT-NAMES: error: [SCALE-CONFLICT] conflicting k scales for layer 'model.layers.0': 'model.layers.0.self_attn.k_proj.k_scale' (modelopt) and 'model.layers.0.attn.k_scale' (vllm-default) hold different values
// CONFLICT-NAMES-NOT: SHARED-KV-SCALE
// CONFLICT-NAMES: error: [SCALE-CONFLICT] conflicting k scales for layer 'model.layers.0': 'model.layers.0.self_attn.k_proj.k_scale' (modelopt) and 'model.layers.0.self_attn.kv_cache_scale' (sharktank) hold different values
// CONFLICT-NAMES-NOT: SHARED-KV-SCALE
// UNREADABLE: error: [SCALE-UNREADABLE] {{.*}}model.layers.0.self_attn.k_scale
// TRUNCATED: error: kvq-import-checkpoint: {{.*}}truncated.safetensors
// MISSING: error: kvq-import-checkpoint: {{.*}}missing.safetensors
// NOPATH: error: kvq-import-checkpoint: no checkpoint given; set checkpoint=<file.safetensors | index.json | directory>
// SHARDED: kvq.layer @l0 prefix("model.layers.0") cache(fp8) checkpoint(<k = 5.000000e-02 : f32, v = 6.000000e-02 : f32>)
kvq.layer @l0 prefix("model.layers.0") cache(fp8)
