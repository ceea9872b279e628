//===- NVVMTarget.cpp - the NVIDIA hooks of the cache lowering ------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQTarget.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::kvq;

static VectorType vec2(Type elem) { return VectorType::get({2}, elem); }

namespace {
/// NVIDIA. sm_89+ (Ada, Hopper, Blackwell) have
///   cvt.rn.satfinite.{e4m3x2,e5m2x2}.f32  d, a, b   (2 x f32 -> 2 x fp8)
///   cvt.rn.f16x2.{e4m3x2,e5m2x2}          d, a      (2 x fp8 -> 2 x f16)
/// for the OCP formats. `satfinite` is exactly our saturation (finite values
/// beyond max and +-inf to +-max, NaN to NaN); `rn` is round to nearest even.
/// The f16 results of the widening are exact (every e4m3 / e5m2 value is an
/// f16), and so is f16 -> f32.
class NVVMTarget final : public KVQTarget {
public:
  explicit NVVMTarget(const ModuleTarget &target) : KVQTarget(target) {}

  Value truncPair(OpBuilder &b, Location loc, Value a, Value bb,
                  FloatType t) const override {
    // The op puts its first operand in the *high* byte of the packed i16,
    // i.e. in element 1 of the vector<2xi8>: pass (bb, a) so that `a` lands
    // in element 0, the lower address.
    return NVVM::ConvertF32x2ToF8x2Op::create(
        b, loc, vec2(b.getI8Type()), bb, a, NVVM::FPRoundingMode::RN,
        NVVM::SaturationMode::SATFINITE, /*relu=*/false, t);
  }

  std::pair<Value, Value> extPair(OpBuilder &b, Location loc, Value packed,
                                  FloatType t) const override {
    // Element i of the byte pair becomes element i of the f16 pair.
    Value halves = NVVM::ConvertF8x2ToF16x2Op::create(
        b, loc, vec2(b.getF16Type()), packed, b.getBoolAttr(false),
        TypeAttr::get(t));
    Value f = arith::ExtFOp::create(b, loc, vec2(b.getF32Type()), halves);
    return {vector::ExtractOp::create(b, loc, f, 0),
            vector::ExtractOp::create(b, loc, f, 1)};
  }

  /// A 4-, 8- or 16-byte vector store into a contiguous memref is one
  /// predicated `st.global.{b32,v2.b32,v4.b32}` (inline PTX; no branch for
  /// LLVM to sink loads into). The address is the memref's aligned pointer
  /// plus the linearized index; alignment to the access size is the GPU
  /// form's documented requirement.
  void storeIf(OpBuilder &b, Location loc, Value predicate, Value value,
               Value memref, ValueRange indices) const override {
    auto type = cast<MemRefType>(memref.getType());
    auto vecType = dyn_cast<VectorType>(value.getType());
    unsigned elemBits = type.getElementTypeBitWidth();
    int64_t bits = vecType ? vecType.getNumElements() * elemBits : 0;
    if (!vecType || elemBits % 8 != 0 ||
        (bits != 32 && bits != 64 && bits != 128) ||
        !type.getLayout().isIdentity())
      return KVQTarget::storeIf(b, loc, predicate, value, memref, indices);

    auto metadata = memref::ExtractStridedMetadataOp::create(b, loc, memref);
    Value linear = metadata.getOffset();
    for (auto [index, stride] : llvm::zip(indices, metadata.getStrides()))
      linear = arith::AddIOp::create(
          b, loc, linear, arith::MulIOp::create(b, loc, index, stride));
    Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, memref);
    Value address = arith::AddIOp::create(
        b, loc, base,
        arith::MulIOp::create(
            b, loc, linear,
            arith::ConstantIndexOp::create(b, loc, elemBits / 8)));
    SmallVector<Value> operands{
        arith::IndexCastUIOp::create(b, loc, b.getI64Type(), address)};
    const int64_t numWords = bits / 32;
    Value words = vector::BitCastOp::create(
        b, loc, VectorType::get({numWords}, b.getI32Type()),
        vector::BitCastOp::create(b, loc,
                                  VectorType::get({vecType.getNumElements()},
                                                  b.getIntegerType(elemBits)),
                                  value));
    for (int64_t i = 0; i < numWords; ++i)
      operands.push_back(vector::ExtractOp::create(b, loc, words, i));
    operands.push_back(
        arith::ExtUIOp::create(b, loc, b.getI32Type(), predicate));
    // $0 the address, $1 .. $numWords the data words, then the predicate.
    std::string data, constraints = "l";
    for (int64_t i = 1; i <= numWords; ++i) {
      data += (i > 1 ? ", $" : "$") + std::to_string(i);
      constraints += ",r";
    }
    constraints += ",r,~{memory}";
    std::string assembly;
    llvm::raw_string_ostream os(assembly);
    os << "{\n\t.reg .pred p;\n\t.reg .b64 g;\n\tsetp.ne.b32 p, $"
       << numWords + 1 << ", 0;\n\tcvta.to.global.u64 g, $0;\n\t@p "
       << (numWords == 1   ? "st.global.b32 [g], " + data
           : numWords == 2 ? "st.global.v2.b32 [g], {" + data + "}"
                           : "st.global.v4.b32 [g], {" + data + "}")
       << ";\n}";
    LLVM::InlineAsmOp::create(
        b, loc, /*resultTypes=*/TypeRange{}, operands, assembly, constraints,
        /*has_side_effects=*/true,
        /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
        LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
        /*operand_attrs=*/ArrayAttr());
  }

  /// `ex2.approx.f32`: relative error at most 2^-22.1 (PTX ISA), subnormal
  /// results kept (no .ftz), 2^-inf = +0.
  Value exp2(OpBuilder &b, Location loc, Value x) const override {
    return LLVM::InlineAsmOp::create(
               b, loc, b.getF32Type(), ValueRange{x}, "ex2.approx.f32 $0, $1;",
               "=f,f", /*has_side_effects=*/false, /*is_align_stack=*/false,
               LLVM::tailcallkind::TailCallKind::None,
               LLVM::AsmDialectAttr::get(b.getContext(),
                                         LLVM::AsmDialect::AD_ATT),
               /*operand_attrs=*/ArrayAttr())
        .getResult(0);
  }

  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<NVVM::NVVMDialect, LLVM::LLVMDialect>();
  }
};
} // namespace

std::unique_ptr<KVQTarget>
mlir::kvq::detail::createNVVMTarget(const ModuleTarget &target) {
  return std::make_unique<NVVMTarget>(target);
}
