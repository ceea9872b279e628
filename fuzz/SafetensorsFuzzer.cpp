//===- SafetensorsFuzzer.cpp - libFuzzer target for the reader ------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to SafetensorsFile::fromBuffer as a whole file and
// reads every tensor that can be read as a scale. Any crash, sanitizer report
// or broken invariant (a tensor outside the data section, lookup disagreeing
// with tensors()) is a bug.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/Safetensors.h"

#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <cstdlib>

using namespace mlir::kvq::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  llvm::Expected<SafetensorsFile> file = SafetensorsFile::fromBuffer(
      llvm::MemoryBuffer::getMemBuffer(bytes, "fuzz.safetensors",
                                       /*RequiresNullTerminator=*/false));
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  for (const TensorInfo &info : file->tensors()) {
    if (info.begin > info.end || info.end > file->getDataSize() ||
        file->lookup(info.name) != &info)
      abort();
    llvm::Expected<std::vector<double>> values = file->readScale(info);
    if (!values) {
      llvm::consumeError(values.takeError());
      continue;
    }
    if (!isScaleReadable(info.dtype) || values->size() != info.getNumElements())
      abort();
  }
  return 0;
}
