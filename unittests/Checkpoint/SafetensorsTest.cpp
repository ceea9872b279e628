//===- SafetensorsTest.cpp - safetensors reader tests ---------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/Safetensors.h"

#include "kvq/Checkpoint/JSONCheck.h"
#include "unittests/Checkpoint/TestWriter.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Process.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>

using namespace mlir::kvq::checkpoint;
using namespace mlir::kvq::checkpoint::test;
using llvm::StringRef;

namespace {

class SafetensorsTest : public ::testing::Test {
protected:
  /// Writes \p bytes and opens them; the error message, or "" on success.
  std::string openError(StringRef bytes) {
    path = dir.write("t.safetensors", bytes);
    llvm::Expected<SafetensorsFile> file = SafetensorsFile::open(path);
    if (file)
      return "";
    return llvm::toString(file.takeError());
  }

  /// Opens \p bytes, which must be valid.
  SafetensorsFile open(StringRef bytes) {
    path = dir.write("t.safetensors", bytes);
    llvm::Expected<SafetensorsFile> file = SafetensorsFile::open(path);
    if (!file)
      ADD_FAILURE() << llvm::toString(file.takeError());
    return std::move(*file);
  }

  /// Reads the scale \p name of \p file, which must succeed.
  std::vector<double> read(const SafetensorsFile &file, StringRef name) {
    const TensorInfo *info = file.lookup(name);
    EXPECT_NE(info, nullptr) << name.str();
    if (!info)
      return {};
    llvm::Expected<std::vector<double>> values = file.readScale(*info);
    if (!values) {
      ADD_FAILURE() << llvm::toString(values.takeError());
      return {};
    }
    return *values;
  }

  TempDir dir;
  std::string path;
};

/// The message starts with the file name and contains \p what.
#define EXPECT_FILE_ERROR(message, what)                                       \
  do {                                                                         \
    std::string msg = (message);                                               \
    EXPECT_TRUE(StringRef(msg).starts_with(path + ": ")) << msg;               \
    EXPECT_NE(msg.find(what), std::string::npos) << msg;                       \
  } while (false)

/// A header with one tensor entry \p entry named "t" and \p data.
std::string oneEntry(StringRef entry, StringRef data = std::string(8, '\0')) {
  return rawFile("{\"t\":" + entry.str() + "}", data);
}

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

TEST(DTypeTest, NamesRoundTripWithWidths) {
  struct Row {
    const char *name;
    unsigned bits;
    bool readable;
  } rows[] = {
      {"BOOL", 8, false},    {"U8", 8, false},      {"I8", 8, false},
      {"I16", 16, false},    {"U16", 16, false},    {"I32", 32, false},
      {"U32", 32, false},    {"I64", 64, false},    {"U64", 64, false},
      {"F4", 4, false},      {"F6_E2M3", 6, false}, {"F6_E3M2", 6, false},
      {"F8_E4M3", 8, false}, {"F8_E5M2", 8, false}, {"F8_E8M0", 8, false},
      {"F16", 16, true},     {"BF16", 16, true},    {"F32", 32, true},
      {"F64", 64, true},     {"C64", 64, false}};
  for (const Row &row : rows) {
    std::optional<DType> dtype = parseDType(row.name);
    ASSERT_TRUE(dtype.has_value()) << row.name;
    EXPECT_EQ(getDTypeName(*dtype), row.name);
    EXPECT_EQ(getDTypeBitWidth(*dtype), row.bits) << row.name;
    EXPECT_EQ(isScaleReadable(*dtype), row.readable) << row.name;
  }
  EXPECT_FALSE(parseDType("f32").has_value());
  EXPECT_FALSE(parseDType("FP8").has_value());
}

//===----------------------------------------------------------------------===//
// Valid files and decoding
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, DecodesF32Exactly) {
  SafetensorsFile file =
      open(makeFile({{"s", "F32", {3}, f32Bytes({0.0125f, -2.5f, 0.0f})}}));
  EXPECT_EQ(read(file, "s"), (std::vector<double>{double(0.0125f), -2.5, 0.0}));
}

TEST_F(SafetensorsTest, DecodesF64Exactly) {
  SafetensorsFile file =
      open(makeFile({{"s", "F64", {2}, f64Bytes({0.1, 1.0 / 448})}}));
  EXPECT_EQ(read(file, "s"), (std::vector<double>{0.1, 1.0 / 448}));
}

