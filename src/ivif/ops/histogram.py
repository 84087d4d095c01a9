"""Histograms and entropies of 8-bit images, batched over leading dimensions.

Integer images are ``(..., H, W)`` tensors whose values are integers in ``[0, bins)`` (any integer
or floating dtype holding whole numbers). Histograms are counts; :func:`entropy` turns counts or
probabilities into Shannon entropies. These are the building blocks of EN, MI, CE and the
histogram-based fusion metrics (``spec/metrics.md`` §1.5, §2.2, §2.5, §3.2).
"""

from __future__ import annotations

import math

import torch

__all__ = ["entropy", "histogram", "joint_histogram", "map_levels"]


def _codes(x: torch.Tensor, bins: int, name: str, dtype: torch.dtype) -> torch.Tensor:
    """``(..., H, W)`` integer values as a new tensor of ``dtype``, checked to lie in range.

    uint8 data with ``bins ≥ 256`` are in range by construction and skip the checks.
    """
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (..., H, W), got {tuple(x.shape)}")
    if x.dtype == torch.uint8 and bins >= 256:
        return x.to(dtype)
    if x.is_floating_point() and not torch.equal(x, x.round()):
        raise ValueError(f"{name} must hold whole numbers to be histogrammed")
    codes = x.to(dtype, copy=True)  # the caller's tensor is never modified
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= bins):
        raise ValueError(f"{name} values must lie in [0, {bins - 1}]")
    return codes


def _counts(codes: torch.Tensor, cells: int) -> torch.Tensor:
    """Counts of codes ``0 … cells-1`` in each plane of ``(..., H, W)`` codes -> ``(..., cells)``
    float64, with one ``bincount`` over all planes (plane ``k``'s codes shifted by ``k·cells``)."""
    lead = codes.shape[:-2]
    flat = codes.reshape(-1, codes.shape[-2] * codes.shape[-1])
    n = flat.shape[0]
    offsets = torch.arange(n, dtype=flat.dtype).mul_(cells).unsqueeze(1)
    counts = torch.bincount(flat.add_(offsets).reshape(-1), minlength=n * cells)
    return counts.reshape(*lead, cells).to(torch.float64)


def _code_dtype(planes: int, cells: int) -> torch.dtype:
    """int32 codes (half the memory traffic of int64) whenever every shifted code fits."""
    return torch.int32 if planes * cells < 2**31 else torch.int64


def histogram(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Counts of each integer value ``0 … bins-1`` over the last two dimensions.

    ``(..., H, W) -> (..., bins)`` float64 counts (MATLAB ``imhist`` on uint8 for ``bins=256``).
    """
    return _counts(_codes(x, bins, "x", _code_dtype(math.prod(x.shape[:-2]), bins)), bins)


def joint_histogram(x: torch.Tensor, y: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Joint counts of co-located values: ``(..., H, W)`` × ``(..., H, W) -> (..., bins, bins)``.

    Entry ``[..., i, j]`` counts the pixels where ``x == i`` and ``y == j``. The leading
    dimensions of ``x`` and ``y`` broadcast against each other.
    """
    shape = torch.broadcast_shapes(x.shape, y.shape)
    planes = shape[:-2].numel()
    dtype = _code_dtype(planes, bins * bins)
    codes = torch.add(_codes(y, bins, "y", dtype), _codes(x, bins, "x", dtype), alpha=bins)
    return _counts(codes, bins * bins).reshape(*shape[:-2], bins, bins)


def entropy(counts: torch.Tensor, dims: int = 1, base: float = 2.0) -> torch.Tensor:
    """Shannon entropy ``-Σ p log p`` of the distribution(s) in the last ``dims`` dimensions.

    ``counts`` are non-negative counts or probabilities; each distribution is normalised by its
    own total first, and empty bins contribute nothing (``0 log 0 = 0``). ``base`` 2 gives bits,
    ``math.e`` nats. An all-zero distribution has entropy 0.
    """
    if dims < 1 or dims > counts.dim():
        raise ValueError(f"dims must be in [1, {counts.dim()}], got {dims}")
    flat = counts.reshape(*counts.shape[: counts.dim() - dims], -1).to(torch.float64)
    total = flat.sum(-1, keepdim=True)
    p = flat / torch.where(total > 0, total, torch.ones_like(total))
    # xlogy: 0·log 0 = 0 without masks over the bins (two thirds of the time on 2×3×65536 bins)
    return -torch.special.xlogy(p, p).sum(-1) / math.log(base)


def map_levels(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Apply a per-plane function of the 8-bit level through a lookup table.

    ``x`` is uint8 ``(..., H, W)`` and ``table`` ``(..., 256)`` (one row per plane, same leading
    shape): ``out[..., i, j] = table[..., x[..., i, j]]``. Any elementwise function of one plane's
    levels (a min–max stretch, a rounding) is computed on 256 values instead of every pixel, with
    bit-identical results.
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"map_levels needs uint8 levels, got {x.dtype}")
    if table.shape != (*x.shape[:-2], 256):
        raise ValueError(f"table must be {(*x.shape[:-2], 256)}, got {tuple(table.shape)}")
    planes = table.reshape(-1, 256)
    # int32 indices and index_select: 40 % faster than int64 and take (4 planes 640×480)
    offsets = torch.arange(planes.shape[0], dtype=torch.int32).mul_(256).view(-1, 1)
    index = x.reshape(planes.shape[0], -1).to(torch.int32).add_(offsets)
    return planes.reshape(-1).index_select(0, index.view(-1)).view(x.shape)
