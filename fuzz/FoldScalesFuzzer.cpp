//===- FoldScalesFuzzer.cpp - libFuzzer target for kvq-fold-scales --------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Decodes the input bytes into a module of a few kvq.layer ops (random cache
// dtype, calculate_kv_scales, prefix, checkpoint_tensors, and each of the raw
// q/k/v/prob scales absent or a value from raw bits: NaN, inf, 0, -0,
// negative, subnormal, f64 beyond the f32 range, per-tensor or per-head, in
// f64, f32, f16, bf16 or f8E4M3FN), optionally a gpu.module target and a
// cache op, and runs kvq-fold-scales with options taken from the input.
//
// The invariant: the pass either fails with at least one error diagnostic,
// or succeeds without any error, leaving a valid module in which every layer
// has resolved scales that are finite and > 0 and no raw scales or
// checkpoint_tensors remain. Anything else traps, after printing the module
// before the pass and the diagnostics. With KVQ_FUZZ_DEBUG set, every input
// prints them (`KVQ_FUZZ_DEBUG=1 bin/KVQFoldScalesFuzzer <file>`).
//
// Input layout (missing bytes read as 0):
//   byte 0   options: bits 0-1 fp8-format (auto, ocp, fnuz, auto), bit 2
//            missing-scales=error, bit 3 q-fallback=k, bits 4-5 model-dtype
//            (none, bf16, f16, none), bit 6 warn-once, bit 7 summary
//   byte 1   bits 0-2 GPU targets (none, sm_90, gfx942, gfx950,
//            gfx942 + sm_90, a gpu.module without targets, none, none);
//            bit 3 add a kvq.cache_store on layer 0; bit 4 its cache
//            element type is the FNUZ variant
//   byte 2   number of layers - 1 (mod 4)
//   per layer: a flags byte (dtype mod 5 in bits 0-2, bit 3
//            calculate_kv_scales, bit 4 prefix, bit 5 checkpoint_tensors,
//            bit 6 already resolved, bit 7 method(compressed_tensors)),
//            then for q, k, v, prob a kind byte
//            and its payload (see decodeScale)
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQDialect.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace mlir;
using namespace mlir::kvq;

