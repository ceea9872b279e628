//===- kvq-launch.cpp - run kvq kernels from PTX (CUDA driver API) --------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// A minimal CUDA driver-API launcher for the kernels of `kvq-to-ptx`, used to
// check on a real GPU that they are bit-exact with the CPU reference (see
// run-gpu-checks.sh), and as an example of the kernel ABI documented in
// `kvq-lower-cache-ops`: one pointer per memref, the f32 scales, then the
// sizes the memref types leave dynamic.
//
// Build (needs only cuda.h and libcuda):
//   g++ -O2 -std=c++17 -I/usr/local/cuda/include kvq-launch.cpp \
//       -L/usr/local/cuda/lib64/stubs -lcuda -o kvq-launch
//
// It reads a plan, one command per line:
//   module <file.ptx>
//   buffer <name> <elem_bytes> <d0>x<d1>x... <init>
//       init: zero | fill:<hex byte> | iota |
//       slots:<capacity>:<seed>:<pad_every>
//             | randn:<bf16|f16>:<seed> | file:<path> (the bytes of a file
//             of exactly the buffer's size)
//   launch <kernel> <grid> <block> <operand>...
//   time <kernel> <grid> <block> <iterations> <operand>...
//       grid and block: <x> or <x>x<y>x<z>;
//       operands in kernel order: a buffer name (the pointer of a memref),
//       scale:<s> (the f32 pair s, RN(1/s) that cache kernels take per
//       stream after their memrefs), scales:<s0>,<s1>,... (per-head
//       scales: the pair of each KV head, in head order), size:<buffer> (the
//       buffer's leading size, an i64, for a memref type whose leading size is
//       dynamic), f32:<x> (x given as a C hex float keeps every bit) or
//       i64:<n>
//   dump <buffer> <file>
//   timecopy <bytes> <iterations>   (device-to-device copy, for reference)
// `iota` sets element i to i (truncated to the element size); `slots`
// draws distinct random slots below capacity (i64), with every
// pad_every-th one -1; `randn` fills with N(0, 2) values rounded to bf16 or
// f16.
//
//===----------------------------------------------------------------------===//

#include <cuda.h>

#include <algorithm>
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
#include <sstream>
#include <string>
#include <vector>

namespace {

void check(CUresult r, const char *what) {
  if (r == CUDA_SUCCESS)
    return;
  const char *msg = nullptr;
  cuGetErrorString(r, &msg);
  std::fprintf(stderr, "kvq-launch: %s: %s\n", what, msg ? msg : "?");
  std::exit(1);
}

[[noreturn]] void fail(const std::string &msg) {
  std::fprintf(stderr, "kvq-launch: %s\n", msg.c_str());
  std::exit(1);
}

struct Buffer {
  unsigned elemBytes = 0;
  std::vector<int64_t> shape;
  std::vector<uint8_t> host;
  CUdeviceptr dev = 0;
  int64_t count() const {
    return std::accumulate(shape.begin(), shape.end(), int64_t(1),
                           std::multiplies<int64_t>());
  }
};

uint16_t roundToHalfBits(float f, bool bf16) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (bf16)
    return uint16_t((u + 0x7FFF + ((u >> 16) & 1)) >> 16); // finite inputs
  // f16, normal range only (|f| < 65504, > 2^-14 or 0): enough for N(0, 2).
  if (std::fabs(f) < 6.1035156e-05f)
    return (u >> 16) & 0x8000;
  int32_t e = int32_t((u >> 23) & 0xFF) - 127 + 15;
  uint32_t m = u & 0x7FFFFF;
  uint32_t h = (uint32_t(e) << 10) | (m >> 13);
  uint32_t rest = m & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h;
  return uint16_t(((u >> 16) & 0x8000) | h);
}

