//===- CacheFunctions.cpp - one function per cache signature --------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Every cache op calls a function shared by all cache ops of its signature
// (op kind, operand types, how each stream computes its quotient): the
// function takes the op's memrefs and the layer's K and V scales as
// operands, so that an N-layer model gets a few functions (kernels) instead
// of N. Names and parameters: docs/KernelABI.md.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"
#include "kvq/Conversion/KVQCacheLowering/KVQCacheLowering.h"
#include "kvq/Conversion/KVQCacheLowering/ScaledDivision.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Threading.h"
#include "llvm/ADT/StringSwitch.h"

#include <array>
#include <mutex>
#include <optional>

using namespace mlir;
using namespace mlir::kvq;

namespace {
/// A cache op's signature: what its function's code depends on.
struct CacheSignature {
  bool isStore = false;
  /// The cache holds fp8 / int8 (not a plain copy of the activations).
  bool quantized = false;
  /// Each KV head has its own K and V scales (a quantized cache only):
  /// the function takes them as vectors of H values.
  bool perHead = false;
  /// Quantizing store only, per stream (K, V): how x / s is computed
  /// (proven for the layer's scale, or for every head's, where it is not a
  /// division).
  std::array<Quotient, 2> quotient = {Quotient::Division, Quotient::Division};
  /// slot_mapping, K source, V source, K destination, V destination (for
  /// a fused store, whose region computes K and V, the sources' types are
  /// the activation type).
  std::array<MemRefType, 5> types;
  /// A kvq.fused_cache_store: its function is its own (its region is
  /// part of the code).
  FusedCacheStoreOp fused;

  using Key = std::tuple<unsigned, Type, Type, Type, Type, Type, Operation *>;
  Key key() const {
    unsigned flags = isStore | quantized << 1 | unsigned(quotient[0]) << 2 |
                     unsigned(quotient[1]) << 4 | unsigned(perHead) << 6;
    return {flags,
            types[0],
            types[1],
            types[2],
            types[3],
            types[4],
            static_cast<Operation *>(fused)};
  }
  MemRefType actType() const { return isStore ? types[1] : types[3]; }
  MemRefType cacheType() const { return isStore ? types[3] : types[1]; }
  /// KV heads of the per-head scales (the static head dimension).
  int64_t numHeads() const { return actType().getDimSize(1); }
};

/// A cache op seen through its signature, plus the values it calls with.
struct CacheOpInfo {
  CacheSignature signature;
  /// The op's memref operands, in the order of CacheSignature::types.
  std::array<Value, 5> operands;
  /// The layer's K and V scales (per-head: the max over the heads).
  float scales[2] = {1.0f, 1.0f};
  /// Per-head: the K and V scale of each KV head; empty otherwise.
  SmallVector<float> headScales[2];
};
} // namespace

/// Whether the KV head dimension of `type` ([T, H, D] activations or
/// [NB, BS, H, D] caches) is static and `numHeads`.
static bool hasHeadCount(MemRefType type, int64_t numHeads) {
  return type.getDimSize(type.getRank() - 2) == numHeads;
}

/// The signature and call operands of `op`; failure if it cannot be
/// lowered (see checkCacheOpsLowerable). Looks up the layer in `symbols`.
/// Leaves `quotient` at Division: proving more is the caller's.
static FailureOr<CacheOpInfo> describeCacheOp(CacheOpInterface op,
                                              SymbolTableCollection &symbols) {
  CacheOpInfo info;
  CacheSignature &sig = info.signature;
  if (!isa<MemRefType>(op.getCacheType()))
    return failure(); // the tensor form: bufferize first
  sig.isStore = op.isStore();
  LayerOp layer = lookupLayer(op, symbols);
  info.operands = op.getStreamOperands();
  sig.fused = dyn_cast<FusedCacheStoreOp>(op.getOperation());
  for (auto [type, value] : llvm::zip(sig.types, info.operands))
    type = cast<MemRefType>(value ? value.getType()
                                  : Type(op.getActivationType()));
  if (!layer || !layer.getResolvedScalesAttr())
    return failure();
  Type actElem = sig.actType().getElementType();
  if (!isa<Float16Type, BFloat16Type, Float32Type>(actElem))
    return failure();
  ResolvedScalesAttr scales = layer.getResolvedScalesAttr();
  info.scales[0] = scales.getKFloat();
  info.scales[1] = scales.getVFloat();
  sig.quantized = layer.isQuantized();
  // Per-head K and V scales matter only where the cache is quantized (an
  // `auto` cache copies). A per-head q is the attention kernels' business.
  // One head (a tensor-parallel rank with fewer KV heads than ranks) is a
  // per-tensor scale: its value is the max over the heads, the scales
  // above, and the op shares the per-tensor function.
  if (sig.quantized && scales.isPerHead(ScaleKind::K)) {
    if (!hasHeadCount(sig.actType(), scales.getNumHeads()) ||
        !hasHeadCount(sig.cacheType(), scales.getNumHeads()))
      return failure();
    if (scales.getNumHeads() == 1)
      return info;
    sig.perHead = true;
    llvm::append_range(info.headScales[0], scales.getHeads(ScaleKind::K));
    llvm::append_range(info.headScales[1], scales.getHeads(ScaleKind::V));
  }
  return info;
}

