#!/usr/bin/env python3
# Writes the seed corpus of KVQFoldScalesFuzzer into fuzz/corpus/fold-scales/:
# one input per row of the scale rules and per diagnostic of
# kvq-fold-scales, in the byte layout documented in FoldScalesFuzzer.cpp.
#
#   python3 fuzz/gen_fold_scales_corpus.py
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus",
                   "fold-scales")

# Options byte.
AUTO, OCP, FNUZ = 0, 1, 2
STRICT, Q_FALLBACK_K, BF16, F16, WARN_ONCE, SUMMARY = 4, 8, 16, 32, 64, 128
# Targets byte.
NO_TARGET, SM90, GFX942, GFX950, CONFLICT, UNTARGETED = 0, 1, 2, 3, 4, 5
STORE, STORE_FNUZ = 8, 16
# Layer flags byte.
DTYPES = {"auto": 0, "fp8": 1, "fp8_e4m3": 2, "fp8_e5m2": 3, "int8": 4}
CALC, PREFIX, TENSORS, RESOLVED, CT = 8, 16, 32, 64, 128
# Specials (index into kSpecials).
SPECIAL = {"0": 0, "-0": 1, "-1": 2, "nan": 4, "inf": 5, "1": 7, "0.5": 8,
           "1e-45": 10, "1e-300": 12, "1e39": 13, "dbl_max": 15,
           "40000": 16}


def absent():
    return b"\x00"


def f32(value):
    return b"\x02" + struct.pack("<f", value)


def f64(value):
    return b"\x03" + struct.pack("<d", value)


def special(name, wide=False):
    return bytes([137 if wide else 7, SPECIAL[name]])


def per_head(values, shape=0):
    return bytes([8 + 10 * (len(values) - 1), shape]) + b"".join(
        struct.pack("<f", v) for v in values)


def layer(dtype, q=absent(), k=absent(), v=absent(), prob=absent(),
          flags=0):
    head = bytes([DTYPES[dtype] | flags])
    if flags & RESOLVED:
        return head
    return head + q + k + v + prob


def seed(options, targets, *layers):
    return bytes([options, targets, len(layers) - 1]) + b"".join(layers)


SEEDS = {
    "fp8-k-v": seed(OCP, NO_TARGET,
                    layer("fp8", k=f32(0.0123456789), v=f32(0.0123456789))),
    "fp8-gfx942-doubled": seed(AUTO, GFX942,
                               layer("fp8", k=f32(0.05), v=f32(0.05),
                                     q=f32(0.1), flags=PREFIX | TENSORS)),
    "fp8-legacy-kv-scale": seed(AUTO, SM90, layer("fp8", k=f32(0.05))),
    "only-v-k-invalid": seed(AUTO, NO_TARGET,
                             layer("fp8", v=f32(0.05), flags=TENSORS)),
    "int8-no-scales": seed(AUTO, NO_TARGET, layer("int8")),
    "auto-q-fnuz": seed(FNUZ, NO_TARGET, layer("auto", q=f32(0.3))),
    "per-head-k": seed(AUTO, NO_TARGET,
                       layer("fp8_e4m3", k=per_head([0.1, 0.2, 0.3, 0.4]),
                             v=f32(0.05))),
    "nan-k-inf-q": seed(AUTO, NO_TARGET,
                        layer("fp8", k=special("nan"), v=f32(0.05),
                              q=special("inf"))),
    "f64-overflows-f32": seed(AUTO, NO_TARGET,
                              layer("fp8_e5m2", k=special("1e39", wide=True),
                                    v=special("1e-300", wide=True))),
    "strict-missing": seed(AUTO | STRICT, NO_TARGET, layer("fp8_e4m3")),
    "targets-conflict": seed(AUTO, CONFLICT, layer("fp8", k=f32(0.05))),
    "fnuz-cache-on-ocp": seed(AUTO, SM90 | STORE | STORE_FNUZ,
                              layer("fp8_e4m3", k=f32(0.05), v=f32(0.05))),
    "four-layers-warn-once": seed(
        WARN_ONCE | Q_FALLBACK_K | SUMMARY, GFX950,
        layer("fp8", k=f32(0.05), v=f32(0.06)),
        layer("int8", k=f32(1.0), v=f32(1.0), flags=PREFIX),
        layer("fp8_e5m2", flags=RESOLVED),
        layer("fp8", k=special("-1"), v=special("0"), prob=f32(0.2))),
    "calculate-kv-scales-q": seed(AUTO, NO_TARGET,
                                  layer("fp8", q=f32(0.1), flags=CALC)),
    "f16-model-fnuz-prob-40000": seed(
        FNUZ | F16, GFX942 | STORE,
        layer("fp8_e4m3", k=f64(0.25), v=f64(0.5), prob=special("40000"))),
    "subnormal-bf16": seed(AUTO | BF16, UNTARGETED,
                           layer("fp8", k=special("1e-45"), v=f32(1e-40))),
    # method(compressed_tensors): a single k, a prob scale, on FNUZ.
    "ct-gfx942-single-k": seed(AUTO, GFX942,
        layer("fp8", k=f32(0.05), prob=f32(0.5), flags=CT | TENSORS),
        layer("fp8_e4m3", k=per_head([0.1, 0.2]), v=f32(0.1), flags=CT)),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"gen_fold_scales_corpus: {len(SEEDS)} seeds in {OUT}")


if __name__ == "__main__":
    main()
