//===- AttentionLowering.cpp - kvq.paged_attention to loops ---------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The CPU form of `kvq.paged_attention`: for each sequence and query head,
// two passes over the context (the running maximum of the scores, then the
// exponentials, their sum and the weighted sum of the V rows), f32
// throughout, the K scale folded into the score scale and the V scale
// applied once to the result. The error bound this arithmetic meets is
// derived in unittests/Attention/DecodeAttentionReference.h.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/KVQAttentionLowering.h"

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"
#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/SymbolTable.h"

#include <map>
#include <tuple>

using namespace mlir;
using namespace mlir::kvq;

namespace {
/// The f32 operands of an attention function, from the layer.
struct AttentionScales {
  /// RN(s_k * softmax_scale), or RN(s_q * s_k * softmax_scale) in the fp8
  /// modes: one rounding of the exact product (times log2(e) on GPUs,
  /// whose kernels compute exp2).
  float score;
  float v, q, prob;
};
} // namespace

/// RN32 of the product of `factors`, times log2(e) when `log2e` (IEEE quad
/// holds the product of three f32 exactly; log2(e) is rounded to quad,
/// relative error below 2^-113, before the one rounding to f32).
static float roundedProduct(ArrayRef<float> factors, bool log2e = false) {
  llvm::APFloat product(llvm::APFloat::IEEEquad(), 1);
  bool lost;
  if (log2e) {
    product = llvm::APFloat(llvm::APFloat::IEEEquad(),
                            "1.44269504088896340735992468100189214");
  }
  for (float factor : factors) {
    llvm::APFloat f(factor);
    f.convert(llvm::APFloat::IEEEquad(), llvm::APFloat::rmNearestTiesToEven,
              &lost);
    product.multiply(f, llvm::APFloat::rmNearestTiesToEven);
  }
  product.convert(llvm::APFloat::IEEEsingle(),
                  llvm::APFloat::rmNearestTiesToEven, &lost);
  return product.convertToFloat();
}

static std::string functionName(const AttentionSignature &sig) {
  auto size = [](MemRefType type, int64_t dim) -> std::string {
    return type.isDynamicDim(dim) ? "dyn"
                                  : std::to_string(type.getDimSize(dim));
  };
  std::string name = kAttentionNamePrefix.str() +
                     getTypeSpelling(sig.query.getElementType()) + "_" +
                     getTypeSpelling(sig.cache.getElementType()) + "_" +
                     size(sig.query, 1) + "x" + size(sig.cache, 2) + "x" +
                     size(sig.query, 2) + "_b" + size(sig.cache, 1);
  if (sig.precision != AttentionPrecision::Dequantized)
    name += "_" + stringifyAttentionPrecision(sig.precision).str();
  if (sig.headScales)
    name += "_per_head";
  if (sig.workspace)
    name += "_ws";
  return name;
}

/// for i in [lb, ub) with loop-carried `init`; `body` yields the next values.
static ValueRange
forLoop(OpBuilder &b, Location loc, Value lb, Value ub, ValueRange init,
        function_ref<SmallVector<Value>(OpBuilder &, Value, ValueRange)> body) {
  Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
  auto loop = scf::ForOp::create(
      b, loc, lb, ub, c1, init,
      [&](OpBuilder &nb, Location nloc, Value i, ValueRange args) {
        scf::YieldOp::create(nb, nloc, body(nb, i, args));
      });
  return loop.getResults();
}

namespace {
/// The operands of the attention arithmetic, wherever it runs.
struct AttentionOperands {
  Value query, keys, values, tables, lens, out;
  /// The score scales (log2 domain on GPUs), V scales and Q scales: one
  /// per KV head, or one for all (AttentionSignature::getScaleCount).
  ValueRange score, v, q;
  /// The P scale (null where the precision does not use it).
  Value prob;
};
} // namespace

SmallVector<Value>
mlir::kvq::getAttentionScaleValues(OpBuilder &b, Location loc,
                                   const AttentionSignature &sig,
                                   ValueRange args) {
  SmallVector<Value> values;
  for (Value arg : args) {
    if (!isa<VectorType>(arg.getType())) {
      values.push_back(arg);
      continue;
    }
    for (int64_t i = 0; i < sig.headScales; ++i)
      values.push_back(vector::ExtractOp::create(b, loc, arg, i));
  }
  return values;
}

