// The stock mlir-opt loads kvq as a dialect plugin and a pass plugin.
// RUN: %mlir-opt --load-dialect-plugin=%kvq_plugin --load-pass-plugin=%kvq_plugin %s \
// RUN:   | %mlir-opt --load-dialect-plugin=%kvq_plugin --load-pass-plugin=%kvq_plugin \
// RUN:   | FileCheck %s
// RUN: %mlir-opt --load-dialect-plugin=%kvq_plugin --load-pass-plugin=%kvq_plugin %s \
// RUN:     --mlir-print-op-generic \
// RUN:   | %mlir-opt --load-dialect-plugin=%kvq_plugin --load-pass-plugin=%kvq_plugin \
// RUN:   | FileCheck %s
// RUN: %mlir-opt --load-dialect-plugin=%kvq_plugin --load-pass-plugin=%kvq_plugin %s \
// RUN:     --verify-roundtrip -o /dev/null

// Plugin passes get no --kvq-... flag in mlir-opt: run them, with their
// options, through a pipeline string.
// RUN: %mlir-opt --load-dialect-plugin=%kvq_plugin --load-pass-plugin=%kvq_plugin %s \
// RUN:     --pass-pipeline='builtin.module(kvq-layer-report)' -o /dev/null \
// RUN:   | FileCheck %s --check-prefix=TABLE
// RUN: %mlir-opt --load-dialect-plugin=%kvq_plugin --load-pass-plugin=%kvq_plugin %s \
// RUN:     --pass-pipeline='builtin.module(kvq-layer-report{format=json})' -o /dev/null \
// RUN:   | FileCheck %s --check-prefix=JSON

// The plugin's verifiers run too.
// RUN: sed -e 's/memref<?xi64>/memref<?xi32>/g' %s \
// RUN:   | not %mlir-opt --load-dialect-plugin=%kvq_plugin - 2>&1 \
// RUN:   | FileCheck %s --check-prefix=VERIFY

// CHECK:      kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8) checkpoint(<k = 5.000000e-02 : f32, v = 7.000000e-02 : f32>)
// CHECK-NEXT: kvq.layer @model.layers.1 prefix("model.layers.1") cache(fp8) resolved(<k = 1.000000e-01 checkpoint, v = 1.000000e-01 duplicated, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
// CHECK-LABEL: func.func @step(
// CHECK-SAME:    %[[K:[^:]*]]: memref<?x8x128xbf16>, %[[V:[^:]*]]: memref<?x8x128xbf16>, %[[KC:[^:]*]]: memref<?x16x8x128xf8E4M3FN>, %[[VC:[^:]*]]: memref<?x16x8x128xf8E4M3FN>, %[[S:[^:]*]]: memref<?xi64>)
// CHECK-NEXT:    kvq.cache_store @model.layers.1(%[[K]], %[[V]]) into(%[[KC]], %[[VC]]) at %[[S]] : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
// CHECK-NEXT:    kvq.cache_load @model.layers.1(%[[KC]], %[[VC]]) at %[[S]] into(%[[K]], %[[V]]) : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
// CHECK-NEXT:    return

// TABLE:      layer           prefix          cache  K                   V                   Q            P
// TABLE-NEXT: model.layers.0  model.layers.0  fp8    0.0500000007 (raw)  0.0700000003 (raw)  - (absent)   - (absent)
// TABLE-NEXT: model.layers.1  model.layers.1  fp8    0.100000001 (checkpoint)

// JSON: "layer": "model.layers.0",
// JSON: "layer": "model.layers.1",
// JSON: "resolved": true,

// VERIFY: error: 'kvq.cache_store' op operand #4 must be 1-D tensor or memref of i64, but got 'memref<?xi32>'

kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)
kvq.layer @model.layers.1 prefix("model.layers.1") cache(fp8)
    resolved(#kvq.resolved_scales<k = 0.1 checkpoint, v = 0.1 duplicated,
                                  q = 1.0 default, prob = 1.0 default>)

func.func @step(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                %kc: memref<?x16x8x128xf8E4M3FN>, %vc: memref<?x16x8x128xf8E4M3FN>,
                %slots: memref<?xi64>) {
  kvq.cache_store @model.layers.1 (%k, %v) into (%kc, %vc) at %slots
      : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
  kvq.cache_load @model.layers.1 (%kc, %vc) at %slots into (%k, %v)
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64>, memref<?x8x128xbf16>
  return
}
