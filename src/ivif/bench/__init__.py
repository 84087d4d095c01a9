"""Benchmarks: fuse datasets with several methods, evaluate, and write tables and a report."""

from ivif.bench.report import write_report
from ivif.bench.run import BenchConfig, BenchResults, environment, run_benchmark
from ivif.bench.tables import write_results_csv, write_summary, write_timing_csv

__all__ = [
    "BenchConfig",
    "BenchResults",
    "environment",
    "run_benchmark",
    "write_outputs",
    "write_report",
]


def write_outputs(results: BenchResults, grid_images: int = 3) -> dict[str, "object"]:
    """Write ``results.csv``, ``timing.csv``, ``summary.md`` and ``index.html`` into the
    benchmark's output folder; returns their paths by name."""
    out = results.config.output
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    paths = {
        "results": out / "results.csv",
        "timing": out / "timing.csv",
        "summary": out / "summary.md",
        "report": out / "index.html",
    }
    write_results_csv(results, paths["results"])
    write_timing_csv(results, paths["timing"])
    write_summary(results, paths["summary"], env)
    write_report(results, paths["report"], env, grid_images)
    return paths
