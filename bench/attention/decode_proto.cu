// ===- bench/attention/decode_proto.cu - decode attention prototypes ------===//
//
// Design study (not the product) for kvq's lowering of decode attention
// over a paged KV cache, mode "dequantized":
//   q [B, Hq, D] bf16; K/V caches [num_blocks, 16, Hkv, D] (vLLM NHD) in
//   fp8 e4m3 (OCP) or bf16; block_tables [B, max_blocks] int32;
//   context_lens [B] int32; out [B, Hq, D] bf16; query head hq reads KV
//   head hq / G, G = Hq / Hkv <= 8; D = 128.
//   score_j = (sum_d f32(q_d) * f32(k_code_jd)) * c,  c = k_scale * sm_scale
//   out_d   = (sum_j p_j * f32(v_code_jd)) * (v_scale / sum_j p_j)
// (the kernels work in the log2 domain: c is passed times log2(e)).
//
// Flash-decoding: grid (split, KV head, sequence); one CTA serves all G
// query heads of its KV head, so every cache byte is read once per step.
// A CTA takes `split_blocks` cache blocks (16 tokens each) of one sequence;
// its warps take every W-th block, each keeps an online softmax
// (max, sum, acc) in f32, the CTA merges its warps in shared memory and
// writes the split's partial state (or, with one split, the output). The
// partial states are merged by combine_kernel, or (fused = 1) by the CTA
// that finishes its (sequence, KV head) last (an atomic counter).
//
// Three ways to do the math (impl):
//   0 SIMT  CUDA cores: fp8 -> f16x2 (cvt.rn.f16x2.e4m3x2) -> f32, f32 FMAs.
//           8 lanes per token row, 16 dims per lane, dot products reduced
//           with shuffles; G is a template parameter (registers).
//   1 MMA   tensor cores, mma.sync m16n8k16 with f32 accumulation:
//           fp8 cache: K and V converted to f16 (cvt), Q bf16 -> f16,
//           P rounded to f16; bf16 cache: bf16 operands as they are,
//           P rounded to bf16. Exactly the dequantized semantics up to the
//           rounding of P (and Q in f16: exact for |q| in f16's normal range).
//   2 MMA8  "FP8 mode" for QK^T: Q quantized to e4m3 (q * q_inv_scale,
//           RN, satfinite), S^T = K Q^T by mma.sync m16n8k32 e4m3 (K used
//           as it is in the cache: no conversion), then P.V as in MMA.
//           Different semantics (Q quantization error); checked against
//           its own reference.
// Both MMA forms compute S^T = K . Q^T (M = 16 tokens of one cache block,
// N = 8 query heads, K = head dims) and out^T = V^T . P^T (M = 16 dims,
// N = 8 heads, K = 16 tokens), so no M rows are padding; heads >= G are
// zero columns. The order of the head dims inside an MMA's K is free (a
// dot product does not care), so each lane loads whole 16-byte pieces of
// its cache rows and Q is loaded in the same permuted order; V^T needs
// tokens paired in one register: one prmt per two words.
//
// Host entry points (extern "C", called through ctypes by
// attention_bench.py): kvq_decode() launches one call (attention kernel +
// combine kernel unless fused), on the given stream (capturable in a CUDA
// graph); kvq_decode_attrs() reports registers / local memory.
//
// ===----------------------------------------------------------------------===//

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

namespace {

constexpr int D = 128;                 // head size
constexpr int BLK = 16;                // tokens per cache block
constexpr int MAXG = 8;                // query heads per KV head, at most
constexpr int MAX_SPLIT_BLOCKS = 512;  // cache blocks per split, at most
constexpr unsigned FULL = 0xffffffffu;

struct Args {
  const __nv_bfloat16 *q;
  const uint8_t *kc, *vc;  // caches, as bytes
  const int *bt, *cl;
  __nv_bfloat16 *out;
  float *pacc;   // [B, Hq, max_splits, D]
  float2 *pml;   // [B, Hq, max_splits]: (max, sum), log2 domain
  unsigned *counters;  // [B, Hkv], zero between calls
  int B, Hq, Hkv, G, max_blocks, max_splits, split_blocks, fused;
  float qk_scale_log2;  // k_scale * sm_scale * log2(e)  (* q_scale, impl 2)
  float v_scale;
  float q_inv_scale;    // impl 2: 1 / q_scale
};

// ----- small helpers ---------------------------------------------------------
__device__ __forceinline__ uint4 ld_stream(const void *p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
  return r;
}
__device__ __forceinline__ uint32_t comp(const uint4 &v, int j) {
  return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t s) {
  return __byte_perm(a, b, s);
}
// Two e4m3 codes (low byte first) -> f16x2 (low half first), exact.
__device__ __forceinline__ uint32_t e4m3x2_f16x2(uint32_t x16) {
  uint32_t r;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(r) : "h"((uint16_t)x16));
  return r;
}
__device__ __forceinline__ uint32_t cvt_lo(uint32_t w) { return e4m3x2_f16x2(w & 0xffff); }
__device__ __forceinline__ uint32_t cvt_hi(uint32_t w) { return e4m3x2_f16x2(w >> 16); }
__device__ __forceinline__ float fast_exp2(float x) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}
__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&h);
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&h);
}
__device__ __forceinline__ float2 f16x2_f32(uint32_t h) {
  return __half22float2(*reinterpret_cast<__half2 *>(&h));
}
__device__ __forceinline__ float2 bf16x2_f32(uint32_t h) {
  return make_float2(__uint_as_float(h << 16), __uint_as_float(h & 0xffff0000u));
}

