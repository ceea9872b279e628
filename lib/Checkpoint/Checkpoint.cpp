//===- Checkpoint.cpp - single-file and sharded checkpoints ---------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/Checkpoint.h"

#include "kvq/Checkpoint/JSONCheck.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>

using namespace llvm;
using namespace mlir::kvq::checkpoint;

/// An error "<file>: <message>".
static Error fileError(StringRef path, const Twine &message) {
  return createStringError(std::make_error_code(std::errc::invalid_argument),
                           path + ": " + message);
}

/// The largest index file read: a 10,000-layer model's index is ~15 MB.
static constexpr uint64_t kMaxIndexSize = 64ull << 20;
/// The largest top-level member other than `weight_map` (`metadata` holds a
/// total size or two).
static constexpr uint64_t kMaxIndexMemberSize = 64ull << 10;

/// Whether \p name names a file in the index's own directory and nothing
/// else: no separators (which also excludes absolute paths), no "." or "..".
static bool isPlainFileName(StringRef name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(StringRef("/\\\0", 3)) == StringRef::npos;
}

namespace {
/// Parses an index one member at a time (see JSONCheck.h: llvm::json would
/// build a hash table per object and several for the weight map). The first
/// problem found is kept in `failure`; callbacks return a placeholder error
/// to stop the scan.
struct IndexParser {
  std::vector<IndexEntry> entries;
  std::string failure;

  Error fail(const Twine &message) {
    failure = message.str();
    return createStringError("stop");
  }
  /// Words an error of the scanner itself (not one of the callbacks, which
  /// set `failure` first): "not a JSON object" as \p notObject, others
  /// prefixed by \p context.
  Error failScan(Error err, const Twine &notObject, const Twine &context) {
    std::string message = toString(std::move(err));
    if (!failure.empty())
      return createStringError("stop");
    if (message == "not a JSON object")
      return fail(notObject);
    return fail(context + message);
  }

  Error parseRoot(StringRef json);
  Error parseWeightMap(StringRef text);
};
} // namespace

Error IndexParser::parseWeightMap(StringRef text) {
  StringSet<> tensors;
  Error err = scanObjectMembers(
      text, [&](StringRef tensor, StringRef shardText, size_t) -> Error {
        if (!tensors.insert(tensor).second)
          return fail("duplicate key '" + tensor + "' in 'weight_map'");
        std::optional<json::Value> value;
        if (shardText.starts_with("\"")) {
          Expected<json::Value> parsed = json::parse(shardText);
          if (!parsed)
            return fail("invalid JSON in the 'weight_map' entry for tensor '" +
                        tensor + "': " + toString(parsed.takeError()));
          value = std::move(*parsed);
        }
        if (!value || !value->getAsString())
          return fail("'weight_map' entry for tensor '" + tensor +
                      "' is not a string");
        StringRef shard = *value->getAsString();
        if (!isPlainFileName(shard))
          return fail("shard '" + shard + "' of tensor '" + tensor +
                      "' is not a plain file name in the index's directory");
        entries.push_back(IndexEntry{tensor.str(), shard.str()});
        return Error::success();
      });
  if (err)
    return failScan(std::move(err), "'weight_map' is not an object",
                    "'weight_map': ");
  return Error::success();
}

Error IndexParser::parseRoot(StringRef json) {
  StringSet<> keys;
  bool sawWeightMap = false;
  Error err = scanObjectMembers(
      json, [&](StringRef key, StringRef text, size_t) -> Error {
        if (!keys.insert(key).second)
          return fail("duplicate key '" + key + "'");
        if (key == "weight_map") {
          sawWeightMap = true;
          return parseWeightMap(text);
        }
        // Other members (`metadata`) are ignored but must be valid JSON.
        if (text.size() > kMaxIndexMemberSize)
          return fail(formatv("'{0}' is {1} bytes, more than the limit of {2}",
                              key, text.size(), kMaxIndexMemberSize));
        Expected<json::Value> value = parseStrictJSON(text);
        if (!value)
          return fail("'" + key + "': " + toString(value.takeError()));
        return Error::success();
      });
  if (err)
    return failScan(std::move(err), "index is not a JSON object", "");
  if (!sawWeightMap)
    return fail("index has no 'weight_map'");
  return Error::success();
}

Expected<std::vector<IndexEntry>> Checkpoint::parseIndex(StringRef json,
                                                         StringRef indexPath) {
  if (json.size() > kMaxIndexSize)
    return fileError(indexPath,
                     formatv("index is {0} bytes, more than the limit of {1}",
                             json.size(), kMaxIndexSize));
  size_t badByte = 0;
  if (!json::isUTF8(json, &badByte))
    return fileError(indexPath,
                     formatv("not valid UTF-8 (byte offset {0})", badByte));
  IndexParser parser;
  if (Error err = parser.parseRoot(json)) {
    consumeError(std::move(err));
    return fileError(indexPath, parser.failure);
  }
  llvm::sort(parser.entries, [](const IndexEntry &a, const IndexEntry &b) {
    return a.tensor < b.tensor;
  });
  return std::move(parser.entries);
}

