//===- MemRefBuffer.h - host buffers for JIT-compiled kvq code --*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The execution tests call kvq code compiled by the ExecutionEngine through
// its C interface, which takes each memref as a StridedMemRefType
// descriptor. Buffer<N> owns the bytes of one contiguous memref and its
// descriptor.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_UNITTESTS_CONVERSION_MEMREFBUFFER_H
#define KVQ_UNITTESTS_CONVERSION_MEMREFBUFFER_H

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <array>
#include <cstdint>
#include <vector>

namespace mlir::kvq::test {

/// A contiguous memref over `bytes`, as the JIT code's C interface takes it.
template <int N> struct Buffer {
  Buffer(std::vector<uint8_t> data, std::array<int64_t, N> shape)
      : bytes(std::move(data)) {
    desc.basePtr = desc.data = bytes.data();
    desc.offset = 0;
    int64_t stride = 1;
    for (int i = N - 1; i >= 0; --i) {
      desc.sizes[i] = shape[i];
      desc.strides[i] = stride;
      stride *= shape[i];
    }
  }
  StridedMemRefType<uint8_t, N> *ptr() { return &desc; }
  std::vector<uint8_t> bytes;
  StridedMemRefType<uint8_t, N> desc;
};

} // namespace mlir::kvq::test

#endif // KVQ_UNITTESTS_CONVERSION_MEMREFBUFFER_H