Value mlir::kvq::selectHeadScale(OpBuilder &b, Location loc, ValueRange scales,
                                 Value head) {
  Value scale = scales.back();
  for (int64_t i = int64_t(scales.size()) - 2; i >= 0; --i) {
    Value isHead =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, head,
                              arith::ConstantIndexOp::create(b, loc, i));
    scale = arith::SelectOp::create(b, loc, isHead, scales[i], scale);
  }
  return scale;
}

/// Query head `h` of sequence `s`: two passes over the context (the
/// running maximum of the scores, then the weights, their sum and the
/// weighted sum of the V rows), f32 throughout. `qRow` and `acc` are f32
/// rows of head_size elements. On the CPU the weights are exp(score -
/// max); on a GPU the score scale carries log2(e) and they are
/// KVQTarget::exp2(score - max).
static void buildAttentionRow(OpBuilder &b, Location loc,
                              const KVQTarget &target,
                              const AttentionSignature &sig,
                              const AttentionOperands &ops, Value s, Value h,
                              Value qRow, Value acc) {
  Type f32 = b.getF32Type();
  Type cacheElem = sig.cache.getElementType();
  Type outElem = sig.query.getElementType();
  bool fp8Q = sig.precision != AttentionPrecision::Dequantized;
  bool fp8P = sig.precision == AttentionPrecision::Fp8QKPV;
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value headSize = dimOf(b, loc, ops.query, 2);
  Value blockSize = dimOf(b, loc, ops.keys, 1);
  Value group = arith::DivUIOp::create(b, loc, dimOf(b, loc, ops.query, 1),
                                       dimOf(b, loc, ops.keys, 2));
  // The KV head and its scales.
  Value g = arith::DivUIOp::create(b, loc, h, group);
  Value scoreScale = selectHeadScale(b, loc, ops.score, g);
  Value vScale = selectHeadScale(b, loc, ops.v, g);
  StreamScales qScales{selectHeadScale(b, loc, ops.q, g), {}, {}, {}, {}};
  StreamScales pScales{ops.prob, {}, {}, {}, {}};
  Value zero = f32Const(b, loc, f32, 0.0f);
  Value negInf = f32Const(b, loc, f32, -std::numeric_limits<float>::infinity());
  auto weightOf = [&](OpBuilder &b, Value x) -> Value {
    if (target.isGPU())
      return target.exp2(b, loc, x);
    return math::ExpOp::create(b, loc, x);
  };

  // A negative length reads nothing.
  Value len32 = memref::LoadOp::create(b, loc, ops.lens, ValueRange{s});
  Value len = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      arith::MaxSIOp::create(b, loc, len32,
                             arith::ConstantIntOp::create(b, loc, 0, 32)));
  forLoop(b, loc, c0, headSize, {}, [&](OpBuilder &b, Value d, ValueRange) {
    Value x = memref::LoadOp::create(b, loc, ops.query, ValueRange{s, h, d});
    Value xf = fp8Q ? decodeToF32(b, loc, target,
                                  quantize(b, loc, target, x, cacheElem,
                                           /*quantized=*/true, qScales))
                    : decodeToF32(b, loc, target, x);
    memref::StoreOp::create(b, loc, xf, qRow, ValueRange{d});
    return SmallVector<Value>{};
  });
  // Token j's cache row.
  auto rowOf = [&](OpBuilder &b, Value j) -> std::pair<Value, Value> {
    Value entry = memref::LoadOp::create(
        b, loc, ops.tables,
        ValueRange{s, arith::DivUIOp::create(b, loc, j, blockSize)});
    return {arith::IndexCastOp::create(b, loc, b.getIndexType(), entry),
            arith::RemUIOp::create(b, loc, j, blockSize)};
  };
  auto score = [&](OpBuilder &b, Value blk, Value row) -> Value {
    Value dot = forLoop(
        b, loc, c0, headSize, {zero},
        [&](OpBuilder &b, Value d, ValueRange sum) {
          Value k = memref::LoadOp::create(b, loc, ops.keys,
                                           ValueRange{blk, row, g, d});
          Value qd = memref::LoadOp::create(b, loc, qRow, ValueRange{d});
          Value p =
              arith::MulFOp::create(b, loc, qd, decodeToF32(b, loc, target, k));
          return SmallVector<Value>{arith::AddFOp::create(b, loc, sum[0], p)};
        })[0];
    return arith::MulFOp::create(b, loc, dot, scoreScale);
  };
  Value max = forLoop(
      b, loc, c0, len, {negInf}, [&](OpBuilder &b, Value j, ValueRange m) {
        auto [blk, row] = rowOf(b, j);
        return SmallVector<Value>{
            arith::MaximumFOp::create(b, loc, m[0], score(b, blk, row))};
      })[0];
  forLoop(b, loc, c0, headSize, {}, [&](OpBuilder &b, Value d, ValueRange) {
    memref::StoreOp::create(b, loc, zero, acc, ValueRange{d});
    return SmallVector<Value>{};
  });
  Value sum = forLoop(
      b, loc, c0, len, {zero}, [&](OpBuilder &b, Value j, ValueRange l) {
        auto [blk, row] = rowOf(b, j);
        Value e =
            weightOf(b, arith::SubFOp::create(b, loc, score(b, blk, row), max));
        // fp8_qk_pv: the weight is the quantized probability's code; its
        // scale cancels between the sum and the normalizer.
        Value w = fp8P ? decodeToF32(b, loc, target,
                                     quantize(b, loc, target, e, cacheElem,
                                              /*quantized=*/true, pScales))
                       : e;
        forLoop(b, loc, c0, headSize, {},
                [&](OpBuilder &b, Value d, ValueRange) {
                  Value v = memref::LoadOp::create(b, loc, ops.values,
                                                   ValueRange{blk, row, g, d});
                  Value a = memref::LoadOp::create(b, loc, acc, ValueRange{d});
                  Value p = arith::MulFOp::create(
                      b, loc, w, decodeToF32(b, loc, target, v));
                  memref::StoreOp::create(b, loc,
                                          arith::AddFOp::create(b, loc, a, p),
                                          acc, ValueRange{d});
                  return SmallVector<Value>{};
                });
        return SmallVector<Value>{arith::AddFOp::create(b, loc, l[0], w)};
      })[0];
  // out = acc * (s_v / l); an empty context (l = 0) writes zeros.
  Value positive =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, sum, zero);
  Value factor = arith::SelectOp::create(
      b, loc, positive, arith::DivFOp::create(b, loc, vScale, sum), zero);
  forLoop(b, loc, c0, headSize, {}, [&](OpBuilder &b, Value d, ValueRange) {
    Value y = arith::MulFOp::create(
        b, loc, memref::LoadOp::create(b, loc, acc, ValueRange{d}), factor);
    Value o = outElem.isF32()
                  ? y
                  : arith::TruncFOp::create(b, loc, outElem, y).getResult();
    memref::StoreOp::create(b, loc, o, ops.out, ValueRange{s, h, d});
    return SmallVector<Value>{};
  });
}

