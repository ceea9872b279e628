// RUN: kvq-opt %s --kvq-layer-report -o /dev/null | FileCheck %s --check-prefix=TABLE
// RUN: kvq-opt %s --kvq-layer-report=format=table -o /dev/null | FileCheck %s --check-prefix=TABLE
// RUN: kvq-opt %s --kvq-layer-report=format=json -o /dev/null | FileCheck %s --check-prefix=JSON

// To a file: nothing but the IR goes to stdout, and the IR is unchanged (the
// pass is read-only).
// RUN: rm -f %t.txt %t.json
// RUN: kvq-opt %s --kvq-layer-report=output=%t.txt | FileCheck %s --check-prefix=IR
// RUN: FileCheck %s --check-prefix=TABLE --input-file=%t.txt
// RUN: kvq-opt %s '--kvq-layer-report=output=%t.json format=json' -o /dev/null | count 0
// RUN: FileCheck %s --check-prefix=JSON --input-file=%t.json

// Bad options.
// RUN: kvq-opt %s --kvq-layer-report=format=xml -o /dev/null -verify-diagnostics
// RUN: not kvq-opt %s --kvq-layer-report=output=%t.no-such-dir/report.txt -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOFILE

// The columns: symbol, checkpoint prefix, cache dtype (+calc with
// calculate_kv_scales), then K, V, Q and prob, each "value (rule)": "raw"
// before kvq-fold-scales, the rule after (with x2 where the FNUZ correction
// doubled a checkpoint value), "absent" when not in the checkpoint. A
// per-head scale shows the range of its heads, "min..max [n heads]".
// TABLE:      layer           prefix          cache          K                                         V                                   Q                            P
// TABLE-NEXT: model.layers.0  model.layers.0  fp8            0.0500000007 (raw)                        0.0700000003 (raw)                  - (absent)                   - (absent)
// TABLE-NEXT: model.layers.1  model.layers.1  fp8_e5m2+calc  0.100000001..0.200000003 [2 heads] (raw)  - (absent)                          0.5 (raw)                    - (absent)
// TABLE-NEXT: model.layers.2  model.layers.2  int8           - (absent)                                - (absent)                          - (absent)                   - (absent)
// TABLE-NEXT: model.layers.3  dec.3           auto           1 (not_quantized)                         1 (not_quantized)                   1 (default)                  0.25 (checkpoint)
// TABLE-NEXT: model.layers.4  model.layers.4  fp8            0.100000001 (checkpoint x2)               0.100000001 (duplicated x2)         1 (default)                  1 (default)
// TABLE-NEXT: model.layers.5  model.layers.5  fp8            0.125..0.5 [3 heads] (checkpoint)         0.375..0.75 [3 heads] (checkpoint)  1..4 [3 heads] (checkpoint)  1 (default)
// TABLE-NOT:  model.layers

