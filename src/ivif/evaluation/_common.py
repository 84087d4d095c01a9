"""Small helpers shared by the metric families (not public API)."""

from __future__ import annotations

import torch

from ivif.ops import filter_separable, sobel
from ivif.ops.filters import Border
from ivif.ops.spectral import filter_separable_fft

__all__ = [
    "correlate",
    "gradient_components",
    "safe_ratio",
]


#: From this many taps on, float64 correlations go through the FFT (faster, same result to
#: ~1e-16 of the data's magnitude); shorter kernels are applied directly.
FFT_MIN_TAPS = 9


def correlate(
    x: torch.Tensor,
    kernel_y: torch.Tensor,
    kernel_x: torch.Tensor | None = None,
    border: Border = "valid",
    stride: int = 1,
) -> torch.Tensor:
    """Separable correlation of ``(..., H, W)`` float64 tensors of any leading shape.

    :func:`ivif.ops.filter_separable` for short kernels, :func:`ivif.ops.filter_separable_fft`
    for kernels of :data:`FFT_MIN_TAPS` taps or more.
    """
    h, w = x.shape[-2:]
    taps = max(kernel_y.numel(), kernel_x.numel() if kernel_x is not None else 0)
    flat = x.reshape(-1, 1, h, w)
    if taps >= FFT_MIN_TAPS and x.dtype == torch.float64:
        out = filter_separable_fft(flat, kernel_y, kernel_x, border, stride=stride)
    else:
        out = filter_separable(flat, kernel_y, kernel_x, border, stride=stride)
    return out.reshape(*x.shape[:-2], *out.shape[-2:])


def gradient_components(x: torch.Tensor, border: Border) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel ``(gx, gy)`` of ``(..., H, W)`` data through the shared :func:`ivif.ops.sobel`.

    ``gx`` correlates with ``[[-1,0,1],[-2,0,2],[-1,0,1]]`` and ``gy`` with its transpose.
    """
    h, w = x.shape[-2:]
    gx, gy = sobel(x.reshape(-1, 1, h, w), border)
    return gx.reshape(x.shape), gy.reshape(x.shape)


def safe_ratio(num: torch.Tensor, den: torch.Tensor, undefined: float) -> torch.Tensor:
    """``num / den``, with ``undefined`` where ``den == 0``."""
    ok = den != 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), undefined)