/// The operands of the function of `sig` from its arguments: `numMemRefs`
/// memrefs, the score, V and Q scales (getScaleCount() each), then the
/// prob scale if `withProb`.
static AttentionOperands getOperands(const AttentionSignature &sig,
                                     ValueRange memrefs, ValueRange scalars,
                                     bool withProb) {
  int64_t n = sig.getScaleCount();
  return {memrefs[0],
          memrefs[1],
          memrefs[2],
          memrefs[3],
          memrefs[4],
          memrefs[5],
          scalars.slice(0, n),
          scalars.slice(n, n),
          scalars.slice(2 * n, n),
          withProb ? scalars[3 * n] : Value()};
}

/// The body of the CPU function of `sig`: arguments (query, key_cache,
/// value_cache, block_tables, context_lens, out, score scales, v scales,
/// q scales, prob scale).
static void buildAttentionLoops(OpBuilder &b, Location loc,
                                const KVQTarget &target,
                                const AttentionSignature &sig, Block *entry) {
  SmallVector<Value> scalars =
      getAttentionScaleValues(b, loc, sig, entry->getArguments().drop_front(6));
  AttentionOperands ops = getOperands(sig, entry->getArguments().take_front(6),
                                      scalars, /*withProb=*/true);
  Value c0 = arith::ConstantIndexOp::create(b, loc, 0);
  Value headSize = dimOf(b, loc, ops.query, 2);
  auto rowType = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
  Value qRow = memref::AllocaOp::create(b, loc, rowType, ValueRange{headSize});
  Value acc = memref::AllocaOp::create(b, loc, rowType, ValueRange{headSize});
  forLoop(b, loc, c0, dimOf(b, loc, ops.query, 0), {},
          [&](OpBuilder &b, Value s, ValueRange) {
            forLoop(b, loc, c0, dimOf(b, loc, ops.query, 1), {},
                    [&](OpBuilder &b, Value h, ValueRange) {
                      buildAttentionRow(b, loc, target, sig, ops, s, h, qRow,
                                        acc);
                      return SmallVector<Value>{};
                    });
            return SmallVector<Value>{};
          });
}

