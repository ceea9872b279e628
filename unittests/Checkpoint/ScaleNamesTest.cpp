//===- ScaleNamesTest.cpp - attention scale matching tests ----------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/ScaleNames.h"

#include "unittests/Checkpoint/TestWriter.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Path.h"

#include "gtest/gtest.h"

#include <optional>

using namespace mlir::kvq;
using namespace mlir::kvq::checkpoint;
using namespace mlir::kvq::checkpoint::test;
using llvm::StringRef;

namespace {

class ScaleNamesTest : public ::testing::Test {
protected:
  /// Writes \p tensors to one file and matches \p prefixes in it.
  ScaleMatches match(std::vector<TensorSpec> tensors,
                     std::vector<std::string> prefixes) {
    path = dir.write("model.safetensors", makeFile(tensors));
    llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(path);
    if (!checkpoint) {
      ADD_FAILURE() << llvm::toString(checkpoint.takeError());
      return {};
    }
    llvm::Expected<ScaleMatches> matches = matchScales(*checkpoint, prefixes);
    if (!matches) {
      ADD_FAILURE() << llvm::toString(matches.takeError());
      return {};
    }
    return std::move(*matches);
  }

  TempDir dir;
  std::string path;
};

/// The findings of \p kind.
std::vector<MatchFinding> findingsOf(const ScaleMatches &matches,
                                     MatchFinding::Kind kind) {
  std::vector<MatchFinding> result;
  for (const MatchFinding &finding : matches.findings)
    if (finding.kind == kind)
      result.push_back(finding);
  return result;
}

//===----------------------------------------------------------------------===//
// The producer table of checkpoint-names.md
//===----------------------------------------------------------------------===//

struct ConventionRow {
  const char *tensor; // the full name, for a layer model.layers.3
  ScaleKind field;
  const char *convention;
  SharedKV shared;
};

const ConventionRow kConventions[] = {
    {"model.layers.3.self_attn.k_scale", ScaleKind::K, "llm-compressor",
     SharedKV::No},
    {"model.layers.3.self_attn.v_scale", ScaleKind::V, "llm-compressor",
     SharedKV::No},
    {"model.layers.3.self_attn.q_scale", ScaleKind::Q, "llm-compressor",
     SharedKV::No},
    {"model.layers.3.self_attn.k_proj.k_scale", ScaleKind::K, "modelopt",
     SharedKV::No},
    {"model.layers.3.self_attn.v_proj.v_scale", ScaleKind::V, "modelopt",
     SharedKV::No},
    {"model.layers.3.self_attn.qkv_proj.k_scale", ScaleKind::K, "fused-qkv",
     SharedKV::No},
    {"model.layers.3.self_attn.qkv_proj.v_scale", ScaleKind::V, "fused-qkv",
     SharedKV::No},
    {"model.layers.3.self_attn.k_proj.output_scale", ScaleKind::K, "quark",
     SharedKV::No},
    {"model.layers.3.self_attn.v_proj.output_scale", ScaleKind::V, "quark",
     SharedKV::No},
    {"model.layers.3.self_attn.q_proj.output_scale", ScaleKind::Q, "quark",
     SharedKV::No},
    {"model.layers.3.self_attn.prob_output_scale", ScaleKind::Prob, "quark",
     SharedKV::No},
    {"model.layers.3.self_attn.kv_scale", ScaleKind::K, "legacy-kv-scale",
     SharedKV::Deprecated},
    {"model.layers.3.self_attn.k_cache.scale", ScaleKind::K, "hunyuan",
     SharedKV::No},
    {"model.layers.3.self_attn.v_cache.scale", ScaleKind::V, "hunyuan",
     SharedKV::No},
    {"model.layers.3.self_attn.q.scale", ScaleKind::Q, "hunyuan", SharedKV::No},
    {"model.layers.3.mixer.k_proj.k_scale", ScaleKind::K, "nemotron-h",
     SharedKV::No},
    {"model.layers.3.mixer.v_proj.v_scale", ScaleKind::V, "nemotron-h",
     SharedKV::No},
    // Mistral: under `attention.` of the layer, or directly under the prefix,
    // or with the Hugging Face `model.` root stripped.
    {"model.layers.3.attention.k_fake_quantizer.qscale_act", ScaleKind::K,
     "mistral", SharedKV::No},
    {"model.layers.3.attention.v_fake_quantizer.qscale_act", ScaleKind::V,
     "mistral", SharedKV::No},
    {"model.layers.3.attention.q_fake_quantizer.qscale_act", ScaleKind::Q,
     "mistral", SharedKV::No},
    {"model.layers.3.k_fake_quantizer.qscale_act", ScaleKind::K, "mistral",
     SharedKV::No},
    {"layers.3.attention.k_fake_quantizer.qscale_act", ScaleKind::K, "mistral",
     SharedKV::No},
    {"layers.3.attention.v_fake_quantizer.qscale_act", ScaleKind::V, "mistral",
     SharedKV::No},
    {"layers.3.attention.q_fake_quantizer.qscale_act", ScaleKind::Q, "mistral",
     SharedKV::No},
    {"layers.3.attention.kv_fake_quantizer.qscale_act", ScaleKind::K, "mistral",
     SharedKV::Deprecated},
    // TensorRT-LLM: one factor for K and V.
    {"model.layers.3.attention.kv_cache_scaling_factor", ScaleKind::K,
     "tensorrt-llm", SharedKV::Deprecated},
    {"transformer.layers.3.attention.kv_cache_scaling_factor", ScaleKind::K,
     "tensorrt-llm", SharedKV::Deprecated},
    // vLLM's default rule on the other names of the attention module.
    {"model.layers.3.mixer.k_scale", ScaleKind::K, "vllm-default",
     SharedKV::No},
    {"model.layers.3.mixer.v_scale", ScaleKind::V, "vllm-default",
     SharedKV::No},
    {"model.layers.3.mixer.q_scale", ScaleKind::Q, "vllm-default",
     SharedKV::No},
    {"model.layers.3.attention.k_scale", ScaleKind::K, "vllm-default",
     SharedKV::No},
    {"model.layers.3.attention.v_scale", ScaleKind::V, "vllm-default",
     SharedKV::No},
    {"model.layers.3.attn.k_scale", ScaleKind::K, "vllm-default", SharedKV::No},
    {"model.layers.3.attn.q_scale", ScaleKind::Q, "vllm-default", SharedKV::No},
    {"model.layers.3.self_attention.k_scale", ScaleKind::K, "vllm-default",
     SharedKV::No},
    {"model.layers.3.self_attention.v_scale", ScaleKind::V, "vllm-default",
     SharedKV::No},
    {"model.layers.3.mixer.kv_scale", ScaleKind::K, "legacy-kv-scale",
     SharedKV::Deprecated},
    {"model.layers.3.attn.kv_scale", ScaleKind::K, "legacy-kv-scale",
     SharedKV::Deprecated},
    // sharktank's reading of Quark: one scale for K and V, not deprecated.
    {"model.layers.3.self_attn.kv_cache_scale", ScaleKind::K, "sharktank",
     SharedKV::Current},
};

TEST_F(ScaleNamesTest, MatchesEveryConvention) {
  const ScaleKind fields[] = {ScaleKind::Q, ScaleKind::K, ScaleKind::V,
                              ScaleKind::Prob};
  for (const ConventionRow &row : kConventions) {
    SCOPED_TRACE(row.tensor);
    ScaleMatches matches =
        match({scalarF32("model.layers.3.self_attn.o_proj.weight", 1),
               scalarF32(row.tensor, 0.0125f)},
              {"model.layers.2", "model.layers.3"});
    ASSERT_EQ(matches.layers.size(), 2u);
    const LayerMatch &layer = matches.layers[1];
    EXPECT_EQ(layer.prefix, "model.layers.3");
    for (ScaleKind field : fields) {
      const std::optional<MatchedScale> &scale = layer.get(field);
      EXPECT_FALSE(matches.layers[0].get(field).has_value());
      if (field != row.field) {
        EXPECT_FALSE(scale.has_value()) << stringifyScaleKind(field).str();
        continue;
      }
      ASSERT_TRUE(scale.has_value());
      EXPECT_EQ(scale->field, row.field);
      EXPECT_EQ(scale->tensorName, row.tensor);
      EXPECT_EQ(scale->convention, row.convention);
      EXPECT_EQ(scale->legacyKvScale, row.shared != SharedKV::No);
      EXPECT_EQ(scale->file, path);
      EXPECT_EQ(scale->values, (std::vector<double>{double(0.0125f)}));
      EXPECT_TRUE(scale->shape.empty());
    }
    // A shared K/V scale is reported: a warning if its name is deprecated,
    // a remark if not.
    EXPECT_EQ(matches.findings.size(), row.shared != SharedKV::No ? 1u : 0u);
    if (row.shared != SharedKV::No) {
      std::vector<MatchFinding> shared =
          findingsOf(matches, row.shared == SharedKV::Deprecated
                                  ? MatchFinding::Deprecated
                                  : MatchFinding::SharedKvScale);
      ASSERT_EQ(shared.size(), 1u);
      EXPECT_EQ(shared[0].tensorName, row.tensor);
      EXPECT_EQ(shared[0].layerPrefix, "model.layers.3");
      EXPECT_NE(shared[0].message.find(" scale for K and V ("),
                std::string::npos);
      EXPECT_EQ(shared[0].message.find("deprecated") != std::string::npos,
                row.shared == SharedKV::Deprecated);
    }
    EXPECT_FALSE(matches.hasErrors());
    EXPECT_TRUE(isScaleLikeName(row.tensor));
  }
}

TEST_F(ScaleNamesTest, EveryPatternIsScaleLike) {
  for (const ScaleNamePattern &pattern : getScaleNamePatterns()) {
    EXPECT_TRUE(isScaleLikeName(pattern.suffix)) << pattern.suffix;
    EXPECT_TRUE(
        isScaleLikeName(std::string("model.layers.0.") + pattern.suffix))
        << pattern.suffix;
  }
}

TEST(ScaleLikeNameTest, WeightAndActivationScalesAreNotAttentionScales) {
  for (StringRef name :
       {"model.layers.0.self_attn.k_proj.weight_scale",
        "model.layers.0.self_attn.k_proj.input_scale",
        "model.layers.0.self_attn.k_proj.weight", "model.layers.0.input_scale",
        "model.layers.0.self_attn.o_proj.output_scale",
        "model.layers.0.mlp.down_proj.output_scale",
        "model.layers.0.input_layernorm.scale", "model.norm.scale",
        "model.layers.0.attention.wk.qscale_act", "k_scale_extra"})
    EXPECT_FALSE(isScaleLikeName(name)) << name.str();
  for (StringRef name :
       {"k_scale", "model.layers.0.self_attn.attn.k_scale", "lm_head.v_scale",
        "model.layers.0.self_attn.qkv_proj.output_scale",
        "model.layers.0.self_attn.kv_cache_scale",
        "model.layers.0.self_attn.k_proj.kv_cache_scale",
        "backbone.layers.0.mixer.k_scale"})
    EXPECT_TRUE(isScaleLikeName(name)) << name.str();
}

TEST(ScaleLikeNameTest, PerChannelKvCacheScales) {
  for (StringRef name : {"model.layers.0.self_attn.k_proj.kv_cache_scale",
                         "model.layers.0.self_attn.v_proj.kv_cache_scale"})
    EXPECT_TRUE(isPerChannelKvCacheScaleName(name)) << name.str();
  for (StringRef name : {"model.layers.0.self_attn.kv_cache_scale",
                         "model.layers.0.self_attn.k_proj.kv_cache_offset",
                         "model.layers.0.self_attn.k_proj.k_scale",
                         "model.layers.0.mlp.down_proj.kv_cache_scale"})
    EXPECT_FALSE(isPerChannelKvCacheScaleName(name)) << name.str();
}

TEST(ScaleLikeNameTest, ZeroPoints) {
  for (StringRef name : {"model.layers.0.self_attn.k_zero_point",
                         "model.layers.0.self_attn.v_zero_point",
                         "model.layers.0.self_attn.kv_zero_point",
                         "model.layers.0.self_attn.k_proj.output_zero_point",
                         "model.layers.0.self_attn.prob_output_zero_point",
                         "model.layers.0.self_attn.k_cache.zero_point",
                         "model.layers.0.self_attn.k_proj.kv_cache_offset",
                         "model.layers.0.self_attn.v_proj.kv_cache_offset",
                         "model.layers.0.self_attn.kv_cache_offset",
                         "model.layers.0.self_attn.kv_cache_zero_point"})
    EXPECT_TRUE(isZeroPointName(name)) << name.str();
  for (StringRef name : {"model.layers.0.self_attn.k_proj.weight_zero_point",
                         "model.layers.0.self_attn.k_proj.input_zero_point",
                         "model.layers.0.self_attn.k_proj.weight_offset",
                         "model.layers.0.self_attn.k_proj.input_offset",
                         "model.layers.0.self_attn.k_scale"})
    EXPECT_FALSE(isZeroPointName(name)) << name.str();
}

//===----------------------------------------------------------------------===//
// Conflicts and redundancy
//===----------------------------------------------------------------------===//

TEST_F(ScaleNamesTest, ConflictNamesBothTensorsAndKeepsFirstByPriority) {
  ScaleMatches matches =
      match({scalarF32("model.layers.0.self_attn.k_scale", 0.02f),
             scalarF32("model.layers.0.self_attn.k_proj.k_scale", 0.03f)},
            {"model.layers.0"});
  ASSERT_EQ(matches.layers.size(), 1u);
  ASSERT_TRUE(matches.layers[0].k.has_value());
  EXPECT_EQ(matches.layers[0].k->convention, "modelopt");
  ASSERT_EQ(matches.findings.size(), 1u);
  const MatchFinding &conflict = matches.findings[0];
  EXPECT_EQ(conflict.kind, MatchFinding::Conflict);
  EXPECT_TRUE(conflict.isError());
  EXPECT_TRUE(matches.hasErrors());
  EXPECT_EQ(conflict.tensorName, "model.layers.0.self_attn.k_proj.k_scale");
  EXPECT_EQ(conflict.otherTensorName, "model.layers.0.self_attn.k_scale");
  EXPECT_EQ(conflict.layerPrefix, "model.layers.0");
  EXPECT_EQ(conflict.message,
            "conflicting k scales for layer 'model.layers.0': "
            "'model.layers.0.self_attn.k_proj.k_scale' (modelopt) and "
            "'model.layers.0.self_attn.k_scale' (llm-compressor) hold "
            "different values");
}

TEST_F(ScaleNamesTest, LegacyKvScaleConflictsWithDifferentK) {
  ScaleMatches matches =
      match({scalarF32("model.layers.0.self_attn.k_scale", 0.02f),
             scalarF32("model.layers.0.self_attn.kv_scale", 0.03f)},
            {"model.layers.0"});
  EXPECT_EQ(matches.layers[0].k->convention, "llm-compressor");
  EXPECT_FALSE(matches.layers[0].k->legacyKvScale);
  EXPECT_EQ(findingsOf(matches, MatchFinding::Conflict).size(), 1u);
  EXPECT_EQ(findingsOf(matches, MatchFinding::Deprecated).size(), 1u);
}

TEST_F(ScaleNamesTest, SameValuesFromTwoConventionsAreRedundantNotErrors) {
  ScaleMatches matches =
      match({scalarF32("model.layers.0.self_attn.v_scale", 0.02f),
             {"model.layers.0.self_attn.v_proj.v_scale",
              "F32",
              {1},
              f32Bytes({0.02f})},
             {"model.layers.0.self_attn.v_proj.output_scale",
              "BF16",
              {},
              u16Bytes({0x3C00})}}, // 2^-7 = 0.0078125, a conflict
            {"model.layers.0"});
  ASSERT_TRUE(matches.layers[0].v.has_value());
  EXPECT_EQ(matches.layers[0].v->convention, "modelopt");
  EXPECT_EQ(matches.layers[0].v->shape, (std::vector<int64_t>{1}));
  std::vector<MatchFinding> redundant =
      findingsOf(matches, MatchFinding::Redundant);
  ASSERT_EQ(redundant.size(), 1u);
  EXPECT_FALSE(redundant[0].isError());
  EXPECT_EQ(redundant[0].tensorName, "model.layers.0.self_attn.v_proj.v_scale");
  EXPECT_EQ(redundant[0].otherTensorName, "model.layers.0.self_attn.v_scale");
  std::vector<MatchFinding> conflicts =
      findingsOf(matches, MatchFinding::Conflict);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].otherTensorName,
            "model.layers.0.self_attn.v_proj.output_scale");
}

