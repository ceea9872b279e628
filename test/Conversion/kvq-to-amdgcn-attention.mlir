// RUN: kvq-opt %s --kvq-to-amdgcn --kvq-write-isa=output=%t.gfx942.s \
// RUN:   --mlir-print-op-on-diagnostic=false -o /dev/null 2>&1 | FileCheck %s --check-prefix=REMARK
// RUN: FileCheck %s --check-prefix=GFX942 < %t.gfx942.s
// RUN: kvq-opt %s --kvq-to-amdgcn=chip=gfx950 --kvq-write-isa=output=%t.gfx950.s -o /dev/null 2>/dev/null
// RUN: FileCheck %s --check-prefix=GFX950 < %t.gfx950.s

// kvq.paged_attention for AMD: the portable kernel (one thread per query
// head and sequence), assembled with no ROCm device library: the cache
// decoded by the chip's packed fp8 conversion where the format is its own
// (FNUZ on gfx942, OCP on gfx950), in software otherwise, and the weights
// by v_exp_f32 (rocdl.exp2). Not run: there is no AMD GPU to run it on.

kvq.layer @fnuz cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)
kvq.layer @ocp cache(fp8) resolved(#kvq.resolved_scales<k = 5.000000e-02 checkpoint, v = 7.000000e-02 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

// REMARK-COUNT-2: remark: kvq-lower-attention: kvq.paged_attention has no tensor-core kernel for rocdl chip=gfx942; lowered to the portable kernel

// GFX942: .amdgcn_target "amdgcn-amd-amdhsa--gfx942
// GFX942-LABEL: kvq_paged_attention_bf16_f8E4M3FNUZ_32x8x128_b16_kernel:
// GFX942: v_cvt_pk_f32_fp8
// GFX942: v_exp_f32
// GFX942: s_endpgm
// gfx942 has no OCP conversion: the software decode.
// GFX942-LABEL: kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_kernel:
// GFX942-NOT: v_cvt_pk_f32_fp8
// GFX942: v_exp_f32
// GFX942: s_endpgm
// GFX942-NOT: __ocml

// GFX950: .amdgcn_target "amdgcn-amd-amdhsa--gfx950
// GFX950-LABEL: kvq_paged_attention_bf16_f8E4M3FNUZ_32x8x128_b16_kernel:
// GFX950-NOT: v_cvt_pk_f32_fp8
// GFX950: v_exp_f32
// GFX950: s_endpgm
// GFX950-LABEL: kvq_paged_attention_bf16_f8E4M3FN_32x8x128_b16_kernel:
// GFX950: v_cvt_pk_f32_fp8
// GFX950: v_exp_f32
// GFX950: s_endpgm
// GFX950-NOT: __ocml

func.func @attend(%q: memref<?x32x128xbf16>,
                  %kf: memref<?x16x8x128xf8E4M3FNUZ>,
                  %ko: memref<?x16x8x128xf8E4M3FN>,
                  %bt: memref<?x?xi32>, %cl: memref<?xi32>,
                  %o: memref<?x32x128xbf16>) {
  kvq.paged_attention @fnuz (%q) cache(%kf, %kf) blocks(%bt, %cl) into(%o)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FNUZ>, memref<?x?xi32>, memref<?xi32>
  kvq.paged_attention @ocp (%q) cache(%ko, %ko) blocks(%bt, %cl) into(%o)
      : memref<?x32x128xbf16>, memref<?x16x8x128xf8E4M3FN>, memref<?x?xi32>, memref<?xi32>
  return
}
