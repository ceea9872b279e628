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
  bool legacy;
};

const ConventionRow kConventions[] = {
    {"model.layers.3.self_attn.k_scale", ScaleKind::K, "llm-compressor", false},
    {"model.layers.3.self_attn.v_scale", ScaleKind::V, "llm-compressor", false},
    {"model.layers.3.self_attn.q_scale", ScaleKind::Q, "llm-compressor", false},
    {"model.layers.3.self_attn.k_proj.k_scale", ScaleKind::K, "modelopt",
     false},
    {"model.layers.3.self_attn.v_proj.v_scale", ScaleKind::V, "modelopt",
     false},
    {"model.layers.3.self_attn.qkv_proj.k_scale", ScaleKind::K, "fused-qkv",
     false},
    {"model.layers.3.self_attn.qkv_proj.v_scale", ScaleKind::V, "fused-qkv",
     false},
    {"model.layers.3.self_attn.k_proj.output_scale", ScaleKind::K, "quark",
     false},
    {"model.layers.3.self_attn.v_proj.output_scale", ScaleKind::V, "quark",
     false},
    {"model.layers.3.self_attn.q_proj.output_scale", ScaleKind::Q, "quark",
     false},
    {"model.layers.3.self_attn.prob_output_scale", ScaleKind::Prob, "quark",
     false},
    {"model.layers.3.self_attn.kv_scale", ScaleKind::K, "legacy-kv-scale",
     true},
    {"model.layers.3.self_attn.k_cache.scale", ScaleKind::K, "hunyuan", false},
    {"model.layers.3.self_attn.v_cache.scale", ScaleKind::V, "hunyuan", false},
    {"model.layers.3.self_attn.q.scale", ScaleKind::Q, "hunyuan", false},
    {"model.layers.3.mixer.k_proj.k_scale", ScaleKind::K, "nemotron-h", false},
    {"model.layers.3.mixer.v_proj.v_scale", ScaleKind::V, "nemotron-h", false},
    // Mistral: under `attention.` of the layer, or directly under the prefix,
    // or with the Hugging Face `model.` root stripped.
    {"model.layers.3.attention.k_fake_quantizer.qscale_act", ScaleKind::K,
     "mistral", false},
    {"model.layers.3.attention.v_fake_quantizer.qscale_act", ScaleKind::V,
     "mistral", false},
    {"model.layers.3.attention.q_fake_quantizer.qscale_act", ScaleKind::Q,
     "mistral", false},
    {"model.layers.3.k_fake_quantizer.qscale_act", ScaleKind::K, "mistral",
     false},
    {"layers.3.attention.k_fake_quantizer.qscale_act", ScaleKind::K, "mistral",
     false},
    {"layers.3.attention.v_fake_quantizer.qscale_act", ScaleKind::V, "mistral",
     false},
    {"layers.3.attention.q_fake_quantizer.qscale_act", ScaleKind::Q, "mistral",
     false},
    {"layers.3.attention.kv_fake_quantizer.qscale_act", ScaleKind::K, "mistral",
     true},
    // TensorRT-LLM: one factor for K and V.
    {"model.layers.3.attention.kv_cache_scaling_factor", ScaleKind::K,
     "tensorrt-llm", true},
    {"transformer.layers.3.attention.kv_cache_scaling_factor", ScaleKind::K,
     "tensorrt-llm", true},
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
      EXPECT_EQ(scale->legacyKvScale, row.legacy);
      EXPECT_EQ(scale->file, path);
      EXPECT_EQ(scale->values, (std::vector<double>{double(0.0125f)}));
      EXPECT_TRUE(scale->shape.empty());
    }
    std::vector<MatchFinding> deprecated =
        findingsOf(matches, MatchFinding::Deprecated);
    EXPECT_EQ(matches.findings.size(), row.legacy ? 1u : 0u);
    if (row.legacy) {
      ASSERT_EQ(deprecated.size(), 1u);
      EXPECT_EQ(deprecated[0].tensorName, row.tensor);
      EXPECT_EQ(deprecated[0].layerPrefix, "model.layers.3");
      EXPECT_NE(deprecated[0].message.find("single scale for K and V"),
                std::string::npos);
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
        "model.layers.0.self_attn.qkv_proj.output_scale"})
    EXPECT_TRUE(isScaleLikeName(name)) << name.str();
}

TEST(ScaleLikeNameTest, ZeroPoints) {
  for (StringRef name : {"model.layers.0.self_attn.k_zero_point",
                         "model.layers.0.self_attn.v_zero_point",
                         "model.layers.0.self_attn.kv_zero_point",
                         "model.layers.0.self_attn.k_proj.output_zero_point",
                         "model.layers.0.self_attn.prob_output_zero_point",
                         "model.layers.0.self_attn.k_cache.zero_point"})
    EXPECT_TRUE(isZeroPointName(name)) << name.str();
  for (StringRef name : {"model.layers.0.self_attn.k_proj.weight_zero_point",
                         "model.layers.0.self_attn.k_proj.input_zero_point",
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
