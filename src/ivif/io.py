"""Reading and writing images: PNG, JPEG, BMP, TIFF; 8- and 16-bit; gray, RGB, RGBA, palette.

:func:`read_image` always returns ``uint8``: ``H×W`` for gray content, ``H×W×3`` for colour.
High-bit-depth frames (16-bit radiometric thermal, 32-bit integer or float TIFF) are mapped to
8 bits by a named rule (:data:`DEPTH_RULES`). :func:`write_image` is atomic: it writes a temporary
file beside the target and renames it, so an interrupted run never leaves a truncated image.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ivif.errors import InputError

__all__ = [
    "DEPTH_RULES",
    "IMAGE_SUFFIXES",
    "from_tensor",
    "is_gray",
    "read_image",
    "to_tensor",
    "to_uint8",
    "write_image",
]

DepthRule = Literal["percentile", "minmax", "linear"]

#: How a high-bit-depth frame becomes 8-bit.
DEPTH_RULES: dict[str, str] = {
    "percentile": "robust stretch: the 0.5th–99.5th percentiles map to 0–255, outliers clip",
    "minmax": "the frame's minimum and maximum map to 0 and 255",
    "linear": "fixed scale, 16-bit value / 257 (65535 -> 255), rounded",
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.floor(scaled + 0.5), 0, 255).astype(np.uint8)


def _to_8bit(values: np.ndarray, rule: str, full_scale: float) -> np.ndarray:
    """Map a high-depth array to uint8 with one of :data:`DEPTH_RULES`."""
    if rule == "percentile":
        low, high = np.percentile(values, [0.5, 99.5])
        return _stretch(values, float(low), float(high))
    if rule == "minmax":
        return _stretch(values, float(values.min()), float(values.max()))
    if rule == "linear":
        return _stretch(values, 0.0, full_scale)
    raise ValueError(f"unknown depth rule {rule!r}; choose from {sorted(DEPTH_RULES)}")


def read_image(path: str | os.PathLike, depth_rule: DepthRule = "percentile") -> np.ndarray:
    """Read an image file as ``uint8``: ``H×W`` (gray) or ``H×W×3`` (colour).

    Palette images are expanded through their palette, alpha is dropped, 1-bit images become
    0/255, and 16-bit or 32-bit frames are mapped to 8 bits with ``depth_rule``. Colour files whose
    three channels are identical stay ``H×W×3``; use :func:`is_gray` to detect them.

    Raises :class:`~ivif.errors.InputError` naming the file when it is missing or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    try:
        with Image.open(path) as image:
            image.load()
            return _decode(image, depth_rule)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(
            f"{path}: not a readable image ({exc.__class__.__name__}: {exc}); "
            "expected PNG, JPEG, BMP or TIFF"
        ) from None


def _decode(image: Image.Image, depth_rule: str) -> np.ndarray:
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("L", "RGB"):
        return np.asarray(image, dtype=np.uint8).copy()
    if mode == "1":
        return np.asarray(image.convert("L"), dtype=np.uint8).copy()
    if mode == "LA":
        return np.asarray(image, dtype=np.uint8)[..., 0].copy()
    if mode in ("RGBA", "RGBX", "CMYK", "YCbCr"):
        return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    if mode.startswith("I;16"):
        values = np.asarray(image).astype(np.float64)
        return _to_8bit(values, depth_rule, 65535.0)
    if mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        if not np.isfinite(values).all():
            raise OSError(f"non-finite values in a {mode}-mode image")
        # 16-bit PNGs decode as mode "I"; a wider integer range uses its own maximum.
        full_scale = 65535.0 if mode == "I" and values.max(initial=0) <= 65535 else values.max()
        return _to_8bit(values, depth_rule, float(max(full_scale, 1.0)))
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def is_gray(image: np.ndarray) -> bool:
    """True for ``H×W`` arrays and for ``H×W×3`` arrays whose three channels are identical."""
    if image.ndim == 2:
        return True
    return bool(
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 0], image[..., 2])
    )


def write_image(path: str | os.PathLike, image: np.ndarray, *, quality: int = 95) -> Path:
    """Atomically write a ``uint8`` ``H×W`` or ``H×W×3`` array; the format follows the suffix.

    ``quality`` applies to JPEG only. The parent folder is created when missing. The file appears
    under its final name only once it is complete.
    """
    path = Path(path)
    image = np.asarray(image)
    if (
        image.dtype != np.uint8
        or image.ndim not in (2, 3)
        or (image.ndim == 3 and image.shape[2] != 3)
    ):
        raise ValueError(f"expected a uint8 H×W or H×W×3 array, got {image.dtype} {image.shape}")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"{path}: unsupported output format; use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{suffix}.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            options = {"quality": quality} if suffix in (".jpg", ".jpeg") else {}
            Image.fromarray(image).save(handle, format=_FORMATS[suffix], **options)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def to_tensor(image: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``uint8`` ``H×W`` / ``H×W×C`` array to a ``(1, C, H, W)`` tensor on ``[0, 1]``."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    # A copy: arrays from Pillow may be read-only, which torch cannot share.
    tensor = torch.from_numpy(np.array(array.transpose(2, 0, 1), order="C")).unsqueeze(0)
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return tensor.to(dtype).div_(scale)


def to_uint8(
    x: torch.Tensor,
    rounding: Literal["round", "truncate"] = "round",
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Clamp ``[0, 1]`` values and quantise to uint8 by rounding (half up) or truncation;
    ``out`` (a uint8 tensor of ``x``'s shape, any layout) receives the result."""
    if rounding not in ("round", "truncate"):
        raise ValueError(f"rounding must be 'round' or 'truncate', got {rounding!r}")
    scaled = x.clamp(0.0, 1.0).mul_(255.0)
    if rounding == "round":
        scaled.add_(0.5)  # the conversion truncates, which is floor for these non-negative values
    return scaled.to(torch.uint8) if out is None else out.copy_(scaled)


def from_tensor(x: torch.Tensor, rounding: Literal["round", "truncate"] = "round") -> np.ndarray:
    """``(1, C, H, W)`` tensor on ``[0, 1]`` to a ``uint8`` ``H×W`` (C = 1) or ``H×W×3`` array."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected a (1, 1|3, H, W) tensor, got {tuple(x.shape)}")
    # Quantise straight into an H×W×C array (one pass; a byte-strided copy afterwards is slow).
    channels, height, width = x.shape[1:]
    array = torch.empty(height, width, channels, dtype=torch.uint8)
    to_uint8(x[0].cpu(), rounding, out=array.permute(2, 0, 1))
    return array.numpy()[..., 0] if channels == 1 else array.numpy()
