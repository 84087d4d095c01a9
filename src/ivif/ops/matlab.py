"""MATLAB behaviours that decide the last digit of the reference metrics (``spec/metrics.md`` §1).

Each function reproduces one documented MATLAB semantic on ``(..., H, W)`` float64 tensors:

* :func:`round_half_away` — MATLAB ``round``/``int16``/``uint8`` rounding (half away from zero);
* :func:`saturate_u8` — the value a mixed uint8–double operation stores (rounded, clipped);
* :func:`freqspace_radius` — ``freqspace([M N], 'meshgrid')`` frequencies, scaled, as a radius;
* :func:`filter_frequency` — ``real(ifft2(ifftshift(H .* fftshift(fft2(X)))))`` for a real,
  even response ``H`` (:func:`fft_order` is that ``ifftshift``, checked);
* :func:`block_sum` — ``blkproc(X, [b b], @(x) sum(x(:)))`` with zero-padded partial blocks;
* :func:`conv2_same_ordered` — ``conv2(X, h, 'same')`` accumulating the kernel taps in
  MATLAB's order, which is bit-exact on non-integer data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ivif.ops.spectral import complex_filter

__all__ = [
    "block_sum",
    "conv2_same_ordered",
    "fft_order",
    "filter_frequency",
    "freqspace_radius",
    "round_half_away",
    "saturate_u8",
]


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, ties away from zero (MATLAB; numpy/torch round to even)."""
    return torch.floor(x.abs().add_(0.5)).copysign_(x)


def saturate_u8(x: torch.Tensor) -> torch.Tensor:
    """The uint8 value MATLAB stores for a double result: rounded half away, clipped to 0–255."""
    return round_half_away(x).clamp_(0.0, 255.0)


def _freqspace_axis(n: int, scale: float, like: torch.Tensor) -> torch.Tensor:
    """``freqspace`` samples ``(k - floor(n/2)) * 2/n`` for ``k = 0 … n-1``, times ``scale``."""
    k = torch.arange(n, dtype=torch.float64, device=like.device)
    return (k - n // 2) * (2.0 / n) * scale


def freqspace_radius(
    height: int, width: int, scale_x: float, scale_y: float, like: torch.Tensor
) -> torch.Tensor:
    """Radius ``sqrt(u² + v²)`` of the centred frequency grid, ``(height, width)`` float64.

    ``u`` varies along columns (``width`` samples, multiplied by ``scale_x``) and ``v`` along rows
    (``height`` samples, multiplied by ``scale_y``), as ``[u, v] = freqspace([M N], 'meshgrid')``
    (``spec/metrics.md`` §1.10). The grid is centred: the zero frequency sits at
    ``(height // 2, width // 2)``, matching ``fftshift``.
    """
    u = _freqspace_axis(width, scale_x, like)
    v = _freqspace_axis(height, scale_y, like)
    return torch.sqrt(u.unsqueeze(0) ** 2 + v.unsqueeze(1) ** 2)


def fft_order(response: torch.Tensor) -> torch.Tensor:
    """A centred, real and even frequency ``response`` (a radial CSF on the ``freqspace`` grid)
    in ``fft2`` order (``ifftshift``), checked to be symmetric under frequency negation: such a
    response keeps a real image real, so pairs of planes can share one complex transform."""
    shifted = torch.fft.ifftshift(response, dim=(-2, -1))
    mirrored = torch.roll(shifted.flip(-2, -1), shifts=(1, 1), dims=(-2, -1))
    if not torch.equal(shifted, mirrored):
        raise ValueError("filter_frequency needs a response symmetric under frequency negation")
    return shifted


def filter_frequency(x: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """Filter the last two dimensions of ``x`` by a centred, real and even frequency ``response``.

    Computes MATLAB's ``real(ifft2(ifftshift(response .* fftshift(fft2(x)))))`` (see
    :func:`fft_order`; the planes go through :func:`ivif.ops.spectral.complex_filter`); a
    response without that symmetry is rejected.
    """
    height, width = x.shape[-2:]
    if response.shape != (height, width):
        raise ValueError(f"response {tuple(response.shape)} does not match data {height}×{width}")
    (filtered,) = complex_filter(x.reshape(-1, height, width), [fft_order(response)])
    return filtered.reshape(x.shape)


def block_sum(x: torch.Tensor, block: int) -> torch.Tensor:
    """Sum over ``block × block`` tiles from the top-left, partial tiles zero-padded.

    ``(..., H, W) -> (..., ceil(H/block), ceil(W/block))``: MATLAB ``blkproc`` with a summing
    function (``spec/metrics.md`` §1.11). Divide by ``block²`` for blkproc's padded mean.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % block, -w % block
    lead = x.shape[:-2]
    if pad_h or pad_w:
        x = F.pad(x.reshape(-1, 1, h, w), (0, pad_w, 0, pad_h))
    tiles = x.reshape(-1, (h + pad_h) // block, block, (w + pad_w) // block, block)
    return tiles.sum(dim=(2, 4)).reshape(*lead, (h + pad_h) // block, (w + pad_w) // block)


def conv2_same_ordered(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """MATLAB ``conv2(x, kernel, 'same')``: true convolution, zero padding, MATLAB's order.

    For each output pixel the terms ``kernel(p, q) · x(...)`` are accumulated one after the other
    in column-major order of the unflipped kernel (``h(1,1), h(2,1), h(3,1), h(1,2), …``), each
    product rounded before it is added. That reproduces MATLAB bit for bit on non-integer data
    (``spec/metrics.md`` §1.7); integer data are exact in any order. Zero taps are skipped: they
    add ``±0``, which never changes a sum. ``x`` is ``(..., H, W)``, ``kernel`` odd-sized 2-D.
    """
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel must have odd sides, got {kh}×{kw}")
    h, w = x.shape[-2:]
    ch, cw = kh // 2, kw // 2
    lead = x.shape[:-2]
    padded = F.pad(x.reshape(-1, 1, h, w), (cw, cw, ch, ch)).reshape(*lead, h + 2 * ch, w + 2 * cw)
    taps = [
        (p, q, tap)
        for q, column in enumerate(kernel.t().tolist())
        for p, tap in enumerate(column)
        if tap != 0
    ]
    out = torch.zeros_like(x)
    product = torch.empty_like(x)
    for p, q, tap in taps:
        # out(i, j) += h(p, q) · x(i - p + ch, j - q + cw): flipped offsets of a convolution.
        window = padded[..., 2 * ch - p : 2 * ch - p + h, 2 * cw - q : 2 * cw - q + w]
        if tap == 1:
            out.add_(window)
        elif tap == -1:
            out.sub_(window)
        else:  # round the product before adding it (no fused multiply-add)
            out.add_(torch.mul(window, tap, out=product))
    return out
