"""Loading a (IR, VI, fused) triple and arranging it the way a convention's toolbox does.

Both MATLAB toolboxes read 8-bit files, so every metric here is defined on uint8 images:
paths are read with :func:`ivif.io.read_image`; float arrays on ``[0, 1]`` are quantised as
writing them to an 8-bit file would (``round(255·x)``, half away from zero).

* ``tang`` / ``tang2022``: every colour image is converted with MATLAB's ``rgb2gray`` on uint8
  (rounded); A = IR, B = VI (``spec/metrics.md`` §3, protocol).
* ``vifb``: nothing is converted; A = VI, B = IR. A colour fused image is evaluated per RGB
  channel k against channel k of each colour source (a grey source is used for every k). A grey
  fused image is evaluated once, against grey sources: colour sources are then converted with
  ``rgb2gray`` (VIFB itself converts inconsistently in that case, ``spec/metrics.md`` §2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Hashable
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from ivif.color import matlab_rgb2gray_u8
from ivif.errors import InputError
from ivif.evaluation.registry import get_convention
from ivif.io import read_image

__all__ = ["ImageLike", "MetricInputs", "SourceCache", "load_uint8", "prepare_inputs"]

ImageLike = str | os.PathLike | np.ndarray
T = TypeVar("T")


def load_uint8(image: ImageLike, role: str) -> np.ndarray:
    """A path or an array as a uint8 ``H×W`` or ``H×W×3`` array (alpha is dropped)."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (1, 4):
        array = array[..., 0] if array.shape[2] == 1 else array[..., :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise InputError(f"{role} image: expected H×W or H×W×3, got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InputError(f"{role} image: empty array of shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{role} image: expected uint8, or float on [0, 1]; got {array.dtype}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise InputError(f"{role} image: float images must be finite and within [0, 1]")
    return np.floor(array.astype(np.float64) * 255.0 + 0.5).astype(np.uint8)


def _planes(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 ``H×W`` / ``H×W×3`` as ``(channels, H, W)`` (a grey image is repeated)."""
    if image.ndim == 2:
        return np.broadcast_to(image, (channels, *image.shape))
    return image.transpose(2, 0, 1)


def _source_index(sources: tuple[np.ndarray, np.ndarray], channels: int) -> torch.Tensor:
    """``(2, C)`` numbers of the distinct planes of A and B: a grey source (or a colour file
    whose channels are equal) repeated over the channels is one plane."""
    rows, count = [], 0
    for image in sources:
        grey = image.ndim == 2 or all(
            np.array_equal(image[..., 0], image[..., k]) for k in range(1, image.shape[2])
        )
        distinct = 1 if grey else channels
        rows.append([count + min(k, distinct - 1) for k in range(channels)])
        count += distinct
    return torch.tensor(rows)


class SourceCache:
    """Intermediates that depend only on the two sources, reused across fused images.

    Pass one instance to :func:`~ivif.evaluation.evaluate_arrays` for every fused image of the
    same source pair (a benchmark scoring several methods): source gradients, filtered source
    statistics, histograms… are then computed once. The cache recognises its pair by content,
    so handing it another pair (or convention) is safe: it starts afresh.
    """

    def __init__(self) -> None:
        self._key: Hashable = None
        self._values: dict[Hashable, Any] = {}

    def values_for(self, key: Hashable) -> dict[Hashable, Any]:
        """The store for sources identified by ``key`` (emptied when the key changes)."""
        if key != self._key:
            self._key, self._values = key, {}
        return self._values


class MetricInputs:
    """The two sources and the fused image as a convention sees them, plus caches.

    ``planes_u8`` is a uint8 ``(3, C, H, W)`` tensor holding A, B and F (``C`` is 1, or 3 for
    colour under ``vifb``; A and B follow the convention's source order) and ``planes`` the same
    values as float64. ``a``, ``b``, ``f`` and ``sources`` (A and B, ``(2, C, H, W)``) are views.
    Intermediates that several metrics share are kept with :meth:`cached`; those computed from
    the sources alone with :meth:`source_cached`, which can outlive this triple (see
    :class:`SourceCache`).

    A grey source evaluated against a colour fused image is the same plane in every channel;
    ``source_index`` (``(2, C)``, default: every plane its own) numbers the distinct source
    planes, so that expensive per-plane work runs once per distinct plane
    (:meth:`distinct_sources`) and broadcasts over F's channels (:meth:`source_rows`).
    """

    def __init__(
        self,
        convention: str,
        planes_u8: torch.Tensor,
        source_values: dict[Hashable, Any] | None = None,
        source_index: torch.Tensor | None = None,
    ):
        self.convention = convention
        self.planes_u8 = planes_u8
        channels = planes_u8.shape[1]
        self.source_index = (
            torch.arange(2 * channels).view(2, channels) if source_index is None else source_index
        )
        self.planes = planes_u8.to(torch.float64)
        self.a, self.b, self.f = self.planes.unbind(0)
        self.sources = self.planes[:2]
        self._cache: dict[Hashable, Any] = {}
        self._source_values = {} if source_values is None else source_values

    @property
    def size(self) -> tuple[int, int]:
        return int(self.planes.shape[-2]), int(self.planes.shape[-1])

    def data(self, source: Literal["u8", "f64"]) -> torch.Tensor:
        """``planes_u8`` (``"u8"``) or ``planes`` (``"f64"``)."""
        return self.planes_u8 if source == "u8" else self.planes

    def distinct_sources(self, source: Literal["u8", "f64"] = "u8") -> torch.Tensor:
        """The distinct source planes ``(P, H, W)``, numbered as in ``source_index``, from
        :meth:`data`."""
        flat = self.data(source)[:2].reshape(-1, *self.size)
        if self.source_index.numel() == self.distinct_count:  # no plane repeats: no copy
            return flat
        numbers = self.source_index.flatten().tolist()
        return flat[[numbers.index(k) for k in range(self.distinct_count)]]

    @property
    def distinct_count(self) -> int:
        return int(self.source_index.max()) + 1

    def source_rows(self) -> tuple[slice, slice]:
        """Where A's and B's planes lie among the distinct ones (one plane, or C in order):
        ``per_plane[rows]`` broadcasts against the fused planes without a copy."""
        a, b = (slice(int(index.min()), int(index.max()) + 1) for index in self.source_index)
        return a, b

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per key for this triple."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def source_cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per key for this source pair; ``compute`` must read only the
        sources (``a``, ``b``, ``sources`` or ``planes_u8[:2]``)."""
        if key not in self._source_values:
            self._source_values[key] = compute()
        return self._source_values[key]


def _check_sizes(images: dict[str, np.ndarray]) -> None:
    sizes = {role: image.shape[:2] for role, image in images.items()}
    if len(set(sizes.values())) > 1:
        described = ", ".join(f"{role} {w}×{h}" for role, (h, w) in sizes.items())
        raise InputError(f"image sizes differ ({described}, W×H); metrics need registered pairs")


def prepare_inputs(
    ir: np.ndarray,
    vi: np.ndarray,
    fused: np.ndarray,
    convention: str,
    cache: SourceCache | None = None,
) -> MetricInputs:
    """Arrange loaded uint8 images for ``convention`` (see the module docstring)."""
    spec = get_convention(convention)
    images = {"infrared": ir, "visible": vi, "fused": fused}
    _check_sizes(images)
    if spec.colour == "gray" or fused.ndim == 2:
        ir, vi, fused = (matlab_rgb2gray_u8(image) for image in (ir, vi, fused))
    channels = 1 if fused.ndim == 2 else 3
    by_role = {"ir": ir, "vi": vi}
    a, b = (by_role[role] for role in spec.sources)
    # One contiguous (3, C, H, W) block: colour planes are stored apart, not interleaved.
    planes = torch.from_numpy(
        np.ascontiguousarray(np.stack([_planes(image, channels) for image in (a, b, fused)]))
    )
    source_values = None
    if cache is not None:
        digest = hashlib.blake2b(planes[:2].numpy().tobytes(), digest_size=16).hexdigest()
        source_values = cache.values_for((convention, tuple(planes.shape), digest))
    return MetricInputs(convention, planes, source_values, _source_index((a, b), channels))
