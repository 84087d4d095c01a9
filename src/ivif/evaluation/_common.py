"""Small helpers shared by the metric families (not public API)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, TypeVar

import torch

from ivif.ops import filter_separable, sobel
from ivif.ops.filters import MATMUL_MIN_TAPS, Border, filter_separable_matmul
from ivif.ops.histogram import map_levels
from ivif.ops.matlab import round_half_away

if TYPE_CHECKING:
    from ivif.evaluation.inputs import MetricInputs

T = TypeVar("T")

__all__ = [
    "correlate",
    "gradient_components",
    "integer_gradients",
    "row_blocks",
    "safe_ratio",
    "split_cached",
    "stretch_levels",
    "stretch_table",
]


#: Direct filtering works on groups of planes of about this many samples: a full-size plane
#: alone (its working set stays in cache), small planes (coarse scales) many at a time, so that
#: each tap is one operation over the group rather than one per plane.
DIRECT_GROUP_SAMPLES = 2**18
#: Chains of per-pixel operations over full-size planes run block by block: row bands of about
#: this many samples over all planes, so that their temporaries stay in cache (on 640×480
#: planes several times faster than whole-plane passes) while each operation still covers
#: enough samples for torch's intra-op threads.
BLOCK_SAMPLES = 2**17


def correlate(
    x: torch.Tensor,
    kernel_y: torch.Tensor,
    kernel_x: torch.Tensor | None = None,
    border: Border = "valid",
    stride: int = 1,
) -> torch.Tensor:
    """Separable correlation of ``(..., H, W)`` float64 tensors of any leading shape.

    :func:`ivif.ops.filter_separable` for short kernels,
    :func:`ivif.ops.filters.filter_separable_matmul` for kernels of :data:`MATMUL_MIN_TAPS` taps
    or more (its result's rows are interleaved in memory); the two agree to ~1e-16 of the data.
    """
    h, w = x.shape[-2:]
    taps = max(kernel_y.numel(), kernel_x.numel() if kernel_x is not None else 0)
    flat = x.reshape(-1, 1, h, w)
    if taps >= MATMUL_MIN_TAPS and x.dtype == torch.float64:
        out = filter_separable_matmul(flat, kernel_y, kernel_x, border, stride=stride)
    else:
        group = max(1, DIRECT_GROUP_SAMPLES // (h * w))
        first, *rest = flat.split(group)
        head = filter_separable(first, kernel_y, kernel_x, border, stride=stride)
        out = torch.empty((flat.shape[0], *head.shape[1:]), dtype=head.dtype)
        out[: first.shape[0]] = head
        for start, planes in zip(range(group, flat.shape[0], group), rest, strict=True):
            target = out[start : start + planes.shape[0]]
            filter_separable(planes, kernel_y, kernel_x, border, stride=stride, out=target)
    return out.reshape(*x.shape[:-2], *out.shape[-2:])


def row_blocks(shape: torch.Size, samples: int = BLOCK_SAMPLES) -> list[slice]:
    """Row bands of ``(..., H, W)`` data holding about ``samples`` samples each (at least one
    row), covering all ``H`` rows in order."""
    h, w = shape[-2:]
    rows = max(1, samples // max(1, math.prod(shape[:-2]) * w))
    return [slice(start, min(start + rows, h)) for start in range(0, h, rows)]


def gradient_components(x: torch.Tensor, border: Border) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel ``(gx, gy)`` of ``(..., H, W)`` data through the shared :func:`ivif.ops.sobel`.

    ``gx`` correlates with ``[[-1,0,1],[-2,0,2],[-1,0,1]]`` and ``gy`` with its transpose.
    """
    h, w = x.shape[-2:]
    gx, gy = sobel(x.reshape(-1, 1, h, w), border)
    return gx.reshape(x.shape), gy.reshape(x.shape)


def integer_gradients(x: torch.Tensor, border: Border) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`gradient_components` of planes holding 8-bit levels (uint8, or whole numbers
    0–255 of any dtype), formed in float32.

    Every component is an integer of magnitude at most 4·255 and ``gx² + gy²`` stays below 2^24,
    so float32 holds them exactly: the same values as float64, at half the memory traffic.
    """
    return gradient_components(x.to(torch.float32), border)


def safe_ratio(num: torch.Tensor, den: torch.Tensor, undefined: float) -> torch.Tensor:
    """``num / den``, with ``undefined`` where ``den == 0``."""
    ok = den != 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), undefined)


def stretch_table(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The min–max stretch of each level ``0 … 255`` for planes whose levels span
    ``[low, high]`` (``(...)`` tensors): ``round(255 · (level − low) / (high − low))`` as float64
    ``(..., 256)``, rounded half away from zero, 0 everywhere for a constant plane."""
    low = low.to(torch.float64).unsqueeze(-1)
    span = high.to(torch.float64).unsqueeze(-1) - low
    levels = torch.arange(256, dtype=torch.float64)
    varying = span > 0
    return round_half_away((levels - low) / torch.where(varying, span, 1.0) * 255.0) * varying


def stretch_levels(x: torch.Tensor) -> torch.Tensor:
    """Per-plane min–max stretch of uint8 ``(..., H, W)`` planes to 0–255 (:func:`stretch_table`).

    This is both VIFB's ``normalize1`` (Qcb, Qcv) and its MI requantisation (``int16`` of the
    stretched image). Evaluated on the 256 possible levels and looked up per pixel.
    """
    table = stretch_table(x.amin(dim=(-2, -1)), x.amax(dim=(-2, -1)))
    return map_levels(x, table)


def split_cached(
    inputs: MetricInputs,
    key: str,
    per_plane: Callable[[torch.Tensor], T],
    source: Literal["u8", "f64"],
    *,
    distinct: bool = False,
) -> tuple[T, T]:
    """A per-plane transform of the sources (cached per source pair) and of the fused image.

    ``source`` selects the data (:meth:`MetricInputs.data`). Returns ``(per_plane(A, B),
    per_plane(F))``; with ``distinct`` the sources are the distinct planes ``(P, H, W)``
    (:meth:`MetricInputs.distinct_sources`, each once), which :meth:`MetricInputs.source_rows`
    broadcasts over F's channels, instead of ``(2, C, H, W)``.
    """
    data = inputs.data(source)
    sources = inputs.source_cached(
        key, lambda: per_plane(inputs.distinct_sources(source) if distinct else data[:2])
    )
    fused = inputs.cached(key, lambda: per_plane(data[2]))
    return sources, fused
