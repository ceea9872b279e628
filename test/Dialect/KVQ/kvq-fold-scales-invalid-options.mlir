// RUN: not kvq-opt %s --kvq-fold-scales="fp8-format=e4m3" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not kvq-opt %s --kvq-fold-scales="missing-scales=ignore" 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not kvq-opt %s --kvq-fold-scales="q-fallback=v" 2>&1 | FileCheck %s --check-prefix=QFB
// RUN: not kvq-opt %s --kvq-fold-scales="model-dtype=f32" 2>&1 | FileCheck %s --check-prefix=DTYPE
// RUN: not kvq-opt %s --kvq-fold-scales="method=ct" 2>&1 | FileCheck %s --check-prefix=METHOD
// RUN: not kvq-opt %s --kvq-fold-scales="ct-fnuz=x2" 2>&1 | FileCheck %s --check-prefix=CTFNUZ
// RUN: not kvq-opt %s --kvq-fold-scales="report=%t/no/such/dir/report.txt" 2>&1 | FileCheck %s --check-prefix=REPORT
// RUN: not kvq-opt %s --kvq-fold-scales="tp-size=0" 2>&1 | FileCheck %s --check-prefix=TPSIZE
// RUN: not kvq-opt %s --kvq-fold-scales="tp-size=4 tp-rank=4" 2>&1 | FileCheck %s --check-prefix=TPRANK
// RUN: not kvq-opt %s --kvq-fold-scales="tp-rank=1" 2>&1 | FileCheck %s --check-prefix=TPRANK1

// FORMAT: error: kvq-fold-scales: invalid fp8-format 'e4m3', expected 'auto', 'ocp' or 'fnuz'
// MISSING: error: kvq-fold-scales: invalid missing-scales 'ignore', expected 'warning' or 'error'
// QFB: error: kvq-fold-scales: invalid q-fallback 'v', expected 'seed' or 'k'
// DTYPE: error: kvq-fold-scales: invalid model-dtype 'f32', expected 'none', 'bf16' or 'f16'
// METHOD: error: kvq-fold-scales: invalid method 'ct', expected 'auto', 'base' or 'compressed-tensors'
// CTFNUZ: error: kvq-fold-scales: invalid ct-fnuz 'x2', expected 'double' or 'vllm'
// REPORT: error: kvq-fold-scales: cannot write report '{{.*}}report.txt'
// TPSIZE: error: kvq-fold-scales: invalid tp-size '0', expected at least 1
// TPRANK: error: kvq-fold-scales: invalid tp-rank '4', expected 0 to 3 for tp-size 4
// TPRANK1: error: kvq-fold-scales: invalid tp-rank '1', expected 0 to 0 for tp-size 1
kvq.layer @l cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32, q = 0.1 : f32>)
