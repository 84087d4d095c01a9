"""Gaussian and Laplacian pyramids on ``(B, C, H, W)`` tensors, for any image size.

The construction follows Burt & Adelson (1983), "The Laplacian Pyramid as a Compact Image Code":

* REDUCE: blur, then keep every other row and column (sizes go to ``ceil(n / 2)``; no padding to
  powers of two);
* EXPAND: insert zeros between samples, blur, multiply by 4, crop to the finer level's size;
* ``D_i = G_i - EXPAND(G_{i+1})`` and synthesis ``G_i = D_i + EXPAND(G_{i+1})``, which
  reconstructs the input exactly whatever the kernels are.

``accumulate`` (e.g. ``torch.float64``) filters in that precision and rounds every blurred level
back to the input's dtype: float32 levels that are the correctly rounded blurs, independent of the
summation order (what a bit-exact comparison with another float32 implementation needs).

The kernels are parameters so that methods can use their own: the classic generating kernel
:func:`burt_adelson_kernel` for the ``laplacian`` baseline, and per-level Gaussians for CPFusion.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ivif.ops.filters import Border, check_image, correlate1d, filter_separable, pad

__all__ = [
    "burt_adelson_kernel",
    "expand",
    "gaussian_pyramid",
    "laplacian_pyramid",
    "laplacian_synthesis",
    "max_levels",
    "reduce",
]

Kernels = torch.Tensor | Sequence[torch.Tensor]


def burt_adelson_kernel(a: float = 0.4, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Burt–Adelson 5-tap generating kernel ``[1/4 - a/2, 1/4, a, 1/4, 1/4 - a/2]``.

    It is normalised and satisfies the equal-contribution rule (even and odd taps each sum to
    1/2), so EXPAND of a constant is constant. ``a = 0.4`` is close to a Gaussian.
    """
    edge = 0.25 - a / 2
    return torch.tensor([edge, 0.25, a, 0.25, edge], dtype=dtype)


def max_levels(height: int, width: int, kernel_size: int = 5) -> int:
    """Largest number of REDUCE steps for which every padded blur stays valid.

    Reflect padding by ``kernel_size // 2`` needs every blurred level to be larger than the pad.
    """
    levels, n = 0, min(height, width)
    while n > kernel_size // 2 and n > 1:
        n = (n + 1) // 2
        levels += 1
    return levels


def reduce(
    x: torch.Tensor,
    kernel: torch.Tensor,
    border: Border = "reflect",
    accumulate: torch.dtype | None = None,
) -> torch.Tensor:
    """Blur with the separable ``kernel`` then decimate by 2 (rows and columns ``0, 2, 4, …``).

    Only the kept samples are computed (strided filtering). ``accumulate``: see the module notes.
    """
    if accumulate is None:
        return filter_separable(x, kernel, kernel, border, stride=2)
    half = kernel.numel() // 2
    padded = pad(x, (half, half, half, half), border).to(accumulate)  # pad before widening
    return filter_separable(padded, kernel, kernel, "valid", stride=2).to(x.dtype)