TEST_F(ScaleNamesTest, ScalesOnTwoAttentionModulesOfOneLayerConflict) {
  ScaleMatches matches =
      match({scalarF32("backbone.layers.0.mixer.k_proj.k_scale", 0.02f),
             scalarF32("backbone.layers.0.mixer.k_scale", 0.03f),
             scalarF32("backbone.layers.0.self_attn.v_scale", 0.02f),
             scalarF32("backbone.layers.0.attention.v_scale", 0.02f)},
            {"backbone.layers.0"});
  ASSERT_TRUE(matches.layers[0].k.has_value());
  EXPECT_EQ(matches.layers[0].k->convention, "nemotron-h");
  std::vector<MatchFinding> conflicts =
      findingsOf(matches, MatchFinding::Conflict);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].message,
            "conflicting k scales for layer 'backbone.layers.0': "
            "'backbone.layers.0.mixer.k_proj.k_scale' (nemotron-h) and "
            "'backbone.layers.0.mixer.k_scale' (vllm-default) hold different "
            "values");
  std::vector<MatchFinding> redundant =
      findingsOf(matches, MatchFinding::Redundant);
  ASSERT_EQ(redundant.size(), 1u);
  EXPECT_EQ(redundant[0].tensorName, "backbone.layers.0.self_attn.v_scale");
  EXPECT_EQ(redundant[0].otherTensorName,
            "backbone.layers.0.attention.v_scale");
}

