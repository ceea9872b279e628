//===- Safetensors.h - safetensors reader -----------------------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// A reader for one safetensors file: 8 bytes little-endian header length N,
// N bytes of JSON header, then the data section. The file is memory-mapped;
// opening it touches only the header, and readScale touches only the bytes of
// the tensor it reads, so a 100 GB checkpoint opens in milliseconds.
//
// The header is treated as hostile. Every defect is an llvm::Error whose
// message starts with the file name and names the problem (and the tensor,
// where there is one); nothing is allocated in proportion to a length read
// from the file. What is checked:
//   - the file holds the 8-byte length, the length is at most 100 MiB and the
//     header fits in the file;
//   - the header is valid UTF-8 and valid JSON, nested at most
//     kMaxJSONDepth deep, with no key given twice in any object
//     (llvm::json::parse keeps one of two duplicate keys silently, so a
//     lexical pre-pass over the text finds them, see JSONCheck.h);
//   - the header is an object; `__metadata__`, if present, is an object of
//     strings of at most kMaxMetadataSize bytes; every other entry is an
//     object of at most kMaxEntrySize bytes with a known `dtype`, a `shape`
//     of non-negative integers whose element count does not overflow, and
//     `data_offsets` of two integers with begin <= end <= data section size
//     and end - begin == the byte size that dtype and shape imply;
//   - no two tensors overlap (empty tensors overlap nothing).
// Unlike the Rust reference implementation, tensors need not cover the data
// section contiguously: gaps and trailing bytes are harmless to a reader that
// addresses each tensor by its own offsets, so they are accepted. Keys other
// than dtype, shape and data_offsets in an entry are ignored, as there.
//
// Memory: the header is split into entries lexically and each entry is
// parsed with llvm::json on its own and dropped (parsing a whole header of
// 40,000 entries with llvm::json takes ~100x its size), so what is kept is
// about 3x the header size at worst (TensorInfo, name index).
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CHECKPOINT_SAFETENSORS_H
#define KVQ_CHECKPOINT_SAFETENSORS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlir::kvq::checkpoint {

/// The element types a safetensors header may name (the full list of the
/// reference implementation). Only F64, F32, F16 and BF16 can be read as
/// scales; the others are valid in a header and can be looked up.
enum class DType {
  BOOL,
  U8,
  I8,
  I16,
  U16,
  I32,
  U32,
  I64,
  U64,
  F4,      // fp4 e2m1, two per byte
  F6_E2M3, // fp6, four per three bytes
  F6_E3M2,
  F8_E4M3,
  F8_E5M2,
  F8_E8M0,
  F16,
  BF16,
  F32,
  F64,
  C64, // complex of two F32
};

/// The spelling of \p dtype in a safetensors header ("F32", "BF16", ...).
llvm::StringRef getDTypeName(DType dtype);
/// The dtype spelled \p name, or std::nullopt if there is none.
std::optional<DType> parseDType(llvm::StringRef name);
/// The size of one element in bits (4 for F4, 6 for F6_*, 32 for F32, ...).
unsigned getDTypeBitWidth(DType dtype);
/// Whether readScale can decode \p dtype: F64, F32, F16 or BF16.
bool isScaleReadable(DType dtype);

/// One tensor of a safetensors header.
struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  /// Byte offsets relative to the start of the data section (the byte after
  /// the header), as written in `data_offsets`: [begin, end).
  uint64_t begin = 0, end = 0;

  /// The product of the dimensions (1 for shape []); the header check
  /// guarantees that it does not overflow.
  uint64_t getNumElements() const;
};

/// The largest tensor that readScale decodes: a per-head scale has at most a
/// few hundred elements, anything bigger is not a scale.
constexpr uint64_t kMaxScaleElements = 4096;
/// The largest header accepted (the reference implementation's limit).
constexpr uint64_t kMaxHeaderSize = 100ull << 20;
/// The largest header entry of one tensor (a real one is under 200 bytes):
/// each entry is parsed on its own, and this bounds what one parse costs.
constexpr uint64_t kMaxEntrySize = 64ull << 10;
/// The largest `__metadata__` object (real ones are well under 1 MiB).
constexpr uint64_t kMaxMetadataSize = 16ull << 20;

/// A memory-mapped safetensors file with its validated header.
class SafetensorsFile {
public:
  /// Maps the file at \p path and validates its header.
  static llvm::Expected<SafetensorsFile> open(llvm::StringRef path);
  /// Validates a file already in memory; its buffer identifier is used as
  /// the file name in messages and as `path`.
  static llvm::Expected<SafetensorsFile>
  fromBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer);

  /// The tensor named \p name, or null.
  const TensorInfo *lookup(llvm::StringRef name) const;
  /// All tensors, ordered by data offset (then by name).
  llvm::ArrayRef<TensorInfo> tensors() const { return tensorList; }
  /// The `__metadata__` entries, sorted by key.
  llvm::ArrayRef<std::pair<std::string, std::string>> metadata() const {
    return metadataList;
  }
  /// The size of the data section in bytes.
  uint64_t getDataSize() const { return dataSize; }

  /// The values of \p tensor as doubles, in row-major order. NaN, infinities,
  /// zero and negative values are returned as they are. Fails with a message
  /// naming the file and the tensor if the dtype is not F64/F32/F16/BF16, if
  /// the tensor has more than kMaxScaleElements elements, or if \p tensor
  /// does not lie in this file's data section.
  llvm::Expected<std::vector<double>> readScale(const TensorInfo &tensor) const;

  /// The file name used in messages.
  std::string path;

private:
  SafetensorsFile() = default;

  std::unique_ptr<llvm::MemoryBuffer> buffer;
  uint64_t dataStart = 0, dataSize = 0;
  std::vector<TensorInfo> tensorList;
  llvm::StringMap<size_t> tensorIndex;
  std::vector<std::pair<std::string, std::string>> metadataList;
};

} // namespace mlir::kvq::checkpoint

#endif // KVQ_CHECKPOINT_SAFETENSORS_H
