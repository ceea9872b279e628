//===- Safetensors.cpp - safetensors reader -------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/Safetensors.h"

#include "kvq/Checkpoint/JSONCheck.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

using namespace llvm;
using namespace mlir::kvq::checkpoint;

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

namespace {
struct DTypeDesc {
  DType dtype;
  const char *name;
  unsigned bits;
};
} // namespace

static const DTypeDesc kDTypes[] = {
    {DType::BOOL, "BOOL", 8},       {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},           {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},        {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},        {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},        {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6}, {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::F8_E4M3, "F8_E4M3", 8}, {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E8M0, "F8_E8M0", 8}, {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},      {DType::F32, "F32", 32},
    {DType::F64, "F64", 64},        {DType::C64, "C64", 64},
};

static const DTypeDesc &getDesc(DType dtype) {
  for (const DTypeDesc &desc : kDTypes)
    if (desc.dtype == dtype)
      return desc;
  llvm_unreachable("unknown DType");
}

StringRef mlir::kvq::checkpoint::getDTypeName(DType dtype) {
  return getDesc(dtype).name;
}

unsigned mlir::kvq::checkpoint::getDTypeBitWidth(DType dtype) {
  return getDesc(dtype).bits;
}

std::optional<DType> mlir::kvq::checkpoint::parseDType(StringRef name) {
  for (const DTypeDesc &desc : kDTypes)
    if (name == desc.name)
      return desc.dtype;
  return std::nullopt;
}

bool mlir::kvq::checkpoint::isScaleReadable(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 ||
         dtype == DType::BF16;
}

uint64_t TensorInfo::getNumElements() const {
  uint64_t numElements = 1;
  for (int64_t dim : shape)
    numElements *= static_cast<uint64_t>(dim);
  return numElements;
}

//===----------------------------------------------------------------------===//
// Header validation
//===----------------------------------------------------------------------===//

/// An error "<file>: <message>".
static Error fileError(StringRef path, const Twine &message) {
  return createStringError(std::make_error_code(std::errc::invalid_argument),
                           path + ": " + message);
}

/// An error "<file>: tensor '<name>': <message>".
static Error tensorError(StringRef path, StringRef name, const Twine &message) {
  return fileError(path, "tensor '" + name + "': " + message);
}

/// A short description of a JSON value for messages.
static std::string describe(const json::Value &value) {
  std::string text;
  raw_string_ostream os(text);
  os << value;
  if (text.size() > 40)
    text = text.substr(0, 37) + "...";
  return text;
}

