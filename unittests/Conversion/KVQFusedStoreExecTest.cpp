//===- KVQFusedStoreExecTest.cpp - fused store = producer + store, bytes --===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// kvq-fuse-cache-producers must not change a single cache byte: the fused
// store writes what the producers followed by kvq.cache_store write. This
// test compiles five steps on tensors (kFunctions) twice through the same
// pipeline to the CPU, once with and once without the fusion pass, runs
// both on the same inputs and compares the caches byte for byte:
//
// - RoPE, rotate-half (GPT-NeoX) form, cos / sin from tables at each
//   token's position, f32 math rounded to bf16;
// - the same RoPE as a frontend spells it: slices of the halves,
//   linalg.negf, tensor.concat, then x * cos + rotated * sin;
// - the first RoPE again, into a layer with per-head scales;
// - RoPE, interleaved (GPT-J) form, cos / sin computed from the position
//   in the body (powf, cos, sin), f32 K and V;
// - elementwise chains on V: x * gain + bias rounded to bf16 (one
//   generic, with the first RoPE), and extf, linalg.mul by gain, + bias,
//   truncf as four ops (linalg.generic and named linalg.mul).
//
// K and V are one row of 65536 bf16 values: every bf16 bit pattern (NaN,
// infinities and subnormals included) goes through each producer, as the
// element itself and as RoPE's partner. Some slots are -1 (padding): those
// rows must stay untouched in both. The fused module must hold a fused
// store per step (else the test compares a pipeline with itself).
//
// The CPU form runs the region one element at a time; the GPU form runs
// it for work items of several elements, with vector loads where the
// region's indices allow. The test runs that code on the CPU too (each
// step's region for work items of 2, 4 and 8 elements against 1).
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/CacheCodegen.h"
#include "kvq/Conversion/Passes.h"
#include "kvq/Dialect/KVQ/IR/KVQOps.h"
#include "kvq/Dialect/KVQ/Transforms/Passes.h"
#include "kvq/InitAllKVQ.h"
#include "unittests/Conversion/MemRefBuffer.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using namespace mlir;
using mlir::kvq::test::Buffer;