/// `type`'s spelling for a symbol name ("bf16", "f8E4M3FN", "i8").
/// The name of the function of `sig` (before uniquing), as
/// docs/KernelABI.md describes it.
static std::string functionName(const CacheSignature &sig) {
  auto size = [](MemRefType type, int64_t dim) -> std::string {
    return type.isDynamicDim(dim) ? "dyn"
                                  : std::to_string(type.getDimSize(dim));
  };
  MemRefType act = sig.actType(), cache = sig.cacheType();
  std::string name = sig.isStore ? "kvq_cache_store_" : "kvq_cache_load_";
  name += getTypeSpelling(sig.types[1].getElementType()) + "_" +
          getTypeSpelling(sig.types[3].getElementType()) + "_" + size(act, 1) +
          "x" + size(act, 2) + "_b" + size(cache, 1);
  auto spelling = [](Quotient quotient) {
    switch (quotient) {
    case Quotient::Division:
      return "divf";
    case Quotient::CorrectedProduct:
      return "fma";
    case Quotient::Product:
      return "mul";
    }
    llvm_unreachable("unknown quotient");
  };
  if (sig.perHead)
    name += "_per_head";
  if (sig.fused)
    name += "_fused";
  auto [k, v] = sig.quotient;
  if (!sig.isStore || !sig.quantized ||
      (k == Quotient::Product && v == Quotient::Product))
    return name;
  if (k == v)
    return name + "_" + spelling(k);
  return name + "_k" + spelling(k) + "_v" + spelling(v);
}

