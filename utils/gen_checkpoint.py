#!/usr/bin/env python3
# ===- gen_checkpoint.py - example safetensors checkpoints ------------------===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===------------------------------------------------------------------------===#
"""Writes small safetensors checkpoints with attention KV-cache scales.

Python 3 standard library only (struct, json): no numpy or torch. The output
is byte-for-byte reproducible.

    python3 utils/gen_checkpoint.py --out examples/llama-tiny
        the checked-in examples: an 8-layer Llama-like model (prefixes
        model.layers.N, 8 KV heads, head size 128) as
          compressed-tensors/model.safetensors   llm-compressor names
          modelopt/model-0000{1,2}-of-00002.safetensors + index.json
          quark/model.safetensors                AMD Quark names
    python3 utils/gen_checkpoint.py --attn-head-out examples/llama-tiny-attn-head
        the checked-in per-head example: a 4-layer model with 4 KV heads
        and 16 attention heads, quantized by llm-compressor with the
        compressed-tensors kv_cache_scheme strategy attn_head (one scale per
        head, in bf16): model.safetensors and config.json
    python3 utils/gen_checkpoint.py --out /tmp/big --layers 10000 \\
        --formats compressed-tensors
        a large model for benchmarks
    python3 utils/gen_checkpoint.py --fuzz-corpus fuzz/corpus
        the fuzzers' seed corpus (valid and invalid files)

As a library: write_safetensors(path, tensors, metadata) with tensors a list
of (name, dtype, shape, values).
"""

import argparse
import json
import math
import os
import struct

# dtype -> (struct format or None for custom encoding, bytes per element)
DTYPES = {
    "F64": ("d", 8),
    "F32": ("f", 4),
    "F16": ("e", 2),
    "BF16": (None, 2),
    "F8_E4M3": ("B", 1),  # values are the raw bytes
    "U8": ("B", 1),
    "I8": ("b", 1),
    "I32": ("i", 4),
    "I64": ("q", 8),
}

FP8_E4M3_MAX = 448.0


def bf16_bits(value):
    """The bfloat16 bits of value, rounded to nearest even."""
    if math.isnan(value):
        return 0x7FC0
    bits = struct.unpack("<I", struct.pack("<f", value))[0]
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) & 0xFFFF


def encode(dtype, values):
    fmt, _ = DTYPES[dtype]
    if dtype == "BF16":
        return struct.pack("<%dH" % len(values), *[bf16_bits(v) for v in values])
    return struct.pack("<%d%s" % (len(values), fmt), *values)


def numel(shape):
    count = 1
    for dim in shape:
        count *= dim
    return count


def safetensors_bytes(tensors, metadata=None):
    """The bytes of a file holding tensors (name, dtype, shape, values) in
    name order, back to back; the header is compact JSON padded with spaces
    to a multiple of 8 bytes, as the reference writer does."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    data = bytearray()
    for name, dtype, shape, values in sorted(tensors, key=lambda t: t[0]):
        if len(values) != numel(shape):
            raise ValueError("%s: %d values for shape %s" % (name, len(values), shape))
        raw = encode(dtype, values)
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors to path; returns the size of the data section."""
    blob = safetensors_bytes(tensors, metadata)
    with open(path, "wb") as f:
        f.write(blob)
    return len(blob) - 8 - struct.unpack("<Q", blob[:8])[0]


