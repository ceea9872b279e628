// Errors of the compressed-tensors rules (kvq-fold-scales).
// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-fold-scales=summary=false

// Per-head scales are not supported yet.
// expected-error @+1 {{[PER-HEAD-KV] per-head scales are not supported yet (per-tensor only): k has 2 elements on the compressed-tensors path}}
kvq.layer @per_head cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = 0.1 : f32, q = 0.2 : f32>)

// -----

// expected-error @+1 {{[PER-HEAD-QP] per-head scales are not supported yet (per-tensor only): q has 2 elements on the compressed-tensors path}}
kvq.layer @per_head_q cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = 0.1 : f32, v = 0.1 : f32, q = dense<[0.1, 0.2]> : tensor<2xf32>>)

// -----

// A negative value is not vLLM's -1 sentinel on this path: it is copied,
// and is no usable scale.
// expected-error @+1 {{[SCALE-NOT-FINITE] final v scale -1.0 is not a finite positive f32}}
kvq.layer @negative cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = 0.1 : f32, v = -1.0 : f32, q = 0.2 : f32>)

// -----

// expected-error @+1 {{unknown scale method 'ct', expected base or compressed_tensors}}
kvq.layer @bad_method cache(fp8) method(ct)
