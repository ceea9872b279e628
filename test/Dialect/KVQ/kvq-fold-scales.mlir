// RUN: kvq-opt %s -split-input-file -verify-diagnostics \
// RUN:   --kvq-fold-scales="summary=false" | FileCheck %s

// The acceptance examples of scale-rules.md (bf16 model, OCP unless a
// gpu.module targets gfx942), then every other row and diagnostic.

// Example 1: fp8, k = v = 0.0123456789, no q/prob.
// CHECK-LABEL: kvq.layer @example1
// CHECK-SAME: resolved(<k = 0.0123456791 checkpoint, v = 0.0123456791 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// CHECK-NOT: checkpoint(
// expected-warning @below {{[Q-MISSING] the checkpoint does not provide a q scaling factor (q = absent); vLLM logs "Setting it to k_scale" but its Q/P block then overwrites Q with 1.0: the final Q is 1.0, not K}}
// expected-note @below {{vLLM reproduces this quirk (issues #51534, #38975); the q-fallback=k option applies Q = K instead}}
// expected-warning @below {{[UNCALIBRATED-QP] using uncalibrated q_scale 1.0 and/or prob_scale 1.0 with fp8 attention}}
// expected-note @below {{Q is 1.0 because vLLM's fallback to k_scale is overwritten (see Q-MISSING)}}
kvq.layer @example1 cache(fp8) checkpoint(#kvq.scales<k = 0.0123456789 : f32, v = 0.0123456789 : f32>)

// -----

// Example 2: the same on FNUZ: K and V doubled, Q = 1.0 (never doubled).
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @example2
// CHECK-SAME: resolved(<k = 0.0246913582 checkpoint doubled, v = 0.0246913582 checkpoint doubled, q = 1.000000e+00 default, prob = 1.000000e+00 default, fnuz>)
// expected-warning @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[UNCALIBRATED-QP]}}
// expected-note @below {{Q is 1.0 because}}
kvq.layer @example2 cache(fp8) checkpoint(#kvq.scales<k = 0.0123456789 : f32, v = 0.0123456789 : f32>)

// -----

// Example 3: fp8, a single legacy kv_scale = 0.05, duplicated to V.
// CHECK-LABEL: kvq.layer @example3
// CHECK-SAME: resolved(<k = 5.000000e-02 duplicated, v = 5.000000e-02 duplicated, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// expected-warning @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[UNCALIBRATED-QP]}}
// expected-note @below {{Q is 1.0 because}}
kvq.layer @example3 cache(fp8) checkpoint(#kvq.scales<k = 0.05 : f32>) {checkpoint_tensors = {k = "model.layers.0.self_attn.kv_scale"}}

// -----

// Example 3 on FNUZ: K = V = 0.05 * 2.
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @example3_fnuz
// CHECK-SAME: resolved(<k = 1.000000e-01 duplicated doubled, v = 1.000000e-01 duplicated doubled, q = 1.000000e+00 default, prob = 1.000000e+00 default, fnuz>)
// expected-warning @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[UNCALIBRATED-QP]}}
// expected-note @below {{Q is 1.0 because}}
kvq.layer @example3_fnuz cache(fp8) checkpoint(#kvq.scales<k = 0.05 : f32>)

// -----

// Example 4: only v present: an error located at the layer, naming the
// checkpoint tensor.
// expected-error @below {{[K-SCALE-INVALID] invalid k scale for the 'fp8' KV cache (only v present): k = absent, v = 0.05000000074505806; k must be > 0 unless k and v are both absent (vLLM dies on `assert k_scale > 0`)}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.k_scale'}}
// expected-warning @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[UNCALIBRATED-QP]}}
// expected-note @below {{Q is 1.0 because}}
kvq.layer @example4_only_v cache(fp8) checkpoint(#kvq.scales<v = 0.05 : f32>) {checkpoint_tensors = {k = "model.layers.0.self_attn.k_scale"}}

// -----

// Example 4: k = 0.
// expected-error @below {{[K-SCALE-INVALID] invalid k scale for the 'fp8' KV cache (k = 0)}}
// expected-warning @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[UNCALIBRATED-QP]}}
// expected-note @below {{Q is 1.0 because}}
kvq.layer @example4_k_zero cache(fp8) checkpoint(#kvq.scales<k = 0.0 : f32, v = 0.05 : f32>)

// -----

// Example 5: auto, q = 0.3 on FNUZ: Q = 0.6, K = V = 1.0, no warnings.
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @example5
// CHECK-SAME: resolved(<k = 1.000000e+00 not_quantized, v = 1.000000e+00 not_quantized, q = 6.000000e-01 checkpoint doubled, prob = 1.000000e+00 default, fnuz>)
kvq.layer @example5 cache(auto) checkpoint(#kvq.scales<q = 0.3 : f32>)

// -----

// Example 6: fp8_e4m3, k = v = 0.5 on FNUZ: K = V = 1.0 and FP8-UNIT-SCALE
// fires, a false alarm the seed has (explained in a note).
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @example6
// CHECK-SAME: resolved(<k = 1.000000e+00 checkpoint doubled, v = 1.000000e+00 checkpoint doubled, q = 1.000000e+00 default, prob = 1.000000e+00 default, fnuz>)
// expected-warning @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[FP8-UNIT-SCALE] using KV cache scaling factor 1.0 for fp8_e4m3 (K = V = 1.0 for the 'fp8_e4m3' KV cache from k = 0.5, v = 0.5)}}
// expected-note @below {{the checkpoint scales (k = 0.5, v = 0.5) were doubled to 1.0 for the FNUZ fp8 format, which is the correct scale: a false alarm vLLM has too}}
kvq.layer @example6 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.5 : f32, v = 0.5 : f32>)

// -----

// Example 7: int8, no scales.
// CHECK-LABEL: kvq.layer @example7
// CHECK-SAME: resolved(<k = 1.000000e+00 default, v = 1.000000e+00 default, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// expected-warning @below {{[INT8-NEEDS-CALIBRATION] int8 KV cache requires calibrated scaling factors but the checkpoint has no k/v scales (k = absent, v = absent); using the default scale 1.0 will likely cause severe accuracy loss}}
// expected-warning @below {{[Q-MISSING]}}
// expected-note @below {{vLLM reproduces this quirk}}
// expected-warning @below {{[INT8-UNIT-SCALE] int8 KV cache using scale k=1.000000, v=1.000000; scale 1.0 is likely incorrect for int8}}
kvq.layer @example7 cache(int8)

// -----

// Example 8: fp8, calculate_kv_scales, checkpoint q: K = V = 1.0 for good,
// Q = q * F, and calculation is switched off.
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @example8
// CHECK-NOT: calculate_kv_scales
// CHECK-SAME: resolved(<k = 1.000000e+00 runtime, v = 1.000000e+00 runtime, q = 2.000000e-01 checkpoint doubled, prob = 1.000000e+00 default, fnuz>)
// expected-warning @below {{[RUNTIME-SCALES-FROZEN] the checkpoint q scale (q = 0.10000000149011612) switches calculate_kv_scales off after the KV block was skipped for it, so K = V = 1.0 for good}}
// expected-note @below {{drop calculate_kv_scales to use the checkpoint's k/v scales}}
// expected-warning @below {{[UNCALIBRATED-QP] using uncalibrated q_scale 0.20000000298023224 and/or prob_scale 1.0}}
kvq.layer @example8 cache(fp8) calculate_kv_scales checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// calculate_kv_scales without a q scale stays on; K = V = 1.0 until computed.
// CHECK-LABEL: kvq.layer @runtime_scales
// CHECK-SAME: calculate_kv_scales
// CHECK-SAME: resolved(<k = 1.000000e+00 runtime, v = 1.000000e+00 runtime, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @runtime_scales cache(fp8_e4m3) calculate_kv_scales

// -----

// Calibrated fp8_e4m3 with every scale: no diagnostics at all.
// CHECK-LABEL: kvq.layer @calibrated
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e-01 checkpoint, prob = 2.000000e-01 checkpoint>)
kvq.layer @calibrated cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32, q = 0.1 : f32, prob = 0.2 : f32>)

// -----

// int8 is never doubled on FNUZ; q and prob are.
gpu.module @kernels [#rocdl.target<chip = "gfx942">] {}
// CHECK-LABEL: kvq.layer @int8_fnuz
// CHECK-SAME: resolved(<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 2.000000e-01 checkpoint doubled, prob = 4.000000e-01 checkpoint doubled, fnuz>)
kvq.layer @int8_fnuz cache(int8) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32, q = 0.1 : f32, prob = 0.2 : f32>)

// -----

// e5m2 with unit scales: no FP8-UNIT-SCALE (vLLM uses e5m2 unscaled).
// CHECK-LABEL: kvq.layer @e5m2
// CHECK-SAME: resolved(<k = 1.000000e+00 default, v = 1.000000e+00 default, q = 1.000000e-01 checkpoint, prob = 1.000000e+00 default>)
kvq.layer @e5m2 cache(fp8_e5m2) checkpoint(#kvq.scales<q = 0.1 : f32>)

// -----

// A negative scale counts as absent (vLLM's -1.0 sentinel).
// CHECK-LABEL: kvq.layer @negative_is_absent
// CHECK-SAME: resolved(<k = 1.000000e+00 default, v = 1.000000e+00 default, q = 1.000000e-01 checkpoint
// expected-warning @below {{[FP8-UNIT-SCALE]}}
kvq.layer @negative_is_absent cache(fp8_e4m3) checkpoint(#kvq.scales<k = -1.0 : f32, v = -1.0 : f32, q = 0.1 : f32>)

// -----

// k = NaN is an error like k = 0.
// expected-error @below {{[K-SCALE-INVALID] invalid k scale for the 'fp8_e4m3' KV cache (k is NaN)}}
kvq.layer @k_nan cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0x7FC00000 : f32, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// v = 0 or NaN with a good k: k is duplicated (max(k, v) = k).
// CHECK-LABEL: kvq.layer @v_nan_duplicates_k
// CHECK-SAME: resolved(<k = 5.000000e-02 duplicated, v = 5.000000e-02 duplicated
kvq.layer @v_nan_duplicates_k cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0x7FC00000 : f32, q = 0.1 : f32>)

// -----

// A per-head k folds head by head (kvq-fold-scales-per-head.mlir has the
// rest); the per-tensor v is every head's.
// CHECK-LABEL: kvq.layer @per_head_k
// CHECK-SAME: resolved(<k = [1.000000e-01, 2.000000e-01] checkpoint, v = [5.000000e-02, 5.000000e-02] checkpoint, q = 1.000000e-01 checkpoint
kvq.layer @per_head_k cache(fp8_e4m3) checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// A one-element tensor is a per-tensor scale.
// CHECK-LABEL: kvq.layer @one_element_tensor
// CHECK-SAME: resolved(<k = 1.000000e-01 checkpoint, v = 5.000000e-02 checkpoint
kvq.layer @one_element_tensor cache(fp8_e4m3) checkpoint(#kvq.scales<k = dense<[0.1]> : tensor<1xf32>, v = 0.05 : f32, q = 0.1 : f32>)

// -----

// A per-head q needs the layer's KV head count to be reduced to KV heads;
// neither an op nor k/v give it here.
// expected-error @below {{[HEAD-COUNT-MISMATCH] q has 2 per-head scales, but the layer's number of KV heads is unknown}}
kvq.layer @per_head_q cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = dense<[0.1, 0.2]> : tensor<2xf32>>)

// -----

// An infinite k passes the rules (inf > 0) but no kernel can use it.
// expected-error @below {{[SCALE-NOT-FINITE] final k scale inf is not a finite positive f32; kernels cannot use it}}
// expected-note @below {{checkpoint tensor 'model.layers.0.self_attn.k_scale'}}
kvq.layer @k_inf cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0x7F800000 : f32, v = 0.05 : f32, q = 0.1 : f32>) {checkpoint_tensors = {k = "model.layers.0.self_attn.k_scale"}}

// -----

// An f64 scale too large for f32 overflows: an error, not an inf scale.
// expected-error @below {{[SCALE-NOT-FINITE] final v scale 1e+300 is not a finite positive f32}}
kvq.layer @v_overflows_f32 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 1.0e300 : f64, q = 0.1 : f32>)

// -----

// Layers that are already resolved are left alone.
// CHECK-LABEL: kvq.layer @already_resolved
// CHECK-SAME: resolved(<k = 2.500000e-01 checkpoint, v = 2.500000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @already_resolved cache(fp8) resolved(#kvq.resolved_scales<k = 0.25 checkpoint, v = 0.25 checkpoint, q = 1.0 default, prob = 1.0 default>)

// -----

// Reports all layers before failing.
// expected-error @below {{[K-SCALE-INVALID]}}
kvq.layer @first_bad cache(fp8_e4m3) checkpoint(#kvq.scales<v = 0.05 : f32, q = 0.1 : f32>)
// expected-error @below {{[PER-HEAD-QP]}}
kvq.layer @second_bad cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32, prob = dense<[0.1, 0.2]> : tensor<2xf32>>)
