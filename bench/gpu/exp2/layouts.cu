// ===- bench/gpu/exp2/layouts.cu - work-item layouts of the cache kernels -===//
//
// NOT kvq output: hand-written CUDA with kvq's numerics (division-free
// quotient for the scales 0.05 / 0.07, which kvq proves), to measure on an H100 which thread -> element mapping the
// lowering should emit (bench/gpu/exp2/exp2.py). Compiled by exp2/gen.sh:
//   EPI    elements per work item (4: store only, an 8-byte read and a
//          4-byte write per stream; 16: one 16-byte fp8 write per item; the
//          store then reads 32 contiguous bf16 bytes per thread as two
//          16-byte loads; 8: one 16-byte bf16 read, one 8-byte write)
//   SPLIT  (EPI 16, store only) the item's two 8-element halves lie 256
//          elements apart, so that each load instruction of a warp reads
//          512 contiguous bytes
//   ITEMS  work items per thread and loop pass, a grid apart (LITEMS: load)
//   EXACT  1: kvq's quotient with its FMA correction; 0: x * RN(1/s) alone
//   PF     L2 prefetch-size hint on the loads: 0 none, 1 L2::128B, 2 L2::256B
//          (all loads are inline-PTX ld.global, volatile: issued in order)
//   BARE   1: 14 parameters (5 pointers, 4 scales, 5 sizes) instead of
//          kvq's 49 (45 memref descriptor fields, 4 scales); 2: 10
//          (5 pointers, 4 scales, T)
//
// ===----------------------------------------------------------------------===//
#include <cstdint>

#ifndef EPI
#define EPI 16
#endif
#ifndef SPLIT
#define SPLIT 0
#endif
#ifndef ITEMS
#define ITEMS 1
#endif
#ifndef LITEMS
#define LITEMS 2
#endif
constexpr int TPB = 128;
constexpr int H = 8;

#define P1(n) const int64_t *n##_a, const int64_t *n, int64_t n##_o, int64_t n##_s0, int64_t n##_t0
#define P3(T, n)                                                               \
  T *n##_a, T *n, int64_t n##_o, int64_t n##_s0, int64_t n##_s1,               \
      int64_t n##_s2, int64_t n##_t0, int64_t n##_t1, int64_t n##_t2
#define P4(T, n)                                                               \
  T *n##_a, T *n, int64_t n##_o, int64_t n##_s0, int64_t n##_s1,               \
      int64_t n##_s2, int64_t n##_s3, int64_t n##_t0, int64_t n##_t1,          \
      int64_t n##_t2, int64_t n##_t3

#ifndef PF
#define PF 0
#endif
// PF: L2 prefetch-size hint on every global load (0 none, 1 128 B, 2 256 B).
#if PF == 1
#define PFX ".L2::128B"
#elif PF == 2
#define PFX ".L2::256B"
#else
#define PFX ""
#endif
__device__ __forceinline__ uint4 ld16(const void *p) {
  uint4 r;
  asm volatile("ld.global" PFX ".v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  return r;
}
__device__ __forceinline__ uint2 ld8(const void *p) {
  uint2 r;
  asm volatile("ld.global" PFX ".v2.u32 {%0, %1}, [%2];" : "=r"(r.x), "=r"(r.y) : "l"(p));
  return r;
}
__device__ __forceinline__ int64_t ldi64(const int64_t *p) {
  int64_t r;
  asm volatile("ld.global" PFX ".s64 %0, [%1];" : "=l"(r) : "l"(p));
  return r;
}
#ifndef EXACT
#define EXACT 0
#endif
#ifndef BARE
#define BARE 0
#endif
// EXACT 1: kvq's division-free quotient (ScaledDivision.h): clamp, RN(x*r),
// one FMA correction, zero sign kept. EXACT 0: RN(x * RN(1/s)) alone.
__device__ __forceinline__ float quot(float x, float s, float r) {
#if EXACT
  float b = s * 131072.0f;
  float x1;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(x1) : "f"(x), "f"(-b));
  asm("min.NaN.f32 %0, %0, %1;" : "+f"(x1) : "f"(b));
  float q0 = __fmul_rn(x1, r);
  float e = __fmaf_rn(-s, q0, x1);
  float q = __fmaf_rn(e, r, q0);
  return q0 == 0.0f ? q0 : q;
#else
  return __fmul_rn(x, r);
#endif
}

__device__ __forceinline__ uint32_t cvt2(float lo, float hi) {
  unsigned short r;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(r) : "f"(hi), "f"(lo));
  return r;
}

// 8 bf16 (uint4) -> 8 e4m3 bytes (uint2).
__device__ __forceinline__ uint2 quant8(uint4 in, float s, float r) {
  const uint32_t *p = reinterpret_cast<const uint32_t *>(&in);
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    w[i] = cvt2(quot(__uint_as_float(p[i] << 16), s, r),
                quot(__uint_as_float(p[i] & 0xFFFF0000u), s, r));
  return make_uint2(w[0] | w[1] << 16, w[2] | w[3] << 16);
}

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