namespace {

// 64 tokens x 8 KV heads x head size 128: 65536 elements, one per bf16
// pattern. 8 blocks of 16 slots; positions below 4096.
constexpr int64_t kTokens = 64, kHeads = 8, kHeadSize = 128, kHalf = 64;
constexpr int64_t kBlocks = 8, kBlockSize = 16, kMaxPos = 4096;

/// The steps. Each is private, as a model compiler's per-layer function:
/// its results are its cache arguments, which drop-equivalent-buffer-
/// results removes; the test makes it public after bufferization.
const char *const kModule = R"mlir(
kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @lh cache(fp8) resolved(#kvq.resolved_scales<k = [1.250000e-02, 2.500000e-02, 5.000000e-02, 1.000000e-01, 1.250000e-02, 2.500000e-02, 5.000000e-02, 1.000000e-01] checkpoint, v = [3.500000e-02, 7.000000e-02, 1.400000e-01, 2.100000e-01, 3.500000e-02, 7.000000e-02, 1.400000e-01, 2.100000e-01] checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

#elem = affine_map<(t, h, d) -> (t, h, d)>
#token = affine_map<(t, h, d) -> (t)>
#partner = affine_map<(t, h, d) -> (t, h, (d + 64) mod 128)>
#bias = affine_map<(t, h, d) -> (h, d)>

func.func private @rope_neox(%x: tensor<64x8x128xbf16>, %pos: tensor<64xi64>,
    %cos: tensor<4096x64xf32>, %sin: tensor<4096x64xf32>,
    %gain: tensor<64x8x128xf32>, %bias: tensor<8x128xf32>,
    %slots: tensor<64xi64>, %kc: tensor<8x16x8x128xf8E4M3FN>,
    %vc: tensor<8x16x8x128xf8E4M3FN>)
    -> (tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>) {
  %c64 = arith.constant 64 : index
  %e = tensor.empty() : tensor<64x8x128xbf16>
  %k = linalg.generic {indexing_maps = [#elem, #partner, #token, #elem],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %x, %pos : tensor<64x8x128xbf16>, tensor<64x8x128xbf16>, tensor<64xi64>)
      outs(%e : tensor<64x8x128xbf16>) {
  ^bb0(%xd: bf16, %xp: bf16, %p: i64, %unused: bf16):
    %d = linalg.index 2 : index
    %row = arith.index_cast %p : i64 to index
    %i = arith.remui %d, %c64 : index
    %c = tensor.extract %cos[%row, %i] : tensor<4096x64xf32>
    %s = tensor.extract %sin[%row, %i] : tensor<4096x64xf32>
    %xf = arith.extf %xd : bf16 to f32
    %xpf = arith.extf %xp : bf16 to f32
    %neg = arith.negf %xpf : f32
    %first = arith.cmpi ult, %d, %c64 : index
    %r = arith.select %first, %neg, %xpf : f32
    %xc = arith.mulf %xf, %c : f32
    %rs = arith.mulf %r, %s : f32
    %y = arith.addf %xc, %rs : f32
    %yb = arith.truncf %y : f32 to bf16
    linalg.yield %yb : bf16
  } -> tensor<64x8x128xbf16>
  %e2 = tensor.empty() : tensor<64x8x128xbf16>
  %v = linalg.generic {indexing_maps = [#elem, #elem, #bias, #elem],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %gain, %bias : tensor<64x8x128xbf16>, tensor<64x8x128xf32>, tensor<8x128xf32>)
      outs(%e2 : tensor<64x8x128xbf16>) {
  ^bb0(%a: bf16, %g: f32, %b: f32, %unused: bf16):
    %af = arith.extf %a : bf16 to f32
    %p = arith.mulf %af, %g : f32
    %s = arith.addf %p, %b : f32
    %r = arith.truncf %s : f32 to bf16
    linalg.yield %r : bf16
  } -> tensor<64x8x128xbf16>
  %kc1, %vc1 = kvq.cache_store @l (%k, %v) into (%kc, %vc) at %slots
      : tensor<64x8x128xbf16>, tensor<8x16x8x128xf8E4M3FN>, tensor<64xi64>
      -> tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
}

// rope_neox as a frontend spells it (torch-mlir's rotate_half): the
// halves as slices, the negation as linalg.negf, their concatenation
// (-x2, x1), then x * cos + rotated * sin.
func.func private @rope_neox_concat(%x: tensor<64x8x128xbf16>,
    %pos: tensor<64xi64>,
    %cos: tensor<4096x64xf32>, %sin: tensor<4096x64xf32>,
    %gain: tensor<64x8x128xf32>, %bias: tensor<8x128xf32>,
    %slots: tensor<64xi64>, %kc: tensor<8x16x8x128xf8E4M3FN>,
    %vc: tensor<8x16x8x128xf8E4M3FN>)
    -> (tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>) {
  %c64 = arith.constant 64 : index
  %x1 = tensor.extract_slice %x[0, 0, 0] [64, 8, 64] [1, 1, 1]
      : tensor<64x8x128xbf16> to tensor<64x8x64xbf16>
  %x2 = tensor.extract_slice %x[0, 0, 64] [64, 8, 64] [1, 1, 1]
      : tensor<64x8x128xbf16> to tensor<64x8x64xbf16>
  %e0 = tensor.empty() : tensor<64x8x64xbf16>
  %neg = linalg.negf ins(%x2 : tensor<64x8x64xbf16>)
      outs(%e0 : tensor<64x8x64xbf16>) -> tensor<64x8x64xbf16>
  %rot = tensor.concat dim(2) %neg, %x1
      : (tensor<64x8x64xbf16>, tensor<64x8x64xbf16>) -> tensor<64x8x128xbf16>
  %e = tensor.empty() : tensor<64x8x128xbf16>
  %k = linalg.generic {indexing_maps = [#elem, #elem, #token, #elem],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %rot, %pos : tensor<64x8x128xbf16>, tensor<64x8x128xbf16>, tensor<64xi64>)
      outs(%e : tensor<64x8x128xbf16>) {
  ^bb0(%xd: bf16, %rd: bf16, %p: i64, %unused: bf16):
    %d = linalg.index 2 : index
    %row = arith.index_cast %p : i64 to index
    %i = arith.remui %d, %c64 : index
    %c = tensor.extract %cos[%row, %i] : tensor<4096x64xf32>
    %s = tensor.extract %sin[%row, %i] : tensor<4096x64xf32>
    %xf = arith.extf %xd : bf16 to f32
    %rf = arith.extf %rd : bf16 to f32
    %xc = arith.mulf %xf, %c : f32
    %rs = arith.mulf %rf, %s : f32
    %y = arith.addf %xc, %rs : f32
    %yb = arith.truncf %y : f32 to bf16
    linalg.yield %yb : bf16
  } -> tensor<64x8x128xbf16>
  %kc1, %vc1 = kvq.cache_store @l (%k, %x) into (%kc, %vc) at %slots
      : tensor<64x8x128xbf16>, tensor<8x16x8x128xf8E4M3FN>, tensor<64xi64>
      -> tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
}

func.func private @rope_gptj(%x: tensor<64x8x128xbf16>, %pos: tensor<64xi64>,
    %cos: tensor<4096x64xf32>, %sin: tensor<4096x64xf32>,
    %gain: tensor<64x8x128xf32>, %bias: tensor<8x128xf32>,
    %slots: tensor<64xi64>, %kc: tensor<8x16x8x128xf8E4M3FN>,
    %vc: tensor<8x16x8x128xf8E4M3FN>)
    -> (tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %base = arith.constant 10000.0 : f32
  %m2overD = arith.constant -0.015625 : f32
  %e = tensor.empty() : tensor<64x8x128xf32>
  %xf = linalg.generic {indexing_maps = [#elem, #elem],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x : tensor<64x8x128xbf16>) outs(%e : tensor<64x8x128xf32>) {
  ^bb0(%a: bf16, %unused: f32):
    %b = arith.extf %a : bf16 to f32
    linalg.yield %b : f32
  } -> tensor<64x8x128xf32>
  %e2 = tensor.empty() : tensor<64x8x128xf32>
  %k = linalg.generic {indexing_maps = [#elem, #token, #elem],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%xf, %pos : tensor<64x8x128xf32>, tensor<64xi64>)
      outs(%e2 : tensor<64x8x128xf32>) {
  ^bb0(%xd: f32, %p: i64, %unused: f32):
    %t = linalg.index 0 : index
    %h = linalg.index 1 : index
    %d = linalg.index 2 : index
    %partner = arith.xori %d, %c1 : index
    %xp = tensor.extract %xf[%t, %h, %partner] : tensor<64x8x128xf32>
    %i = arith.shrui %d, %c1 : index
    %ii = arith.index_cast %i : index to i64
    %if = arith.uitofp %ii : i64 to f32
    %ex = arith.mulf %if, %m2overD : f32
    %inv = math.powf %base, %ex : f32
    %pf = arith.sitofp %p : i64 to f32
    %angle = arith.mulf %pf, %inv : f32
    %c = math.cos %angle : f32
    %s = math.sin %angle : f32
    %odd = arith.andi %d, %c1 : index
    %is_odd = arith.cmpi ne, %odd, %c0 : index
    %neg = arith.negf %xp : f32
    %r = arith.select %is_odd, %xp, %neg : f32
    %xc = arith.mulf %xd, %c : f32
    %rs = arith.mulf %r, %s : f32
    %y = arith.addf %xc, %rs : f32
    linalg.yield %y : f32
  } -> tensor<64x8x128xf32>
  %e3 = tensor.empty() : tensor<64x8x128xf32>
  %v = linalg.mul ins(%xf, %gain : tensor<64x8x128xf32>, tensor<64x8x128xf32>)
      outs(%e3 : tensor<64x8x128xf32>) -> tensor<64x8x128xf32>
  %kc1, %vc1 = kvq.cache_store @l (%k, %v) into (%kc, %vc) at %slots
      : tensor<64x8x128xf32>, tensor<8x16x8x128xf8E4M3FN>, tensor<64xi64>
      -> tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
}

func.func private @chain_store(%x: tensor<64x8x128xbf16>, %pos: tensor<64xi64>,
    %cos: tensor<4096x64xf32>, %sin: tensor<4096x64xf32>,
    %gain: tensor<64x8x128xf32>, %bias: tensor<8x128xf32>,
    %slots: tensor<64xi64>, %kc: tensor<8x16x8x128xf8E4M3FN>,
    %vc: tensor<8x16x8x128xf8E4M3FN>)
    -> (tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>) {
  %e0 = tensor.empty() : tensor<64x8x128xf32>
  %xf = linalg.generic {indexing_maps = [#elem, #elem],
                        iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x : tensor<64x8x128xbf16>) outs(%e0 : tensor<64x8x128xf32>) {
  ^bb0(%a: bf16, %unused: f32):
    %b = arith.extf %a : bf16 to f32
    linalg.yield %b : f32
  } -> tensor<64x8x128xf32>
  %e1 = tensor.empty() : tensor<64x8x128xf32>
  %p = linalg.mul ins(%xf, %gain : tensor<64x8x128xf32>, tensor<64x8x128xf32>)
      outs(%e1 : tensor<64x8x128xf32>) -> tensor<64x8x128xf32>
  %e2 = tensor.empty() : tensor<64x8x128xf32>
  %s = linalg.generic {indexing_maps = [#elem, #bias, #elem],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p, %bias : tensor<64x8x128xf32>, tensor<8x128xf32>)
      outs(%e2 : tensor<64x8x128xf32>) {
  ^bb0(%a: f32, %b: f32, %unused: f32):
    %c = arith.addf %a, %b : f32
    linalg.yield %c : f32
  } -> tensor<64x8x128xf32>
  %e3 = tensor.empty() : tensor<64x8x128xbf16>
  %v = linalg.generic {indexing_maps = [#elem, #elem],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%s : tensor<64x8x128xf32>) outs(%e3 : tensor<64x8x128xbf16>) {
  ^bb0(%a: f32, %unused: bf16):
    %b = arith.truncf %a : f32 to bf16
    linalg.yield %b : bf16
  } -> tensor<64x8x128xbf16>
  %kc1, %vc1 = kvq.cache_store @l (%x, %v) into (%kc, %vc) at %slots
      : tensor<64x8x128xbf16>, tensor<8x16x8x128xf8E4M3FN>, tensor<64xi64>
      -> tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
  return %kc1, %vc1 : tensor<8x16x8x128xf8E4M3FN>, tensor<8x16x8x128xf8E4M3FN>
}
)mlir";

/// The per-head scales of layer @lh, as the plan of the GPU checks passes
/// them (`scales:`).
const char *const kPerHeadScales =
    "scales:0.0125,0.025,0.05,0.1,0.0125,0.025,0.05,0.1 "
    "scales:0.035,0.07,0.14,0.21,0.035,0.07,0.14,0.21";

/// kModule and rope_neox_per_head: rope_neox storing into layer @lh, whose
/// scales differ per KV head.
const std::string &moduleText() {
  static const std::string text = [] {
    std::string module = kModule;
    const std::string begin = "func.func private @rope_neox(";
    size_t from = module.find(begin);
    std::string step =
        module.substr(from, module.find("\n}\n", from) + 3 - from);
    step.replace(0, begin.size(), "func.func private @rope_neox_per_head(");
    step.replace(step.find("kvq.cache_store @l "), 19, "kvq.cache_store @lh ");
    return module + step;
  }();
  return text;
}

/// The steps the test runs (all take the same arguments).
const char *const kFunctions[] = {"rope_neox", "rope_neox_concat",
                                  "rope_neox_per_head", "rope_gptj",
                                  "chain_store"};

template <typename T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(T));
  std::memcpy(bytes.data(), v.data(), bytes.size());
  return bytes;
}

class KVQFusedStoreExecTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  }

  KVQFusedStoreExecTest() {
    DialectRegistry registry;
    registerAllDialects(registry);
    registerAllExtensions(registry);
    registerAllToLLVMIRTranslations(registry);
    kvq::registerAllKVQDialects(registry);
    context.appendDialectRegistry(registry);
    context.disableMultithreading();
  }

  /// kModule through the pipeline of docs/ModelCompilers.md up to the
  /// lowering, with or without kvq-fuse-cache-producers, the steps public;
  /// `fusedStores` counts the kvq.fused_cache_store ops.
  OwningOpRef<ModuleOp> prepare(bool fuse, int &fusedStores) {
    OwningOpRef<ModuleOp> module =
        parseSourceString<ModuleOp>(moduleText(), &context);
    if (!module) {
      ADD_FAILURE() << "cannot parse the steps";
      return nullptr;
    }
    PassManager pm(&context);
    if (fuse)
      pm.addPass(kvq::createKVQFuseCacheProducers());
    bufferization::OneShotBufferizePassOptions bufferize;
    bufferize.bufferizeFunctionBoundaries = true;
    bufferize.functionBoundaryTypeConversion =
        bufferization::LayoutMapOption::IdentityLayoutMap;
    pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
    pm.addPass(bufferization::createDropEquivalentBufferResultsPass());
    bufferization::buildBufferDeallocationPipeline(pm);
    pm.addPass(createConvertLinalgToLoopsPass());
    pm.addPass(memref::createExpandStridedMetadataPass());
    pm.addPass(createLowerAffinePass());
    if (failed(pm.run(*module))) {
      ADD_FAILURE() << "the pipeline failed (fuse = " << fuse << ")";
      return nullptr;
    }
    fusedStores = 0;
    module->walk([&](kvq::FusedCacheStoreOp) { ++fusedStores; });
    for (const char *name : kFunctions) {
      auto func = module->lookupSymbol<func::FuncOp>(name);
      if (!func || func.getNumResults() != 0) {
        ADD_FAILURE() << "@" << name << " missing or still returns caches";
        return nullptr;
      }
      func.setPublic();
      func->setAttr("llvm.emit_c_interface", UnitAttr::get(&context));
    }
    return module;
  }

  /// prepare() lowered with kvq-to-llvm and JIT-compiled.
  std::unique_ptr<ExecutionEngine> compile(bool fuse, int &fusedStores) {
    OwningOpRef<ModuleOp> module = prepare(fuse, fusedStores);
    if (!module)
      return nullptr;
    PassManager lower(&context);
    kvq::buildKVQToLLVMPipeline(lower);
    if (failed(lower.run(*module))) {
      ADD_FAILURE() << "kvq-to-llvm failed (fuse = " << fuse << ")";
      return nullptr;
    }
    ExecutionEngineOptions options;
    const StringRef runnerUtils[] = {KVQ_C_RUNNER_UTILS};
    options.sharedLibPaths = runnerUtils;
    auto engine = ExecutionEngine::create(*module, options);
    if (!engine) {
      ADD_FAILURE() << llvm::toString(engine.takeError());
      return nullptr;
    }
    return std::move(*engine);
  }

  MLIRContext context;
};

/// The inputs of every step: K and V one row of every bf16 pattern, random
/// positions, slots (4 of them -1), RoPE tables, gains and biases.
struct Inputs {
  Inputs()
      : x(kTokens * kHeads * kHeadSize), positions(kTokens), slots(kTokens),
        cosT(kMaxPos * kHalf), sinT(kMaxPos * kHalf), gain(x.size()),
        bias(kHeads * kHeadSize) {
    std::iota(x.begin(), x.end(), uint16_t(0));
    std::mt19937 rng(16);
    std::vector<int64_t> freeSlots(kBlocks * kBlockSize);
    std::iota(freeSlots.begin(), freeSlots.end(), 0);
    std::shuffle(freeSlots.begin(), freeSlots.end(), rng);
    for (int64_t t = 0; t < kTokens; ++t) {
      positions[t] =
          std::uniform_int_distribution<int64_t>(0, kMaxPos - 1)(rng);
      slots[t] = t % 16 == 5 ? -1 : freeSlots[t]; // 4 padding tokens
    }
    for (int64_t pos = 0; pos < kMaxPos; ++pos)
      for (int64_t i = 0; i < kHalf; ++i) {
        double angle = double(pos) * std::pow(10000.0, -2.0 * i / kHeadSize);
        cosT[pos * kHalf + i] = float(std::cos(angle));
        sinT[pos * kHalf + i] = float(std::sin(angle));
      }
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    for (float &g : gain)
      g = uniform(rng);
    for (float &b : bias)
      b = uniform(rng);
  }
  std::vector<uint16_t> x;
  std::vector<int64_t> positions, slots;
  std::vector<float> cosT, sinT, gain, bias;
};

constexpr int64_t kCacheBytes = kBlocks * kBlockSize * kHeads * kHeadSize;

/// The K and V caches (poisoned with 0xA5 first) after step `name`.
std::array<std::vector<uint8_t>, 2>
runStep(ExecutionEngine &engine, const char *name, const Inputs &in) {
  Buffer<3> xBuf(bytesOf(in.x), {kTokens, kHeads, kHeadSize});
  Buffer<1> posBuf(bytesOf(in.positions), {kTokens});
  Buffer<2> cosBuf(bytesOf(in.cosT), {kMaxPos, kHalf});
  Buffer<2> sinBuf(bytesOf(in.sinT), {kMaxPos, kHalf});
  Buffer<3> gainBuf(bytesOf(in.gain), {kTokens, kHeads, kHeadSize});
  Buffer<2> biasBuf(bytesOf(in.bias), {kHeads, kHeadSize});
  Buffer<1> slotBuf(bytesOf(in.slots), {kTokens});
  std::array<int64_t, 4> shape = {kBlocks, kBlockSize, kHeads, kHeadSize};
  Buffer<4> kcBuf(std::vector<uint8_t>(kCacheBytes, 0xA5), shape);
  Buffer<4> vcBuf(std::vector<uint8_t>(kCacheBytes, 0xA5), shape);
  llvm::Error error = engine.invoke(
      name, xBuf.ptr(), posBuf.ptr(), cosBuf.ptr(), sinBuf.ptr(), gainBuf.ptr(),
      biasBuf.ptr(), slotBuf.ptr(), kcBuf.ptr(), vcBuf.ptr());
  EXPECT_FALSE(bool(error)) << llvm::toString(std::move(error));
  return {kcBuf.bytes, vcBuf.bytes};
}

TEST_F(KVQFusedStoreExecTest, FusedStoreWritesTheUnfusedBytes) {
  int unfusedCount = -1, fusedCount = -1;
  std::unique_ptr<ExecutionEngine> unfused = compile(false, unfusedCount);
  std::unique_ptr<ExecutionEngine> fused = compile(true, fusedCount);
  ASSERT_TRUE(unfused && fused);
  EXPECT_EQ(unfusedCount, 0);
  EXPECT_EQ(fusedCount, int(std::size(kFunctions)))
      << "every step's store must be fused";

  const Inputs in;
  for (const char *name : kFunctions) {
    SCOPED_TRACE(name);
    std::array<std::vector<uint8_t>, 2> caches[2] = {
        runStep(*unfused, name, in), runStep(*fused, name, in)};
    for (int s = 0; s < 2; ++s) {
      int64_t mismatches = 0, written = 0;
      std::string first;
      for (int64_t i = 0; i < kCacheBytes; ++i) {
        written += caches[0][s][i] != 0xA5;
        if (caches[0][s][i] == caches[1][s][i])
          continue;
        if (mismatches++ < 5)
          first += " [" + std::to_string(i) + "] " +
                   std::to_string(caches[0][s][i]) + " vs " +
                   std::to_string(caches[1][s][i]);
      }
      EXPECT_EQ(mismatches, 0) << (s ? "V" : "K") << " cache:" << first;
      // 60 tokens x 1024 bytes written: some bytes happen to be 0xA5.
      EXPECT_GT(written, 60 * 1024 * 9 / 10) << (s ? "V" : "K");
    }
  }
}

/// The slices-and-concatenation spelling of rotate-half RoPE is the same
/// function as the gather spelling: their fused stores write the same K.
TEST_F(KVQFusedStoreExecTest, ConcatSpellingIsTheSameRoPE) {
  int fusedCount = -1;
  std::unique_ptr<ExecutionEngine> fused = compile(true, fusedCount);
  ASSERT_TRUE(fused);
  const Inputs in;
  std::array<std::vector<uint8_t>, 2> gather = runStep(*fused, "rope_neox", in);
  std::array<std::vector<uint8_t>, 2> concat =
      runStep(*fused, "rope_neox_concat", in);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < kCacheBytes; ++i)
    mismatches += gather[0][i] != concat[0][i];
  EXPECT_EQ(mismatches, 0);
}

/// The fused store into a per-head layer quantizes each KV head with its
/// own scales: K heads 2 and 6 have the per-tensor layer's scale 0.05 and
/// the same bytes as rope_neox's; every other head's differ.
TEST_F(KVQFusedStoreExecTest, PerHeadScalesQuantizeEachHead) {
  int fusedCount = -1;
  std::unique_ptr<ExecutionEngine> fused = compile(true, fusedCount);
  ASSERT_TRUE(fused);
  const Inputs in;
  std::array<std::vector<uint8_t>, 2> tensor = runStep(*fused, "rope_neox", in);
  std::array<std::vector<uint8_t>, 2> heads =
      runStep(*fused, "rope_neox_per_head", in);
  std::array<int64_t, kHeads> differing = {};
  for (int64_t i = 0; i < kCacheBytes; ++i)
    differing[(i / kHeadSize) % kHeads] += tensor[0][i] != heads[0][i];
  for (int64_t h = 0; h < kHeads; ++h) {
    if (h % 4 == 2)
      EXPECT_EQ(differing[h], 0) << "head " << h << ": K scale 0.05 in both";
    else
      EXPECT_GT(differing[h], 0) << "head " << h;
  }
}

//===----------------------------------------------------------------------===//
// Work items of several elements
//===----------------------------------------------------------------------===//

/// @<step>_w<width>: the K and V the fused store of `step` computes at
/// every element, as the GPU form's work items of `width` consecutive
/// elements compute them (CacheOpPlan::produce: vector loads where the
/// region's indices allow, ops shared by the elements cloned once), stored
/// to two more arguments [T, H, D]. The CPU form itself computes one
/// element at a time (width 1).
void addProducerFunction(ModuleOp module, const char *step, int64_t width) {
  auto func = module.lookupSymbol<func::FuncOp>(step);
  kvq::FusedCacheStoreOp store;
  func.walk([&](kvq::FusedCacheStoreOp op) { store = op; });
  ASSERT_TRUE(store) << step;
  MLIRContext *context = module.getContext();
  OpBuilder b(context);
  Location loc = b.getUnknownLoc();
  SmallVector<Type> types(func.getArgumentTypes());
  for (Value value : store.getYield().getValues())
    types.push_back(
        MemRefType::get({kTokens, kHeads, kHeadSize}, value.getType()));
  b.setInsertionPointToEnd(module.getBody());
  auto produce = func::FuncOp::create(
      b, loc, std::string(step) + "_w" + std::to_string(width),
      b.getFunctionType(types, {}));
  produce->setAttr("llvm.emit_c_interface", UnitAttr::get(context));
  Block *entry = produce.addEntryBlock();
  b.setInsertionPointToStart(entry);
  SmallVector<Value> operands;
  for (Value value : kvq::getFusedStoreOperands(store)) {
    auto arg = dyn_cast<BlockArgument>(value);
    ASSERT_TRUE(arg && arg.getOwner() == &func.getBody().front())
        << step << ": the region reads a value other than an argument";
    operands.push_back(entry->getArgument(arg.getArgNumber()));
  }
  kvq::CacheOpPlan plan;
  kvq::setFusedProducer(plan, store, operands);
  auto index = [&](int64_t value) -> Value {
    return arith::ConstantIndexOp::create(b, loc, value);
  };
  Value c0 = index(0), c1 = index(1);
  auto t = scf::ForOp::create(b, loc, c0, index(kTokens), c1);
  b.setInsertionPointToStart(t.getBody());
  auto h = scf::ForOp::create(b, loc, c0, index(kHeads), c1);
  b.setInsertionPointToStart(h.getBody());
  auto d = scf::ForOp::create(b, loc, c0, index(kHeadSize), index(width));
  b.setInsertionPointToStart(d.getBody());
  SmallVector<Value> indices = {t.getInductionVar(), h.getInductionVar(),
                                d.getInductionVar()};
  std::array<Value, 2> kv =
      plan.produce(b, loc, indices, width, plan.producerOperands);
  for (int s = 0; s < 2; ++s) {
    Value out = entry->getArgument(func.getNumArguments() + s);
    if (width == 1)
      memref::StoreOp::create(b, loc, kv[s], out, indices);
    else
      vector::StoreOp::create(b, loc, kv[s], out, indices);
  }
  b.setInsertionPointToEnd(entry);
  func::ReturnOp::create(b, loc);
}

/// The region computed by work items of 2, 4 and 8 elements writes the
/// bytes of one element at a time, for every step (every bf16 pattern as
/// an element and as RoPE's partner), with the vector loads the GPU form
/// gets: the work item's own row, the partner ((d + 64) mod 128 and
/// d xor 1), the cos / sin rows at the position, gains and biases.
TEST_F(KVQFusedStoreExecTest, WorkItemsComputeTheElementsBytes) {
  int fusedStores = 0;
  OwningOpRef<ModuleOp> module = prepare(/*fuse=*/true, fusedStores);
  ASSERT_TRUE(module);
  const int64_t widths[] = {1, 2, 4, 8};
  for (const char *name : kFunctions)
    for (int64_t width : widths) {
      addProducerFunction(*module, name, width);
      ASSERT_FALSE(HasFatalFailure());
    }
  // The vector loads of 8-element work items (x_d, read for K and for V,
  // is one load after the deallocation pipeline's CSE): x_d, the partner,
  // cos, sin, gain, bias (rope_neox and rope_neox_per_head); x_d, the two
  // concatenated halves at (d mod 64) + 64 and d mod 64, cos, sin
  // (rope_neox_concat); x_d, the partner, gain (rope_gptj,
  // which computes cos / sin); x_d, gain, bias (chain_store).
  const std::map<std::string, int> expectedVectorLoads = {
      {"rope_neox", 6},
      {"rope_neox_concat", 5},
      {"rope_neox_per_head", 6},
      {"rope_gptj", 3},
      {"chain_store", 3}};
  for (const char *name : kFunctions) {
    int vectorLoads = 0, scalarLoads = 0;
    module->lookupSymbol<func::FuncOp>(std::string(name) + "_w8")
        .walk([&](Operation *op) {
          vectorLoads += isa<vector::LoadOp>(op);
          scalarLoads += isa<memref::LoadOp>(op);
        });
    EXPECT_EQ(vectorLoads, expectedVectorLoads.at(name)) << name;
    // What is left: the position (once per work item) where read.
    EXPECT_EQ(scalarLoads, std::string(name) == "chain_store" ? 0 : 1) << name;
  }
  PassManager lower(&context);
  kvq::buildKVQToLLVMPipeline(lower);
  ASSERT_TRUE(succeeded(lower.run(*module)));
  auto engine = ExecutionEngine::create(*module);
  ASSERT_TRUE(bool(engine)) << llvm::toString(engine.takeError());

  const Inputs in;
  for (const char *name : kFunctions) {
    SCOPED_TRACE(name);
    // K and V are f32 in rope_gptj, bf16 elsewhere.
    const int64_t bytes = std::string(name) == "rope_gptj" ? 4 : 2;
    std::array<std::vector<uint8_t>, 2> one;
    for (int64_t width : widths) {
      Buffer<3> xBuf(bytesOf(in.x), {kTokens, kHeads, kHeadSize});
      Buffer<1> posBuf(bytesOf(in.positions), {kTokens});
      Buffer<2> cosBuf(bytesOf(in.cosT), {kMaxPos, kHalf});
      Buffer<2> sinBuf(bytesOf(in.sinT), {kMaxPos, kHalf});
      Buffer<3> gainBuf(bytesOf(in.gain), {kTokens, kHeads, kHeadSize});
      Buffer<2> biasBuf(bytesOf(in.bias), {kHeads, kHeadSize});
      Buffer<1> slotBuf(bytesOf(in.slots), {kTokens});
      std::array<int64_t, 4> shape = {kBlocks, kBlockSize, kHeads, kHeadSize};
      Buffer<4> kcBuf(std::vector<uint8_t>(kCacheBytes), shape);
      Buffer<4> vcBuf(std::vector<uint8_t>(kCacheBytes), shape);
      const size_t outBytes = kTokens * kHeads * kHeadSize * bytes;
      Buffer<3> kOut(std::vector<uint8_t>(outBytes, 0xA5),
                     {kTokens, kHeads, kHeadSize});
      Buffer<3> vOut(std::vector<uint8_t>(outBytes, 0xA5),
                     {kTokens, kHeads, kHeadSize});
      llvm::Error error = (*engine)->invoke(
          std::string(name) + "_w" + std::to_string(width), xBuf.ptr(),
          posBuf.ptr(), cosBuf.ptr(), sinBuf.ptr(), gainBuf.ptr(),
          biasBuf.ptr(), slotBuf.ptr(), kcBuf.ptr(), vcBuf.ptr(), kOut.ptr(),
          vOut.ptr());
      ASSERT_FALSE(bool(error)) << llvm::toString(std::move(error));
      if (width == 1) {
        one = {kOut.bytes, vOut.bytes};
        continue;
      }
      EXPECT_TRUE(kOut.bytes == one[0]) << "K, width " << width;
      EXPECT_TRUE(vOut.bytes == one[1]) << "V, width " << width;
    }
  }
}

//===----------------------------------------------------------------------===//
// The GPU form (test/Integration/GPU/CUDA)
//===----------------------------------------------------------------------===//

/// The steps of the GPU checks, which compare bytes with the CPU's.
/// rope_gptj is not one: its math.powf, math.cos and math.sin become
/// libdevice's __nv_powf, __nv_cosf and __nv_sinf on the GPU (MLIR's NVVM
/// serializer links libdevice from the CUDA toolkit), which need not round
/// as the CPU's libm does, so its bytes may differ from the CPU's by
/// construction.
const char *const kGPUFunctions[] = {"rope_neox", "rope_neox_concat",
                                     "rope_neox_per_head", "chain_store"};

/// The memref arguments of every step, as the plan's buffer names.
const char *const kArgNames[] = {"x",    "pos",   "cos", "sin", "gain",
                                 "bias", "slots", "kc",  "vc"};

/// The GPU form cannot run here. KVQ_FUSED_GPU_WRITE=<out>/fused (set by
/// prepare-gpu-checks.sh) writes the fused, bufferized steps
/// (kernels.mlir, which the script lowers to kernels.ptx for sm_90), their
/// inputs (in/), plan.txt for kvq-launch and manifest.txt; the kernels'
/// parameters are read off the lowered IR (docs/KernelABI.md,
/// "kvq.fused_cache_store"). GPUDumpsMatchCPU compares what the GPU wrote.
TEST_F(KVQFusedStoreExecTest, WriteGPUChecks) {
  const char *dir = std::getenv("KVQ_FUSED_GPU_WRITE");
  if (!dir)
    GTEST_SKIP() << "set KVQ_FUSED_GPU_WRITE to write the GPU checks";
  const std::string out = dir;
  const std::string config = llvm::sys::path::filename(out).str();
  ASSERT_FALSE(llvm::sys::fs::create_directories(out + "/in"));
  int fusedStores = 0;
  OwningOpRef<ModuleOp> module = prepare(/*fuse=*/true, fusedStores);
  ASSERT_TRUE(module);
  // Only the GPU steps.
  for (const char *name : kFunctions)
    if (!llvm::is_contained(kGPUFunctions, StringRef(name)))
      module->lookupSymbol<func::FuncOp>(name).erase();
  {
    std::ofstream mlir(out + "/kernels.mlir");
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    mlir << text;
    ASSERT_TRUE(mlir.good());
  }
  // The region operands of each fused store, as argument names, before the
  // lowering erases the stores; the kernel each step calls after it.
  std::map<std::string, std::vector<std::string>> operands;
  for (const char *name : kGPUFunctions) {
    auto func = module->lookupSymbol<func::FuncOp>(name);
    func.walk([&](kvq::FusedCacheStoreOp op) {
      for (Value value : kvq::getFusedStoreOperands(op)) {
        auto arg = dyn_cast<BlockArgument>(value);
        ASSERT_TRUE(arg && arg.getOwner() == &func.getBody().front())
            << name << ": the region reads a value other than an argument";
        operands[name].push_back(kArgNames[arg.getArgNumber()]);
      }
    });
  }
  PassManager lower(&context);
  kvq::KVQLowerCacheOpsOptions options;
  options.target = "nvvm";
  options.chip = "sm_90";
  lower.addPass(kvq::createKVQLowerCacheOps(options));
  ASSERT_TRUE(succeeded(lower.run(*module)));
  const Inputs in;
  auto write = [&](const std::string &file, const std::vector<uint8_t> &b) {
    std::ofstream f(out + "/in/" + file, std::ios::binary);
    f.write(reinterpret_cast<const char *>(b.data()), b.size());
    ASSERT_TRUE(f.good());
  };
  write("x.bin", bytesOf(in.x));
  write("pos.bin", bytesOf(in.positions));
  write("cos.bin", bytesOf(in.cosT));
  write("sin.bin", bytesOf(in.sinT));
  write("gain.bin", bytesOf(in.gain));
  write("bias.bin", bytesOf(in.bias));
  write("slots.bin", bytesOf(in.slots));
  std::ofstream plan(out + "/plan.txt"), manifest(out + "/manifest.txt");
  plan << "module " << config << "/kernels.ptx\n";
  auto file = [&](const char *n) { return " file:" + config + "/in/" + n; };
  plan << "buffer x 2 64x8x128" << file("x.bin") << "\n"
       << "buffer pos 8 64" << file("pos.bin") << "\n"
       << "buffer cos 4 4096x64" << file("cos.bin") << "\n"
       << "buffer sin 4 4096x64" << file("sin.bin") << "\n"
       << "buffer gain 4 64x8x128" << file("gain.bin") << "\n"
       << "buffer bias 4 8x128" << file("bias.bin") << "\n"
       << "buffer slots 8 64" << file("slots.bin") << "\n";
  for (const char *name : kGPUFunctions) {
    std::string callee;
    module->lookupSymbol<func::FuncOp>(name).walk(
        [&](func::CallOp call) { callee = call.getCallee().str(); });
    ASSERT_FALSE(callee.empty()) << name;
    const std::string kc = std::string("kc_") + name;
    const std::string vc = std::string("vc_") + name;
    plan << "buffer " << kc << " 1 8x16x8x128 fill:a5\n"
         << "buffer " << vc << " 1 8x16x8x128 fill:a5\n";
    // 64 tokens x 8 heads x 128 / 8 elements per item / 128 threads;
    // every size is static: no size parameters.
    plan << "launch " << callee << "_kernel 64 128 slots " << kc << " " << vc
         << " "
         << (StringRef(name).ends_with("_per_head") ? kPerHeadScales
                                                    : "scale:0.05 scale:0.07");
    for (const std::string &operand : operands[name])
      plan << " " << operand;
    plan << "\n";
    plan << "dump " << kc << " dumps-" << config << "/" << name << ".k\n"
         << "dump " << vc << " dumps-" << config << "/" << name << ".v\n";
    manifest << name << "\n";
  }
  ASSERT_TRUE(plan.good() && manifest.good());
}

/// KVQ_FUSED_GPU_DUMPS=<dumps-fused> (from run-gpu-checks.sh): the caches
/// the GPU's fused stores wrote equal the CPU's, byte for byte.
TEST_F(KVQFusedStoreExecTest, GPUDumpsMatchCPU) {
  const char *dir = std::getenv("KVQ_FUSED_GPU_DUMPS");
  if (!dir)
    GTEST_SKIP() << "set KVQ_FUSED_GPU_DUMPS to check the GPU's caches";
  int fusedStores = 0;
  std::unique_ptr<ExecutionEngine> engine = compile(true, fusedStores);
  ASSERT_TRUE(engine);
  const Inputs in;
  for (const char *name : kGPUFunctions) {
    SCOPED_TRACE(name);
    std::array<std::vector<uint8_t>, 2> cpu = runStep(*engine, name, in);
    for (int s = 0; s < 2; ++s) {
      std::string path = std::string(dir) + "/" + name + (s ? ".v" : ".k");
      std::ifstream f(path, std::ios::binary);
      std::vector<uint8_t> gpu((std::istreambuf_iterator<char>(f)),
                               std::istreambuf_iterator<char>());
      ASSERT_EQ(gpu.size(), cpu[s].size()) << path;
      int64_t mismatches = 0;
      for (size_t i = 0; i < gpu.size(); ++i)
        mismatches += gpu[i] != cpu[s][i];
      EXPECT_EQ(mismatches, 0) << path;
    }
    std::printf("[ kvq      ] %s: %zu + %zu cache bytes, GPU = CPU\n", name,
                cpu[0].size(), cpu[1].size());
  }
}

} // namespace