TEST_F(ScaleNamesTest, SharedKvCacheScaleFillsKAndConflictsWithDifferentK) {
  ScaleMatches matches =
      match({scalarF32("model.layers.0.self_attn.kv_cache_scale", 0.04f),
             scalarF32("model.layers.1.self_attn.kv_cache_scale", 0.04f),
             scalarF32("model.layers.1.self_attn.k_scale", 0.05f)},
            {"model.layers.0", "model.layers.1"});
  const LayerMatch &layer0 = matches.layers[0];
  ASSERT_TRUE(layer0.k.has_value());
  EXPECT_TRUE(layer0.k->legacyKvScale);
  EXPECT_EQ(layer0.k->convention, "sharktank");
  EXPECT_FALSE(layer0.v.has_value());
  std::vector<MatchFinding> shared =
      findingsOf(matches, MatchFinding::SharedKvScale);
  // Only where it is used: layer 1 takes llm-compressor's k_scale.
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0].layerPrefix, "model.layers.0");
  EXPECT_FALSE(shared[0].isError());
  EXPECT_EQ(shared[0].message,
            "'model.layers.0.self_attn.kv_cache_scale' is one scale for K and "
            "V (sharktank): it is used as the K scale and the scale rules "
            "copy it to V");
  EXPECT_TRUE(findingsOf(matches, MatchFinding::Deprecated).empty());
  // llm-compressor's k_scale comes first; the shared scale disagrees.
  EXPECT_EQ(matches.layers[1].k->convention, "llm-compressor");
  EXPECT_FALSE(matches.layers[1].k->legacyKvScale);
  std::vector<MatchFinding> conflicts =
      findingsOf(matches, MatchFinding::Conflict);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].otherTensorName,
            "model.layers.1.self_attn.kv_cache_scale");
}