TEST_F(SafetensorsTest, DecodesF16Exactly) {
  SafetensorsFile file = open(makeFile(
      {{"s",
        "F16",
        {7},
        u16Bytes({0x3C00, 0x2E66, 0x0001, 0x7C00, 0xFC00, 0x8000, 0x7E00})}}));
  std::vector<double> values = read(file, "s");
  ASSERT_EQ(values.size(), 7u);
  EXPECT_EQ(values[0], 1.0);
  EXPECT_EQ(values[1], 0.0999755859375);
  EXPECT_EQ(values[2], std::ldexp(1.0, -24)); // smallest subnormal
  EXPECT_EQ(values[3], std::numeric_limits<double>::infinity());
  EXPECT_EQ(values[4], -std::numeric_limits<double>::infinity());
  EXPECT_EQ(values[5], 0.0);
  EXPECT_TRUE(std::signbit(values[5]));
  EXPECT_TRUE(std::isnan(values[6]));
}

TEST_F(SafetensorsTest, DecodesBF16Exactly) {
  SafetensorsFile file = open(
      makeFile({{"s",
                 "BF16",
                 {6},
                 u16Bytes({0x3F80, 0x3DCD, 0xC000, 0x7F80, 0x7FC0, 0x0001})}}));
  std::vector<double> values = read(file, "s");
  ASSERT_EQ(values.size(), 6u);
  EXPECT_EQ(values[0], 1.0);
  EXPECT_EQ(values[1], 0.10009765625);
  EXPECT_EQ(values[2], -2.0);
  EXPECT_EQ(values[3], std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(values[4]));
  EXPECT_EQ(values[5], std::ldexp(1.0, -133)); // smallest subnormal
}

TEST_F(SafetensorsTest, ReadsShapes) {
  std::vector<float> eight = {1, 2, 3, 4, 5, 6, 7, 8};
  SafetensorsFile file = open(makeFile({
      {"scalar", "F32", {}, f32Bytes({0.5f})},
      {"one", "F32", {1}, f32Bytes({0.25f})},
      {"heads", "F32", {8}, f32Bytes(eight)},
      {"heads3d", "F32", {8, 1, 1}, f32Bytes(eight)},
      {"empty", "F32", {0}, ""},
  }));
  EXPECT_EQ(read(file, "scalar"), (std::vector<double>{0.5}));
  EXPECT_EQ(read(file, "one"), (std::vector<double>{0.25}));
  std::vector<double> expected(eight.begin(), eight.end());
  EXPECT_EQ(read(file, "heads"), expected);
  EXPECT_EQ(read(file, "heads3d"), expected);
  EXPECT_EQ(read(file, "empty"), std::vector<double>{});
  EXPECT_EQ(file.lookup("heads3d")->shape, (std::vector<int64_t>{8, 1, 1}));
  EXPECT_TRUE(file.lookup("scalar")->shape.empty());
  EXPECT_EQ(file.lookup("scalar")->getNumElements(), 1u);
}

TEST_F(SafetensorsTest, TensorsAreInOffsetOrderWithOffsets) {
  SafetensorsFile file =
      open(makeFile({scalarF32("b", 1), scalarF32("a", 2), scalarF32("c", 3)}));
  ASSERT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.tensors()[0].name, "b");
  EXPECT_EQ(file.tensors()[1].name, "a");
  EXPECT_EQ(file.tensors()[1].begin, 4u);
  EXPECT_EQ(file.tensors()[1].end, 8u);
  EXPECT_EQ(file.lookup("missing"), nullptr);
  EXPECT_EQ(file.getDataSize(), 12u);
  EXPECT_EQ(file.path, path);
}

TEST_F(SafetensorsTest, ReturnsSpecialValuesAsIs) {
  SafetensorsFile file = open(
      makeFile({{"s",
                 "F32",
                 {4},
                 f32Bytes({0.0f, -1.0f, std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN()})}}));
  std::vector<double> values = read(file, "s");
  ASSERT_EQ(values.size(), 4u);
  EXPECT_EQ(values[0], 0.0);
  EXPECT_EQ(values[1], -1.0);
  EXPECT_TRUE(std::isinf(values[2]));
  EXPECT_TRUE(std::isnan(values[3]));
}

