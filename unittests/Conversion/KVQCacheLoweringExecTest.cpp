//===- KVQCacheLoweringExecTest.cpp - bit-exact CPU lowering tests --------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Runs kvq.cache_store / kvq.cache_load through --kvq-to-llvm, JIT-compiles
// them with mlir::ExecutionEngine and compares every output byte with a
// reference written with llvm::APFloat:
//
// - store: every bf16 and every f16 bit pattern (65536 each), for six
//   scales, into f8E4M3FN, f8E4M3FNUZ, f8E5M2, f8E5M2FNUZ and i8, with
//   the division-free quotient (the default) and with arith.divf;
// - load: every one of the 256 cache bytes, for six scales, from each
//   format into bf16, f16 and f32;
// - padding slots (-1) leave poisoned cache / output rows untouched;
// - a store -> load round trip on realistic shapes (8 KV heads, head size
//   128, block size 16, 300 tokens, random distinct slots, some -1).
//
// One JIT compilation per (format, direction, type): the values of a test
// sit in one memref, the scales in several layers of one module.
//
//===----------------------------------------------------------------------===//

#include "kvq/Conversion/KVQCacheLowering/ScaledDivision.h"
#include "kvq/Conversion/Passes.h"
#include "kvq/InitAllKVQ.h"
#include "unittests/Conversion/CacheStoreReference.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

using namespace mlir;
using namespace mlir::kvq::test::store;
using llvm::APFloat;
using llvm::APInt;

namespace {

//===----------------------------------------------------------------------===//
// Formats and the APFloat reference
//===----------------------------------------------------------------------===//

/// The scales every exhaustive test uses: 1; 0.05 (pushes large values past
/// the maximum); 1e-3; 1000 (pushes values into subnormals); a
/// non-power-of-two with few bits; 3 (an inexact reciprocal).
const float kScales[] = {1.0f, 0.05f, 1e-3f, 1000.0f, 0.0123291015625f, 3.0f};

//===----------------------------------------------------------------------===//
// Memrefs owned by the test
//===----------------------------------------------------------------------===//

/// A contiguous memref of `N` dimensions over raw bytes of `elemBytes`
/// each, passed to the JIT code as a StridedMemRefType descriptor.
template <int N> struct Buffer {
  Buffer(std::array<int64_t, N> shape, unsigned elemBytes, uint8_t fill = 0)
      : elemBytes(elemBytes) {
    int64_t count = 1;
    for (int64_t d : shape)
      count *= d;
    bytes.assign(count * elemBytes, fill);
    desc.basePtr = desc.data = bytes.data();
    desc.offset = 0;
    int64_t stride = 1;
    for (int i = N - 1; i >= 0; --i) {
      desc.sizes[i] = shape[i];
      desc.strides[i] = stride;
      stride *= shape[i];
    }
  }
  uint32_t get(int64_t i) const {
    uint32_t v = 0;
    std::memcpy(&v, bytes.data() + i * elemBytes, elemBytes);
    return v;
  }
  void set(int64_t i, uint32_t v) {
    std::memcpy(bytes.data() + i * elemBytes, &v, elemBytes);
  }
  int64_t size() const { return bytes.size() / elemBytes; }
  StridedMemRefType<uint8_t, N> *ptr() { return &desc; }

  unsigned elemBytes;
  std::vector<uint8_t> bytes;
  StridedMemRefType<uint8_t, N> desc;
};

//===----------------------------------------------------------------------===//
// Fixture: parse, lower with --kvq-to-llvm, JIT
//===----------------------------------------------------------------------===//

std::string floatText(float v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return s;
}

/// `kvq.layer @<name> cache(<dtype>) resolved(<k, v scales>)`.
std::string layerText(const std::string &name, const std::string &dtype,
                      float k, float v) {
  return "kvq.layer @" + name + " cache(" + dtype +
         ") resolved(#kvq.resolved_scales<k = " + floatText(k) +
         " checkpoint, v = " + floatText(v) +
         " checkpoint, q = 1.0 default, prob = 1.0 default>)\n";
}

/// "[a, b, ...]" of per-head scales.
std::string headList(const std::vector<float> &heads) {
  std::string text = "[";
  for (size_t i = 0; i < heads.size(); ++i)
    text += (i ? ", " : "") + floatText(heads[i]);
  return text + "]";
}

/// A layer with per-head K and V scales (compressed-tensors attn_head).
std::string perHeadLayerText(const std::string &name, const std::string &dtype,
                             const std::vector<float> &k,
                             const std::vector<float> &v) {
  return "kvq.layer @" + name + " cache(" + dtype +
         ") resolved(#kvq.resolved_scales<k = " + headList(k) +
         " checkpoint, v = " + headList(v) +
         " checkpoint, q = 1.0 default, prob = 1.0 default>)\n";
}

class KVQCacheLoweringExecTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    kvq::registerKVQConversionPasses();
  }

  KVQCacheLoweringExecTest() {
    DialectRegistry registry;
    registerAllDialects(registry);
    registerAllExtensions(registry);
    registerAllToLLVMIRTranslations(registry);
    kvq::registerAllKVQDialects(registry);
    context.appendDialectRegistry(registry);
    context.disableMultithreading(); // 2-core CI machines; keep it lean
  }

  /// Parses `source`, lowers it with kvq-to-llvm (`quantize-division` =
  /// `division`) and JIT-compiles it; counts the FMAs of the lowered code
  /// in `fmaCount`.
  std::unique_ptr<ExecutionEngine>
  compile(const std::string &source, const std::string &division = "auto") {
    OwningOpRef<ModuleOp> module =
        parseSourceString<ModuleOp>(source, &context);
    if (!module) {
      ADD_FAILURE() << "cannot parse:\n" << source;
      return nullptr;
    }
    PassManager pm(&context);
    kvq::KVQToLLVMPipelineOptions pipeline;
    pipeline.quantizeDivision = division;
    kvq::buildKVQToLLVMPipeline(pm, pipeline);
    if (failed(pm.run(*module))) {
      ADD_FAILURE() << "kvq-to-llvm failed on:\n" << source;
      return nullptr;
    }
    fmaCount = 0;
    module->walk([&](LLVM::FMAOp) { ++fmaCount; });
    ExecutionEngineOptions options;
    auto engine = ExecutionEngine::create(*module, options);
    if (!engine) {
      ADD_FAILURE() << "JIT failed: " << llvm::toString(engine.takeError());
      return nullptr;
    }
    return std::move(*engine);
  }

  template <typename... Args>
  void run(ExecutionEngine &engine, StringRef name, Args... args) {
    llvm::Error error = engine.invoke(name, args...);
    ASSERT_FALSE(bool(error)) << llvm::toString(std::move(error));
  }

  MLIRContext context;
  int fmaCount = 0;
};

