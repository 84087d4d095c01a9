"""``ivif eval``: fusion metrics of a folder of fused images against their source pairs.

Images are paired by file stem across ``--ir``, ``--vi`` and ``--fused``. Writes one row per
image to ``-o results.csv`` (optional) and prints the mean ± standard deviation of every metric
as a Markdown table (or JSON with ``--json``), naming the convention that produced the numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

from ivif.data import list_images, pair_folders
from ivif.errors import InputError
from ivif.evaluation import conventions, get_convention, metrics
from ivif.evaluation.batch import EvalTask, evaluate_tasks
from ivif.evaluation.registry import DEFAULT_CONVENTION, resolve_names


def add_parser(subparsers, argv=None) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="fusion metrics of fused images against their IR/VI pairs",
        description=(
            "Evaluate every fused image of --fused against the IR and VI images with the same "
            "file stem. Prints mean ± std per metric (Markdown, or --json) and names the metric "
            "convention; -o writes the per-image values as CSV. --list shows the metrics."
        ),
    )
    parser.add_argument("--ir", type=Path, metavar="DIR", help="folder of infrared images")
    parser.add_argument("--vi", type=Path, metavar="DIR", help="folder of visible images")
    parser.add_argument("--fused", type=Path, metavar="DIR", help="folder of fused images")
    parser.add_argument(
        "--convention",
        choices=conventions(),
        default=DEFAULT_CONVENTION,
        help=f"whose metric definitions to use (default {DEFAULT_CONVENTION})",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        metavar="NAME",
        help="metric names (space- or comma-separated), or 'all' (default: the convention's set)",
    )
    parser.add_argument("-o", "--output", type=Path, help="per-image CSV to write")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes (default 1: evaluate in-process)"
    )
    parser.add_argument("--list", action="store_true", help="list the convention's metrics")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def _requested(names: list[str] | None, convention: str) -> list[str]:
    if names is None:
        return resolve_names(None, convention)
    split = [part for name in names for part in name.split(",") if part.strip()]
    if len(split) == 1 and split[0].lower() == "all":
        return resolve_names("all", convention)
    return resolve_names(split, convention)


def _arrow(info) -> str:
    """↑ higher is better, ↓ lower is better, →v best at the value v."""
    if info.ideal is not None:
        return f"→{info.ideal:g}"
    return "↑" if info.higher_is_better else "↓"


def _direction(info) -> dict:
    return {"higher_is_better": info.higher_is_better, "ideal": info.ideal}


def _list_metrics(convention: str) -> int:
    spec = get_convention(convention)
    print(f"convention {spec.name}: {spec.summary}")
    default = set(spec.default)
    for info in metrics(convention):
        marker = "*" if info.name in default else " "
        print(f" {marker} {info.name:10s} {_arrow(info):3s} {info.definition}")
    print(" (* in the default set; ↑ higher is better, ↓ lower is better, →v best at v)")
    return 0


def _triples(ir_dir: Path, vi_dir: Path, fused_dir: Path) -> tuple[list, list[str], list[str]]:
    """Matched (name, ir, vi, fused) triples, errors for unmatched fused or source files, and
    the names of source pairs that have no fused image (evaluating a subset is allowed)."""
    pairs, unpaired = pair_folders(ir_dir, vi_dir)
    fused = list_images(fused_dir, "fused")
    by_name = {pair.name: pair for pair in pairs}
    problems = [
        f"{path}: no image with the same name in the other source folder" for path in unpaired
    ]
    problems += [
        f"{fused[name]}: no infrared/visible pair named {name!r} in {ir_dir} and {vi_dir}"
        for name in sorted(fused.keys() - by_name.keys())
    ]
    not_fused = sorted(by_name.keys() - fused.keys())
    triples = [
        (name, by_name[name].ir, by_name[name].vi, fused[name])
        for name in sorted(by_name.keys() & fused.keys())
    ]
    return triples, problems, not_fused


def summarise(rows: dict[str, dict[str, float]], names: list[str]) -> dict[str, dict]:
    """Mean and sample standard deviation (n − 1, as MATLAB's ``std``) of each metric.

    The standard deviation of a single image is 0. An infinite value (PSNR of a fused image
    equal to both sources) makes the mean infinite and the deviation undefined (reported as 0).
    """
    summary = {}
    for name in names:
        values = [row[name] for row in rows.values()]
        mean = math.fsum(values) / len(values) if values else math.nan
        finite = all(math.isfinite(v) for v in values)
        spread = statistics.stdev(values) if len(values) > 1 and finite else 0.0
        summary[name] = {"mean": mean, "std": spread, "n": len(values)}
    return summary


def _markdown(summary: dict[str, dict], convention: str, count: int) -> str:
    spec = get_convention(convention)
    infos = {info.name: info for info in metrics(convention)}
    lines = [
        f"Metrics of {count} image(s), convention `{spec.name}` ({spec.summary}); "
        "mean ± sample std.",
        "",
        "| metric | | mean ± std |",
        "|---|---|---|",
    ]
    for name, s in summary.items():
        lines.append(f"| {name} | {_arrow(infos[name])} | {s['mean']:.4f} ± {s['std']:.4f} |")
    return "\n".join(lines)


def _write_csv(path: Path, rows: dict[str, dict[str, float]], names: list[str]) -> None:
    """Atomically write one row per image (full precision)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", *names])
            for image in sorted(rows):
                writer.writerow([image, *(repr(rows[image][n]) for n in names)])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list_metrics(args.convention)
    missing = [
        flag
        for flag, value in (("--ir", args.ir), ("--vi", args.vi), ("--fused", args.fused))
        if value is None
    ]
    if missing:
        raise InputError(f"give {', '.join(missing)} (folders of images paired by file stem)")
    if args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}")
    names = _requested(args.metrics, args.convention)
    triples, problems, not_fused = _triples(args.ir, args.vi, args.fused)
    if not triples:
        raise InputError(
            "no fused image matches an infrared/visible pair by name"
            + (f" ({len(problems)} unmatched files, e.g. {problems[0]})" if problems else "")
        )
    rows: dict[str, dict[str, float]] = {}
    tasks = [EvalTask(name, ir, vi, fused) for name, ir, vi, fused in triples]
    for task, outcome in evaluate_tasks(
        tasks, names, args.convention, args.jobs, not args.no_progress
    ):
        if isinstance(outcome, Exception):
            problems.append(f"{task.fused}: {outcome}")
        else:
            rows[task.key] = outcome
    if args.output and rows:
        _write_csv(args.output, rows, names)
    if rows:
        summary = summarise(rows, names)
        if args.json:
            infos = {info.name: info for info in metrics(args.convention)}
            report = {
                "convention": args.convention,
                "images": len(rows),
                "metrics": {
                    name: {**values, **_direction(infos[name])} for name, values in summary.items()
                },
                "failed": problems,
            }
            print(json.dumps(report, indent=2))
        else:
            print(_markdown(summary, args.convention, len(rows)))
            if args.output:
                print(f"\nper-image values: {args.output}")
    if not_fused:
        shown = ", ".join(not_fused[:5]) + (", …" if len(not_fused) > 5 else "")
        print(
            f"ivif eval: note: {len(not_fused)} source pair(s) have no fused image in "
            f"{args.fused} ({shown}); not evaluated",
            file=sys.stderr,
        )
    for problem in problems:
        print(f"ivif eval: skipped {problem}", file=sys.stderr)
    if not rows:
        raise InputError(f"no image could be evaluated ({len(problems)} failed)")
    return 1 if problems else 0