TEST_F(ScaleNamesTest, PerHeadScalesCompareElementwise) {
  std::vector<float> heads = {0.01f, 0.02f, 0.03f, 0.04f,
                              0.05f, 0.06f, 0.07f, 0.08f};
  std::vector<float> other = heads;
  other[7] = 0.09f;
  ScaleMatches matches = match(
      {{"model.layers.0.self_attn.k_scale", "F32", {8}, f32Bytes(heads)},
       {"model.layers.0.self_attn.k_cache.scale",
        "F32",
        {8, 1, 1},
        f32Bytes(heads)},
       {"model.layers.1.self_attn.k_scale", "F32", {8}, f32Bytes(heads)},
       {"model.layers.1.self_attn.k_cache.scale", "F32", {8}, f32Bytes(other)}},
      {"model.layers.0", "model.layers.1"});
  EXPECT_EQ(matches.layers[0].k->shape, (std::vector<int64_t>{8, 1, 1}));
  EXPECT_EQ(matches.layers[0].k->values.size(), 8u);
  std::vector<MatchFinding> conflicts =
      findingsOf(matches, MatchFinding::Conflict);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].layerPrefix, "model.layers.1");
  EXPECT_EQ(findingsOf(matches, MatchFinding::Redundant).size(), 1u);
}