TEST_F(SafetensorsTest, ReadsMetadata) {
  SafetensorsFile file = open(
      makeFile({scalarF32("s", 1)}, R"({"format":"pt","producer":"kvq"})"));
  ASSERT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata()[0].first, "format");
  EXPECT_EQ(file.metadata()[0].second, "pt");
  EXPECT_EQ(file.tensors().size(), 1u);
}

TEST_F(SafetensorsTest, AcceptsGapsAndTrailingBytes) {
  // Tensors need not cover the data section contiguously.
  std::string data = std::string(4, 'x') + f32Bytes({0.5f}) + "tail";
  SafetensorsFile file =
      open(rawFile(R"({"s":)" + entryJSON("F32", {}, 4, 8) + "}", data));
  EXPECT_EQ(read(file, "s"), (std::vector<double>{0.5}));
}

TEST_F(SafetensorsTest, AcceptsEmptyTensorsAtOneOffset) {
  std::string header = "{\"a\":" + entryJSON("F32", {0}, 4, 4) +
                       ",\"b\":" + entryJSON("I8", {2, 0}, 4, 4) +
                       ",\"c\":" + entryJSON("F32", {}, 0, 4) + "}";
  SafetensorsFile file = open(rawFile(header, f32Bytes({1.0f})));
  EXPECT_EQ(file.tensors().size(), 3u);
}

TEST_F(SafetensorsTest, AcceptsNonScaleDTypesInHeader) {
  SafetensorsFile file = open(makeFile({
      {"w8", "F8_E4M3", {2, 2}, std::string(4, '\x38')},
      {"w4", "F4", {4}, std::string(2, '\0')},
      {"mask", "BOOL", {1}, std::string(1, '\1')},
  }));
  EXPECT_EQ(file.tensors().size(), 3u);
  EXPECT_EQ(file.lookup("w4")->dtype, DType::F4);
}

TEST_F(SafetensorsTest, ReadScaleRejectsNonFloatDType) {
  SafetensorsFile file = open(makeFile({
      {"i", "I32", {}, std::string(4, '\0')},
      {"f8", "F8_E4M3", {}, std::string(1, '\0')},
  }));
  for (StringRef name : {"i", "f8"}) {
    llvm::Expected<std::vector<double>> values =
        file.readScale(*file.lookup(name));
    ASSERT_FALSE(values);
    std::string dtype = name == "i" ? "I32" : "F8_E4M3";
    EXPECT_FILE_ERROR(llvm::toString(values.takeError()),
                      "tensor '" + name.str() + "': dtype " + dtype +
                          " cannot be read as a scale");
  }
}

TEST_F(SafetensorsTest, ReadScaleRejectsMoreThan4096Elements) {
  SafetensorsFile file = open(makeFile({
      {"ok", "BF16", {4096}, std::string(2 * 4096, '\0')},
      {"big", "BF16", {4097}, std::string(2 * 4097, '\0')},
      {"big2d", "BF16", {2, 4096}, std::string(4 * 4096, '\0')},
  }));
  EXPECT_EQ(read(file, "ok").size(), 4096u);
  for (StringRef name : {"big", "big2d"}) {
    llvm::Expected<std::vector<double>> values =
        file.readScale(*file.lookup(name));
    ASSERT_FALSE(values);
    EXPECT_FILE_ERROR(llvm::toString(values.takeError()),
                      "more than 4096 elements");
  }
}

TEST_F(SafetensorsTest, ReadScaleRejectsForeignTensorInfo) {
  SafetensorsFile file = open(makeFile({scalarF32("s", 1)}));
  TensorInfo forged{"forged", DType::F32, {}, 100, 104};
  llvm::Expected<std::vector<double>> values = file.readScale(forged);
  ASSERT_FALSE(values);
  EXPECT_FILE_ERROR(llvm::toString(values.takeError()),
                    "do not hold 1 elements in this file's data section");
}

