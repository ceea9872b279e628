#!/usr/bin/env python3
# ===- make_checkpoints.py - checkpoints for kvq-import-checkpoint tests ---===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===----------------------------------------------------------------------===#
"""Writes the small checkpoints kvq-import-checkpoint.mlir reads into argv[1]."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "utils"))
from gen_checkpoint import write_index, write_safetensors  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
L0, L1 = "model.layers.0.self_attn.", "model.layers.1.self_attn."

# One file, several producers' names, some unclaimed and odd tensors.
write_safetensors(os.path.join(out, "mixed.safetensors"), [
    # layer 0: llm-compressor names, bf16 q.
    (L0 + "k_scale", "F32", [], [0.05]),
    (L0 + "v_scale", "F32", [1], [0.07]),
    (L0 + "q_scale", "BF16", [], [0.1]),
    # layer 1: ModelOpt K/V, and a Quark prob scale.
    (L1 + "k_proj.k_scale", "F16", [], [0.25]),
    (L1 + "v_proj.v_scale", "F64", [], [0.125]),
    (L1 + "prob_output_scale", "F32", [], [0.5]),
    # layer 2: a legacy kv_scale.
    ("model.layers.2.self_attn.kv_scale", "F32", [], [0.03]),
    # layer 3: per-head k.
    ("model.layers.3.self_attn.k_scale", "F32", [2], [0.1, 0.2]),
    ("model.layers.3.self_attn.v_scale", "F32", [], [0.1]),
    # a layer the IR does not have, and a weight scale (not an attention scale).
    ("model.layers.9.self_attn.k_scale", "F32", [], [0.05]),
    (L0 + "k_proj.weight_scale", "F32", [], [0.01]),
    # an asymmetric zero point.
    (L1 + "k_zero_point", "F32", [], [0.0]),
])

# Two conventions giving layer 0's K different values.
write_safetensors(os.path.join(out, "conflict.safetensors"), [
    (L0 + "k_scale", "F32", [], [0.05]),
    (L0 + "k_proj.k_scale", "F32", [], [0.06]),
    (L0 + "v_scale", "F32", [], [0.05]),
])

# Two conventions giving layer 0's K the same value: redundant, not an error.
write_safetensors(os.path.join(out, "redundant.safetensors"), [
    (L0 + "k_scale", "F32", [], [0.05]),
    (L0 + "k_proj.k_scale", "F32", [], [0.05]),
    (L0 + "v_scale", "F32", [], [0.05]),
])

# Other producers' and architectures' names (kvq-import-checkpoint-names.mlir).
write_safetensors(os.path.join(out, "names.safetensors"), [
    # NemotronH: vLLM's default rule on the attention module `mixer`; a Mamba
    # layer's weight scale is not an attention scale.
    ("backbone.layers.0.mixer.q_scale", "F32", [], [0.02]),
    ("backbone.layers.0.mixer.k_scale", "F32", [], [0.05]),
    ("backbone.layers.0.mixer.v_scale", "F32", [], [0.0625]),
    ("backbone.layers.1.mixer.in_proj.weight_scale", "F32", [], [0.01]),
    ("backbone.layers.2.mixer.kv_scale", "F32", [], [0.03]),
    # GPT-NeoX `attention`, GPT-2 `attn`, Falcon `self_attention`.
    ("gpt_neox.layers.0.attention.k_scale", "F32", [], [0.05]),
    ("gpt_neox.layers.0.attention.v_scale", "F32", [], [0.07]),
    ("transformer.h.0.attn.k_scale", "BF16", [], [0.125]),
    ("transformer.h.0.attn.v_scale", "BF16", [], [0.25]),
    ("transformer.h.1.self_attention.k_scale", "F32", [], [0.5]),
    ("transformer.h.1.self_attention.v_scale", "F32", [], [0.75]),
    # sharktank's Quark reading: one KV-cache scale for K and V.
    ("model.layers.0.self_attn.kv_cache_scale", "F32", [], [0.04]),
    # Ascend msModelSlim int8 KV: per-channel scales and offsets.
    (L1 + "k_proj.kv_cache_scale", "F32", [8], [0.01 * (i + 1) for i in range(8)]),
    (L1 + "k_proj.kv_cache_offset", "F32", [8], [float(i - 4) for i in range(8)]),
    (L1 + "v_proj.kv_cache_scale", "F32", [8], [0.02 * (i + 1) for i in range(8)]),
    (L1 + "v_proj.kv_cache_offset", "F32", [8], [float(4 - i) for i in range(8)]),
    # Not on an attention module.
    ("model.layers.2.mlp.k_scale", "F32", [], [0.05]),
])

# Layer 0's K from three names that disagree: ModelOpt's, vLLM's default rule
# on `attn`, sharktank's shared scale.
write_safetensors(os.path.join(out, "names_conflict.safetensors"), [
    (L0 + "k_proj.k_scale", "F32", [], [0.05]),
    ("model.layers.0.attn.k_scale", "F32", [], [0.06]),
    (L0 + "kv_cache_scale", "F32", [], [0.07]),
    (L0 + "v_scale", "F32", [], [0.05]),
])

# A scale that cannot be read as one.
write_safetensors(os.path.join(out, "int_scale.safetensors"), [
    (L0 + "k_scale", "I32", [], [5]),
])

# Sharded: an index and two shards.
shard = os.path.join(out, "sharded")
os.makedirs(shard, exist_ok=True)
write_safetensors(os.path.join(shard, "a.safetensors"), [(L0 + "k_scale", "F32", [], [0.05])])
write_safetensors(os.path.join(shard, "b.safetensors"), [(L0 + "v_scale", "F32", [], [0.06])])
write_index(os.path.join(shard, "model.safetensors.index.json"),
            {L0 + "k_scale": "a.safetensors", L0 + "v_scale": "b.safetensors"}, 8)

# Truncated: a header length past the end of the file.
with open(os.path.join(out, "truncated.safetensors"), "wb") as f:
    f.write((1000).to_bytes(8, "little") + b'{"a":')

# Folders with a config.json next to the checkpoint
# (kvq-import-checkpoint-config.mlir): the producer's quantization config.
CT_SCALES = [
    (L0 + "k_scale", "F32", [], [0.05]),
    (L0 + "v_scale", "F32", [], [0.07]),
]


def config_folder(name, config, tensors=CT_SCALES):
    folder = os.path.join(out, "config", name)
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)
    if config is not None:
        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write(config if isinstance(config, str) else json.dumps(config))


def ct(**scheme):
    base = {"num_bits": 8, "type": "float", "symmetric": True,
            "dynamic": False, "strategy": "tensor"}
    base.update(scheme)
    base = {k: v for k, v in base.items() if v != "<drop>"}
    return {"num_attention_heads": 8, "num_key_value_heads": 8,
            "quantization_config": {"quant_method": "compressed-tensors",
                                    "kv_cache_scheme": base}}


config_folder("ct", ct())
config_folder("ct-int8", ct(num_bits=8, type="int"))
config_folder("ct-fp4", ct(num_bits=4, type="float"))
config_folder("ct-int4", ct(num_bits=4, type="int"))
config_folder("ct-no-fields", ct(num_bits="<drop>", type="<drop>"))
config_folder("ct-channel", ct(strategy="channel"))
config_folder("ct-asym", ct(symmetric=False))
# strategy attn_head as llm-compressor writes it: per-head scales in the
# model dtype, k and v [num_kv_heads, 1, 1], q [num_heads, 1, 1] (2 KV heads,
# 4 attention heads); and a producer that writes k and v flat, [num_kv_heads].
ATTN_HEAD = ct(strategy="attn_head")
ATTN_HEAD.update({"num_attention_heads": 4, "num_key_value_heads": 2,
                  "torch_dtype": "bfloat16"})
config_folder("ct-attn-head", ATTN_HEAD, [
    (L0 + "k_scale", "BF16", [2, 1, 1], [0.125, 0.25]),
    (L0 + "v_scale", "BF16", [2, 1, 1], [0.375, 0.5]),
    (L0 + "q_scale", "BF16", [4, 1, 1], [0.0625, 0.5, 0.25, 0.125]),
])
config_folder("ct-attn-head-flat", ATTN_HEAD, [
    (L0 + "k_scale", "F32", [2], [0.125, 0.25]),
    (L0 + "v_scale", "F32", [2, 1], [0.375, 0.5]),
])
# A config whose num_key_value_heads disagrees with the per-head scales (3
# KV heads said, 2 scales given), and one that is not an integer.
ATTN_HEAD_3 = dict(ATTN_HEAD, num_key_value_heads=3)
config_folder("ct-attn-head-count", ATTN_HEAD_3, [
    (L0 + "k_scale", "BF16", [2, 1, 1], [0.125, 0.25]),
    (L0 + "v_scale", "BF16", [2, 1, 1], [0.375, 0.5]),
])
config_folder("kv-heads-string", dict(ATTN_HEAD, num_key_value_heads="2"))
config_folder("ct-null-scheme", {"quantization_config": {
    "quant_method": "compressed-tensors", "kv_cache_scheme": None}})
config_folder("modelopt", {"quantization_config": {
    "quant_method": "modelopt", "kv_cache_quant_algo": "FP8"}})
config_folder("no-quant", {"model_type": "llama"})
config_folder("bad-json", '{"quantization_config": {')
config_folder("not-object", "[1, 2]")
config_folder("qc-string", {"quantization_config": "compressed-tensors"})
config_folder("scheme-list", {"quantization_config": {"kv_cache_scheme": [8]}})
config_folder("bits-string", ct(num_bits="8"))
config_folder("symmetric-int", ct(symmetric=1))
config_folder("dup-key", '{"quantization_config": {}, "quantization_config": {}}')
config_folder("dir-config", None)
os.makedirs(os.path.join(out, "config", "dir-config", "config.json"), exist_ok=True)
