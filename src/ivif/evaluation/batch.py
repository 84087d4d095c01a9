"""Evaluating many fused images at once: in-process or in worker processes, with progress.

Used by ``ivif eval`` and ``ivif bench``. Fused images of the same source pair (several methods
in a benchmark) are evaluated together, so the pair is read once and one
:class:`~ivif.evaluation.SourceCache` shares the work that depends only on the sources.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Hashable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm import tqdm

from ivif.errors import InputError
from ivif.evaluation.evaluate import evaluate_arrays
from ivif.evaluation.inputs import SourceCache
from ivif.io import read_image

__all__ = ["EVALUATION_ERRORS", "EvalTask", "evaluate_tasks"]

#: What makes one image's evaluation fail without stopping the others.
EVALUATION_ERRORS = (InputError, ValueError, RuntimeError, OSError)


@dataclasses.dataclass(frozen=True)
class EvalTask:
    """One fused image to evaluate against its sources; ``key`` is the caller's label."""

    key: Hashable
    ir: Path
    vi: Path
    fused: Path


def _evaluate_pair(
    tasks: Sequence[EvalTask], metrics: Sequence[str], convention: str
) -> list[dict[str, float] | Exception]:
    """Values (or the error) of every fused image of one source pair, in ``tasks`` order."""
    try:
        ir, vi = read_image(tasks[0].ir), read_image(tasks[0].vi)
    except EVALUATION_ERRORS as exc:
        return [exc] * len(tasks)
    cache = SourceCache()
    outcomes: list[dict[str, float] | Exception] = []
    for task in tasks:
        try:
            fused = read_image(task.fused)
            outcomes.append(
                evaluate_arrays(ir, vi, fused, metrics=metrics, convention=convention, cache=cache)
            )
        except EVALUATION_ERRORS as exc:
            outcomes.append(exc)
    return outcomes


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core; no oversubscription


def evaluate_tasks(
    tasks: Sequence[EvalTask],
    metrics: Sequence[str],
    convention: str,
    jobs: int = 1,
    progress: bool = True,
) -> Iterator[tuple[EvalTask, dict[str, float] | Exception]]:
    """Yield each task with its metric values, or the exception that stopped it, as it finishes.

    ``jobs <= 1`` evaluates in this process; otherwise in ``jobs`` single-threaded workers.
    """
    groups: dict[tuple[Path, Path], list[EvalTask]] = {}
    for task in tasks:
        groups.setdefault((task.ir, task.vi), []).append(task)
    bar = tqdm(
        total=len(tasks),
        desc=f"metrics ({convention})",
        unit="image",
        disable=not progress,
        file=sys.stderr,
    )
    try:
        if jobs <= 1 or len(groups) < 2:
            for group in groups.values():
                for task, outcome in zip(
                    group, _evaluate_pair(group, metrics, convention), strict=True
                ):
                    bar.update()
                    yield task, outcome
            return
        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
            futures = {
                pool.submit(_evaluate_pair, group, list(metrics), convention): group
                for group in groups.values()
            }
            for future in as_completed(futures):
                group = futures[future]
                try:
                    outcomes = future.result()
                except EVALUATION_ERRORS as exc:
                    outcomes = [exc] * len(group)
                for task, outcome in zip(group, outcomes, strict=True):
                    bar.update()
                    yield task, outcome
    finally:
        bar.close()
