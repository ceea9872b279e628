//===- IndexFuzzer.cpp - libFuzzer target for the index parser ------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to Checkpoint::parseIndex as the text of a
// model.safetensors.index.json. Every accepted shard name must be a plain
// file name: an accepted name with a separator or "." / ".." is a path
// traversal and a bug.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/Checkpoint.h"

#include <cstdint>
#include <cstdlib>

using namespace mlir::kvq::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<std::vector<IndexEntry>> entries =
      Checkpoint::parseIndex(text, "fuzz.index.json");
  if (!entries) {
    llvm::consumeError(entries.takeError());
    return 0;
  }
  for (const IndexEntry &entry : *entries) {
    llvm::StringRef shard = entry.shard;
    if (shard.empty() || shard == "." || shard == ".." ||
        shard.find_first_of(llvm::StringRef("/\\\0", 3)) !=
            llvm::StringRef::npos)
      abort();
  }
  return 0;
}
