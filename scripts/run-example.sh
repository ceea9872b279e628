#!/usr/bin/env bash
# The main job on the bundled example: installs what is missing, builds
# kvq-opt into build/, then for examples/llama-tiny (8 decoder layers, fp8
# KV cache):
#   1. reads the scales of each bundled checkpoint (compressed-tensors,
#      ModelOpt sharded with an index, AMD Quark with q and prob scales),
#      folds them with vLLM's rules and prints the per-layer table and every
#      diagnostic;
#   2. lowers the folded model to PTX for sm_90 and to AMDGCN for gfx950
#      (OCP fp8) and gfx942 (FNUZ fp8, scales doubled), and counts the fp8
#      conversion instructions in each;
#   3. folds a decode step (store, then attend) and lowers it for the CPU,
#      to PTX for sm_90 and to AMDGCN for gfx950;
#   4. for examples/llama-tiny-attn-head (4 layers, 4 KV heads, a
#      compressed-tensors attn_head checkpoint: one scale per head), folds
#      the per-head scales for rank 1 of tp-size 2 (2 heads a rank) and
#      rank 5 of tp-size 8 (each head replicated on 2 ranks) and lowers
#      both to PTX for sm_90, tp-size 2 also to AMDGCN for gfx950 and for
#      the CPU.
# Outputs land in build/example/.
#
#   bash scripts/run-example.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh
bash scripts/cmake-build.sh kvq-opt

build=${BUILD_DIR:-build}
kvq="$build/bin/kvq-opt"
ex=examples/llama-tiny
out="$build/example"
mkdir -p "$out"

run() {
  echo
  echo "\$ $*"
  "$@"
}

for producer in compressed-tensors modelopt quark; do
  run "$kvq" "$ex/model.mlir" --mlir-print-op-on-diagnostic=false \
    --kvq-import-checkpoint="checkpoint=$ex/$producer" \
    --kvq-fold-scales="report=-" -o "$out/folded-$producer.mlir"
done

# Lowering: OCP fp8 (NVIDIA sm_90, AMD gfx950) from the folded model, and
# FNUZ fp8 (AMD gfx942) from the FNUZ variant, whose gpu.module states its
# target: folding and lowering take FNUZ and the chip from it.
run "$kvq" "$out/folded-quark.mlir" --kvq-to-ptx=chip=sm_90 \
  --kvq-write-isa="output=$out/llama-tiny.sm_90.ptx" -o /dev/null
run "$kvq" "$out/folded-quark.mlir" --kvq-to-amdgcn=chip=gfx950 \
  --kvq-write-isa="output=$out/llama-tiny.gfx950.s" -o /dev/null
run "$kvq" "$ex/model-fnuz.mlir" --mlir-print-op-on-diagnostic=false \
  --kvq-import-checkpoint="checkpoint=$ex/quark" \
  --kvq-fold-scales="report=-" --kvq-to-amdgcn \
  --kvq-write-isa="output=$out/llama-tiny.gfx942.s" -o /dev/null

# A decode step (store the new token's K/V, then attend) of every layer,
# folded from the same checkpoint and lowered for the CPU, sm_90 and gfx950
# (whose attention is the portable kernel, which a remark says).
run "$kvq" "$ex/decode-step.mlir" --mlir-print-op-on-diagnostic=false \
  --kvq-import-checkpoint="checkpoint=$ex/quark" \
  --kvq-fold-scales="summary=false" --kvq-to-llvm \
  -o "$out/decode-step.llvm.mlir"
run "$kvq" "$ex/decode-step.mlir" --mlir-print-op-on-diagnostic=false \
  --kvq-import-checkpoint="checkpoint=$ex/quark" \
  --kvq-fold-scales="summary=false" --kvq-to-ptx=chip=sm_90 \
  --kvq-write-isa="output=$out/decode-step.sm_90.ptx" -o /dev/null
run "$kvq" "$ex/decode-step.mlir" --mlir-print-op-on-diagnostic=false \
  --kvq-import-checkpoint="checkpoint=$ex/quark" \
  --kvq-fold-scales="summary=false" --kvq-to-amdgcn=chip=gfx950 \
  --kvq-write-isa="output=$out/decode-step.gfx950.s" -o /dev/null

# Per-head scales, sharded for one tensor-parallel rank at compile time.
heads=examples/llama-tiny-attn-head
for tp in 2:1 8:5; do
  run "$kvq" "$heads/model-tp${tp%:*}.mlir" --mlir-print-op-on-diagnostic=false \
    --kvq-import-checkpoint="checkpoint=$heads" \
    --kvq-fold-scales="tp-size=${tp%:*} tp-rank=${tp#*:} report=-" \
    -o "$out/folded-attn-head-tp${tp%:*}.mlir"
  run "$kvq" "$out/folded-attn-head-tp${tp%:*}.mlir" --kvq-to-ptx=chip=sm_90 \
    --kvq-write-isa="output=$out/attn-head-tp${tp%:*}.sm_90.ptx" -o /dev/null
