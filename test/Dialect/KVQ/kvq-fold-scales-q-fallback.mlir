// RUN: kvq-opt %s --kvq-fold-scales="summary=false q-fallback=k" 2>/dev/null \
// RUN:   | FileCheck %s --check-prefix=QK
// RUN: kvq-opt %s --kvq-fold-scales="summary=false q-fallback=k" \
// RUN:   -o /dev/null 2>&1 | FileCheck %s --check-prefix=QK-DIAG
// RUN: kvq-opt %s --kvq-fold-scales="summary=false model-dtype=bf16" 2>/dev/null \
// RUN:   | FileCheck %s --check-prefix=BF16
// RUN: kvq-opt %s --kvq-fold-scales="summary=false model-dtype=f16" 2>/dev/null \
// RUN:   | FileCheck %s --check-prefix=F16

// q-fallback=k: Q = K, as vLLM's message promises (its final Q is 1.0).
// QK-DIAG: warning: [Q-MISSING] {{.*}}Q = K = 0.012345679104328156 is applied
// QK-LABEL: kvq.layer @acceptance1
// QK-SAME: resolved(<k = 0.0123456791 checkpoint, v = 0.0123456791 checkpoint, q = 0.0123456791 k_fallback, prob = 1.000000e+00 default>)

// model-dtype=bf16: 0.0123456789 becomes 0.0123291015625, as in a running
// vLLM whose scale parameters are bf16.
// BF16-LABEL: kvq.layer @acceptance1
// BF16-SAME: resolved(<k = 0.0123291016 checkpoint, v = 0.0123291016 checkpoint
// F16-LABEL: kvq.layer @acceptance1
// F16-SAME: resolved(<k = 0.0123443604 checkpoint, v = 0.0123443604 checkpoint
kvq.layer @acceptance1 cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.0123456789 : f32, v = 0.0123456789 : f32>)
