//===- KVQAttrsTest.cpp - kvq attribute C++ API tests ---------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::kvq;

namespace {

class KVQAttrsTest : public ::testing::Test {
protected:
  KVQAttrsTest() { context.loadDialect<KVQDialect>(); }
  MLIRContext context;
  Builder b{&context};
};

TEST_F(KVQAttrsTest, ResolvedScalesBuildAndRead) {
  auto attr = ResolvedScalesAttr::get(
      &context, 0.05f, ScaleRule::Checkpoint, 0.1f, ScaleRule::Duplicated, 1.0f,
      ScaleRule::Default, 1.0f, ScaleRule::Default);
  EXPECT_EQ(attr.getKFloat(), 0.05f);
  EXPECT_EQ(attr.getVFloat(), 0.1f);
  EXPECT_EQ(attr.getVRule(), ScaleRule::Duplicated);
  EXPECT_EQ(attr.getQRule(), ScaleRule::Default);
}

TEST_F(KVQAttrsTest, ResolvedScalesRejectNonPositive) {
  auto loc = UnknownLoc::get(&context);
  auto bad = ResolvedScalesAttr::getChecked(
      [&] { return emitError(loc); }, &context, APFloat(0.0f),
      ScaleRule::Checkpoint, APFloat(1.0f), ScaleRule::Checkpoint,
      APFloat(1.0f), ScaleRule::Default, APFloat(1.0f), ScaleRule::Default,
      /*fnuz=*/false, /*doubled=*/0u);
  EXPECT_FALSE(bad);
}

TEST_F(KVQAttrsTest, ResolvedScalesRejectNonF32) {
  // The parser always reads f32, so only the C++ API can pass an f64.
  auto loc = UnknownLoc::get(&context);
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  auto bad = ResolvedScalesAttr::getChecked(
      [&] { return emitError(loc); }, &context, APFloat(0.5),
      ScaleRule::Checkpoint, APFloat(1.0f), ScaleRule::Checkpoint,
      APFloat(1.0f), ScaleRule::Default, APFloat(1.0f), ScaleRule::Default,
      /*fnuz=*/false, /*doubled=*/0u);
  EXPECT_FALSE(bad);
  EXPECT_EQ(message, "resolved scale 'k' must be an f32");
}

TEST_F(KVQAttrsTest, ResolvedScalesRejectBadDoubledMask) {
  auto loc = UnknownLoc::get(&context);
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  auto bad = ResolvedScalesAttr::getChecked(
      [&] { return emitError(loc); }, &context, APFloat(1.0f),
      ScaleRule::Checkpoint, APFloat(1.0f), ScaleRule::Checkpoint,
      APFloat(1.0f), ScaleRule::Default, APFloat(1.0f), ScaleRule::Default,
      /*fnuz=*/true, /*doubled=*/16u);
  EXPECT_FALSE(bad);
  EXPECT_EQ(message, "doubled mask 16 names no scale (expected bits 0 to 3)");
  // The mask of the kinds, and the per-field reading of it.
  unsigned mask =
      ResolvedScalesAttr::doubledMask({ScaleKind::K, ScaleKind::Prob});
  EXPECT_EQ(mask, 9u);
  auto good = ResolvedScalesAttr::get(
      &context, 1.0f, ScaleRule::Checkpoint, 1.0f, ScaleRule::Checkpoint, 1.0f,
      ScaleRule::Default, 1.0f, ScaleRule::Checkpoint, true, mask);
  EXPECT_TRUE(good.isDoubled(ScaleKind::K));
  EXPECT_FALSE(good.isDoubled(ScaleKind::V));
  EXPECT_FALSE(good.isDoubled(ScaleKind::Q));
  EXPECT_TRUE(good.isDoubled(ScaleKind::Prob));
}

TEST_F(KVQAttrsTest, ResolvedScalesPerTensorIsNotPerHead) {
  auto attr = ResolvedScalesAttr::get(
      &context, 0.05f, ScaleRule::Checkpoint, 0.1f, ScaleRule::Checkpoint, 1.0f,
      ScaleRule::Default, 1.0f, ScaleRule::Default);
  EXPECT_FALSE(attr.isPerHead());
  EXPECT_FALSE(attr.isPerHead(ScaleKind::K));
  EXPECT_TRUE(attr.getHeads(ScaleKind::K).empty());
  EXPECT_FALSE(attr.getKHeads());
  EXPECT_EQ(attr.getNumHeads(), 0u);
  // Every head shares the per-tensor value.
  EXPECT_EQ(attr.getHeadValue(ScaleKind::V, 5), 0.1f);
}

TEST_F(KVQAttrsTest, ResolvedScalesPerHeadBuildAndRead) {
  const float k[] = {0.1f, 0.3f, 0.2f}, v[] = {0.4f, 0.5f, 0.6f},
              q[] = {1.0f, 2.0f, 0.5f};
  auto attr = ResolvedScalesAttr::getPerHead(
      &context, 0.0f, ScaleRule::Checkpoint, k, 0.0f, ScaleRule::Duplicated, v,
      0.0f, ScaleRule::Checkpoint, q, 1.0f, ScaleRule::Default,
      /*fnuz=*/true, ResolvedScalesAttr::doubledMask({ScaleKind::K}));
  ASSERT_TRUE(attr);
  EXPECT_TRUE(attr.isPerHead());
  EXPECT_TRUE(attr.isPerHead(ScaleKind::Q));
  EXPECT_FALSE(attr.isPerHead(ScaleKind::Prob));
  EXPECT_EQ(attr.getNumHeads(), 3u);
  EXPECT_EQ(attr.getKHeads().asArrayRef(), ArrayRef<float>(k));
  EXPECT_EQ(attr.getHeads(ScaleKind::V), ArrayRef<float>(v));
  EXPECT_EQ(attr.getHeads(ScaleKind::Q), ArrayRef<float>(q));
  // The single value of a per-head field is the max over its heads.
  EXPECT_EQ(attr.getKFloat(), 0.3f);
  EXPECT_EQ(attr.getVFloat(), 0.6f);
  EXPECT_EQ(attr.getQFloat(), 2.0f);
  EXPECT_EQ(attr.getProbFloat(), 1.0f);
  EXPECT_EQ(attr.getHeadValue(ScaleKind::K, 2), 0.2f);
  EXPECT_EQ(attr.getHeadValue(ScaleKind::Prob, 2), 1.0f);
  EXPECT_EQ(attr.getVRule(), ScaleRule::Duplicated);
  EXPECT_TRUE(attr.isDoubled(ScaleKind::K));
  // A per-head attribute is not equal to its per-tensor max.
  auto perTensor = ResolvedScalesAttr::get(
      &context, 0.3f, ScaleRule::Checkpoint, 0.6f, ScaleRule::Duplicated, 2.0f,
      ScaleRule::Checkpoint, 1.0f, ScaleRule::Default, true,
      ResolvedScalesAttr::doubledMask({ScaleKind::K}));
  EXPECT_NE(attr, perTensor);
}

TEST_F(KVQAttrsTest, ResolvedScalesPerHeadRejectWrongMax) {
  // Text cannot reach this (the parser computes the max); C++ can.
  auto loc = UnknownLoc::get(&context);
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  auto heads = DenseF32ArrayAttr::get(&context, {0.25f, 0.5f});
  auto bad = ResolvedScalesAttr::getChecked(
      [&] { return emitError(loc); }, &context, APFloat(0.25f),
      ScaleRule::Checkpoint, APFloat(0.5f), ScaleRule::Checkpoint,
      APFloat(1.0f), ScaleRule::Default, APFloat(1.0f), ScaleRule::Default,
      /*fnuz=*/false, /*doubled=*/0u, heads, heads, DenseF32ArrayAttr());
  EXPECT_FALSE(bad);
  EXPECT_EQ(message, "resolved scale 'k' is 0.25, but the value of a per-head "
                     "field must be the max over its heads, 0.5");
}

TEST_F(KVQAttrsTest, ResolvedScalesPerHeadRejectEmpty) {
  auto loc = UnknownLoc::get(&context);
  std::string message;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    message = diag.str();
    return success();
  });
  auto empty = DenseF32ArrayAttr::get(&context, {});
  auto bad = ResolvedScalesAttr::getChecked(
      [&] { return emitError(loc); }, &context, APFloat(1.0f),
      ScaleRule::Checkpoint, APFloat(1.0f), ScaleRule::Checkpoint,
      APFloat(1.0f), ScaleRule::Default, APFloat(1.0f), ScaleRule::Default,
      /*fnuz=*/false, /*doubled=*/0u, empty, empty, DenseF32ArrayAttr());
  EXPECT_FALSE(bad);
  EXPECT_EQ(message, "per-head resolved scale 'k' must have at least one head");
}

