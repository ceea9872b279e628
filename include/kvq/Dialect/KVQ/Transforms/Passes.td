//===- Passes.td - kvq passes -----------------------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_TD
#define KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def KVQLayerReport : Pass<"kvq-layer-report", "::mlir::ModuleOp"> {
  let summary = "print a table of the module's kvq layers and their scales";
  let description = [{
    Read-only. Prints one row per `kvq.layer`: symbol, checkpoint prefix,
    KV-cache dtype, and each scale (raw or resolved, with the rule that
    produced it) to the standard output or to `output`.

    ```
    $ kvq-opt model.mlir --kvq-layer-report -o /dev/null
    layer            prefix                    cache  K ...
    ```
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "file to write the table to ('-' for stdout)">,
    Option<"format", "format", "std::string", /*default=*/"\"table\"",
           "'table' (readable) or 'json'">,
  ];
}

#endif // KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_TD