// D (f32) += A * B, m16n8k16, f16 or bf16 operands.
template <bool BF16>
__device__ __forceinline__ void mma16(float (&c)[4], uint32_t a0, uint32_t a1,
                                      uint32_t a2, uint32_t a3, uint32_t b0,
                                      uint32_t b1) {
  if (BF16)
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  else
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
// D (f32) += A * B, m16n8k32, e4m3 operands (sm_89+).
__device__ __forceinline__ void mma_e4m3(float (&c)[4], uint32_t a0, uint32_t a1,
                                         uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Byte offset of (cache block pb, row r, KV head h) in a cache.
__device__ __forceinline__ size_t row_off(int pb, int r, int h, int Hkv, int esize) {
  return ((size_t)(pb * BLK + r) * Hkv + h) * (size_t)(D * esize);
}

// ----- shared end of a CTA: merge the warps, write partial or output ---------
template <int W>
struct Smem {
  int blk[MAX_SPLIT_BLOCKS];
  float m[W][MAXG], l[W][MAXG];
  float acc[W][MAXG][D];
  int last;
};

// out / partial for query heads h*G .. h*G+G-1 from the warps' states in
// sm.m / sm.l / sm.acc (warps w < W; a warp without blocks has m = -inf,
// l = 0, acc = 0).
template <int W>
__device__ void cta_finish(const Args &a, Smem<W> &sm, int b, int h, int s, int nsplit) {
  const int G = a.G;
  for (int e = threadIdx.x; e < G * D / 4; e += W * 32) {
    const int hh = e / (D / 4), d = (e % (D / 4)) * 4;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < W; ++w) M = fmaxf(M, sm.m[w][hh]);
    float L = 0.f, o[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int w = 0; w < W; ++w) {
      const float f = fast_exp2(sm.m[w][hh] - M);
      L += f * sm.l[w][hh];
#pragma unroll
      for (int j = 0; j < 4; ++j) o[j] += f * sm.acc[w][hh][d + j];
    }
    const int hq = h * G + hh;
    if (nsplit == 1) {
      const float sc = a.v_scale / L;
      uint2 v;
      v.x = pack_bf16(o[0] * sc, o[1] * sc);
      v.y = pack_bf16(o[2] * sc, o[3] * sc);
      *reinterpret_cast<uint2 *>(a.out + ((size_t)b * a.Hq + hq) * D + d) = v;
    } else {
      const size_t pi = ((size_t)b * a.Hq + hq) * a.max_splits + s;
      *reinterpret_cast<float4 *>(a.pacc + pi * D + d) = make_float4(o[0], o[1], o[2], o[3]);
      if (d == 0) a.pml[pi] = make_float2(M, L);
    }
  }
  if (nsplit == 1 || !a.fused) return;
  // Fused combine: the CTA that finishes its (b, h) last merges the splits.
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned prev = atomicAdd(&a.counters[b * a.Hkv + h], 1u);
    sm.last = prev == (unsigned)nsplit - 1;
    if (sm.last) a.counters[b * a.Hkv + h] = 0;  // every split has arrived
  }
  __syncthreads();
  if (!sm.last) return;
  __threadfence();
  for (int e = threadIdx.x; e < G * D / 4; e += W * 32) {
    const int hh = e / (D / 4), d = (e % (D / 4)) * 4;
    const int hq = h * G + hh;
    const size_t p0 = ((size_t)b * a.Hq + hq) * a.max_splits;
    float M = -INFINITY;
    for (int i = 0; i < nsplit; ++i) M = fmaxf(M, __ldcg(&a.pml[p0 + i]).x);
    float L = 0.f;
    float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int i = 0; i < nsplit; ++i) {
      const float2 ml = __ldcg(&a.pml[p0 + i]);
      const float f = fast_exp2(ml.x - M);
      const float4 v = __ldcg(reinterpret_cast<const float4 *>(a.pacc + (p0 + i) * D + d));
      L += f * ml.y;
      o.x += f * v.x; o.y += f * v.y; o.z += f * v.z; o.w += f * v.w;
    }
    const float sc = a.v_scale / L;
    uint2 v;
    v.x = pack_bf16(o.x * sc, o.y * sc);
    v.y = pack_bf16(o.z * sc, o.w * sc);
    *reinterpret_cast<uint2 *>(a.out + ((size_t)b * a.Hq + hq) * D + d) = v;
  }
}