/// Collects the first mismatches of a comparison for a readable failure.
struct Mismatches {
  int64_t count = 0;
  std::string first;
  void add(const std::string &what) {
    if (count++ < 8)
      first += "  " + what + "\n";
  }
};

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%X", v);
  return buf;
}

//===----------------------------------------------------------------------===//
// Exhaustive store
//===----------------------------------------------------------------------===//

TEST_F(KVQCacheLoweringExecTest, ExhaustiveStore) {
  // 65536 values as 4096 tokens x 1 head x 16 elements, stored at slot t of
  // a [256 blocks, 16, 1, 16] cache: the cache bytes are in input order.
  // Every way of dividing: fma multiplies by the reciprocal with two FMAs
  // per stream (every scale here is proven for bf16 and f16), so the three
  // layers' stores share one function, which takes the scales as
  // operands; auto multiplies alone where proveReciprocalProduct() allows
  // it for the format, with the FMAs elsewhere (layers whose streams differ
  // so get functions of their own); divf divides.
  constexpr int64_t kTokens = 4096, kD = 16;
  for (const char *division : {"auto", "fma", "divf"})
    for (const ActType *act : {&kBF16, &kF16}) {
      for (const CacheFormat &fmt : kAllFormats) {
        SCOPED_TRACE(std::string(act->mlirType) + " -> " + fmt.mlirType +
                     ", quantize-division=" + division);
        std::string actT =
            "memref<4096x1x16x" + std::string(act->mlirType) + ">";
        std::string cacheT =
            "memref<256x16x1x16x" + std::string(fmt.mlirType) + ">";
        std::string src;
        for (int l = 0; l < 3; ++l)
          src += layerText("L" + std::to_string(l), fmt.dtype, kScales[2 * l],
                           kScales[2 * l + 1]);
        src += "func.func @store(%x: " + actT;
        for (int c = 0; c < 6; ++c)
          src += ", %c" + std::to_string(c) + ": " + cacheT;
        src += ", %s: memref<4096xi64>) attributes {llvm.emit_c_interface} {\n";
        for (int l = 0; l < 3; ++l)
          src += "  kvq.cache_store @L" + std::to_string(l) +
                 " (%x, %x) into (%c" + std::to_string(2 * l) + ", %c" +
                 std::to_string(2 * l + 1) + ") at %s : " + actT + ", " +
                 cacheT + ", memref<4096xi64>\n";
        src += "  return\n}\n";

        std::unique_ptr<ExecutionEngine> engine = compile(src, division);
        ASSERT_TRUE(engine);
        // 2 FMAs per corrected stream of each distinct function.
        int expectedFMAs = 0;
        if (std::string(division) == "fma") {
          expectedFMAs = 4;
        } else if (std::string(division) == "auto") {
          std::set<std::pair<bool, bool>> functions;
          for (int l = 0; l < 3; ++l) {
            auto product = [&](float scale) {
              return kvq::proveReciprocalProduct(
                  scale, *act->sem, kvq::cacheThresholdBits(fmt.sem));
            };
            functions.insert(
                {product(kScales[2 * l]), product(kScales[2 * l + 1])});
          }
          for (auto [k, v] : functions)
            expectedFMAs += 2 * (!k + !v);
        }
        EXPECT_EQ(fmaCount, expectedFMAs);

        Buffer<3> x({kTokens, 1, kD}, 2);
        for (int64_t i = 0; i < x.size(); ++i)
          x.set(i, uint32_t(i));
        std::vector<Buffer<4>> caches;
        for (int c = 0; c < 6; ++c)
          caches.emplace_back(std::array<int64_t, 4>{256, 16, 1, kD}, 1, 0xA5);
        Buffer<1> slots({kTokens}, 8);
        for (int64_t t = 0; t < kTokens; ++t) {
          int64_t slot = t;
          std::memcpy(slots.bytes.data() + 8 * t, &slot, 8);
        }
        run(*engine, "store", x.ptr(), caches[0].ptr(), caches[1].ptr(),
            caches[2].ptr(), caches[3].ptr(), caches[4].ptr(), caches[5].ptr(),
            slots.ptr());

        for (int c = 0; c < 6; ++c) {
          float s = kScales[c];
          SCOPED_TRACE("scale " + floatText(s));
          Mismatches bad;
          for (int64_t i = 0; i < 65536; ++i) {
            APFloat in = toF32(fromBits(*act->sem, i));
            uint8_t want = refQuantize(fmt, in, s);
            uint8_t got = caches[c].get(i);
            if (got != want)
              bad.add("input " + hex(i) + ": got " + hex(got) + ", want " +
                      hex(want));
          }
          EXPECT_EQ(bad.count, 0) << bad.first;
        }
      }
    }
}