def expand(
    x: torch.Tensor,
    size: tuple[int, int],
    kernel: torch.Tensor,
    border: Border = "reflect",
    accumulate: torch.dtype | None = None,
) -> torch.Tensor:
    """Upsample ``x`` by 2 onto a grid of ``size = (H, W)``: zero insertion, blur, ×4, crop.

    ``size`` must satisfy ``ceil(H / 2) == x.shape[-2]`` and likewise for W (the finer level).
    ``accumulate``: see the module notes.
    """
    check_image(x)
    b, c, h, w = x.shape
    if (size[0] + 1) // 2 != h or (size[1] + 1) // 2 != w:
        raise ValueError(f"cannot expand {h}×{w} onto {size[0]}×{size[1]}")
    work = x if accumulate is None else x.to(accumulate)
    reach = (kernel.numel() // 2 + 1) // 2
    if border in ("reflect", "zeros") and min(h, w) > reach and not kernel.requires_grad:
        rows = _expand_axis(work, size[0], kernel.to(work), border, dim=-2)
        return _expand_axis(rows, size[1], kernel.to(work), border, dim=-1).to(x.dtype)
    up = work.new_zeros(b, c, 2 * h, 2 * w)
    up[..., ::2, ::2] = work
    up = filter_separable(up, kernel, kernel, border) * 4.0
    return up[..., : size[0], : size[1]].to(x.dtype)


def _expand_axis(
    x: torch.Tensor, length: int, kernel: torch.Tensor, border: Border, dim: int
) -> torch.Tensor:
    """One 1-D pass of :func:`expand` along ``dim``, done polyphase.

    Blurring the zero-inserted signal ``z`` (``z[2i] = x[i]``, odd samples 0) with taps
    ``k[-r..r]`` gives ``out[2i] = Σ_s k[2s]·x[i+s]`` and ``out[2i+1] = Σ_s k[2s-1]·x[i+s]``, so the
    zeros are never multiplied. Mirroring ``z`` about its first sample mirrors ``x`` about its
    first sample; mirroring about ``z``'s last (zero) sample repeats ``x``'s last sample
    (``x[h-1+j] = x[h-j]``). The factor 2 per pass makes the ×4 of EXPAND.
    """
    n = x.shape[dim]
    taps = kernel.numel() // 2
    reach = (taps + 1) // 2

    values = kernel.tolist()  # the caller guarantees no gradient is needed

    def phase(first: int) -> torch.Tensor:
        wanted = [2 * o - first for o in range(-reach, reach + 1)]
        doubled = [2 * values[t + taps] if abs(t) <= taps else 0.0 for t in wanted]
        return torch.tensor(doubled, dtype=kernel.dtype)

    def edge(start: int, stop: int) -> torch.Tensor:
        return (x[..., start:stop] if dim == -1 else x[..., start:stop, :]).flip(dim)

    if border == "zeros":
        padded = F.pad(x, (reach, reach) if dim == -1 else (0, 0, reach, reach))
    else:
        padded = torch.cat([edge(1, reach + 1), x, edge(n - reach, n)], dim=dim)
    shape = list(x.shape)
    shape[dim] = 2 * n
    out = x.new_empty(shape)
    for first in (0, 1):
        target = out[..., first::2] if dim == -1 else out[..., first::2, :]
        correlate1d(padded, phase(first), dim, out=target)
    return out[..., :length] if dim == -1 else out[..., :length, :]


def _per_level(kernels: Kernels, levels: int) -> list[torch.Tensor]:
    if isinstance(kernels, torch.Tensor):
        return [kernels] * levels
    kernels = list(kernels)
    if len(kernels) != levels:
        raise ValueError(f"need {levels} down-sampling kernels, got {len(kernels)}")
    return kernels


def gaussian_pyramid(
    x: torch.Tensor,
    levels: int,
    kernels: Kernels,
    border: Border = "reflect",
    accumulate: torch.dtype | None = None,
) -> list[torch.Tensor]:
    """``[G_0 = x, G_1, …, G_levels]`` with ``G_i = REDUCE(G_{i-1})``.

    ``kernels`` is one 1-D kernel for every level or a sequence of ``levels`` kernels (the kernel
    of step ``i`` is ``kernels[i - 1]``).
    """
    check_image(x)
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    per_level = _per_level(kernels, levels)
    biggest = max((k.numel() for k in per_level), default=1)
    limit = max_levels(x.shape[-2], x.shape[-1], biggest)
    if levels > limit:
        raise ValueError(
            f"{levels} pyramid levels do not fit a {x.shape[-2]}×{x.shape[-1]} image "
            f"(at most {limit} with a {biggest}-tap kernel)"
        )
    pyramid = [x]
    for kernel in per_level:
        pyramid.append(reduce(pyramid[-1], kernel, border, accumulate))
    return pyramid


def laplacian_pyramid(
    x: torch.Tensor,
    levels: int,
    down_kernels: Kernels,
    up_kernel: torch.Tensor,
    border: Border = "reflect",
    accumulate: torch.dtype | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Gaussian levels ``G_0..G_L`` and detail levels ``D_0..D_{L-1}``,
    ``D_i = G_i - EXPAND(G_{i+1})``."""
    gaussians = gaussian_pyramid(x, levels, down_kernels, border, accumulate)
    details = [
        g - expand(coarser, tuple(g.shape[-2:]), up_kernel, border, accumulate)
        for g, coarser in itertools.pairwise(gaussians)
    ]
    return gaussians, details


def laplacian_synthesis(
    top: torch.Tensor,
    details: Sequence[torch.Tensor],
    up_kernel: torch.Tensor,
    border: Border = "reflect",
    accumulate: torch.dtype | None = None,
) -> torch.Tensor:
    """Collapse a Laplacian pyramid: ``R = top``; ``R = D_i + EXPAND(R)`` from coarse to fine."""
    result = top
    for detail in reversed(details):
        result = detail + expand(result, tuple(detail.shape[-2:]), up_kernel, border, accumulate)
    return result