def write_index(path, weight_map, total_size):
    index = {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")


# ---- the Llama-like example model -------------------------------------------

def amax(layer):
    """Deterministic calibrated absolute maxima of Q, K, V for a layer: K
    grows from 6.0 to 27.0 over 8 layers, V and Q likewise; distinct per
    layer."""
    return {
        "q": 9.0 + 3.5 * layer,
        "k": 6.0 + 3.0 * layer,
        "v": 4.5 + 2.5 * layer,
    }


def scale(layer, field):
    """The fp8 e4m3 dequantization scale amax / 448 (0.01 to 0.08)."""
    return amax(layer)[field] / FP8_E4M3_MAX


def dummy_weight(layer):
    """A tiny BF16 [4, 4] k_proj weight so the file looks like a model."""
    return [((i - 7.5) / 64.0) * (1 + layer / 8.0) for i in range(16)]


def dummy_fp8_weight(layer):
    """Raw fp8 e4m3 bytes of a [4, 4] k_proj weight (ModelOpt FP8)."""
    return [0x30 + (i + layer) % 16 for i in range(16)]


def llm_compressor_tensors(layer):
    p = "model.layers.%d.self_attn." % layer
    return [
        (p + "k_proj.weight", "BF16", [4, 4], dummy_weight(layer)),
        (p + "q_scale", "F32", [], [scale(layer, "q")]),
        (p + "k_scale", "F32", [], [scale(layer, "k")]),
        (p + "v_scale", "F32", [], [scale(layer, "v")]),
    ]


def modelopt_tensors(layer):
    p = "model.layers.%d.self_attn." % layer
    return [
        (p + "k_proj.weight", "F8_E4M3", [4, 4], dummy_fp8_weight(layer)),
        # Weight and input activation scales: not attention scales.
        (p + "k_proj.weight_scale", "F32", [], [0.5 / FP8_E4M3_MAX]),
        (p + "k_proj.input_scale", "F32", [], [(3.0 + layer) / FP8_E4M3_MAX]),
        (p + "k_proj.k_scale", "F32", [1], [scale(layer, "k")]),
        (p + "v_proj.v_scale", "F32", [1], [scale(layer, "v")]),
    ]


def quark_tensors(layer):
    p = "model.layers.%d.self_attn." % layer
    return [
        (p + "k_proj.weight", "BF16", [4, 4], dummy_weight(layer)),
        (p + "q_proj.output_scale", "F32", [], [scale(layer, "q")]),
        (p + "k_proj.output_scale", "F32", [], [scale(layer, "k")]),
        (p + "v_proj.output_scale", "F32", [], [scale(layer, "v")]),
        # Softmax probabilities are at most 1.0.
        (p + "prob_output_scale", "F32", [], [1.0 / FP8_E4M3_MAX]),
    ]


METADATA = {"format": "pt"}


# ---- the per-head (attn_head) example -----------------------------------------

ATTN_HEAD_LAYERS, KV_HEADS, ATTN_HEADS = 4, 4, 16


def head_scale(layer, field, head):
    """The scale of one head: the layer's amax / 448 (scale()), spread
    over the heads (K grows with the head index, V shrinks, Q varies within
    each group of query heads), so that every head has its own value."""
    factor = {"k": 1.0 + head / 4.0,
              "v": 1.0 + (KV_HEADS - 1 - head) / 4.0,
              "q": 1.0 + (head % 5) / 8.0}[field]
    return scale(layer, field) * factor


def attn_head_tensors(layer):
    """llm-compressor's attn_head tensors, in the model dtype (bf16): k and
    v [num_kv_heads, 1, 1], q [num_attention_heads, 1, 1]."""
    p = "model.layers.%d.self_attn." % layer
    heads = {"k": KV_HEADS, "v": KV_HEADS, "q": ATTN_HEADS}
    tensors = [(p + "k_proj.weight", "BF16", [4, 4], dummy_weight(layer))]
    for field in ("q", "k", "v"):
        n = heads[field]
        tensors.append((p + field + "_scale", "BF16", [n, 1, 1],
                        [head_scale(layer, field, h) for h in range(n)]))
    return tensors


def attn_head_config():
    """config.json as a compressed-tensors export has it (the fields kvq
    reads: num_key_value_heads and quantization_config.kv_cache_scheme)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "head_dim": 128,
        "model_type": "llama",
        "num_attention_heads": ATTN_HEADS,
        "num_hidden_layers": ATTN_HEAD_LAYERS,
        "num_key_value_heads": KV_HEADS,
        "quantization_config": {
            "format": "float-quantized",
            "kv_cache_scheme": {
                "dynamic": False,
                "num_bits": 8,
                "observer": "minmax",
                "strategy": "attn_head",
                "symmetric": True,
                "type": "float",
            },
            "quant_method": "compressed-tensors",
        },
        "torch_dtype": "bfloat16",
    }


def write_attn_head_example(out):
    os.makedirs(out, exist_ok=True)
    tensors = [t for layer in range(ATTN_HEAD_LAYERS) for t in attn_head_tensors(layer)]
    write_safetensors(os.path.join(out, "model.safetensors"), tensors, METADATA)
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(attn_head_config(), indent=2, sort_keys=True) + "\n")


def write_single(out, layers, make):
    os.makedirs(out, exist_ok=True)
    tensors = [t for layer in range(layers) for t in make(layer)]
    write_safetensors(os.path.join(out, "model.safetensors"), tensors, METADATA)


def write_sharded(out, layers, make, shards=2):
    os.makedirs(out, exist_ok=True)
    per_shard = (layers + shards - 1) // shards
    weight_map = {}
    total = 0
    for shard in range(shards):
        name = "model-%05d-of-%05d.safetensors" % (shard + 1, shards)
        layer_range = range(shard * per_shard, min(layers, (shard + 1) * per_shard))
        tensors = [t for layer in layer_range for t in make(layer)]
        total += write_safetensors(os.path.join(out, name), tensors, METADATA)
        for tensor in tensors:
            weight_map[tensor[0]] = name
    write_index(os.path.join(out, "model.safetensors.index.json"), weight_map, total)


FORMATS = {
    "compressed-tensors": lambda out, n: write_single(out, n, llm_compressor_tensors),
    "modelopt": lambda out, n: write_sharded(out, n, modelopt_tensors),
    "quark": lambda out, n: write_single(out, n, quark_tensors),
}


# ---- the fuzzers' seed corpus -------------------------------------------------

def raw_file(header, data=b""):
    if isinstance(header, str):
        header = header.encode("utf-8")
    return struct.pack("<Q", len(header)) + header + data


def entry(dtype, shape, begin, end):
    return json.dumps({"dtype": dtype, "shape": shape, "data_offsets": [begin, end]},
                      separators=(",", ":"))


def safetensors_corpus():
    f32 = struct.pack("<f", 0.0125)
    return {
        # Valid.
        "valid-scalar": safetensors_bytes([("model.layers.0.self_attn.k_scale", "F32", [], [0.0125])]),
        "valid-llm-compressor": safetensors_bytes(llm_compressor_tensors(0), METADATA),
        "valid-quark": safetensors_bytes(quark_tensors(1)),
        "valid-modelopt-fp8": safetensors_bytes(modelopt_tensors(2)),
        "valid-halfs": safetensors_bytes([
            ("h", "F16", [8, 1, 1], [0.5, 1.0, 2.0, 0.0, -1.0, 65504.0, 1e-7, 0.1]),
            ("b", "BF16", [8], [0.5, 1.0, 2.0, 0.0, -1.0, 3e38, 1e-39, 0.1]),
            ("d", "F64", [1], [1 / 448.0]),
        ]),
        "valid-gap": raw_file('{"s":' + entry("F32", [], 4, 8) + "}", b"xxxx" + f32 + b"tail"),
        "valid-empty": raw_file("{}        "),
        # Invalid.
        "bad-short": b"\x02\x00\x00",
        "bad-length-past-end": struct.pack("<Q", 1000) + b"{}",
        "bad-not-object": raw_file("[1,2,3]"),
        "bad-utf8": raw_file(b'{"\xff":{}}'),
        "bad-json": raw_file('{"t":{"dtype":"F32",'),
        "bad-duplicate": raw_file('{"t":' + entry("F32", [], 0, 4) + ',"t":' + entry("F32", [], 4, 8) + "}",
                                  f32 + f32),
        "bad-overlap": raw_file('{"a":' + entry("F32", [2], 0, 8) + ',"b":' + entry("F32", [], 4, 8) + "}",
                                f32 + f32),
        "bad-size": raw_file('{"t":' + entry("F32", [2], 0, 4) + "}", f32),
        "bad-offsets": raw_file('{"t":' + entry("F32", [], 8, 4) + "}", f32 + f32),
        "bad-overflow": raw_file('{"t":' + entry("F32", [4294967296, 4294967296, 2], 0, 4) + "}", f32),
        "bad-dtype": raw_file('{"t":' + entry("F12", [], 0, 4) + "}", f32),
        "bad-metadata": raw_file('{"__metadata__":{"n":1}}'),
        "bad-deep": raw_file('{"t":' + "[" * 200 + "]" * 200 + "}"),
    }


def index_corpus():
    def index(weight_map, **extra):
        return (json.dumps(dict(extra, weight_map=weight_map), indent=2) + "\n").encode()
    return {
        "valid-two-shards": index({"a": "model-00001-of-00002.safetensors",
                                   "b": "model-00002-of-00002.safetensors"},
                                  metadata={"total_size": 8}),
        "valid-empty": index({}),
        "bad-traversal": index({"a": "../model.safetensors"}),
        "bad-absolute": index({"a": "/etc/passwd"}),
        "bad-not-string": b'{"weight_map":{"a":1}}',
        "bad-no-weight-map": b'{"metadata":{}}',
        "bad-duplicate": b'{"weight_map":{"a":"s1","a":"s2"}}',
        "bad-json": b'{"weight_map":{"a":',
        "bad-deep": b'{"metadata":' + b"[" * 100 + b"]" * 100 + b"}",
    }


def write_corpus(root):
    for sub, files in (("safetensors", safetensors_corpus()), ("index", index_corpus())):
        directory = os.path.join(root, sub)
        os.makedirs(directory, exist_ok=True)
        for name, blob in sorted(files.items()):
            with open(os.path.join(directory, name), "wb") as f:
                f.write(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", help="directory for the example checkpoints")
    parser.add_argument("--layers", type=int, default=8, help="decoder layers (default 8)")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help="comma-separated subset of: " + ", ".join(FORMATS))
    parser.add_argument("--fuzz-corpus", help="directory for the fuzzers' seed corpus")
    parser.add_argument("--attn-head-out",
                        help="directory for the per-head (attn_head) example checkpoint")
    args = parser.parse_args()
    if not args.out and not args.fuzz_corpus and not args.attn_head_out:
        parser.error("nothing to do: give --out, --attn-head-out and/or --fuzz-corpus")
    if args.attn_head_out:
        write_attn_head_example(args.attn_head_out)
    if args.out:
        for name in args.formats.split(","):
            if name not in FORMATS:
                parser.error("unknown format '%s'" % name)
            FORMATS[name](os.path.join(args.out, name), args.layers)
    if args.fuzz_corpus:
        write_corpus(args.fuzz_corpus)


if __name__ == "__main__":
    main()