// Common prologue: this CTA's split, block-table slice into shared memory
// (the caller issues its Q and first tile loads, then __syncthreads()).
// Returns false (whole CTA) when the split is past the sequence's end.
template <int W>
__device__ __forceinline__ bool cta_begin(const Args &a, Smem<W> &sm, int &b, int &h, int &s,
                                          int &L, int &first, int &nb, int &nsplit) {
  s = blockIdx.x; h = blockIdx.y; b = blockIdx.z;
  L = a.cl[b];
  const int nblk = (L + BLK - 1) / BLK;
  first = s * a.split_blocks;
  if (first >= nblk) return false;
  nb = min(a.split_blocks, nblk - first);
  nsplit = (nblk + a.split_blocks - 1) / a.split_blocks;
  for (int i = threadIdx.x; i < nb; i += blockDim.x)
    sm.blk[i] = a.bt[(size_t)b * a.max_blocks + first + i];
  return true;
}

// ----- tensor-core kernels (impl 1: MMA, impl 2: MMA8) ----------------------
// Lane l: g = l / 4, t = l % 4 (mma groupID / thread-in-group).
// K tile: rows g and g+8 of the block, 16-byte pieces at byte 64 i + 16 t
//   (i < 2 for fp8, i < 4 for bf16): word w of a row = dims
//   fp8: 64 (w/4) + 16 t + 4 (w%4) .. +3;  bf16: 32 (w/4) + 8 t + 2 (w%4), +1.
// V tile: rows 2t, 2t+1, 2t+8, 2t+9; piece at byte 16 g (fp8) or 128 i + 16 g
//   (bf16, i < 2).
template <bool BF16>
struct MTile {
  uint4 k[2][BF16 ? 4 : 2];
  uint4 v[4][BF16 ? 2 : 1];
};

template <bool BF16>
__device__ __forceinline__ void mtile_load(MTile<BF16> &T, const Args &a, int pb, int h,
                                           int g, int t) {
  constexpr int ES = BF16 ? 2 : 1;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const uint8_t *row = a.kc + row_off(pb, g + 8 * r, h, a.Hkv, ES);
#pragma unroll
    for (int i = 0; i < (BF16 ? 4 : 2); ++i) T.k[r][i] = ld_stream(row + 64 * i + 16 * t);
  }
  const int vr[4] = {2 * t, 2 * t + 1, 2 * t + 8, 2 * t + 9};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint8_t *row = a.vc + row_off(pb, vr[j], h, a.Hkv, ES);
#pragma unroll
    for (int i = 0; i < (BF16 ? 2 : 1); ++i) T.v[j][i] = ld_stream(row + 128 * i + 16 * g);
  }
}

// First of the 4 head dims of QK chunk c (f16/bf16 k16 chunks, c < 8) or of
// word c (impl 2 uses words 2c8, 2c8+1 for its k32 chunk c8).
template <bool BF16>
__device__ __forceinline__ int qdim0(int c, int t) {
  return BF16 ? 32 * (c >> 1) + 8 * t + 4 * (c & 1) : 64 * (c >> 2) + 16 * t + 4 * (c & 3);
}
// Output dims of m-tile mt for lane group g: rows g (base) and g+8 (base+1).
template <bool BF16>
__device__ __forceinline__ int odim0(int mt, int g) {
  return BF16 ? 64 * (mt >> 2) + 8 * g + 2 * (mt & 3) : 16 * g + 2 * mt;
}

