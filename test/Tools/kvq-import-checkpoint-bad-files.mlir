// Malformed checkpoint files the unit tests of the reader do not reach
// through a file: each is one clear error with exit status 1 (see
// kvq-opt-bad-input.mlir for missing, empty, text and unreadable files).

// RUN: rm -rf %t && python3 %S/Inputs/make_bad_checkpoints.py %t

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/metadata-broken.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=METADATA-BROKEN --implicit-check-not=error: --implicit-check-not=Sanitizer
// METADATA-BROKEN: error: kvq-import-checkpoint: {{.*}}metadata-broken.safetensors: '__metadata__' (header byte 17): invalid JSON at byte 5: expected ':' after a key
// METADATA-BROKEN-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/metadata-bad-string.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=METADATA-STRING --implicit-check-not=error: --implicit-check-not=Sanitizer
// METADATA-STRING: error: kvq-import-checkpoint: {{.*}}metadata-bad-string.safetensors: '__metadata__' entry 'a': {{.*}}Invalid escape sequence
// METADATA-STRING-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/metadata-too-big.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=METADATA-SIZE --implicit-check-not=error: --implicit-check-not=Sanitizer
// METADATA-SIZE: error: kvq-import-checkpoint: {{.*}}metadata-too-big.safetensors: '__metadata__' is 16777225 bytes, more than the limit of 16777216
// METADATA-SIZE-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/bad-shard-string.index.json 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SHARD-STRING --implicit-check-not=error: --implicit-check-not=Sanitizer
// SHARD-STRING: error: kvq-import-checkpoint: {{.*}}bad-shard-string.index.json: invalid JSON in the 'weight_map' entry for tensor 'a': {{.*}}Invalid escape sequence
// SHARD-STRING-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/big-metadata.index.json 2>&1 \
// RUN:   | FileCheck %s --check-prefix=INDEX-MEMBER --implicit-check-not=error: --implicit-check-not=Sanitizer
// INDEX-MEMBER: error: kvq-import-checkpoint: {{.*}}big-metadata.index.json: 'metadata' is 65547 bytes, more than the limit of 65536
// INDEX-MEMBER-NEXT: exit=1

// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/huge.index.json 2>&1 \
// RUN:   | FileCheck %s --check-prefix=INDEX-SIZE --implicit-check-not=error: --implicit-check-not=Sanitizer
// INDEX-SIZE: error: kvq-import-checkpoint: {{.*}}huge.index.json: index is 67108865 bytes, more than the limit of 67108864
// INDEX-SIZE-NEXT: exit=1

// Scale tensors of shapes #kvq.scales cannot hold are an error at the layer
// naming the tensor (they used to become invalid attributes, printed as IR
// that does not parse).
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/scale-rank-4.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SCALE-RANK --implicit-check-not=error: --implicit-check-not=Sanitizer
// SCALE-RANK: :[[@LINE+15]]:1: error: [SCALE-UNREADABLE] scale 'k' must have rank at most 3 (per-tensor or per-head), got rank 4
// SCALE-RANK: note: checkpoint tensor 'model.layers.0.self_attn.k_scale'
// SCALE-RANK-NOT: kvq.layer @l
// SCALE-RANK: exit=1
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/scale-no-element.safetensors 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SCALE-EMPTY --implicit-check-not=error: --implicit-check-not=Sanitizer
// SCALE-EMPTY: :[[@LINE+9]]:1: error: [SCALE-UNREADABLE] scale 'k' must have at least one element, got 'tensor<0xf32>'
// SCALE-EMPTY: note: checkpoint tensor 'model.layers.0.self_attn.k_scale'
// SCALE-EMPTY-NOT: kvq.layer @l
// SCALE-EMPTY: exit=1
// The same checkpoints read through the pipeline into kvq-fold-scales: the
// import fails first, nothing is folded.
// RUN: sh %S/Inputs/exit-status.sh kvq-opt %s --kvq-import-checkpoint=checkpoint=%t/scale-rank-4.safetensors --kvq-fold-scales 2>&1 \
// RUN:   | FileCheck %s --check-prefix=SCALE-RANK --implicit-check-not=error: --implicit-check-not=Sanitizer

kvq.layer @l prefix("model.layers.0") cache(fp8)