TEST_F(SafetensorsTest, FromBufferUsesBufferName) {
  std::string bytes = makeFile({scalarF32("s", 0.5f)});
  llvm::Expected<SafetensorsFile> file = SafetensorsFile::fromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(bytes, "mem.safetensors"));
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->path, "mem.safetensors");
  llvm::Expected<SafetensorsFile> bad = SafetensorsFile::fromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy("{}", "bad.safetensors"));
  ASSERT_FALSE(bad);
  EXPECT_TRUE(StringRef(llvm::toString(bad.takeError()))
                  .starts_with("bad.safetensors: "));
}

TEST_F(SafetensorsTest, OpensSparse4GBFileQuickly) {
  // The header and the scale at the start, then a 4 GB weight that is never
  // read: only the first page is touched.
  const uint64_t fileSize = 4ull << 30;
  auto makeHeader = [](uint64_t dataSize) {
    return "{\"model.layers.0.self_attn.k_scale\":" +
           entryJSON("F32", {}, 0, 4) + ",\"model.layers.0.mlp.weight\":" +
           entryJSON("U8", {int64_t(dataSize - 4)}, 4, dataSize) + "}";
  };
  // The header's length depends on the sizes written in it: iterate to the
  // fixed point.
  std::string header = makeHeader(fileSize);
  for (int i = 0; i < 3; ++i)
    header = makeHeader(fileSize - 8 - header.size());
  uint64_t dataSize = fileSize - 8 - header.size();
  ASSERT_EQ(header, makeHeader(dataSize));
  std::string scale = f32Bytes({0.03125f});
  std::string filePath = dir.write("big.safetensors", rawFile(header, scale));
  {
    int fd;
    ASSERT_FALSE(llvm::sys::fs::openFileForReadWrite(
        filePath, fd, llvm::sys::fs::CD_OpenExisting, llvm::sys::fs::OF_None));
    std::error_code ec = llvm::sys::fs::resize_file_sparse(fd, fileSize);
    llvm::sys::Process::SafelyCloseFileDescriptor(fd);
    ASSERT_FALSE(ec) << ec.message();
  }
  llvm::Expected<SafetensorsFile> file = SafetensorsFile::open(filePath);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  const TensorInfo *info = file->lookup("model.layers.0.self_attn.k_scale");
  ASSERT_NE(info, nullptr);
  llvm::Expected<std::vector<double>> values = file->readScale(*info);
  ASSERT_TRUE(bool(values)) << llvm::toString(values.takeError());
  EXPECT_EQ(*values, (std::vector<double>{0.03125}));
  EXPECT_EQ(file->lookup("model.layers.0.mlp.weight")->end, dataSize);
}

//===----------------------------------------------------------------------===//
// Hostile files: one test per defect
//===----------------------------------------------------------------------===//

TEST_F(SafetensorsTest, RejectsFileShorterThan8Bytes) {
  EXPECT_FILE_ERROR(openError("abc"), "file is 3 bytes, too short");
}

TEST_F(SafetensorsTest, RejectsHeaderLengthPastEnd) {
  std::string bytes = rawFile("{}");
  bytes[0] = 100; // length 100, 2 bytes follow
  EXPECT_FILE_ERROR(openError(bytes), "header length 100 is past the end");
}

TEST_F(SafetensorsTest, RejectsAbsurdHeaderLength) {
  std::string bytes = rawFile("{}");
  bytes[7] = '\x7f'; // length > 2^62
  EXPECT_FILE_ERROR(openError(bytes), "exceeds the limit of 104857600 bytes");
}

TEST_F(SafetensorsTest, RejectsHeaderNotUTF8) {
  EXPECT_FILE_ERROR(openError(rawFile("{\"\xff\xfe\":{}}")),
                    "header: not valid UTF-8 (byte offset 2)");
}

TEST_F(SafetensorsTest, RejectsInvalidJSON) {
  EXPECT_FILE_ERROR(openError(rawFile("{\"t\": ")), "header: invalid JSON");
}

TEST_F(SafetensorsTest, RejectsDeeplyNestedJSON) {
  // llvm::json::parse would recurse once per '['.
  std::string header = "{\"t\":" + std::string(1 << 20, '[');
  EXPECT_FILE_ERROR(openError(rawFile(header)),
                    "JSON nested deeper than 64 levels");
}

TEST_F(SafetensorsTest, RejectsHeaderNotObject) {
  EXPECT_FILE_ERROR(openError(rawFile("[1, 2]")), "header: not a JSON object");
}

