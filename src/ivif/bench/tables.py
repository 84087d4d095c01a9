"""Benchmark tables: ``results.csv``, ``timing.csv`` and the paper-style ``summary.md``."""

from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from pathlib import Path

from ivif.bench.run import BenchResults
from ivif.evaluation import metrics

__all__ = [
    "Cell",
    "failure_groups",
    "metric_table",
    "timing_table",
    "write_results_csv",
    "write_summary",
    "write_timing_csv",
]


@dataclasses.dataclass(frozen=True)
class Cell:
    """Mean ± std of one metric for one method, and its rank among the methods (1 = best)."""

    mean: float
    std: float
    count: int
    rank: int | None = None


def _higher_is_better(convention: str) -> dict[str, bool]:
    return {m.name: m.higher_is_better for m in metrics(convention)}


def metric_table(results: BenchResults, dataset: str) -> dict[str, dict[str, Cell]]:
    """``{method: {metric: Cell}}`` over the images each method has, with ranks per metric."""
    table: dict[str, dict[str, Cell]] = {}
    for method in results.methods:
        row = {}
        for metric in results.metric_names:
            samples = [
                v[metric]
                for (d, _, m), v in results.values.items()
                if d == dataset and m == method and metric in v and math.isfinite(v[metric])
            ]
            if samples:
                std = statistics.pstdev(samples) if len(samples) > 1 else 0.0
                row[metric] = Cell(statistics.fmean(samples), std, len(samples))
        if row:
            table[method] = row
    better = _higher_is_better(results.config.convention)
    for metric in results.metric_names:
        ranked = sorted(
            (m for m in table if metric in table[m]),
            key=lambda m: table[m][metric].mean,
            reverse=better.get(metric, True),
        )
        for rank, method in enumerate(ranked, start=1):
            table[method][metric] = dataclasses.replace(table[method][metric], rank=rank)
    return table


def timing_table(results: BenchResults, dataset: str) -> dict[str, dict[str, float]]:
    """``{method: {"median_s", "mean_s", "pairs", "peak_rss_mb", "increase_mb"}}``."""
    table = {}
    for method in results.config.methods:
        samples = [s for (d, _, m), s in results.seconds.items() if d == dataset and m == method]
        if not samples:
            continue
        row = {
            "median_s": statistics.median(samples),
            "mean_s": statistics.fmean(samples),
            "pairs": len(samples),
        }
        row.update(results.memory.get((dataset, method), {}))
        table[method] = row
    return table


def write_results_csv(results: BenchResults, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "image", "method", "metric", "value"])
        for (dataset, image, method), values in sorted(results.values.items()):
            for metric in results.metric_names:
                if metric in values:
                    writer.writerow([dataset, image, method, metric, repr(values[metric])])


def write_timing_csv(results: BenchResults, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "image", "method", "seconds"])
        for (dataset, image, method), seconds in sorted(results.seconds.items()):
            writer.writerow([dataset, image, method, f"{seconds:.6f}"])


def format_number(value: float) -> str:
    """Four significant figures, without scientific notation for ordinary magnitudes."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    digits = max(0, 3 - math.floor(math.log10(abs(value))))
    return f"{value:.{digits}f}"


def _markdown_cell(cell: Cell | None) -> str:
    if cell is None:
        return "–"
    text = f"{format_number(cell.mean)} ± {format_number(cell.std)}"
    if cell.rank == 1:
        return f"**{text}**"
    if cell.rank == 2:
        return f"<u>{text}</u>"
    return text


def write_summary(results: BenchResults, path: Path, environment: dict[str, str]) -> None:
    """Paper-style Markdown: one table per dataset, best in bold, second underlined."""
    config = results.config
    better = _higher_is_better(config.convention)
    lines = [
        "# Benchmark summary",
        "",
        f"Metrics: convention `{config.convention}` (see `ivif.metrics('{config.convention}')`); "
        "mean ± population std over the images; **best** in bold, <u>second</u> underlined; "
        "↑ higher is better, ↓ lower is better.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in environment.items()),
        "",
    ]
    for dataset in config.datasets:
        table = metric_table(results, dataset.name)
        pairs = {image for (d, image, _) in results.values if d == dataset.name}
        lines += [f"## {dataset.name} ({len(pairs)} pairs, `{dataset.ir_dir.parent}`)", ""]
        header = [
            "method",
            *(f"{m} {'↑' if better.get(m, True) else '↓'}" for m in results.metric_names),
        ]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method in results.methods:
            row = table.get(method, {})
            lines.append(
                "| "
                + " | ".join([method, *(_markdown_cell(row.get(m)) for m in results.metric_names)])
                + " |"
            )
        lines.append("")
        timing = timing_table(results, dataset.name)
        if timing:
            lines += [
                "| method | median s/pair | mean s/pair | pairs timed | peak RSS MB | "
                "RSS increase MB |",
                "|---|---|---|---|---|---|",
            ]
            for method, row in timing.items():
                lines.append(
                    f"| {method} | {row['median_s']:.4f} | {row['mean_s']:.4f} | {row['pairs']} | "
                    f"{row.get('peak_rss_mb', '–')} | {row.get('increase_mb', '–')} |"
                )
            lines.append("")
        notes = _dataset_notes(results, dataset.name)
        if notes:
            lines += ["Notes:", "", *(f"- {note}" for note in notes), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def failure_groups(results: BenchResults, dataset: str) -> dict[tuple[str, str], list[str]]:
    """Failures of one dataset grouped by (method, reason): the images of each group."""
    groups: dict[tuple[str, str], list[str]] = {}
    for (d, image, method), why in sorted(results.failures.items()):
        if d == dataset:
            groups.setdefault((method, why), []).append(image)
    return groups


def _dataset_notes(results: BenchResults, dataset: str) -> list[str]:
    notes = []
    for (d, method), names in sorted(results.missing.items()):
        if d == dataset and names:
            shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
            notes.append(f"external `{method}` is missing {len(names)} image(s): {shown}")
    for (method, why), images in failure_groups(results, dataset).items():
        shown = ", ".join(images[:10]) + (" …" if len(images) > 10 else "")
        notes.append(f"`{method}` failed on {len(images)} pair(s) ({shown}): {why}")
    for path in results.unpaired.get(dataset, []):
        notes.append(f"no partner for `{path.name}` (skipped)")
    return notes
