// Nonsense input, options and pipelines: each gives one clear error and
// exit status 1 (never a crash, a hang or a second error). Every case runs
// through Inputs/exit-status.sh, which prints the status; the implicit
// checks reject any other error and any sanitizer report (this test also
// runs under ASan + UBSan, see scripts/test-sanitizers.sh).
//
// "Unreadable" files: CI runs as root, for whom chmod 000 does not prevent
// reading, so the unreadable checkpoints here are a FIFO (opening it would
// block forever), a character device (/dev/zero, which never ends) and
// directories where a file is expected.

// RUN: rm -rf %t && mkdir -p %t/empty-dir %t/shard-is-dir/shard.safetensors \
// RUN:   %t/index-is-dir/model.safetensors.index.json %t/fifo-shard
// RUN: mkfifo %t/fifo.safetensors %t/fifo.index.json %t/fifo-shard/a.safetensors
// RUN: touch %t/empty.safetensors %t/empty.index.json
// RUN: echo "this is not a checkpoint" > %t/text.safetensors
// RUN: echo "this is not a checkpoint" > %t/text.index.json
// RUN: echo '{"weight_map": {"model.layers.0.self_attn.k_scale": "shard.safetensors"}}' \
// RUN:   > %t/shard-is-dir/model.safetensors.index.json

//===----------------------------------------------------------------------===//
// Bad IR
//===----------------------------------------------------------------------===//

// RUN: echo 'kvq.layer @l cache(fp4)' | sh %S/Inputs/exit-status.sh kvq-opt 2>&1 \
// RUN:   | FileCheck %s --check-prefix=DTYPE --implicit-check-not=error: --implicit-check-not=Sanitizer
// DTYPE: error: custom op 'kvq.layer' unknown kv cache dtype 'fp4', expected auto, fp8, fp8_e4m3, fp8_e5m2 or int8
// DTYPE: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %t/missing.mlir 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NO-INPUT --implicit-check-not=error: --implicit-check-not=Sanitizer
// NO-INPUT: cannot open input file '{{.*}}missing.mlir': No such file or directory
// NO-INPUT-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %t/empty-dir 2>&1 \
// RUN:   | FileCheck %s --check-prefix=INPUT-DIR --implicit-check-not=error: --implicit-check-not=Sanitizer
// INPUT-DIR: cannot open input file '{{.*}}empty-dir': Is a directory
// INPUT-DIR-NEXT: exit=1

//===----------------------------------------------------------------------===//
// Bad checkpoints (kvq-import-checkpoint)
//===----------------------------------------------------------------------===//

// A missing file.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/missing.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=CKPT-MISSING --implicit-check-not=error: --implicit-check-not=Sanitizer
// CKPT-MISSING: error: kvq-import-checkpoint: {{.*}}missing.safetensors: cannot open: No such file or directory
// CKPT-MISSING-NEXT: exit=1

// Unreadable: a FIFO as the file, as the index and as a shard of a directory,
// and a device.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/fifo.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=FIFO --implicit-check-not=error: --implicit-check-not=Sanitizer
// FIFO: error: kvq-import-checkpoint: {{.*}}fifo.safetensors: cannot open: not a regular file
// FIFO-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/fifo.index.json 2>&1 \
// RUN:   | FileCheck %s --check-prefix=FIFO-INDEX --implicit-check-not=error: --implicit-check-not=Sanitizer
// FIFO-INDEX: error: kvq-import-checkpoint: {{.*}}fifo.index.json: cannot open: not a regular file
// FIFO-INDEX-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/fifo-shard 2>&1 \
// RUN:   | FileCheck %s --check-prefix=FIFO-SHARD --implicit-check-not=error: --implicit-check-not=Sanitizer
// FIFO-SHARD: error: kvq-import-checkpoint: {{.*}}fifo-shard/a.safetensors: cannot open: not a regular file
// FIFO-SHARD-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=/dev/zero 2>&1 \
// RUN:   | FileCheck %s --check-prefix=DEVICE --implicit-check-not=error: --implicit-check-not=Sanitizer
// DEVICE: error: kvq-import-checkpoint: /dev/zero: cannot open: not a regular file
// DEVICE-NEXT: exit=1

// A directory where a file is expected: a shard named by the index, and
// the index of a checkpoint directory.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/shard-is-dir 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SHARD-DIR --implicit-check-not=error: --implicit-check-not=Sanitizer
// SHARD-DIR: error: kvq-import-checkpoint: {{.*}}model.safetensors.index.json: shard 'shard.safetensors': {{.*}}shard.safetensors: cannot open: Is a directory
// SHARD-DIR-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/index-is-dir 2>&1 \
// RUN:   | FileCheck %s --check-prefix=INDEX-DIR --implicit-check-not=error: --implicit-check-not=Sanitizer
// INDEX-DIR: error: kvq-import-checkpoint: {{.*}}index-is-dir/model.safetensors.index.json: cannot open: Is a directory
// INDEX-DIR-NEXT: exit=1

