"""Paired infrared/visible folders: files are paired by their stem (name without extension)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ivif.errors import InputError
from ivif.io import IMAGE_SUFFIXES

__all__ = ["ImagePair", "find_dataset", "list_images", "pair_folders"]

#: Folder names for the two modalities in common dataset layouts (first match wins).
IR_FOLDERS = ("ir", "Ir", "IR", "infrared", "Infrared", "lwir")
VI_FOLDERS = ("vi", "Vis", "VI", "vis", "visible", "Visible")


@dataclasses.dataclass(frozen=True)
class ImagePair:
    """One registered pair: its name (shared file stem) and the two files."""

    name: str
    ir: Path
    vi: Path


def list_images(folder: str | os.PathLike, role: str = "image") -> dict[str, Path]:
    """Image files of ``folder`` by stem (sorted). Raises if the folder is missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: {role} folder not found")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise InputError(
            f"{folder}: no {role} images (looked for {', '.join(IMAGE_SUFFIXES)}); check the path"
        )
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise InputError(
                f"{folder}: two images named {path.stem!r} ({by_stem[path.stem].name}, {path.name})"
            )
        by_stem[path.stem] = path
    return by_stem


def pair_folders(
    ir_dir: str | os.PathLike, vi_dir: str | os.PathLike
) -> tuple[list[ImagePair], list[Path]]:
    """Pair the images of two folders by stem.

    Returns the pairs (sorted by name) and the files that have no counterpart.
    """
    ir_files = list_images(ir_dir, "infrared")
    vi_files = list_images(vi_dir, "visible")
    names = sorted(ir_files.keys() & vi_files.keys())
    unpaired = sorted(
        [ir_files[n] for n in ir_files.keys() - vi_files.keys()]
        + [vi_files[n] for n in vi_files.keys() - ir_files.keys()]
    )
    return [ImagePair(n, ir_files[n], vi_files[n]) for n in names], unpaired


def find_dataset(root: str | os.PathLike) -> tuple[Path, Path]:
    """The infrared and visible sub-folders of a dataset folder (``ir/`` + ``vi/`` and the
    common variants such as ``Ir/`` + ``Vis/`` of M3FD or ``infrared/`` + ``visible/``)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    ir = next((root / n for n in IR_FOLDERS if (root / n).is_dir()), None)
    vi = next((root / n for n in VI_FOLDERS if (root / n).is_dir()), None)
    if ir is None or vi is None:
        raise InputError(
            f"{root}: expected an infrared and a visible sub-folder (e.g. ir/ and vi/), found "
            f"{sorted(p.name for p in root.iterdir() if p.is_dir()) or 'none'}"
        )
    return ir, vi