template <int IMPL, bool BF16, int W, int ST>
__global__ void __launch_bounds__(W * 32) attn_mma_kernel(const Args a) {
  static_assert(!(IMPL == 2 && BF16), "fp8 QK needs an fp8 cache");
  __shared__ Smem<W> sm;
  int b, h, s, L, first, nb, nsplit;
  if (!cta_begin(a, sm, b, h, s, L, first, nb, nsplit)) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int G = a.G;

  // Q^T fragments (B operand of S^T = K Q^T): head g, zero for g >= G.
  uint32_t qf[8][2];
  {
    const __nv_bfloat16 *qp = a.q + ((size_t)b * a.Hq + h * G + min(g, G - 1)) * D;
#pragma unroll
    for (int c = 0; c < 8; ++c) {
      const uint2 raw = *reinterpret_cast<const uint2 *>(qp + qdim0<BF16>(c, t));
      uint32_t w0 = raw.x, w1 = raw.y;  // bf16 pairs (d0, d0+1), (d0+2, d0+3)
      if (IMPL == 1 && !BF16) {
        const float2 x = bf16x2_f32(w0), y = bf16x2_f32(w1);
        w0 = pack_f16(x.x, x.y);
        w1 = pack_f16(y.x, y.y);
      } else if (IMPL == 2) {
        const float2 x = bf16x2_f32(w0), y = bf16x2_f32(w1);
        const float qi = a.q_inv_scale;
        const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(x.x * qi, x.y * qi),
                                                     __NV_SATFINITE, __NV_E4M3);
        const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(y.x * qi, y.y * qi),
                                                     __NV_SATFINITE, __NV_E4M3);
        w0 = lo | (hi << 16);  // 4 e4m3 codes of dims d0..d0+3
        w1 = 0;
      }
      qf[c][0] = g < G ? w0 : 0u;
      qf[c][1] = g < G ? w1 : 0u;
    }
  }

  float acc[8][4];
#pragma unroll
  for (int mt = 0; mt < 8; ++mt)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[mt][e] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;  // heads 2t, 2t+1

  // One cache block (16 tokens) of this warp: S^T, online softmax, P.V.
  auto process = [&](MTile<BF16> &T, int jb) {
    const int tok0 = (first + jb) * BLK;
    const int nvalid = L - tok0;  // >= 1
    // Tokens past the end: zero V (P = 0 times a NaN would be NaN).
    if (nvalid < BLK) {
      const int vr[4] = {2 * t, 2 * t + 1, 2 * t + 8, 2 * t + 9};
#pragma unroll
      for (int j = 0; j < 4; ++j)
        if (vr[j] >= nvalid)
#pragma unroll
          for (int i = 0; i < (BF16 ? 2 : 1); ++i) T.v[j][i] = make_uint4(0, 0, 0, 0);
    }
    // S^T (16 tokens x 8 heads): s0 (tok g, head 2t), s1 (g, 2t+1),
    // s2 (g+8, 2t), s3 (g+8, 2t+1).
    float sc[4] = {0.f, 0.f, 0.f, 0.f};
    if (IMPL == 2) {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const uint32_t w0 = comp(T.k[0][c >> 1], 2 * (c & 1)), w1 = comp(T.k[1][c >> 1], 2 * (c & 1));
        const uint32_t w2 = comp(T.k[0][c >> 1], 2 * (c & 1) + 1), w3 = comp(T.k[1][c >> 1], 2 * (c & 1) + 1);
        mma_e4m3(sc, w0, w1, w2, w3, qf[2 * c][0], qf[2 * c + 1][0]);
      }
    } else if (BF16) {
#pragma unroll
      for (int c = 0; c < 8; ++c) {
        const int w = 2 * c;
        mma16<true>(sc, comp(T.k[0][w >> 2], w & 3), comp(T.k[1][w >> 2], w & 3),
                    comp(T.k[0][w >> 2], (w & 3) + 1), comp(T.k[1][w >> 2], (w & 3) + 1),
                    qf[c][0], qf[c][1]);
      }
    } else {
#pragma unroll
      for (int c = 0; c < 8; ++c) {
        const uint32_t w0 = comp(T.k[0][c >> 2], c & 3), w1 = comp(T.k[1][c >> 2], c & 3);
        mma16<false>(sc, cvt_lo(w0), cvt_lo(w1), cvt_hi(w0), cvt_hi(w1), qf[c][0], qf[c][1]);
      }
    }
    // Online softmax, log2 domain.
#pragma unroll
    for (int e = 0; e < 4; ++e) sc[e] *= a.qk_scale_log2;
    if (g >= nvalid) sc[0] = sc[1] = -INFINITY;
    if (g + 8 >= nvalid) sc[2] = sc[3] = -INFINITY;
    float x0 = fmaxf(sc[0], sc[2]), x1 = fmaxf(sc[1], sc[3]);
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) {
      x0 = fmaxf(x0, __shfl_xor_sync(FULL, x0, o));
      x1 = fmaxf(x1, __shfl_xor_sync(FULL, x1, o));
    }
    const float n0 = fmaxf(m0, x0), n1 = fmaxf(m1, x1);
    const float al0 = fast_exp2(m0 - n0), al1 = fast_exp2(m1 - n1);
    m0 = n0; m1 = n1;
    const float p0 = fast_exp2(sc[0] - n0), p1 = fast_exp2(sc[1] - n1);
    const float p2 = fast_exp2(sc[2] - n0), p3 = fast_exp2(sc[3] - n1);
    l0 = l0 * al0 + p0 + p2;
    l1 = l1 * al1 + p1 + p3;
