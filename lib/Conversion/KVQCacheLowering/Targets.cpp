//===- Targets.cpp - fp8 conversion hooks of kvq's targets ----------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"
#include "kvq/Conversion/KVQCacheLowering/SoftwareConversion.h"

#include "mlir/Dialect/AMDGPU/IR/AMDGPUDialect.h"
#include "mlir/Dialect/AMDGPU/Utils/Chipset.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::kvq;

//===----------------------------------------------------------------------===//
// KVQTarget (software conversion)
//===----------------------------------------------------------------------===//

KVQTarget::~KVQTarget() = default;

StringRef KVQTarget::getName() const {
  switch (kind) {
  case Kind::CPU:
    return "cpu";
  case Kind::NVVM:
    return "nvvm";
  case Kind::ROCDL:
    return "rocdl";
  }
  llvm_unreachable("unknown target kind");
}

static VectorType vec2(Type elem) { return VectorType::get({2}, elem); }

Value KVQTarget::truncPair(OpBuilder &b, Location loc, Value a, Value bb,
                           FloatType f8Type) const {
  Value pair =
      vector::FromElementsOp::create(b, loc, vec2(b.getF32Type()), {a, bb});
  return buildSoftwareTruncF(b, loc, pair, f8Type, /*saturate=*/true);
}

std::pair<Value, Value> KVQTarget::extPair(OpBuilder &b, Location loc,
                                           Value packed,
                                           FloatType f8Type) const {
  Value f = buildSoftwareExtF(b, loc, packed, f8Type);
  return {vector::ExtractOp::create(b, loc, f, 0),
          vector::ExtractOp::create(b, loc, f, 1)};
}

/// Concatenates equally sized 1-D vectors with a tree of shuffles (lowers to
/// LLVM shufflevector; no strided-slice ops to legalize).
static Value concatVectors(OpBuilder &b, Location loc,
                           SmallVector<Value> parts) {
  while (parts.size() > 1) {
    SmallVector<Value> next;
    for (size_t i = 0; i + 1 < parts.size(); i += 2) {
      int64_t n = cast<VectorType>(parts[i].getType()).getNumElements();
      SmallVector<int64_t> mask(2 * n);
      for (int64_t k = 0; k < 2 * n; ++k)
        mask[k] = k;
      next.push_back(
          vector::ShuffleOp::create(b, loc, parts[i], parts[i + 1], mask));
    }
    if (parts.size() % 2)
      next.push_back(parts.back());
    parts = std::move(next);
  }
  return parts.front();
}

void KVQTarget::storeIf(OpBuilder &b, Location loc, Value predicate,
                        Value value, Value memref, ValueRange indices) const {
  scf::IfOp::create(b, loc, predicate, [&](OpBuilder &b, Location loc) {
    auto vecType = dyn_cast<VectorType>(value.getType());
    if (!vecType) {
      memref::StoreOp::create(b, loc, value, memref, indices);
    } else {
      // Aligned to its size, up to 16 bytes (as the GPU form's loads).
      auto type = cast<MemRefType>(memref.getType());
      uint64_t bytes = vecType.getNumElements() *
                       std::max(1u, type.getElementTypeBitWidth() / 8);
      vector::StoreOp::create(b, loc, value, memref, indices,
                              /*nontemporal=*/false,
                              llvm::Align(std::min<uint64_t>(bytes, 16)));
    }
    scf::YieldOp::create(b, loc);
  });
}

Value KVQTarget::truncToBits(OpBuilder &b, Location loc, Value f32s,
                             FloatType f8Type) const {
  if (!supports(f8Type))
    return buildSoftwareTruncF(b, loc, f32s, f8Type, /*saturate=*/true);
  auto vecType = dyn_cast<VectorType>(f32s.getType());
  if (!vecType) {
    Value pair = truncPair(b, loc, f32s, f32s, f8Type);
    return vector::ExtractOp::create(b, loc, pair, 0);
  }
  int64_t n = vecType.getNumElements();
  assert(vecType.getRank() == 1 && n % 2 == 0 && "expects an even 1-D vector");
  SmallVector<Value> pairs;
  for (int64_t i = 0; i < n; i += 2) {
    Value lo = vector::ExtractOp::create(b, loc, f32s, i);
    Value hi = vector::ExtractOp::create(b, loc, f32s, i + 1);
    pairs.push_back(truncPair(b, loc, lo, hi, f8Type));
  }
  return concatVectors(b, loc, std::move(pairs));
}