/// Builds the function of `sig` at the end of `module`'s body (named in
/// `symbols`' table of it, uniqued) and returns it.
static func::FuncOp buildCacheFunction(ModuleOp module,
                                       SymbolTableCollection &symbols,
                                       const CacheSignature &sig, Location loc,
                                       const KVQTarget &target,
                                       const KVQCacheLoweringOptions &options) {
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Type f32 = b.getF32Type();
  // A fused store's function takes no K and V sources; the values its
  // region reads follow the caches.
  SmallVector<Value> producerOperands;
  if (sig.fused)
    producerOperands = getFusedStoreOperands(sig.fused);
  SmallVector<Type> argTypes;
  for (auto [i, type] : llvm::enumerate(sig.types))
    if (!sig.fused || (i != 1 && i != 2))
      argTypes.push_back(type);
  for (Value value : producerOperands)
    argTypes.push_back(value.getType());
  // One f32 scale per stream, or a vector of one per KV head.
  Type scaleType = f32;
  if (sig.perHead)
    scaleType = VectorType::get({sig.numHeads()}, f32);
  argTypes.append({scaleType, scaleType});
  auto fn = func::FuncOp::create(b, loc, functionName(sig),
                                 b.getFunctionType(argTypes, {}));
  fn.setPrivate();
  symbols.getSymbolTable(module).insert(fn);
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  // The argument of operand `i` of the signature's five (null: a fused
  // store's source), and of scale `s`.
  auto operandArg = [&](unsigned i) -> Value {
    if (!sig.fused)
      return entry->getArgument(i);
    if (i == 1 || i == 2)
      return nullptr;
    return entry->getArgument(i == 0 ? 0 : i - 2);
  };
  auto scaleArg = [&](int s) {
    return entry->getArgument(argTypes.size() - 2 + s);
  };

  CacheOpPlan plan;
  plan.isStore = sig.isStore;
  plan.quantized = sig.quantized;
  plan.actType = sig.actType();
  plan.cacheType = sig.cacheType();
  plan.slots = operandArg(0);
  if (sig.fused)
    setFusedProducer(plan, sig.fused,
                     entry->getArguments().slice(3, producerOperands.size()));
  // RN(1/s), on the host: an IEEE f32 division, the value the proofs of
  // ScaledDivision.h checked. (Every GPU kernel takes it.)
  // Per-head scales: the same per head (the vector's elements, each with
  // its own IEEE division), so that a head's numerics are exactly those of
  // a per-tensor scale of its value.
  Value one = f32Const(b, loc, f32, 1.0f);
  SmallVector<Value> scalars;
  for (int s = 0; s < 2; ++s) {
    Value arg = scaleArg(s);
    bool divides = sig.quotient[s] == Quotient::Division;
    auto reciprocalOf = [&](Value scale) {
      return !divides || target.isGPU()
                 ? arith::DivFOp::create(b, loc, one, scale).getResult()
                 : Value();
    };
    CacheOpPlan::Stream &stream = plan.streams[s];
    stream.src = operandArg(1 + s);
    stream.dst = operandArg(3 + s);
    stream.quotient = sig.quotient[s];
    if (!sig.perHead) {
      Value reciprocal = reciprocalOf(arg);
      stream.scale = arg;
      stream.reciprocal = divides ? Value() : reciprocal;
      scalars.append({arg, reciprocal});
      continue;
    }
    for (int64_t h = 0; h < sig.numHeads(); ++h) {
      Value scale = vector::ExtractOp::create(b, loc, arg, h);
      Value reciprocal = reciprocalOf(scale);
      stream.headScales.push_back(scale);
      if (!divides)
        stream.headReciprocals.push_back(reciprocal);
      scalars.append({scale, reciprocal});
    }
  }
  if (target.isGPU())
    buildCacheLaunch(b, loc, target, plan, options.threadsPerBlock, scalars);
  else
    buildCacheLoops(b, loc, target, plan);
  func::ReturnOp::create(b, loc);
  return fn;
}

struct KVQCacheFunctions::Impl {
  Impl(const KVQTarget &target, const KVQCacheLoweringOptions &options)
      : target(target), options(options) {}

  const KVQTarget &target;
  KVQCacheLoweringOptions options;
  /// Guards everything below: a frozen pattern set is shared by every
  /// thread that applies it, and the collection fills itself in on use.
  std::mutex mutex;
  SymbolTableCollection symbols;
  DenseMap<std::pair<Operation *, CacheSignature::Key>, func::FuncOp> functions;
};

KVQCacheFunctions::KVQCacheFunctions(const KVQTarget &target,
                                     const KVQCacheLoweringOptions &options)
    : impl(std::make_unique<Impl>(target, options)) {}

KVQCacheFunctions::~KVQCacheFunctions() = default;

/// cacheThresholdBits() of a cache element type (fp8 or i8).
static unsigned thresholdBitsOf(Type cacheElem) {
  auto format = dyn_cast<FloatType>(cacheElem);
  return cacheThresholdBits(format ? &format.getFloatSemantics() : nullptr);
}

/// The cheapest quotient `division` allows that is proven to give the cache
/// bytes of a division by `scale` for every activation of `act` in a cache
/// whose rounding thresholds have `thresholdBits` significant bits.
static Quotient proveQuotient(QuantizeDivision division, float scale, Type act,
                              unsigned thresholdBits) {
  const llvm::fltSemantics &sem = cast<FloatType>(act).getFloatSemantics();
  if (division == QuantizeDivision::Auto &&
      proveReciprocalProduct(scale, sem, thresholdBits))
    return Quotient::Product;
  if (proveReciprocalDivision(scale, sem))
    return Quotient::CorrectedProduct;
  return Quotient::Division;
}

/// The quotient of a stream with per-head `scales`, given `proven`, the
/// quotient proveQuotient() gave each: one quotient serves every head (the
/// kernel is shared), so it must be proven for every head's scale, and the
/// weakest head's is the candidate. Where that is the corrected product,
/// the heads proven for the product alone were not checked for it
/// (proveQuotient stops at the product): they are checked now, and a
/// failure means a division.
static Quotient combineHeadQuotients(ArrayRef<float> scales,
                                     ArrayRef<Quotient> proven, Type act) {
  Quotient weakest = *llvm::min_element(proven);
  if (weakest != Quotient::CorrectedProduct)
    return weakest;
  const llvm::fltSemantics &sem = cast<FloatType>(act).getFloatSemantics();
  for (auto [scale, quotient] : llvm::zip(scales, proven))
    if (quotient == Quotient::Product && !proveReciprocalDivision(scale, sem))
      return Quotient::Division;
  return Quotient::CorrectedProduct;
}