#pragma unroll
    for (int mt = 0; mt < 8; ++mt) {
      acc[mt][0] *= al0; acc[mt][1] *= al1; acc[mt][2] *= al0; acc[mt][3] *= al1;
    }
    // P^T as the B operand: lane (g, t) needs p[tok 2t, 2t+1, 2t+8, 2t+9][head g].
    const uint32_t X0 = BF16 ? pack_bf16(p0, p2) : pack_f16(p0, p2);  // head 2t: tok g, g+8
    const uint32_t X1 = BF16 ? pack_bf16(p1, p3) : pack_f16(p1, p3);  // head 2t+1
    const int srcA = 8 * t + (g >> 1), srcB = srcA + 4;
    const uint32_t a0 = __shfl_sync(FULL, X0, srcA), a1 = __shfl_sync(FULL, X1, srcA);
    const uint32_t c0 = __shfl_sync(FULL, X0, srcB), c1 = __shfl_sync(FULL, X1, srcB);
    const uint32_t fa = (g & 1) ? a1 : a0, fb = (g & 1) ? c1 : c0;
    const uint32_t pb0 = prmt(fa, fb, 0x5410), pb1 = prmt(fa, fb, 0x7632);
    // out^T += V^T P^T: m-tile mt = 16 (permuted) dims.
    if (BF16) {
#pragma unroll
      for (int mt = 0; mt < 8; ++mt) {
        const int i = mt >> 2, j = mt & 3;
        const uint32_t v0 = comp(T.v[0][i], j), v1 = comp(T.v[1][i], j);
        const uint32_t v2 = comp(T.v[2][i], j), v3 = comp(T.v[3][i], j);
        mma16<true>(acc[mt], prmt(v0, v1, 0x5410), prmt(v0, v1, 0x7632), prmt(v2, v3, 0x5410),
                    prmt(v2, v3, 0x7632), pb0, pb1);
      }
    } else {
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const uint32_t v0 = comp(T.v[0][0], w), v1 = comp(T.v[1][0], w);
        const uint32_t v2 = comp(T.v[2][0], w), v3 = comp(T.v[3][0], w);
        const uint32_t lo01 = prmt(v0, v1, 0x5140), hi01 = prmt(v0, v1, 0x7362);
        const uint32_t lo89 = prmt(v2, v3, 0x5140), hi89 = prmt(v2, v3, 0x7362);
        mma16<false>(acc[2 * w], cvt_lo(lo01), cvt_hi(lo01), cvt_lo(lo89), cvt_hi(lo89), pb0, pb1);
        mma16<false>(acc[2 * w + 1], cvt_lo(hi01), cvt_hi(hi01), cvt_lo(hi89), cvt_hi(hi89), pb0,
                     pb1);
      }
    }
  };

  // Blocks warp, warp + W, ...; ST tiles in flight per warp (registers).
  // The first ST are issued from the block table in global memory, before
  // the barrier that publishes its copy in shared memory.
  MTile<BF16> tile[ST];
  const int *btb = a.bt + (size_t)b * a.max_blocks + first;
#pragma unroll
  for (int u = 0; u < ST; ++u)
    if (warp + u * W < nb) mtile_load<BF16>(tile[u], a, btb[warp + u * W], h, g, t);
  __syncthreads();
  for (int jb0 = warp; jb0 < nb; jb0 += ST * W) {
#pragma unroll
    for (int u = 0; u < ST; ++u) {
      const int jb = jb0 + u * W;
      if (jb < nb) {
        process(tile[u], jb);
        if (jb + ST * W < nb) mtile_load<BF16>(tile[u], a, sm.blk[jb + ST * W], h, g, t);
      }
    }
  }

  // Warp state -> shared memory.
#pragma unroll
  for (int o = 4; o < 32; o <<= 1) {
    l0 += __shfl_xor_sync(FULL, l0, o);
    l1 += __shfl_xor_sync(FULL, l1, o);
  }
  if (g == 0) {
    if (2 * t < G) { sm.m[warp][2 * t] = m0; sm.l[warp][2 * t] = l0; }
    if (2 * t + 1 < G) { sm.m[warp][2 * t + 1] = m1; sm.l[warp][2 * t + 1] = l1; }
  }