// One object per layer, keys sorted; a scale's value is a number where the
// scale has a value, a string otherwise. A per-head scale lists every head
// ("heads"), their "min" and "max"; its "value" is the max (the per-layer
// value vLLM gives code that reads one scale).
// JSON:      [
// JSON-NEXT:   {
// JSON-NEXT:     "calculate_kv_scales": false,
// JSON-NEXT:     "k": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "raw",
// JSON-NEXT:       "value": 0.050000000{{[0-9]*}}
// JSON-NEXT:     },
// JSON-NEXT:     "kv_cache_dtype": "fp8",
// JSON-NEXT:     "layer": "model.layers.0",
// JSON-NEXT:     "prefix": "model.layers.0",
// JSON-NEXT:     "prob": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "absent",
// JSON-NEXT:       "value": "-"
// JSON-NEXT:     },
// JSON-NEXT:     "q": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "absent",
// JSON-NEXT:       "value": "-"
// JSON-NEXT:     },
// JSON-NEXT:     "resolved": false,
// JSON-NEXT:     "v": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "raw",
// JSON-NEXT:       "value": 0.070000000{{[0-9]*}}
// JSON-NEXT:     }
// JSON-NEXT:   },
// JSON-NEXT:   {
// JSON-NEXT:     "calculate_kv_scales": true,
// JSON-NEXT:     "k": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "heads": [
// JSON-NEXT:         0.10000000{{[0-9]*}},
// JSON-NEXT:         0.20000000{{[0-9]*}}
// JSON-NEXT:       ],
// JSON-NEXT:       "max": 0.20000000{{[0-9]*}},
// JSON-NEXT:       "min": 0.10000000{{[0-9]*}},
// JSON-NEXT:       "rule": "raw",
// JSON-NEXT:       "value": 0.20000000{{[0-9]*}}
// JSON-NEXT:     },
// JSON-NEXT:     "kv_cache_dtype": "fp8_e5m2",
// JSON-NEXT:     "layer": "model.layers.1",
// JSON:          "q": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "raw",
// JSON-NEXT:       "value": 0.5
// JSON-NEXT:     },
// JSON:          "layer": "model.layers.2",
// JSON:          "resolved": false,
// JSON:          "k": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "not_quantized",
// JSON-NEXT:       "value": 1
// JSON-NEXT:     },
// JSON-NEXT:     "kv_cache_dtype": "auto",
// JSON-NEXT:     "layer": "model.layers.3",
// JSON-NEXT:     "prefix": "dec.3",
// JSON-NEXT:     "prob": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "checkpoint",
// JSON-NEXT:       "value": 0.25
// JSON-NEXT:     },
// JSON-NEXT:     "q": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "default",
// JSON-NEXT:       "value": 1
// JSON-NEXT:     },
// JSON-NEXT:     "resolved": true,
// JSON:          "k": {
// JSON-NEXT:       "doubled": true,
// JSON-NEXT:       "rule": "checkpoint",
// JSON-NEXT:       "value": 0.10000000{{[0-9]*}}
// JSON-NEXT:     },
// JSON-NEXT:     "kv_cache_dtype": "fp8",
// JSON-NEXT:     "layer": "model.layers.4",
// JSON:          "q": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "default",
// JSON-NEXT:       "value": 1
// JSON-NEXT:     },
// JSON-NEXT:     "resolved": true,
// JSON-NEXT:     "v": {
// JSON-NEXT:       "doubled": true,
// JSON-NEXT:       "rule": "duplicated",
// JSON-NEXT:       "value": 0.10000000{{[0-9]*}}
// JSON-NEXT:     }
// JSON-NEXT:   },
// JSON-NEXT:   {
// JSON-NEXT:     "calculate_kv_scales": false,
// JSON-NEXT:     "k": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "heads": [
// JSON-NEXT:         0.125,
// JSON-NEXT:         0.5,
// JSON-NEXT:         0.25
// JSON-NEXT:       ],
// JSON-NEXT:       "max": 0.5,
// JSON-NEXT:       "min": 0.125,
// JSON-NEXT:       "rule": "checkpoint",
// JSON-NEXT:       "value": 0.5
// JSON-NEXT:     },
// JSON-NEXT:     "kv_cache_dtype": "fp8",
// JSON-NEXT:     "layer": "model.layers.5",
// JSON-NEXT:     "prefix": "model.layers.5",
// JSON-NEXT:     "prob": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "rule": "default",
// JSON-NEXT:       "value": 1
// JSON-NEXT:     },
// JSON-NEXT:     "q": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "heads": [
// JSON-NEXT:         2,
// JSON-NEXT:         1,
// JSON-NEXT:         4
// JSON-NEXT:       ],
// JSON-NEXT:       "max": 4,
// JSON-NEXT:       "min": 1,
// JSON-NEXT:       "rule": "checkpoint",
// JSON-NEXT:       "value": 4
// JSON-NEXT:     },
// JSON-NEXT:     "resolved": true,
// JSON-NEXT:     "v": {
// JSON-NEXT:       "doubled": false,
// JSON-NEXT:       "heads": [
// JSON-NEXT:         0.375,
// JSON-NEXT:         0.375,
// JSON-NEXT:         0.75
// JSON-NEXT:       ],
// JSON-NEXT:       "max": 0.75,
// JSON-NEXT:       "min": 0.375,
// JSON-NEXT:       "rule": "checkpoint",
// JSON-NEXT:       "value": 0.75
// JSON-NEXT:     }
// JSON-NEXT:   }
// JSON-NEXT: ]

// IR: kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8) checkpoint(<k = 5.000000e-02 : f32, v = 7.000000e-02 : f32>)
// IR: kvq.layer @model.layers.3 prefix("dec.3") cache(auto) resolved(

// NOFILE: error: kvq-layer-report: cannot open '{{.*}}.no-such-dir/report.txt'

// expected-error @+1 {{kvq-layer-report: unknown format 'xml', expected 'table' or 'json'}}
module {
  kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
      checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)
  kvq.layer @model.layers.1 cache(fp8_e5m2) calculate_kv_scales
      checkpoint(#kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, q = 0.5 : bf16>)
  kvq.layer @model.layers.2 cache(int8)
  kvq.layer @model.layers.3 prefix("dec.3") cache(auto)
      resolved(#kvq.resolved_scales<k = 1.0 not_quantized, v = 1.0 not_quantized,
                                    q = 1.0 default, prob = 0.25 checkpoint>)
  kvq.layer @model.layers.4 cache(fp8)
      resolved(#kvq.resolved_scales<k = 0.1 checkpoint doubled,
                                    v = 0.1 duplicated doubled,
                                    q = 1.0 default, prob = 1.0 default, fnuz>)
  kvq.layer @model.layers.5 cache(fp8) method(compressed_tensors)
      resolved(#kvq.resolved_scales<k = [0.125, 0.5, 0.25] checkpoint,
                                    v = [0.375, 0.375, 0.75] checkpoint,
                                    q = [2.0, 1.0, 4.0] checkpoint,
                                    prob = 1.0 default>)
}