TEST_F(KVQAttrsTest, ScaleValuesOfScalarAndTensor) {
  EXPECT_EQ(getScaleValues(b.getF32FloatAttr(0.5f)),
            SmallVector<double>({0.5}));
  auto type = RankedTensorType::get({3}, b.getBF16Type());
  auto dense = DenseElementsAttr::get(
      type, ArrayRef<APFloat>{APFloat(APFloat::BFloat(), "0.25"),
                              APFloat(APFloat::BFloat(), "2"),
                              APFloat(APFloat::BFloat(), "-1")});
  EXPECT_EQ(getScaleValues(dense), SmallVector<double>({0.25, 2.0, -1.0}));
  EXPECT_TRUE(getScaleValues(Attribute()).empty());
}

TEST_F(KVQAttrsTest, CacheElementTypeRules) {
  Type bf16 = b.getBF16Type();
  EXPECT_FALSE(checkCacheElementType(KVCacheDtype::Fp8,
                                     b.getType<Float8E4M3FNType>(), bf16));
  EXPECT_FALSE(checkCacheElementType(KVCacheDtype::Fp8E4M3,
                                     b.getType<Float8E4M3FNUZType>(), bf16));
  EXPECT_TRUE(checkCacheElementType(KVCacheDtype::Fp8E4M3,
                                    b.getType<Float8E5M2Type>(), bf16));
  EXPECT_FALSE(checkCacheElementType(KVCacheDtype::Fp8E5M2,
                                     b.getType<Float8E5M2FNUZType>(), bf16));
  EXPECT_FALSE(checkCacheElementType(KVCacheDtype::Int8, b.getI8Type(), bf16));
  EXPECT_TRUE(checkCacheElementType(
      KVCacheDtype::Int8, b.getIntegerType(8, /*isSigned=*/true), bf16));
  EXPECT_FALSE(checkCacheElementType(KVCacheDtype::Auto, bf16, bf16));
  EXPECT_TRUE(checkCacheElementType(KVCacheDtype::Auto, b.getF16Type(), bf16));
}

} // namespace