void initBuffer(Buffer &b, const std::string &init) {
  b.host.assign(b.count() * b.elemBytes, 0);
  std::istringstream parts(init);
  std::string kind;
  std::getline(parts, kind, ':');
  if (kind == "zero")
    return;
  if (kind == "fill") {
    std::string v;
    std::getline(parts, v);
    std::fill(b.host.begin(), b.host.end(),
              uint8_t(std::stoul(v, nullptr, 16)));
    return;
  }
  if (kind == "iota") {
    for (int64_t i = 0; i < b.count(); ++i)
      std::memcpy(&b.host[i * b.elemBytes], &i, b.elemBytes);
    return;
  }
  if (kind == "slots") {
    std::string cap, seed, pad;
    std::getline(parts, cap, ':');
    std::getline(parts, seed, ':');
    std::getline(parts, pad, ':');
    std::vector<int64_t> perm(std::stoll(cap));
    std::iota(perm.begin(), perm.end(), 0);
    std::mt19937 rng(std::stoul(seed));
    std::shuffle(perm.begin(), perm.end(), rng);
    int64_t padEvery = std::stoll(pad);
    if (b.elemBytes != 8 || b.count() > int64_t(perm.size()))
      fail("slots: expects i64 and capacity >= tokens");
    for (int64_t t = 0; t < b.count(); ++t) {
      int64_t s = (padEvery > 0 && t % padEvery == padEvery - 1) ? -1 : perm[t];
      std::memcpy(&b.host[t * 8], &s, 8);
    }
    return;
  }
  if (kind == "randn") {
    std::string type, seed;
    std::getline(parts, type, ':');
    std::getline(parts, seed, ':');
    std::mt19937 rng(std::stoul(seed));
    std::normal_distribution<float> normal(0.0f, 2.0f);
    for (int64_t i = 0; i < b.count(); ++i) {
      uint16_t h = roundToHalfBits(normal(rng), type == "bf16");
      std::memcpy(&b.host[i * 2], &h, 2);
    }
    return;
  }
  if (kind == "file") {
    std::string path;
    std::getline(parts, path);
    std::ifstream f(path, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                               std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof())
      fail("cannot read " + path);
    if (bytes.size() != b.host.size())
      fail(path + ": " + std::to_string(bytes.size()) +
           " bytes, the buffer has " + std::to_string(b.host.size()));
    b.host = std::move(bytes);
    return;
  }
  fail("unknown init '" + init + "'");
}

