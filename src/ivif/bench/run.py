"""Running a benchmark: fuse every pair with every method (cached), time it, evaluate it.

Everything finished is kept on disk as soon as it is done, so an interrupted run resumes where it
stopped:

* ``OUT/fused/<dataset>/<method>/<image>.png`` — fused images (atomic writes);
* ``OUT/fused/<dataset>/<method>/timing.csv`` — seconds per pair, appended pair by pair;
* ``OUT/fused/<dataset>/<method>/memory.json`` — peak resident memory of the last fusing run
  (by default each (dataset, method) is fused in a fresh process, so the peak is that method's own);
* ``OUT/metrics/<convention>/<dataset>/<method>.csv`` — metric values, appended image by image and
  keyed by the fused file's modification time, so a re-fused image is re-evaluated.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from tqdm import tqdm

from ivif.api import fuse_arrays, load_pair
from ivif.data import Dataset, ImagePair, list_images
from ivif.errors import InputError
from ivif.evaluation.batch import EvalTask, evaluate_tasks
from ivif.evaluation.registry import resolve_names
from ivif.io import write_image
from ivif.methods import create_method

__all__ = ["BenchConfig", "BenchResults", "Entry", "run_benchmark"]


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to benchmark. ``externals`` maps a display name to a folder of fused images made
    elsewhere (files named by pair stem)."""

    datasets: Sequence[Dataset]
    methods: Sequence[str]
    output: Path
    convention: str = "tang"
    metrics: Sequence[str] | str | None = None
    externals: dict[str, Path] = dataclasses.field(default_factory=dict)
    limit: int | None = None
    overwrite: bool = False
    jobs: int = 2
    seed: int = 0
    progress: bool = True
    #: Fuse each (dataset, method) in a fresh child process: the peak memory is then the
    #: method's own, not the benchmark process's high-water mark (glibc keeps freed heap).
    isolate: bool = True


@dataclasses.dataclass(frozen=True)
class Entry:
    """One fused image to evaluate (``fused`` is None when an external folder lacks it)."""

    dataset: str
    method: str
    pair: ImagePair
    fused: Path | None


@dataclasses.dataclass
class BenchResults:
    """Everything the tables and the report need."""

    config: BenchConfig
    entries: list[Entry]
    #: (dataset, image, method) -> {metric: value}
    values: dict[tuple[str, str, str], dict[str, float]]
    #: (dataset, image, method) -> seconds
    seconds: dict[tuple[str, str, str], float]
    #: (dataset, method) -> {"peak_rss_mb": …, "increase_mb": …}
    memory: dict[tuple[str, str], dict[str, float]]
    #: (dataset, method) -> names of pairs an external folder did not have
    missing: dict[tuple[str, str], list[str]]
    #: (dataset, image, method) -> why fusing or evaluating failed
    failures: dict[tuple[str, str, str], str]
    #: dataset -> files without a partner
    unpaired: dict[str, list[Path]]
    #: metric names in table order
    metric_names: list[str]

    @property
    def methods(self) -> list[str]:
        return [*self.config.methods, *self.config.externals]


def _memory_status() -> dict[str, float] | None:
    """Current and peak resident memory (MB) of this process, from /proc (Linux)."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
        )
        return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}
    except (OSError, KeyError, ValueError):
        return None


def _reset_peak_memory() -> bool:
    """Reset the kernel's peak-RSS counter of this process (``clear_refs`` value 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _read_timing(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    timing = {}
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            if len(row) == 2 and row[0] != "image":
                try:
                    timing[row[0]] = float(row[1])
                except ValueError:
                    continue  # a line cut short by an interruption
    return timing


def _append_row(path: Path, header: Sequence[str], row: Sequence[object]) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(header)
        writer.writerow(row)
        handle.flush()


def fuse_dataset(
    config: BenchConfig, dataset: Dataset, pairs: list[ImagePair], method_name: str
) -> tuple[dict[str, Path], dict[str, str]]:
    """Fuse the pairs not yet fused; returns the fused files and the failures by image."""
    folder = config.output / "fused" / dataset.key / method_name
    targets = {pair.name: folder / f"{pair.name}.png" for pair in pairs}
    todo = [p for p in pairs if config.overwrite or not targets[p.name].exists()]
    failures: dict[str, str] = {}
    if todo:
        job = (method_name, todo, folder, config.seed, f"{dataset.name} · {method_name}")
        if config.isolate:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                threads = torch.get_num_threads()
                failures = pool.submit(_fuse_pairs, *job, config.progress, threads).result()
        else:
            failures = _fuse_pairs(*job, config.progress)
    return {n: t for n, t in targets.items() if t.exists() and n not in failures}, failures


def _fuse_pairs(
    method_name: str,
    pairs: list[ImagePair],
    folder: Path,
    seed: int,
    label: str,
    progress: bool,
    threads: int | None = None,
) -> dict[str, str]:
    """Fuse ``pairs`` into ``folder`` (images, ``timing.csv``, ``memory.json``); returns the
    failures by image. Runs in the benchmark process or in a fresh child (``threads`` set)."""
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        method = create_method(method_name)
    except InputError as exc:
        return {pair.name: f"method unavailable: {exc}" for pair in pairs}
    failures: dict[str, str] = {}
    measured = _reset_peak_memory()
    baseline = _memory_status()
    for pair in tqdm(pairs, desc=label, unit="pair", disable=not progress, file=sys.stderr):
        try:
            ir, vi = load_pair(pair.ir, pair.vi)
            start = time.perf_counter()
            fused = fuse_arrays(method, ir, vi, seed)
            elapsed = time.perf_counter() - start
            write_image(folder / f"{pair.name}.png", fused)
            _append_row(folder / "timing.csv", ("image", "seconds"), (pair.name, f"{elapsed:.6f}"))
        except (InputError, ValueError, RuntimeError, OSError) as exc:
            failures[pair.name] = f"fusing failed: {exc}"
    status = _memory_status()
    if measured and baseline and status:
        memory = {
            "peak_rss_mb": round(status["VmHWM"], 1),
            "increase_mb": round(status["VmHWM"] - baseline["VmRSS"], 1),
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "memory.json").write_text(json.dumps(memory))
    return failures


