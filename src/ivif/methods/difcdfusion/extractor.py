"""Diffusion feature extractor (spec §2): two SR3-style denoisers, one noisy pass at ``t_feat``.

SR3 conditions on a continuous noise level: for an integer timestep ``t`` (1-based, as in the
paper's code) γ is drawn uniformly between ``g[t] = √ᾱ_t`` and ``g[t−1]`` per sample, and
``x_t = γ·x₀ + √(1 − γ²)·ε``. The features are the output of each denoiser's last
full-resolution decoder block; nothing else of the UNet is used.
"""

from __future__ import annotations

import torch
from torch import nn

from ivif.methods.difcdfusion.config import ModelConfig
from ivif.nn import NoiseSchedule, TimestepUNet

__all__ = ["DiffusionExtractor", "diffusion_input", "noisy_input", "sample_gamma"]


def diffusion_input(image: torch.Tensor, input_range: str) -> torch.Tensor:
    """An image on [0, 1] as the denoisers see it: ``2x − 1`` ("-1..1") or ``255x`` ("0..255",
    the official tensors)."""
    return image * 2.0 - 1.0 if input_range == "-1..1" else image * 255.0


def sample_gamma(
    schedule: NoiseSchedule, t: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """γ ~ U(√ᾱ_t, √ᾱ_{t−1}) per sample for 1-based timesteps ``t`` (B,) (spec §2.1)."""
    low = schedule.alpha_bar(t - 1).sqrt()
    high = schedule.alpha_bar(t - 2).sqrt()
    u = torch.rand(t.shape, generator=generator)
    return low + (high - low) * u


def noisy_input(x0: torch.Tensor, gamma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``γ·x₀ + √(1 − γ²)·ε`` with γ broadcast over (C, H, W)."""
    g = gamma.to(x0).view(-1, 1, 1, 1)
    return g * x0 + (1.0 - g * g).clamp(min=0).sqrt() * noise


class DiffusionExtractor(nn.Module):
    """The infrared and visible denoisers; :meth:`forward` returns their features ``(F_I, F_V)``.

    With ``share_diffusion_weights`` the infrared branch runs the visible denoiser on the infrared
    image replicated to three channels (the official code's behaviour once its checkpoint paths
    are repaired). Gray visible input is replicated to three channels.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.ir_unet = TimestepUNet(config.ir_unet)
        self.vi_unet = TimestepUNet(config.vi_unet)
        self.schedule = NoiseSchedule.linear(config.timesteps, config.beta_start, config.beta_end)

    def _features(
        self, unet: TimestepUNet, image: torch.Tensor, t: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        channels = unet.config.in_channels
        if image.shape[1] != channels:
            image = image.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1)
        x0 = diffusion_input(image, self.config.diff_input_range)
        steps = torch.full((x0.shape[0],), t, dtype=torch.long)
        gamma = sample_gamma(self.schedule, steps, generator)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        return unet.decoder_features(noisy_input(x0, gamma, noise), gamma.to(x0))

    def forward(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        generator: torch.Generator | None = None,
        t: int | None = None,
        share_weights: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of ``ir`` (B, 1|3, H, W) and ``vi`` (B, 1|3, H, W) on [0, 1] at timestep
        ``t`` (default ``config.t_feat``); the noise comes from ``generator``, drawn for the
        infrared image first. ``share_weights`` overrides ``config.share_diffusion_weights``."""
        if ir.dim() != 4 or vi.dim() != 4 or ir.shape[1] not in (1, 3) or vi.shape[1] not in (1, 3):
            raise ValueError(
                f"expected (B, 1|3, H, W) images, got {tuple(ir.shape)} and {tuple(vi.shape)}"
            )
        if ir.shape[0] != vi.shape[0] or ir.shape[-2:] != vi.shape[-2:]:
            raise ValueError("infrared and visible batches differ in size")
        multiple = self.config.pad_multiple
        if ir.shape[-2] % multiple or ir.shape[-1] % multiple:
            raise ValueError(
                f"image sides must be multiples of {multiple}, got "
                f"{tuple(ir.shape[-2:])} (pad first)"
            )
        t = self.config.t_feat if t is None else t
        if not 1 <= t <= self.config.timesteps:
            raise ValueError(f"t must lie in [1, {self.config.timesteps}], got {t}")
        if vi.shape[1] == 1:
            vi = vi.expand(-1, 3, -1, -1)
        if share_weights is None:
            share_weights = self.config.share_diffusion_weights
        ir_unet = self.vi_unet if share_weights else self.ir_unet
        return self._features(ir_unet, ir, t, generator), self._features(
            self.vi_unet, vi, t, generator
        )
