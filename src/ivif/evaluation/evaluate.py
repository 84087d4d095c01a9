"""``evaluate``: compute named metrics of one fused image under one convention."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from ivif.errors import InputError
from ivif.evaluation.inputs import ImageLike, SourceCache, load_uint8, prepare_inputs
from ivif.evaluation.registry import (
    DEFAULT_CONVENTION,
    MetricInfo,
    metric_entry,
    metric_infos,
    resolve_names,
)

__all__ = ["evaluate", "evaluate_arrays", "metrics"]


def metrics(convention: str = DEFAULT_CONVENTION) -> list[MetricInfo]:
    """The metrics of ``convention`` with their direction and one-line definition.

    The convention's default set comes first, in the order :func:`evaluate` reports it.
    """
    return metric_infos(convention)


def evaluate_arrays(
    ir: np.ndarray,
    vi: np.ndarray,
    fused: np.ndarray,
    metrics: str | Iterable[str] | None = None,
    convention: str = DEFAULT_CONVENTION,
    *,
    cache: SourceCache | None = None,
) -> dict[str, float]:
    """:func:`evaluate` for images already in memory (uint8, or float on ``[0, 1]``).

    Loads nothing and keeps no global state, so a benchmark can read each image once and
    evaluate many fused images, and worker processes can call it freely. ``cache`` (a
    :class:`SourceCache`, one per source pair) reuses the work that depends only on the sources
    when several fused images of one pair are evaluated.
    """
    names = resolve_names(metrics, convention)
    images = [
        load_uint8(x, role) for x, role in ((ir, "infrared"), (vi, "visible"), (fused, "fused"))
    ]
    inputs = prepare_inputs(*images, convention, cache)
    height, width = inputs.size
    entries = [metric_entry(name, convention) for name in names]
    for entry in entries:
        if min(height, width) < entry.info.min_size:
            side = entry.info.min_size
            raise InputError(
                f"{entry.info.name} ({convention}) needs images of at least {side}×{side} pixels; "
                f"got {width}×{height}"
            )
    results: dict[str, float] = {}
    with torch.inference_mode():
        for entry in entries:
            value = float(entry.compute(inputs))
            if math.isnan(value):
                raise RuntimeError(f"{entry.info.name} ({convention}) produced NaN; please report")
            results[entry.info.name] = value
    return results


def evaluate(
    ir: ImageLike,
    vi: ImageLike,
    fused: ImageLike,
    metrics: str | Iterable[str] | None = None,
    convention: str = DEFAULT_CONVENTION,
) -> dict[str, float]:
    """Fusion metrics of ``fused`` against its infrared and visible sources.

    ``ir``, ``vi`` and ``fused`` are file paths or arrays (uint8, or float on ``[0, 1]``,
    ``H×W`` or ``H×W×3``), all of one size. ``metrics`` is a list of names (case-insensitive;
    a toolbox's own names such as ``"Avg_gradient"`` are accepted), ``"all"``, or ``None`` for
    the convention's default set. ``convention`` is ``"tang"`` (default), ``"tang2022"`` or
    ``"vifb"`` — see :func:`metrics` and ``docs/metrics.md``. Returns ``{name: value}`` in a
    stable order (the request's order, or the default set's).

    Raises :class:`~ivif.errors.InputError` for unknown names, unreadable files, mismatched
    sizes and images smaller than a metric's window.
    """
    images = [
        load_uint8(x, role) for x, role in ((ir, "infrared"), (vi, "visible"), (fused, "fused"))
    ]
    return evaluate_arrays(*images, metrics=metrics, convention=convention)
