"""Pictures for people: a labelled contact sheet of images (demo overview, report grids)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["contact_sheet"]


def _as_rgb(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image).convert("RGB")


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    column_labels: Sequence[str],
    row_labels: Sequence[str] | None = None,
    tile_height: int = 200,
    gap: int = 4,
) -> np.ndarray:
    """Arrange ``rows`` of uint8 images in a grid with a label above each column.

    Every image is scaled to ``tile_height`` (keeping its aspect ratio); each row is as wide as its
    widest tile. Returns an RGB uint8 array.
    """
    font = ImageFont.load_default()
    label_h = 16
    scaled = [
        [
            _as_rgb(im).resize(
                (max(1, round(im.shape[1] * tile_height / im.shape[0])), tile_height)
            )
            for im in row
        ]
        for row in rows
    ]
    tile_w = max(tile.width for row in scaled for tile in row)
    row_label_w = 0 if row_labels is None else 8 + max(len(label) for label in row_labels) * 7
    width = row_label_w + len(column_labels) * (tile_w + gap) + gap
    height = label_h + len(scaled) * (tile_height + gap) + gap
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(column_labels):
        draw.text((row_label_w + gap + c * (tile_w + gap), 2), label, fill="black", font=font)
    for r, row in enumerate(scaled):
        top = label_h + gap + r * (tile_height + gap)
        if row_labels is not None:
            draw.text((4, top + tile_height // 2), row_labels[r], fill="black", font=font)
        for c, tile in enumerate(row):
            sheet.paste(tile, (row_label_w + gap + c * (tile_w + gap), top))
    return np.asarray(sheet)