namespace {
/// Reads the input front to back; past the end every read is 0.
struct Reader {
  const uint8_t *data;
  size_t size;
  size_t pos = 0;

  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  uint64_t bits(unsigned bytes) {
    uint64_t value = 0;
    for (unsigned i = 0; i < bytes; ++i)
      value |= uint64_t(byte()) << (8 * i);
    return value;
  }
};

/// Values that sit on the rules' edges, as doubles (the indices are used by
/// fuzz/gen_fold_scales_corpus.py).
const double kSpecials[] = {
    0.0,                    // 0: not > 0, not absent
    -0.0,                   // 1
    -1.0,                   // 2: vLLM's "absent" sentinel
    -0.5,                   // 3
    __builtin_nan(""),      // 4
    __builtin_inf(),        // 5
    -__builtin_inf(),       // 6
    1.0,                    // 7: the unit-scale warnings
    0.5,                    // 8: doubled to 1.0 on FNUZ
    448.0,                  // 9: f8E4M3FN's max
    1e-45,                  // 10: an f32 subnormal
    1e-39,                  // 11: an f32 subnormal
    1e-300,                 // 12: underflows f32
    1e39,                   // 13: overflows f32
    3.4028234663852886e38,  // 14: FLT_MAX, x2 overflows f32
    1.7976931348623157e308, // 15: DBL_MAX, x2 overflows f64
    40000.0,                // 16: x2 overflows f16
    0.0123456789,           // 17: rounds in bf16 and f16
};

/// A float attribute of \p type from a double (rounded to nearest even).
FloatAttr floatAttr(FloatType type, double value) {
  APFloat f(value);
  bool lost;
  f.convert(type.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
  return FloatAttr::get(type, f);
}

/// One raw scale: absent, or a per-tensor or per-head value. Kind byte k:
///   k % 10 = 0, 1  absent
///            2     f32 from 4 raw bytes
///            3     f64 from 8 raw bytes
///            4, 5  f16 / bf16 from 2 raw bytes
///            6     f8E4M3FN from 1 raw byte
///            7     a special value (next byte) as f32 (k < 128) or f64
///            8     per-head f32: 1 + (k / 10) % 8 values from raw bits,
///                  shape [n], [n, 1] or [1, n, 1] (next byte)
///            9     per-head of specials, f16
Attribute decodeScale(Reader &in, MLIRContext *ctx) {
  Builder b(ctx);
  uint8_t kind = in.byte();
  auto special = [&] {
    return kSpecials[in.byte() % (sizeof(kSpecials) / sizeof(double))];
  };
  auto fromBits = [&](const llvm::fltSemantics &semantics, unsigned bytes) {
    return APFloat(semantics, APInt(bytes * 8, in.bits(bytes)));
  };
  auto perHead = [&](FloatType type, auto value) -> Attribute {
    unsigned n = 1 + (kind / 10) % 8;
    SmallVector<int64_t> shape;
    switch (in.byte() % 3) {
    case 0:
      shape = {n};
      break;
    case 1:
      shape = {n, 1};
      break;
    default:
      shape = {1, n, 1};
      break;
    }
    SmallVector<APFloat> values;
    for (unsigned i = 0; i < n; ++i)
      values.push_back(value());
    return DenseElementsAttr::get(RankedTensorType::get(shape, type), values);
  };
  switch (kind % 10) {
  case 2:
    return FloatAttr::get(b.getF32Type(), fromBits(APFloat::IEEEsingle(), 4));
  case 3:
    return FloatAttr::get(b.getF64Type(), fromBits(APFloat::IEEEdouble(), 8));
  case 4:
    return FloatAttr::get(b.getF16Type(), fromBits(APFloat::IEEEhalf(), 2));
  case 5:
    return FloatAttr::get(b.getBF16Type(), fromBits(APFloat::BFloat(), 2));
  case 6:
    return FloatAttr::get(b.getType<Float8E4M3FNType>(),
                          fromBits(APFloat::Float8E4M3FN(), 1));
  case 7:
    return floatAttr(kind < 128 ? b.getF32Type() : b.getF64Type(), special());
  case 8:
    return perHead(b.getF32Type(),
                   [&] { return fromBits(APFloat::IEEEsingle(), 4); });
  case 9:
    return perHead(b.getF16Type(), [&] {
      return floatAttr(b.getF16Type(), special()).getValue();
    });
  default:
    return nullptr;
  }
}

/// The cache element type the verifier accepts for \p dtype (activations
/// are bf16), in the FN (OCP) or FNUZ variant.
const char *cacheElementType(KVCacheDtype dtype, bool fnuz) {
  switch (dtype) {
  case KVCacheDtype::Auto:
    return "bf16";
  case KVCacheDtype::Fp8:
  case KVCacheDtype::Fp8E4M3:
    return fnuz ? "f8E4M3FNUZ" : "f8E4M3FN";
  case KVCacheDtype::Fp8E5M2:
    return fnuz ? "f8E5M2FNUZ" : "f8E5M2";
  case KVCacheDtype::Int8:
    return "i8";
  }
  return "i8";
}

/// Appends the ops of \p text to \p module (the GPU targets and the cache
/// op's function are written as text: building them would need the GPU,
/// NVVM and ROCDL headers, which triple this file's compile time).
void appendText(ModuleOp module, llvm::StringRef text) {
  ParserConfig config(module.getContext(), /*verifyAfterParse=*/false);
  if (failed(parseSourceString(text, module.getBody(), config)))
    __builtin_trap(); // the texts below are fixed and valid
}

[[noreturn]] void fail(llvm::StringRef what, const std::string &before,
                       const std::string &diagnostics, ModuleOp after) {
  llvm::errs() << "kvq fold-scales fuzzer: " << what
               << "\n--- module before the pass\n"
               << before << "\n--- diagnostics\n"
               << diagnostics << "\n--- module after the pass\n";
  after->print(llvm::errs(), OpPrintingFlags().assumeVerified());
  llvm::errs() << "\n";
  llvm::errs().flush();
  __builtin_trap();
}
} // namespace

/// One context for every input: loading the GPU dialects takes ~20 ms, 3x
/// the rest of a run. Only uniqued attributes and types outlive an input,
/// and those do not change what the pass does.
static MLIRContext &getContext() {
  static MLIRContext *context = [] {
    DialectRegistry registry;
    registry.insert<KVQDialect>();
    registerAllDialects(registry); // loaded only when the texts use them
    auto *ctx = new MLIRContext(registry, MLIRContext::Threading::DISABLED);
    ctx->loadDialect<KVQDialect>();
    return ctx;
  }();
  return *context;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &context = getContext();
  Reader in{data, size};
  OpBuilder b(&context);
  Location loc = b.getUnknownLoc();

  // Options.
  uint8_t optionBits = in.byte();
  KVQFoldScalesOptions options;
  static const char *const formats[] = {"auto", "ocp", "fnuz", "auto"};
  static const char *const dtypes[] = {"none", "bf16", "f16", "none"};
  options.fp8Format = formats[optionBits & 3];
  options.missingScales = optionBits & 4 ? "error" : "warning";
  options.qFallback = optionBits & 8 ? "k" : "seed";
  options.modelDtype = dtypes[(optionBits >> 4) & 3];
  options.warnOnce = optionBits & 64;
  options.summary = optionBits & 128;

  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());

