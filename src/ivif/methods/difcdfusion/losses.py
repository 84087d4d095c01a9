"""Dif-CDFusion training loss (spec §5): ``20·L_grad + 20·L_int + λ_p·L_perc + 0.5·L_col``.

All terms act on [0, 1] images. With ``loss_space="rgb"`` (spec) the intensity and gradient
terms are per RGB channel, the infrared image broadcast to the visible image's channels; with
``"luma"`` they compare BT.601 lumas, so the max-intensity target no longer desaturates colour.
The colour term uses the shared BT.601 full-range YCbCr of :mod:`ivif.color` as a tensor
operation, so — unlike the official NumPy/uint8 version — it has a gradient. An optional
``difference_weight`` adds :func:`ivif.nn.difference_loss` in the same space (deviation 19).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ivif.color import rgb_to_gray, rgb_to_ycbcr
from ivif.errors import InputError
from ivif.methods.difcdfusion.config import TrainConfig
from ivif.nn import difference_loss
from ivif.ops import sobel

__all__ = [
    "FusionLoss",
    "PerceptualFeatures",
    "color_loss",
    "gradient_loss",
    "intensity_loss",
    "sobel_magnitude",
]

#: Indices of the four convolutions in VGG-16's ``features`` up to conv2_2 (torchvision order).
VGG_CONV_KEYS = ("0", "2", "5", "7")


def _broadcast(ir: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return ir.expand(-1, like.shape[1], -1, -1) if ir.shape[1] == 1 else ir


def intensity_loss(fused: torch.Tensor, vi: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """``mean |F − max(V, I)|`` per pixel and channel."""
    return (fused - torch.maximum(vi, _broadcast(ir, vi))).abs().mean()


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """``|x ⋆ k_x| + |x ⋆ k_y|`` per channel with zero padding (spec §5)."""
    gx, gy = sobel(x, border="zeros")
    return gx.abs() + gy.abs()


def gradient_loss(fused: torch.Tensor, vi: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
    """``mean |∇F − max(∇V, ∇I)|`` per channel."""
    target = torch.maximum(sobel_magnitude(vi), sobel_magnitude(_broadcast(ir, vi)))
    return (sobel_magnitude(fused) - target).abs().mean()


def color_loss(fused: torch.Tensor, vi: torch.Tensor, differentiable: bool = True) -> torch.Tensor:
    """``mean |Cr_F − Cr_V| + mean |Cb_F − Cb_V|`` (BT.601 full range on [0, 1]).

    ``differentiable=False`` reproduces the official code: the term is computed on a detached
    copy, so it adds a constant and no gradient.
    """
    if not differentiable:
        fused = fused.detach()
    diff = (rgb_to_ycbcr(fused)[:, 1:] - rgb_to_ycbcr(vi)[:, 1:]).abs()
    return diff[:, 0].mean() + diff[:, 1].mean()


class PerceptualFeatures(nn.Module):
    """VGG-16 ``features[:8]``-shaped stack: conv–ReLU–conv–ReLU–pool–conv–ReLU–conv (output
    before the last ReLU), frozen, fed [0, 1] RGB without normalisation (as the official code).

    ``weights``: a local safetensors file with VGG-16 ``features`` keys (``0.weight`` …
    ``7.bias``, widths 64/128). Without it the stack is randomly initialised from ``seed``
    (Kaiming normal) at ``widths`` — a random-feature perceptual loss, since ImageNet weights
    cannot be downloaded here.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        widths: tuple[int, int] = (16, 32),
        seed: int = 0,
    ) -> None:
        super().__init__()
        state = None
        if weights:
            path = Path(weights)
            if not path.is_file():
                raise InputError(f"{path}: VGG-16 weights not found (perceptual='vgg16')")
            state = load_file(str(path))
            widths = (state["0.weight"].shape[0], state["5.weight"].shape[0])
        w1, w2 = widths
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, w1, 3, padding=1),
                nn.Conv2d(w1, w1, 3, padding=1),
                nn.Conv2d(w1, w2, 3, padding=1),
                nn.Conv2d(w2, w2, 3, padding=1),
            ]
        )
        if state is not None:
            self.convs.load_state_dict(
                {
                    f"{i}.{kind}": state[f"{key}.{kind}"]
                    for i, key in enumerate(VGG_CONV_KEYS)
                    for kind in ("weight", "bias")
                }
            )
        else:
            generator = torch.Generator().manual_seed(seed)
            for conv in self.convs:
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(conv.bias)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2, c3, c4 = self.convs
        x = F.max_pool2d(F.relu(c2(F.relu(c1(x)))), 2)
        return c4(F.relu(c3(x)))


class FusionLoss(nn.Module):
    """The weighted sum of spec §5; :meth:`forward` returns every term and ``total``."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config = config
        self.perceptual = None
        if config.perceptual == "vgg16":
            if not config.vgg_weights:
                raise InputError("perceptual='vgg16' needs vgg_weights (a local safetensors file)")
            self.perceptual = PerceptualFeatures(config.vgg_weights)
        elif config.perceptual == "random":
            self.perceptual = PerceptualFeatures(seed=config.seed)

    def forward(
        self, fused: torch.Tensor, vi: torch.Tensor, ir: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if fused.shape[1] != 3 or fused.shape != vi.shape:
            raise ValueError(
                f"fused {tuple(fused.shape)} and visible {tuple(vi.shape)} must be "
                "matching RGB batches"
            )
        cfg = self.config
        f, v, i = fused, vi, ir
        if cfg.loss_space == "luma":
            f, v = rgb_to_gray(fused), rgb_to_gray(vi)
            i = rgb_to_gray(ir) if ir.shape[1] == 3 else ir
        terms = {
            "grad": gradient_loss(f, v, i),
            "intensity": intensity_loss(f, v, i),
            "color": color_loss(fused, vi, cfg.color_loss_grad),
        }
        total = (
            cfg.grad_weight * terms["grad"]
            + cfg.intensity_weight * terms["intensity"]
            + cfg.color_weight * terms["color"]
        )
        if cfg.difference_weight:
            terms["difference"] = difference_loss(f, v, i)
            total = total + cfg.difference_weight * terms["difference"]
        if self.perceptual is not None:
            terms["perceptual"] = (self.perceptual(fused) - self.perceptual(vi)).abs().mean()
            total = total + cfg.perceptual_weight * terms["perceptual"]
        terms["total"] = total
        return terms