TEST_F(SafetensorsTest, RejectsEntryNotObject) {
  EXPECT_FILE_ERROR(openError(oneEntry("[1]")),
                    "tensor 't': entry is not an object");
}

TEST_F(SafetensorsTest, RejectsMissingDType) {
  EXPECT_FILE_ERROR(openError(oneEntry(R"({"shape":[],"data_offsets":[0,4]})")),
                    "tensor 't': missing 'dtype'");
}

TEST_F(SafetensorsTest, RejectsDTypeNotString) {
  EXPECT_FILE_ERROR(
      openError(oneEntry(R"({"dtype":32,"shape":[],"data_offsets":[0,4]})")),
      "tensor 't': 'dtype' is not a string");
}

TEST_F(SafetensorsTest, RejectsUnknownDType) {
  EXPECT_FILE_ERROR(openError(oneEntry(entryJSON("F12", {}, 0, 4))),
                    "tensor 't': unknown dtype 'F12'");
}

TEST_F(SafetensorsTest, RejectsMissingShape) {
  EXPECT_FILE_ERROR(
      openError(oneEntry(R"({"dtype":"F32","data_offsets":[0,4]})")),
      "tensor 't': missing 'shape'");
}

TEST_F(SafetensorsTest, RejectsShapeNotArray) {
  EXPECT_FILE_ERROR(
      openError(oneEntry(R"({"dtype":"F32","shape":1,"data_offsets":[0,4]})")),
      "tensor 't': 'shape' is not an array");
}

TEST_F(SafetensorsTest, RejectsNegativeDimension) {
  EXPECT_FILE_ERROR(openError(oneEntry(entryJSON("F32", {-1}, 0, 4))),
                    "'shape' has a dimension that is not a non-negative "
                    "integer: -1");
}

TEST_F(SafetensorsTest, RejectsFractionalDimension) {
  EXPECT_FILE_ERROR(
      openError(
          oneEntry(R"({"dtype":"F32","shape":[1.0],"data_offsets":[0,4]})")),
      "'shape' has a dimension that is not a non-negative integer");
}

TEST_F(SafetensorsTest, RejectsDimensionPastInt64) {
  EXPECT_FILE_ERROR(
      openError(oneEntry(
          R"({"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,4]})")),
      "'shape' has a dimension that is not a non-negative integer");
}

TEST_F(SafetensorsTest, RejectsElementCountOverflow) {
  EXPECT_FILE_ERROR(
      openError(oneEntry(entryJSON("F32", {4294967296, 4294967296, 2}, 0, 4))),
      "tensor 't': element count of shape overflows 64 bits");
}

TEST_F(SafetensorsTest, RejectsByteSizeOverflow) {
  EXPECT_FILE_ERROR(
      openError(oneEntry(entryJSON("F64", {int64_t(1) << 62}, 0, 4))),
      "tensor 't': byte size of shape overflows 64 bits");
}

TEST_F(SafetensorsTest, RejectsPartialBytes) {
  EXPECT_FILE_ERROR(openError(oneEntry(entryJSON("F4", {3}, 0, 2))),
                    "3 elements of F4 do not fill whole bytes");
}

TEST_F(SafetensorsTest, RejectsMissingDataOffsets) {
  EXPECT_FILE_ERROR(openError(oneEntry(R"({"dtype":"F32","shape":[]})")),
                    "tensor 't': missing 'data_offsets'");
}

TEST_F(SafetensorsTest, RejectsDataOffsetsNotTwoIntegers) {
  for (StringRef offsets :
       {"[0]", "[0,4,8]", "[0,\"4\"]", "[0,-4]", "4", "[0.0,4]"}) {
    std::string entry =
        R"({"dtype":"F32","shape":[],"data_offsets":)" + offsets.str() + "}";
    EXPECT_FILE_ERROR(openError(oneEntry(entry)),
                      "tensor 't': 'data_offsets' is not two non-negative "
                      "integers");
  }
}

TEST_F(SafetensorsTest, RejectsBeginAfterEnd) {
  EXPECT_FILE_ERROR(openError(oneEntry(entryJSON("F32", {}, 8, 4))),
                    "tensor 't': data_offsets [8, 4]: begin > end");
}