//===----------------------------------------------------------------------===//
// Unmatched tensors, zero points, read errors
//===----------------------------------------------------------------------===//

TEST_F(ScaleNamesTest, ReportsUnmatchedScaleTensors) {
  ScaleMatches matches =
      match({scalarF32("model.layers.0.self_attn.k_scale", 0.02f),
             scalarF32("model.layers.9.self_attn.k_scale", 0.02f),
             scalarF32("model.layers.0.self_attn.attn.v_scale", 0.02f),
             scalarF32("lm_head.k_scale", 0.02f)},
            {"model.layers.0", "model.layers.1"});
  std::vector<MatchFinding> unmatched =
      findingsOf(matches, MatchFinding::Unmatched);
  ASSERT_EQ(unmatched.size(), 3u);
  EXPECT_EQ(matches.findings.size(), 3u);
  EXPECT_FALSE(matches.hasErrors());
  EXPECT_EQ(unmatched[0].tensorName, "model.layers.9.self_attn.k_scale");
  EXPECT_EQ(unmatched[0].layerPrefix, "");
  EXPECT_EQ(unmatched[0].message,
            "scale tensor 'model.layers.9.self_attn.k_scale' in '" + path +
                "' matches no attention layer; it is ignored");
  EXPECT_EQ(unmatched[1].tensorName, "model.layers.0.self_attn.attn.v_scale");
  EXPECT_EQ(unmatched[1].layerPrefix, "model.layers.0");
  EXPECT_NE(unmatched[1].message.find("is under layer 'model.layers.0' but "
                                      "follows no known naming convention"),
            std::string::npos);
  EXPECT_EQ(unmatched[2].tensorName, "lm_head.k_scale");
  EXPECT_TRUE(matches.layers[0].k.has_value());
  EXPECT_FALSE(matches.layers[1].k.has_value());
}

