"""Merge, ×2 up-scale and reconstruction head (spec §3.6 and §4), and the whole fusion network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ivif.methods.difcdfusion.cdaf import CommonDifferentialFusion
from ivif.methods.difcdfusion.config import ModelConfig
from ivif.methods.difcdfusion.extractor import diffusion_input
from ivif.nn import GuidedResidual

__all__ = ["FusionNet", "HeadResBlock", "ReconstructionHead", "UpScale"]


class UpScale(nn.Module):
    """``u = Conv(C₂ + D) + C₂``; Conv C→2C; PixelShuffle(2); ReLU; Conv → C/2 × 2H × 2W."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.merge = nn.Conv2d(channels, channels, 3, padding=1)
        self.expand = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.refine = nn.Conv2d(channels // 2, channels // 2, 3, padding=1)

    def forward(self, common: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        u = self.merge(common + difference)
        u += common  # in place here and below: fewer full-size buffers (memory at 1280×1024)
        return self.refine(F.relu_(F.pixel_shuffle(self.expand(u), 2)))


class HeadResBlock(nn.Module):
    """``y = Conv₂(ReLU(Conv₁ x)) + Conv₁ x``: the shortcut is the first conv's output (§4)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        out = self.conv2(F.relu(y))
        out += y
        return out


class ReconstructionHead(nn.Module):
    """Shared ResBlock twice at 2H×2W, max-pool 2×2, ResBlock C/2→C/4, ResBlock C/4→3.

    ``image_channels`` > 0: source images of that many channels are concatenated to the pooled
    map before the C/2→C/4 ResBlock (``input_skip="head"``)."""

    def __init__(self, channels: int, image_channels: int = 0) -> None:
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.shared = HeadResBlock(half, half)
        self.reduce = HeadResBlock(half + image_channels, quarter)
        self.out = HeadResBlock(quarter, 3)

    def forward(self, x: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        x = F.max_pool2d(self.shared(self.shared(x)), 2)
        if images is not None:
            x = torch.cat([x, images.to(x)], dim=1)
        return self.out(self.reduce(x))


class FusionNet(nn.Module):
    """Diffusion features ``(F_I, F_V)`` → RGB image (B, 3, H, W) on [0, 1] (unclamped in
    training mode, clamped in eval mode).

    With ``config.input_skip`` other than ``"none"`` the source images ``ir`` (B, 1|3, H, W)
    and ``vi`` (B, 3, H, W) on [0, 1] are required too, in the denoisers' input range:
    ``"projection"`` concatenates each (the infrared image as 3 equal channels) to its own
    feature map before the shared projection to C; ``"head"`` concatenates both (1 + 3
    channels) to the head's pooled map.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config.fusion_channels
        inputs = config.projection_inputs
        self.project = nn.Conv2d(inputs, c, 1) if inputs != c else nn.Identity()
        self.cdaf = CommonDifferentialFusion(
            c, config.heads, config.mlp_ratio, config.symmetric_cdaf
        )
        self.upscale = UpScale(c)
        self.head = ReconstructionHead(c, 4 if config.input_skip == "head" else 0)
        self.details = nn.ModuleList(
            GuidedResidual(3, 4, c, 2) for _ in range(config.detail_blocks)
        )
        self.reset_parameters()

    def reset_parameters(self, scheme: str = "normal") -> None:
        """``"normal"`` (spec §4): conv/linear weights N(0, 0.02), biases 0; BN weight
        N(1, 0.02), bias 0. ``"pytorch"``: PyTorch's default (fan-in scaled) conv/linear init.
        Either way the detail blocks start as the identity."""
        if scheme not in ("normal", "pytorch"):
            raise ValueError(f"unknown init scheme {scheme!r}")
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear) and scheme == "pytorch":
                module.reset_parameters()
            elif isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)
        for block in self.details:
            block.zero_output()

    def _sources(
        self, features: torch.Tensor, ir: torch.Tensor | None, vi: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The infrared (1 channel) and visible (3) images in the denoisers' input range."""
        if ir is None or vi is None:
            raise ValueError("input_skip: the fusion network needs the source images too")
        for image, channels in ((ir, (1, 3)), (vi, (3,))):
            if image.dim() != 4 or image.shape[1] not in channels:
                raise ValueError(
                    f"expected (B, 1|3, H, W) and (B, 3, H, W) images, got {tuple(image.shape)}"
                )
            if image.shape[0] != features.shape[0] or image.shape[-2:] != features.shape[-2:]:
                raise ValueError(
                    f"image {tuple(image.shape)} does not match features {tuple(features.shape)}"
                )
        ir = ir.mean(dim=1, keepdim=True) if ir.shape[1] == 3 else ir
        scale = self.config.diff_input_range
        return diffusion_input(ir, scale).to(features), diffusion_input(vi, scale).to(features)

    def forward(
        self,
        ir_features: torch.Tensor,
        vi_features: torch.Tensor,
        ir: torch.Tensor | None = None,
        vi: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if ir_features.shape != vi_features.shape or ir_features.dim() != 4:
            raise ValueError(
                f"feature maps differ: {tuple(ir_features.shape)} vs {tuple(vi_features.shape)}"
            )
        if ir_features.shape[-2] % 2 or ir_features.shape[-1] % 2:
            raise ValueError(f"feature maps need even sides, got {tuple(ir_features.shape[-2:])}")
        a, b = ir_features, vi_features
        skip, images = self.config.input_skip, None
        if skip != "none":
            ir, vi = self._sources(a, ir, vi)
            if skip == "head" or self.details:
                images = torch.cat([ir, vi], 1)
            if skip == "projection":
                a, b = torch.cat([a, ir.expand(-1, 3, -1, -1)], 1), torch.cat([b, vi], 1)
        if self.config.query_modality == "vis":
            a, b = b, a
        # One expression: the full-resolution C-channel maps are freed before the detail blocks.
        upscaled = self.upscale(*self.cdaf(self.project(a), self.project(b)))
        fused = self.head(upscaled, images if skip == "head" else None)
        del upscaled
        for block in self.details:
            fused = block(fused, images)
        return fused if self.training else fused.clamp(0.0, 1.0)
