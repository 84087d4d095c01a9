"""The full evaluation protocol: every method on MSRS test, TNO, LLVIP and M3FD.

Run by hand (it takes minutes to hours depending on the methods), then commit what it writes:

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \
        .venv/bin/python benchmarks/full_protocol.py [--methods all] [--limit N]

* ``runs/full_protocol/``              the benchmark folder (fused images; not committed)
* ``benchmarks/results/full_protocol/`` ``results.csv``, ``timing.csv`` and ``summary.md``
* ``docs/benchmark.md``                 the docs page: tables with date, commit, machine, command
* ``docs/benchmark/index.html``         the self-contained visual report

Data protocol (``shared/spec/README.md``): models are trained on RoadScene and validated on TNO;
MSRS, LLVIP and M3FD are test sets, so learned methods are measured across datasets.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from ivif.bench import BenchConfig, environment, run_benchmark, write_outputs
from ivif.cli.bench import parse_methods
from ivif.data import resolve_dataset

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["msrs/test", "tno/test", "llvip/test", "m3fd/test"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="all", help="comma-separated methods or 'all'")
    parser.add_argument("--convention", default="tang")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "full_protocol")
    parser.add_argument(
        "--limit", type=int, default=None, help="first N pairs per dataset (for a quick look)"
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--note", action="append", default=[], help="a line for the page's header (repeatable)"
    )
    args = parser.parse_args()

    config = BenchConfig(
        datasets=[resolve_dataset(name, args.data_root) for name in DATASETS],
        methods=parse_methods(args.methods),
        output=args.output,
        convention=args.convention,
        limit=args.limit,
        jobs=args.jobs,
    )
    results = run_benchmark(config)
    paths = write_outputs(results, grid_images=3)

    committed = REPO / "benchmarks" / "results" / "full_protocol"
    committed.mkdir(parents=True, exist_ok=True)
    for name in ("results", "timing", "summary"):
        shutil.copy(paths[name], committed / paths[name].name)
    (REPO / "docs" / "benchmark").mkdir(parents=True, exist_ok=True)
    shutil.copy(paths["report"], REPO / "docs" / "benchmark" / "index.html")

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "src"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    env = environment()
    header = [
        "# Benchmark: the full protocol",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Commit: `{commit}`{' (with uncommitted changes under src/)' if dirty else ''}",
        f"- Machine: {env['machine']}; torch {env['torch']}, torch threads: {env['threads']}; "
        f"{env['malloc']}",
        "- Seconds per pair are wall-clock times of the fusion call inside the benchmark, which "
        "fuses cached results method by method, possibly in separate runs on a machine shared with "
        "other jobs: they show the order of magnitude. Quiet-machine medians are in "
        "`benchmarks/results/*_speed.md`.",
        "- Peak RSS is the high-water mark of a fresh process that fuses one dataset with one "
        "method (interpreter and torch included; the increase column is over the process after the "
        "method was loaded); '–' where the images came from another run.",
        f"- Command: `{' '.join(shlex.quote(a) for a in _without_notes(sys.argv))}`",
        f"- Methods: {', '.join(config.methods)}; metrics convention `{config.convention}` on gray "
        "(the fused image's gray against the gray sources).",
        "- Data: MSRS test (361 pairs), TNO (42), LLVIP (12 of the official test split), M3FD (8 of "
        "the 300-pair fusion set); learned methods were trained on RoadScene and validated on TNO, so "
        "MSRS, LLVIP and M3FD measure cross-dataset generalisation.",
        "- Visual report: [`benchmark/index.html`](benchmark/index.html). Raw numbers: "
        "`benchmarks/results/full_protocol/{results,timing}.csv`.",
        *(f"- {note}" for note in args.note),
        "",
    ]
    summary = paths["summary"].read_text(encoding="utf-8").split("\n", 1)[1]  # drop its title
    (REPO / "docs" / "benchmark.md").write_text("\n".join(header) + summary, encoding="utf-8")
    print(f"wrote docs/benchmark.md, docs/benchmark/index.html and {committed.relative_to(REPO)}/")
    return 0


def _without_notes(argv: list[str]) -> list[str]:
    """The command line without its ``--note`` options (the notes are printed on their own)."""
    kept: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--note" or arg.startswith("--note=") or (index and argv[index - 1] == "--note"):
            continue
        kept.append(arg)
    return kept


if __name__ == "__main__":
    sys.exit(main())