TEST_F(ScaleNamesTest, AttentionModuleIsAChildOfTheLayerWithAKnownName) {
  // NemotronH: the attention layers' scales are on `mixer` (vLLM's default
  // rule loads them as `mixer.attn.k_scale`). Not an attention module: `mlp`,
  // and anything deeper than the layer's child.
  ScaleMatches matches =
      match({scalarF32("backbone.layers.5.mixer.k_scale", 0.02f),
             scalarF32("backbone.layers.5.mixer.v_scale", 0.03f),
             scalarF32("backbone.layers.5.mixer.q_scale", 0.04f),
             scalarF32("backbone.layers.5.mlp.k_scale", 0.02f),
             scalarF32("backbone.layers.5.mixer.attn.v_scale", 0.02f)},
            {"backbone.layers.4", "backbone.layers.5"});
  const LayerMatch &layer = matches.layers[1];
  ASSERT_TRUE(layer.k && layer.v && layer.q);
  EXPECT_EQ(layer.k->tensorName, "backbone.layers.5.mixer.k_scale");
  EXPECT_EQ(layer.v->values, (std::vector<double>{double(0.03f)}));
  EXPECT_EQ(layer.q->convention, "vllm-default");
  std::vector<MatchFinding> unmatched =
      findingsOf(matches, MatchFinding::Unmatched);
  ASSERT_EQ(unmatched.size(), 2u);
  EXPECT_EQ(matches.findings.size(), 2u);
  EXPECT_EQ(unmatched[0].tensorName, "backbone.layers.5.mlp.k_scale");
  EXPECT_EQ(unmatched[0].layerPrefix, "backbone.layers.5");
  EXPECT_EQ(unmatched[1].tensorName, "backbone.layers.5.mixer.attn.v_scale");
  EXPECT_EQ(unmatched[1].layerPrefix, "backbone.layers.5");
}

TEST_F(ScaleNamesTest, IgnoresWeightAndActivationScales) {
  ScaleMatches matches =
      match({scalarF32("model.layers.0.self_attn.k_proj.weight_scale", 0.5f),
             scalarF32("model.layers.0.self_attn.k_proj.input_scale", 0.5f),
             scalarF32("model.layers.0.mlp.down_proj.weight_scale", 0.5f),
             scalarF32("model.layers.7.self_attn.k_proj.input_scale", 0.5f)},
            {"model.layers.0"});
  EXPECT_TRUE(matches.findings.empty());
  EXPECT_FALSE(matches.layers[0].k.has_value());
}

TEST_F(ScaleNamesTest, HuggingFaceRootIsNotStrippedForOtherConventions) {
  ScaleMatches matches = match({scalarF32("layers.0.self_attn.k_scale", 0.02f)},
                               {"model.layers.0"});
  EXPECT_FALSE(matches.layers[0].k.has_value());
  std::vector<MatchFinding> unmatched =
      findingsOf(matches, MatchFinding::Unmatched);
  ASSERT_EQ(unmatched.size(), 1u);
  EXPECT_EQ(unmatched[0].layerPrefix, "model.layers.0");
}

TEST_F(ScaleNamesTest, ReportsZeroPoints) {
  ScaleMatches matches = match(
      {scalarF32("model.layers.0.self_attn.k_scale", 0.02f),
       {"model.layers.0.self_attn.k_zero_point", "I8", {}, std::string(1, 0)},
       {"model.layers.0.self_attn.v_proj.output_zero_point",
        "I8",
        {},
        std::string(1, 0)},
       {"model.layers.0.self_attn.k_proj.weight_zero_point",
        "I8",
        {},
        std::string(1, 0)}},
      {"model.layers.0"});
  std::vector<MatchFinding> zeroPoints =
      findingsOf(matches, MatchFinding::ZeroPoint);
  ASSERT_EQ(zeroPoints.size(), 2u);
  EXPECT_EQ(matches.findings.size(), 2u);
  EXPECT_EQ(zeroPoints[0].tensorName, "model.layers.0.self_attn.k_zero_point");
  EXPECT_EQ(zeroPoints[0].layerPrefix, "model.layers.0");
  EXPECT_NE(zeroPoints[0].message.find(
                "asymmetric KV-cache quantization is not supported"),
            std::string::npos);
  EXPECT_FALSE(matches.hasErrors());
}