TEST_F(SafetensorsTest, RejectsEndPastDataSection) {
  EXPECT_FILE_ERROR(
      openError(oneEntry(entryJSON("F32", {}, 6, 10))),
      "tensor 't': data_offsets [6, 10]: end is past the data section (8 "
      "bytes)");
}

TEST_F(SafetensorsTest, RejectsSizeMismatch) {
  EXPECT_FILE_ERROR(openError(oneEntry(entryJSON("F32", {2}, 0, 4))),
                    "tensor 't': data_offsets [0, 4] span 4 bytes but F32 x "
                    "2 elements take 8 bytes");
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  std::string header = "{\"a\":" + entryJSON("F32", {2}, 0, 8) +
                       ",\"b\":" + entryJSON("F32", {}, 4, 8) + "}";
  EXPECT_FILE_ERROR(openError(rawFile(header, std::string(8, '\0'))),
                    "tensors 'a' [0, 8] and 'b' [4, 8] overlap");
}

TEST_F(SafetensorsTest, RejectsDuplicateNames) {
  std::string header = "{\"t\":" + entryJSON("F32", {}, 0, 4) +
                       ",\"t\":" + entryJSON("F32", {}, 4, 8) + "}";
  EXPECT_FILE_ERROR(openError(rawFile(header, std::string(8, '\0'))),
                    "header: duplicate key 't'");
}

TEST_F(SafetensorsTest, RejectsDuplicateNamesSpelledWithEscapes) {
  std::string header = "{\"kv\":" + entryJSON("F32", {}, 0, 4) +
                       ",\"k\\u0076\":" + entryJSON("F32", {}, 4, 8) + "}";
  EXPECT_FILE_ERROR(openError(rawFile(header, std::string(8, '\0'))),
                    "header: duplicate key 'kv'");
}

TEST_F(SafetensorsTest, RejectsDuplicateKeysInsideEntry) {
  std::string entry =
      R"({"dtype":"F32","dtype":"I32","shape":[],"data_offsets":[0,4]})";
  EXPECT_FILE_ERROR(openError(oneEntry(entry)), "duplicate key 'dtype'");
}

TEST_F(SafetensorsTest, RejectsMetadataNotObject) {
  EXPECT_FILE_ERROR(openError(rawFile(R"({"__metadata__":["pt"]})")),
                    "'__metadata__' is not an object");
}

TEST_F(SafetensorsTest, RejectsMetadataValueNotString) {
  EXPECT_FILE_ERROR(openError(rawFile(R"({"__metadata__":{"n":1}})")),
                    "'__metadata__' entry 'n' is not a string");
}

TEST_F(SafetensorsTest, RejectsMetadataDuplicateKey) {
  EXPECT_FILE_ERROR(openError(rawFile(R"({"__metadata__":{"a":"1","a":"2"}})")),
                    "'__metadata__' has duplicate key 'a'");
}

TEST_F(SafetensorsTest, RejectsMetadataTwice) {
  EXPECT_FILE_ERROR(
      openError(rawFile(R"({"__metadata__":{},"__metadata__":{}})")),
      "header: duplicate key '__metadata__'");
}

TEST_F(SafetensorsTest, RejectsOversizedEntry) {
  std::string entry = R"({"dtype":"F32","shape":[],"data_offsets":[0,4],)"
                      R"("pad":")" +
                      std::string(kMaxEntrySize, 'x') + "\"}";
  EXPECT_FILE_ERROR(openError(oneEntry(entry)),
                    "entry is 65592 bytes, more than the limit of 65536");
}

TEST_F(SafetensorsTest, IgnoresUnknownEntryKeys) {
  SafetensorsFile file = open(oneEntry(
      R"({"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":[1,{}]})"));
  EXPECT_EQ(file.tensors().size(), 1u);
}

TEST_F(SafetensorsTest, RejectsTextAfterHeaderObject) {
  EXPECT_FILE_ERROR(openError(rawFile("{} {}")),
                    "header: invalid JSON at byte 3: text after the end of "
                    "the object");
}

TEST_F(SafetensorsTest, RejectsTrailingComma) {
  EXPECT_FILE_ERROR(
      openError(rawFile(R"({"t":)" + entryJSON("F32", {}, 0, 4) + ",}",
                        std::string(4, '\0'))),
      "expected a string key");
}