/// Parses one header entry other than `__metadata__` into \p info.
static Error parseTensor(StringRef path, StringRef name,
                         const json::Value &value, uint64_t dataSize,
                         TensorInfo &info) {
  info.name = name.str();
  const json::Object *entry = value.getAsObject();
  if (!entry)
    return tensorError(path, name,
                       "entry is not an object: " + describe(value));

  // dtype.
  const json::Value *dtypeValue = entry->get("dtype");
  if (!dtypeValue)
    return tensorError(path, name, "missing 'dtype'");
  std::optional<StringRef> dtypeName = dtypeValue->getAsString();
  if (!dtypeName)
    return tensorError(path, name,
                       "'dtype' is not a string: " + describe(*dtypeValue));
  std::optional<DType> dtype = parseDType(*dtypeName);
  if (!dtype)
    return tensorError(path, name, "unknown dtype '" + *dtypeName + "'");
  info.dtype = *dtype;

  // shape: non-negative integers whose product (and its size in bits) fits
  // in 64 bits.
  const json::Value *shapeValue = entry->get("shape");
  if (!shapeValue)
    return tensorError(path, name, "missing 'shape'");
  const json::Array *shape = shapeValue->getAsArray();
  if (!shape)
    return tensorError(path, name,
                       "'shape' is not an array: " + describe(*shapeValue));
  uint64_t numElements = 1;
  info.shape.reserve(shape->size());
  for (const json::Value &dimValue : *shape) {
    std::optional<uint64_t> dim = dimValue.getAsUINT64();
    if (!dim || *dim > uint64_t(std::numeric_limits<int64_t>::max()))
      return tensorError(path, name,
                         "'shape' has a dimension that is not a non-negative "
                         "integer: " +
                             describe(dimValue));
    info.shape.push_back(static_cast<int64_t>(*dim));
    if (numElements != 0 && *dim != 0 &&
        numElements > std::numeric_limits<uint64_t>::max() / *dim)
      return tensorError(path, name,
                         "element count of shape overflows 64 bits");
    numElements *= *dim;
  }
  unsigned bits = getDTypeBitWidth(info.dtype);
  if (numElements > std::numeric_limits<uint64_t>::max() / bits)
    return tensorError(path, name, "byte size of shape overflows 64 bits");
  uint64_t totalBits = numElements * bits;
  if (totalBits % 8 != 0)
    return tensorError(path, name,
                       formatv("{0} elements of {1} do not fill whole bytes",
                               numElements, getDTypeName(info.dtype)));
  uint64_t byteSize = totalBits / 8;

  // data_offsets.
  const json::Value *offsetsValue = entry->get("data_offsets");
  if (!offsetsValue)
    return tensorError(path, name, "missing 'data_offsets'");
  const json::Array *offsets = offsetsValue->getAsArray();
  std::optional<uint64_t> begin, end;
  if (offsets && offsets->size() == 2) {
    begin = (*offsets)[0].getAsUINT64();
    end = (*offsets)[1].getAsUINT64();
  }
  if (!begin || !end)
    return tensorError(path, name,
                       "'data_offsets' is not two non-negative integers: " +
                           describe(*offsetsValue));
  info.begin = *begin;
  info.end = *end;
  if (info.begin > info.end)
    return tensorError(
        path, name,
        formatv("data_offsets [{0}, {1}]: begin > end", info.begin, info.end));
  if (info.end > dataSize)
    return tensorError(
        path, name,
        formatv("data_offsets [{0}, {1}]: end is past the data section "
                "({2} bytes)",
                info.begin, info.end, dataSize));
  if (info.end - info.begin != byteSize)
    return tensorError(
        path, name,
        formatv("data_offsets [{0}, {1}] span {2} bytes but {3} x {4} "
                "elements take {5} bytes",
                info.begin, info.end, info.end - info.begin,
                getDTypeName(info.dtype), numElements, byteSize));

  // Anything else in the entry is ignored, as the reference reader does.
  return Error::success();
}

/// Parses the `__metadata__` object \p text (at header byte \p offset) into
/// \p metadata, one member at a time.
static Error
parseMetadata(StringRef path, StringRef text, size_t offset,
              std::vector<std::pair<std::string, std::string>> &metadata) {
  if (text.size() > kMaxMetadataSize)
    return fileError(path, formatv("'__metadata__' is {0} bytes, more than "
                                   "the limit of {1}",
                                   text.size(), kMaxMetadataSize));
  StringSet<> keys;
  bool memberFailed = false;
  Error err = scanObjectMembers(
      text, [&](StringRef key, StringRef valueText, size_t) -> Error {
        memberFailed = true;
        if (!keys.insert(key).second)
          return fileError(path,
                           "'__metadata__' has duplicate key '" + key + "'");
        std::optional<json::Value> value;
        if (valueText.starts_with("\"")) {
          Expected<json::Value> parsed = json::parse(valueText);
          if (!parsed)
            return fileError(path, "'__metadata__' entry '" + key +
                                       "': " + toString(parsed.takeError()));
          value = std::move(*parsed);
        }
        if (!value || !value->getAsString())
          return fileError(path, "'__metadata__' entry '" + key +
                                     "' is not a string");
        metadata.emplace_back(key.str(), value->getAsString()->str());
        memberFailed = false;
        return Error::success();
      });
  if (!err)
    return Error::success();
  if (memberFailed)
    return err;
  std::string message = toString(std::move(err));
  if (message == "not a JSON object")
    return fileError(path, "'__metadata__' is not an object");
  return fileError(
      path, formatv("'__metadata__' (header byte {0}): {1}", offset, message));
}

