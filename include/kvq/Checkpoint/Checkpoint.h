//===- Checkpoint.h - single-file and sharded checkpoints -------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// A checkpoint is one or more safetensors files seen as one set of uniquely
// named tensors. Checkpoint::open accepts
//   - a `.safetensors` file;
//   - an index file (any path ending in `.json`, normally
//     `model.safetensors.index.json`): `{"weight_map": {"tensor": "shard"}}`,
//     other top-level keys (`metadata`) ignored;
//   - a directory: its `model.safetensors.index.json` if there is one, else
//     every `*.safetensors` file in it, in sorted order.
// Shard names in an index must be plain file names (no '/', '\', "." or
// ".."), resolved in the index's directory. Every tensor listed must be in
// its shard. Like vLLM, which loads every tensor of every listed shard, the
// checkpoint also holds tensors a shard has but the index does not list. A
// tensor found in two files is an error: which copy a loader would use is
// undefined.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CHECKPOINT_CHECKPOINT_H
#define KVQ_CHECKPOINT_CHECKPOINT_H

#include "kvq/Checkpoint/Safetensors.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::kvq::checkpoint {

/// One `weight_map` entry of an index.
struct IndexEntry {
  std::string tensor;
  std::string shard;
};

/// A tensor and the file that holds it; valid while its Checkpoint lives.
struct TensorRef {
  const SafetensorsFile *file = nullptr;
  const TensorInfo *info = nullptr;

  llvm::StringRef getName() const { return info->name; }
};

/// The name of the index file looked for in a checkpoint directory.
constexpr const char *kIndexFileName = "model.safetensors.index.json";

class Checkpoint {
public:
  /// Opens a `.safetensors` file, an index `.json` file, or a directory (see
  /// the file comment). Every error names the file at fault.
  static llvm::Expected<Checkpoint> open(llvm::StringRef path);

  /// Parses the text of an index file: `weight_map` must be an object whose
  /// values are plain file names. Entries are sorted by tensor name.
  /// \p indexPath is used in messages only.
  static llvm::Expected<std::vector<IndexEntry>>
  parseIndex(llvm::StringRef json, llvm::StringRef indexPath);

  /// The tensor named \p name, or std::nullopt.
  std::optional<TensorRef> lookup(llvm::StringRef name) const;
  /// All tensors: files in the order opened (shards sorted by name), each
  /// file's tensors in data-offset order.
  llvm::ArrayRef<TensorRef> tensors() const { return tensorList; }
  /// The number of files and each file.
  size_t getNumFiles() const { return files.size(); }
  const SafetensorsFile &getFile(size_t index) const { return *files[index]; }

  /// The values of \p tensor as doubles (see SafetensorsFile::readScale).
  llvm::Expected<std::vector<double>> readScale(const TensorRef &tensor) const;
  /// The values of the tensor named \p name; an error if there is none.
  llvm::Expected<std::vector<double>> readScale(llvm::StringRef name) const;

  /// The path given to open.
  std::string path;
  /// The index file used, or empty.
  std::string indexPath;

private:
  Checkpoint() = default;
  /// Adds every tensor of \p file; fails on a name already present.
  llvm::Error addFile(std::unique_ptr<SafetensorsFile> file);
  static llvm::Expected<Checkpoint> openIndex(llvm::StringRef indexPath);
  static llvm::Expected<Checkpoint>
  openFiles(llvm::StringRef path, llvm::ArrayRef<std::string> files);

  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::vector<TensorRef> tensorList;
  llvm::StringMap<TensorRef> tensorIndex;
};

} // namespace mlir::kvq::checkpoint

#endif // KVQ_CHECKPOINT_CHECKPOINT_H