TEST_F(ScaleNamesTest, ReportsPerChannelKvCacheScalesAndOffsetsAtTheLayer) {
  // Ascend msModelSlim int8 KV: a scale and an offset per channel of the
  // k_proj / v_proj output; none of them is attached.
  std::vector<float> channels = {0.01f, 0.02f, 0.03f, 0.04f};
  std::vector<float> offsets = {0, 1, -1, 2};
  const char *L0 = "model.layers.0.self_attn.";
  ScaleMatches matches =
      match({{std::string(L0) + "k_proj.kv_cache_scale",
              "F32",
              {4},
              f32Bytes(channels)},
             {std::string(L0) + "k_proj.kv_cache_offset",
              "F32",
              {4},
              f32Bytes(offsets)},
             {std::string(L0) + "v_proj.kv_cache_scale",
              "F32",
              {4},
              f32Bytes(channels)},
             {std::string(L0) + "v_proj.kv_cache_offset",
              "F32",
              {4},
              f32Bytes(offsets)},
             {"model.layers.7.self_attn.k_proj.kv_cache_scale",
              "F32",
              {2, 2},
              f32Bytes(channels)}},
            {"model.layers.0"});
  const LayerMatch &layer = matches.layers[0];
  EXPECT_FALSE(layer.q || layer.k || layer.v || layer.prob);
  EXPECT_FALSE(matches.hasErrors());
  EXPECT_EQ(matches.findings.size(), 5u);
  EXPECT_TRUE(findingsOf(matches, MatchFinding::Unmatched).empty());
  std::vector<MatchFinding> perChannel =
      findingsOf(matches, MatchFinding::PerChannel);
  ASSERT_EQ(perChannel.size(), 3u);
  EXPECT_EQ(perChannel[0].tensorName,
            "model.layers.0.self_attn.k_proj.kv_cache_scale");
  EXPECT_EQ(perChannel[0].layerPrefix, "model.layers.0");
  EXPECT_FALSE(perChannel[0].isError());
  EXPECT_EQ(perChannel[0].message,
            "'model.layers.0.self_attn.k_proj.kv_cache_scale' in '" + path +
                "' (shape [4]) is a per-channel KV-cache scale of an "
                "asymmetric scheme (msmodelslim, with kv_cache_offset): kvq "
                "supports only symmetric per-tensor or per-head scales; it is "
                "ignored");
  EXPECT_EQ(perChannel[1].tensorName,
            "model.layers.0.self_attn.v_proj.kv_cache_scale");
  // Under no layer of the IR: still reported, at no layer.
  EXPECT_EQ(perChannel[2].layerPrefix, "");
  EXPECT_NE(perChannel[2].message.find("(shape [2, 2])"), std::string::npos);
  std::vector<MatchFinding> zeroPoints =
      findingsOf(matches, MatchFinding::ZeroPoint);
  ASSERT_EQ(zeroPoints.size(), 2u);
  EXPECT_EQ(zeroPoints[0].tensorName,
            "model.layers.0.self_attn.k_proj.kv_cache_offset");
  EXPECT_EQ(zeroPoints[0].layerPrefix, "model.layers.0");
  EXPECT_NE(zeroPoints[0].message.find(
                "asymmetric KV-cache quantization is not supported"),
            std::string::npos);
  EXPECT_EQ(zeroPoints[1].tensorName,
            "model.layers.0.self_attn.v_proj.kv_cache_offset");
}

TEST_F(ScaleNamesTest, ReportsUnreadableScaleAndUsesTheNextConvention) {
  ScaleMatches matches =
      match({{"model.layers.0.self_attn.k_scale", "I32", {}, std::string(4, 0)},
             scalarF32("model.layers.0.self_attn.k_proj.output_scale", 0.02f),
             {"model.layers.0.self_attn.v_scale",
              "F32",
              {4097},
              std::string(4 * 4097, 0)}},
            {"model.layers.0"});
  std::vector<MatchFinding> errors =
      findingsOf(matches, MatchFinding::ReadError);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_TRUE(matches.hasErrors());
  EXPECT_EQ(errors[0].tensorName, "model.layers.0.self_attn.k_scale");
  EXPECT_EQ(errors[0].message,
            "cannot read the k scale of layer 'model.layers.0': " + path +
                ": tensor 'model.layers.0.self_attn.k_scale': dtype I32 "
                "cannot be read as a scale (expected F64, F32, F16 or BF16)");
  EXPECT_NE(errors[1].message.find("more than 4096 elements"),
            std::string::npos);
  ASSERT_TRUE(matches.layers[0].k.has_value());
  EXPECT_EQ(matches.layers[0].k->convention, "quark");
  EXPECT_FALSE(matches.layers[0].v.has_value());
}

//===----------------------------------------------------------------------===//
// Layers
//===----------------------------------------------------------------------===//

TEST_F(ScaleNamesTest, KeepsPrefixOrderAndEmptyLayers) {
  ScaleMatches matches =
      match({scalarF32("model.layers.1.self_attn.k_scale", 0.02f)},
            {"model.layers.2", "model.layers.1", "model.layers.0"});
  ASSERT_EQ(matches.layers.size(), 3u);
  EXPECT_EQ(matches.layers[0].prefix, "model.layers.2");
  EXPECT_TRUE(matches.layers[1].k.has_value());
  for (size_t i : {0u, 2u}) {
    const LayerMatch &layer = matches.layers[i];
    EXPECT_FALSE(layer.q || layer.k || layer.v || layer.prob);
  }
  EXPECT_TRUE(matches.findings.empty());
}

TEST_F(ScaleNamesTest, EmptyPrefixMatchesBareNames) {
  ScaleMatches matches = match({scalarF32("self_attn.v_scale", 0.02f)}, {""});
  ASSERT_TRUE(matches.layers[0].v.has_value());
  EXPECT_EQ(matches.layers[0].v->tensorName, "self_attn.v_scale");
}

TEST_F(ScaleNamesTest, RejectsPrefixGivenTwice) {
  path = dir.write("model.safetensors", makeFile({scalarF32("x", 1)}));
  llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(bool(checkpoint));
  llvm::Expected<ScaleMatches> matches =
      matchScales(*checkpoint, {"model.layers.0", "model.layers.0"});
  ASSERT_FALSE(matches);
  EXPECT_EQ(llvm::toString(matches.takeError()),
            "layer prefix 'model.layers.0' is given twice");
}

