//===- CheckLibdevicePass.cpp - kvq-check-libdevice -----------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Target/LLVM/NVVM/Utils.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQCHECKLIBDEVICE
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
struct KVQCheckLibdevicePass final
    : kvq::impl::KVQCheckLibdeviceBase<KVQCheckLibdevicePass> {
  void runOnOperation() override {
    gpu::GPUModuleOp module = getOperation();
    llvm::SmallPtrSet<Operation *, 4> reported;
    std::string library;
    module.walk([&](LLVM::CallOp call) {
      auto callee = dyn_cast_or_null<LLVM::LLVMFuncOp>(
          SymbolTable::lookupNearestSymbolFrom(call, call.getCalleeAttr()));
      if (!callee || !callee.isExternal() ||
          !callee.getName().starts_with("__nv_") ||
          !reported.insert(callee).second)
        return;
      if (library.empty()) {
        llvm::SmallString<128> path(NVVM::getCUDAToolkitPath());
        llvm::sys::path::append(path, "nvvm", "libdevice", "libdevice.10.bc");
        library = path.str().str();
      }
      if (!NVVM::getCUDAToolkitPath().empty() && llvm::sys::fs::exists(library))
        return;
      call.emitError() << "'" << callee.getName()
                       << "' is a libdevice function, and no CUDA toolkit "
                          "provides libdevice here (looked for '"
                       << library
                       << "'): set CUDA_ROOT or CUDA_HOME to a CUDA toolkit";
      signalPassFailure();
    });
  }
};
} // namespace
