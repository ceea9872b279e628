//===- KVQOps.cpp - kvq operations ----------------------------------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace mlir::kvq;

/// `cache(fp8)`: the dtype as a bare keyword inside the op.
static ParseResult parseKVCacheDtype(OpAsmParser &parser,
                                     KVCacheDtypeAttr &attr) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<KVCacheDtype> dtype = symbolizeKVCacheDtype(keyword);
  if (!dtype)
    return parser.emitError(loc, "unknown kv cache dtype '")
           << keyword << "', expected auto, fp8, fp8_e4m3, fp8_e5m2 or int8";
  attr = KVCacheDtypeAttr::get(parser.getContext(), *dtype);
  return success();
}

static void printKVCacheDtype(OpAsmPrinter &printer, Operation *,
                              KVCacheDtypeAttr attr) {
  printer << stringifyKVCacheDtype(attr.getValue());
}

/// `method(compressed_tensors)`: the method as a bare keyword inside the op.
static ParseResult parseScaleMethod(OpAsmParser &parser,
                                    ScaleMethodAttr &attr) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<ScaleMethod> method = symbolizeScaleMethod(keyword);
  if (!method)
    return parser.emitError(loc, "unknown scale method '")
           << keyword << "', expected base or compressed_tensors";
  attr = ScaleMethodAttr::get(parser.getContext(), *method);
  return success();
}

static void printScaleMethod(OpAsmPrinter &printer, Operation *,
                             ScaleMethodAttr attr) {
  printer << stringifyScaleMethod(attr.getValue());
}

/// `precision(fp8_qk)`, absent for the default `dequantized`.
static ParseResult parseAttentionPrecision(OpAsmParser &parser,
                                           AttentionPrecisionAttr &attr) {
  AttentionPrecision precision = AttentionPrecision::Dequantized;
  if (succeeded(parser.parseOptionalKeyword("precision"))) {
    SMLoc loc = parser.getCurrentLocation();
    StringRef keyword;
    if (parser.parseLParen() || parser.parseKeyword(&keyword))
      return failure();
    std::optional<AttentionPrecision> parsed =
        symbolizeAttentionPrecision(keyword);
    if (!parsed)
      return parser.emitError(loc, "unknown attention precision '")
             << keyword << "', expected dequantized, fp8_qk or fp8_qk_pv";
    if (parser.parseRParen())
      return failure();
    precision = *parsed;
  }
  attr = AttentionPrecisionAttr::get(parser.getContext(), precision);
  return success();
}

static void printAttentionPrecision(OpAsmPrinter &printer, Operation *,
                                    AttentionPrecisionAttr attr) {
  if (attr.getValue() != AttentionPrecision::Dequantized)
    printer << "precision(" << stringifyAttentionPrecision(attr.getValue())
            << ")";
}

#include "kvq/Dialect/KVQ/IR/KVQOpInterfaces.cpp.inc"

#define GET_OP_CLASSES
#include "kvq/Dialect/KVQ/IR/KVQOps.cpp.inc"

//===----------------------------------------------------------------------===//
// LayerOp
//===----------------------------------------------------------------------===//

LogicalResult LayerOp::verify() {
  if (getCheckpointScales() && getResolvedScales())
    return emitOpError("has both raw 'checkpoint' scales and 'resolved' "
                       "scales; a layer carries one or the other");
  if (std::optional<StringRef> prefix = getPrefix(); prefix && prefix->empty())
    return emitOpError("expects a non-empty checkpoint prefix");
  if (DictionaryAttr tensors = getCheckpointTensorsAttr()) {
    for (NamedAttribute entry : tensors) {
      if (!symbolizeScaleKind(entry.getName().strref()))
        return emitOpError("checkpoint_tensors: unknown scale '")
               << entry.getName().strref() << "', expected k, v, q or prob";
      if (!isa<StringAttr>(entry.getValue()))
        return emitOpError("checkpoint_tensors: expects a tensor name string "
                           "for scale '")
               << entry.getName().strref() << "', got " << entry.getValue();
    }
  }
  return success();
}

StringRef LayerOp::getCheckpointTensor(ScaleKind kind) {
  if (DictionaryAttr tensors = getCheckpointTensorsAttr())
    if (auto name = tensors.getAs<StringAttr>(stringifyScaleKind(kind)))
      return name.getValue();
  return {};
}

//===----------------------------------------------------------------------===//
// Cache ops
//===----------------------------------------------------------------------===//

