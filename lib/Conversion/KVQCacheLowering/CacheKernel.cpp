//===- CacheKernel.cpp - the GPU form of a cache function -----------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// One `gpu.launch` per cache function; the kernel's parameters and launch
// geometry (the kernel ABI) are described in docs/KernelABI.md.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"
#include "kvq/Target/ModuleTarget.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <optional>

using namespace mlir;
using namespace mlir::kvq;

/// Elements per GPU work item: as many as make one 16-byte access of the
/// wider of the source and destination element types: 8 for bf16 / f16 <->
/// fp8 / int8 (the store reads 16 bytes and writes 8, the load reads 8 and
/// writes 16), 4 with f32 activations. Every access of a warp is then
/// contiguous (512 bytes per 16-byte instruction). 16 elements per item
/// measured slower for the store and far slower for the load (commit
/// c0cad3a; bench/RESULTS.md).
static int64_t elementsPerWorkItem(const CacheOpPlan &plan) {
  auto bytes = [](MemRefType type) {
    return std::max<int64_t>(1, type.getElementTypeBitWidth() / 8);
  };
  return std::max<int64_t>(
      2, kAccessBytes / std::max(bytes(plan.actType), bytes(plan.cacheType)));
}

/// Whether `type` is contiguous (identity layout) with a static head size
/// that is a multiple of `width`: then every `width`-element chunk of a
/// head row is one aligned access.
static bool isVectorizable(MemRefType type, int64_t width) {
  int64_t headSize = type.getDimSize(type.getRank() - 1);
  return type.getLayout().isIdentity() && !ShapedType::isDynamic(headSize) &&
         headSize % width == 0;
}

/// Work items a GPU thread of the load takes per pass of its loop: two,
/// so that it has two gathers (slot, then cache row) in flight at once
/// (faster than one, commit 852dd84). The store reads its rows without
/// waiting for the slot; a two-item store gained nothing.
constexpr int64_t kLoadItemsPerThread = 2;

/// Work items per token and in total, for `width` elements per item (1:
/// the scalar path), from the memrefs of `plan`.
static std::pair<Value, Value> workItemCounts(OpBuilder &b, Location loc,
                                              const CacheOpPlan &plan,
                                              int64_t width) {
  Value numTokens = dimOf(b, loc, plan.slots, 0);
  Value numHeads = activationDim(b, loc, plan, 1);
  Value headSize = activationDim(b, loc, plan, 2);
  Value rowItems = arith::MulIOp::create(b, loc, numHeads, headSize);
  if (width > 1)
    rowItems = arith::DivUIOp::create(
        b, loc, rowItems, arith::ConstantIndexOp::create(b, loc, width));
  Value total = arith::MulIOp::create(b, loc, numTokens, rowItems);
  return {rowItems, total};
}

/// max(1, ceil(total / perBlock)) blocks.
static Value gridSizeFor(OpBuilder &b, Location loc, Value total,
                         int64_t perBlock) {
  return arith::MaxUIOp::create(
      b, loc,
      arith::CeilDivUIOp::create(
          b, loc, total, arith::ConstantIndexOp::create(b, loc, perBlock)),
      arith::ConstantIndexOp::create(b, loc, 1));
}