// Element offsets (within a token's H*D row) of the 8-element halves of
// item r (EPI / 8 halves).
__device__ __forceinline__ int64_t half_off(int64_t r, int h) {
  if (EPI == 8) return r * 8;
  if (!SPLIT) return r * 16 + h * 8;
  return (r / 32) * 512 + h * 256 + (r % 32) * 8;
}

template <int D>
__device__ __forceinline__ void store(const int64_t *slots, int64_t T,
                                      const uint16_t *k, const uint16_t *v,
                                      uint8_t *kc, uint8_t *vc, float sk,
                                      float rk, float sv, float rv) {
  constexpr int NH = EPI / 8;
  constexpr int64_t row = H * D / EPI;
  const int64_t total = T * row;
  const int64_t stride = int64_t(gridDim.x) * TPB;
  for (int64_t base = int64_t(blockIdx.x) * TPB + threadIdx.x; base < total;
       base += stride * ITEMS) {
    uint4 ka[ITEMS][NH], va[ITEMS][NH];
    int64_t slot[ITEMS], t[ITEMS], r[ITEMS];
    bool ok[ITEMS];
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      int64_t i = base + j * stride;
      ok[j] = i < total;
      if (!ok[j]) i = base;
      t[j] = i / row;
      r[j] = i % row;
#pragma unroll
      for (int h = 0; h < NH; ++h) {
        ka[j][h] = ld16(k + t[j] * H * D + half_off(r[j], h));
        va[j][h] = ld16(v + t[j] * H * D + half_off(r[j], h));
      }
      slot[j] = ldi64(slots + t[j]);
    }
#pragma unroll
    for (int j = 0; j < ITEMS; ++j) {
      uint2 qk[NH], qv[NH];
#pragma unroll
      for (int h = 0; h < NH; ++h) {
        qk[h] = quant8(ka[j][h], sk, rk);
        qv[h] = quant8(va[j][h], sv, rv);
      }
      if (ok[j] && slot[j] >= 0) {
        int64_t base_off = slot[j] * (H * D);
        if (NH == 2 && !SPLIT) {
          *reinterpret_cast<uint4 *>(kc + base_off + r[j] * 16) =
              make_uint4(qk[0].x, qk[0].y, qk[NH - 1].x, qk[NH - 1].y);
          *reinterpret_cast<uint4 *>(vc + base_off + r[j] * 16) =
              make_uint4(qv[0].x, qv[0].y, qv[NH - 1].x, qv[NH - 1].y);
        } else {
#pragma unroll
          for (int h = 0; h < NH; ++h) {
            *reinterpret_cast<uint2 *>(kc + base_off + half_off(r[j], h)) = qk[h];
            *reinterpret_cast<uint2 *>(vc + base_off + half_off(r[j], h)) = qv[h];
          }
        }
      }
    }
  }
}

// 4 bf16 (uint2) -> 4 e4m3 bytes.
__device__ __forceinline__ uint32_t quant4(uint2 in, float s, float r) {
  return cvt2(quot(__uint_as_float(in.x << 16), s, r),
              quot(__uint_as_float(in.x & 0xFFFF0000u), s, r)) |
         cvt2(quot(__uint_as_float(in.y << 16), s, r),
              quot(__uint_as_float(in.y & 0xFFFF0000u), s, r)) << 16;
}

// EPI 4: one 8-byte read and one 4-byte write per stream and work item.
template <int D>
__device__ __forceinline__ void store4(const int64_t *slots, int64_t T,
                                       const uint16_t *k, const uint16_t *v,
                                       uint8_t *kc, uint8_t *vc, float sk,
                                       float rk, float sv, float rv) {
  constexpr int64_t row = H * D / 4;
  const int64_t total = T * row;
  const int64_t stride = int64_t(gridDim.x) * TPB;
  for (int64_t i = int64_t(blockIdx.x) * TPB + threadIdx.x; i < total; i += stride) {
    int64_t t = i / row, r = i % row;
    uint2 ka = ld8(k + t * H * D + r * 4), va = ld8(v + t * H * D + r * 4);
    int64_t slot = ldi64(slots + t);
    uint32_t qk = quant4(ka, sk, rk), qv = quant4(va, sv, rv);
    if (slot >= 0) {
      *reinterpret_cast<uint32_t *>(kc + slot * (H * D) + r * 4) = qk;
      *reinterpret_cast<uint32_t *>(vc + slot * (H * D) + r * 4) = qv;
    }
  }
}

