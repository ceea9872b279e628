//===- AlignWorkgroupBuffersPass.cpp - kvq-align-workgroup-buffers --------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"
#include "kvq/Conversion/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

namespace mlir::kvq {
#define GEN_PASS_DEF_KVQALIGNWORKGROUPBUFFERS
#include "kvq/Conversion/Passes.h.inc"
} // namespace mlir::kvq

using namespace mlir;
using namespace mlir::kvq;

namespace {
/// The widest access the kernels make to a workgroup buffer: a 16-byte
/// vector load or cp.async copy.
constexpr int64_t kWorkgroupBufferAlign = 16;

struct KVQAlignWorkgroupBuffersPass final
    : kvq::impl::KVQAlignWorkgroupBuffersBase<KVQAlignWorkgroupBuffersPass> {
  using Base::Base;

  void runOnOperation() override {
    StringRef align = LLVM::LLVMDialect::getAlignAttrName();
    auto alignment = IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                      kWorkgroupBufferAlign);
    getOperation().walk([&](gpu::GPUModuleOp module) {
      if (module.getSymName() != kKernelModuleName)
        return;
      for (auto func : module.getOps<gpu::GPUFuncOp>()) {
        if (!func.isKernel())
          continue;
        for (unsigned i = 0, e = func.getNumWorkgroupAttributions(); i < e; ++i)
          if (!func.getWorkgroupAttributionAttr(i, align))
            func.setWorkgroupAttributionAttr(i, align, alignment);
      }
    });
  }
};
} // namespace