/// Checks the shapes shared by the store and the load: activations
/// [T, H, D], caches [B, S, H, D], slots [T]; dynamic sizes match anything.
/// (Key and value types are equal by the ops' AllTypesMatch traits.)
static LogicalResult verifyCacheShapes(Operation *op, StringRef actName,
                                       ShapedType act, ShapedType cache,
                                       ShapedType slots) {
  if (act.getRank() != 3)
    return op->emitOpError("expects ")
           << actName
           << " of rank 3 [num_tokens, num_kv_heads, head_size], got " << act;
  if (!isa<FloatType>(act.getElementType()))
    return op->emitOpError("expects ")
           << actName << " of a float element type, got "
           << act.getElementType();
  if (cache.getRank() != 4)
    return op->emitOpError("expects caches of rank 4 [num_blocks, "
                           "block_size, num_kv_heads, head_size], got ")
           << cache;
  auto agree = [](int64_t a, int64_t b) {
    return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
  };
  if (!agree(act.getDimSize(0), slots.getDimSize(0)))
    return op->emitOpError("expects one slot per token: ")
           << actName << " have " << act.getDimSize(0)
           << " tokens, slot_mapping has " << slots.getDimSize(0);
  if (!agree(act.getDimSize(1), cache.getDimSize(2)))
    return op->emitOpError("expects the same num_kv_heads in ")
           << actName << " (" << act.getDimSize(1) << ") and caches ("
           << cache.getDimSize(2) << ")";
  if (!agree(act.getDimSize(2), cache.getDimSize(3)))
    return op->emitOpError("expects the same head_size in ")
           << actName << " (" << act.getDimSize(2) << ") and caches ("
           << cache.getDimSize(3) << ")";
  if (cache.getDimSize(1) == 0)
    return op->emitOpError("expects a non-zero block_size");
  return success();
}

/// Resolves `layer` and checks the cache element type against its dtype.
static LogicalResult verifyLayerUse(Operation *op, FlatSymbolRefAttr layerRef,
                                    SymbolTableCollection &symbolTable,
                                    ShapedType cache, ShapedType act) {
  Operation *symbol =
      symbolTable.lookupNearestSymbolFrom(op, layerRef.getAttr());
  if (!symbol)
    return op->emitOpError("references unknown layer ") << layerRef;
  auto layer = dyn_cast<LayerOp>(symbol);
  if (!layer)
    return op->emitOpError("references ")
           << layerRef << ", which is a '" << symbol->getName()
           << "', not a kvq.layer";
  if (std::optional<std::string> error =
          checkCacheElementType(layer.getKvCacheDtype(), cache.getElementType(),
                                act.getElementType()))
    return op->emitOpError() << *error << " (layer " << layerRef << ")";
  // Per-head scales are one per KV head of the cache (dim 2).
  if (ResolvedScalesAttr resolved = layer.getResolvedScalesAttr();
      resolved && resolved.isPerHead() && cache.getRank() == 4 &&
      !cache.isDynamicDim(2) && cache.getDimSize(2) != resolved.getNumHeads())
    return op->emitOpError() << "expects a cache of " << resolved.getNumHeads()
                             << " KV heads, one per per-head scale of layer "
                             << layerRef << ", got " << cache.getDimSize(2);
  return success();
}

LayerOp mlir::kvq::lookupLayer(CacheOpInterface op,
                               SymbolTableCollection &symbols) {
  return symbols.lookupNearestSymbolFrom<LayerOp>(op, op.getLayerAttr());
}

/// The memref form or the tensor form: every operand of `op` a memref, or
/// every one a ranked tensor.
/// (The attention op's workspace is a memref in both forms, and is not
/// passed here.)
static LogicalResult verifyOneForm(Operation *op, ValueRange operands) {
  bool tensors = isa<TensorType>(op->getOperand(0).getType());
  for (Value operand : operands)
    if (isa<TensorType>(operand.getType()) != tensors)
      return op->emitOpError("expects all operands to be memrefs (the memref "
                             "form) or all ranked tensors (the tensor form), "
                             "got ")
             << operand.getType() << " with " << op->getOperand(0).getType();
  return success();
}

/// Reads of the memref inputs, writes of the memref destinations (the
/// tensor form has none: its caches and outputs are values).
static void getCacheOpEffects(
    DestinationStyleOpInterface op,
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  for (OpOperand &operand : op->getOpOperands()) {
    if (!isa<MemRefType>(operand.get().getType()))
      continue;
    if (op.isDpsInit(&operand))
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
    else
      effects.emplace_back(MemoryEffects::Read::get(), &operand,
                           SideEffects::DefaultResource::get());
  }
}