/// The body of the launch of buildLaunch(), on the memrefs of `plan` as
/// the kernel sees them.
static void buildKernelBody(OpBuilder &b, Location loc, const KVQTarget &target,
                            const CacheOpPlan &plan, gpu::LaunchOp launch,
                            int64_t threadsPerBlock, int64_t width,
                            bool vectorized, int64_t items) {
  auto gridSize = [&](OpBuilder &b, Location loc, Value total) {
    return gridSizeFor(b, loc, total, threadsPerBlock * items);
  };
  // One scale per stream: prepared once, before the loop. Per-head scales:
  // per work item, for its head (a work item lies inside one head's row:
  // the chunk divides the head size).
  std::optional<std::array<StreamScales, 2>> tensorScales;
  if (!plan.isPerHead())
    tensorScales = prepareScales(b, loc, plan, width);
  auto scalesOf = [&](OpBuilder &b, Location loc, Value head) {
    return tensorScales ? *tensorScales
                        : prepareScales(b, loc, plan, width, head);
  };
  // The block size is the constant threadsPerBlock (no read of blockDim).
  Value bid = launch.getBlockIds().x, tid = launch.getThreadIds().x;
  Value bdim = arith::ConstantIndexOp::create(b, loc, threadsPerBlock);
  Value first = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, bid, bdim), tid);
  // Plain variables, not a structured binding: the loop body captures them.
  std::pair<Value, Value> counts = workItemCounts(b, loc, plan, width);
  Value rowItems = counts.first, kernelTotal = counts.second;
  // NVIDIA: a grid-stride loop (gridDim is a special register), so any grid
  // size is correct. AMD: reading gridDim calls __ockl_get_num_groups from
  // the ROCm device libraries, which gpu-module-to-binary would then need;
  // there the kernel recomputes the host's grid size, and each thread does
  // one pass (the grid covers every work item).
  Value stride, step;
  if (target.getKind() == TargetKind::ROCDL) {
    stride = arith::MulIOp::create(b, loc, gridSize(b, loc, kernelTotal), bdim);
    step = arith::MaxUIOp::create(b, loc, kernelTotal,
                                  arith::ConstantIndexOp::create(b, loc, 1));
  } else {
    stride = arith::MulIOp::create(b, loc, launch.getGridSize().x, bdim);
    step = items == 1 ? stride
                      : arith::MulIOp::create(
                            b, loc, stride,
                            arith::ConstantIndexOp::create(b, loc, items));
  }
  scf::ForOp::create(
      b, loc, first, kernelTotal, step, ValueRange{},
      [&](OpBuilder &b, Location loc, Value base, ValueRange) {
        // Token, head and element of work item `i`.
        auto position = [&](Value i) -> std::array<Value, 3> {
          Value t = arith::DivUIOp::create(b, loc, i, rowItems);
          Value r = arith::RemUIOp::create(b, loc, i, rowItems);
          Value headSize = activationDim(b, loc, plan, 2);
          if (!vectorized)
            return {t, arith::DivUIOp::create(b, loc, r, headSize),
                    arith::RemUIOp::create(b, loc, r, headSize)};
          Value chunks = arith::DivUIOp::create(
              b, loc, headSize, arith::ConstantIndexOp::create(b, loc, width));
          return {t, arith::DivUIOp::create(b, loc, r, chunks),
                  arith::MulIOp::create(
                      b, loc, arith::RemUIOp::create(b, loc, r, chunks),
                      arith::ConstantIndexOp::create(b, loc, width))};
        };
        if (plan.isStore) {
          // The store reads activation row t whatever the slot: the K / V
          // loads, the slot load and the conversion are unconditional and
          // only the two stores depend on the slot (KVQTarget::storeIf), so
          // that the slot and data reads are in flight together. (A cache
          // row computed from a negative slot is never stored to.)
          auto [t, h, d] = position(base);
          std::array<Value, 2> in =
              loadSources(b, loc, plan, width, ValueRange{t, h, d});
          Value slot = readSlot(b, loc, plan, t, /*gpu=*/true);
          auto [blk, row] = cacheRow(b, loc, plan, slot);
          storeConverted(b, loc, target, plan, scalesOf(b, loc, h), width, in,
                         ValueRange{blk, row, h, d}, isValidSlot(b, loc, slot));
          scf::YieldOp::create(b, loc);
          return;
        }
        // The load's source row is the slot's. So that the items' gathers
        // overlap, every item's slot is read first, then every item's
        // cache row, unconditionally (row 0 where the slot is negative),
        // then the outputs are converted and stored where the slot is
        // valid (KVQTarget::storeIf). With a branch per gather, LLVM sinks
        // the second slot read below the first branch, which then waits
        // for it: three memory round trips for two items instead of two.
        // Item j is base + j * stride; one past the end reads the slot of
        // item `base` and stores nothing.
        struct Item {
          std::array<Value, 3> pos;
          Value valid;
          std::array<Value, 2> in;
        };
        SmallVector<Item> work(items);
        SmallVector<Value> slots;
        for (int64_t j = 0; j < items; ++j) {
          Value i = base, inRange;
          if (j > 0) {
            i = arith::AddIOp::create(
                b, loc, base,
                arith::MulIOp::create(
                    b, loc, stride, arith::ConstantIndexOp::create(b, loc, j)));
            inRange = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                            i, kernelTotal);
            i = arith::SelectOp::create(b, loc, inRange, i, base);
          }
          work[j].pos = position(i);
          Value slot = readSlot(b, loc, plan, work[j].pos[0], /*gpu=*/true);
          work[j].valid = isValidSlot(b, loc, slot);
          if (inRange)
            work[j].valid =
                arith::AndIOp::create(b, loc, work[j].valid, inRange);
          slots.push_back(arith::SelectOp::create(
              b, loc, work[j].valid, slot,
              arith::ConstantIntOp::create(b, loc, 0, 64)));
        }
        for (auto [item, slot] : llvm::zip(work, slots)) {
          auto [blk, row] = cacheRow(b, loc, plan, slot);
          item.in = loadSources(b, loc, plan, width,
                                ValueRange{blk, row, item.pos[1], item.pos[2]});
        }
        for (Item &item : work)
          storeConverted(b, loc, target, plan, scalesOf(b, loc, item.pos[1]),
                         width, item.in, ValueRange(item.pos), item.valid);
        scf::YieldOp::create(b, loc);
      });
  gpu::TerminatorOp::create(b, loc);
}

