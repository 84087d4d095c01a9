"""CPFusion speed and memory on a CPU: 640×480 and 1280×1024 pairs, both variants.

Times :func:`ivif.api.fuse_arrays` (uint8 arrays in, uint8 array out; no file decoding or
encoding), which is what a video loop calls per frame. Reports the median (and min, max) of
repeated runs after warm-up, with ``--threads`` torch threads (default 2), and the peak resident
memory of a fresh process that fuses one 1280×1024 pair.

Run on an otherwise idle machine (no training job, no test run), from the repository root:

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/cpfusion_speed.py

Writes ``benchmarks/results/cpfusion_speed.json`` and ``.md``. Real pairs come from
``../shared/data`` (MSRS 640×480, LLVIP 1280×1024) when present, random images otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ivif.api import fuse_arrays, load_pair
from ivif.methods import create_method

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
PAIRS = {
    "640x480": ("msrs/test/ir/00004N.png", "msrs/test/vi/00004N.png", (480, 640)),
    "1280x1024": ("llvip/test/ir/190001.jpg", "llvip/test/vi/190001.jpg", (1024, 1280)),
}
MALLOC = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")


def load(size: str) -> tuple[np.ndarray, np.ndarray, str]:
    ir_path, vi_path, shape = PAIRS[size]
    if (SHARED / ir_path).exists():
        ir, vi = load_pair(SHARED / ir_path, SHARED / vi_path)
        if ir.shape[:2] == shape:
            return ir, vi, f"{ir_path}, {vi_path}"
    rng = np.random.default_rng(0)
    return (
        rng.integers(0, 256, shape, dtype=np.uint8),
        rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
        "random",
    )


def time_method(variant: str, ir: np.ndarray, vi: np.ndarray, repeats: int) -> list[float]:
    method = create_method("cpfusion", variant=variant)
    for _ in range(3):
        fuse_arrays(method, ir, vi)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fuse_arrays(method, ir, vi)
        times.append((time.perf_counter() - start) * 1000)
    return times


def peak_memory(size: str, threads: int) -> dict:
    """Peak RSS (MiB) of a fresh process: after imports and loading, and after one fusion."""
    code = (
        "import resource, sys, torch; sys.path.insert(0, {bench!r});"
        "import cpfusion_speed as b; torch.set_num_threads({threads});"
        "ir, vi, _ = b.load({size!r});"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "b.fuse_arrays(b.create_method('cpfusion'), ir, vi);"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "print(before, after)"
    ).format(bench=str(ROOT / "benchmarks"), threads=threads, size=size)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    before, after = (int(v) / 1024 for v in out)
    return {
        "peak_rss_mib": round(after, 1),
        "rss_before_fusion_mib": round(before, 1),
        "fusion_increase_mib": round(after - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--out", type=Path, default=RESULTS / "cpfusion_speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = []
    for size in PAIRS:
        ir, vi, source = load(size)
        for variant in ("official", "legacy"):
            times = time_method(variant, ir, vi, args.repeats)
            rows.append(
                {
                    "size": size,
                    "variant": variant,
                    "source": source,
                    "median_ms": round(statistics.median(times), 1),
                    "min_ms": round(min(times), 1),
                    "max_ms": round(max(times), 1),
                    "repeats": args.repeats,
                }
            )
            print(f"{size:>9} {variant:8} median {rows[-1]['median_ms']:7.1f} ms", flush=True)
    memory = peak_memory("1280x1024", args.threads)
    print(f"peak RSS at 1280x1024: {memory}")
    result = {
        "method": "cpfusion",
        "measured": "ivif.api.fuse_arrays, uint8 arrays in and out (no file I/O)",
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "malloc_env": {name: os.environ.get(name) for name in MALLOC},
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "self_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "timings": rows,
        "memory_1280x1024": memory,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# CPFusion speed (CPU)",
        "",
        f"`ivif.api.fuse_arrays` (uint8 in/out, no file I/O), {args.threads} torch threads, "
        f"median of {args.repeats} runs after 3 warm-up runs; torch {torch.__version__}, "
        f"{os.cpu_count()} cores; malloc env {result['malloc_env']}; load average "
        f"{result['load_average_before']} before, {result['load_average_after']} after.",
        "",
        "| size | variant | median ms | min ms | max ms | input |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']} | {r['variant']} | {r['median_ms']} | {r['min_ms']} | {r['max_ms']} "
        f"| {r['source']} |"
        for r in rows
    ]
    lines += [
        "",
        f"Peak resident memory of a fresh process fusing one 1280×1024 pair: "
        f"{memory['peak_rss_mib']} MiB ({memory['rss_before_fusion_mib']} MiB after imports "
        f"and loading, +{memory['fusion_increase_mib']} MiB for the fusion).",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
