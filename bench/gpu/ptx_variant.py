#!/usr/bin/env python3
"""Hand-made variants of kvq's generated PTX, to test one hypothesis: is the
true f32 division of the store (`div.rn.f32 x, 0f<s>`, 32 per thread; ptxas
expands each into a reciprocal iteration plus a range check and a branch to a
slow path) what limits the store kernel?  These are NOT what the lowering
emits; they exist only to measure.

  mulfma   every `div.rn.f32 %d, %x, 0f<s>;` becomes
             x1 = max.NaN(min.NaN(x, 2^100), -2^100)  (inf saturates anyway;
                                                       keeps the quotient finite)
             q0 = RN(x1 * r)          r = RN(1/s), a constant
             e  = fma(-s, q0, x1)     the exact remainder
             q  = RN(q0 + e * r)      Markstein's correction: RN(x1 / s)
             d  = copysign(x, q)      (-0 stays -0)
           which should give the same fp8 bytes as the true division for
           every bf16 input: the device run checks that exhaustively (all
           65536 bf16 patterns, both scales of the model).
  mulonly  `mul.rn.f32 %d, %x, 0f<RN(1/s)>` alone: NOT exact in f32 (a
           timing bound for "no division cost at all"; whether its fp8
           bytes differ is for the device check to say).
  hoist    in each store kernel, the four 16-byte loads of K and V (whose
           addresses depend on the token only) are moved up to right after
           the slot load, and the `slot < 0` branch around them is replaced
           by predicating the two cache stores (`@!p st.global.v4`), so the
           two DRAM round trips (slot, then K/V) overlap instead of following
           each other, and ptxas cannot sink the loads back under a branch.
           (The stores still wait for the slot; a padding token's row is
           converted and dropped.)

Modes combine with '+', applied left to right: e.g. mulfma+hoist.
Usage: ptx_variant.py MODE in.ptx out.ptx
"""
import re
import struct
import sys

mode, src, dst = sys.argv[1:4]
text = open(src).read()


def f32hex(v):
    return "0f%08X" % struct.unpack("<I", struct.pack("<f", v))[0]


def hexf32(h):
    return struct.unpack("<f", struct.pack("<I", int(h, 16)))[0]


div = re.compile(r"div\.rn\.f32\s+(%r\d+),\s*(%r\d+),\s*0f([0-9A-F]{8});")
count = 0
BIG = "0f71800000"  # 2^100
NBIG = "0fF1800000"


def repl(m, mode):
    global count
    count += 1
    d, x, s = m.group(1), m.group(2), m.group(3)
    sv = hexf32(s)
    r = f32hex(struct.unpack("<f", struct.pack("<f", 1.0 / sv))[0])  # RN(1/s)
    if mode == "mulonly":
        return f"mul.rn.f32 \t{d}, {x}, {r};"
    return (f"min.NaN.f32 \t%kvqx, {x}, {BIG};\n"
            f"\tmax.NaN.f32 \t%kvqx, %kvqx, {NBIG};\n"
            f"\tmul.rn.f32 \t{d}, %kvqx, {r};\n"
            f"\tfma.rn.f32 \t%kvqe, {d}, {f32hex(-sv)}, %kvqx;\n"
            f"\tfma.rn.f32 \t{d}, %kvqe, {r}, {d};\n"
            f"\tcopysign.f32 \t{d}, {x}, {d};")


hoisted = 0


def hoist(text):
    """Move the K/V source loads of each store kernel above its slot test."""
    global hoisted
    parts = re.split(r"(?=\.visible \.entry )", text)
    pat = re.compile(
        r"(\tld\.global\.b64 \t(%rd\d+), \[%rd\d+\];\n)"
        r"(\tsetp\.lt\.s64 \t(%p\d+), \2, 0;\n\t@\4 bra \t\$L__BB\d+_\d+;\n)"
        r"((?:(?!\tcvt\.f32\.bf16)[^\n]*\n)*?)"
        r"(?=\tcvt\.f32\.bf16)")
    out = []
    for part in parts:
        if part.startswith(".visible .entry store_"):
            pred = []

            def move(m):
                pred.append(m.group(4))
                setp = m.group(3).split("\n")[0] + "\n"     # keep the test, drop the branch
                return m.group(1) + m.group(5) + setp
            part, n = pat.subn(move, part)
            assert n == 1, ("hoist pattern", part[:60], n)
            part, ns = re.subn(r"\tst\.global\.v4\.b32", f"\t@!{pred[0]} st.global.v4.b32", part)
            assert ns == 2, ns
            hoisted += n
        out.append(part)
    return "".join(out)


modes = mode.split("+")
assert all(m in ("mulfma", "mulonly", "hoist") for m in modes), mode
for m in modes:
    if m == "hoist":
        text = hoist(text)
    else:
        mode_one = m
        text = div.sub(lambda mm: repl(mm, mode_one), text)
if "mulfma" in modes:
    # Scratch registers, declared in every kernel (unused ones are harmless).
    text = re.sub(r"(\{\n(\t\.reg [^\n]*\n)+)",
                  lambda m: m.group(1) + "\t.reg .b32 \t%kvqe;\n\t.reg .b32 \t%kvqx;\n",
                  text)
open(dst, "w").write(f"// bench/gpu/ptx_variant.py {mode}: a hand-edited copy of "
                     f"{src.split('/')[-1]} (not kvq output)\n" + text)
print(f"wrote {dst} ({mode}: replaced {count} div.rn.f32, hoisted the loads of "
      f"{hoisted} store kernels)")
