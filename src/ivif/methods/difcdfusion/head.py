"""Merge, ×2 up-scale and reconstruction head (spec §3.6 and §4), and the whole fusion network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ivif.methods.difcdfusion.cdaf import CommonDifferentialFusion
from ivif.methods.difcdfusion.config import ModelConfig
from ivif.methods.difcdfusion.extractor import diffusion_input

__all__ = ["FusionNet", "HeadResBlock", "ReconstructionHead", "UpScale"]


class UpScale(nn.Module):
    """``u = Conv(C₂ + D) + C₂``; Conv C→2C; PixelShuffle(2); ReLU; Conv → C/2 × 2H × 2W."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.merge = nn.Conv2d(channels, channels, 3, padding=1)
        self.expand = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        self.refine = nn.Conv2d(channels // 2, channels // 2, 3, padding=1)

    def forward(self, common: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
        u = self.merge(common + difference) + common
        return self.refine(F.relu(F.pixel_shuffle(self.expand(u), 2)))


class HeadResBlock(nn.Module):
    """``y = Conv₂(ReLU(Conv₁ x)) + Conv₁ x``: the shortcut is the first conv's output (§4)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        return self.conv2(F.relu(y)) + y


class ReconstructionHead(nn.Module):
    """Shared ResBlock twice at 2H×2W, max-pool 2×2, ResBlock C/2→C/4, ResBlock C/4→3."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.shared = HeadResBlock(half, half)
        self.reduce = HeadResBlock(half, quarter)
        self.out = HeadResBlock(quarter, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.shared(self.shared(x)), 2)
        return self.out(self.reduce(x))


class FusionNet(nn.Module):
    """Diffusion features ``(F_I, F_V)`` → RGB image (B, 3, H, W) on [0, 1] (unclamped in
    training mode, clamped in eval mode).

    With ``config.input_skip`` the source images ``ir`` (B, 1|3, H, W) and ``vi`` (B, 3, H, W)
    on [0, 1] are required too: each, as 3 channels in the denoisers' input range, is
    concatenated to its own feature map before the shared projection to C.
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
        self.head = ReconstructionHead(c)
        self.reset_parameters()

    def reset_parameters(self, scheme: str = "normal") -> None:
        """``"normal"`` (spec §4): conv/linear weights N(0, 0.02), biases 0; BN weight
        N(1, 0.02), bias 0. ``"pytorch"``: PyTorch's default (fan-in scaled) conv/linear init."""
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

    def _with_image(self, features: torch.Tensor, image: torch.Tensor | None) -> torch.Tensor:
        if image is None:
            raise ValueError("input_skip: the fusion network needs the source images too")
        if image.dim() != 4 or image.shape[1] not in (1, 3):
            raise ValueError(f"expected a (B, 1|3, H, W) image, got {tuple(image.shape)}")
        if image.shape[0] != features.shape[0] or image.shape[-2:] != features.shape[-2:]:
            raise ValueError(
                f"image {tuple(image.shape)} does not match features {tuple(features.shape)}"
            )
        image = diffusion_input(image.expand(-1, 3, -1, -1), self.config.diff_input_range)
        return torch.cat([features, image.to(features)], dim=1)

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
        if self.config.input_skip:
            a, b = self._with_image(a, ir), self._with_image(b, vi)
        if self.config.query_modality == "vis":
            a, b = b, a
        common, difference = self.cdaf(self.project(a), self.project(b))
        fused = self.head(self.upscale(common, difference))
        return fused if self.training else fused.clamp(0.0, 1.0)