done
run "$kvq" "$out/folded-attn-head-tp2.mlir" --kvq-to-amdgcn=chip=gfx950 \
  --kvq-write-isa="output=$out/attn-head-tp2.gfx950.s" -o /dev/null
run "$kvq" "$out/folded-attn-head-tp2.mlir" --kvq-to-llvm \
  -o "$out/attn-head-tp2.llvm.mlir"

count() { grep -c -- "$2" "$1" || true; }
echo
echo "== generated code ($out) =="
printf '%-26s %5s kernels, %4s x cvt.rn.satfinite.e4m3x2.f32, %4s x cvt.rn.f16x2.e4m3x2\n' \
  llama-tiny.sm_90.ptx "$(count "$out/llama-tiny.sm_90.ptx" '^\.visible \.entry')" \
  "$(count "$out/llama-tiny.sm_90.ptx" 'cvt.rn.satfinite.e4m3x2.f32')" \
  "$(count "$out/llama-tiny.sm_90.ptx" 'cvt.rn.f16x2.e4m3x2')"
for chip in gfx950 gfx942; do
  printf '%-26s %5s kernels, %4s x v_cvt_*pk_fp8_f32, %4s x v_cvt_*pk_f32_fp8\n' \
    "llama-tiny.$chip.s" "$(count "$out/llama-tiny.$chip.s" '^\s*\.amdhsa_kernel ')" \
    "$(count "$out/llama-tiny.$chip.s" 'v_cvt_.*pk_fp8_f32')" \
    "$(count "$out/llama-tiny.$chip.s" 'v_cvt_.*pk_f32_fp8')"
done
printf '%-26s %5s attention function(s) for 8 layers (CPU)\n' \
  decode-step.llvm.mlir "$(count "$out/decode-step.llvm.mlir" 'llvm.func @kvq_paged_attention')"
printf '%-26s %5s kernels (%s attention), %4s x mma.sync, %4s x cvt.rn.f16x2.e4m3x2\n' \
  decode-step.sm_90.ptx "$(count "$out/decode-step.sm_90.ptx" '^\.visible \.entry')" \
  "$(count "$out/decode-step.sm_90.ptx" '^\.visible \.entry kvq_paged_attention')" \
  "$(count "$out/decode-step.sm_90.ptx" 'mma.sync')" \
  "$(count "$out/decode-step.sm_90.ptx" 'cvt.rn.f16x2.e4m3x2')"
printf '%-26s %5s kernels (%s attention), %4s x v_exp_f32, %4s x v_cvt_*pk_f32_fp8\n' \
  decode-step.gfx950.s "$(count "$out/decode-step.gfx950.s" '^\s*\.amdhsa_kernel ')" \
  "$(count "$out/decode-step.gfx950.s" '^\s*\.amdhsa_kernel kvq_paged_attention')" \
  "$(count "$out/decode-step.gfx950.s" 'v_exp_f32')" \
  "$(count "$out/decode-step.gfx950.s" 'v_cvt_.*pk_f32_fp8')"
for tp in 2 8; do
  printf '%-26s %5s kernels (%s per-head), %4s x cvt.rn.satfinite.e4m3x2.f32, %4s x cvt.rn.f16x2.e4m3x2\n' \
    "attn-head-tp$tp.sm_90.ptx" "$(count "$out/attn-head-tp$tp.sm_90.ptx" '^\.visible \.entry')" \
    "$(count "$out/attn-head-tp$tp.sm_90.ptx" '^\.visible \.entry .*_per_head')" \
    "$(count "$out/attn-head-tp$tp.sm_90.ptx" 'cvt.rn.satfinite.e4m3x2.f32')" \
    "$(count "$out/attn-head-tp$tp.sm_90.ptx" 'cvt.rn.f16x2.e4m3x2')"
done
printf '%-26s %5s kernels (%s per-head), %4s x v_cvt_*pk_fp8_f32, %4s x v_cvt_*pk_f32_fp8\n' \
  attn-head-tp2.gfx950.s "$(count "$out/attn-head-tp2.gfx950.s" '^\s*\.amdhsa_kernel ')" \
  "$(count "$out/attn-head-tp2.gfx950.s" '^\s*\.amdhsa_kernel .*_per_head')" \
  "$(count "$out/attn-head-tp2.gfx950.s" 'v_cvt_.*pk_fp8_f32')" \
  "$(count "$out/attn-head-tp2.gfx950.s" 'v_cvt_.*pk_f32_fp8')"
printf '%-26s %5s per-head cache function(s) for 4 layers (CPU)\n' \
  attn-head-tp2.llvm.mlir "$(count "$out/attn-head-tp2.llvm.mlir" 'llvm.func @kvq_cache_.*_per_head')"