LogicalResult CacheStoreOp::verify() {
  if (failed(verifyOneForm(*this, getOperands())))
    return failure();
  return verifyCacheShapes(*this, "keys and values", getActivationType(),
                           getCacheType(),
                           cast<ShapedType>(getSlotMapping().getType()));
}

LogicalResult
CacheStoreOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyLayerUse(*this, getLayerAttr(), symbolTable, getCacheType(),
                        getActivationType());
}

void CacheStoreOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  getCacheOpEffects(*this, effects);
}

LogicalResult CacheLoadOp::verify() {
  if (failed(verifyOneForm(*this, getOperands())))
    return failure();
  return verifyCacheShapes(*this, "outputs", getActivationType(),
                           getCacheType(),
                           cast<ShapedType>(getSlotMapping().getType()));
}

LogicalResult
CacheLoadOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyLayerUse(*this, getLayerAttr(), symbolTable, getCacheType(),
                        getActivationType());
}

void CacheLoadOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  getCacheOpEffects(*this, effects);
}

//===----------------------------------------------------------------------===//
// FusedCacheStoreOp
//===----------------------------------------------------------------------===//

YieldOp FusedCacheStoreOp::getYield() {
  Region &body = getBody();
  if (body.empty() || body.front().empty())
    return nullptr;
  return dyn_cast<YieldOp>(body.front().back());
}

ShapedType FusedCacheStoreOp::getActivationType() {
  YieldOp yield = getYield();
  if (!yield || yield.getValues().empty())
    return nullptr;
  Type elem = yield.getValues().front().getType();
  auto cache = cast<ShapedType>(getKeyCache().getType());
  bool rank4 = cache.hasRank() && cache.getRank() == 4;
  SmallVector<int64_t, 3> shape = {
      cast<ShapedType>(getSlotMapping().getType()).getDimSize(0),
      rank4 ? cache.getDimSize(2) : ShapedType::kDynamic,
      rank4 ? cache.getDimSize(3) : ShapedType::kDynamic};
  if (isa<MemRefType>(cache))
    return MemRefType::get(shape, elem);
  return RankedTensorType::get(shape, elem);
}

LogicalResult FusedCacheStoreOp::verify() {
  return verifyOneForm(*this, getOperands());
}

