//===- CheckpointTest.cpp - single-file and sharded checkpoint tests ------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/Checkpoint.h"

#include "unittests/Checkpoint/TestWriter.h"

#include "llvm/Support/FileSystem.h"

#include "gtest/gtest.h"

using namespace mlir::kvq::checkpoint;
using namespace mlir::kvq::checkpoint::test;
using llvm::StringRef;

namespace {

/// The message of \p checkpoint's error, or "" if it opened.
std::string errorOf(llvm::Expected<Checkpoint> checkpoint) {
  if (checkpoint)
    return "";
  return llvm::toString(checkpoint.takeError());
}

#define EXPECT_CONTAINS(text, what)                                            \
  do {                                                                         \
    std::string str = (text);                                                  \
    EXPECT_NE(str.find(what), std::string::npos) << str;                       \
  } while (false)

/// A two-shard checkpoint in \p dir: a and b in shard 1, c in shard 2.
void writeShards(const TempDir &dir, StringRef index) {
  dir.write("model-00001-of-00002.safetensors",
            makeFile({scalarF32("a", 1), scalarF32("b", 2)}));
  dir.write("model-00002-of-00002.safetensors", makeFile({scalarF32("c", 3)}));
  dir.write(kIndexFileName, index);
}

const char *kIndex = R"({
  "metadata": {"total_size": 12},
  "weight_map": {
    "a": "model-00001-of-00002.safetensors",
    "b": "model-00001-of-00002.safetensors",
    "c": "model-00002-of-00002.safetensors"
  }
})";

TEST(CheckpointTest, OpensSingleFile) {
  TempDir dir;
  std::string path =
      dir.write("model.safetensors", makeFile({scalarF32("s", 0.5f)}));
  llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ(checkpoint->getNumFiles(), 1u);
  EXPECT_TRUE(checkpoint->indexPath.empty());
  std::optional<TensorRef> ref = checkpoint->lookup("s");
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->file->path, path);
  llvm::Expected<std::vector<double>> values = checkpoint->readScale("s");
  ASSERT_TRUE(bool(values));
  EXPECT_EQ(*values, (std::vector<double>{0.5}));
  EXPECT_FALSE(checkpoint->lookup("t").has_value());
}

TEST(CheckpointTest, ReadScaleOfMissingTensorNamesIt) {
  TempDir dir;
  std::string path =
      dir.write("model.safetensors", makeFile({scalarF32("s", 0.5f)}));
  llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(path);
  ASSERT_TRUE(bool(checkpoint));
  llvm::Expected<std::vector<double>> values = checkpoint->readScale("t");
  ASSERT_FALSE(values);
  EXPECT_EQ(llvm::toString(values.takeError()), path + ": no tensor 't'");
}

TEST(CheckpointTest, OpensIndexFile) {
  TempDir dir;
  writeShards(dir, kIndex);
  llvm::Expected<Checkpoint> checkpoint =
      Checkpoint::open(dir.child(kIndexFileName));
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ(checkpoint->getNumFiles(), 2u);
  EXPECT_EQ(checkpoint->indexPath, dir.child(kIndexFileName));
  std::optional<TensorRef> c = checkpoint->lookup("c");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->file->path, dir.child("model-00002-of-00002.safetensors"));
  std::vector<std::string> names;
  for (const TensorRef &ref : checkpoint->tensors())
    names.push_back(ref.getName().str());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c"}));
  llvm::Expected<std::vector<double>> values = checkpoint->readScale("c");
  ASSERT_TRUE(bool(values));
  EXPECT_EQ(*values, (std::vector<double>{3}));
}

TEST(CheckpointTest, OpensDirectoryThroughIndex) {
  TempDir dir;
  writeShards(dir, kIndex);
  // A stray file the index does not name is not opened.
  dir.write("stray.safetensors", makeFile({scalarF32("a", 9)}));
  llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_EQ(checkpoint->getNumFiles(), 2u);
  EXPECT_EQ(checkpoint->path, dir.path());
  EXPECT_EQ(checkpoint->indexPath, dir.child(kIndexFileName));
}

TEST(CheckpointTest, OpensDirectoryWithoutIndexInSortedOrder) {
  TempDir dir;
  dir.write("b.safetensors", makeFile({scalarF32("y", 2)}));
  dir.write("a.safetensors", makeFile({scalarF32("x", 1)}));
  dir.write("notes.txt", "not a checkpoint");
  llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  ASSERT_EQ(checkpoint->getNumFiles(), 2u);
  EXPECT_EQ(checkpoint->getFile(0).path, dir.child("a.safetensors"));
  ASSERT_EQ(checkpoint->tensors().size(), 2u);
  EXPECT_EQ(checkpoint->tensors()[0].getName(), "x");
}

