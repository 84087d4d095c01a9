"""Linear filters on ``(B, C, H, W)`` tensors: Gaussian kernels, separable filtering, Sobel,
neighbour differences.

Every filter here is a *correlation* (the kernel is not flipped), applied to each channel
independently. ``border`` selects how the image is extended: ``"reflect"`` (mirror without
repeating the edge pixel, as torch), ``"replicate"`` (MATLAB ``imfilter(...,'replicate')``),
``"zeros"`` (MATLAB ``conv2/filter2(...,'same')``) or ``"valid"`` (no extension, the output
shrinks by ``k - 1``).
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = [
    "Border",
    "check_image",
    "correlate1d",
    "filter2d",
    "filter_separable",
    "filter_separable_matmul",
    "gaussian_kernel1d",
    "neighbour_differences",
    "pad",
    "separable_input",
    "sobel",
]

Border = Literal["reflect", "replicate", "zeros", "valid"]


def check_image(x: torch.Tensor, name: str = "input") -> None:
    """Raise a clear error unless ``x`` is a floating ``(B, C, H, W)`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")


def gaussian_kernel1d(
    size: int,
    sigma: float,
    *,
    dtype: torch.dtype = torch.float32,
    device=None,
    matlab_eps: bool = False,
    torchvision: bool = False,
) -> torch.Tensor:
    """Sampled Gaussian ``exp(-x²/2σ²)`` at integer offsets ``-(size-1)/2 … (size-1)/2``,
    normalised to sum 1 (torchvision's ``gaussian_blur`` and MATLAB's separable ``fspecial``).

    The samples are computed in float64 and rounded to ``dtype``. ``torchvision=True`` computes
    them in float32 arithmetic instead, as torchvision's ``gaussian_blur`` does; they then differ
    from the rounded exact samples in the last bit, which decides some float32 results (CPFusion).

    ``matlab_eps=True`` applies MATLAB ``fspecial('gaussian')``'s truncation: samples below
    ``eps · max`` are set to 0 before normalising. The outer product of two such kernels equals
    the 2-D ``fspecial('gaussian', size, sigma)`` whenever its corner ``exp(-half²/σ²)`` is not
    below ``eps``, which holds for every window the metrics use (checked where they are built).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if torchvision and matlab_eps:
        raise ValueError("matlab_eps and torchvision are exclusive")
    half = (size - 1) / 2
    if torchvision:
        x = torch.linspace(-half, half, size, dtype=torch.float32)
        k = torch.exp(-0.5 * (x / sigma).pow(2))
        return (k / k.sum()).to(dtype=dtype, device=device)
    x = torch.linspace(-half, half, size, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2.0 * sigma**2))
    if matlab_eps:
        k = torch.where(k < torch.finfo(torch.float64).eps * k.max(), 0.0, k)
    return (k / k.sum()).to(dtype=dtype, device=device)


def pad(x: torch.Tensor, padding: tuple[int, int, int, int], border: Border) -> torch.Tensor:
    """Pad ``(left, right, top, bottom)`` with the named border rule."""
    if border == "valid" or not any(padding):
        return x
    if border == "zeros":
        return F.pad(x, padding)
    if border in ("reflect", "replicate"):
        return F.pad(x, padding, mode=border)
    raise ValueError(f"unknown border {border!r}; choose reflect, replicate, zeros or valid")


def filter2d(x: torch.Tensor, kernel: torch.Tensor, border: Border = "reflect") -> torch.Tensor:
    """Correlate every channel of ``x`` with the 2-D ``kernel`` (odd ``kh × kw``)."""
    check_image(x)
    kh, kw = kernel.shape
    c = x.shape[1]
    xp = pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), border)
    weight = kernel.to(x).expand(c, 1, kh, kw)
    return F.conv2d(xp, weight, groups=c)


def separable_input(
    x: torch.Tensor, ky: int, kx: int, border: Border, stride: int, check_fit: bool = False
) -> torch.Tensor:
    """The checked ``(B, C, H, W)`` input of a separable correlation with a ``ky × kx`` kernel,
    extended by ``border`` (shared by the direct, banded and FFT implementations)."""
    check_image(x)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    xp = pad(x, (kx // 2, kx // 2, ky // 2, ky // 2), border)
    if check_fit and (xp.shape[-2] < ky or xp.shape[-1] < kx):
        raise ValueError(f"a {ky}×{kx} kernel does not fit a {xp.shape[-2]}×{xp.shape[-1]} image")
    return xp


def filter_separable(
    x: torch.Tensor,
    kernel_y: torch.Tensor,
    kernel_x: torch.Tensor | None = None,
    border: Border = "reflect",
    *,
    stride: int = 1,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Correlate every channel with the outer product ``kernel_y ⊗ kernel_x`` as two 1-D passes.

    ``kernel_x`` defaults to ``kernel_y``. Equivalent to :func:`filter2d` with the outer product,
    at ``kh + kw`` instead of ``kh · kw`` multiplications per pixel. ``stride = s`` returns only
    rows and columns ``0, s, 2s, …`` of the result (``filter_separable(x, k)[..., ::s, ::s]``)
    and computes nothing else. ``out`` (fixed kernels only) receives the result.
    """
    kernel_x = kernel_y if kernel_x is None else kernel_x
    ky, kx = kernel_y.numel(), kernel_x.numel()
    xp = separable_input(x, ky, kx, border, stride)
    if kernel_y.requires_grad or kernel_x.requires_grad:  # learnable kernels: stay differentiable
        if out is not None:
            raise ValueError("out is not supported with learnable kernels")
        c = x.shape[1]
        weight_y = kernel_y.to(x).view(1, 1, ky, 1).expand(c, 1, ky, 1)
        out = F.conv2d(xp, weight_y, stride=(stride, 1), groups=c)
        weight_x = kernel_x.to(x).view(1, 1, 1, kx).expand(c, 1, 1, kx)
        return F.conv2d(out, weight_x, stride=(1, stride), groups=c)
    rows = correlate1d(xp, kernel_y.to(x), dim=-2, stride=stride)
    return correlate1d(rows, kernel_x.to(x), dim=-1, stride=stride, out=out)


def correlate1d(
    x: torch.Tensor,
    kernel: torch.Tensor,
    dim: int,
    stride: int = 1,
    *,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Valid 1-D correlation along ``dim`` (-1 or -2): ``y[i] = Σ_t kernel[t]·x[s·i + t]``.

    One multiply-add over the whole tensor per non-zero tap, which on CPUs is several times
    faster than a depthwise convolution. Float64 data with kernels of :data:`MATMUL_MIN_TAPS`
    taps or more go through banded matrix products instead (:func:`_banded_passes`) when at
    least :data:`MATMUL_MIN_ACROSS` samples lie across ``dim`` (narrower strips make products
    too small to pay: Qcb's edge corrections, 31 taps, 7.5 instead of 9.7 ms on six 640×480
    planes). ``out`` (any layout, e.g. a strided view) receives the result.
    """
    if dim not in (-1, -2):
        raise ValueError(f"dim must be -1 or -2, got {dim}")
    taps = _taps(kernel)
    length = (x.shape[dim] - len(taps)) // stride + 1
    if length < 1:
        raise ValueError(f"a {len(taps)}-tap kernel does not fit {x.shape[dim]} samples")
    across = x.shape[-1] if dim == -2 else x.shape[-2]
    if (
        len(taps) >= MATMUL_MIN_TAPS
        and across >= MATMUL_MIN_ACROSS
        and x.dtype == torch.float64
        and not x.requires_grad
    ):
        if out is None:
            shape = list(x.shape)
            shape[dim] = length
            out = torch.empty(shape, dtype=x.dtype, device=x.device)
        along = (lambda t: t) if dim == -2 else (lambda t: t.transpose(-1, -2))
        _banded_passes(along(x), taps, stride, along(out))
        return out

    def window(t: int) -> torch.Tensor:
        span = slice(t, t + (length - 1) * stride + 1, stride)
        return x[..., span] if dim == -1 else x[..., span, :]

    used = [(t, weight) for t, weight in enumerate(taps) if weight != 0.0] or [(0, 0.0)]
    (first, weight), rest = used[0], used[1:]
    out = window(first) * weight if out is None else torch.mul(window(first), weight, out=out)
    for t, weight in rest:
        out.add_(window(t), alpha=weight)
    return out


#: From this many taps on, float64 correlations go through banded matrix products
#: (:func:`correlate1d`; :func:`filter_separable_matmul` is the choice of the metrics' wide
#: windows). On 640×480 float64 planes (2 threads) the products take half the time of direct
#: filtering or the FFT at 17 taps (VIF), but a quarter more than direct filtering at 11 (SSIM's
#: 24 planes).
MATMUL_MIN_TAPS = 15
#: ... and when at least this many samples lie across the filtered axis (each product's width).
MATMUL_MIN_ACROSS = 64
#: Output rows (or columns) per banded matrix product in :func:`filter_separable_matmul`: each
#: output costs a band row of ``(block − 1)·stride + k`` multiply-adds, zeros included, so smaller
#: blocks waste fewer multiplications but make smaller, slower products; 32 was fastest for 9–17
#: taps on 640×480 float64 planes.
MATMUL_BLOCK = 32


@functools.lru_cache(maxsize=32)
def _band(
    taps: tuple[float, ...], stride: int, dtype: torch.dtype, rows: int = MATMUL_BLOCK
) -> torch.Tensor:
    """``(rows, span)`` matrix whose row ``i`` holds ``taps`` from column ``stride·i``:
    multiplying ``span`` samples by it correlates them ('valid', strided) for ``rows`` outputs."""
    span = (rows - 1) * stride + len(taps)
    band = torch.zeros(rows, span, dtype=dtype)
    kernel = torch.tensor(taps, dtype=dtype)
    for i in range(rows):
        band[i, i * stride : i * stride + len(taps)] = kernel
    return band


def _banded_passes(
    x: torch.Tensor, taps: tuple[float, ...], stride: int, out: torch.Tensor
) -> None:
    """Correlate ``x (..., L, n)`` along ``L`` into ``out (..., L', n)``, block by block: each
    block of outputs is one product of a band (:func:`_band`) with the inputs it reads."""
    band = _band(taps, stride, x.dtype)
    length = out.shape[-2]
    for start in range(0, length, MATMUL_BLOCK):
        rows = min(MATMUL_BLOCK, length - start)
        span = (rows - 1) * stride + len(taps)
        inputs = x[..., start * stride : start * stride + span, :]
        torch.matmul(band[:rows, :span], inputs, out=out[..., start : start + rows, :])


def filter_separable_matmul(
    x: torch.Tensor,
    kernel_y: torch.Tensor,
    kernel_x: torch.Tensor | None = None,
    border: Border = "valid",
    *,
    stride: int = 1,
) -> torch.Tensor:
    """:func:`filter_separable` of ``(B, C, H, W)`` data (fixed kernels) as banded matrix
    products: each 1-D pass multiplies blocks of :data:`MATMUL_BLOCK` outputs by the band of
    kernel taps that produces them. That costs ``(MATMUL_BLOCK + k − 1)/k`` times the
    multiply-adds of direct filtering (2.8× at 17 taps) but runs at matrix-product speed: on
    640×480 float64 planes half the time of direct filtering or the FFT at 17 taps (a quarter
    more than direct filtering at 11).

    Both passes read their input transposed (the filtered axis must be the matrix's inner
    one), so the result comes back as a view whose memory is ordered ``(H', B, C, W')``: every
    row is contiguous, the rows of all planes interleaved.
    """
    kernel_x = kernel_y if kernel_x is None else kernel_x
    ky, kx = kernel_y.numel(), kernel_x.numel()
    xp = separable_input(x, ky, kx, border, stride, check_fit=True)
    b, c, h, w = xp.shape
    out_h, out_w = (h - ky) // stride + 1, (w - kx) // stride + 1
    planes = xp.reshape(b * c, h, w)
    # along W: (N, W', H), each plane's filtered columns as rows
    columns = torch.empty((b * c, out_w, h), dtype=x.dtype)
    _banded_passes(planes.transpose(-1, -2), _taps(kernel_x), stride, columns)
    # along H: (H', N·W') from those (N·W', H) rows read transposed
    out = torch.empty((out_h, b * c * out_w), dtype=x.dtype)
    _banded_passes(columns.view(-1, h).t(), _taps(kernel_y), stride, out)
    return out.view(out_h, b, c, out_w).permute(1, 2, 0, 3)


def _taps(kernel: torch.Tensor) -> tuple[float, ...]:
    return tuple(kernel.detach().flatten().tolist())


def neighbour_differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal ``x[i, j+1] − x[i, j]`` (``H×(W−1)``) and vertical ``x[i+1, j] − x[i, j]``
    (``(H−1)×W``) differences over the last two dimensions: the finest scale, which SF measures
    and Sobel's smoothed central differences do not see (they vanish on a checkerboard)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def sobel(x: torch.Tensor, border: Border = "replicate") -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives ``(gx, gy)`` by correlation.

    ``gx`` responds to change along columns (``[[-1,0,1],[-2,0,2],[-1,0,1]]``) and ``gy`` along
    rows (its transpose). MATLAB's ``fspecial('sobel')`` is ``-gy``'s kernel; metrics that use
    only magnitudes or ``atan(gy/gx)`` are unaffected by that sign.
    """
    smooth = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    diff = torch.tensor([-1.0, 0.0, 1.0], dtype=x.dtype, device=x.device)
    gx = filter_separable(x, smooth, diff, border)
    gy = filter_separable(x, diff, smooth, border)
    return gx, gy