Expected<SafetensorsFile>
SafetensorsFile::fromBuffer(std::unique_ptr<MemoryBuffer> buffer) {
  SafetensorsFile file;
  file.path = buffer->getBufferIdentifier().str();
  StringRef path = file.path;
  StringRef bytes = buffer->getBuffer();
  if (bytes.size() < 8)
    return fileError(path, formatv("file is {0} bytes, too short for the "
                                   "8-byte header length",
                                   bytes.size()));
  uint64_t headerSize = support::endian::read64le(bytes.data());
  uint64_t available = bytes.size() - 8;
  if (headerSize > kMaxHeaderSize)
    return fileError(path, formatv("header length {0} exceeds the limit of "
                                   "{1} bytes",
                                   headerSize, kMaxHeaderSize));
  if (headerSize > available)
    return fileError(path, formatv("header length {0} is past the end of the "
                                   "file ({1} bytes after the length)",
                                   headerSize, available));
  StringRef header = bytes.substr(8, headerSize);
  file.dataStart = 8 + headerSize;
  file.dataSize = available - headerSize;

  size_t badByte = 0;
  if (!json::isUTF8(header, &badByte))
    return fileError(
        path, formatv("header: not valid UTF-8 (byte offset {0})", badByte));

  // Split the header into entries and parse one at a time (see
  // JSONCheck.h): memory stays a small multiple of the header size.
  bool sawMetadata = false, entryFailed = false;
  Error scanError = scanObjectMembers(
      header, [&](StringRef name, StringRef text, size_t offset) -> Error {
        entryFailed = true;
        bool isMetadata = name == "__metadata__";
        bool isNew = isMetadata ? !std::exchange(sawMetadata, true)
                                : file.tensorIndex.try_emplace(name, 0).second;
        if (!isNew)
          return fileError(path, formatv("header: duplicate key '{0}' (byte "
                                         "offset {1})",
                                         name, offset));
        if (isMetadata)
          return parseMetadata(path, text, offset, file.metadataList);
        if (text.size() > kMaxEntrySize)
          return fileError(path,
                           formatv("header: tensor '{0}' (byte offset "
                                   "{1}): entry is {2} bytes, more "
                                   "than the limit of {3}",
                                   name, offset, text.size(), kMaxEntrySize));
        Expected<json::Value> value = parseStrictJSON(text);
        if (!value)
          return fileError(path,
                           formatv("header: tensor '{0}' (byte offset {1}): "
                                   "{2}",
                                   name, offset, toString(value.takeError())));
        TensorInfo info;
        if (Error err = parseTensor(path, name, *value, file.dataSize, info))
          return err;
        file.tensorList.push_back(std::move(info));
        entryFailed = false;
        return Error::success();
      });
  if (scanError) {
    if (entryFailed)
      return std::move(scanError);
    return fileError(path, "header: " + toString(std::move(scanError)));
  }
  llvm::sort(file.metadataList);

  // Order by offset; then no non-empty tensor may begin before the end of
  // the previous non-empty one. Empty tensors occupy no bytes.
  llvm::sort(file.tensorList, [](const TensorInfo &a, const TensorInfo &b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  const TensorInfo *previous = nullptr;
  for (const TensorInfo &info : file.tensorList) {
    if (info.begin == info.end)
      continue;
    if (previous && info.begin < previous->end)
      return fileError(path,
                       formatv("tensors '{0}' [{1}, {2}] and '{3}' [{4}, {5}] "
                               "overlap",
                               previous->name, previous->begin, previous->end,
                               info.name, info.begin, info.end));
    previous = &info;
  }

  for (auto [index, info] : llvm::enumerate(file.tensorList))
    file.tensorIndex[info.name] = index;
  file.tensorList.shrink_to_fit();
  file.buffer = std::move(buffer);
  return std::move(file);
}

Expected<SafetensorsFile> SafetensorsFile::open(StringRef path) {
  // Only regular files (and directories, which fail below with a clear
  // message): opening a FIFO blocks until a writer appears, and a device may
  // never end.
  sys::fs::file_status status;
  if (!sys::fs::status(path, status) &&
      status.type() != sys::fs::file_type::regular_file &&
      status.type() != sys::fs::file_type::directory_file)
    return fileError(path, "cannot open: not a regular file");
  // Map, never read: only the pages of the header and of the scales that are
  // read get touched.
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer =
      MemoryBuffer::getFile(path, /*IsText=*/false,
                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return fileError(path, "cannot open: " + buffer.getError().message());
  return fromBuffer(std::move(*buffer));
}

const TensorInfo *SafetensorsFile::lookup(StringRef name) const {
  auto it = tensorIndex.find(name);
  return it == tensorIndex.end() ? nullptr : &tensorList[it->second];
}

//===----------------------------------------------------------------------===//
// Reading scales
//===----------------------------------------------------------------------===//

/// "[8, 1, 1]".
static std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [index, dim] : llvm::enumerate(shape))
    text += (index ? ", " : "") + std::to_string(dim);
  return text + "]";
}

/// Decodes a 16-bit float of \p semantics exactly (every F16/BF16 value is a
/// double).
static double decodeHalf(const fltSemantics &semantics, uint16_t bits) {
  APFloat value(semantics, APInt(16, bits));
  bool losesInfo = false;
  value.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven,
                &losesInfo);
  return value.convertToDouble();
}

