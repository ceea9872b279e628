//===- KVQAttentionLowering.h - lower kvq.paged_attention -------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The lowering of `kvq.paged_attention`, as kvq-lower-attention runs it. The
// CPU form (host loops, the reference the GPU kernels are measured against)
// is complete; GPU targets are reported as not lowered yet.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CONVERSION_KVQCACHELOWERING_KVQATTENTIONLOWERING_H
#define KVQ_CONVERSION_KVQCACHELOWERING_KVQATTENTIONLOWERING_H

#include "kvq/Conversion/KVQCacheLowering/KVQTarget.h"

#include "mlir/IR/BuiltinOps.h"

namespace mlir::kvq {

/// Replaces every `kvq.paged_attention` of `module` by a call of a function
/// shared by the ops of its signature (query and cache types, precision),
/// with the layer's scales as f32 operands, then erases the layers no
/// longer referenced. Fails, with an error at the op and a note at the
/// layer, changing nothing, where an op's layer has no resolved scales or
/// `target` is a GPU.
LogicalResult lowerKVQAttention(ModuleOp module, const KVQTarget &target);

} // namespace mlir::kvq

#endif // KVQ_CONVERSION_KVQCACHELOWERING_KVQATTENTIONLOWERING_H