#pragma unroll
  for (int mt = 0; mt < 8; ++mt) {
    const int d = odim0<BF16>(mt, g);
    if (2 * t < G) { sm.acc[warp][2 * t][d] = acc[mt][0]; sm.acc[warp][2 * t][d + 1] = acc[mt][2]; }
    if (2 * t + 1 < G) {
      sm.acc[warp][2 * t + 1][d] = acc[mt][1];
      sm.acc[warp][2 * t + 1][d + 1] = acc[mt][3];
    }
  }
  __syncthreads();
  cta_finish<W>(a, sm, b, h, s, nsplit);
}

// ----- CUDA-core kernel (impl 0) ---------------------------------------------
// Lane l: r = l / 8 (token row group), c = l % 8. A step covers NI*4 tokens of
// a block: rows sub*4*NI + r + 4 i (i < NI); lane dims: fp8 16c .. 16c+15
// (one 16-byte piece), bf16 8c .. 8c+7 and 64+8c .. 64+8c+7 (two pieces).
template <bool BF16>
__device__ __forceinline__ int sdim(int j, int c) {
  return BF16 ? (j < 8 ? 8 * c + j : 64 + 8 * c + (j - 8)) : 16 * c + j;
}
template <bool BF16>
__device__ __forceinline__ void row16_f32(const uint4 *p, float (&f)[16]) {
  if (BF16) {
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float2 x = bf16x2_f32(comp(p[i], j));
        f[8 * i + 2 * j] = x.x;
        f[8 * i + 2 * j + 1] = x.y;
      }
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t w = comp(p[0], j);
      const float2 x = f16x2_f32(cvt_lo(w)), y = f16x2_f32(cvt_hi(w));
      f[4 * j] = x.x; f[4 * j + 1] = x.y; f[4 * j + 2] = y.x; f[4 * j + 3] = y.y;
    }
  }
}

template <bool BF16, int W, int ST, int G>
__global__ void __launch_bounds__(W * 32) attn_simt_kernel(const Args a) {
  constexpr int NP = BF16 ? 2 : 1;      // 16-byte pieces per lane and row
  constexpr int NI = BF16 ? 2 : 4;      // rows per lane and step
  constexpr int SUB = BLK / (4 * NI);   // steps per block
  __shared__ Smem<W> sm;
  int b, h, s, L, first, nb, nsplit;
  if (!cta_begin(a, sm, b, h, s, L, first, nb, nsplit)) return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int r = lane >> 3, c = lane & 7;
  const int ES = BF16 ? 2 : 1;

  float qv[G][16];
#pragma unroll
  for (int hh = 0; hh < G; ++hh) {
    const __nv_bfloat16 *qp = a.q + ((size_t)b * a.Hq + h * G + hh) * D;
#pragma unroll
    for (int j = 0; j < 16; ++j) qv[hh][j] = __bfloat162float(qp[sdim<BF16>(j, c)]);
  }
  float acc[G][16], m[G], l[G];
#pragma unroll
  for (int hh = 0; hh < G; ++hh) {
    m[hh] = -INFINITY; l[hh] = 0.f;
#pragma unroll
    for (int j = 0; j < 16; ++j) acc[hh][j] = 0.f;
  }

  struct Tile { uint4 k[NI][NP], v[NI][NP]; };
  auto load = [&](Tile &T, int step, int pb) {
    const int sub = step % SUB;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const int row = sub * 4 * NI + r + 4 * i;
      const size_t off = row_off(pb, row, h, a.Hkv, ES);
#pragma unroll
      for (int p = 0; p < NP; ++p) {
        T.k[i][p] = ld_stream(a.kc + off + 128 * p + 16 * c);
        T.v[i][p] = ld_stream(a.vc + off + 128 * p + 16 * c);
      }
    }
  };
  // Steps of this warp: blocks warp, warp+W, ...; SUB steps each.
  const int nsteps_w = nb > warp ? ((nb - warp + W - 1) / W) * SUB : 0;
  auto step_of = [&](int k) { return ((k / SUB) * W + warp) * SUB + k % SUB; };
  auto process = [&](Tile &T, int k) {
    const int step = step_of(k);
    const int jb = step / SUB, sub = step % SUB;
    const int tokb = (first + jb) * BLK + sub * 4 * NI;
    float sc[NI][G];
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      const bool valid = tokb + r + 4 * i < L;
      if (!valid)
#pragma unroll
        for (int p = 0; p < NP; ++p) T.v[i][p] = make_uint4(0, 0, 0, 0);
      float kf[16];
      row16_f32<BF16>(T.k[i], kf);
#pragma unroll
      for (int hh = 0; hh < G; ++hh) {
        float x = 0.f;
#pragma unroll
        for (int j = 0; j < 16; ++j) x = fmaf(qv[hh][j], kf[j], x);
        sc[i][hh] = x;
      }
    }
