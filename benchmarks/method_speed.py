"""Speed and memory of one fusion method on a CPU, at 640×480 and 1280×1024.

Times :func:`ivif.api.fuse_arrays` (uint8 arrays in, uint8 array out; no file decoding or
encoding: what a video loop calls per frame) with ``--threads`` torch threads: median, min and
max of ``--repeats`` runs after ``--warmup`` runs, plus the process CPU time. Counts the
multiply-accumulates of one 640×480 fusion (torch's FLOP counter / 2; torch operators only) and
measures resident memory in a fresh process fusing one 1280×1024 pair: after imports, model and
images are loaded, and the peak during the fusion (``/proc/self/status`` VmHWM, reset first).

Run on a quiet machine (pause training jobs), from the repository root, for example:

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/method_speed.py cpfusion --compare variant=official,legacy
    ... benchmarks/method_speed.py hclfuse --option steps=20
    ... benchmarks/method_speed.py difcdfusion --repeats 5

Writes ``benchmarks/results/<method>_speed.json`` and ``.md`` (``--label`` renames them). Real
pairs come from ``../shared/data`` (MSRS 640×480, LLVIP 1280×1024) when present, random images
otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ivif.api import fuse_arrays, load_pair
from ivif.bench import environment
from ivif.methods import create_method

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
PAIRS = {
    "640x480": ("msrs/test/ir/00004N.png", "msrs/test/vi/00004N.png", (480, 640)),
    "1280x1024": ("llvip/test/ir/190001.jpg", "llvip/test/vi/190001.jpg", (1024, 1280)),
}


def load(size: str) -> tuple[np.ndarray, np.ndarray, str]:
    """The real pair of that size from ``../shared/data``, or a random one."""
    ir_path, vi_path, shape = PAIRS[size]
    if (SHARED / ir_path).exists():
        ir, vi = load_pair(SHARED / ir_path, SHARED / vi_path)
        if ir.shape[:2] == shape:
            return ir, vi, f"{ir_path}, {vi_path}"
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, shape, dtype=np.uint8)
    return ir, rng.integers(0, 256, (*shape, 3), dtype=np.uint8), "random"


def parse_value(text: str) -> object:
    """``true``/``false`` as booleans; anything else as given (the method converts numbers)."""
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_options(items: list[str]) -> dict[str, object]:
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--option {item!r}: expected NAME=VALUE")
        options[name.replace("-", "_")] = parse_value(value)
    return options


def time_fusion(
    method_name: str, options: dict, size: str, repeats: int, warmup: int
) -> dict[str, object]:
    """Wall-clock and process CPU milliseconds of repeated fusions of the ``size`` pair."""
    ir, vi, source = load(size)
    method = create_method(method_name, **options)
    for _ in range(warmup):
        fuse_arrays(method, ir, vi, seed=0)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fuse_arrays(method, ir, vi, seed=0)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return {
        "size": size,
        "options": options,
        "source": source,
        "repeats": repeats,
        "median_ms": round(statistics.median(wall), 1),
        "min_ms": round(min(wall), 1),
        "max_ms": round(max(wall), 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
    }


def count_gmac(method_name: str, options: dict) -> float:
    """Multiply-accumulates (G) of the torch operators of one 640×480 fusion."""
    ir, vi, _ = load("640x480")
    method = create_method(method_name, **options)
    fuse_arrays(method, ir, vi, seed=0)  # load weights outside the count
    with FlopCounterMode(display=False) as counter:
        fuse_arrays(method, ir, vi, seed=0)
    return round(counter.get_total_flops() / 2e9, 3)


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def fusion_memory(method_name: str, options: dict) -> dict[str, float]:
    """Resident memory (MiB) of this process around one 1280×1024 fusion. Call it in a fresh
    process: the first fusion loads the weights, so it is run on a small pair first."""
    ir, vi, _ = load("1280x1024")
    method = create_method(method_name, **options)
    fuse_arrays(method, ir[:64, :64], vi[:64, :64], seed=0)
    before = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    fuse_arrays(method, ir, vi, seed=0)
    peak = _status_mib("VmHWM")
    return {
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(peak, 1),
        "fusion_increase_mib": round(peak - before, 1),
    }


def fresh_process_memory(method_name: str, options: dict, threads: int) -> dict[str, float]:
    """:func:`fusion_memory` in a new interpreter, plus the resident size of ``import ivif``."""
    code = (
        "import json, sys, torch, ivif; imported = [l for l in open('/proc/self/status')"
        " if l.startswith('VmRSS:')][0].split()[1]; imported = int(imported) / 1024;"
        "sys.path.insert(0, {bench!r}); import method_speed as b; torch.set_num_threads({threads});"
        "print(json.dumps({{'import_rss_mib': round(imported, 1),"
        " **b.fusion_memory({method!r}, {options!r})}}))"
    ).format(bench=str(ROOT / "benchmarks"), threads=threads, method=method_name, options=options)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return json.loads(out)


def markdown(result: dict) -> str:
    env, memory = result["environment"], result["memory_1280x1024"]
    lines = [
        f"# {result['method']} speed (CPU)",
        "",
        f"{result['measured']}; torch threads: {env['threads']}; median of the repeats after "
        f"{result['warmup']} warm-up run(s). {env['machine']}; torch {env['torch']}; "
        f"{env['malloc']}; load average {result['load_average_before']} before, "
        f"{result['load_average_after']} after. {result['date']}.",
        "",
        "| size | options | median ms | min ms | max ms | median CPU ms (all threads) | input |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["timings"]:
        options = ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "defaults"
        lines.append(
            f"| {r['size']} | {options} | {r['median_ms']} | {r['min_ms']} | {r['max_ms']} "
            f"| {r['median_cpu_ms']} | {r['source']} |"
        )
    lines += [
        "",
        f"Work per 640×480 pair: {result['gmac_640x480']} GMAC (torch operators).",
        "",
        f"Memory, fresh process fusing one 1280×1024 pair: {memory['import_rss_mib']} MiB resident "
        f"after `import ivif`, {memory['rss_before_mib']} MiB with the model and images loaded, "
        f"peak {memory['peak_rss_mib']} MiB during the fusion "
        f"(+{memory['fusion_increase_mib']} MiB for the fusion itself).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("method")
    parser.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE", help="a method option"
    )
    parser.add_argument(
        "--compare",
        metavar="NAME=V1,V2",
        help="time every value of one option (e.g. variant=official,legacy)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--label", help="results file stem (default METHOD_speed)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = parse_options(args.option)
    variants = [base]
    if args.compare:
        name, _, values = args.compare.partition("=")
        variants = [{**base, **parse_options([f"{name}={v}"])} for v in values.split(",")]
    load_before = os.getloadavg()[0]
    timings = []
    for size in PAIRS:
        for options in variants:
            timings.append(time_fusion(args.method, options, size, args.repeats, args.warmup))
            print(f"{size:>9} {options}: median {timings[-1]['median_ms']} ms", flush=True)
    result = {
        "method": args.method,
        "measured": "`ivif.api.fuse_arrays`, uint8 arrays in and out (no file I/O), seed 0",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "environment": environment(),
        "warmup": args.warmup,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "timings": timings,
        "gmac_640x480": count_gmac(args.method, base),
        "memory_1280x1024": fresh_process_memory(args.method, base, args.threads),
    }
    print(json.dumps(result["memory_1280x1024"]))
    out = RESULTS / (args.label or f"{args.method}_speed")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