KernelMemRef KernelMemRef::split(OpBuilder &b, Location loc, Value memref) {
  KernelMemRef km;
  km.whole = memref;
  // No value (a fused store's sources) or a scalar: passed as it is.
  auto type = memref ? dyn_cast<MemRefType>(memref.getType()) : nullptr;
  int64_t offset;
  SmallVector<int64_t> strides;
  if (!type || failed(type.getStridesAndOffset(strides, offset)))
    return km;
  auto metadata = memref::ExtractStridedMetadataOp::create(b, loc, memref);
  auto pick = [&](int64_t value, Value dynamic) -> OpFoldResult {
    if (ShapedType::isDynamic(value))
      return dynamic;
    return b.getIndexAttr(value);
  };
  km.base = metadata.getBaseBuffer();
  km.offset = pick(offset, metadata.getOffset());
  for (int64_t d = 0; d < type.getRank(); ++d) {
    km.sizes.push_back(pick(type.getDimSize(d), metadata.getSizes()[d]));
    km.strides.push_back(pick(strides[d], metadata.getStrides()[d]));
  }
  return km;
}

void KernelMemRef::touchBase(OpBuilder &b, Location loc) const {
  if (base)
    memref::ExtractAlignedPointerAsIndexOp::create(b, loc, base);
  else if (whole && isa<MemRefType>(whole.getType()))
    memref::DimOp::create(b, loc, whole, 0);
}

Value KernelMemRef::rebuild(OpBuilder &b, Location loc) const {
  if (!base)
    return whole;
  return memref::ReinterpretCastOp::create(
      b, loc, cast<MemRefType>(whole.getType()), base, offset, sizes, strides);
}

