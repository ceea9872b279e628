//===- main.cpp - a program linking the installed kvq package -------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Registers kvq the way a model compiler would, parses a kvq.layer from a
// string, verifies and prints it, reads it through the typed C++ API, and
// runs a kvq pass from a pipeline string.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQOps.h"
#include "kvq/InitAllKVQ.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

static constexpr const char *kModule = R"mlir(
kvq.layer @model.layers.0 prefix("model.layers.0") cache(fp8)
    checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.07 : f32>)
)mlir";

int main() {
  mlir::DialectRegistry registry;
  mlir::kvq::registerAllKVQDialects(registry);
  mlir::kvq::registerAllKVQPasses();
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(kModule, &context);
  if (!module) {
    llvm::errs() << "kvq-consumer: parse failed\n";
    return 1;
  }
  if (mlir::failed(mlir::verify(*module))) {
    llvm::errs() << "kvq-consumer: verification failed\n";
    return 1;
  }
  module->print(llvm::outs());

  for (mlir::kvq::LayerOp layer : module->getOps<mlir::kvq::LayerOp>())
    llvm::outs() << "layer " << layer.getSymName() << ": prefix "
                 << layer.getCheckpointPrefix() << ", quantized "
                 << (layer.isQuantized() ? "yes" : "no") << "\n";
  llvm::outs().flush();

  // The pipeline string lists passes nested in `pm`, which runs on the
  // module: no `builtin.module(...)` around it.
  mlir::PassManager pm(&context);
  if (mlir::failed(mlir::parsePassPipeline("kvq-layer-report", pm)) ||
      mlir::failed(pm.run(*module))) {
    llvm::errs() << "kvq-consumer: kvq-layer-report failed\n";
    return 1;
  }
  return 0;
}
