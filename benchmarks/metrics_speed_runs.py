"""Repeated runs of ``metrics_speed.py``, each in a fresh process, and their spread.

This shared 2-vCPU machine drifts by tens of percent from one minute to the next, so a single
run of ``metrics_speed.py`` says little. This driver runs it ``--runs`` times with ``--pause``
seconds between runs (pass the glibc settings and pause training jobs as for a single run), or
summarises runs made before (``--from DIR[=LABEL]``, folders of ``run_*.json``), and writes
``benchmarks/results/metrics_speed_runs.json`` and ``.md``: per run the median of each set for
ivif and the plain port, and over each label's runs the median, range, the ratio to the plain
port and how many runs meet the issue's targets (Tang ≤ 50 ms, VIFB ≤ 150 ms).

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python benchmarks/metrics_speed_runs.py --runs 8 --pause 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGETS_MS = {"tang": 50.0, "vifb": 150.0}


def run_once(folder: Path, index: int, threads: int) -> Path:
    out = folder / f"run_{index}"
    command = [sys.executable, str(ROOT / "benchmarks" / "metrics_speed.py")]
    command += ["--threads", str(threads), "--out", str(out)]
    subprocess.run(command, check=True, cwd=ROOT)
    return out.with_suffix(".json")


def collect(folder: Path, label: str) -> list[dict]:
    def number(path: Path) -> int:
        return int(path.stem.split("_")[-1])

    runs = []
    for path in sorted(folder.glob("run_*.json"), key=number):
        report = json.loads(path.read_text())
        row = {"label": label, "date": report["date"], "threads": report["threads"]}
        for convention, result in report["results"].items():
            row[convention] = {
                "ivif_ms": result["ivif"]["median_ms"],
                "sources_cached_ms": result["ivif_sources_cached"]["median_ms"],
                "plain_port_ms": result["plain_port"]["median_ms"],
            }
        runs.append(row)
    return runs


def summary(runs: list[dict]) -> dict:
    """Per label (one code version each), per set: the median, range and ratio to the plain
    port of the runs' medians, and how many runs meet the target."""
    out: dict[str, dict] = {}
    for label in dict.fromkeys(run["label"] for run in runs):
        mine = [run for run in runs if run["label"] == label]
        out[label] = {}
        for convention, target in TARGETS_MS.items():
            ours = [run[convention]["ivif_ms"] for run in mine]
            ratios = [run[convention]["ivif_ms"] / run[convention]["plain_port_ms"] for run in mine]
            out[label][convention] = {
                "median_of_run_medians_ms": statistics.median(ours),
                "min_ms": min(ours),
                "max_ms": max(ours),
                "median_ratio_to_plain_port": statistics.median(ratios),
                "runs_meeting_target": sum(value <= target for value in ours),
                "runs": len(ours),
                "target_ms": target,
            }
    return out


def markdown(runs: list[dict], totals: dict) -> str:
    lines = [
        "# Metric speed, repeated runs (640×480, `metrics_speed.py` in fresh processes)",
        "",
        "| run | label | threads | Tang ivif | Tang plain port | VIFB ivif | VIFB plain port |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        t, v = run["tang"], run["vifb"]
        lines.append(
            f"| {run['date']} | {run['label']} | {run['threads']} | {t['ivif_ms']:.1f} ms | "
            f"{t['plain_port_ms']:.0f} ms | {v['ivif_ms']:.1f} ms | {v['plain_port_ms']:.0f} ms |"
        )
    lines += [
        "",
        "| label | set | median of the runs | range | ivif / plain port | runs ≤ target |",
        "|---|---|---|---|---|---|",
    ]
    for label, sets in totals.items():
        for convention, s in sets.items():
            lines.append(
                f"| {label} | {convention} | {s['median_of_run_medians_ms']:.1f} ms | "
                f"{s['min_ms']:.1f}–{s['max_ms']:.1f} ms | {s['median_ratio_to_plain_port']:.3f} | "
                f"{s['runs_meeting_target']} of {s['runs']} (≤ {s['target_ms']:.0f} ms) |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--pause", type=float, default=40.0, help="seconds between runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--from", dest="sources", nargs="+", metavar="DIR[=LABEL]")
    args = parser.parse_args()
    runs = []
    if args.sources:
        for source in args.sources:
            folder, _, label = source.partition("=")
            runs += collect(Path(folder), label or Path(folder).name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for index in range(1, args.runs + 1):
                run_once(Path(tmp), index, args.threads)
                if index < args.runs:
                    time.sleep(args.pause)
            runs = collect(Path(tmp), "this run")
    if not runs:
        raise SystemExit("no run_*.json found")
    totals = summary(runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"runs": runs, "summary": totals}
    (RESULTS / "metrics_speed_runs.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "metrics_speed_runs.md").write_text(markdown(runs, totals))
    print(markdown(runs, totals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
