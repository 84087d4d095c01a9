"""Padding to a model's size multiple, and overlapping tiles for models too large (or too global)
to run on a whole image at once.

Tiles of ``tile × tile`` pixels share at least ``overlap`` pixels with their neighbours; their
outputs are blended with weights that ramp linearly from each tile's border (never zero, so
every pixel is covered).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["pad_border", "pad_to_multiple", "tile_starts", "tile_weights", "tiled_apply"]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad right/bottom to a multiple (reflect where the image is large enough, else replicate)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def pad_border(x: torch.Tensor, margin: int) -> torch.Tensor:
    """Pad every side by ``margin`` pixels (reflect where the image is large enough, else
    replicate), so that a network's own zero-padded border falls outside the image."""
    if margin == 0:
        return x
    mode = "reflect" if margin < min(x.shape[-2:]) else "replicate"
    return F.pad(x, (margin, margin, margin, margin), mode=mode)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Origins of tiles covering ``length`` pixels, the last one flush with the end."""
    if tile <= overlap or overlap < 0:
        raise ValueError(f"need 0 <= overlap < tile, got overlap {overlap}, tile {tile}")
    if length <= tile:
        return [0]
    return [*range(0, length - tile, tile - overlap), length - tile]


def tile_weights(size: tuple[int, int], overlap: int) -> torch.Tensor:
    """``(1, 1, h, w)`` blending weights rising linearly over ``overlap`` pixels from each side."""

    def ramp(n: int) -> torch.Tensor:
        i = torch.arange(n, dtype=torch.float32)
        return ((torch.minimum(i, n - 1 - i) + 1) / (overlap + 1)).clamp(max=1.0)

    return torch.outer(ramp(size[0]), ramp(size[1]))[None, None]


def tiled_apply(
    fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], tile: int, overlap: int
) -> torch.Tensor:
    """``fn(*inputs)`` computed tile by tile on same-sized ``(B, C_i, H, W)`` inputs and blended.

    ``fn`` must return a ``(B, C_out, h, w)`` tensor the size of its input tiles.
    """
    h, w = inputs[0].shape[-2:]
    if any(x.shape[-2:] != (h, w) for x in inputs):
        raise ValueError("tiled inputs must share their height and width")
    out = total = None
    for top in tile_starts(h, tile, overlap):
        for left in tile_starts(w, tile, overlap):
            window = (..., slice(top, top + tile), slice(left, left + tile))
            result = fn(*(x[window] for x in inputs))
            if out is None:
                out = result.new_zeros((*result.shape[:2], h, w))
                total = result.new_zeros((1, 1, h, w))
            weight = tile_weights(result.shape[-2:], overlap).to(result)
            out[window] += weight * result
            total[window] += weight
    return out / total
