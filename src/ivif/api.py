"""The Python API: :func:`fuse` and :func:`methods`."""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from ivif.errors import InputError
from ivif.io import DepthRule, from_tensor, is_gray, read_image, to_tensor
from ivif.methods import FusionMethod, available_methods, create_method

__all__ = ["DEFAULT_METHOD", "fuse", "fuse_arrays", "load_pair", "methods"]

#: The method :func:`fuse` and ``ivif fuse`` use when none is named.
DEFAULT_METHOD = "cpfusion"

ImageLike = str | os.PathLike | np.ndarray


def methods() -> list[str]:
    """Names of the registered fusion methods."""
    return available_methods()


def _load(image: ImageLike, role: str, depth_rule: DepthRule) -> tuple[np.ndarray, str]:
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, depth_rule), str(image)
    array = np.asarray(image)
    label = f"{role} array"
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise InputError(f"{label}: expected H×W or H×W×3, got shape {array.shape}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"{label}: expected uint8 or float in [0, 1], got {array.dtype}")
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InputError(f"{label}: float images must be finite and within [0, 1]")
    if min(array.shape[:2]) < 1:
        raise InputError(f"{label}: empty image {array.shape}")
    return array, label


def _resample(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resampling of a uint8 or float image to ``size = (H, W)``."""
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.BICUBIC))
    channels = image[..., None] if image.ndim == 2 else image
    planes = [
        np.asarray(
            Image.fromarray(channels[..., c].astype(np.float32), mode="F").resize(
                size[::-1], Image.Resampling.BICUBIC
            )
        )
        for c in range(channels.shape[2])
    ]
    out = np.clip(np.stack(planes, axis=2), 0.0, 1.0)
    return out[..., 0] if image.ndim == 2 else out


def load_pair(
    ir: ImageLike,
    vi: ImageLike,
    resize: Literal["ir", "vi"] | None = None,
    depth_rule: DepthRule = "percentile",
) -> tuple[np.ndarray, np.ndarray]:
    """Read (or validate) an infrared/visible pair and check that the sizes agree.

    ``resize="ir"`` resamples the infrared image onto the visible image's grid, ``"vi"`` the
    reverse; by default different sizes are an :class:`~ivif.errors.InputError`.
    """
    ir_image, ir_label = _load(ir, "infrared", depth_rule)
    vi_image, vi_label = _load(vi, "visible", depth_rule)
    ir_size, vi_size = ir_image.shape[:2], vi_image.shape[:2]
    if ir_size != vi_size:
        if resize == "ir":
            ir_image = _resample(ir_image, vi_size)
        elif resize == "vi":
            vi_image = _resample(vi_image, ir_size)
        else:
            raise InputError(
                f"sizes differ: infrared {ir_label} is {ir_size[1]}×{ir_size[0]}, visible "
                f"{vi_label} is {vi_size[1]}×{vi_size[0]} (W×H); register the pair first, or pass "
                "--resize ir|vi (resize='ir'|'vi') to resample one onto the other"
            )
    elif resize not in (None, "ir", "vi"):
        raise InputError(f"resize must be 'ir', 'vi' or None, got {resize!r}")
    return ir_image, vi_image


def fuse_arrays(
    method: FusionMethod, ir: np.ndarray, vi: np.ndarray, seed: int | None = None
) -> np.ndarray:
    """Fuse an already loaded pair with a method instance; returns uint8 ``H×W`` or ``H×W×3``."""
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    if np.ndim(ir) == 3 and is_gray(ir):  # every method keeps one channel: convert only that
        ir = ir[..., 0]
    with torch.inference_mode():
        fused = method.fuse(to_tensor(ir), to_tensor(vi), generator)
    return from_tensor(fused, method.rounding)


def fuse(
    ir: ImageLike,
    vi: ImageLike,
    method: str = DEFAULT_METHOD,
    seed: int | None = None,
    *,
    resize: Literal["ir", "vi"] | None = None,
    depth_rule: DepthRule = "percentile",
    **options: Any,
) -> np.ndarray:
    """Fuse an infrared and a visible image.

    ``ir`` and ``vi`` are file paths or arrays (uint8, or float on ``[0, 1]``; ``H×W`` or
    ``H×W×3``). ``options`` are the method's options (``ivif methods`` lists them). Returns uint8
    ``H×W`` when the visible image is gray (including three identical channels) and ``H×W×3``
    when it is colour. ``seed`` makes stochastic methods reproducible.
    """
    instance = create_method(method, **options)
    ir_image, vi_image = load_pair(ir, vi, resize, depth_rule)
    return fuse_arrays(instance, ir_image, vi_image, seed)
