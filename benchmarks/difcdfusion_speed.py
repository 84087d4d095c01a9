"""Dif-CDFusion speed and memory on a CPU: 640×480 (whole image) and 1280×1024 (tiled) pairs.

Times :func:`ivif.api.fuse_arrays` (uint8 arrays in and out, no file I/O, seed 0) with
``--threads`` torch threads (default 2): median, min and max of ``--repeats`` runs after one
warm-up. Also counts the multiply-accumulates of one 640×480 pair (torch's FLOP counter / 2)
and measures the peak resident memory of a fresh process fusing one 1280×1024 pair. Pause any
training job first (``kill -STOP PID``; ``kill -CONT PID`` after).

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/difcdfusion_speed.py [--weights PREFIX]

Writes ``benchmarks/results/difcdfusion_speed.json`` and ``.md``.
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
from torch.utils.flop_counter import FlopCounterMode

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
    """The real pair of that size from ../shared/data, or a random one."""
    ir_path, vi_path, shape = PAIRS[size]
    if (SHARED / ir_path).exists():
        ir, vi = load_pair(SHARED / ir_path, SHARED / vi_path)
        return ir, vi, f"{ir_path}, {vi_path}"
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, shape, dtype=np.uint8)
    return ir, rng.integers(0, 256, (*shape, 3), dtype=np.uint8), "random"


def time_fusion(options: dict, ir: np.ndarray, vi: np.ndarray, repeats: int) -> list[float]:
    method = create_method("difcdfusion", **options)
    fuse_arrays(method, ir, vi, seed=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fuse_arrays(method, ir, vi, seed=0)
        times.append(time.perf_counter() - start)
    return times


def count_gmac(options: dict) -> dict[str, float]:
    """GMAC of the extractor and of the fusion network on one 640×480 pair."""
    method = create_method("difcdfusion", **options)
    extractor, fusion = method.model()
    ir, vi = torch.rand(1, 1, 480, 640), torch.rand(1, 3, 480, 640)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            features = extractor(ir, vi, torch.Generator().manual_seed(0))
        extract = counter.get_total_flops() / 2e9
        with FlopCounterMode(display=False) as counter:
            fusion(*features)
        fuse = counter.get_total_flops() / 2e9
    params = {
        "ir_denoiser": sum(p.numel() for p in extractor.ir_unet.parameters()),
        "vi_denoiser": sum(p.numel() for p in extractor.vi_unet.parameters()),
        "fusion": sum(p.numel() for p in fusion.parameters()),
    }
    return {
        "extractor_gmac": round(extract, 2),
        "fusion_gmac": round(fuse, 2),
        "parameters": params,
    }


def peak_memory(options: dict, threads: int) -> dict:
    """Peak RSS (MiB) of a fresh process before and after fusing the 1280×1024 pair."""
    code = (
        "import resource, sys, torch; sys.path.insert(0, {bench!r});"
        "import difcdfusion_speed as b; torch.set_num_threads({threads});"
        "ir, vi, _ = b.load('1280x1024'); m = b.create_method('difcdfusion', **{options!r});"
        "m.model(); before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "b.fuse_arrays(m, ir, vi, seed=0);"
        "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    ).format(bench=str(ROOT / "benchmarks"), threads=threads, options=options)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    before, after = (int(v) / 1024 for v in out)
    return {"peak_rss_mib": round(after, 1), "rss_before_fusion_mib": round(before, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--weights", default="", help="weights prefix (default: shipped cpu)")
    parser.add_argument("--out", type=Path, default=RESULTS / "difcdfusion_speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = {"weights": args.weights}
    load_before = os.getloadavg()[0]
    # First, while this process is small: a child inherits its parent's peak RSS at exec.
    memory = peak_memory(options, args.threads)
    rows = []
    for size in PAIRS:
        ir, vi, source = load(size)
        times = time_fusion(options, ir, vi, args.repeats)
        rows.append(
            {
                "size": size,
                "source": source,
                "repeats": args.repeats,
                "median_s": round(statistics.median(times), 3),
                "min_s": round(min(times), 3),
                "max_s": round(max(times), 3),
            }
        )
        print(f"{size:>9}: median {rows[-1]['median_s']:.3f} s", flush=True)
    cost = count_gmac(options)
    print(f"cost: {cost}; peak RSS at 1280x1024: {memory}")
    result = {
        "method": "difcdfusion",
        "options": options,
        "measured": "ivif.api.fuse_arrays, uint8 arrays in and out (no file I/O), seed 0",
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "malloc_env": {name: os.environ.get(name) for name in MALLOC},
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "timings": rows,
        "cost_640x480": cost,
        "memory_1280x1024": memory,
        "benchmark_process_peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Dif-CDFusion speed (CPU)",
        "",
        f"`ivif.api.fuse_arrays` (uint8 in/out), {args.threads} torch threads, median of "
        f"{args.repeats} runs after one warm-up; torch {torch.__version__}, {os.cpu_count()} "
        f"cores; malloc env {result['malloc_env']}; load average "
        f"{result['load_average_before']} before, {result['load_average_after']} after.",
        "",
        "| size | median s | min s | max s | input |",
        "|---|---|---|---|---|",
        *(
            f"| {r['size']} | {r['median_s']} | {r['min_s']} | {r['max_s']} | {r['source']} |"
            for r in rows
        ),
        "",
        f"Cost of one 640×480 pair: extractor (both denoisers) {cost['extractor_gmac']} GMAC, "
        f"fusion network {cost['fusion_gmac']} GMAC; parameters {cost['parameters']}.",
        "",
        f"Peak resident memory of a fresh process fusing one 1280×1024 pair (tiled): "
        f"{memory['peak_rss_mib']} MiB ({memory['rss_before_fusion_mib']} MiB before fusing).",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