#pragma unroll
    for (int i = 0; i < NI; ++i)
#pragma unroll
      for (int hh = 0; hh < G; ++hh) {
        float x = sc[i][hh];
        x += __shfl_xor_sync(FULL, x, 1);
        x += __shfl_xor_sync(FULL, x, 2);
        x += __shfl_xor_sync(FULL, x, 4);
        sc[i][hh] = tokb + r + 4 * i < L ? x * a.qk_scale_log2 : -INFINITY;
      }
#pragma unroll
    for (int hh = 0; hh < G; ++hh) {
      float x = sc[0][hh];
#pragma unroll
      for (int i = 1; i < NI; ++i) x = fmaxf(x, sc[i][hh]);
      x = fmaxf(x, __shfl_xor_sync(FULL, x, 8));
      x = fmaxf(x, __shfl_xor_sync(FULL, x, 16));
      const float n = fmaxf(m[hh], x), al = fast_exp2(m[hh] - n);
      m[hh] = n;
      l[hh] *= al;
#pragma unroll
      for (int j = 0; j < 16; ++j) acc[hh][j] *= al;
#pragma unroll
      for (int i = 0; i < NI; ++i) {
        sc[i][hh] = fast_exp2(sc[i][hh] - n);
        l[hh] += sc[i][hh];
      }
    }
#pragma unroll
    for (int i = 0; i < NI; ++i) {
      float vf[16];
      row16_f32<BF16>(T.v[i], vf);
#pragma unroll
      for (int hh = 0; hh < G; ++hh)
#pragma unroll
        for (int j = 0; j < 16; ++j) acc[hh][j] = fmaf(sc[i][hh], vf[j], acc[hh][j]);
    }
  };
  Tile tile[ST];
  const int *btb = a.bt + (size_t)b * a.max_blocks + first;
#pragma unroll
  for (int u = 0; u < ST; ++u)
    if (u < nsteps_w) load(tile[u], step_of(u), btb[step_of(u) / SUB]);
  __syncthreads();
  for (int k0 = 0; k0 < nsteps_w; k0 += ST) {
#pragma unroll
    for (int u = 0; u < ST; ++u) {
      const int k = k0 + u;
      if (k < nsteps_w) {
        process(tile[u], k);
        if (k + ST < nsteps_w) load(tile[u], step_of(k + ST), sm.blk[step_of(k + ST) / SUB]);
      }
    }
  }
  // Reduce over the 4 row groups (lanes xor 8, 16); lanes r == 0 write.
#pragma unroll
  for (int hh = 0; hh < G; ++hh) {
    l[hh] += __shfl_xor_sync(FULL, l[hh], 8);
    l[hh] += __shfl_xor_sync(FULL, l[hh], 16);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      acc[hh][j] += __shfl_xor_sync(FULL, acc[hh][j], 8);
      acc[hh][j] += __shfl_xor_sync(FULL, acc[hh][j], 16);
    }
  }
  if (r == 0) {
#pragma unroll
    for (int hh = 0; hh < G; ++hh) {
      if (c == 0) { sm.m[warp][hh] = m[hh]; sm.l[warp][hh] = l[hh]; }
#pragma unroll
      for (int j = 0; j < 16; ++j) sm.acc[warp][hh][sdim<BF16>(j, c)] = acc[hh][j];
    }
  }
  __syncthreads();
  cta_finish<W>(a, sm, b, h, s, nsplit);
}

// ----- combine kernel: one warp per (sequence, query head) -------------------
__global__ void __launch_bounds__(128) combine_kernel(const Args a) {
  const int wid = blockIdx.x * 4 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (wid >= a.B * a.Hq) return;
  const int b = wid / a.Hq;
  const int nblk = (a.cl[b] + BLK - 1) / BLK;
  const int nsplit = (nblk + a.split_blocks - 1) / a.split_blocks;
  if (nsplit <= 1) return;  // the attention kernel wrote the output
  const size_t p0 = (size_t)wid * a.max_splits;
  float M = -INFINITY;
  for (int i = lane; i < nsplit; i += 32) M = fmaxf(M, a.pml[p0 + i].x);
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) M = fmaxf(M, __shfl_xor_sync(FULL, M, o));
  float L = 0.f;
  float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int i = 0; i < nsplit; ++i) {
    const float2 ml = a.pml[p0 + i];
    const float f = fast_exp2(ml.x - M);
    const float4 v = *reinterpret_cast<const float4 *>(a.pacc + (p0 + i) * D + 4 * lane);
    L += f * ml.y;
    o.x += f * v.x; o.y += f * v.y; o.z += f * v.z; o.w += f * v.w;
  }
  const float sc = a.v_scale / L;
  uint2 v;
  v.x = pack_bf16(o.x * sc, o.y * sc);
  v.y = pack_bf16(o.z * sc, o.w * sc);
  *reinterpret_cast<uint2 *>(a.out + (size_t)wid * D + 4 * lane) = v;
}

