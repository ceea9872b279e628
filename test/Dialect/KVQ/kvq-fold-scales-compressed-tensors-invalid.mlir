// Errors of the compressed-tensors rules (kvq-fold-scales).
// RUN: kvq-opt %s -split-input-file -verify-diagnostics --kvq-fold-scales=summary=false

// Per-head scales (strategy attn_head): the errors are in
// kvq-fold-scales-per-head-invalid.mlir. Counts that do not match:
// expected-error @+1 {{[HEAD-COUNT-MISMATCH] v has 3 per-head scales but k has 2; both must have one per KV head}}
kvq.layer @per_head cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, v = dense<[0.1, 0.2, 0.3]> : tensor<3xf32>, q = 0.2 : f32>)

// -----

// A negative value is not vLLM's -1 sentinel on this path: it is copied,
// and is no usable scale.
// expected-error @+1 {{[SCALE-NOT-FINITE] final v scale -1.0 is not a finite positive f32}}
kvq.layer @negative cache(fp8) method(compressed_tensors) checkpoint(#kvq.scales<k = 0.1 : f32, v = -1.0 : f32, q = 0.2 : f32>)

// -----

// expected-error @+1 {{unknown scale method 'ct', expected base or compressed_tensors}}
kvq.layer @bad_method cache(fp8) method(ct)
