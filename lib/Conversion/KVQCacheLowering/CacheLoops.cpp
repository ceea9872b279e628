//===- CacheLoops.cpp - the CPU form of a cache function ------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <optional>

using namespace mlir;
using namespace mlir::kvq;

/// Emits `if (slot_mapping[t] >= 0) { body(blk, row) }`.
static void forValidSlot(OpBuilder &b, Location loc, const CacheOpPlan &plan,
                         Value t, bool gpu,
                         function_ref<void(OpBuilder &, Value, Value)> body) {
  Value slot = readSlot(b, loc, plan, t, gpu);
  scf::IfOp::create(b, loc, isValidSlot(b, loc, slot),
                    [&](OpBuilder &nb, Location nloc) {
                      auto [blk, row] = cacheRow(nb, nloc, plan, slot);
                      body(nb, blk, row);
                      scf::YieldOp::create(nb, nloc);
                    });
}

/// for t in [0, T): if slot[t] >= 0: for h, d: K and V element by element
/// (with head h's scales where the plan is per-head).
void mlir::kvq::buildCacheLoops(OpBuilder &b, Location loc,
                                const KVQTarget &target,
                                const CacheOpPlan &plan) {
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  Value numTokens = dimOf(b, loc, plan.slots, 0);
  Value numHeads = activationDim(b, loc, plan, 1);
  Value headSize = activationDim(b, loc, plan, 2);
  // One scale per stream: prepared once. Per-head scales: per head, at
  // the top of the head loop.
  std::optional<std::array<StreamScales, 2>> tensorScales;
  if (!plan.isPerHead())
    tensorScales = prepareScales(b, loc, plan, 1);
  scf::ForOp::create(
      b, loc, c0, numTokens, c1, ValueRange{},
      [&](OpBuilder &b, Location loc, Value t, ValueRange) {
        forValidSlot(
            b, loc, plan, t, /*gpu=*/false,
            [&](OpBuilder &b, Value blk, Value row) {
              scf::ForOp::create(
                  b, loc, c0, numHeads, c1, ValueRange{},
                  [&](OpBuilder &b, Location loc, Value h, ValueRange) {
                    std::array<StreamScales, 2> scales =
                        tensorScales ? *tensorScales
                                     : prepareScales(b, loc, plan, 1, h);
                    scf::ForOp::create(
                        b, loc, c0, headSize, c1, ValueRange{},
                        [&](OpBuilder &b, Location loc, Value d, ValueRange) {
                          SmallVector<Value> act{t, h, d},
                              cache{blk, row, h, d};
                          storeConverted(
                              b, loc, target, plan, scales, /*width=*/1,
                              loadSources(b, loc, plan, 1,
                                          plan.isStore ? act : cache),
                              plan.isStore ? cache : act);
                          scf::YieldOp::create(b, loc);
                        });
                    scf::YieldOp::create(b, loc);
                  });
            });
        scf::YieldOp::create(b, loc);
      });
}
