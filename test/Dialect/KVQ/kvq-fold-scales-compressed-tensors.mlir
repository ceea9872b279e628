// The compressed-tensors rules (vLLM's CompressedTensorsKVCacheMethod), for
// layers with method(compressed_tensors) or under method=compressed-tensors.
// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false" | FileCheck %s
// RUN: kvq-opt %s -split-input-file \
// RUN:   --kvq-fold-scales="summary=false fp8-format=fnuz" 2>/dev/null \
// RUN:   | FileCheck %s --check-prefix=FNUZ
// RUN: kvq-opt %s -split-input-file \
// RUN:   --kvq-fold-scales="summary=false fp8-format=fnuz" 2>&1 >/dev/null \
// RUN:   | FileCheck %s --check-prefix=FNUZ-DIAG
// RUN: kvq-opt %s -split-input-file \
// RUN:   --kvq-fold-scales="summary=false fp8-format=fnuz ct-fnuz=vllm" 2>&1 \
// RUN:   | FileCheck %s --check-prefix=VLLM
// RUN: kvq-opt %s -split-input-file \
// RUN:   --kvq-fold-scales="summary=false method=base" 2>/dev/null \
// RUN:   | FileCheck %s --check-prefix=BASE
// RUN: kvq-opt %s -split-input-file \
// RUN:   --kvq-fold-scales="summary=false method=base" 2>&1 >/dev/null \
// RUN:   | FileCheck %s --check-prefix=BASE-DIAG
// RUN: kvq-opt %s -split-input-file \
// RUN:   --kvq-fold-scales="summary=false method=compressed-tensors" \
// RUN:   2>/dev/null | FileCheck %s --check-prefix=FORCE

// All scales present: as they are, P = 1.0, nothing said.
// CHECK-LABEL: kvq.layer @all
// CHECK-SAME: method(compressed_tensors) resolved(<k = 5.000000e-02 checkpoint, v = 1.000000e-01 checkpoint, q = 2.000000e-01 checkpoint, prob = 1.000000e+00 default>)
// On FNUZ, doubled as the base path does, with a warning naming the
// difference to vLLM.
// FNUZ-DIAG: warning: [CT-FNUZ] compressed-tensors scales doubled for the FNUZ fp8 format, as in vLLM's base path; vLLM's compressed-tensors path does not double them, so values up to 448 of scales calibrated for OCP fp8 (amax / 448) saturate at 240 there
// FNUZ-DIAG: note: ct-fnuz=vllm gives exact vLLM parity (no doubling)
// FNUZ-LABEL: kvq.layer @all
// FNUZ-SAME: resolved(<k = 1.000000e-01 checkpoint doubled, v = 2.000000e-01 checkpoint doubled, q = 4.000000e-01 checkpoint doubled, prob = 1.000000e+00 default, fnuz>)
// ct-fnuz=vllm: vLLM's values, no factor, no warning.
// VLLM-NOT: CT-FNUZ
// VLLM-LABEL: kvq.layer @all
// VLLM-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 1.000000e-01 checkpoint, q = 2.000000e-01 checkpoint, prob = 1.000000e+00 default, fnuz>)
// method=base overrides the layer's method (and drops the clause).
// BASE-LABEL: kvq.layer @all
// BASE-SAME: cache(fp8) resolved(<k = 5.000000e-02 checkpoint
kvq.layer @all cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.1 : f32, q = 0.2 : f32>)

// -----

// A missing scale folds to vLLM's placeholder 1.0, and is reported; a
// single kv scale is not duplicated.
// CHECK-LABEL: kvq.layer @single_k
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 1.000000e+00 default, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// BASE-DIAG: warning: [Q-MISSING]
// BASE-LABEL: kvq.layer @single_k
// BASE-SAME: resolved(<k = 5.000000e-02 duplicated, v = 5.000000e-02 duplicated
// expected-warning @+2 {{[CT-SCALE-MISSING] the compressed-tensors checkpoint has no v scale for the 'fp8' KV cache; v = 1.0, vLLM's placeholder (vLLM says nothing)}}
// expected-warning @+1 {{[CT-SCALE-MISSING] the compressed-tensors checkpoint has no q scale}}
kvq.layer @single_k cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = 0.05 : f32>)

// -----

// No prob scale on this path: the checkpoint's is not used, and reported.
// CHECK-LABEL: kvq.layer @prob
// CHECK-SAME: prob = 1.000000e+00 default>)
// expected-warning @+1 {{[CT-PROB-IGNORED] compressed-tensors has no prob scale: the checkpoint's (prob = 0.5) is not used, P = 1.0}}
kvq.layer @prob cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.1 : f32, q = 0.2 : f32, prob = 0.5 : f32>)

// -----

// calculate_kv_scales untouched, even with a checkpoint q.
// CHECK-LABEL: kvq.layer @runtime
// CHECK-SAME: calculate_kv_scales resolved(<k = 1.000000e+00 runtime, v = 1.000000e+00 runtime, q = 2.000000e-01 checkpoint
kvq.layer @runtime cache(fp8) method(compressed_tensors) calculate_kv_scales checkpoint(#kvq.scales<q = 0.2 : f32>)

// -----

// method=compressed-tensors applies the rules to a layer without a method.
// FORCE-LABEL: kvq.layer @plain
// FORCE-SAME: cache(fp8_e4m3) method(compressed_tensors) resolved(<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 2.000000e-01 checkpoint, prob = 1.000000e+00 default>)
kvq.layer @plain cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32, q = 0.2 : f32>)
