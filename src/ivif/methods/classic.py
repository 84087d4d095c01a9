"""Classic baselines: the floor every learned method must beat."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from ivif.methods.base import FusionMethod, option, register
from ivif.ops import burt_adelson_kernel, laplacian_pyramid, laplacian_synthesis, max_levels


@register
class AverageFusion(FusionMethod):
    """Pixel-wise mean of the infrared and the visible luminance."""

    name = "average"
    summary = "pixel-wise mean of infrared and visible luminance"

    def fuse_planes(self, ir, vi, generator=None):
        return 0.5 * (ir + vi)


@dataclasses.dataclass(frozen=True)
class LaplacianOptions:
    levels: int = option(4, "pyramid levels (reduced automatically for small images)")
    detail_rule: Literal["max_abs", "average"] = option(
        "max_abs", "detail rule: keep the larger-magnitude coefficient, or average"
    )

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.levels}")


@register
class LaplacianFusion(FusionMethod):
    """Burt–Adelson Laplacian pyramid fusion (Burt & Adelson 1983; Burt & Kolczynski 1993):
    averaged base level, maximum-absolute detail coefficients."""

    name = "laplacian"
    summary = "Laplacian pyramid: averaged base, max-absolute details (Burt & Adelson)"
    Options = LaplacianOptions

    def fuse_planes(self, ir, vi, generator=None):
        kernel = burt_adelson_kernel(dtype=ir.dtype)
        levels = min(self.options.levels, max_levels(ir.shape[-2], ir.shape[-1], kernel.numel()))
        pair = torch.cat([ir, vi], dim=1)
        gaussians, details = laplacian_pyramid(pair, levels, kernel, kernel)
        fused_details = [_fuse_detail(d, self.options.detail_rule) for d in details]
        top = gaussians[-1].mean(dim=1, keepdim=True)
        return laplacian_synthesis(top, fused_details, kernel)


def _fuse_detail(pair: torch.Tensor, rule: str) -> torch.Tensor:
    """Fuse a 2-channel (IR, VI) detail level into one channel."""
    if rule == "average":
        return pair.mean(dim=1, keepdim=True)
    ir, vi = pair[:, :1], pair[:, 1:]
    return torch.where(ir.abs() >= vi.abs(), ir, vi)
