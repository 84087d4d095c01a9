"""Convolution blocks shared by the learned methods."""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["GuidedResidual", "conv_stack"]


def conv_stack(widths: list[int]) -> nn.Sequential:
    """3×3 convs between consecutive widths with LeakyReLU between them (none at the end)."""
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(itertools.pairwise(widths)):
        if index:
            layers.append(nn.LeakyReLU())
        layers.append(nn.Conv2d(a, b, 3, padding=1))
    return nn.Sequential(*layers)


class GuidedResidual(nn.Module):
    """``h + body([h, guide])``, ``body`` a :func:`conv_stack` with ``depth`` hidden layers of
    ``hidden`` channels. The last conv starts at zero, so a trained network gains the block
    without changing its output and can be fine-tuned from its weights."""

    def __init__(self, channels: int, guide_channels: int, hidden: int, depth: int = 1):
        super().__init__()
        self.body = conv_stack([channels + guide_channels, *[hidden] * depth, channels])
        self.zero_output()

    def zero_output(self) -> None:
        """Zero the last conv: the block becomes the identity on ``h``."""
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, h: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        return h + self.body(torch.cat([h, guide], dim=1))