void mlir::kvq::buildPortableAttentionLaunch(OpBuilder &b, Location loc,
                                             const KVQTarget &target,
                                             const AttentionSignature &sig,
                                             Block *entry) {
  const int64_t numMemRefs = sig.workspace ? 7 : 6;
  auto idx = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  // The workspace is not used: it does not become a kernel parameter.
  SmallVector<KernelMemRef> memrefs;
  for (Value memref : entry->getArguments().take_front(6))
    memrefs.push_back(KernelMemRef::split(b, loc, memref));
  SmallVector<Value> scalars = getAttentionScaleValues(
      b, loc, sig, entry->getArguments().drop_front(numMemRefs));
  const bool withProb = sig.precision == AttentionPrecision::Fp8QKPV;
  Value rows = arith::MulIOp::create(b, loc, dimOf(b, loc, memrefs[0].whole, 0),
                                     idx(sig.query.getDimSize(1)));
  Value blocks =
      arith::CeilDivUIOp::create(b, loc, rows, idx(kPortableAttentionThreads));
  OpBuilder::InsertionGuard hostGuard(b);
  auto nonEmpty = scf::IfOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, rows, idx(0)),
      /*withElseRegion=*/false);
  b.setInsertionPointToStart(nonEmpty.thenBlock());
  MLIRContext *ctx = b.getContext();
  auto rowType = MemRefType::get(
      {sig.query.getDimSize(2)}, b.getF32Type(), MemRefLayoutAttrInterface(),
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Private));
  Value c1 = idx(1);
  auto launch = gpu::LaunchOp::create(
      b, loc, blocks, c1, c1, idx(kPortableAttentionThreads), c1, c1,
      /*dynamicSharedMemorySize=*/nullptr, /*asyncTokenType=*/nullptr,
      /*asyncDependencies=*/{}, /*workgroupAttributions=*/{},
      /*privateAttributions=*/TypeRange{rowType, rowType},
      /*clusterSizeX=*/nullptr, /*clusterSizeY=*/nullptr,
      /*clusterSizeZ=*/nullptr, FlatSymbolRefAttr::get(ctx, kKernelModuleName));
  b.setInsertionPointToStart(&launch.getBody().front());
  // The kernel's parameters in order (docs/KernelABI.md): the memrefs'
  // pointers, the f32 scalars, then the dynamic sizes.
  for (const KernelMemRef &km : memrefs)
    km.touchBase(b, loc);
  for (Value scalar : scalars)
    arith::NegFOp::create(b, loc, scalar);
  SmallVector<Value> kernel;
  for (const KernelMemRef &km : memrefs)
    kernel.push_back(km.rebuild(b, loc));
  Value row = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, launch.getBlockIds().x,
                            idx(kPortableAttentionThreads)),
      launch.getThreadIds().x);
  // From the kernel's own sizes: a host value would become a parameter.
  Value kernelRows = arith::MulIOp::create(b, loc, dimOf(b, loc, kernel[0], 0),
                                           idx(sig.query.getDimSize(1)));
  auto inside = scf::IfOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, row, kernelRows),
      /*withElseRegion=*/false);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(inside.thenBlock());
    Value heads = idx(sig.query.getDimSize(1));
    Value s = arith::DivUIOp::create(b, loc, row, heads);
    Value h = arith::RemUIOp::create(b, loc, row, heads);
    AttentionOperands ops = getOperands(sig, kernel, scalars, withProb);
    buildAttentionRow(b, loc, target, sig, ops, s, h,
                      launch.getPrivateAttributions()[0],
                      launch.getPrivateAttributions()[1]);
  }
  gpu::TerminatorOp::create(b, loc);
}

