"""Shared fixtures: the real datasets and oracle beside the checkout (``../shared``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (datasets in ``data/``, reference values in ``oracle/``), or skip."""
    if not (SHARED / "data").is_dir() or not (SHARED / "oracle").is_dir():
        pytest.skip(
            f"needs the shared datasets and oracle at {SHARED} (not present on this machine)"
        )
    return SHARED


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's torch work on one thread (``pytestmark = usefixtures("single_thread")``).

    Such tests are many short operations; on a shared, busy machine multi-threaded torch stalls
    at every parallel region and runs several times slower than one thread.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
