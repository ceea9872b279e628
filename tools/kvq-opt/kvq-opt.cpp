//===- kvq-opt.cpp - kvq optimizer driver ---------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// mlir-opt with the kvq dialect and passes added to every upstream dialect,
// extension and pass, so kvq pipelines can be mixed with upstream ones.
//
//===----------------------------------------------------------------------===//

#include "kvq/InitAllKVQ.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::kvq::registerAllKVQPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::kvq::registerAllKVQDialects(registry);
  // As mlir-opt does: gpu-module-to-binary needs the GPU dialects'
  // translations to LLVM IR.
  mlir::registerAllGPUToLLVMIRTranslations(registry);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "kvq optimizer driver\n", registry));
}
