//===- dsmem_merge.cu - a split merge through distributed shared memory ---===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Times, on an sm_90 GPU, a cluster-wide merge through distributed shared
// memory (the alternative to the attention kernel's L2 split merge; numbers
// in bench/RESULTS.md). Build and run: nvcc -arch=sm_90a -O3
// dsmem_merge.cu && ./a.out. Per CTA: a 4 x 128
// f32 accumulator plus 4 (m, l) pairs in shared memory; barrier.cluster;
// thread i merges item i of every peer (DSMEM loads); barrier.cluster.
#include <algorithm>
#include <cooperative_groups.h>
#include <cstdio>
#include <vector>
namespace cg = cooperative_groups;
__device__ __forceinline__ unsigned long long gt() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
template <int N>
__global__ void __cluster_dims__(N, 1, 1)
    merge(unsigned long long *out, float *res) {
  __shared__ float acc[512];
  __shared__ float ml[8];
  cg::cluster_group cl = cg::this_cluster();
  unsigned r = cl.block_rank();
  for (int i = threadIdx.x; i < 512; i += blockDim.x)
    acc[i] = r + i * 0.5f;
  if (threadIdx.x < 8)
    ml[threadIdx.x] = r * 0.25f + threadIdx.x;
  long long c0 = clock64();
  unsigned long long g0 = gt();
  cl.sync();
  long long c1 = clock64();
  // Every CTA merges 512 / N items (all 16 or 8 peers' values of each).
  float s = 0.f, m = -1e30f;
  int per = 512 / N;
  if (threadIdx.x < per) {
    int item = r * per + threadIdx.x;
    for (int p = 0; p < N; ++p) {
      float *pa = cl.map_shared_rank(acc, p);
      float *pm = cl.map_shared_rank(ml, p);
      float mm = pm[item / 128], v = pa[item];
      float nm = fmaxf(m, mm);
      s = s * __expf(m - nm) + v * __expf(mm - nm);
      m = nm;
    }
  }
  long long c2 = clock64();
  cl.sync();
  long long c3 = clock64();
  unsigned long long g3 = gt();
  if (threadIdx.x < per)
    res[blockIdx.x * per + threadIdx.x] = s;
  if (threadIdx.x == 0) {
    unsigned long long *o = out + blockIdx.x * 4;
    o[0] = c1 - c0;
    o[1] = c2 - c1;
    o[2] = c3 - c2;
    o[3] = g3 - g0;
  }
}
template <int N> void run() {
  if (N > 8)
    cudaFuncSetAttribute(merge<N>,
                         cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  int ctas = N * 8;
  unsigned long long *out;
  float *res;
  cudaMalloc(&out, ctas * 4 * 8);
  cudaMalloc(&res, 512 * 8 * 4);
  std::vector<std::vector<double>> v(4);
  for (int rep = 0; rep < 200; ++rep) {
    merge<N><<<ctas, 128>>>(out, res);
    cudaError_t e = cudaDeviceSynchronize();
    if (e) {
      printf("N=%d: %s\n", N, cudaGetErrorString(e));
      return;
    }
    std::vector<unsigned long long> h(ctas * 4);
    cudaMemcpy(h.data(), out, h.size() * 8, cudaMemcpyDeviceToHost);
    if (rep >= 10)
      for (int c = 0; c < ctas; ++c)
        for (int k = 0; k < 4; ++k)
          v[k].push_back(h[c * 4 + k]);
  }
  const char *name[4] = {"barrier 1 (cycles)",
                         "DSMEM merge of N peers (cycles)",
                         "barrier 2 (cycles)", "all, globaltimer (ns)"};
  for (int k = 0; k < 4; ++k) {
    auto &x = v[k];
    std::sort(x.begin(), x.end());
    printf("cluster %2d: %-34s median %7.0f p10 %7.0f p90 %7.0f\n", N, name[k],
           x[x.size() / 2], x[x.size() / 10], x[9 * x.size() / 10]);
  }
}
int main() {
  int clk;
  cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0);
  printf("clock %d kHz\n", clk);
  run<2>();
  run<8>();
  run<16>();
}