/// "<x>" or "<x>x<y>x<z>".
std::array<unsigned, 3> parseDims(const std::string &text) {
  std::array<unsigned, 3> dims = {1, 1, 1};
  std::istringstream in(text);
  std::string part;
  for (unsigned i = 0; i < 3 && std::getline(in, part, 'x'); ++i)
    dims[i] = unsigned(std::stoul(part));
  return dims;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2)
    fail("usage: kvq-launch <plan>");
  std::ifstream plan(argv[1]);
  if (!plan)
    fail(std::string("cannot open ") + argv[1]);

  check(cuInit(0), "cuInit");
  CUdevice device;
  check(cuDeviceGet(&device, 0), "cuDeviceGet");
  CUcontext ctx;
  check(cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
  check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  char name[256];
  cuDeviceGetName(name, sizeof(name), device);
  std::printf("device: %s\n", name);

  CUmodule module = nullptr;
  std::map<std::string, Buffer> buffers;
  std::string line;
  while (std::getline(plan, line)) {
    std::istringstream in(line);
    std::string cmd;
    if (!(in >> cmd) || cmd[0] == '#')
      continue;
    if (cmd == "module") {
      std::string path;
      in >> path;
      std::ifstream f(path);
      std::stringstream text;
      text << f.rdbuf();
      std::string ptx = text.str();
      char log[8192] = {0};
      CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER,
                             CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
      void *vals[] = {log, reinterpret_cast<void *>(sizeof(log))};
      CUresult r = cuModuleLoadDataEx(&module, ptx.c_str(), 2, opts, vals);
      if (r != CUDA_SUCCESS)
        std::fprintf(stderr, "%s\n", log);
      check(r, ("cuModuleLoadData " + path).c_str());
    } else if (cmd == "buffer") {
      std::string bname, shape, init;
      Buffer b;
      in >> bname >> b.elemBytes >> shape >> init;
      std::istringstream dims(shape);
      std::string d;
      while (std::getline(dims, d, 'x'))
        b.shape.push_back(std::stoll(d));
      initBuffer(b, init);
      check(cuMemAlloc(&b.dev, std::max<size_t>(b.host.size(), 16)),
            "cuMemAlloc");
      check(cuMemcpyHtoD(b.dev, b.host.data(), b.host.size()), "HtoD");
      buffers[bname] = std::move(b);
    } else if (cmd == "launch" || cmd == "time") {
      std::string kernel, gridText, blockText;
      unsigned iterations = 1;
      in >> kernel >> gridText >> blockText;
      std::array<unsigned, 3> grid = parseDims(gridText),
                              block = parseDims(blockText);
      if (cmd == "time")
        in >> iterations;
      CUfunction fn;
      check(cuModuleGetFunction(&fn, module, kernel.c_str()),
            ("cuModuleGetFunction " + kernel).c_str());
      // Each parameter in its own 8-byte slot: a pointer, an i64, or an
      // f32 in the low half.
      std::vector<uint64_t> storage;
      std::string bname;
      std::vector<std::string> names;
      while (in >> bname)
        names.push_back(bname);
      auto bufferNamed = [&](const std::string &n) -> const Buffer & {
        auto it = buffers.find(n);
        if (it == buffers.end())
          fail("unknown buffer " + n);
        return it->second;
      };
      // s and RN(1/s): an IEEE f32 division, as kvq's host code does.
      auto pushScale = [&](float scale) {
        for (float f : {scale, 1.0f / scale}) {
          uint64_t slot = 0;
          std::memcpy(&slot, &f, sizeof(f));
          storage.push_back(slot);
        }
      };
      for (const std::string &n : names) {
        if (n.rfind("scale:", 0) == 0) {
          pushScale(std::stof(n.substr(6)));
        } else if (n.rfind("scales:", 0) == 0) {
          std::istringstream list(n.substr(7));
          std::string one;
          while (std::getline(list, one, ','))
            pushScale(std::stof(one));
        } else if (n.rfind("size:", 0) == 0) {
          storage.push_back(uint64_t(bufferNamed(n.substr(5)).shape.at(0)));
        } else if (n.rfind("f32:", 0) == 0) {
          float f = std::strtof(n.c_str() + 4, nullptr);
          uint64_t slot = 0;
          std::memcpy(&slot, &f, sizeof(f));
          storage.push_back(slot);
        } else if (n.rfind("i64:", 0) == 0) {
          storage.push_back(uint64_t(std::stoll(n.substr(4))));
        } else {
          storage.push_back(bufferNamed(n).dev);
        }
      }
      std::vector<void *> params;
      for (uint64_t &v : storage)
        params.push_back(&v);
      CUevent start, stop;
      check(cuEventCreate(&start, 0), "cuEventCreate");
      check(cuEventCreate(&stop, 0), "cuEventCreate");
      auto launch = [&] {
        return cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1],
                              block[2], 0, nullptr, params.data(), nullptr);
      };
      if (cmd == "time") // warm up
        check(launch(), "cuLaunchKernel");
      check(cuEventRecord(start, nullptr), "cuEventRecord");
      for (unsigned i = 0; i < iterations; ++i)
        check(launch(), ("cuLaunchKernel " + kernel).c_str());
      check(cuEventRecord(stop, nullptr), "cuEventRecord");
      check(cuCtxSynchronize(), ("kernel " + kernel).c_str());
      float ms = 0;
      cuEventElapsedTime(&ms, start, stop);
      if (cmd == "time")
        std::printf("time %s grid %s block %s: %.4f ms/launch\n",
                    kernel.c_str(), gridText.c_str(), blockText.c_str(),
                    ms / iterations);
    } else if (cmd == "timecopy") {
      size_t bytes;
      unsigned iterations;
      in >> bytes >> iterations;
      CUdeviceptr src, dst;
      check(cuMemAlloc(&src, bytes), "cuMemAlloc");
      check(cuMemAlloc(&dst, bytes), "cuMemAlloc");
      check(cuMemcpyDtoD(dst, src, bytes), "cuMemcpyDtoD");
      CUevent start, stop;
      check(cuEventCreate(&start, 0), "cuEventCreate");
      check(cuEventCreate(&stop, 0), "cuEventCreate");
      check(cuEventRecord(start, nullptr), "cuEventRecord");
      for (unsigned i = 0; i < iterations; ++i)
        check(cuMemcpyDtoD(dst, src, bytes), "cuMemcpyDtoD");
      check(cuEventRecord(stop, nullptr), "cuEventRecord");
      check(cuCtxSynchronize(), "copy");
      float ms = 0;
      cuEventElapsedTime(&ms, start, stop);
      std::printf("time copy %zu bytes: %.4f ms/copy, %.3f TB/s\n", bytes,
                  ms / iterations, 2.0 * bytes / (ms / iterations) / 1e9);
      cuMemFree(src);
      cuMemFree(dst);
    } else if (cmd == "dump") {
      std::string bname, path;
      in >> bname >> path;
      Buffer &b = buffers.at(bname);
      check(cuMemcpyDtoH(b.host.data(), b.dev, b.host.size()), "DtoH");
      std::ofstream out(path, std::ios::binary);
      out.write(reinterpret_cast<const char *>(b.host.data()), b.host.size());
    } else {
      fail("unknown command '" + cmd + "'");
    }
  }
  std::printf("ok\n");
  return 0;
}
