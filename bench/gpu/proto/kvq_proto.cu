// ===- bench/gpu/proto/kvq_proto.cu - hand-written twin of kvq's kernels --===//
//
// NOT kvq output: a CUDA C++ kernel with kvq's exact numerics and kernel ABI
// (include/kvq/Conversion/Passes.td, kvq-lower-cache-ops: 45 u64 parameters,
// the memref descriptors of slot_mapping, K src, V src, K dst, V dst), used
// by bench/gpu/kvq_bench.py to measure what a different *code shape* would
// give, so that the lowering can be changed on evidence:
//   ITEMS    work items per thread and grid-stride step, all of their loads
//            (slots, and for the store K/V too) issued before any
//            conversion or store; the launch uses ITEMS times fewer blocks
//            (the PTX says so in a `// kvq_bench: items_per_thread=N` line).
//   DIVMODE  0: x / s as kvq (div.rn.f32); 1: RN(1/s) multiply with one FMA
//            correction, as ptx_variant.py's mulfma.
// The store's K/V loads never wait for the slot (only the stores do).
// Compiled to PTX on the build machine by bench/gpu/gen.sh:
//   nvcc -arch=sm_90 -ptx -O3 -DITEMS=2 -DDIVMODE=1 kvq_proto.cu
//
// ===----------------------------------------------------------------------===//
#include <cstdint>

#ifndef ITEMS
#define ITEMS 2
#endif
#ifndef DIVMODE
#define DIVMODE 0
#endif
#ifndef TPB
#define TPB 128
#endif

constexpr int H = 8;
constexpr float SK = 0.05f, SV = 0.07f;

#define P1(n) const int64_t *n##_a, const int64_t *n, int64_t n##_o, int64_t n##_s0, int64_t n##_t0
#define P3(T, n)                                                               \
  T *n##_a, T *n, int64_t n##_o, int64_t n##_s0, int64_t n##_s1,               \
      int64_t n##_s2, int64_t n##_t0, int64_t n##_t1, int64_t n##_t2
#define P4(T, n)                                                               \
  T *n##_a, T *n, int64_t n##_o, int64_t n##_s0, int64_t n##_s1,               \
      int64_t n##_s2, int64_t n##_s3, int64_t n##_t0, int64_t n##_t1,          \
      int64_t n##_t2, int64_t n##_t3

__device__ __forceinline__ float quot(float x, float s, float r) {
#if DIVMODE == 0
  return __fdiv_rn(x, s);
#else
  float x1;
  asm("min.NaN.f32 %0, %1, 0f71800000;" : "=f"(x1) : "f"(x));
  asm("max.NaN.f32 %0, %0, 0fF1800000;" : "+f"(x1));
  float q = __fmul_rn(x1, r);
  float e = __fmaf_rn(-s, q, x1);
  q = __fmaf_rn(e, r, q);
  return copysignf(q, x);
#endif
}

// Two f32 -> two e4m3 bytes, `lo` in the low byte; RNE, satfinite, NaN 0x7F.
__device__ __forceinline__ uint32_t cvt2(float lo, float hi) {
  unsigned short r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  return r;
}

// 16 bf16 (as 2 x uint4) -> 16 e4m3 bytes (uint4).
__device__ __forceinline__ uint4 quant16(const uint4 (&in)[2], float s, float r) {
  uint32_t w[8];
  const uint32_t *p = reinterpret_cast<const uint32_t *>(in);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    float lo = __uint_as_float(p[i] << 16);
    float hi = __uint_as_float(p[i] & 0xFFFF0000u);
    w[i] = cvt2(quot(lo, s, r), quot(hi, s, r));
  }
  return make_uint4(w[0] | w[1] << 16, w[2] | w[3] << 16, w[4] | w[5] << 16,
                    w[6] | w[7] << 16);
}

// 8 e4m3 bytes (uint2) -> 8 bf16 (uint4): f32(c) * s, RNE, NaN -> 0x7FC0.
__device__ __forceinline__ uint32_t deq2(uint32_t two, float s) {
  uint32_t h2;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h2) : "h"((unsigned short)two));
  float lo, hi;
  asm("{.reg .f16 l, h; mov.b32 {l, h}, %2; cvt.f32.f16 %0, l; cvt.f32.f16 %1, h;}"
      : "=f"(lo), "=f"(hi) : "r"(h2));
  lo = __fmul_rn(lo, s);
  hi = __fmul_rn(hi, s);
  unsigned short l16, h16;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(l16) : "f"(lo));
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h16) : "f"(hi));
  uint32_t bl = l16, bh = h16;
  if (lo != lo) bl = 0x7FC0;
  if (hi != hi) bh = 0x7FC0;
  return bl | bh << 16;
}