def _external_files(folder: Path) -> dict[str, Path]:
    try:
        return list_images(folder, "external fused")
    except InputError:
        return {}


def _metrics_cache(config: BenchConfig, dataset: str, method: str) -> Path:
    return config.output / "metrics" / config.convention / dataset / f"{method}.csv"


def _read_metric_cache(path: Path) -> dict[tuple[str, int], dict[str, float]]:
    cache: dict[tuple[str, int], dict[str, float]] = {}
    if not path.exists():
        return cache
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            if len(row) != 4 or row[0] == "image":
                continue
            try:
                cache.setdefault((row[0], int(row[1])), {})[row[2]] = float(row[3])
            except ValueError:
                continue  # a line cut short by an interruption
    return cache


def evaluate_entries(
    config: BenchConfig, entries: list[Entry], metric_names: list[str]
) -> tuple[dict[tuple[str, str, str], dict[str, float]], dict[tuple[str, str, str], str]]:
    """Metric values of every entry, from the cache where the fused file has not changed."""
    values: dict[tuple[str, str, str], dict[str, float]] = {}
    failures: dict[tuple[str, str, str], str] = {}
    caches: dict[tuple[str, str], dict[tuple[str, int], dict[str, float]]] = {}
    todo: list[tuple[Entry, int]] = []
    for entry in entries:
        if entry.fused is None:
            continue
        key = (entry.dataset, entry.method)
        if key not in caches:
            caches[key] = _read_metric_cache(_metrics_cache(config, *key))
        stamp = entry.fused.stat().st_mtime_ns
        cached = caches[key].get((entry.pair.name, stamp), {})
        if all(name in cached for name in metric_names):
            values[(entry.dataset, entry.pair.name, entry.method)] = {
                n: cached[n] for n in metric_names
            }
        else:
            todo.append((entry, stamp))

    def record(entry: Entry, stamp: int, result: dict[str, float]) -> None:
        values[(entry.dataset, entry.pair.name, entry.method)] = result
        path = _metrics_cache(config, entry.dataset, entry.method)
        for metric, value in result.items():
            _append_row(
                path,
                ("image", "fused_mtime_ns", "metric", "value"),
                (entry.pair.name, stamp, metric, repr(value)),
            )

    tasks = [
        EvalTask(index, entry.pair.ir, entry.pair.vi, entry.fused)
        for index, (entry, _) in enumerate(todo)
    ]
    outcomes = evaluate_tasks(tasks, metric_names, config.convention, config.jobs, config.progress)
    for task, outcome in outcomes:
        entry, stamp = todo[task.key]
        if isinstance(outcome, Exception):
            failures[(entry.dataset, entry.pair.name, entry.method)] = (
                f"evaluation failed: {outcome}"
            )
        else:
            record(entry, stamp, outcome)
    return values, failures


def run_benchmark(config: BenchConfig) -> BenchResults:
    """Fuse, time and evaluate; returns the results (the caller writes tables and reports)."""
    metric_names = resolve_names(config.metrics, config.convention)
    entries: list[Entry] = []
    failures: dict[tuple[str, str, str], str] = {}
    seconds: dict[tuple[str, str, str], float] = {}
    memory: dict[tuple[str, str], dict[str, float]] = {}
    missing: dict[tuple[str, str], list[str]] = {}
    unpaired: dict[str, list[Path]] = {}
    for dataset in config.datasets:
        pairs, unpaired[dataset.name] = dataset.pairs(config.limit)
        for method in config.methods:
            fused, failed = fuse_dataset(config, dataset, pairs, method)
            failures.update({(dataset.name, image, method): why for image, why in failed.items()})
            entries += [
                Entry(dataset.name, method, p, fused[p.name]) for p in pairs if p.name in fused
            ]
            folder = config.output / "fused" / dataset.key / method
            timing = _read_timing(folder / "timing.csv")
            seconds.update(
                {(dataset.name, p.name, method): timing[p.name] for p in pairs if p.name in timing}
            )
            if (folder / "memory.json").exists():
                memory[(dataset.name, method)] = json.loads((folder / "memory.json").read_text())
        for name, folder in config.externals.items():
            files = _external_files(Path(folder))
            missing[(dataset.name, name)] = [p.name for p in pairs if p.name not in files]
            entries += [
                Entry(dataset.name, name, p, files[p.name]) for p in pairs if p.name in files
            ]
    values, eval_failures = evaluate_entries(config, entries, metric_names)
    failures.update(eval_failures)
    return BenchResults(
        config, entries, values, seconds, memory, missing, failures, unpaired, metric_names
    )


def environment() -> dict[str, str]:
    """Where the figures were measured: machine, threads, allocator setting."""
    import platform

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "malloc": f"MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_', 'unset')}, "
        f"MALLOC_TRIM_THRESHOLD_={os.environ.get('MALLOC_TRIM_THRESHOLD_', 'unset')}",
    }