template <int D>
__device__ __forceinline__ void load(const int64_t *slots, int64_t T,
                                     const uint8_t *kc, const uint8_t *vc,
                                     uint16_t *ko, uint16_t *vo, float sk,
                                     float sv) {
  constexpr int64_t row = H * D / 8;
  const int64_t total = T * row;
  const int64_t stride = int64_t(gridDim.x) * TPB;
  for (int64_t base = int64_t(blockIdx.x) * TPB + threadIdx.x; base < total;
       base += stride * LITEMS) {
    int64_t slot[LITEMS], t[LITEMS], r[LITEMS];
    bool ok[LITEMS];
#pragma unroll
    for (int j = 0; j < LITEMS; ++j) {
      int64_t i = base + j * stride;
      bool in = i < total;
      if (!in) i = base;
      t[j] = i / row;
      r[j] = i % row;
      int64_t s = ldi64(slots + t[j]);
      ok[j] = in && s >= 0;
      slot[j] = ok[j] ? s : 0;
    }
    uint2 kb[LITEMS], vb[LITEMS];
#pragma unroll
    for (int j = 0; j < LITEMS; ++j) {
      int64_t off = slot[j] * (H * D) + r[j] * 8;
      kb[j] = ld8(kc + off);
      vb[j] = ld8(vc + off);
    }
#pragma unroll
    for (int j = 0; j < LITEMS; ++j) {
      uint4 a = deq8(kb[j], sk), b = deq8(vb[j], sv);
      if (ok[j]) {
        int64_t off = t[j] * (H * D) + r[j] * 8;
        *reinterpret_cast<uint4 *>(ko + off) = a;
        *reinterpret_cast<uint4 *>(vo + off) = b;
      }
    }
  }
}

#define SCALES float sk, float rk, float sv, float rv
#if EPI == 4
#define STORE store4
#else
#define STORE store
#endif
#if BARE == 2
// 10 parameters: the five pointers, the four scalars, T.
#define KERNELS(D)                                                             \
  extern "C" __global__ void __launch_bounds__(TPB) store_d##D##_kernel(       \
      const int64_t *s, const uint16_t *k, const uint16_t *v, uint8_t *kc,      \
      uint8_t *vc, SCALES, int64_t T) {                                         \
    STORE<D>(s, T, k, v, kc, vc, sk, rk, sv, rv);                              \
  }                                                                            \
  extern "C" __global__ void __launch_bounds__(TPB) load_d##D##_kernel(        \
      const int64_t *s, const uint8_t *kc, const uint8_t *vc, uint16_t *ko,     \
      uint16_t *vo, SCALES, int64_t T) {                                        \
    load<D>(s, T, kc, vc, ko, vo, sk, sv);                                     \
  }
#elif BARE
// 14 parameters: the five aligned pointers, the four scalars, then the
// dynamic sizes (T, T, T, blocks, blocks for the store).
#define KERNELS(D)                                                             \
  extern "C" __global__ void __launch_bounds__(TPB) store_d##D##_kernel(       \
      const int64_t *s, const uint16_t *k, const uint16_t *v, uint8_t *kc,      \
      uint8_t *vc, SCALES, int64_t T, int64_t, int64_t, int64_t, int64_t) {     \
    STORE<D>(s, T, k, v, kc, vc, sk, rk, sv, rv);                              \
  }                                                                            \
  extern "C" __global__ void __launch_bounds__(TPB) load_d##D##_kernel(        \
      const int64_t *s, const uint8_t *kc, const uint8_t *vc, uint16_t *ko,     \
      uint16_t *vo, SCALES, int64_t T, int64_t, int64_t, int64_t, int64_t) {    \
    load<D>(s, T, kc, vc, ko, vo, sk, sv);                                     \
  }
#else
#define KERNELS(D)                                                             \
  extern "C" __global__ void __launch_bounds__(TPB) store_d##D##_kernel(       \
      P1(s), P3(const uint16_t, k), P3(const uint16_t, v), P4(uint8_t, kc),    \
      P4(uint8_t, vc), SCALES) {                                               \
    STORE<D>(s, s_s0, k, v, kc, vc, sk, rk, sv, rv);                           \
  }                                                                            \
  extern "C" __global__ void __launch_bounds__(TPB) load_d##D##_kernel(        \
      P1(s), P4(const uint8_t, kc), P4(const uint8_t, vc), P3(uint16_t, ko),   \
      P3(uint16_t, vo), SCALES) {                                              \
    load<D>(s, s_s0, kc, vc, ko, vo, sk, sv);                                  \
  }
#endif

KERNELS(64)
KERNELS(128)
KERNELS(256)

// Launch-cost probes: no work, no parameters / kvq's 49 parameters.
extern "C" __global__ void __launch_bounds__(TPB) empty0_kernel() {}
extern "C" __global__ void __launch_bounds__(TPB) empty49_kernel(
    P1(s), P3(const uint16_t, k), P3(const uint16_t, v), P4(uint8_t, kc),
    P4(uint8_t, vc), float a, float b, float c, float d) {
  if (s_s0 < 0 && a == b) *kc = 0;   // never true; keeps the parameters
}
extern "C" __global__ void __launch_bounds__(TPB) empty14_kernel(
    const int64_t *s, const uint16_t *k, const uint16_t *v, uint8_t *kc,
    uint8_t *vc, float a, float b, float c, float d, int64_t T, int64_t,
    int64_t, int64_t, int64_t) {
  if (T < 0 && a == b) *kc = 0;   // never true; keeps the parameters
}