// A directory instead of a file, with nothing in it.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/empty-dir 2>&1 \
// RUN:   | FileCheck %s --check-prefix=EMPTY-DIR --implicit-check-not=error: --implicit-check-not=Sanitizer
// EMPTY-DIR: error: kvq-import-checkpoint: {{.*}}empty-dir: directory has no model.safetensors.index.json and no *.safetensors file
// EMPTY-DIR-NEXT: exit=1

// Empty files.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/empty.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=EMPTY --implicit-check-not=error: --implicit-check-not=Sanitizer
// EMPTY: error: kvq-import-checkpoint: {{.*}}empty.safetensors: file is 0 bytes, too short for the 8-byte header length
// EMPTY-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/empty.index.json 2>&1 \
// RUN:   | FileCheck %s --check-prefix=EMPTY-INDEX --implicit-check-not=error: --implicit-check-not=Sanitizer
// EMPTY-INDEX: error: kvq-import-checkpoint: {{.*}}empty.index.json: index is not a JSON object
// EMPTY-INDEX-NEXT: exit=1

// Text files: the first 8 bytes read as a header length far beyond the limit;
// as an index, not JSON.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/text.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=TEXT --implicit-check-not=error: --implicit-check-not=Sanitizer
// TEXT: error: kvq-import-checkpoint: {{.*}}text.safetensors: header length {{[0-9]+}} exceeds the limit of 104857600 bytes
// TEXT-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/text.index.json 2>&1 \
// RUN:   | FileCheck %s --check-prefix=TEXT-INDEX --implicit-check-not=error: --implicit-check-not=Sanitizer
// TEXT-INDEX: error: kvq-import-checkpoint: {{.*}}text.index.json: index is not a JSON object
// TEXT-INDEX-NEXT: exit=1

//===----------------------------------------------------------------------===//
// Bad options and pipelines
//===----------------------------------------------------------------------===//

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-fold-scales=no-such-option=1 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NO-OPTION --implicit-check-not=error: --implicit-check-not=Sanitizer
// NO-OPTION: error: <Pass-Options-Parser>: no such option no-such-option
// NO-OPTION: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --pass-pipeline='builtin.module(kvq-fold-scale)' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NO-PASS --implicit-check-not=error: --implicit-check-not=Sanitizer
// NO-PASS: error: MLIR Textual PassPipeline Parser:1:1: error: 'kvq-fold-scale' does not refer to a registered pass or pass pipeline
// NO-PASS: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-layer-report=format=xml 2>&1 \
// RUN:   | FileCheck %s --check-prefix=REPORT-FORMAT --implicit-check-not=error: --implicit-check-not=Sanitizer
// REPORT-FORMAT: error: kvq-layer-report: unknown format 'xml', expected 'table' or 'json'
// REPORT-FORMAT-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-layer-report=output=%t/empty-dir 2>&1 \
// RUN:   | FileCheck %s --check-prefix=REPORT-DIR --implicit-check-not=error: --implicit-check-not=Sanitizer
// REPORT-DIR: error: kvq-layer-report: cannot open '{{.*}}empty-dir': cannot open output file '{{.*}}empty-dir': Is a directory
// REPORT-DIR-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-fold-scales=report-json=%t/empty-dir 2>&1 \
// RUN:   | FileCheck %s --check-prefix=FOLD-REPORT-DIR --implicit-check-not=error: --implicit-check-not=Sanitizer
// FOLD-REPORT-DIR: error: kvq-fold-scales: cannot write report '{{.*}}empty-dir': cannot open output file '{{.*}}empty-dir': Is a directory
// FOLD-REPORT-DIR: exit=1

// The lowering: unknown target, a chip of the other vendor, no chip.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-lower-cache-ops=target=tpu 2>&1 \
// RUN:   | FileCheck %s --check-prefix=TARGET --implicit-check-not=error: --implicit-check-not=Sanitizer
// TARGET: error: kvq-lower-cache-ops: unknown target 'tpu', expected cpu, nvvm or rocdl
// TARGET-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s '--kvq-lower-cache-ops=target=nvvm chip=gfx942' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=NV-CHIP --implicit-check-not=error: --implicit-check-not=Sanitizer
// NV-CHIP: error: kvq-lower-cache-ops: unknown NVIDIA chip 'gfx942', expected sm_<version> such as sm_80 or sm_90
// NV-CHIP-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s '--kvq-lower-cache-ops=target=rocdl chip=sm_90' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=AMD-CHIP --implicit-check-not=error: --implicit-check-not=Sanitizer
// AMD-CHIP: error: kvq-lower-cache-ops: unknown AMD chip 'sm_90', expected gfx<version> such as gfx942 or gfx950
// AMD-CHIP-NEXT: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s '--kvq-lower-cache-ops=target=cpu chip=sm_90' 2>&1 \
// RUN:   | FileCheck %s --check-prefix=CPU-CHIP --implicit-check-not=error: --implicit-check-not=Sanitizer
// CPU-CHIP: error: kvq-lower-cache-ops: chip 'sm_90' given for target 'cpu', which takes none
// CPU-CHIP-NEXT: exit=1

kvq.layer @l prefix("model.layers.0") cache(fp8)