/// The quotient of each stream of `info` (a quantizing store).
static void proveStreams(CacheOpInfo &info, QuantizeDivision division) {
  Type act = info.signature.actType().getElementType();
  unsigned bits = thresholdBitsOf(info.signature.cacheType().getElementType());
  for (int s = 0; s < 2; ++s) {
    if (!info.signature.perHead) {
      info.signature.quotient[s] =
          proveQuotient(division, info.scales[s], act, bits);
      continue;
    }
    SmallVector<Quotient> proven;
    for (float scale : info.headScales[s])
      proven.push_back(proveQuotient(division, scale, act, bits));
    info.signature.quotient[s] =
        combineHeadQuotients(info.headScales[s], proven, act);
  }
}

/// Whether the signature of `info` has a division to prove.
static bool needsProof(const CacheOpInfo &info,
                       const KVQCacheLoweringOptions &options) {
  return info.signature.isStore && info.signature.quantized &&
         options.quantizeDivision != QuantizeDivision::DivF;
}

/// The call for `op`, described by `info` (proven), creating its function
/// in `module` if needed. Under the lock.
static KVQCacheCall callFor(KVQCacheFunctions::Impl &impl, ModuleOp module,
                            Operation *op, const CacheOpInfo &info);

FailureOr<KVQCacheCall> KVQCacheFunctions::lookupOrCreate(Operation *op) {
  auto module = op->getParentOfType<ModuleOp>();
  if (!module)
    return failure();
  auto cacheOp = dyn_cast<CacheOpInterface>(op);
  if (!cacheOp)
    return failure();
  FailureOr<CacheOpInfo> info = [&] {
    std::lock_guard<std::mutex> lock(impl->mutex);
    return describeCacheOp(cacheOp, impl->symbols);
  }();
  if (failed(info))
    return failure();
  if (needsProof(*info, impl->options))
    proveStreams(*info, impl->options.quantizeDivision);
  std::lock_guard<std::mutex> lock(impl->mutex);
  return callFor(*impl, module, op, *info);
}

static KVQCacheCall callFor(KVQCacheFunctions::Impl &impl, ModuleOp module,
                            Operation *op, const CacheOpInfo &info) {
  func::FuncOp &fn = impl.functions[{module, info.signature.key()}];
  if (!fn)
    fn = buildCacheFunction(module, impl.symbols, info.signature, op->getLoc(),
                            impl.target, impl.options);
  KVQCacheCall call;
  call.callee = fn;
  for (Value operand : info.operands)
    if (operand) // not the sources of a fused store
      call.operands.push_back(operand);
  if (info.signature.fused)
    llvm::append_range(call.operands,
                       getFusedStoreOperands(info.signature.fused));
  call.scales[0] = info.scales[0];
  call.scales[1] = info.scales[1];
  call.headScales[0] = info.headScales[0];
  call.headScales[1] = info.headScales[1];
  return call;
}

void KVQCacheFunctions::replaceWithCall(RewriterBase &rewriter, Operation *op,
                                        const KVQCacheCall &call,
                                        ScaleConstants *constants) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  Location loc = op->getLoc();
  SmallVector<Value, 7> operands(call.operands.begin(), call.operands.end());
  if (!call.headScales[0].empty()) {
    // Per-head: a vector constant of each stream's scales.
    for (const SmallVector<float> &heads : call.headScales) {
      auto type =
          VectorType::get({int64_t(heads.size())}, rewriter.getF32Type());
      operands.push_back(arith::ConstantOp::create(
          rewriter, loc, DenseElementsAttr::get(type, ArrayRef<float>(heads))));
    }
    func::CallOp::create(rewriter, loc, call.callee, operands);
    rewriter.eraseOp(op);
    return;
  }
  for (float scale : call.scales) {
    Value *cached = nullptr;
    if (constants) {
      cached = &(*constants)[{op->getBlock(), llvm::bit_cast<uint32_t>(scale)}];
      if (*cached) {
        operands.push_back(*cached);
        continue;
      }
    }
    Value value = arith::ConstantOp::create(rewriter, loc,
                                            rewriter.getF32FloatAttr(scale));
    if (cached)
      *cached = value;
    operands.push_back(value);
  }
  func::CallOp::create(rewriter, loc, call.callee, operands);
  rewriter.eraseOp(op);
}

