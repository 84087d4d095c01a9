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


def time_method(variant: str, ir: np.ndarray, vi: np.ndarray, repeats: int) -> tuple[list, list]:
    """Wall-clock and process CPU times (ms) of repeated fusions after 3 warm-up runs."""
    method = create_method("cpfusion", variant=variant)
    for _ in range(3):
        fuse_arrays(method, ir, vi)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fuse_arrays(method, ir, vi)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def fusion_memory(size: str) -> dict:
    """Resident memory (MiB) around one fusion in this process: the high-water mark is reset
    (``/proc/self/clear_refs``) after loading, so the peak counts the fusion alone."""
    ir, vi, _ = load(size)
    method = create_method("cpfusion")
    before = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    fuse_arrays(method, ir, vi)
    peak = _status_mib("VmHWM")
    return {"rss_before_mib": round(before, 1), "peak_rss_mib": round(peak, 1),
            "fusion_peak_increase_mib": round(peak - before, 1)}  # fmt: skip


def peak_memory(size: str, threads: int) -> dict:
    """:func:`fusion_memory` in a fresh process (nothing cached from the timing runs)."""
    code = (
        "import json, sys, torch; sys.path.insert(0, {bench!r});"
        "import cpfusion_speed as b; torch.set_num_threads({threads});"
        "print(json.dumps(b.fusion_memory({size!r})))"
    ).format(bench=str(ROOT / "benchmarks"), threads=threads, size=size)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return json.loads(out)


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
            wall, cpu = time_method(variant, ir, vi, args.repeats)
            rows.append(
                {
                    "size": size,
                    "variant": variant,
                    "source": source,
                    "median_ms": round(statistics.median(wall), 1),
                    "min_ms": round(min(wall), 1),
                    "max_ms": round(max(wall), 1),
                    "median_cpu_ms": round(statistics.median(cpu), 1),
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
        "| size | variant | median ms | min ms | max ms | median CPU ms (all threads) | input |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']} | {r['variant']} | {r['median_ms']} | {r['min_ms']} | {r['max_ms']} "
        f"| {r['median_cpu_ms']} | {r['source']} |"
        for r in rows
    ]
    lines += [
        "",
        f"Fresh process fusing one 1280×1024 pair: {memory['rss_before_mib']} MiB resident "
        f"after imports and loading; peak during the fusion {memory['peak_rss_mib']} MiB, "
        f"i.e. +{memory['fusion_peak_increase_mib']} MiB for the fusion itself.",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