TEST_F(ScaleNamesTest, MatchesAcrossShards) {
  dir.write(
      "s1.safetensors",
      makeFile({scalarF32("model.layers.0.self_attn.k_proj.k_scale", 0.5f)}));
  dir.write(
      "s2.safetensors",
      makeFile({scalarF32("model.layers.0.self_attn.v_proj.v_scale", 0.25f)}));
  dir.write(kIndexFileName, R"({"weight_map":{
      "model.layers.0.self_attn.k_proj.k_scale": "s1.safetensors",
      "model.layers.0.self_attn.v_proj.v_scale": "s2.safetensors"}})");
  llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  llvm::Expected<ScaleMatches> matches =
      matchScales(*checkpoint, {"model.layers.0"});
  ASSERT_TRUE(bool(matches));
  EXPECT_EQ(matches->layers[0].k->file, dir.child("s1.safetensors"));
  EXPECT_EQ(matches->layers[0].v->file, dir.child("s2.safetensors"));
  EXPECT_EQ(matches->layers[0].v->values, (std::vector<double>{0.25}));
}

TEST_F(ScaleNamesTest, MatchesTenThousandLayers) {
  // Functional only: the matcher is linear (one lookup per layer and
  // pattern), so this runs in milliseconds.
  constexpr int kLayers = 10000;
  std::vector<TensorSpec> tensors;
  std::vector<std::string> prefixes;
  for (int i = 0; i < kLayers; ++i) {
    std::string prefix = "model.layers." + std::to_string(i);
    tensors.push_back(scalarF32(prefix + ".self_attn.k_scale", float(i)));
    tensors.push_back(scalarF32(prefix + ".self_attn.v_scale", float(i) + 1));
    prefixes.push_back(prefix);
  }
  tensors.push_back(scalarF32("model.layers.10000.self_attn.k_scale", 1));
  ScaleMatches matches = match(tensors, prefixes);
  ASSERT_EQ(matches.layers.size(), size_t(kLayers));
  for (int i = 0; i < kLayers; ++i) {
    ASSERT_TRUE(matches.layers[i].k.has_value()) << i;
    ASSERT_EQ(matches.layers[i].k->values, (std::vector<double>{double(i)}));
    ASSERT_TRUE(matches.layers[i].v.has_value()) << i;
  }
  ASSERT_EQ(matches.findings.size(), 1u);
  EXPECT_EQ(matches.findings[0].tensorName,
            "model.layers.10000.self_attn.k_scale");
}

//===----------------------------------------------------------------------===//
// The checked-in examples (examples/llama-tiny, utils/gen_checkpoint.py)
//===----------------------------------------------------------------------===//

struct ExampleRow {
  const char *dir;
  const char *convention;
  bool hasQ, hasProb;
  size_t files;
};

TEST(ExamplesTest, LlamaTinyCheckpointsMatchEveryLayer) {
  const ExampleRow rows[] = {
      {"compressed-tensors", "llm-compressor", true, false, 1},
      {"modelopt", "modelopt", false, false, 2},
      {"quark", "quark", true, true, 1},
  };
  std::vector<std::string> prefixes;
  for (int i = 0; i < 8; ++i)
    prefixes.push_back("model.layers." + std::to_string(i));
  for (const ExampleRow &row : rows) {
    SCOPED_TRACE(row.dir);
    llvm::SmallString<256> path(KVQ_EXAMPLES_DIR);
    llvm::sys::path::append(path, "llama-tiny", row.dir);
    llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(path);
    ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
    EXPECT_EQ(checkpoint->getNumFiles(), row.files);
    llvm::Expected<ScaleMatches> matches = matchScales(*checkpoint, prefixes);
    ASSERT_TRUE(bool(matches)) << llvm::toString(matches.takeError());
    EXPECT_TRUE(matches->findings.empty());
    std::vector<double> kValues;
    for (const LayerMatch &layer : matches->layers) {
      ASSERT_TRUE(layer.k && layer.v) << layer.prefix;
      EXPECT_EQ(layer.k->convention, row.convention);
      EXPECT_EQ(layer.q.has_value(), row.hasQ);
      EXPECT_EQ(layer.prob.has_value(), row.hasProb);
      ASSERT_EQ(layer.k->values.size(), 1u);
      // Realistic fp8 scales: amax / 448 for amax of a few units.
      EXPECT_GT(layer.k->values[0], 0.005);
      EXPECT_LT(layer.k->values[0], 0.1);
      kValues.push_back(layer.k->values[0]);
    }
    // Distinct per layer.
    llvm::sort(kValues);
    EXPECT_EQ(std::unique(kValues.begin(), kValues.end()), kValues.end());
  }
}

} // namespace