__device__ __forceinline__ uint4 deq8(uint2 c, float s) {
  return make_uint4(deq2(c.x, s), deq2(c.x >> 16, s), deq2(c.y, s), deq2(c.y >> 16, s));
}

template <int D>
__device__ __forceinline__ void store(const int64_t *slots, int64_t T,
                                      const uint16_t *k, const uint16_t *v,
                                      uint8_t *kc, uint8_t *vc) {
  constexpr int64_t row = H * D / 16; // work items per token
  const int64_t total = T * row;
  const int64_t stride = int64_t(gridDim.x) * TPB;
  const float rk = 1.0f / SK, rv = 1.0f / SV; // folded: RN(1/s)
  for (int64_t base = int64_t(blockIdx.x) * TPB + threadIdx.x; base < total;
       base += stride * ITEMS) {
    uint4 ka[ITEMS][2], va[ITEMS][2];
    int64_t slot[ITEMS], r[ITEMS];
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      int64_t i = base + j * stride;
      slot[j] = -1;
      if (i < total) {
        int64_t t = i / row;
        r[j] = i % row;
        slot[j] = slots[t];
        const uint4 *kp = reinterpret_cast<const uint4 *>(k + t * H * D + r[j] * 16);
        const uint4 *vp = reinterpret_cast<const uint4 *>(v + t * H * D + r[j] * 16);
        ka[j][0] = kp[0]; ka[j][1] = kp[1];
        va[j][0] = vp[0]; va[j][1] = vp[1];
      }
    }
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      uint4 qk = quant16(ka[j], SK, rk), qv = quant16(va[j], SV, rv);
      if (slot[j] >= 0) {
        int64_t off = slot[j] * (H * D) + r[j] * 16; // [slot/BS, slot%BS] row
        *reinterpret_cast<uint4 *>(kc + off) = qk;
        *reinterpret_cast<uint4 *>(vc + off) = qv;
      }
    }
  }
}

template <int D>
__device__ __forceinline__ void load(const int64_t *slots, int64_t T,
                                     const uint8_t *kc, const uint8_t *vc,
                                     uint16_t *ko, uint16_t *vo) {
  constexpr int64_t row = H * D / 8;
  const int64_t total = T * row;
  const int64_t stride = int64_t(gridDim.x) * TPB;
  for (int64_t base = int64_t(blockIdx.x) * TPB + threadIdx.x; base < total;
       base += stride * ITEMS) {
    int64_t slot[ITEMS], t[ITEMS], r[ITEMS];
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      int64_t i = base + j * stride;
      slot[j] = -1;
      if (i < total) {
        t[j] = i / row;
        r[j] = i % row;
        slot[j] = slots[t[j]];
      }
    }
    uint2 kb[ITEMS], vb[ITEMS];
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      if (slot[j] >= 0) {
        int64_t off = slot[j] * (H * D) + r[j] * 8;
        kb[j] = *reinterpret_cast<const uint2 *>(kc + off);
        vb[j] = *reinterpret_cast<const uint2 *>(vc + off);
      }
    }
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      if (slot[j] >= 0) {
        int64_t off = t[j] * (H * D) + r[j] * 8;
        *reinterpret_cast<uint4 *>(ko + off) = deq8(kb[j], SK);
        *reinterpret_cast<uint4 *>(vo + off) = deq8(vb[j], SV);
      }
    }
  }
}

#define KERNELS(D)                                                             \
  extern "C" __global__ void __launch_bounds__(TPB) store_d##D##_kernel(       \
      P1(s), P3(const uint16_t, k), P3(const uint16_t, v), P4(uint8_t, kc),    \
      P4(uint8_t, vc)) {                                                       \
    store<D>(s, s_s0, k, v, kc, vc);                                           \
  }                                                                            \
  extern "C" __global__ void __launch_bounds__(TPB) load_d##D##_kernel(        \
      P1(s), P4(const uint8_t, kc), P4(const uint8_t, vc), P3(uint16_t, ko),   \
      P3(uint16_t, vo)) {                                                      \
    load<D>(s, s_s0, kc, vc, ko, vo);                                          \
  }

KERNELS(64)
KERNELS(128)
KERNELS(256)
