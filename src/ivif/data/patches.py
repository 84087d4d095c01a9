"""Random training patches from paired infrared/visible folders, held in memory.

Every pair is loaded once as gray planes on [0, 1]: the infrared intensity and the visible
luminance (BT.601 Y, full range) — or, with ``visible="rgb"``, the visible image's three RGB
planes (gray visible files replicated). An optional ``prepare`` callback adds derived planes per
image (e.g. HCLFuse's OT-aligned infrared), computed once at load time. Sampling is driven only
by the ``torch.Generator`` passed in, so a step's batch is reproducible from its seed.

``exposure=(low, high)`` multiplies each crop's infrared and visible planes by independent gains,
log-uniform on ``[low, high]``. Training sets such as RoadScene are bright (the 5th percentile of
max(IR, VI) is 70–140 grey levels), so a model trained on them alone never sees a dark scene and
lifts the black level of night images such as MSRS's (docs/methods/hclfuse.md, deviation 19).

``sensor_noise=σ`` then adds Gaussian noise to each crop and source: one field per source
(shared by its planes), of a standard deviation drawn uniformly from ``[0, σ]`` per crop, and
clips to [0, 1]. RoadScene's images are clean and soft at the pixel scale, test sets such as
MSRS are not: a model trained on clean crops alone learns to smooth away the fine texture that
the fused image should keep (docs/methods/hclfuse.md, deviation 22).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ivif.color import rgb_to_ycbcr
from ivif.data.pairs import ImagePair, find_dataset, pair_folders
from ivif.errors import InputError
from ivif.io import read_image, to_tensor

__all__ = ["PatchSampler", "load_gray_pair", "load_pairs", "load_rgb_pair"]

#: ``prepare(planes (1, C, H, W)) -> extra planes (1, E, H, W)``.
Prepare = Callable[[torch.Tensor], torch.Tensor]


def load_gray_pair(pair: ImagePair, scale: float = 1.0) -> torch.Tensor:
    """``(1, 2, H, W)`` float32: [infrared, visible luminance] on [0, 1], optionally rescaled
    (bicubic, antialiased) by ``scale``."""
    ir = to_tensor(read_image(pair.ir))
    vi = to_tensor(read_image(pair.vi))
    if ir.shape[-2:] != vi.shape[-2:]:
        raise InputError(f"{pair.name}: infrared and visible sizes differ")
    if ir.shape[1] == 3:
        ir = rgb_to_ycbcr(ir)[:, :1]
    if vi.shape[1] == 3:
        vi = rgb_to_ycbcr(vi)[:, :1]
    return _rescale(torch.cat([ir, vi], dim=1), scale)


def load_rgb_pair(pair: ImagePair, scale: float = 1.0) -> torch.Tensor:
    """``(1, 4, H, W)`` float32: [infrared, visible R, G, B] on [0, 1] (gray visible files are
    replicated to three planes), optionally rescaled like :func:`load_gray_pair`."""
    ir = to_tensor(read_image(pair.ir))
    vi = to_tensor(read_image(pair.vi))
    if ir.shape[-2:] != vi.shape[-2:]:
        raise InputError(f"{pair.name}: infrared and visible sizes differ")
    if ir.shape[1] == 3:
        ir = rgb_to_ycbcr(ir)[:, :1]
    if vi.shape[1] == 1:
        vi = vi.expand(-1, 3, -1, -1)
    return _rescale(torch.cat([ir, vi], dim=1), scale)


def _rescale(planes: torch.Tensor, scale: float) -> torch.Tensor:
    if scale == 1.0:
        return planes
    size = [max(1, int(s * scale)) for s in planes.shape[-2:]]
    return F.interpolate(planes, size=size, mode="bicubic", antialias=True).clamp(0, 1)


def load_pairs(root: str | os.PathLike) -> list[ImagePair]:
    """The pairs of a dataset folder (``ir/`` + ``vi/`` or a known variant)."""
    ir_dir, vi_dir = find_dataset(root)
    pairs, _ = pair_folders(ir_dir, vi_dir)
    if not pairs:
        raise InputError(f"{root}: no infrared/visible pairs with matching names")
    return pairs


class PatchSampler:
    """Random ``patch × patch`` crops (optionally mirrored) from in-memory image planes."""

    def __init__(
        self,
        root: str | os.PathLike,
        patch_size: int,
        batch_size: int,
        scale: float = 1.0,
        hflip: bool = True,
        prepare: Prepare | None = None,
        progress: bool = True,
        visible: Literal["luma", "rgb"] = "luma",
        exposure: tuple[float, float] | None = None,
        sensor_noise: float = 0.0,
        source_groups: Sequence[Sequence[int]] | None = None,
    ) -> None:
        """``source_groups`` lists the channels of each source, which share one exposure gain
        and one noise field; by default the infrared plane and the visible planes. It is
        required with ``prepare``'s planes, since only the caller knows which source each
        derived plane follows."""
        if patch_size < 8 or batch_size < 1 or scale <= 0:
            raise ValueError("patch_size must be >= 8, batch_size >= 1 and scale > 0")
        if visible not in ("luma", "rgb"):
            raise ValueError(f"visible must be 'luma' or 'rgb', got {visible!r}")
        if exposure is not None and not 0 < exposure[0] <= exposure[1]:
            raise ValueError(f"exposure must be (low, high) with 0 < low <= high, got {exposure}")
        if not 0.0 <= sensor_noise <= 0.5:
            raise ValueError(
                f"sensor_noise must be a standard deviation in [0, 0.5], got {sensor_noise}"
            )
        augmented = exposure is not None or sensor_noise > 0
        if augmented and source_groups is None:
            if prepare is not None:
                raise ValueError("exposure or sensor_noise with prepared planes need source_groups")
            source_groups = ((0,), (1,) if visible == "luma" else (1, 2, 3))
        load = load_gray_pair if visible == "luma" else load_rgb_pair
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.hflip = hflip
        self.exposure = exposure
        self.sensor_noise = sensor_noise
        self.source_groups = [list(group) for group in source_groups or ()]
        self.pairs = load_pairs(root)
        self.images: list[torch.Tensor] = []
        for pair in tqdm(self.pairs, desc="load pairs", unit="pair", disable=not progress):
            planes = load(pair, scale)
            if prepare is not None:
                planes = torch.cat([planes, prepare(planes)], dim=1)
            short = patch_size - min(planes.shape[-2:])
            if short > 0:
                planes = F.pad(planes, (0, max(0, short), 0, max(0, short)), mode="replicate")
            self.images.append(planes[0])

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        """A ``(batch, C, patch, patch)`` batch drawn with ``generator`` only."""
        p = self.patch_size
        indices = torch.randint(0, len(self.images), (self.batch_size,), generator=generator)
        crops = []
        for index in indices.tolist():
            image = self.images[index]
            h, w = image.shape[-2:]
            top = int(torch.randint(0, h - p + 1, (1,), generator=generator))
            left = int(torch.randint(0, w - p + 1, (1,), generator=generator))
            crop = image[:, top : top + p, left : left + p]
            flip = bool(torch.rand(1, generator=generator) < 0.5)
            crops.append(crop.flip(-1) if self.hflip and flip else crop)
        batch = torch.stack(crops)
        if self.exposure is not None:
            batch = self._expose(batch, generator)
        if self.sensor_noise > 0:
            batch = self._add_noise(batch, generator)
        return batch

    def _expose(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each channel group of each crop times its own log-uniform gain on ``exposure``."""
        low, high = (math.log(bound) for bound in self.exposure)
        groups = len(self.source_groups)
        gains = torch.exp(low + (high - low) * torch.rand(len(batch), groups, generator=generator))
        channel_gains = torch.ones(len(batch), batch.shape[1])
        for index, channels in enumerate(self.source_groups):
            channel_gains[:, channels] = gains[:, index : index + 1]
        return batch * channel_gains[:, :, None, None]

    def _add_noise(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each source of each crop plus one Gaussian field of a standard deviation uniform on
        ``[0, sensor_noise]``, clipped to [0, 1]."""
        n, _, h, w = batch.shape
        groups = len(self.source_groups)
        sigmas = self.sensor_noise * torch.rand(n, groups, 1, 1, generator=generator)
        fields = sigmas * torch.randn(n, groups, h, w, generator=generator)
        noisy = batch.clone()
        for index, channels in enumerate(self.source_groups):
            noisy[:, channels] += fields[:, index : index + 1]
        return noisy.clamp_(0.0, 1.0)
