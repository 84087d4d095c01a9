"""Image-quality figures logged at each validation, shared by the learned methods."""

from __future__ import annotations

import torch

from ivif.evaluation import evaluate_arrays, metrics
from ivif.io import from_tensor

__all__ = ["VALIDATION_METRICS", "check_selection", "higher_is_better", "validation_quality"]

#: ``tang`` metrics logged at each validation (``ivif.evaluate`` names).
VALIDATION_METRICS = ("EN", "SD", "SF", "AG", "VIF", "Qabf")


def validation_quality(ir: torch.Tensor, vi: torch.Tensor, fused: torch.Tensor) -> dict[str, float]:
    """:data:`VALIDATION_METRICS` (``tang``, on gray) of one ``1×C×H×W`` triple on ``[0, 1]``;
    a colour visible or fused image is converted as the convention does."""
    planes = [from_tensor(x) for x in (ir, vi, fused)]
    return evaluate_arrays(*planes, metrics=VALIDATION_METRICS, convention="tang")


def check_selection(select_by: str, extra: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` unless ``select_by`` is the loss ``score``, one of
    :data:`VALIDATION_METRICS` or one of the task's ``extra`` validation values."""
    allowed = ("score", *VALIDATION_METRICS, *extra)
    if select_by not in allowed:
        raise ValueError(f"select_by must be one of {', '.join(allowed)}, got {select_by!r}")


def higher_is_better(name: str) -> bool:
    """The direction in which a validation value improves: the loss ``score`` and loss terms
    decrease, ``tang`` metrics follow the registry."""
    directions = {info.name: info.higher_is_better for info in metrics("tang")}
    return directions.get(name, False)