TEST_F(SafetensorsTest, RejectsMissingFile) {
  path = dir.child("absent.safetensors");
  llvm::Expected<SafetensorsFile> file = SafetensorsFile::open(path);
  ASSERT_FALSE(file);
  EXPECT_FILE_ERROR(llvm::toString(file.takeError()), "cannot open");
}

//===----------------------------------------------------------------------===//
// parseStrictJSON
//===----------------------------------------------------------------------===//

TEST(StrictJSONTest, AcceptsNestingUpToTheLimit) {
  std::string text = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(bool(parseStrictJSON(text)));
  llvm::Expected<llvm::json::Value> deeper = parseStrictJSON("[" + text + "]");
  ASSERT_FALSE(deeper);
  EXPECT_NE(llvm::toString(deeper.takeError()).find("nested deeper"),
            std::string::npos);
}

TEST(StrictJSONTest, SameKeyInDifferentObjectsIsFine) {
  EXPECT_TRUE(
      bool(parseStrictJSON(R"({"a":{"x":1},"b":{"x":2},"c":["x","x"]})")));
}

TEST(StrictJSONTest, StringsWithBracketsAndQuotesAreSkipped) {
  llvm::Expected<llvm::json::Value> value =
      parseStrictJSON(R"({"a":"[[{\"a\":","b":"a"})");
  EXPECT_TRUE(bool(value)) << llvm::toString(value.takeError());
}

TEST(StrictJSONTest, InvalidJSONWinsOverDuplicate) {
  llvm::Expected<llvm::json::Value> value = parseStrictJSON(R"({"a":1,"a":)");
  ASSERT_FALSE(value);
  EXPECT_NE(llvm::toString(value.takeError()).find("invalid JSON"),
            std::string::npos);
}

} // namespace

namespace {

//===----------------------------------------------------------------------===//
// scanObjectMembers
//===----------------------------------------------------------------------===//

/// "key=value@offset;" for each member, or the error message.
std::string scanMembers(StringRef text) {
  std::string out;
  llvm::Error err = scanObjectMembers(text, [&](StringRef key, StringRef value,
                                                size_t offset) {
    out += key.str() + "=" + value.str() + "@" + std::to_string(offset) + ";";
    return llvm::Error::success();
  });
  if (err)
    return llvm::toString(std::move(err));
  return out;
}

TEST(ScanObjectMembersTest, SplitsMembersWithOffsets) {
  EXPECT_EQ(
      scanMembers(R"( { "a" : {"x":[1,"}"]} , "b\u0063":"s\"", "d":-1.5e3 } )"),
      R"(a={"x":[1,"}"]}@9;bc="s\""@35;d=-1.5e3@46;)");
  EXPECT_EQ(scanMembers("{}"), "");
}

TEST(ScanObjectMembersTest, RejectsBrokenStructure) {
  EXPECT_EQ(scanMembers("[]"), "not a JSON object");
  EXPECT_EQ(scanMembers(R"({"a" 1})"),
            "invalid JSON at byte 5: expected ':' after a key");
  EXPECT_EQ(scanMembers(R"({"a":1 "b":2})"),
            "invalid JSON at byte 7: expected ',' or '}'");
  EXPECT_EQ(scanMembers(R"({"a":})"),
            "invalid JSON at byte 5: expected a value");
  EXPECT_EQ(scanMembers(R"({"a":[1,2)"),
            "invalid JSON at byte 5: unterminated value");
  EXPECT_EQ(scanMembers(R"({"a":"x)"),
            "invalid JSON at byte 5: unterminated string");
  EXPECT_EQ(scanMembers("{\"a\x01\":1}"),
            "invalid JSON at byte 1: bad string key: [1:3, byte=3]: Control "
            "character in string");
}

TEST(ScanObjectMembersTest, StopsAtCallbackError) {
  int calls = 0;
  llvm::Error err =
      scanObjectMembers(R"({"a":1,"b":2})", [&](StringRef, StringRef, size_t) {
        ++calls;
        return llvm::createStringError("stop");
      });
  EXPECT_EQ(llvm::toString(std::move(err)), "stop");
  EXPECT_EQ(calls, 1);
}

} // namespace