LogicalResult KVQCacheFunctions::replaceWithCall(RewriterBase &rewriter,
                                                 Operation *op) {
  FailureOr<KVQCacheCall> call = lookupOrCreate(op);
  if (failed(call))
    return failure();
  replaceWithCall(rewriter, op, *call);
  return success();
}

SmallVector<std::pair<Operation *, KVQCacheCall>>
KVQCacheFunctions::createAll(Operation *root) {
  // Describe every op (symbol lookups: one thread), prove the distinct
  // scales of the stores on the thread pool (the expensive part: 20,000
  // bf16 scales take 50 ms on one thread), then create the functions (one
  // thread again).
  struct Entry {
    Operation *op;
    ModuleOp module;
    CacheOpInfo info;
  };
  std::vector<Entry> entries;
  {
    std::lock_guard<std::mutex> lock(impl->mutex);
    root->walk([&](CacheOpInterface op) {
      auto module = op->getParentOfType<ModuleOp>();
      if (!module)
        return;
      FailureOr<CacheOpInfo> info = describeCacheOp(op, impl->symbols);
      if (succeeded(info))
        entries.push_back({op, module, *info});
    });
  }
  // Each distinct (scale, activation type, cache thresholds) once: the
  // cache ops of a layer share its scales. (A sorted vector: a hash map of
  // 20,000 keys cost more than the proofs.)
  using ProofKey = std::tuple<uint32_t, const void *, unsigned>;
  auto keyOf = [](float scale, const CacheSignature &sig) {
    return ProofKey(llvm::bit_cast<uint32_t>(scale),
                    sig.actType().getElementType().getAsOpaquePointer(),
                    thresholdBitsOf(sig.cacheType().getElementType()));
  };
  // The scales a stream must be proven for: its one scale, or every
  // head's.
  auto streamScales = [](const CacheOpInfo &info, int s) -> ArrayRef<float> {
    if (info.signature.perHead)
      return info.headScales[s];
    return info.scales[s];
  };
  std::vector<ProofKey> keys;
  for (Entry &entry : entries)
    if (needsProof(entry.info, impl->options))
      for (int s = 0; s < 2; ++s)
        for (float scale : streamScales(entry.info, s))
          keys.push_back(keyOf(scale, entry.info.signature));
  llvm::sort(keys);
  keys.erase(llvm::unique(keys), keys.end());
  std::vector<Quotient> proven(keys.size());
  parallelFor(root->getContext(), 0, keys.size(), [&](size_t i) {
    auto [scaleBits, act, bits] = keys[i];
    proven[i] = proveQuotient(impl->options.quantizeDivision,
                              llvm::bit_cast<float>(scaleBits),
                              Type::getFromOpaquePointer(act), bits);
  });
  for (Entry &entry : entries) {
    if (!needsProof(entry.info, impl->options))
      continue;
    CacheSignature &sig = entry.info.signature;
    for (int s = 0; s < 2; ++s) {
      SmallVector<Quotient> quotients;
      for (float scale : streamScales(entry.info, s))
        quotients.push_back(
            proven[llvm::lower_bound(keys, keyOf(scale, sig)) - keys.begin()]);
      sig.quotient[s] =
          sig.perHead
              ? combineHeadQuotients(streamScales(entry.info, s), quotients,
                                     sig.actType().getElementType())
              : quotients.front();
    }
  }
  SmallVector<std::pair<Operation *, KVQCacheCall>> calls;
  calls.reserve(entries.size());
  std::lock_guard<std::mutex> lock(impl->mutex);
  for (Entry &entry : entries)
    calls.emplace_back(entry.op,
                       callFor(*impl, entry.module, entry.op, entry.info));
  return calls;
}

std::optional<QuantizeDivision>
mlir::kvq::parseQuantizeDivision(StringRef name) {
  return llvm::StringSwitch<std::optional<QuantizeDivision>>(name)
      .Case("auto", QuantizeDivision::Auto)
      .Case("fma", QuantizeDivision::FMA)
      .Case("divf", QuantizeDivision::DivF)
      .Default(std::nullopt);
}