/// Whether the function of `sig` takes the prob scale: always on the CPU,
/// on a GPU for fp8_qk_pv only (docs/KernelABI.md).
static bool usesProbScale(const KVQTarget &target,
                          const AttentionSignature &sig) {
  return !target.isGPU() || sig.precision == AttentionPrecision::Fp8QKPV;
}

static func::FuncOp buildAttentionFunction(ModuleOp module,
                                           const AttentionSignature &sig,
                                           Location loc,
                                           const KVQTarget &target) {
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Type f32 = b.getF32Type();
  SmallVector<Type> args = {sig.query,  sig.cache, sig.cache,
                            sig.tables, sig.lens,  sig.query};
  if (target.isGPU() && sig.workspace)
    args.push_back(sig.workspace);
  Type scaleType =
      sig.headScales ? Type(VectorType::get({sig.headScales}, f32)) : f32;
  args.append(3, scaleType);
  if (usesProbScale(target, sig))
    args.push_back(f32);
  auto fn = func::FuncOp::create(b, loc, functionName(sig),
                                 b.getFunctionType(args, {}));
  fn.setPrivate();
  SymbolTable(module).insert(fn);
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  if (!target.isGPU())
    buildAttentionLoops(b, loc, target, sig, entry);
  else if (getTensorCoreAttentionLimit(target, sig))
    buildPortableAttentionLaunch(b, loc, target, sig, entry);
  else
    buildAttentionLaunch(b, loc, target, sig, entry);
  func::ReturnOp::create(b, loc);
  return fn;
}

/// The signature of `op` (memref form) on `layer` for `target` (the CPU
/// ignores the workspace).
static AttentionSignature signatureOf(PagedAttentionOp op, LayerOp layer,
                                      const KVQTarget &target) {
  ResolvedScalesAttr resolved = layer.getResolvedScalesAttr();
  auto memref = [](Value v) {
    return v ? cast<MemRefType>(v.getType()) : MemRefType();
  };
  return {memref(op.getQuery()),
          memref(op.getKeyCache()),
          memref(op.getBlockTables()),
          memref(op.getContextLens()),
          target.isGPU() ? memref(op.getWorkspace()) : MemRefType(),
          op.getPrecision(),
          resolved && resolved.isPerHead() ? resolved.getNumHeads() : 0};
}