TEST(CheckpointTest, KeepsTensorsOfAShardTheIndexOmits) {
  TempDir dir;
  dir.write("s1.safetensors",
            makeFile({scalarF32("a", 1), scalarF32("extra", 5)}));
  dir.write(kIndexFileName, R"({"weight_map":{"a":"s1.safetensors"}})");
  llvm::Expected<Checkpoint> checkpoint = Checkpoint::open(dir.path());
  ASSERT_TRUE(bool(checkpoint)) << llvm::toString(checkpoint.takeError());
  EXPECT_TRUE(checkpoint->lookup("extra").has_value());
}

TEST(CheckpointTest, RejectsEmptyDirectory) {
  TempDir dir;
  EXPECT_EQ(errorOf(Checkpoint::open(dir.path())),
            dir.path().str() +
                ": directory has no model.safetensors.index.json "
                "and no *.safetensors file");
}

TEST(CheckpointTest, RejectsMissingPath) {
  TempDir dir;
  std::string path = dir.child("absent.safetensors");
  EXPECT_CONTAINS(errorOf(Checkpoint::open(path)), path + ": cannot open");
}

TEST(CheckpointTest, RejectsMissingShard) {
  TempDir dir;
  dir.write("model-00001-of-00002.safetensors",
            makeFile({scalarF32("a", 1), scalarF32("b", 2)}));
  dir.write(kIndexFileName, kIndex);
  std::string message = errorOf(Checkpoint::open(dir.path()));
  EXPECT_CONTAINS(message, dir.child(kIndexFileName) +
                               ": shard 'model-00002-of-00002.safetensors': " +
                               dir.child("model-00002-of-00002.safetensors") +
                               ": cannot open");
}

TEST(CheckpointTest, RejectsTensorMissingFromItsShard) {
  TempDir dir;
  dir.write("model-00001-of-00002.safetensors", makeFile({scalarF32("a", 1)}));
  dir.write("model-00002-of-00002.safetensors", makeFile({scalarF32("c", 3)}));
  dir.write(kIndexFileName, kIndex);
  EXPECT_EQ(errorOf(Checkpoint::open(dir.path())),
            dir.child(kIndexFileName) +
                ": tensor 'b' is listed in shard "
                "'model-00001-of-00002.safetensors' but that file has no such "
                "tensor");
}

TEST(CheckpointTest, RejectsTensorInTheWrongShard) {
  TempDir dir;
  dir.write("s1.safetensors", makeFile({scalarF32("a", 1)}));
  dir.write("s2.safetensors", makeFile({scalarF32("b", 2)}));
  dir.write(kIndexFileName,
            R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})");
  // s2 is not listed, so it is not opened: b is missing from s1.
  EXPECT_CONTAINS(errorOf(Checkpoint::open(dir.path())),
                  "tensor 'b' is listed in shard 's1.safetensors' but that "
                  "file has no such tensor");
  dir.write(kIndexFileName, R"({"weight_map":{"a":"s1.safetensors",
      "b":"s1.safetensors", "c":"s2.safetensors"}})");
  dir.write("s2.safetensors", makeFile({scalarF32("b", 2), scalarF32("c", 3)}));
  // Now b is in s2, which is opened for c: b is in a shard not listed for it
  // and missing from the one listed.
  EXPECT_CONTAINS(errorOf(Checkpoint::open(dir.path())),
                  "tensor 'b' is listed in shard 's1.safetensors' but is in '" +
                      dir.child("s2.safetensors") + "'");
}

