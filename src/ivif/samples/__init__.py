"""The sample pairs shipped with ivif (attribution in ``README.md`` beside this file)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ivif.data import ImagePair, pair_folders

__all__ = ["sample_folder", "sample_pairs"]


def sample_folder() -> Path:
    """The installed folder holding ``ir/`` and ``vi/``."""
    return Path(str(resources.files("ivif.samples")))


def sample_pairs() -> list[ImagePair]:
    """The shipped pairs, sorted by name."""
    pairs, _ = pair_folders(sample_folder() / "ir", sample_folder() / "vi")
    return pairs
