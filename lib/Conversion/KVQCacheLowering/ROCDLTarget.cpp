//===- ROCDLTarget.cpp - the AMD hooks of the cache lowering --------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQTarget.h"

#include "mlir/Dialect/AMDGPU/IR/AMDGPUDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::kvq;

static VectorType vec2(Type elem) { return VectorType::get({2}, elem); }

namespace {
/// AMD. gfx94x (MI300) converts the FNUZ formats, gfx950 (MI350) and gfx12
/// the OCP ones, with v_cvt_pk_{fp8,bf8}_f32 / v_cvt_pk_f32_{fp8,bf8}
/// (`amdgpu.packed_trunc_2xfp8`, `amdgpu.ext_packed_fp8`).
/// The packing instruction rounds to nearest even but does not saturate: an
/// out-of-range value becomes NaN (FNUZ) or inf. So the inputs are first
/// clamped to +-max with compares that are false for NaN, which therefore
/// passes through and converts to NaN.
class ROCDLTarget final : public KVQTarget {
public:
  explicit ROCDLTarget(const ModuleTarget &target) : KVQTarget(target) {}

  Value truncPair(OpBuilder &b, Location loc, Value a, Value bb,
                  FloatType t) const override {
    const llvm::fltSemantics &sem = t.getFloatSemantics();
    llvm::APFloat maxV = llvm::APFloat::getLargest(sem);
    bool losesInfo;
    maxV.convert(llvm::APFloat::IEEEsingle(),
                 llvm::APFloat::rmNearestTiesToEven, &losesInfo);
    Value pos =
        arith::ConstantOp::create(b, loc, FloatAttr::get(b.getF32Type(), maxV));
    Value neg = arith::ConstantOp::create(
        b, loc, FloatAttr::get(b.getF32Type(), -maxV));
    auto clamp = [&](Value x) {
      // Ordered compares: false for NaN, which is kept as is.
      Value over =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, pos);
      x = arith::SelectOp::create(b, loc, over, pos, x);
      Value under =
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, neg);
      return arith::SelectOp::create(b, loc, under, neg, x).getResult();
    };
    auto packedType = VectorType::get({4}, t);
    Value ca = clamp(a);
    Value cb = clamp(bb);
    Value packed = amdgpu::PackedTrunc2xFp8Op::create(
        b, loc, packedType, ca, cb, b.getI32IntegerAttr(0),
        /*existing=*/Value());
    Value bytes = arith::BitcastOp::create(
        b, loc, VectorType::get({4}, b.getI8Type()), packed);
    return vector::ShuffleOp::create(b, loc, bytes, bytes,
                                     ArrayRef<int64_t>{0, 1});
  }

  std::pair<Value, Value> extPair(OpBuilder &b, Location loc, Value packed,
                                  FloatType t) const override {
    Value src = arith::BitcastOp::create(b, loc, vec2(t), packed);
    Value f = amdgpu::ExtPackedFp8Op::create(b, loc, vec2(b.getF32Type()), src,
                                             /*index=*/0u);
    return {vector::ExtractOp::create(b, loc, f, 0),
            vector::ExtractOp::create(b, loc, f, 1)};
  }

  /// `rocdl.exp2` (`llvm.amdgcn.exp2`, `v_exp_f32`: 1 ulp; results below
  /// f32's normal range may flush to zero, which the bound's underflow
  /// allowance covers). math.exp2 would become a call into the ROCm
  /// device libraries (ocml), which MLIR links only where a ROCm install
  /// is found, and convert-gpu-to-rocdl refuses llvm.exp2.
  Value exp2(OpBuilder &b, Location loc, Value x) const override {
    return ROCDL::ROCDLExp2::create(b, loc, x.getType(), x);
  }

  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<amdgpu::AMDGPUDialect, ROCDL::ROCDLDialect>();
  }
};
} // namespace

std::unique_ptr<KVQTarget>
mlir::kvq::detail::createROCDLTarget(const ModuleTarget &target) {
  return std::make_unique<ROCDLTarget>(target);
}