TEST(CheckpointTest, RejectsSameTensorInTwoShards) {
  TempDir dir;
  dir.write("s1.safetensors", makeFile({scalarF32("a", 1), scalarF32("b", 2)}));
  dir.write("s2.safetensors", makeFile({scalarF32("b", 3)}));
  dir.write(kIndexFileName,
            R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  EXPECT_EQ(errorOf(Checkpoint::open(dir.path())),
            dir.child("s2.safetensors") + ": tensor 'b' is also in '" +
                dir.child("s1.safetensors") + "'");
}

TEST(CheckpointTest, RejectsSameTensorInTwoFilesOfADirectory) {
  TempDir dir;
  dir.write("a.safetensors", makeFile({scalarF32("x", 1)}));
  dir.write("b.safetensors", makeFile({scalarF32("x", 1)}));
  EXPECT_EQ(errorOf(Checkpoint::open(dir.path())),
            dir.child("b.safetensors") + ": tensor 'x' is also in '" +
                dir.child("a.safetensors") + "'");
}

TEST(CheckpointTest, RejectsPathTraversalInShardName) {
  TempDir dir;
  for (StringRef shard :
       {"../model.safetensors", "/etc/passwd", "sub/model.safetensors", "..",
        ".", "", "..\\model.safetensors"}) {
    std::string index = "{\"weight_map\":{\"a\":" + quote(shard) + "}}";
    dir.write(kIndexFileName, index);
    EXPECT_CONTAINS(errorOf(Checkpoint::open(dir.path())),
                    dir.child(kIndexFileName) + ": shard '");
    EXPECT_CONTAINS(errorOf(Checkpoint::open(dir.path())),
                    "' of tensor 'a' is not a plain file name in the index's "
                    "directory");
  }
}

TEST(CheckpointTest, RejectsHostileShardNamingIndexAndShard) {
  TempDir dir;
  dir.write("s1.safetensors", "tiny");
  dir.write(kIndexFileName, R"({"weight_map":{"a":"s1.safetensors"}})");
  EXPECT_EQ(errorOf(Checkpoint::open(dir.path())),
            dir.child(kIndexFileName) +
                ": shard 's1.safetensors': " + dir.child("s1.safetensors") +
                ": file is 4 bytes, too short for the 8-byte header length");
}

//===----------------------------------------------------------------------===//
// parseIndex
//===----------------------------------------------------------------------===//

std::string indexError(StringRef json) {
  llvm::Expected<std::vector<IndexEntry>> entries =
      Checkpoint::parseIndex(json, "idx.json");
  if (entries)
    return "";
  return llvm::toString(entries.takeError());
}

TEST(ParseIndexTest, SortsEntriesByTensor) {
  llvm::Expected<std::vector<IndexEntry>> entries = Checkpoint::parseIndex(
      R"({"weight_map":{"z":"s2","a":"s1"},"metadata":{}})", "idx.json");
  ASSERT_TRUE(bool(entries)) << llvm::toString(entries.takeError());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].tensor, "a");
  EXPECT_EQ((*entries)[0].shard, "s1");
  EXPECT_EQ((*entries)[1].tensor, "z");
}

TEST(ParseIndexTest, RejectsInvalidJSON) {
  EXPECT_CONTAINS(indexError("{\"weight_map\":"), "idx.json: invalid JSON");
}

TEST(ParseIndexTest, RejectsNonObject) {
  EXPECT_EQ(indexError("[]"), "idx.json: index is not a JSON object");
}

TEST(ParseIndexTest, RejectsMissingWeightMap) {
  EXPECT_EQ(indexError(R"({"metadata":{}})"),
            "idx.json: index has no 'weight_map'");
}

TEST(ParseIndexTest, RejectsWeightMapNotObject) {
  EXPECT_EQ(indexError(R"({"weight_map":["a"]})"),
            "idx.json: 'weight_map' is not an object");
}

TEST(ParseIndexTest, RejectsShardNotString) {
  EXPECT_EQ(indexError(R"({"weight_map":{"a":1}})"),
            "idx.json: 'weight_map' entry for tensor 'a' is not a string");
}

TEST(ParseIndexTest, RejectsDuplicateTensor) {
  EXPECT_CONTAINS(indexError(R"({"weight_map":{"a":"s1","a":"s2"}})"),
                  "idx.json: duplicate key 'a' in 'weight_map'");
}

TEST(ParseIndexTest, RejectsDeepNesting) {
  std::string message = indexError("{\"metadata\":" + std::string(100000, '['));
  EXPECT_CONTAINS(message, "idx.json: invalid JSON at byte ");
  EXPECT_CONTAINS(message, "JSON nested deeper than 64 levels");
}

TEST(ParseIndexTest, RejectsInvalidMetadata) {
  EXPECT_CONTAINS(indexError(R"({"metadata":{"total_size":},"weight_map":{}})"),
                  "idx.json: 'metadata': invalid JSON");
}

TEST(ParseIndexTest, RejectsDuplicateRootKey) {
  EXPECT_EQ(indexError(R"({"weight_map":{},"weight_map":{"a":"s"}})"),
            "idx.json: duplicate key 'weight_map'");
}

TEST(ParseIndexTest, RejectsBadUTF8) {
  EXPECT_EQ(indexError("{\"weight_map\":{\"\xc3\":\"s\"}}"),
            "idx.json: not valid UTF-8 (byte offset 16)");
}

TEST(ParseIndexTest, RejectsTrailingText) {
  EXPECT_CONTAINS(indexError(R"({"weight_map":{}} x)"),
                  "idx.json: invalid JSON at byte 18: text after the end of "
                  "the object");
}

} // namespace