  // GPU targets.
  uint8_t targetBits = in.byte();
  static const char *const targets[] = {
      nullptr,
      "gpu.module @kernels [#nvvm.target<chip = \"sm_90\">] {}",
      "gpu.module @kernels [#rocdl.target<chip = \"gfx942\">] {}",
      "gpu.module @kernels [#rocdl.target<chip = \"gfx950\">] {}",
      "gpu.module @kernels [#rocdl.target<chip = \"gfx942\">, "
      "#nvvm.target<chip = \"sm_90\">] {}",
      "gpu.module @kernels {}",
      nullptr,
      nullptr,
  };
  if (const char *text = targets[targetBits & 7])
    appendText(*module, text);
  b.setInsertionPointToEnd(module->getBody());

  // Layers.
  unsigned numLayers = 1 + in.byte() % 4;
  SmallVector<LayerOp> layers;
  for (unsigned i = 0; i < numLayers; ++i) {
    uint8_t flags = in.byte();
    auto dtype = static_cast<KVCacheDtype>((flags & 7) % 5);
    std::string name = "l" + std::to_string(i);
    StringAttr prefix =
        flags & 16 ? b.getStringAttr("model.layers." + std::to_string(i))
                   : StringAttr();
    ScalesAttr raw;
    ResolvedScalesAttr resolved;
    DictionaryAttr tensors;
    if (flags & 64) {
      resolved = ResolvedScalesAttr::get(
          &context, 0.5f, ScaleRule::Checkpoint, 0.25f, ScaleRule::Checkpoint,
          1.0f, ScaleRule::Default, 1.0f, ScaleRule::Default);
    } else {
      Attribute scales[4];
      SmallVector<NamedAttribute> names;
      for (ScaleKind kind : kScaleKinds) {
        unsigned f = static_cast<unsigned>(kind);
        StringRef field = stringifyScaleKind(kind);
        scales[f] = decodeScale(in, &context);
        if (scales[f] && (flags & 32))
          names.push_back(b.getNamedAttr(
              field,
              b.getStringAttr(name + ".self_attn." + field.str() + "_scale")));
      }
      if (scales[0] || scales[1] || scales[2] || scales[3])
        raw = ScalesAttr::get(&context, scales[0], scales[1], scales[2],
                              scales[3]);
      if (!names.empty())
        tensors = b.getDictionaryAttr(names);
    }
    ScaleMethodAttr method =
        flags & 128
            ? ScaleMethodAttr::get(&context, ScaleMethod::CompressedTensors)
            : ScaleMethodAttr();
    layers.push_back(LayerOp::create(b, loc, name, prefix, dtype, method,
                                     /*calculate_kv_scales=*/flags & 8, raw,
                                     resolved, tensors));
  }

  // A cache store on layer 0, in a function.
  if (targetBits & 8) {
    std::string cache = "memref<?x16x8x128x" +
                        std::string(cacheElementType(
                            layers[0].getKvCacheDtype(), targetBits & 16)) +
                        ">";
    appendText(*module,
               "func.func @store(%k: memref<?x8x128xbf16>, %kc: " + cache +
                   ", %s: memref<?xi64>) {\n"
                   "  kvq.cache_store @l0 (%k, %k) into (%kc, %kc) "
                   "at %s : memref<?x8x128xbf16>, " +
                   cache +
                   ", memref<?xi64>\n"
                   "  return\n"
                   "}");
  }

  std::string diagnostics;
  unsigned errors = 0;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    errors += diag.getSeverity() == DiagnosticSeverity::Error;
    llvm::raw_string_ostream(diagnostics) << diag << "\n";
    return success();
  });

  std::string before;
  llvm::raw_string_ostream(before) << *module;
  // The generator only builds valid IR: a failure here is a bug of this
  // fuzzer or of a verifier.
  if (failed(verify(*module)))
    fail("the generated module does not verify", before, diagnostics, *module);

  PassManager pm(&context);
  pm.enableVerifier(false); // checked below, so a bad result cannot hide
  pm.addPass(createKVQFoldScales(options));
  LogicalResult result = pm.run(*module);
  if (std::getenv("KVQ_FUZZ_DEBUG")) // show what an input decodes to
    llvm::errs() << before << "\n--- diagnostics\n" << diagnostics;
  if (failed(result)) {
    if (errors == 0)
      fail("the pass failed without an error diagnostic", before, diagnostics,
           *module);
    return 0;
  }
  if (errors != 0)
    fail("the pass succeeded but emitted an error", before, diagnostics,
         *module);
  if (failed(verify(*module)))
    fail("the pass left a module that does not verify", before, diagnostics,
         *module);
  for (LayerOp layer : module->getOps<LayerOp>()) {
    if (layer.getCheckpointScalesAttr() || layer.getCheckpointTensorsAttr())
      fail("a layer kept raw scales", before, diagnostics, *module);
    ResolvedScalesAttr scales = layer.getResolvedScalesAttr();
    if (!scales)
      fail("a layer has no resolved scales", before, diagnostics, *module);
    for (const APFloat &value :
         {scales.getK(), scales.getV(), scales.getQ(), scales.getProb()})
      if (!value.isFiniteNonZero() || value.isNegative())
        fail("a resolved scale is not finite and > 0", before, diagnostics,
             *module);
  }
  return 0;
}
