"""Speed of :func:`ivif.evaluation.evaluate_arrays` against a plain numpy/scipy port.

Times, on one 640×480 pair (MSRS ``00004N``; the fused image is the ``laplacian`` baseline's
colour output):

* ``tang``: the 11-metric Tang set (EN, MI, SD, SF, AG, PSNR, MSE, VIF, CC, SCD, Qabf) on grey;
* ``vifb``: VIFB's 13 metrics, per RGB channel;

each for ivif (``--threads`` torch threads, default 2) and for the straightforward port in
``benchmarks/metrics_plain_port.py`` (numpy/scipy as they come). Images are decoded once; the
timed call is the array-level API, once from scratch and once with a warm
:class:`~ivif.evaluation.SourceCache` (a further fused image of the same pair). Reports the median, min and max of ``--repeats`` runs after a
warm-up, plus ivif's per-metric time (each metric evaluated alone, input preparation included)
and where the time of one full call goes (preparation, then each metric in order), and checks
that both implementations agree before timing.

Run on an otherwise idle machine (pause training jobs, e.g. through a wrapper that stops them
for the duration), from the repository root:

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/metrics_speed.py

Writes ``benchmarks/results/metrics_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import metrics_plain_port as plain  # noqa: E402

from ivif.api import fuse  # noqa: E402
from ivif.evaluation import SourceCache, evaluate_arrays, get_convention  # noqa: E402
from ivif.evaluation.inputs import prepare_inputs  # noqa: E402
from ivif.evaluation.registry import metric_entry  # noqa: E402
from ivif.io import read_image  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
PAIR = ("msrs/test/ir/00004N.png", "msrs/test/vi/00004N.png")
MALLOC = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
PLAIN = {"tang": plain.tang_metrics, "vifb": plain.vifb_metrics}


def load_triple() -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    ir_path, vi_path = (SHARED / p for p in PAIR)
    if ir_path.exists():
        ir, vi, source = read_image(ir_path), read_image(vi_path), ", ".join(PAIR)
    else:
        rng = np.random.default_rng(0)
        ir = rng.integers(0, 256, (480, 640), dtype=np.uint8)
        vi = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        source = "random 640×480 (../shared/data not found)"
    return ir, vi, fuse(ir, vi, method="laplacian"), source


def timed(fn, repeats: int) -> dict[str, float]:
    fn()  # warm-up
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": statistics.median(runs), "min_ms": min(runs), "max_ms": max(runs)}


def breakdown(ir, vi, fused, names: list[str], convention: str, repeats: int) -> dict:
    """Median time of each step of one full call: input preparation, then each metric in the
    set's order (a metric that first needs a shared intermediate pays for it)."""
    runs: dict[str, list[float]] = {"prepare": [], **{name: [] for name in names}}
    for _ in range(repeats + 1):  # the first run is a warm-up
        start = time.perf_counter()
        inputs = prepare_inputs(ir, vi, fused, convention)
        runs["prepare"].append((time.perf_counter() - start) * 1e3)
        with torch.inference_mode():
            for name in names:
                start = time.perf_counter()
                metric_entry(name, convention).compute(inputs)
                runs[name].append((time.perf_counter() - start) * 1e3)
    return {step: statistics.median(times[1:]) for step, times in runs.items()}


def agreement(ours: dict[str, float], theirs: dict[str, float]) -> float:
    """Largest relative difference over the metrics both computed."""
    return max(abs(ours[k] - theirs[k]) / max(abs(theirs[k]), 1e-12) for k in ours)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--plain-repeats", type=int, default=5)
    parser.add_argument("--out", default="metrics_speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ir, vi, fused, source = load_triple()
    load_before = os.getloadavg()
    results = {}
    for convention, plain_fn in PLAIN.items():
        names = list(get_convention(convention).default)
        ours = evaluate_arrays(ir, vi, fused, names, convention)
        difference = agreement(ours, plain_fn(ir, vi, fused))
        if difference > 1e-6:
            raise SystemExit(f"{convention}: ivif and the plain port differ by {difference:.2e}")
        per_metric = {
            name: timed(lambda n=name, c=convention: evaluate_arrays(ir, vi, fused, [n], c), 9)
            for name in names
        }
        cache = SourceCache()
        evaluate_arrays(ir, vi, fused, names, convention, cache=cache)
        results[convention] = {
            "metrics": names,
            "ivif": timed(
                lambda c=convention, n=names: evaluate_arrays(ir, vi, fused, n, c), args.repeats
            ),
            "ivif_sources_cached": timed(
                lambda c=convention, n=names, s=cache: evaluate_arrays(
                    ir, vi, fused, n, c, cache=s
                ),
                args.repeats,
            ),
            "plain_port": timed(lambda f=plain_fn: f(ir, vi, fused), args.plain_repeats),
            "ivif_per_metric_ms": per_metric,
            "ivif_in_set_ms": breakdown(ir, vi, fused, names, convention, args.repeats),
            "max_relative_difference": difference,
        }
        ivif_ms = results[convention]["ivif"]["median_ms"]
        plain_ms = results[convention]["plain_port"]["median_ms"]
        print(f"{convention}: ivif {ivif_ms:.1f} ms, plain port {plain_ms:.1f} ms", flush=True)
    report = {
        "pair": source,
        "size": "640x480",
        "threads": args.threads,
        "malloc": {k: os.environ.get(k) for k in MALLOC},
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(report))
    return 0


def markdown(report: dict) -> str:
    malloc = ", ".join(f"{k}={v}" for k, v in report["malloc"].items() if v) or "glibc defaults"
    lines = [
        "# Metric speed (640×480)",
        "",
        f"Pair: {report['pair']}; fused by the `laplacian` baseline. {report['threads']} torch "
        f"threads; malloc: {malloc}. Load average before/after: "
        f"{', '.join(f'{x:.2f}' for x in report['load_average_before'])} / "
        f"{', '.join(f'{x:.2f}' for x in report['load_average_after'])}. "
        f"{report['machine']}, torch {report['torch']}, numpy {report['numpy']}, "
        f"{report['date']}.",
        "",
        "| set | ivif median (min–max) | ivif, sources cached | plain numpy/scipy port median "
        "| speed-up | max rel. diff |",
        "|---|---|---|---|---|---|",
    ]
    for convention, r in report["results"].items():
        ours, theirs = r["ivif"], r["plain_port"]
        lines.append(
            f"| {convention} ({len(r['metrics'])} metrics) | {ours['median_ms']:.1f} ms "
            f"({ours['min_ms']:.1f}–{ours['max_ms']:.1f}) | "
            f"{r['ivif_sources_cached']['median_ms']:.1f} ms | {theirs['median_ms']:.1f} ms | "
            f"{theirs['median_ms'] / ours['median_ms']:.1f}× | "
            f"{r['max_relative_difference']:.1e} |"
        )
    lines += ["", "ivif per metric (evaluated alone, input preparation included), median ms:", ""]
    for convention, r in report["results"].items():
        cells = ", ".join(f"{k} {v['median_ms']:.1f}" for k, v in r["ivif_per_metric_ms"].items())
        lines.append(f"- {convention}: {cells}")
    lines += [
        "",
        "Where one full call's time goes (median ms per step; a metric that first needs an "
        "intermediate shared with later ones pays for it):",
        "",
    ]
    for convention, r in report["results"].items():
        cells = ", ".join(f"{k} {v:.1f}" for k, v in r["ivif_in_set_ms"].items())
        lines.append(f"- {convention}: {cells}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
