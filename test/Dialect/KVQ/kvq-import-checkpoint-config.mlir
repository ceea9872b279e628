// The config.json next to a checkpoint chooses the folding rules: a
// compressed-tensors kv_cache_scheme sets method(compressed_tensors) on the
// layers that get scales, after vLLM's validation of the scheme.
// RUN: rm -rf %t && python3 %S/Inputs/make_checkpoints.py %t
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct | FileCheck %s --check-prefix=CT
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct/model.safetensors | FileCheck %s --check-prefix=CT
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-int8 | FileCheck %s --check-prefix=CT
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-fp4 | FileCheck %s --check-prefix=CT
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct --kvq-fold-scales=fp8-format=fnuz 2>&1 | FileCheck %s --check-prefix=CT-FNUZ
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-null-scheme | FileCheck %s --check-prefix=BASE
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/modelopt | FileCheck %s --check-prefix=BASE
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/no-quant | FileCheck %s --check-prefix=BASE
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/mixed.safetensors | FileCheck %s --check-prefix=BASE
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-int4 2>&1 | FileCheck %s --check-prefix=BITS
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-no-fields 2>&1 | FileCheck %s --check-prefix=NOFIELDS
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-channel 2>&1 | FileCheck %s --check-prefix=STRATEGY
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-asym 2>&1 | FileCheck %s --check-prefix=ASYM
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-attn-head | FileCheck %s --check-prefix=HEAD
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-attn-head --kvq-fold-scales=summary=false 2>/dev/null | FileCheck %s --check-prefix=HEAD-FOLD
// RUN: kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-attn-head-flat --kvq-fold-scales=summary=false 2>&1 | FileCheck %s --check-prefix=HEAD-FLAT
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/ct-attn-head-count 2>&1 | FileCheck %s --check-prefix=HEADCOUNT
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/kv-heads-string 2>&1 | FileCheck %s --check-prefix=HEADSTYPE
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/bad-json 2>&1 | FileCheck %s --check-prefix=BADJSON
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/dup-key 2>&1 | FileCheck %s --check-prefix=DUPKEY
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/not-object 2>&1 | FileCheck %s --check-prefix=NOTOBJ
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/qc-string 2>&1 | FileCheck %s --check-prefix=QC
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/scheme-list 2>&1 | FileCheck %s --check-prefix=SCHEME
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/bits-string 2>&1 | FileCheck %s --check-prefix=BITSTYPE
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/symmetric-int 2>&1 | FileCheck %s --check-prefix=SYMTYPE
// RUN: not kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/config/dir-config 2>&1 | FileCheck %s --check-prefix=DIRCONFIG

// The layer with scales gets the method; the one without keeps the base.
// CT: kvq.layer @l0 prefix("model.layers.0") cache(fp8) method(compressed_tensors) checkpoint(<k = 5.000000e-02 : f32, v = 7.000000e-02 : f32>)
// CT: kvq.layer @l1 prefix("model.layers.1") cache(fp8){{$}}
// CT-FNUZ: warning: [CT-SCALE-MISSING] the compressed-tensors checkpoint has no q scale
// CT-FNUZ: warning: [CT-FNUZ]
// CT-FNUZ: kvq.layer @l0 prefix("model.layers.0") cache(fp8) method(compressed_tensors) resolved(<k = 1.000000e-01 checkpoint doubled, v = 1.400000e-01 checkpoint doubled, q = 1.000000e+00 default, prob = 1.000000e+00 default, fnuz>)
// BASE-NOT: method(
// BITS: error: kvq-import-checkpoint: {{.*}}ct-int4{{/|\\}}config.json: [CT-SCHEME-UNSUPPORTED] Currently supported kv cache quantization is num_bits=8, type=float, however received num_bits=4, type=int
// NOFIELDS: error: kvq-import-checkpoint: {{.*}}config.json: [CT-SCHEME-UNSUPPORTED] Currently supported kv cache quantization is num_bits=8, type=float, however received num_bits=None, type=None
// STRATEGY: error: kvq-import-checkpoint: {{.*}}config.json: [CT-SCHEME-UNSUPPORTED] Invalid strategy for compressed-tensors KV cache. Expected strategies: ('tensor', 'attn_head'), found strategy: channel
// ASYM: error: kvq-import-checkpoint: {{.*}}config.json: [CT-SCHEME-UNSUPPORTED] Only support symmetric scaling factor for compressed-tensors KV cache. However found symmetric: False
// strategy attn_head: the per-head tensors as they are, folded per head (q
// reduced to the 2 KV heads by the max over each pair of query heads).
// HEAD: kvq.layer @l0 prefix("model.layers.0") cache(fp8) method(compressed_tensors) checkpoint(<k = dense<{{\[\[\[}}1.250000e-01]], {{\[\[}}2.500000e-01]]]> : tensor<2x1x1xbf16>, v = dense<{{\[\[\[}}3.750000e-01]], {{\[\[}}5.000000e-01]]]> : tensor<2x1x1xbf16>, q = dense<{{\[\[\[}}6.250000e-02]], {{\[\[}}5.000000e-01]], {{\[\[}}2.500000e-01]], {{\[\[}}1.250000e-01]]]> : tensor<4x1x1xbf16>>)
// HEAD-FOLD: kvq.layer @l0 prefix("model.layers.0") cache(fp8) method(compressed_tensors) resolved(<k = [1.250000e-01, 2.500000e-01] checkpoint, v = [3.750000e-01, 5.000000e-01] checkpoint, q = [5.000000e-01, 2.500000e-01] checkpoint, prob = 1.000000e+00 default>)
// Flat [H] and [H, 1] tensors; the missing q is 1.0 as for a per-tensor
// scheme.
// HEAD-FLAT: warning: [CT-SCALE-MISSING] the compressed-tensors checkpoint has no q scale
// HEAD-FLAT: kvq.layer @l0 prefix("model.layers.0") cache(fp8) method(compressed_tensors) resolved(<k = [1.250000e-01, 2.500000e-01] checkpoint, v = [3.750000e-01, 5.000000e-01] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// config.json's num_key_value_heads must agree with the per-head K and V
// scales (both are reported, at the layer).
// HEADCOUNT: error: [CONFIG-HEAD-COUNT] layer @l0: checkpoint tensor 'model.layers.0.self_attn.k_scale' has 2 per-head scales, but {{.*}}ct-attn-head-count{{/|\\}}config.json has num_key_value_heads = 3
// HEADCOUNT: error: [CONFIG-HEAD-COUNT] layer @l0: checkpoint tensor 'model.layers.0.self_attn.v_scale' has 2 per-head scales, but {{.*}}config.json has num_key_value_heads = 3
// HEADSTYPE: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] 'num_key_value_heads' must be a positive integer, got "2"
// BADJSON: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] not valid JSON: invalid JSON: [1:25, byte=25]: Expected object key
// DUPKEY: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] not valid JSON: duplicate key 'quantization_config'
// NOTOBJ: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] not a JSON object
// QC: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] 'quantization_config' is not an object
// SCHEME: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] 'quantization_config.kv_cache_scheme' is not an object
// BITSTYPE: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] 'quantization_config.kv_cache_scheme.num_bits' must be a number or null, got "8"
// SYMTYPE: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] 'quantization_config.kv_cache_scheme.symmetric' must be a boolean or null, got 1
// DIRCONFIG: error: kvq-import-checkpoint: {{.*}}config.json: [CT-CONFIG-INVALID] cannot read: not a regular file
kvq.layer @l0 prefix("model.layers.0") cache(fp8)
kvq.layer @l1 prefix("model.layers.1") cache(fp8)