Value KVQTarget::extFromBits(OpBuilder &b, Location loc, Value bits,
                             FloatType f8Type) const {
  if (!supports(f8Type))
    return buildSoftwareExtF(b, loc, bits, f8Type);
  auto vecType = dyn_cast<VectorType>(bits.getType());
  if (!vecType) {
    Value pair = vector::BroadcastOp::create(b, loc, vec2(b.getI8Type()), bits);
    return extPair(b, loc, pair, f8Type).first;
  }
  int64_t n = vecType.getNumElements();
  assert(vecType.getRank() == 1 && n % 2 == 0 && "expects an even 1-D vector");
  SmallVector<Value> values;
  for (int64_t i = 0; i < n; i += 2) {
    Value pair = vector::ShuffleOp::create(b, loc, bits, bits,
                                           ArrayRef<int64_t>{i, i + 1});
    auto [lo, hi] = extPair(b, loc, pair, f8Type);
    values.push_back(lo);
    values.push_back(hi);
  }
  return vector::FromElementsOp::create(
      b, loc, VectorType::get({n}, b.getF32Type()), values);
}

//===----------------------------------------------------------------------===//
// CPU
//===----------------------------------------------------------------------===//

namespace {
/// Host code: software conversion, scf loops.
class CPUTarget final : public KVQTarget {
public:
  CPUTarget() : KVQTarget(Kind::CPU, "") {}
};
} // namespace

//===----------------------------------------------------------------------===//
// NVVM
//===----------------------------------------------------------------------===//

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
  NVVMTarget(std::string chip, unsigned smVersion)
      : KVQTarget(Kind::NVVM, std::move(chip)), smVersion(smVersion) {}

  bool supports(FloatType t) const override {
    return smVersion >= 89 && isa<Float8E4M3FNType, Float8E5M2Type>(t);
  }

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

  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<NVVM::NVVMDialect, LLVM::LLVMDialect>();
  }

private:
  unsigned smVersion;
};
} // namespace

//===----------------------------------------------------------------------===//
// ROCDL
//===----------------------------------------------------------------------===//

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
  ROCDLTarget(std::string chip, amdgpu::Chipset chipset)
      : KVQTarget(Kind::ROCDL, std::move(chip)), chipset(chipset) {}

  bool supports(FloatType t) const override {
    if (chipset.majorVersion == 9 && chipset.minorVersion == 4)
      return isa<Float8E4M3FNUZType, Float8E5M2FNUZType>(t);
    if (amdgpu::hasOcpFp8(chipset))
      return isa<Float8E4M3FNType, Float8E5M2Type>(t);
    return false;
  }

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

  void getDependentDialects(DialectRegistry &registry) const override {
    registry.insert<amdgpu::AMDGPUDialect>();
  }

private:
  amdgpu::Chipset chipset;
};
} // namespace

//===----------------------------------------------------------------------===//
// Factory
//===----------------------------------------------------------------------===//

/// Parses "sm_<N>" with an optional "a"/"f" feature suffix ("sm_90a").
static std::optional<unsigned> parseSmVersion(StringRef chip) {
  if (!chip.consume_front("sm_"))
    return std::nullopt;
  if (chip.ends_with("a") || chip.ends_with("f"))
    chip = chip.drop_back();
  unsigned version;
  if (chip.empty() || chip.getAsInteger(10, version) || version < 20)
    return std::nullopt;
  return version;
}

FailureOr<std::unique_ptr<KVQTarget>>
mlir::kvq::createKVQTarget(StringRef name, StringRef chip,
                           function_ref<InFlightDiagnostic()> emitError) {
  if (name == "cpu") {
    if (!chip.empty())
      return emitError() << "chip '" << chip
                         << "' given for target 'cpu', which takes none";
    return std::unique_ptr<KVQTarget>(std::make_unique<CPUTarget>());
  }
  if (name == "nvvm") {
    if (chip.empty())
      return emitError() << "target 'nvvm' needs a chip, e.g. chip=sm_90";
    std::optional<unsigned> sm = parseSmVersion(chip);
    if (!sm)
      return emitError() << "unknown NVIDIA chip '" << chip
                         << "', expected sm_<version> such as sm_80 or sm_90";
    return std::unique_ptr<KVQTarget>(
        std::make_unique<NVVMTarget>(chip.str(), *sm));
  }
  if (name == "rocdl") {
    if (chip.empty())
      return emitError() << "target 'rocdl' needs a chip, e.g. chip=gfx942";
    FailureOr<amdgpu::Chipset> chipset = amdgpu::Chipset::parse(chip);
    if (failed(chipset))
      return emitError() << "unknown AMD chip '" << chip
                         << "', expected gfx<version> such as gfx942 or gfx950";
    return std::unique_ptr<KVQTarget>(
        std::make_unique<ROCDLTarget>(chip.str(), *chipset));
  }
  return emitError() << "unknown target '" << name
                     << "', expected cpu, nvvm or rocdl";
}
