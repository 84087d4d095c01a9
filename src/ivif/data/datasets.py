"""Named datasets: a folder holding infrared and visible sub-folders, or a name resolved under a
data root laid out as ``<root>/<name>/<split>/{ir,vi}`` (the layout of ``shared/data``)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ivif.data.pairs import ImagePair, find_dataset, pair_folders
from ivif.errors import InputError

__all__ = ["Dataset", "default_data_root", "resolve_dataset"]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A set of registered pairs with a display name (``msrs/test``) and a path-safe ``key``."""

    name: str
    ir_dir: Path
    vi_dir: Path

    @property
    def key(self) -> str:
        return self.name.replace("/", "_").replace(os.sep, "_")

    def pairs(self, limit: int | None = None) -> tuple[list[ImagePair], list[Path]]:
        """Pairs sorted by name (the first ``limit`` of them) and the files without a partner."""
        pairs, unpaired = pair_folders(self.ir_dir, self.vi_dir)
        return (pairs if limit is None else pairs[:limit]), unpaired


def default_data_root() -> Path:
    """``$IVIF_DATA_ROOT`` if set, else ``../shared/data`` relative to the working folder."""
    return Path(os.environ.get("IVIF_DATA_ROOT", Path("..") / "shared" / "data"))


def resolve_dataset(spec: str, data_root: str | os.PathLike | None = None) -> Dataset:
    """A dataset from a folder path (with ``ir/`` and ``vi/`` inside) or a name such as ``tno``
    or ``msrs/test`` under ``data_root``. A name with a single split resolves to that split."""
    path = Path(spec)
    if path.is_dir() and _has_pairs(path):
        ir, vi = find_dataset(path)
        return Dataset(path.resolve().name, ir, vi)
    root = Path(data_root) if data_root is not None else default_data_root()
    candidate = root / spec
    if candidate.is_dir() and _has_pairs(candidate):
        ir, vi = find_dataset(candidate)
        return Dataset(spec.strip("/"), ir, vi)
    if candidate.is_dir():
        splits = sorted(p.name for p in candidate.iterdir() if p.is_dir() and _has_pairs(p))
        if len(splits) == 1:
            ir, vi = find_dataset(candidate / splits[0])
            return Dataset(f"{spec.strip('/')}/{splits[0]}", ir, vi)
        if splits:
            options = ", ".join(f"{spec}/{s}" for s in splits)
            raise InputError(f"dataset {spec!r} has several splits; name one of: {options}")
    raise InputError(
        f"dataset {spec!r}: not a folder with ir/ and vi/ inside, nor a dataset under {root} "
        "(set --data-root or IVIF_DATA_ROOT)"
    )


def _has_pairs(folder: Path) -> bool:
    try:
        find_dataset(folder)
    except InputError:
        return False
    return True
