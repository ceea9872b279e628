#!/usr/bin/env python3
# ===- make_bad_checkpoints.py - malformed checkpoints for kvq-opt tests ---===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===----------------------------------------------------------------------===#
"""Writes the malformed checkpoints of kvq-import-checkpoint-bad-files.mlir
into argv[1]: each breaks one rule of the reader that the unit tests do not
reach through a file. The JSON is written by hand, since a JSON library
cannot write broken JSON."""

import os
import struct
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def safetensors(name, header, data=b""):
    header = header.encode()
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + data)


def text(name, content):
    with open(os.path.join(out, name), "w") as f:
        f.write(content)


# __metadata__ whose members cannot be split: no ':' after a key.
safetensors("metadata-broken.safetensors", '{"__metadata__": {"a" "b"}}')
# A __metadata__ string with an invalid escape.
safetensors("metadata-bad-string.safetensors", r'{"__metadata__": {"a": "\q"}}')
# A __metadata__ object over the 16 MiB limit.
safetensors("metadata-too-big.safetensors",
            '{"__metadata__": {"a": "' + "x" * (16 << 20) + '"}}')
# Scale tensors whose shapes #kvq.scales cannot hold: rank 4, no element.
K = '"model.layers.0.self_attn.k_scale"'
V = '"model.layers.0.self_attn.v_scale"'
safetensors("scale-rank-4.safetensors",
            "{" + K + ': {"dtype": "F32", "shape": [1, 1, 1, 1], '
            '"data_offsets": [0, 4]}}', struct.pack("<f", 0.05))
safetensors("scale-no-element.safetensors",
            "{" + K + ': {"dtype": "F32", "shape": [0], '
            '"data_offsets": [0, 0]}, '
            + V + ': {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}',
            struct.pack("<f", 0.05))
# An index whose shard name has an invalid escape.
text("bad-shard-string.index.json", r'{"weight_map": {"a": "\q"}}')
# An index whose `metadata` member is over the 64 KiB limit.
text("big-metadata.index.json",
     '{"metadata": {"pad": "' + "x" * (64 << 10) + '"}, "weight_map": {}}')
# An index over the 64 MiB limit (sparse: no disk space used).
with open(os.path.join(out, "huge.index.json"), "wb") as f:
    f.truncate((64 << 20) + 1)