//===----------------------------------------------------------------------===//
// Exhaustive load
//===----------------------------------------------------------------------===//

TEST_F(KVQCacheLoweringExecTest, ExhaustiveLoad) {
  // 256 cache bytes as a [16 blocks, 16, 1, 1] cache read by 256 tokens at
  // slot t into [256, 1, 1] outputs.
  for (const CacheFormat &fmt : kAllFormats) {
    for (const ActType *out : {&kBF16, &kF16, &kF32}) {
      SCOPED_TRACE(std::string(fmt.mlirType) + " -> " + out->mlirType);
      std::string outT = "memref<256x1x1x" + std::string(out->mlirType) + ">";
      std::string cacheT =
          "memref<16x16x1x1x" + std::string(fmt.mlirType) + ">";
      std::string src;
      for (int l = 0; l < 3; ++l)
        src += layerText("L" + std::to_string(l), fmt.dtype, kScales[2 * l],
                         kScales[2 * l + 1]);
      src += "func.func @load(%c: " + cacheT;
      for (int o = 0; o < 6; ++o)
        src += ", %o" + std::to_string(o) + ": " + outT;
      src += ", %s: memref<256xi64>) attributes {llvm.emit_c_interface} {\n";
      for (int l = 0; l < 3; ++l)
        src += "  kvq.cache_load @L" + std::to_string(l) +
               " (%c, %c) at %s into (%o" + std::to_string(2 * l) + ", %o" +
               std::to_string(2 * l + 1) + ") : " + cacheT +
               ", memref<256xi64>, " + outT + "\n";
      src += "  return\n}\n";

      std::unique_ptr<ExecutionEngine> engine = compile(src);
      ASSERT_TRUE(engine);

      Buffer<4> cache({16, 16, 1, 1}, 1);
      for (int64_t i = 0; i < 256; ++i)
        cache.set(i, uint32_t(i));
      std::vector<Buffer<3>> outs;
      for (int o = 0; o < 6; ++o)
        outs.emplace_back(std::array<int64_t, 3>{256, 1, 1}, out->bytes, 0xA5);
      Buffer<1> slots({256}, 8);
      for (int64_t t = 0; t < 256; ++t)
        std::memcpy(slots.bytes.data() + 8 * t, &t, 8);
      run(*engine, "load", cache.ptr(), outs[0].ptr(), outs[1].ptr(),
          outs[2].ptr(), outs[3].ptr(), outs[4].ptr(), outs[5].ptr(),
          slots.ptr());

      for (int o = 0; o < 6; ++o) {
        float s = kScales[o];
        SCOPED_TRACE("scale " + floatText(s));
        Mismatches bad;
        for (int64_t i = 0; i < 256; ++i) {
          uint32_t want = refDequantize(fmt, uint8_t(i), s, *out);
          uint32_t got = outs[o].get(i);
          if (got != want)
            bad.add("byte " + hex(i) + ": got " + hex(got) + ", want " +
                    hex(want));
        }
        EXPECT_EQ(bad.count, 0) << bad.first;
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Per-head scales
//===----------------------------------------------------------------------===//

/// Four KV heads, each with its own K and V scale (all of kScales, in an
/// order that gives every head a different pair).
const std::vector<float> kHeadK = {0.05f, 1e-3f, 1000.0f, 3.0f};
const std::vector<float> kHeadV = {0.0123291015625f, 1.0f, 3.0f, 0.05f};

TEST_F(KVQCacheLoweringExecTest, PerHeadExhaustiveStore) {
  // Every bf16 / f16 bit pattern in every one of 4 heads: [4096, 4, 16]
  // activations (element (t, h, d) is pattern t * 16 + d), stored at slot t
  // of a [256, 16, 4, 16] cache; each head quantized with its own scale,
  // compared with the APFloat reference of a per-tensor store with that
  // scale. K and V read the same activations with different scales. The
  // quotient is one per stream, the cheapest proven for all four heads'
  // scales; the `auto` caches copy whatever the scales.
  constexpr int64_t kTokens = 4096, kH = 4, kD = 16;
  const CacheFormat kAutoBF16{"bf16", "auto", nullptr};
  const CacheFormat kAutoF16{"f16", "auto", nullptr};
  for (const char *division : {"auto", "fma", "divf"})
    for (const ActType *act : {&kBF16, &kF16}) {
      std::vector<CacheFormat> formats(std::begin(kAllFormats),
                                       std::end(kAllFormats));
      formats.push_back(act == &kBF16 ? kAutoBF16 : kAutoF16);
      for (const CacheFormat &fmt : formats) {
        SCOPED_TRACE(std::string(act->mlirType) + " -> " + fmt.mlirType +
                     ", quantize-division=" + division);
        const bool isAuto = std::string(fmt.dtype) == "auto";
        std::string actT =
            "memref<4096x4x16x" + std::string(act->mlirType) + ">";
        std::string cacheT =
            "memref<256x16x4x16x" + std::string(fmt.mlirType) + ">";
        std::string src = perHeadLayerText("L", fmt.dtype, kHeadK, kHeadV);
        src += "func.func @store(%x: " + actT + ", %kc: " + cacheT +
               ", %vc: " + cacheT +
               ", %s: memref<4096xi64>) attributes {llvm.emit_c_interface} "
               "{\n  kvq.cache_store @L (%x, %x) into (%kc, %vc) at %s : " +
               actT + ", " + cacheT + ", memref<4096xi64>\n  return\n}\n";

        std::unique_ptr<ExecutionEngine> engine = compile(src, division);
        ASSERT_TRUE(engine);
        // 2 FMAs per corrected stream: a stream multiplies alone only if
        // the product is proven for every head's scale.
        int expectedFMAs = 0;
        if (!isAuto && std::string(division) == "fma") {
          expectedFMAs = 4;
        } else if (!isAuto && std::string(division) == "auto") {
          for (const std::vector<float> *heads : {&kHeadK, &kHeadV}) {
            bool product = llvm::all_of(*heads, [&](float scale) {
              return kvq::proveReciprocalProduct(
                  scale, *act->sem, kvq::cacheThresholdBits(fmt.sem));
            });
            expectedFMAs += product ? 0 : 2;
          }
        }
        EXPECT_EQ(fmaCount, expectedFMAs);

        Buffer<3> x({kTokens, kH, kD}, 2);
        for (int64_t t = 0; t < kTokens; ++t)
          for (int64_t h = 0; h < kH; ++h)
            for (int64_t d = 0; d < kD; ++d)
              x.set((t * kH + h) * kD + d, uint32_t(t * kD + d));
        unsigned cacheBytes = isAuto ? 2 : 1;
        Buffer<4> kc({256, 16, kH, kD}, cacheBytes, 0xA5),
            vc({256, 16, kH, kD}, cacheBytes, 0xA5);
        Buffer<1> slots({kTokens}, 8);
        for (int64_t t = 0; t < kTokens; ++t)
          std::memcpy(slots.bytes.data() + 8 * t, &t, 8);
        run(*engine, "store", x.ptr(), kc.ptr(), vc.ptr(), slots.ptr());

        for (auto [cache, heads, name] : {std::make_tuple(&kc, &kHeadK, "K"),
                                          std::make_tuple(&vc, &kHeadV, "V")}) {
          Mismatches bad;
          for (int64_t i = 0; i < x.size(); ++i) {
            int64_t h = (i / kD) % kH;
            uint32_t in = x.get(i);
            uint32_t want =
                isAuto ? in
                       : refQuantize(fmt, toF32(fromBits(*act->sem, in)),
                                     (*heads)[h]);
            uint32_t got = cache->get(i);
            if (got != want)
              bad.add(std::string(name) + " head " + std::to_string(h) +
                      " input " + hex(in) + ": got " + hex(got) + ", want " +
                      hex(want));
          }
          EXPECT_EQ(bad.count, 0) << bad.first;
        }
      }
    }
}

TEST_F(KVQCacheLoweringExecTest, PerHeadExhaustiveLoad) {
  // Every cache byte in every one of 4 heads: a [16, 16, 4, 1] cache whose
  // slot t holds byte t in each head, read by 256 tokens at slot t into
  // [256, 4, 1] outputs; each head dequantized with its own scale.
  constexpr int64_t kH = 4;
  for (const CacheFormat &fmt : kAllFormats) {
    for (const ActType *out : {&kBF16, &kF16, &kF32}) {
      SCOPED_TRACE(std::string(fmt.mlirType) + " -> " + out->mlirType);
      std::string outT = "memref<256x4x1x" + std::string(out->mlirType) + ">";
      std::string cacheT =
          "memref<16x16x4x1x" + std::string(fmt.mlirType) + ">";
      std::string src = perHeadLayerText("L", fmt.dtype, kHeadK, kHeadV);
      src += "func.func @load(%kc: " + cacheT + ", %vc: " + cacheT +
             ", %ko: " + outT + ", %vo: " + outT +
             ", %s: memref<256xi64>) attributes {llvm.emit_c_interface} {\n"
             "  kvq.cache_load @L (%kc, %vc) at %s into (%ko, %vo) : " +
             cacheT + ", memref<256xi64>, " + outT + "\n  return\n}\n";

      std::unique_ptr<ExecutionEngine> engine = compile(src);
      ASSERT_TRUE(engine);

      Buffer<4> kc({16, 16, kH, 1}, 1), vc({16, 16, kH, 1}, 1);
      for (int64_t i = 0; i < kc.size(); ++i) {
        kc.set(i, uint32_t(i / kH));
        vc.set(i, uint32_t(255 - i / kH));
      }
      Buffer<3> ko({256, kH, 1}, out->bytes, 0xA5),
          vo({256, kH, 1}, out->bytes, 0xA5);
      Buffer<1> slots({256}, 8);
      for (int64_t t = 0; t < 256; ++t)
        std::memcpy(slots.bytes.data() + 8 * t, &t, 8);
      run(*engine, "load", kc.ptr(), vc.ptr(), ko.ptr(), vo.ptr(), slots.ptr());

      for (auto [cache, outs, heads, name] :
           {std::make_tuple(&kc, &ko, &kHeadK, "K"),
            std::make_tuple(&vc, &vo, &kHeadV, "V")}) {
        Mismatches bad;
        for (int64_t i = 0; i < outs->size(); ++i) {
          int64_t h = i % kH;
          uint8_t byte = uint8_t(cache->get(i));
          uint32_t want = refDequantize(fmt, byte, (*heads)[h], *out);
          uint32_t got = outs->get(i);
          if (got != want)
            bad.add(std::string(name) + " head " + std::to_string(h) +
                    " byte " + hex(byte) + ": got " + hex(got) + ", want " +
                    hex(want));
        }
        EXPECT_EQ(bad.count, 0) << bad.first;
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Specials, padding slots, and a realistic round trip
//===----------------------------------------------------------------------===//

/// Module with one layer and a store and a load function on
/// [T, H, D] activations and [NB, BS, H, D] caches.
std::string roundTripModule(const CacheFormat &fmt, const char *actType,
                            int64_t h, int64_t d, int64_t bs, float ks,
                            float vs) {
  std::string cacheElem = fmt.mlirType;
  std::string dtype = fmt.dtype;
  if (std::string(fmt.mlirType) == actType)
    dtype = "auto";
  std::string hd = std::to_string(h) + "x" + std::to_string(d) + "x";
  std::string actT = "memref<?x" + hd + actType + ">";
  std::string cacheT =
      "memref<?x" + std::to_string(bs) + "x" + hd + cacheElem + ">";
  std::string src = layerText("L", dtype, ks, vs);
  src += "func.func @store(%k: " + actT + ", %v: " + actT + ", %kc: " + cacheT +
         ", %vc: " + cacheT +
         ", %s: memref<?xi64>) attributes {llvm.emit_c_interface} {\n"
         "  kvq.cache_store @L (%k, %v) into (%kc, %vc) at %s : " +
         actT + ", " + cacheT + ", memref<?xi64>\n  return\n}\n";
  src += "func.func @load(%kc: " + cacheT + ", %vc: " + cacheT +
         ", %s: memref<?xi64>, %k: " + actT + ", %v: " + actT +
         ") attributes {llvm.emit_c_interface} {\n"
         "  kvq.cache_load @L (%kc, %vc) at %s into (%k, %v) : " +
         cacheT + ", memref<?xi64>, " + actT + "\n  return\n}\n";
  return src;
}

TEST_F(KVQCacheLoweringExecTest, PaddingSlotsAndSpecials) {
  // 6 tokens, 2 heads, 4 elements; tokens 1 and 4 are padding (slot -1).
  // Values include NaN, +-inf, +-0 and values beyond the maximum.
  const int64_t kT = 6, kH = 2, kD = 4, kBS = 4, kNB = 3;
  const int64_t slotOf[kT] = {5, -1, 0, 11, -1, 7};
  const uint16_t specials[] = {0x7FC0, 0xFFC0, 0x7F80, 0xFF80, 0x0000, 0x8000,
                               0x4780, 0xC780, 0x3F80, 0xBF80, 0x0001, 0x8001,
                               0x7F81, 0x3C00, 0x4440, 0xC440};
  for (const CacheFormat &fmt : kAllFormats) {
    SCOPED_TRACE(fmt.mlirType);
    float ks = 0.5f, vs = 2.0f;
    std::unique_ptr<ExecutionEngine> engine =
        compile(roundTripModule(fmt, "bf16", kH, kD, kBS, ks, vs));
    ASSERT_TRUE(engine);

    Buffer<3> k({kT, kH, kD}, 2), v({kT, kH, kD}, 2);
    for (int64_t i = 0; i < k.size(); ++i) {
      k.set(i, specials[i % 16]);
      v.set(i, specials[(i + 5) % 16]);
    }
    Buffer<4> kc({kNB, kBS, kH, kD}, 1, 0xA5), vc({kNB, kBS, kH, kD}, 1, 0x5A);
    Buffer<1> slots({kT}, 8);
    for (int64_t t = 0; t < kT; ++t)
      std::memcpy(slots.bytes.data() + 8 * t, &slotOf[t], 8);
    run(*engine, "store", k.ptr(), v.ptr(), kc.ptr(), vc.ptr(), slots.ptr());

    // Rows that no token maps to keep the poison; mapped rows hold the
    // reference bytes.
    const int64_t row = kH * kD;
    for (int64_t slot = 0; slot < kNB * kBS; ++slot) {
      int64_t token = -1;
      for (int64_t t = 0; t < kT; ++t)
        if (slotOf[t] == slot)
          token = t;
      for (int64_t e = 0; e < row; ++e) {
        uint8_t wantK = 0xA5, wantV = 0x5A;
        if (token >= 0) {
          wantK = refQuantize(
              fmt, toF32(fromBits(APFloat::BFloat(), k.get(token * row + e))),
              ks);
          wantV = refQuantize(
              fmt, toF32(fromBits(APFloat::BFloat(), v.get(token * row + e))),
              vs);
        }
        EXPECT_EQ(kc.get(slot * row + e), wantK)
            << "K slot " << slot << " element " << e;
        EXPECT_EQ(vc.get(slot * row + e), wantV)
            << "V slot " << slot << " element " << e;
      }
    }

    // Load back into poisoned outputs: padding tokens keep the poison.
    Buffer<3> ko({kT, kH, kD}, 2, 0xEE), vo({kT, kH, kD}, 2, 0xDD);
    run(*engine, "load", kc.ptr(), vc.ptr(), slots.ptr(), ko.ptr(), vo.ptr());
    for (int64_t t = 0; t < kT; ++t) {
      for (int64_t e = 0; e < row; ++e) {
        uint32_t wantK = 0xEEEE, wantV = 0xDDDD;
        if (slotOf[t] >= 0) {
          wantK = refDequantize(fmt, kc.get(slotOf[t] * row + e), ks, kBF16);
          wantV = refDequantize(fmt, vc.get(slotOf[t] * row + e), vs, kBF16);
        }
        EXPECT_EQ(ko.get(t * row + e), wantK) << "K token " << t << " " << e;
        EXPECT_EQ(vo.get(t * row + e), wantV) << "V token " << t << " " << e;
      }
    }
  }
}

TEST_F(KVQCacheLoweringExecTest, RealisticRoundTrip) {
  // Llama-3-8B-like: 8 KV heads, head size 128, block size 16; 300 tokens
  // scattered over 32 blocks (512 slots) at random distinct slots, every
  // 23rd token padding.
  const int64_t kT = 300, kH = 8, kD = 128, kBS = 16, kNB = 32;
  const int64_t row = kH * kD;
  std::mt19937 rng(1234);
  std::vector<int64_t> perm(kNB * kBS);
  for (int64_t i = 0; i < int64_t(perm.size()); ++i)
    perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int64_t> slotOf(kT);
  for (int64_t t = 0; t < kT; ++t)
    slotOf[t] = t % 23 == 7 ? -1 : perm[t];
  std::normal_distribution<float> normal(0.0f, 2.0f);

  struct Case {
    CacheFormat fmt;
    const ActType *act;
  };
  const CacheFormat kAutoBF16{"bf16", "auto", nullptr};
  for (const Case &c : {Case{kE4M3FN, &kBF16}, Case{kE4M3FNUZ, &kBF16},
                        Case{kE5M2, &kF16}, Case{kE5M2FNUZ, &kBF16},
                        Case{kInt8, &kBF16}, Case{kAutoBF16, &kBF16}}) {
    SCOPED_TRACE(std::string(c.act->mlirType) + " -> " + c.fmt.mlirType);
    const bool isAuto = std::string(c.fmt.dtype) == "auto";
    float ks = isAuto ? 1.0f : 0.0173f, vs = isAuto ? 1.0f : 0.0091f;
    std::unique_ptr<ExecutionEngine> engine =
        compile(roundTripModule(c.fmt, c.act->mlirType, kH, kD, kBS, ks, vs));
    ASSERT_TRUE(engine);

    Buffer<3> k({kT, kH, kD}, 2), v({kT, kH, kD}, 2);
    auto randomBits = [&] {
      APFloat f(normal(rng));
      bool losesInfo;
      f.convert(*c.act->sem, APFloat::rmNearestTiesToEven, &losesInfo);
      return uint32_t(f.bitcastToAPInt().getZExtValue());
    };
    for (int64_t i = 0; i < k.size(); ++i) {
      k.set(i, randomBits());
      v.set(i, randomBits());
    }
    unsigned cacheBytes = isAuto ? 2 : 1;
    Buffer<4> kc({kNB, kBS, kH, kD}, cacheBytes, 0xA5),
        vc({kNB, kBS, kH, kD}, cacheBytes, 0xA5);
    Buffer<1> slots({kT}, 8);
    for (int64_t t = 0; t < kT; ++t)
      std::memcpy(slots.bytes.data() + 8 * t, &slotOf[t], 8);
    run(*engine, "store", k.ptr(), v.ptr(), kc.ptr(), vc.ptr(), slots.ptr());

    Buffer<3> ko({kT, kH, kD}, 2, 0xEE), vo({kT, kH, kD}, 2, 0xEE);
    run(*engine, "load", kc.ptr(), vc.ptr(), slots.ptr(), ko.ptr(), vo.ptr());

    Mismatches bad;
    for (int64_t t = 0; t < kT; ++t) {
      for (int64_t e = 0; e < row; ++e) {
        int64_t a = t * row + e;
        uint32_t wantKo = 0xEEEE, wantVo = 0xEEEE;
        if (slotOf[t] >= 0) {
          int64_t ci = slotOf[t] * row + e;
          uint32_t wantKc = k.get(a), wantVc = v.get(a);
          if (!isAuto) {
            wantKc =
                refQuantize(c.fmt, toF32(fromBits(*c.act->sem, k.get(a))), ks);
            wantVc =
                refQuantize(c.fmt, toF32(fromBits(*c.act->sem, v.get(a))), vs);
          }
          if (kc.get(ci) != wantKc || vc.get(ci) != wantVc)
            bad.add("cache of token " + std::to_string(t) + " element " +
                    std::to_string(e));
          wantKo = isAuto ? wantKc : refDequantize(c.fmt, wantKc, ks, *c.act);
          wantVo = isAuto ? wantVc : refDequantize(c.fmt, wantVc, vs, *c.act);
        }
        if (ko.get(a) != wantKo || vo.get(a) != wantVo)
          bad.add("output of token " + std::to_string(t) + " element " +
                  std::to_string(e) + ": K got " + hex(ko.get(a)) + " want " +
                  hex(wantKo));
      }
    }
    // Rows of the cache that no token maps to keep the poison.
    for (int64_t slot = 0; slot < kNB * kBS; ++slot) {
      if (std::find(slotOf.begin(), slotOf.end(), slot) != slotOf.end())
        continue;
      for (int64_t e = 0; e < row; ++e)
        if (kc.get(slot * row + e) != (isAuto ? 0xA5A5u : 0xA5u))
          bad.add("unmapped slot " + std::to_string(slot) + " overwritten");
    }
    EXPECT_EQ(bad.count, 0) << bad.first;
  }
}

//===----------------------------------------------------------------------===//
// Outputs of the GPU kernels (test/Integration/GPU/CUDA/run-gpu-checks.sh)
//===----------------------------------------------------------------------===//

std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

/// Checks the dumps of a GPU run against the same APFloat reference, when
/// KVQ_GPU_DUMPS names the folder holding them and their manifest.txt
/// (skipped otherwise: CI machines have no GPU).
TEST(KVQCacheLoweringGPU, GPUDumpsMatchReference) {
  const char *dir = std::getenv("KVQ_GPU_DUMPS");
  if (!dir)
    GTEST_SKIP() << "set KVQ_GPU_DUMPS to the dumps of run-gpu-checks.sh";
  std::ifstream manifest(std::string(dir) + "/manifest.txt");
  ASSERT_TRUE(manifest.good()) << "no manifest.txt in " << dir;

  auto format = [](const std::string &name) -> std::optional<CacheFormat> {
    for (const CacheFormat &f : kAllFormats)
      if (name == f.mlirType)
        return f;
    if (name == "bf16")
      return CacheFormat{"bf16", "auto", nullptr};
    return std::nullopt;
  };
  auto actType = [](const std::string &name) {
    return name == "bf16" ? &kBF16 : name == "f16" ? &kF16 : &kF32;
  };
  auto load = [&](const std::string &file) {
    return readFile(std::string(dir) + "/" + file);
  };
  // A stream's scale: one value, or one per KV head ("s0,s1,..."): element
  // e of a row of `row` elements is in head e * heads / row.
  auto parseScales = [](const std::string &text) {
    std::vector<float> scales;
    std::istringstream list(text);
    std::string one;
    while (std::getline(list, one, ','))
      scales.push_back(std::stof(one));
    return scales;
  };

  int checks = 0;
  std::string line;
  while (std::getline(manifest, line)) {
    std::istringstream in(line);
    std::string kind;
    if (!(in >> kind))
      continue;
    SCOPED_TRACE(line);
    ++checks;
    if (kind == "store_rows") {
      std::string act, fmtName, scaleText, xFile, slotFile, cacheFile,
          poisonHex;
      int64_t numTokens, row, numSlots;
      in >> act >> fmtName >> scaleText >> xFile >> slotFile >> cacheFile >>
          numTokens >> row >> numSlots >> poisonHex;
      std::vector<float> scales = parseScales(scaleText);
      ASSERT_FALSE(scales.empty());
      ASSERT_EQ(row % int64_t(scales.size()), 0);
      std::optional<CacheFormat> fmt = format(fmtName);
      ASSERT_TRUE(fmt);
      const ActType *a = actType(act);
      bool isAuto = std::string(fmt->dtype) == "auto";
      unsigned cacheBytes = isAuto ? a->bytes : 1;
      std::vector<uint8_t> x = load(xFile), slots = load(slotFile),
                           cache = load(cacheFile);
      ASSERT_EQ(int64_t(cache.size()), numSlots * row * cacheBytes);
      std::vector<int64_t> tokenOf(numSlots, -1);
      for (int64_t t = 0; t < numTokens; ++t) {
        int64_t slot;
        std::memcpy(&slot, &slots[8 * t], 8);
        if (slot >= 0)
          tokenOf[slot] = t;
      }
      uint8_t poison = uint8_t(std::stoul(poisonHex, nullptr, 16));
      Mismatches bad;
      for (int64_t slot = 0; slot < numSlots; ++slot) {
        for (int64_t e = 0; e < row; ++e) {
          uint32_t got = 0, want = 0;
          std::memcpy(&got, &cache[(slot * row + e) * cacheBytes], cacheBytes);
          int64_t t = tokenOf[slot];
          if (t < 0) {
            std::memset(&want, poison, cacheBytes);
          } else {
            uint32_t in = 0;
            std::memcpy(&in, &x[(t * row + e) * a->bytes], a->bytes);
            float scale = scales[e * scales.size() / row];
            want = isAuto
                       ? in
                       : refQuantize(*fmt, toF32(fromBits(*a->sem, in)), scale);
            if (got != want)
              bad.add("input " + hex(in) + ": got " + hex(got) + ", want " +
                      hex(want));
            continue;
          }
          if (got != want)
            bad.add("untouched slot " + std::to_string(slot) + " changed");
        }
      }
      EXPECT_EQ(bad.count, 0) << bad.first;
    } else if (kind == "load_rows") {
      std::string fmtName, out, scaleText, cacheFile, slotFile, outFile,
          poisonHex;
      int64_t numTokens, row;
      in >> fmtName >> out >> scaleText >> cacheFile >> slotFile >> outFile >>
          numTokens >> row >> poisonHex;
      std::vector<float> scales = parseScales(scaleText);
      ASSERT_FALSE(scales.empty());
      ASSERT_EQ(row % int64_t(scales.size()), 0);
      std::optional<CacheFormat> fmt = format(fmtName);
      ASSERT_TRUE(fmt);
      const ActType *o = actType(out);
      bool isAuto = std::string(fmt->dtype) == "auto";
      unsigned cacheBytes = isAuto ? o->bytes : 1;
      std::vector<uint8_t> cache = load(cacheFile), slots = load(slotFile),
                           outs = load(outFile);
      ASSERT_EQ(int64_t(outs.size()), numTokens * row * o->bytes);
      uint8_t poison = uint8_t(std::stoul(poisonHex, nullptr, 16));
      Mismatches bad;
      for (int64_t t = 0; t < numTokens; ++t) {
        int64_t slot;
        std::memcpy(&slot, &slots[8 * t], 8);
        for (int64_t e = 0; e < row; ++e) {
          uint32_t got = 0, want = 0;
          std::memcpy(&got, &outs[(t * row + e) * o->bytes], o->bytes);
          if (slot < 0) {
            std::memset(&want, poison, o->bytes);
          } else {
            uint32_t c = 0;
            std::memcpy(&c, &cache[(slot * row + e) * cacheBytes], cacheBytes);
            float scale = scales[e * scales.size() / row];
            want = isAuto ? c : refDequantize(*fmt, uint8_t(c), scale, *o);
          }
          if (got != want)
            bad.add("token " + std::to_string(t) + " element " +
                    std::to_string(e) + ": got " + hex(got) + ", want " +
                    hex(want));
        }
      }
      EXPECT_EQ(bad.count, 0) << bad.first;
    } else {
      ADD_FAILURE() << "unknown check " << kind;
    }
  }
  EXPECT_GT(checks, 0);
  std::printf("checked %d GPU outputs\n", checks);
}

} // namespace