LogicalResult mlir::kvq::lowerKVQAttention(ModuleOp module,
                                           const KVQTarget &target) {
  SmallVector<PagedAttentionOp> ops;
  module.walk([&](PagedAttentionOp op) { ops.push_back(op); });
  if (ops.empty())
    return success();
  SymbolTableCollection symbols;
  bool ok = true;
  for (PagedAttentionOp op : ops) {
    auto layer =
        symbols.lookupNearestSymbolFrom<LayerOp>(op, op.getLayerAttr());
    if (!layer)
      continue; // the verifier reports it
    if (!isa<MemRefType>(op.getQuery().getType())) {
      op.emitError() << "cannot lower the tensor form of '" << op->getName()
                     << "': bufferize it first (one-shot-bufferize)";
      ok = false;
    } else if (std::optional<std::string> limit =
                   target.isGPU() ? getAttentionKernelLimit(
                                        target, signatureOf(op, layer, target))
                                  : std::nullopt) {
      op.emitError() << "kvq-lower-attention: kvq.paged_attention " << *limit
                     << "; lower it for the CPU";
      ok = false;
    } else if (!layer.getResolvedScalesAttr()) {
      (void)emitUnresolvedLayerError(op, layer);
      ok = false;
    } else if (layer.getResolvedScalesAttr().isPerHead() &&
               cast<ShapedType>(op.getKeyCache().getType()).isDynamicDim(2)) {
      // (A static count that differs is the verifier's error.)
      InFlightDiagnostic diag = op.emitError()
                                << "cannot lower: layer @" << layer.getSymName()
                                << " has per-head scales, which need a static "
                                   "number of KV heads (cache dim 2)";
      diag.attachNote(layer.getLoc())
          << "layer @" << layer.getSymName() << " declared here";
      ok = false;
    } else if (!op.getSoftmaxScale()) {
      op.emitError() << "cannot lower: the head size is dynamic; give the "
                        "softmax scale (scale(...))";
      ok = false;
    }
  }
  if (!ok)
    return failure();

  std::map<decltype(AttentionSignature().key()), func::FuncOp> functions;
  IRRewriter rewriter(module.getContext());
  for (PagedAttentionOp op : ops) {
    auto layer =
        symbols.lookupNearestSymbolFrom<LayerOp>(op, op.getLayerAttr());
    ResolvedScalesAttr resolved = layer.getResolvedScalesAttr();
    AttentionSignature sig = signatureOf(op, layer, target);
    if (target.isGPU()) {
      if (std::optional<std::string> why =
              getTensorCoreAttentionLimit(target, sig))
        op.emitRemark() << "kvq-lower-attention: kvq.paged_attention " << *why
                        << "; lowered to the portable kernel (one thread per "
                           "query head and sequence)";
    }
    func::FuncOp &fn = functions[sig.key()];
    if (!fn)
      fn = buildAttentionFunction(module, sig, op.getLoc(), target);
    float sm = *op.getSoftmaxScale();
    bool fp8 = sig.precision != AttentionPrecision::Dequantized;
    bool gpu = target.isGPU();
    // The scales of KV head `head` (every head's, per-tensor).
    auto scalesOf = [&](unsigned head) {
      float k = resolved.getHeadValue(ScaleKind::K, head),
            v = resolved.getHeadValue(ScaleKind::V, head),
            q = resolved.getHeadValue(ScaleKind::Q, head);
      return AttentionScales{fp8 ? roundedProduct({q, k, sm}, gpu)
                                 : roundedProduct({k, sm}, gpu),
                             v, q, resolved.getProbFloat()};
    };
    SmallVector<AttentionScales> heads;
    for (int64_t head = 0; head < sig.getScaleCount(); ++head)
      heads.push_back(scalesOf(unsigned(head)));
    rewriter.setInsertionPoint(op);
    Location loc = op.getLoc();
    SmallVector<Value> operands = {op.getQuery(),       op.getKeyCache(),
                                   op.getValueCache(),  op.getBlockTables(),
                                   op.getContextLens(), op.getOut()};
    if (gpu && sig.workspace)
      operands.push_back(op.getWorkspace());
    // f32 constants, or one vector<H x f32> per kind with per-head scales.
    for (float AttentionScales::*field :
         {&AttentionScales::score, &AttentionScales::v, &AttentionScales::q}) {
      SmallVector<float> values;
      for (const AttentionScales &scales : heads)
        values.push_back(scales.*field);
      TypedAttr attr =
          sig.headScales
              ? TypedAttr(DenseElementsAttr::get(
                    VectorType::get({sig.headScales}, rewriter.getF32Type()),
                    ArrayRef<float>(values)))
              : TypedAttr(rewriter.getF32FloatAttr(values.front()));
      operands.push_back(arith::ConstantOp::create(rewriter, loc, attr));
    }
    if (usesProbScale(target, sig))
      operands.push_back(arith::ConstantOp::create(
          rewriter, loc, rewriter.getF32FloatAttr(heads.front().prob)));
    func::CallOp::create(rewriter, loc, fn, operands);
    rewriter.eraseOp(op);
  }
  eraseUnusedLayers(module);
  return success();
}
