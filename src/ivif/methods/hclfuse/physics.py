"""The three parameter-free physics operators that guide HCLFuse's DDIM sampler (spec §4.4).

Applied to the predicted clean latent x̂₀ at every step, with the time weight
``w(t) = exp(−γ·t/T)`` so that guidance is weakest at high noise:

1. heat conduction   ``x ← x + λ_heat·Δx`` (5-point Laplacian, replicate border);
2. structure         ``x ← x + λ_stru·(G_max − |∇x|)·M_s``, ``M_s = [G_max > 1.5·mean G_max]``;
3. consistency       ``x ← (1 − λ_con)·x + λ_con·(0.6·X↓·M_heat + 0.4·Y↓·M_vis)`` (convex, the
   code) or ``x + λ_con·(…)`` (additive, the paper).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ivif.methods.hclfuse.config import PhysicsConfig
from ivif.ops import Border, filter2d, sobel

__all__ = ["PhysicsGuidance", "guidance_weights", "laplacian", "sobel_magnitude"]

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def guidance_weights(t: int, config: PhysicsConfig, num_timesteps: int = 1000):
    """``(λ_heat, λ_stru, λ_con)`` at timestep ``t``: ``λ_i⁰·exp(−γ·t/T)``."""
    w = math.exp(-config.gamma * t / num_timesteps)
    return config.lambda_heat * w, config.lambda_structure * w, config.lambda_consistency * w


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """5-point Laplacian ``N + S + E + W − 4·centre`` with replicate border, per channel."""
    return filter2d(x, _LAPLACIAN, "replicate")


def sobel_magnitude(
    x: torch.Tensor, eps: float = 1e-6, border: Border = "replicate"
) -> torch.Tensor:
    """``sqrt(g_x² + g_y² + eps)`` of the 3×3 Sobel derivatives, per channel (the guidance uses
    a replicate border, the fusion loss zeros)."""
    gx, gy = sobel(x, border)
    return torch.sqrt(gx * gx + gy * gy + eps)


def _image_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(1, 2, 3), keepdim=True)


class PhysicsGuidance:
    """Guidance for one batch: the source images at latent size and the fixed masks.

    ``ir`` and ``vi`` are ``(B, 1, H, W)`` (the OT-aligned IR in training, the raw IR at test);
    they are bilinearly resized to ``latent_size`` (no antialiasing). Mask thresholds use each
    image's own mean.
    """

    def __init__(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        latent_size: tuple[int, int],
        config: PhysicsConfig,
        num_timesteps: int = 1000,
    ) -> None:
        self.config = config
        self.num_timesteps = num_timesteps
        size = tuple(latent_size)
        self.ir = F.interpolate(ir, size=size, mode="bilinear", align_corners=False)
        self.vi = F.interpolate(vi, size=size, mode="bilinear", align_corners=False)
        self.max_gradient = torch.maximum(sobel_magnitude(self.ir), sobel_magnitude(self.vi))
        self.structure_mask = (
            self.max_gradient > config.structure_threshold * _image_mean(self.max_gradient)
        ).to(ir.dtype)
        heat = F.avg_pool2d(self.ir, 3, stride=1, padding=1, count_include_pad=True)
        heat_mask = (heat > _image_mean(heat)).to(ir.dtype)
        vi_detail = laplacian(self.vi).abs()
        vi_mask = (vi_detail > _image_mean(vi_detail)).to(ir.dtype)
        self.consistency_target = (
            config.ir_weight * self.ir * heat_mask + config.vi_weight * self.vi * vi_mask
        )

    def heat(self, x: torch.Tensor, weight: float) -> torch.Tensor:
        return x + weight * laplacian(x)

    def structure(self, x: torch.Tensor, weight: float) -> torch.Tensor:
        return x + weight * (self.max_gradient - sobel_magnitude(x)) * self.structure_mask

    def consistency(self, x: torch.Tensor, weight: float) -> torch.Tensor:
        if self.config.consistency == "convex":
            return (1.0 - weight) * x + weight * self.consistency_target
        return x + weight * self.consistency_target

    def __call__(self, x0: torch.Tensor, t: int) -> torch.Tensor:
        """Φ_con ∘ Φ_stru ∘ Φ_heat of the predicted clean latent at timestep ``t``."""
        heat, structure, consistency = guidance_weights(t, self.config, self.num_timesteps)
        return self.consistency(self.structure(self.heat(x0, heat), structure), consistency)