Error Checkpoint::addFile(std::unique_ptr<SafetensorsFile> file) {
  for (const TensorInfo &info : file->tensors()) {
    TensorRef ref{file.get(), &info};
    auto [it, inserted] = tensorIndex.try_emplace(info.name, ref);
    if (!inserted)
      return fileError(file->path, "tensor '" + info.name + "' is also in '" +
                                       it->second.file->path + "'");
    tensorList.push_back(ref);
  }
  files.push_back(std::move(file));
  return Error::success();
}

Expected<Checkpoint> Checkpoint::openFiles(StringRef path,
                                           ArrayRef<std::string> paths) {
  Checkpoint checkpoint;
  checkpoint.path = path.str();
  for (const std::string &filePath : paths) {
    Expected<SafetensorsFile> file = SafetensorsFile::open(filePath);
    if (!file)
      return file.takeError();
    if (Error err = checkpoint.addFile(
            std::make_unique<SafetensorsFile>(std::move(*file))))
      return std::move(err);
  }
  return std::move(checkpoint);
}

Expected<Checkpoint> Checkpoint::openIndex(StringRef indexPath) {
  // As SafetensorsFile::open: a FIFO or a device would block or never end.
  sys::fs::file_status status;
  if (!sys::fs::status(indexPath, status) &&
      status.type() != sys::fs::file_type::regular_file &&
      status.type() != sys::fs::file_type::directory_file)
    return fileError(indexPath, "cannot open: not a regular file");
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer =
      MemoryBuffer::getFile(indexPath, /*IsText=*/false,
                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return fileError(indexPath, "cannot open: " + buffer.getError().message());
  Expected<std::vector<IndexEntry>> entries =
      parseIndex((*buffer)->getBuffer(), indexPath);
  if (!entries)
    return entries.takeError();

  // Open each shard once, in sorted order.
  std::vector<std::string> shards;
  for (const IndexEntry &entry : *entries)
    shards.push_back(entry.shard);
  llvm::sort(shards);
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());

  StringRef directory = sys::path::parent_path(indexPath);
  Checkpoint checkpoint;
  checkpoint.path = indexPath.str();
  checkpoint.indexPath = indexPath.str();
  for (const std::string &shard : shards) {
    SmallString<256> shardPath(directory);
    sys::path::append(shardPath, shard);
    Expected<SafetensorsFile> file = SafetensorsFile::open(shardPath);
    if (!file)
      return fileError(indexPath,
                       "shard '" + shard + "': " + toString(file.takeError()));
    if (Error err = checkpoint.addFile(
            std::make_unique<SafetensorsFile>(std::move(*file))))
      return std::move(err);
  }

  // Every listed tensor is in the shard that lists it.
  for (const IndexEntry &entry : *entries) {
    std::optional<TensorRef> ref = checkpoint.lookup(entry.tensor);
    if (!ref)
      return fileError(indexPath, "tensor '" + entry.tensor +
                                      "' is listed in shard '" + entry.shard +
                                      "' but that file has no such tensor");
    if (sys::path::filename(ref->file->path) != entry.shard)
      return fileError(indexPath, "tensor '" + entry.tensor +
                                      "' is listed in shard '" + entry.shard +
                                      "' but is in '" + ref->file->path + "'");
  }
  return std::move(checkpoint);
}

Expected<Checkpoint> Checkpoint::open(StringRef path) {
  if (!sys::fs::is_directory(path)) {
    if (path.ends_with(".json"))
      return openIndex(path);
    return openFiles(path, {path.str()});
  }

  SmallString<256> indexPath(path);
  sys::path::append(indexPath, kIndexFileName);
  if (sys::fs::exists(indexPath)) {
    Expected<Checkpoint> checkpoint = openIndex(indexPath);
    if (checkpoint)
      checkpoint->path = path.str();
    return checkpoint;
  }

  std::vector<std::string> paths;
  std::error_code ec;
  for (sys::fs::directory_iterator it(path, ec), end; !ec && it != end;
       it.increment(ec)) {
    StringRef entryPath = it->path();
    if (entryPath.ends_with(".safetensors") &&
        !sys::fs::is_directory(entryPath))
      paths.push_back(entryPath.str());
  }
  if (ec)
    return fileError(path, "cannot list directory: " + ec.message());
  if (paths.empty())
    return fileError(path, Twine("directory has no ") + kIndexFileName +
                               " and no *.safetensors file");
  llvm::sort(paths);
  return openFiles(path, paths);
}

std::optional<TensorRef> Checkpoint::lookup(StringRef name) const {
  auto it = tensorIndex.find(name);
  if (it == tensorIndex.end())
    return std::nullopt;
  return it->second;
}

Expected<std::vector<double>>
Checkpoint::readScale(const TensorRef &tensor) const {
  return tensor.file->readScale(*tensor.info);
}

Expected<std::vector<double>> Checkpoint::readScale(StringRef name) const {
  std::optional<TensorRef> ref = lookup(name);
  if (!ref)
    return fileError(path, "no tensor '" + name + "'");
  return readScale(*ref);
}
