"""Loss terms shared by the learned methods."""

from __future__ import annotations

import functools

import torch

from ivif.ops.filters import neighbour_differences

__all__ = ["difference_loss"]


def difference_loss(fused: torch.Tensor, *sources: torch.Tensor) -> torch.Tensor:
    """``½ Σ_d mean |‖Δ_d F‖ − max_s ‖Δ_d S‖|`` over the horizontal and vertical neighbour
    differences ``Δ_d`` (:func:`ivif.ops.neighbour_differences`): the max-gradient loss at the
    finest scale, where Sobel-based gradient losses are blind. Sources broadcast against ``F``
    (e.g. a one-channel infrared image against an RGB fused image)."""
    if not sources:
        raise ValueError("difference_loss needs at least one source image")
    source_differences = [neighbour_differences(s) for s in sources]
    terms = []
    for direction, fused_difference in enumerate(neighbour_differences(fused)):
        target = functools.reduce(
            torch.maximum, (differences[direction].abs() for differences in source_differences)
        )
        terms.append((fused_difference.abs() - target).abs().mean())
    return (terms[0] + terms[1]) / 2
