//===- KVQDialect.td - kvq dialect definition --------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQDIALECT_TD
#define KVQ_DIALECT_KVQ_IR_KVQDIALECT_TD

include "mlir/IR/OpBase.td"

def KVQ_Dialect : Dialect {
  let name = "kvq";
  let cppNamespace = "::mlir::kvq";
  let summary = "KV-cache quantization of LLM attention layers";
  let description = [{
    The `kvq` dialect makes KV-cache quantization of LLM attention correct by
    construction. It has four parts:

    1. `kvq.layer`: one symbol per attention layer. It records the layer's
       name in the checkpoint, its KV-cache dtype, whether K/V scales are
       calibrated at run time, the raw scales as found in the checkpoint
       (`#kvq.scales`), and - once `kvq-fold-scales` has run - the final
       scales the kernels use (`#kvq.resolved_scales`).
    2. `kvq.cache_store` and `kvq.cache_load`: the KV-cache write
       (quantize, then scatter into a paged cache) and read (gather, then
       dequantize). Both name their layer instead of carrying a scale, so the
       store and the load of one layer can never disagree on the scale.
    3. `kvq.paged_attention`: decode attention over a layer's paged cache,
       reading it exactly as the store wrote it, with the same layer's
       scales (the K scale folded into the softmax scale, the V scale
       applied once to the result).
    4. Passes that fold the checkpoint scales with the rules serving engines
       use (vLLM's `BaseKVCacheMethod.process_weights_after_loading`), report
       every condition as a diagnostic located at the layer, and lower the
       cache ops to GPU (NVVM, ROCDL) and CPU code for the target the module
       states once (`kvq-set-target`).

    A typical module before folding:

    ```mlir
    kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
        checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)

    func.func @step(%k: memref<?x8x128xbf16>, %v: memref<?x8x128xbf16>,
                    %kc: memref<?x16x8x128xf8E4M3FN>,
                    %vc: memref<?x16x8x128xf8E4M3FN>, %slots: memref<?xi64>) {
      kvq.cache_store @model.layers.0 (%k, %v) into (%kc, %vc) at %slots
          : memref<?x8x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?xi64>
      return
    }
    ```

    Conventions. Scales are *dequantization* scales `s` (`x ~= q * s`), as
    checkpoints store them: the store computes `q = convert(x / s)` with
    round-to-nearest-even and saturation, the load computes `x = float(q) * s`.
  }];
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
  private:
    void registerAttributes();
  public:
  }];
}

#endif // KVQ_DIALECT_KVQ_IR_KVQDIALECT_TD
