// RUN: kvq-opt %s -verify-diagnostics --kvq-fold-scales="report=%t.txt report-json=%t.json" -o /dev/null
// RUN: FileCheck %s --check-prefix=TABLE < %t.txt
// RUN: FileCheck %s --check-prefix=JSON < %t.json

// The summary remark and the per-layer report (table and JSON).

// expected-remark @below {{kvq-fold-scales: 3 layer(s) folded, 0 defaulted, 1 duplicated, 7 scale(s) doubled for FNUZ, 1 warned, 0 failed (FNUZ fp8 target)}}
module {
  gpu.module @k [#rocdl.target<chip = "gfx942">] {}
  kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32, q = 0.1 : f32, prob = 0.25 : f32>)
  // expected-warning @below {{[Q-MISSING]}}
  // expected-note @below {{vLLM reproduces this quirk}}
  kvq.layer @model.layers.1 prefix("model.layers.1") cache(fp8_e4m3) checkpoint(#kvq.scales<k = 0.05 : f32>)
  kvq.layer @model.layers.2 prefix("model.layers.2") cache(auto) checkpoint(#kvq.scales<q = 0.1 : f32>)
}

// TABLE:      layer           prefix          cache     K                             V                             Q                             P
// TABLE-NEXT: model.layers.0  model.layers.0  fp8_e4m3  0.100000001 (checkpoint x2)   0.140000001 (checkpoint x2)   0.200000003 (checkpoint x2)   0.5 (checkpoint x2)
// TABLE-NEXT: model.layers.1  model.layers.1  fp8_e4m3  0.100000001 (duplicated x2)   0.100000001 (duplicated x2)   1 (default)                   1 (default)
// TABLE-NEXT: model.layers.2  model.layers.2  auto      1 (not_quantized)             1 (not_quantized)             0.200000003 (checkpoint x2)   1 (default)

// JSON:      "calculate_kv_scales": false,
// JSON-NEXT: "k": {
// JSON-NEXT:   "doubled": true,
// JSON-NEXT:   "rule": "checkpoint",
// JSON-NEXT:   "value": 0.10000000149011612
// JSON:      "kv_cache_dtype": "fp8_e4m3",
// JSON-NEXT: "layer": "model.layers.0",
