//===- KVQTarget.cpp - software conversion and the factory ----------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQTarget.h"

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"
#include "kvq/Conversion/KVQCacheLowering/SoftwareConversion.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::kvq;

//===----------------------------------------------------------------------===//
// KVQTarget (software conversion)
//===----------------------------------------------------------------------===//

KVQTarget::~KVQTarget() = default;

bool KVQTarget::supports(FloatType f8Type) const {
  return (target.hasOcpFp8() &&
          isa<Float8E4M3FNType, Float8E5M2Type>(f8Type)) ||
         (target.hasFnuzFp8() &&
          isa<Float8E4M3FNUZType, Float8E5M2FNUZType>(f8Type));
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

Value KVQTarget::exp2(OpBuilder &b, Location loc, Value x) const {
  return math::Exp2Op::create(b, loc, x);
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
// Factory
//===----------------------------------------------------------------------===//

namespace {
/// Host code: software conversion, scf loops.
class CPUTarget final : public KVQTarget {
public:
  CPUTarget() : KVQTarget(ModuleTarget()) {}
};
} // namespace

std::unique_ptr<KVQTarget>
mlir::kvq::createKVQTarget(const ModuleTarget &target) {
  switch (target.getKind()) {
  case TargetKind::CPU:
    return std::make_unique<CPUTarget>();
  case TargetKind::NVVM:
    return detail::createNVVMTarget(target);
  case TargetKind::ROCDL:
    return detail::createROCDLTarget(target);
  }
  llvm_unreachable("unknown TargetKind");
}

FailureOr<std::unique_ptr<KVQTarget>>
mlir::kvq::createKVQTarget(StringRef name, StringRef chip,
                           function_ref<InFlightDiagnostic()> emitError) {
  FailureOr<ModuleTarget> target = ModuleTarget::parse(name, chip, emitError);
  if (failed(target))
    return failure();
  return createKVQTarget(*target);
}
