//===- WorkItemPermutationTest.cpp - vector loads of a fused region -------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// getWorkItemPermutation(), which decides from the index a fused store's
// region load reads at every d of the head whether a work item of `width`
// elements reads one aligned vector: the accepted index maps (the row
// itself, RoPE's partners, a table row) with the element each element
// takes, and the rejected ones (strides, shifts, reversals across work
// items, reads outside the row). The IR side (evaluating the index for
// every d) is tested by kvq-lower-cache-ops-fused.mlir and the exec test.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

using namespace mlir::kvq;

namespace {

constexpr int64_t kHeadSize = 128;

/// f(d) for every d of a head of kHeadSize.
std::vector<int64_t> indexOf(const std::function<int64_t(int64_t)> &f) {
  std::vector<int64_t> index(kHeadSize);
  for (int64_t d = 0; d < kHeadSize; ++d)
    index[d] = f(d);
  return index;
}

struct Case {
  const char *name;
  std::function<int64_t(int64_t)> f;
  int64_t width, rowSize;
  /// The permutation, empty where there must be none.
  std::vector<int64_t> perm;
};

const Case kCases[] = {
    // Accepted.
    {"row", [](int64_t d) { return d; }, 8, 128, {0, 1, 2, 3, 4, 5, 6, 7}},
    {"rotate_half",
     [](int64_t d) { return (d + 64) % 128; },
     8,
     128,
     {0, 1, 2, 3, 4, 5, 6, 7}},
    {"table_row",
     [](int64_t d) { return d % 64; },
     8,
     64,
     {0, 1, 2, 3, 4, 5, 6, 7}},
    {"pair_swap",
     [](int64_t d) { return d ^ 1; },
     8,
     128,
     {1, 0, 3, 2, 5, 4, 7, 6}},
    {"pair_swap_f32", [](int64_t d) { return d ^ 1; }, 4, 128, {1, 0, 3, 2}},
    {"reversed_in_item",
     [](int64_t d) { return d ^ 7; },
     8,
     128,
     {7, 6, 5, 4, 3, 2, 1, 0}},
    {"reversed_row",
     [](int64_t d) { return 127 - d; },
     8,
     128,
     {7, 6, 5, 4, 3, 2, 1, 0}},
    {"item_swap",
     [](int64_t d) { return d ^ 8; },
     8,
     128,
     {0, 1, 2, 3, 4, 5, 6, 7}},
    {"width_one", [](int64_t d) { return (d * 37) % 128; }, 1, 128, {0}},
    // Rejected: not base + the same permutation, base a multiple of width.
    {"stride_two", [](int64_t d) { return d * 2; }, 8, 256, {}},
    {"half_stride", [](int64_t d) { return d / 2; }, 8, 128, {}},
    {"constant", [](int64_t) { return 5; }, 8, 128, {}},
    {"unaligned_shift", [](int64_t d) { return (d + 1) % 128; }, 8, 128, {}},
    {"shift_by_four", [](int64_t d) { return (d + 4) % 128; }, 8, 128, {}},
    {"permutation_varies",
     [](int64_t d) { return d < 64 ? d : d ^ 1; },
     8,
     128,
     {}},
    {"scattered", [](int64_t d) { return (d * 37) % 128; }, 8, 128, {}},
    // Rejected: out of the row, or a row that is not whole vectors.
    {"past_the_row", [](int64_t d) { return d + 64; }, 8, 128, {}},
    {"negative", [](int64_t d) { return d - 64; }, 8, 128, {}},
    {"row_not_whole_vectors", [](int64_t d) { return d; }, 8, 132, {}},
    {"width_not_dividing_head", [](int64_t d) { return d; }, 48, 144, {}},
};

TEST(WorkItemPermutationTest, AcceptsExactlyAlignedPermutations) {
  for (const Case &c : kCases) {
    SCOPED_TRACE(c.name);
    std::optional<mlir::SmallVector<int64_t>> perm =
        getWorkItemPermutation(indexOf(c.f), c.width, c.rowSize);
    if (c.perm.empty()) {
      EXPECT_FALSE(perm.has_value());
      continue;
    }
    ASSERT_TRUE(perm.has_value());
    EXPECT_EQ(std::vector<int64_t>(perm->begin(), perm->end()), c.perm);
  }
}

} // namespace