Expected<std::vector<double>>
SafetensorsFile::readScale(const TensorInfo &tensor) const {
  if (!isScaleReadable(tensor.dtype))
    return tensorError(path, tensor.name,
                       "dtype " + getDTypeName(tensor.dtype) +
                           " cannot be read as a scale (expected F64, F32, "
                           "F16 or BF16)");
  // Count the elements without trusting \p tensor (it may come from
  // elsewhere): the product is capped at the scale limit as it grows.
  bool empty = llvm::is_contained(tensor.shape, 0);
  uint64_t numElements = empty ? 0 : 1;
  for (int64_t dim : tensor.shape) {
    if (dim < 0)
      return tensorError(path, tensor.name, "negative dimension in shape");
    if (empty)
      continue;
    if (uint64_t(dim) > kMaxScaleElements / numElements)
      return tensorError(path, tensor.name,
                         formatv("shape {0} has more than {1} elements, too "
                                 "many for a scale",
                                 formatShape(tensor.shape), kMaxScaleElements));
    numElements *= uint64_t(dim);
  }
  unsigned width = getDTypeBitWidth(tensor.dtype) / 8;
  if (tensor.begin > tensor.end || tensor.end > dataSize ||
      tensor.end - tensor.begin != numElements * width)
    return tensorError(path, tensor.name,
                       formatv("data_offsets [{0}, {1}] do not hold {2} "
                               "elements in this file's data section",
                               tensor.begin, tensor.end, numElements));

  const char *data = buffer->getBufferStart() + dataStart + tensor.begin;
  std::vector<double> values;
  values.reserve(numElements);
  for (uint64_t i = 0; i < numElements; ++i) {
    const char *ptr = data + i * width;
    switch (tensor.dtype) {
    case DType::F64: {
      uint64_t bits = support::endian::read64le(ptr);
      double value;
      std::memcpy(&value, &bits, sizeof(value));
      values.push_back(value);
      break;
    }
    case DType::F32: {
      uint32_t bits = support::endian::read32le(ptr);
      float value;
      std::memcpy(&value, &bits, sizeof(value));
      values.push_back(value);
      break;
    }
    case DType::F16:
      values.push_back(
          decodeHalf(APFloat::IEEEhalf(), support::endian::read16le(ptr)));
      break;
    case DType::BF16:
      values.push_back(
          decodeHalf(APFloat::BFloat(), support::endian::read16le(ptr)));
      break;
    default:
      llvm_unreachable("dtype checked above");
    }
  }
  return values;
}