LogicalResult FusedCacheStoreOp::verifyRegions() {
  Block &body = getBody().front();
  if (body.getNumArguments() != 3 ||
      !llvm::all_of(body.getArgumentTypes(),
                    [](Type type) { return type.isIndex(); })) {
    InFlightDiagnostic diag =
        emitOpError("expects the region to take the token, head and element "
                    "indices (index, index, index), got (");
    llvm::interleaveComma(body.getArgumentTypes(), diag);
    return diag << ")";
  }
  YieldOp yield = getYield();
  if (!yield)
    return emitOpError("expects the region to end in kvq.yield, got '")
           << (body.empty() ? StringRef("nothing")
                            : body.back().getName().getStringRef())
           << "'";
  if (yield.getValues().size() != 2)
    return emitOpError("expects the region to yield the key and the value, "
                       "got ")
           << yield.getValues().size() << " value(s)";
  Type key = yield.getValues()[0].getType();
  Type value = yield.getValues()[1].getType();
  if (key != value)
    return emitOpError("expects the key and the value to have the same "
                       "type, got ")
           << key << " and " << value;
  bool memrefForm = isa<MemRefType>(getKeyCache().getType());
  WalkResult walk = body.walk([&](Operation *op) {
    auto effects = dyn_cast<MemoryEffectOpInterface>(op);
    if (effects && (effects.hasEffect<MemoryEffects::Write>() ||
                    effects.hasEffect<MemoryEffects::Allocate>() ||
                    effects.hasEffect<MemoryEffects::Free>())) {
      emitOpError("expects the region to only read memory, but '")
          << op->getName() << "' writes, allocates or frees it";
      return WalkResult::interrupt();
    }
    if (memrefForm) {
      for (Value value : op->getOperands()) {
        if (!isa<TensorType>(value.getType()))
          continue;
        emitOpError("expects no tensor in the region of the memref form "
                    "(bufferize the region with the op), got ")
            << value.getType() << " used by '" << op->getName() << "'";
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  // The shapes, with the yielded type as the activations' (the region is
  // verified now).
  return verifyCacheShapes(*this, "keys and values", getActivationType(),
                           getCacheType(),
                           cast<ShapedType>(getSlotMapping().getType()));
}

LogicalResult
FusedCacheStoreOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyLayerUse(*this, getLayerAttr(), symbolTable, getCacheType(),
                        getActivationType());
}

void FusedCacheStoreOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // The region's reads are the op's own (RecursiveMemoryEffects).
  getCacheOpEffects(*this, effects);
}

//===----------------------------------------------------------------------===//
// PagedAttentionOp
//===----------------------------------------------------------------------===//

/// Size `dim` of `type`, "?" when dynamic.
static std::string dimText(ShapedType type, unsigned dim) {
  return type.isDynamicDim(dim) ? "?" : std::to_string(type.getDimSize(dim));
}

LogicalResult PagedAttentionOp::verify() {
  if (failed(verifyOneForm(*this,
                           getOperands().drop_back(getWorkspace() ? 1 : 0))))
    return failure();
  if (Value workspace = getWorkspace();
      workspace &&
      !cast<MemRefType>(workspace.getType()).getLayout().isIdentity())
    return emitOpError("expects a contiguous workspace, got ")
           << workspace.getType();
  auto q = cast<ShapedType>(getQuery().getType());
  auto cache = cast<ShapedType>(getKeyCache().getType());
  auto tables = cast<ShapedType>(getBlockTables().getType());
  auto lens = cast<ShapedType>(getContextLens().getType());
  auto agree = [](int64_t a, int64_t b) {
    return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
  };
  if (q.getRank() != 3)
    return emitOpError("expects queries of rank 3 [num_seqs, num_heads, "
                       "head_size], got ")
           << q;
  if (!isa<Float16Type, BFloat16Type, Float32Type>(q.getElementType()))
    return emitOpError("expects queries of element type bf16, f16 or f32, "
                       "got ")
           << q.getElementType();
  if (cache.getRank() != 4)
    return emitOpError("expects caches of rank 4 [num_blocks, block_size, "
                       "num_kv_heads, head_size], got ")
           << cache;
  if (!agree(q.getDimSize(0), tables.getDimSize(0)) ||
      !agree(q.getDimSize(0), lens.getDimSize(0)))
    return emitOpError("expects one block table row and one context length "
                       "per sequence: queries have ")
           << dimText(q, 0) << " sequences, block_tables " << dimText(tables, 0)
           << ", context_lens " << dimText(lens, 0);
  if (!agree(q.getDimSize(2), cache.getDimSize(3)))
    return emitOpError("expects the same head_size in queries (")
           << q.getDimSize(2) << ") and caches (" << cache.getDimSize(3) << ")";
  int64_t heads = q.getDimSize(1), kvHeads = cache.getDimSize(2);
  if (kvHeads == 0 || cache.getDimSize(1) == 0 || q.getDimSize(2) == 0)
    return emitOpError("expects non-zero num_kv_heads, block_size and "
                       "head_size, got caches ")
           << cache << " and queries " << q;
  if (!ShapedType::isDynamic(heads) && !ShapedType::isDynamic(kvHeads) &&
      heads % kvHeads != 0)
    return emitOpError("expects num_heads (")
           << heads << ") to be a multiple of num_kv_heads (" << kvHeads << ")";
  if (FloatAttr scale = getScaleAttr();
      scale &&
      (!scale.getValue().isFiniteNonZero() || scale.getValue().isNegative()))
    return emitOpError("expects a finite positive softmax scale, got ")
           << scale.getValue().convertToFloat();
  Type elem = cache.getElementType();
  if (getPrecision() != AttentionPrecision::Dequantized &&
      !(isa<FloatType>(elem) && elem.getIntOrFloatBitWidth() == 8))
    return emitOpError("precision '")
           << stringifyAttentionPrecision(getPrecision())
           << "' computes on fp8 values and needs an fp8 cache, got " << elem;
  return success();
}

LogicalResult
PagedAttentionOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  return verifyLayerUse(*this, getLayerAttr(), symbolTable,
                        cast<ShapedType>(getKeyCache().getType()),
                        cast<ShapedType>(getQuery().getType()));
}

void PagedAttentionOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  getCacheOpEffects(*this, effects);
  // The workspace is scratch: written (and read back) by the kernels.
  if (getWorkspace())
    effects.emplace_back(MemoryEffects::Write::get(), &getWorkspaceMutable()[0],
                         SideEffects::DefaultResource::get());
}

std::optional<float> PagedAttentionOp::getSoftmaxScale() {
  if (FloatAttr scale = getScaleAttr())
    return scale.getValue().convertToFloat();
  int64_t headSize = cast<ShapedType>(getQuery().getType()).getDimSize(2);
  if (ShapedType::isDynamic(headSize))
    return std::nullopt;
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(headSize)));
}
