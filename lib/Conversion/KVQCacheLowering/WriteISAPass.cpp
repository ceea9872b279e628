//===- WriteISAPass.cpp - the kvq-write-isa pass --------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/Passes.h"
#include "kvq/Target/ModuleTarget.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQWRITEISA
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
struct KVQWriteISAPass final : kvq::impl::KVQWriteISABase<KVQWriteISAPass> {
  using Base::Base;

  void runOnOperation() override {
    // The binaries hold code for the module's one target.
    if (failed(lookupModuleTarget(getOperation())))
      return signalPassFailure();
    SmallVector<std::pair<std::string, StringRef>> texts;
    getOperation().walk([&](gpu::BinaryOp binary) {
      for (Attribute attr : binary.getObjects()) {
        auto object = dyn_cast<gpu::ObjectAttr>(attr);
        if (!object || object.getFormat() != gpu::CompilationTarget::Assembly)
          continue;
        std::string header;
        llvm::raw_string_ostream os(header);
        os << "// kvq-write-isa: @" << binary.getSymName() << " "
           << object.getTarget() << "\n";
        texts.emplace_back(header, object.getObject().getValue());
      }
    });
    if (texts.empty()) {
      getOperation().emitError()
          << "kvq-write-isa: no gpu.binary object in assembly form; run "
             "gpu-module-to-binary{format=isa} (or kvq-to-ptx / kvq-to-amdgcn) "
             "first";
      return signalPassFailure();
    }
    std::string message;
    std::unique_ptr<llvm::ToolOutputFile> file =
        openOutputFile(output, &message);
    if (!file) {
      getOperation().emitError() << "kvq-write-isa: " << message;
      return signalPassFailure();
    }
    for (auto &[header, text] : texts) {
      if (texts.size() > 1)
        file->os() << header;
      file->os() << text;
      if (!text.ends_with("\n"))
        file->os() << "\n";
    }
    file->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