/// The launch: a 1-D grid of `threadsPerBlock`-thread blocks, grid-stride
/// over work items. A work item is one token and one chunk of
/// elementsPerWorkItem() elements of the token's [H, D] row on the vector
/// path, one (token, element) otherwise; consecutive threads take
/// consecutive chunks of a token, so a warp reads and writes contiguous
/// memory. The thread moves K and V of its item; a load thread takes
/// kLoadItemsPerThread items per pass, `stride` (all threads of the grid)
/// apart, and the grid has that many times fewer blocks.
void mlir::kvq::buildCacheLaunch(OpBuilder &b, Location loc,
                                 const KVQTarget &target,
                                 const CacheOpPlan &plan,
                                 int64_t threadsPerBlock, ValueRange scalars) {
  const int64_t chunk = elementsPerWorkItem(plan);
  const bool vectorized = isVectorizable(plan.actType, chunk) &&
                          isVectorizable(plan.cacheType, chunk);
  const int64_t width = vectorized ? chunk : 1;

  const int64_t items = plan.isStore ? 1 : kLoadItemsPerThread;
  // A load gathers its cache rows without waiting for the slot test (see
  // below), which reads row 0 for a negative slot: with an empty cache
  // (every slot must then be negative) it launches nothing.
  OpBuilder::InsertionGuard hostGuard(b);
  if (!plan.isStore) {
    Value nonEmpty = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::ugt, dimOf(b, loc, plan.cache(0), 0),
        arith::ConstantIndexOp::create(b, loc, 0));
    auto ifNonEmpty =
        scf::IfOp::create(b, loc, nonEmpty, /*withElseRegion=*/false);
    b.setInsertionPointToStart(ifNonEmpty.thenBlock());
  }
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  Value tpb = arith::ConstantIndexOp::create(b, loc, threadsPerBlock);
  Value blocks = gridSizeFor(b, loc, workItemCounts(b, loc, plan, width).second,
                             threadsPerBlock * items);
  std::array<Value, 5> memrefs = {plan.slots, plan.streams[0].src,
                                  plan.streams[1].src, plan.streams[0].dst,
                                  plan.streams[1].dst};
  std::array<KernelMemRef, 5> kernelMemRefs;
  for (auto [km, memref] : llvm::zip(kernelMemRefs, memrefs))
    km = KernelMemRef::split(b, loc, memref);
  SmallVector<KernelMemRef> producerMemRefs =
      llvm::map_to_vector(plan.producerOperands, [&](Value value) {
        return KernelMemRef::split(b, loc, value);
      });
  // All cache kernels of a module go to one gpu.module, so that a pipeline
  // produces one binary (one PTX / AMDGCN text) per module.
  auto launch = gpu::LaunchOp::create(
      b, loc, blocks, c1, c1, tpb, c1, c1, /*dynamicSharedMemorySize=*/nullptr,
      /*asyncTokenType=*/nullptr, /*asyncDependencies=*/{},
      /*workgroupAttributions=*/{}, /*privateAttributions=*/{},
      /*clusterSizeX=*/nullptr, /*clusterSizeY=*/nullptr,
      /*clusterSizeZ=*/nullptr,
      FlatSymbolRefAttr::get(b.getContext(), kKernelModuleName));

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(&launch.getBody().front());
  // Fix the kernel's parameter order (the ABI documented in the pass):
  // gpu-kernel-outlining turns the values the body uses from above into
  // parameters in order of first use, so touch the memrefs' base pointers
  // first, in the order slot_mapping, K source, V source, K destination,
  // V destination, then the f32 `scalars` (k_scale, RN(1/k_scale), v_scale,
  // RN(1/v_scale); per-head: each head's pair, K's heads then V's), by
  // dead ops (folded away once the kernel is outlined; a
  // load does not use the reciprocals, yet every kernel takes them), then
  // rebuild the memrefs from their dynamic offsets, sizes and strides, in
  // the same order. The body uses the rebuilt memrefs.
  for (const KernelMemRef &km : kernelMemRefs)
    km.touchBase(b, loc);
  for (Value scalar : scalars)
    arith::NegFOp::create(b, loc, scalar);
  for (const KernelMemRef &km : producerMemRefs)
    km.touchBase(b, loc);
  CacheOpPlan kernelPlan = plan;
  std::array<Value *, 5> kernelValues = {
      &kernelPlan.slots, &kernelPlan.streams[0].src, &kernelPlan.streams[1].src,
      &kernelPlan.streams[0].dst, &kernelPlan.streams[1].dst};
  for (auto [km, value] : llvm::zip(kernelMemRefs, kernelValues))
    *value = km.rebuild(b, loc);
  // A fused store's producer operands come last (docs/KernelABI.md).
  for (auto [km, value] :
       llvm::zip(producerMemRefs, kernelPlan.producerOperands))
    value = km.rebuild(b, loc);
  buildKernelBody(b, loc, target, kernelPlan, launch, threadsPerBlock, width,
                  vectorized, items);
}
