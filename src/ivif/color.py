"""Colour conversions shared by methods and metrics.

All functions take torch tensors with channels at dim ``-3`` (``(..., 3, H, W)``), work in the
input's floating dtype, and never clamp unless they say so.

* :func:`luma` — the Y of :func:`rgb_to_ycbcr` alone, for RGB or gray input.
* :func:`rgb_to_ycbcr` / :func:`ycbcr_to_rgb` — ITU-R BT.601, either the *full-range* form on
  ``[0, 1]`` (Y in ``[0, 1]``, Cb/Cr centred on 0.5, as JPEG/JFIF) or the *studio* form on the
  0–255 scale (Y in ``[16, 235]``, Cb/Cr in ``[16, 240]``) that CPFusion uses
  (``spec/cpfusion.md`` §1).
* :func:`rgb_to_gray` — a weighted luma with named weight sets, including MATLAB's ``rgb2gray``.
* :func:`matlab_rgb2gray_u8` — MATLAB's ``rgb2gray`` on uint8 data, rounding half away from zero
  (``spec/metrics.md`` §1.1).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = [
    "LUMA_WEIGHTS",
    "luma",
    "matlab_rgb2gray_u8",
    "rgb_to_gray",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]

YCbCrRange = Literal["full", "studio"]

#: BT.601 luma/chroma rows for RGB in [0, 1] (full range, JFIF).
_BT601_FULL = (
    (0.299, 0.587, 0.114),
    (-0.168735892, -0.331264108, 0.5),
    (0.5, -0.418687589, -0.081312411),
)
_FULL_OFFSET = (0.0, 0.5, 0.5)

#: BT.601 studio-range rows: RGB in [0, 1] to Y'CbCr on the 0–255 scale (Rec. 601, §2.5.3).
_BT601_STUDIO = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)
_STUDIO_OFFSET = (16.0, 128.0, 128.0)

#: Named luma weight sets for :func:`rgb_to_gray`.
LUMA_WEIGHTS: dict[str, tuple[float, float, float]] = {
    # ITU-R BT.601 luma, also Pillow's convert("L") up to its fixed-point rounding.
    "bt601": (0.299, 0.587, 0.114),
    # MATLAB rgb2gray: first row of inv([1 .956 .621; 1 -.272 -.647; 1 -1.106 1.703]).
    "matlab": (0.298936021293775, 0.587043074451121, 0.114020904255103),
    # ITU-R BT.709 luma as scikit-image's rgb2gray uses it (CPFusion's IR loader).
    "bt709": (0.2125, 0.7154, 0.0721),
}


def _check_rgb(x: torch.Tensor, name: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (..., 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")


def _coefficients(range: str) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    if range == "full":
        return _BT601_FULL, _FULL_OFFSET
    if range == "studio":
        return _BT601_STUDIO, _STUDIO_OFFSET
    raise ValueError(f"range must be 'full' or 'studio', got {range!r}")


def _matrix(rows: tuple[tuple[float, ...], ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def _apply(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3×3 colour matrix to the channel axis (-3)."""
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _offset(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(3, 1, 1)


def rgb_to_ycbcr(rgb: torch.Tensor, range: YCbCrRange = "full") -> torch.Tensor:
    """BT.601 RGB (in ``[0, 1]``) to YCbCr.

    ``range="full"`` returns Y, Cb, Cr on ``[0, 1]`` (chroma centred on 0.5); ``range="studio"``
    returns them on the 0–255 scale with Y in ``[16, 235]`` (Rec. ITU-R BT.601 studio levels).
    """
    _check_rgb(rgb, "rgb")
    rows, offset = _coefficients(range)
    return _apply(_matrix(rows, rgb), rgb) + _offset(offset, rgb)


def luma(x: torch.Tensor, range: YCbCrRange = "full") -> torch.Tensor:
    """The Y channel of :func:`rgb_to_ycbcr`, ``(..., 1, H, W)``, of an RGB ``(..., 3, H, W)``
    or a gray ``(..., 1, H, W)`` image (taken as R = G = B).

    Evaluated term by term in the input's dtype, ``(m0·R + m1·G) + m2·B + offset`` with every
    product and sum rounded and no fused multiply-add: the rounding of the 3-term matrix product
    (equal to ``rgb_to_ycbcr(x)[..., :1, :, :]`` bit for bit on the CPUs tested), at a third of
    its cost; for gray input this differs from ``(m0 + m1 + m2)·v + offset`` in the last bit.
    """
    if x.dim() < 3 or x.shape[-3] not in (1, 3):
        raise ValueError(f"x must have shape (..., 1 or 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got {x.dtype}")
    rows, offset = _coefficients(range)
    r, g, b = x.expand(*x.shape[:-3], 3, *x.shape[-2:]).unbind(-3)
    y = r * rows[0][0]
    y += g * rows[0][1]
    y += b * rows[0][2]
    return y.add_(offset[0]).unsqueeze(-3)


def ycbcr_to_rgb(ycbcr: torch.Tensor, range: YCbCrRange = "full") -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`: BT.601 YCbCr to RGB on ``[0, 1]`` (not clamped).

    The inverse matrix is computed in float64 from the forward one, so a round trip is exact to
    the working precision.
    """
    _check_rgb(ycbcr, "ycbcr")
    rows, offset = _coefficients(range)
    inverse = torch.linalg.inv(torch.tensor(rows, dtype=torch.float64)).to(ycbcr)
    return _apply(inverse, ycbcr - _offset(offset, ycbcr))


def rgb_to_gray(rgb: torch.Tensor, weights: str = "bt601") -> torch.Tensor:
    """Weighted luma ``(..., 3, H, W) -> (..., 1, H, W)`` with a named weight set.

    ``weights`` is a key of :data:`LUMA_WEIGHTS`: ``"bt601"`` (default), ``"matlab"`` (MATLAB's
    ``rgb2gray`` on double data, unrounded) or ``"bt709"`` (scikit-image's ``rgb2gray``).
    """
    _check_rgb(rgb, "rgb")
    try:
        w = LUMA_WEIGHTS[weights]
    except KeyError:
        raise ValueError(
            f"unknown luma weights {weights!r}; choose from {sorted(LUMA_WEIGHTS)}"
        ) from None
    r, g, b = rgb.unbind(-3)
    return (w[0] * r + w[1] * g + w[2] * b).unsqueeze(-3)


def matlab_rgb2gray_u8(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` on a uint8 ``H×W×3`` array: float64 weighted sum, rounded half away
    from zero and saturated to uint8 (``spec/metrics.md`` §1.1). A 2-D array is returned as is.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 H×W×3 array, got {rgb.dtype} {rgb.shape}")
    w = np.array(LUMA_WEIGHTS["matlab"], dtype=np.float64)
    y = rgb.astype(np.float64) @ w
    # Non-negative values: floor(y + 0.5) is round-half-away-from-zero (in place: this runs
    # for every colour image a metric converts).
    y += 0.5
    return np.clip(np.floor(y, out=y), 0, 255, out=y).astype(np.uint8)