// ----- dispatch ----------------------------------------------------------------
using KernelFn = void (*)(const Args);

template <int W, int ST>
KernelFn pick_w_st(int impl, int bf16, int G) {
  if (impl == 1) return bf16 ? attn_mma_kernel<1, true, W, ST> : attn_mma_kernel<1, false, W, ST>;
  if (impl == 2) return bf16 ? nullptr : attn_mma_kernel<2, false, W, ST>;
  if (impl == 0 && ST == 1) {
    if (G == 4) return bf16 ? attn_simt_kernel<true, W, 1, 4> : attn_simt_kernel<false, W, 1, 4>;
    if (G == 8) return bf16 ? attn_simt_kernel<true, W, 1, 8> : attn_simt_kernel<false, W, 1, 8>;
  }
  if (impl == 0 && ST == 2 && !bf16) {
    if (G == 4) return attn_simt_kernel<false, W, 2, 4>;
    if (G == 8) return attn_simt_kernel<false, W, 2, 8>;
  }
  return nullptr;
}

KernelFn pick(int impl, int bf16, int warps, int stages, int G) {
  if (warps == 4 && stages == 1) return pick_w_st<4, 1>(impl, bf16, G);
  if (warps == 4 && stages == 2) return pick_w_st<4, 2>(impl, bf16, G);
  if (warps == 8 && stages == 1) return pick_w_st<8, 1>(impl, bf16, G);
  if (warps == 8 && stages == 2) return pick_w_st<8, 2>(impl, bf16, G);
  return nullptr;
}

}  // namespace

extern "C" {

// One decode-attention call on `stream`. Returns 0, -1 for a configuration
// that is not built, -2 for bad sizes, or the CUDA error of the launch.
int kvq_decode(int impl, int cache_bf16, int warps, int stages, int fused,
               const void *q, const void *kc, const void *vc, const int *bt,
               const int *cl, void *out, float *pacc, float *pml, unsigned *counters,
               int B, int Hq, int Hkv, int max_blocks, int max_splits, int split_blocks,
               float qk_scale_log2, float v_scale, float q_inv_scale, void *stream) {
  if (Hq % Hkv || Hq / Hkv > MAXG || split_blocks < 1 || split_blocks > MAX_SPLIT_BLOCKS ||
      (long)max_splits * split_blocks < max_blocks)
    return -2;
  const int G = Hq / Hkv;
  KernelFn f = pick(impl, cache_bf16, warps, stages, G);
  if (!f) return -1;
  Args a;
  a.q = (const __nv_bfloat16 *)q; a.kc = (const uint8_t *)kc; a.vc = (const uint8_t *)vc;
  a.bt = bt; a.cl = cl; a.out = (__nv_bfloat16 *)out;
  a.pacc = pacc; a.pml = (float2 *)pml; a.counters = counters;
  a.B = B; a.Hq = Hq; a.Hkv = Hkv; a.G = G; a.max_blocks = max_blocks;
  a.max_splits = max_splits; a.split_blocks = split_blocks; a.fused = fused;
  a.qk_scale_log2 = qk_scale_log2; a.v_scale = v_scale; a.q_inv_scale = q_inv_scale;
  cudaStream_t st = (cudaStream_t)stream;
  f<<<dim3(max_splits, Hkv, B), warps * 32, 0, st>>>(a);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return (int)e;
  if (!fused && max_splits > 1) {
    combine_kernel<<<(B * Hq + 3) / 4, 128, 0, st>>>(a);
    e = cudaGetLastError();
    if (e != cudaSuccess) return (int)e;
  }
  return 0;
}

// Registers, local memory (spills) and static shared memory of one kernel,
// and CTAs per SM at its block size.
int kvq_decode_attrs(int impl, int cache_bf16, int warps, int stages, int G, int *regs,
                     int *local_bytes, int *smem_bytes, int *ctas_per_sm) {
  KernelFn f = pick(impl, cache_bf16, warps, stages, G);
  if (!f) return -1;
  cudaFuncAttributes at;
  cudaError_t e = cudaFuncGetAttributes(&at, (const void *)f);
  if (e != cudaSuccess) return (int)e;
  *regs = at.numRegs;
  *local_bytes = (int)at.localSizeBytes;
  *smem_bytes = (int)at.sharedSizeBytes;
  e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(ctas_per_sm, (const void *)f, warps * 32, 0);
  return (int)e;
}

}  // extern "C"
