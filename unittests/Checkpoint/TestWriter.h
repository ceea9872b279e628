//===- TestWriter.h - safetensors files for tests ---------------*- C++ -*-===//
//-*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Builds safetensors bytes (valid ones from a tensor list, hostile ones from
// a raw header) and a temporary directory to write them to.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_UNITTESTS_CHECKPOINT_TESTWRITER_H
#define KVQ_UNITTESTS_CHECKPOINT_TESTWRITER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace mlir::kvq::checkpoint::test {

/// Little-endian bytes of values.
inline std::string f32Bytes(llvm::ArrayRef<float> values) {
  std::string bytes;
  for (float value : values) {
    uint32_t bits;
    std::memcpy(&bits, &value, 4);
    char buf[4];
    llvm::support::endian::write32le(buf, bits);
    bytes.append(buf, 4);
  }
  return bytes;
}
inline std::string f64Bytes(llvm::ArrayRef<double> values) {
  std::string bytes;
  for (double value : values) {
    uint64_t bits;
    std::memcpy(&bits, &value, 8);
    char buf[8];
    llvm::support::endian::write64le(buf, bits);
    bytes.append(buf, 8);
  }
  return bytes;
}
inline std::string u16Bytes(llvm::ArrayRef<uint16_t> values) {
  std::string bytes;
  for (uint16_t value : values) {
    char buf[2];
    llvm::support::endian::write16le(buf, value);
    bytes.append(buf, 2);
  }
  return bytes;
}

/// One tensor of a file to write; its offsets follow the previous tensor's.
struct TensorSpec {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string data;
};

/// A scalar F32 tensor.
inline TensorSpec scalarF32(std::string name, float value) {
  return TensorSpec{std::move(name), "F32", {}, f32Bytes({value})};
}

/// The file bytes: length, \p header, \p data.
inline std::string rawFile(llvm::StringRef header, llvm::StringRef data = "") {
  char length[8];
  llvm::support::endian::write64le(length, header.size());
  return std::string(length, 8) + header.str() + data.str();
}

/// The JSON string literal of \p text (names in tests are plain ASCII).
inline std::string quote(llvm::StringRef text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

/// The header entry of one tensor.
inline std::string entryJSON(llvm::StringRef dtype,
                             llvm::ArrayRef<int64_t> shape, uint64_t begin,
                             uint64_t end) {
  std::string text = "{\"dtype\":" + quote(dtype) + ",\"shape\":[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "],\"data_offsets\":[" + std::to_string(begin) + "," +
         std::to_string(end) + "]}";
}

/// A valid file holding \p tensors back to back, with the header padded to a
/// multiple of 8 bytes by spaces as the reference writer does.
inline std::string makeFile(llvm::ArrayRef<TensorSpec> tensors,
                            llvm::StringRef metadataJSON = "") {
  std::string header = "{";
  std::string data;
  if (!metadataJSON.empty())
    header += "\"__metadata__\":" + metadataJSON.str();
  for (const TensorSpec &tensor : tensors) {
    if (header.size() > 1)
      header += ",";
    header += quote(tensor.name) + ":" +
              entryJSON(tensor.dtype, tensor.shape, data.size(),
                        data.size() + tensor.data.size());
    data += tensor.data;
  }
  header += "}";
  while (header.size() % 8)
    header += ' ';
  return rawFile(header, data);
}

/// A fresh temporary directory, removed with its contents at the end.
class TempDir {
public:
  TempDir() {
    std::error_code ec =
        llvm::sys::fs::createUniqueDirectory("kvq-checkpoint-test", dir);
    EXPECT_FALSE(ec) << ec.message();
  }
  ~TempDir() { llvm::sys::fs::remove_directories(dir); }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  llvm::StringRef path() const { return dir; }

  /// The path of \p name in the directory.
  std::string child(llvm::StringRef name) const {
    llvm::SmallString<256> path(dir);
    llvm::sys::path::append(path, name);
    return std::string(path);
  }

  /// Writes \p bytes to \p name and returns its path.
  std::string write(llvm::StringRef name, llvm::StringRef bytes) const {
    std::string path = child(name);
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    EXPECT_FALSE(ec) << ec.message();
    os << bytes;
    return path;
  }

private:
  llvm::SmallString<256> dir;
};

} // namespace mlir::kvq::checkpoint::test

#endif // KVQ_UNITTESTS_CHECKPOINT_TESTWRITER_H
