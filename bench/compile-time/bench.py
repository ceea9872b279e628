#!/usr/bin/env python3
# ===- bench.py - compile-time benchmark of kvq-opt ------------------------===#
#
# Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
#
# ===------------------------------------------------------------------------===#
"""Times kvq-opt on synthetic models of 32 to 10,000 layers.

Python 3 standard library only; reads no standard input. For every model
size N, utils/gen_model.py writes a model with raw scales in the IR and one
without scales plus the matching compressed-tensors checkpoint. Each stage
runs once untimed (to warm the page cache) and then --reps times; the tables
give the median wall time of the whole kvq-opt process, its ratio to the
parse + print floor, and the peak RSS of the child (os.wait4's ru_maxrss):

  parse      kvq-opt ir.mlir -o out.mlir                 the floor
  fold       ... --kvq-fold-scales
  import     none.mlir --kvq-import-checkpoint=... --kvq-fold-scales
  lower      ... --kvq-fold-scales --kvq-lower-cache-ops="target=nvvm ..."
  lower-1t   lower with --mlir-disable-threading
  parse-out  kvq-opt lowered.mlir -o out.mlir: parse + print of what
             `lower` writes, the floor for producing that much IR

Then a least-squares fit of time and peak RSS against N, the marginal cost
per 1000 layers between consecutive sizes (flat when linear), the
-mlir-timing split of the largest `lower` run, and the checkpoint read on
its own: a 1-layer model imported from sparse safetensors files of a few
bytes to 64 GiB (os.truncate: no disk space used), with the scales before
or after the big tensor.

    python3 bench/compile-time/bench.py                       # full run
    python3 bench/compile-time/bench.py --sizes 32,100 --many-sizes 32 \\
        --reps 1 --ckpt-gib 0,1                               # smoke test

Nothing is asserted: the tables are for a person to read.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "utils"))
import gen_checkpoint  # noqa: E402
import gen_model  # noqa: E402

# Every generated layer lacks a prob scale, so without warn-once each layer
# prints an [UNCALIBRATED-QP] warning; one warning is what a user sees.
FOLD = "--kvq-fold-scales=warn-once=true"
LOWER = "--kvq-lower-cache-ops=target=nvvm chip=sm_90"
ONE_THREAD = "--mlir-disable-threading"
# Stages whose -mlir-timing split is shown at the largest N.
TIMED = ("parse", "fold", "import", "lower")

# stage -> (input: "ir", "none" or "lowered"; extra flags). Order matters:
# `lower` writes the input of `parse-out`.
STAGES = {
    "parse": ("ir", []),
    "fold": ("ir", [FOLD]),
    "import": ("none", ["IMPORT", FOLD]),
    "lower": ("ir", [FOLD, LOWER]),
    "lower-1t": ("ir", [FOLD, LOWER, ONE_THREAD]),
    "parse-out": ("lowered", []),
}


# ---- running kvq-opt ---------------------------------------------------------

def run_once(argv, stderr_path):
    """Runs argv; returns (wall seconds, peak RSS MiB, exit code)."""
    with open(stderr_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def measure(argv, reps, work):
    """One untimed warm-up run, then reps timed runs: median, min and max
    wall ms, max peak RSS MiB."""
    stderr_path = os.path.join(work, "stderr.txt")
    times, rss = [], []
    for i in range(reps + 1):
        seconds, mib, rc = run_once(argv, stderr_path)
        if rc != 0:
            with open(stderr_path, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-2000:]
            sys.exit("exit code %d: %s\n%s" % (rc, shlex.join(argv), tail))
        if i > 0:
            times.append(seconds * 1e3)
            rss.append(mib)
    return {"ms": statistics.median(times), "min_ms": min(times),
            "max_ms": max(times), "rss_mib": max(rss), "cmd": shlex.join(argv)}


# A row of -mlir-timing's report: "    0.3528 (  3.0%)  Parser". Top-level
# rows are indented by exactly two spaces after the percentage.
TIMING_ROW = re.compile(r"^\s*([\d.]+) \(\s*[\d.]+%\)(\s+)(\S.*?)\s*$")


def mlir_timing(argv, work):
    """{row name: wall ms} of the top-level rows of one -mlir-timing run
    (Parser, each pass, Output, Rest, Total)."""
    stderr_path = os.path.join(work, "timing.txt")
    run_once(argv + ["-mlir-timing"], stderr_path)
    rows = {}
    with open(stderr_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = TIMING_ROW.match(line)
            if m and len(m.group(2)) == 2:
                rows[m.group(3)] = float(m.group(1)) * 1e3
    return rows


def wait_for_load(limit):
    """Waits (up to 10 minutes) until the 1-minute load is below limit."""
    deadline = time.time() + 600
    while limit > 0 and os.getloadavg()[0] >= limit and time.time() < deadline:
        print("# load %.2f >= %.2f, waiting" % (os.getloadavg()[0], limit),
              file=sys.stderr, flush=True)
        time.sleep(15)


def lstsq(xs, ys):
    """Slope, intercept and R^2 of the least-squares line y = a x + b."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    b = my - a * mx
    ss_res = sum((y - (a * x + b)) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return a, b, 1.0 - ss_res / ss_tot if ss_tot else 1.0


# ---- the sweep over N --------------------------------------------------------

def write_model(path, layers, ops, scales):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        gen_model.write_model(f, layers, ops, scales)


def sweep(args, sizes, ops, stages):
    """{N: {"in_mib", "ops", stage: measure() result}}."""
    results = {}
    for n in sizes:
        base = os.path.join(args.work, "n%d-m%d" % (n, ops))
        os.makedirs(base, exist_ok=True)
        inputs = {"ir": os.path.join(base, "ir.mlir"),
                  "none": os.path.join(base, "none.mlir"),
                  "lowered": os.path.join(base, "lowered.mlir")}
        write_model(inputs["ir"], n, ops, "ir")
        write_model(inputs["none"], n, ops, "none")
        gen_checkpoint.FORMATS["compressed-tensors"](base, n)
        import_flag = "--kvq-import-checkpoint=checkpoint=" + os.path.join(
            base, "model.safetensors")
        row = {"in_mib": os.path.getsize(inputs["ir"]) / 2 ** 20, "ops": n * ops}
        for stage in stages:
            source, flags = STAGES[stage]
            out = inputs["lowered"] if stage == "lower" else os.path.join(base, "out.mlir")
            argv = [args.kvq_opt, inputs[source]]
            argv += [import_flag if f == "IMPORT" else f for f in flags]
            argv += ["-o", out]
            wait_for_load(args.max_load)
            r = measure(argv, args.reps, args.work)
            r["out_mib"] = os.path.getsize(out) / 2 ** 20
            if stage in TIMED and n == max(sizes):
                r["timing"] = mlir_timing(argv, args.work)
            row[stage] = r
            print("# N=%d ops/layer=%d %-9s %9.1f ms (%.1f-%.1f) %7.1f MiB, output %.1f MiB,"
                  " load %.2f" % (n, ops, stage, r["ms"], r["min_ms"], r["max_ms"],
                                  r["rss_mib"], r["out_mib"], os.getloadavg()[0]),
                  file=sys.stderr, flush=True)
        results[n] = row
        shutil.rmtree(base)  # the lowered IR takes ~10 KiB per cache op
    return results


def print_table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def print_sweep(title, results, stages):
    sizes = sorted(results)
    print("### %s\n" % title)
    print("Median wall ms of the whole kvq-opt run (min-max) and, in brackets, "
          "the ratio to parse + print of the same input; `lower / parse-out` is "
          "fold + lower over parse + print of the lowered output.\n")
    header = ["N", "cache ops", "input MiB"] + stages + ["lowered MiB"]
    has_out = "lower" in stages and "parse-out" in stages
    if has_out:
        header.append("lower / parse-out")
    rows = []
    for n in sizes:
        row = results[n]
        cells = [str(n), str(row["ops"]), "%.1f" % row["in_mib"]]
        for st in stages:
            r = row[st]
            cell = "%.0f (%.0f-%.0f)" % (r["ms"], r["min_ms"], r["max_ms"])
            if st != "parse":
                cell += " [%.2fx]" % (r["ms"] / row["parse"]["ms"])
            cells.append(cell)
        cells.append("%.1f" % row["lower"]["out_mib"] if "lower" in row else "-")
        if has_out:
            cells.append("%.2fx" % (row["lower"]["ms"] / row["parse-out"]["ms"]))
        rows.append(cells)
    print_table(header, rows)

    print("Peak RSS, MiB:\n")
    print_table(["N"] + stages,
                [[str(n)] + ["%.0f" % results[n][st]["rss_mib"] for st in stages]
                 for n in sizes])

    if len(sizes) >= 2:
        print("Least-squares fit against N (time = a N + b, peak RSS likewise); "
              "the marginal columns are (t2 - t1) / (N2 - N1) between consecutive "
              "sizes, per 1000 layers, and stay flat when the cost is linear:\n")
        pairs = list(zip(sizes, sizes[1:]))
        rows = []
        for st in stages:
            ms = [results[n][st]["ms"] for n in sizes]
            mib = [results[n][st]["rss_mib"] for n in sizes]
            a, b, r2 = lstsq(sizes, ms)
            am, bm, r2m = lstsq(sizes, mib)
            marginal = ["%.0f" % ((results[n2][st]["ms"] - results[n1][st]["ms"])
                                  * 1000 / (n2 - n1)) for n1, n2 in pairs]
            rows.append([st, "%.1f" % (a * 1000), "%.0f" % b, "%.4f" % r2]
                        + marginal + ["%.1f" % (am * 1000), "%.0f" % bm, "%.4f" % r2m])
        print_table(["stage", "ms / 1000 layers", "intercept ms", "R^2"]
                    + ["marginal %d-%d" % p for p in pairs]
                    + ["MiB / 1000 layers", "intercept MiB", "R^2 (RSS)"], rows)

    last = results[sizes[-1]]
    timed = [st for st in stages if "timing" in last[st]]
    if timed:
        names = []
        for st in timed:
            names += [name for name in last[st]["timing"] if name not in names]
        names.sort(key=lambda name: name in ("Output", "Rest", "Total"))
        print("Where the time goes at N = %d (-mlir-timing, one run each, wall ms; "
              "Parser includes verifying the parsed module, Output is printing):\n"
              % sizes[-1])
        print_table(["row"] + timed,
                    [[name] + ["%.0f" % last[st]["timing"][name]
                               if name in last[st]["timing"] else "-" for st in timed]
                     for name in names])


# ---- the checkpoint read alone -----------------------------------------------

def sparse_checkpoint(path, big_bytes, scales_last):
    """A safetensors file with layer 0's q/k/v scales and one BF16 tensor of
    big_bytes bytes (before or after the scales), extended with os.truncate
    so that the big tensor takes no disk space. Returns the file size."""
    prefix = "model.layers.0.self_attn."
    cols = 4096
    rows = big_bytes // (2 * cols)
    big = ("model.embed_tokens.weight", "BF16", [rows, cols], rows * cols * 2)
    scales = [(prefix + f + "_scale", "F32", [], 4) for f in ("q", "k", "v")]
    tensors = [big] + scales if scales_last else scales + [big]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape, size in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    data_start = 8 + len(text)
    values = struct.pack("<3f", *(gen_checkpoint.scale(0, f) for f in ("q", "k", "v")))
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.seek(data_start + header[scales[0][0]]["data_offsets"][0])
        f.write(values)
    os.truncate(path, data_start + offset)
    return data_start + offset


def checkpoint_read(args):
    """Rows of the sparse-checkpoint table."""
    base = os.path.join(args.work, "ckpt-read")
    os.makedirs(base, exist_ok=True)
    model = os.path.join(base, "one.mlir")
    write_model(model, 1, 2, "none")
    out = os.path.join(base, "out.mlir")
    path = os.path.join(base, "sparse.safetensors")
    rows = []
    for gib in args.ckpt_gib:
        for scales_last in (False, True):
            size = sparse_checkpoint(path, int(gib * 2 ** 30), scales_last)
            disk = os.stat(path).st_blocks * 512
            argv = [args.kvq_opt, model, "--kvq-import-checkpoint=checkpoint=" + path,
                    FOLD, "-o", out]
            wait_for_load(args.max_load)
            r = measure(argv, args.reps, args.work)
            r["import_ms"] = statistics.median(
                mlir_timing(argv, args.work).get("KVQImportCheckpoint", float("nan"))
                for _ in range(args.reps))
            r.update(size=size, disk=disk, scales_last=scales_last)
            rows.append(r)
            print("# checkpoint %.2f GiB (scales %s): %.1f ms, import pass %.3f ms, %.1f MiB"
                  % (size / 2 ** 30, "last" if scales_last else "first", r["ms"],
                     r["import_ms"], r["rss_mib"]), file=sys.stderr, flush=True)
            os.unlink(path)
    print("### Checkpoint read (1-layer model, sparse safetensors)\n")
    print("The file holds the layer's q, k and v scales (12 bytes) and one BF16 "
          "tensor of the given size, before or after them. `import pass` is the "
          "KVQImportCheckpoint row of -mlir-timing (median of the reps).\n")
    print_table(["file size", "on disk", "scales", "kvq-opt ms (min-max)",
                 "import pass ms", "peak RSS MiB"],
                [["%.2f GiB" % (r["size"] / 2 ** 30) if r["size"] >= 2 ** 30
                  else "%d B" % r["size"], "%d KiB" % (r["disk"] // 1024),
                  "after the tensor" if r["scales_last"] else "first",
                  "%.1f (%.1f-%.1f)" % (r["ms"], r["min_ms"], r["max_ms"]),
                  "%.1f" % r["import_ms"], "%.1f" % r["rss_mib"]] for r in rows])
    return rows


# ---- main ----------------------------------------------------------------------

def int_list(text):
    return [int(s) for s in text.split(",") if s]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kvq-opt", default=os.path.join(ROOT, "build-bench", "bin", "kvq-opt"))
    parser.add_argument("--work", default="/tmp/kvq-compile-time",
                        help="scratch directory for the generated models")
    parser.add_argument("--sizes", type=int_list, default=int_list("32,100,1000,3000,10000"),
                        help="layer counts of the main sweep (one store and one load "
                             "per layer)")
    parser.add_argument("--many-sizes", type=int_list, default=int_list("32,100,300,1000"),
                        help="layer counts of the many-cache-ops sweep ('' to skip)")
    parser.add_argument("--many-ops", type=int, default=16,
                        help="cache ops per layer in the many-cache-ops sweep")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="stages to run, of %s (parse always runs)" % ", ".join(STAGES))
    parser.add_argument("--reps", type=int, default=5, help="timed runs per stage")
    parser.add_argument("--ckpt-gib", default="0,1,16,64",
                        help="sizes of the big tensor of the sparse checkpoints, GiB "
                             "('' to skip)")
    parser.add_argument("--max-load", type=float, default=0.0,
                        help="before each stage, wait until the 1-minute load average "
                             "is below this (0: do not wait)")
    parser.add_argument("--json", help="also write all results to this file")
    args = parser.parse_args()
    args.ckpt_gib = [float(s) for s in args.ckpt_gib.split(",") if s]
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        parser.error("unknown stage(s) %s" % ", ".join(sorted(unknown)))
    stages = [st for st in STAGES if st == "parse" or st in args.stages.split(",")]
    if "parse-out" in stages and "lower" not in stages:
        parser.error("stage parse-out needs stage lower")
    os.makedirs(args.work, exist_ok=True)

    print("# kvq-opt: %s" % args.kvq_opt)
    print("# %s, load average at start %.2f %.2f %.2f, %d timed runs per stage\n"
          % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), *os.getloadavg(),
             args.reps))
    empty = os.path.join(args.work, "empty.mlir")
    with open(empty, "w", encoding="utf-8") as f:
        f.write("module {}\n")
    wait_for_load(args.max_load)
    startup = measure([args.kvq_opt, empty, "-o", os.path.join(args.work, "empty.out.mlir")],
                      args.reps, args.work)
    print("# kvq-opt on an empty module (process start and exit): %.0f ms, %.0f MiB\n"
          % (startup["ms"], startup["rss_mib"]))
    everything = {"startup": startup}
    if args.sizes:
        everything["sweep"] = sweep(args, args.sizes, 2, stages)
        print_sweep("One store and one load per layer", everything["sweep"], stages)
    if args.many_sizes:
        everything["many"] = sweep(args, args.many_sizes, args.many_ops, stages)
        print_sweep("%d cache ops per layer" % args.many_ops, everything["many"], stages)
    if args.ckpt_gib:
        everything["checkpoint_read"] = checkpoint_read(args)
    print("# load average at end %.2f %.2f %.2f" % os.getloadavg())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(everything, f, indent=1)


if __name__ == "__main__":
    main()
