"""HCLFuse network (Li et al., NeurIPS 2025), spec ``hclfuse.md`` §2 and §4.

* :class:`VariationalBottleneckEncoder` (VBE): 5×5 stem, three scales of residual block →
  learnable channel mask M_s → stride-2 conv (features f1, f2, f3), and a sigmoid bottleneck
  giving the posterior q(Z|F) (global statistics as in the code, or per-pixel as in the paper).
* :class:`FusionDecoder`: expands the denoised latent and adds f3, f2, f1 through skips (and,
  optionally, the full-resolution stem features and further detail blocks through
  :class:`ivif.nn.GuidedResidual`).
* :class:`HCLFuseNet`: both, plus the conditional timestep UNet and the physics-guided DDIM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ivif.methods.hclfuse.config import ModelConfig, PhysicsConfig
from ivif.methods.hclfuse.physics import PhysicsGuidance, sobel_magnitude
from ivif.nn import GuidedResidual, NoiseSchedule, TimestepUNet, conv_stack, ddim_sample

__all__ = [
    "EncoderOutput",
    "FusionDecoder",
    "HCLFuseNet",
    "VariationalBottleneckEncoder",
]


class ResBlock(nn.Module):
    """3×3 conv, LeakyReLU, 3×3 conv, plus a 1×1-conv shortcut (always present)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class ChannelMask(nn.Module):
    """The learnable mask M_s of one scale: ``x ↦ sigmoid(w) ⊙ x`` with per-channel logits
    ``w`` of shape (1, C, 1, 1), initialised from N(0, 1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.logits = nn.Parameter(torch.randn(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits) * x


class UpBlock(nn.Module):
    """Transposed 3×3 conv, stride 2 (exactly ×2), then LeakyReLU."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x))


@dataclasses.dataclass
class EncoderOutput:
    """Skips ``(f1, f2, f3)`` at 1/2, 1/4, 1/8, and the posterior ``N(mu, exp(logvar))``.

    ``mu``/``logvar`` are ``(B, 2, 1, 1)`` for the ``statistics`` posterior and
    ``(B, 2, H/8, W/8)`` for ``spatial``; ``latent_size`` is ``(H/8, W/8)``. ``stem`` is the
    full-resolution stem output ``(B, C, H, W)``, the extra skip of ``full_resolution_skip``.
    """

    features: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    mu: torch.Tensor
    logvar: torch.Tensor
    latent_size: tuple[int, int]
    stem: torch.Tensor


class VariationalBottleneckEncoder(nn.Module):
    """VBE: ``(B, 2, H, W)`` (H, W multiples of 8) → skips and the latent posterior."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c, k, z = config.width, config.stem_kernel, config.latent_channels
        self.posterior = config.posterior
        self.stem = nn.Sequential(
            nn.Conv2d(2, c, k, padding=k // 2), nn.Conv2d(c, c, k, padding=k // 2)
        )
        widths = [(c, c), (c, 2 * c), (2 * c, 4 * c)]
        self.blocks = nn.ModuleList(ResBlock(a, b) for a, b in widths)
        self.masks = nn.ModuleList(ChannelMask(b) for _, b in widths)
        self.downs = nn.ModuleList(nn.Conv2d(b, b, 3, stride=2, padding=1) for _, b in widths)
        head_out = z if config.posterior == "statistics" else 2 * z
        self.bottleneck = conv_stack([4 * c, 2 * c, c, head_out])

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        if x.dim() != 4 or x.shape[1] != 2 or x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(
                f"expected (B, 2, H, W) with H, W multiples of 8, got {tuple(x.shape)}"
            )
        h = stem = self.stem(x)
        features = []
        for block, mask, down in zip(self.blocks, self.masks, self.downs, strict=True):
            h = down(mask(block(h)))
            features.append(h)
        head = self.bottleneck(h)
        if self.posterior == "statistics":
            z = torch.sigmoid(head)
            mu = z.mean(dim=(2, 3), keepdim=True)
            logvar = torch.log(z.var(dim=(2, 3), keepdim=True) + 1e-6)
        else:
            z_channels = head.shape[1] // 2
            mu = torch.sigmoid(head[:, :z_channels])
            logvar = head[:, z_channels:].clamp(-12.0, 4.0)
        return EncoderOutput(tuple(features), mu, logvar, tuple(h.shape[-2:]), stem)


class FusionDecoder(nn.Module):
    """Latent (B, 2, H/8, W/8) in [0, 1] plus skips → fused luminance (B, 1, H, W), unbounded."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c, z = config.width, config.latent_channels
        self.expand = conv_stack([z, c, 2 * c, 4 * c])
        self.blocks = nn.ModuleList(ResBlock(w, w) for w in (4 * c, 4 * c, 2 * c, 2 * c, c, c))
        self.ups = nn.ModuleList([UpBlock(4 * c, 2 * c), UpBlock(2 * c, c), UpBlock(c, c)])
        self.full_resolution = GuidedResidual(c, c, c) if config.full_resolution_skip else None
        self.details = nn.ModuleList(
            GuidedResidual(c, c, 2 * c, 2) for _ in range(config.detail_blocks)
        )
        self.head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(), nn.Conv2d(c, 1, 1))

    def forward(self, latent: torch.Tensor, encoded: EncoderOutput) -> torch.Tensor:
        h = self.expand(latent)
        for stage, skip in enumerate(reversed(encoded.features)):
            h = self.blocks[2 * stage](h) + skip
            h = self.ups[stage](self.blocks[2 * stage + 1](h))
        if self.full_resolution is not None:
            h = self.full_resolution(h, encoded.stem)
        for block in self.details:
            h = block(h, encoded.stem)
        return self.head(h)


class HCLFuseNet(nn.Module):
    """Encoder, conditional UNet, physics-guided DDIM and decoder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = VariationalBottleneckEncoder(config)
        self.decoder = FusionDecoder(config)
        self.unet = TimestepUNet(config.unet)
        self.schedule = NoiseSchedule.linear(
            config.train_timesteps, config.beta_start, config.beta_end
        )

    def sample_latent(
        self, posterior: EncoderOutput, generator: torch.Generator | None
    ) -> torch.Tensor:
        """``z_norm = 2·(μ + σ·ε) − 1`` with ε ~ N(0, I) of latent shape (spec §2.4)."""
        mu = posterior.mu
        shape = (mu.shape[0], mu.shape[1], *posterior.latent_size)
        eps = torch.randn(shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return 2.0 * (mu + torch.exp(0.5 * posterior.logvar) * eps) - 1.0

    def predict_noise(self, condition: torch.Tensor, x_t: torch.Tensor, t) -> torch.Tensor:
        """ε̂ = UNet([condition, x_t], t)."""
        return self.unet(torch.cat([condition, x_t], dim=1), t)

    def denoise(
        self,
        condition: torch.Tensor,
        guidance: PhysicsGuidance | None,
        steps: int,
        generator: torch.Generator | None,
        grad_steps: int | None = None,
    ) -> torch.Tensor:
        """Physics-guided η = 0 DDIM from x_T ~ N(0, I); returns the latent in [0, 1]."""
        x_T = torch.randn(
            condition.shape, generator=generator, dtype=condition.dtype, device=condition.device
        )
        x0 = ddim_sample(
            lambda x, t: self.predict_noise(condition, x, t),
            self.schedule,
            x_T,
            steps,
            guidance,
            grad_steps,
        )
        return ((x0 + 1.0) / 2.0).clamp(0.0, 1.0)

    def fuse(
        self,
        ir: torch.Tensor,
        vi: torch.Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        channel_order: str = "ir_vi",
        physics: PhysicsConfig | None = None,
    ) -> torch.Tensor:
        """Fused luminance of ``(B, 1, H, W)`` planes with H, W multiples of 8 (spec §6.1).

        ``channel_order="vi_ir"`` feeds the encoder ``[Y, IR]`` as the official test code does
        (it trains on ``[IR′, Y]``). ``physics`` overrides the configured guidance constants.
        """
        stacked = torch.cat([ir, vi] if channel_order == "ir_vi" else [vi, ir], dim=1)
        posterior = self.encoder(stacked)
        condition = self.sample_latent(posterior, generator)
        guidance = PhysicsGuidance(
            ir, vi, posterior.latent_size, physics or self.config.physics, self.schedule.num_steps
        )
        latent = self.denoise(condition, guidance, steps or self.config.sampling_steps, generator)
        return self.decoder(latent, posterior)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean of ``KL(N(μ, σ²) ‖ N(0, 1)) = −½(1 + log σ² − μ² − σ²)`` over all elements."""
    return -0.5 * torch.mean(1.0 + logvar - mu * mu - logvar.exp())


def _gradient_terms(
    fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``|∇F|`` and its target ``max(|∇X|, |∇Y|)``: Sobel magnitudes with zero padding and
    ``eps`` inside the root, as in the fusion loss (spec §5.1)."""

    def magnitude(x: torch.Tensor) -> torch.Tensor:
        return sobel_magnitude(x, eps, border="zeros")

    return magnitude(fused), torch.maximum(magnitude(ir), magnitude(vi))


def fusion_loss(
    fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, sobel_eps: float = 1e-8
) -> torch.Tensor:
    """``MSE(F, X′) + MSE(F, Y) + MSE(|∇F|, max(|∇X′|, |∇Y|))`` (spec §5.1)."""
    gradient, target = _gradient_terms(fused, ir, vi, sobel_eps)
    return F.mse_loss(fused, ir) + F.mse_loss(fused, vi) + F.mse_loss(gradient, target)


def max_fusion_loss(
    fused: torch.Tensor,
    ir: torch.Tensor,
    vi: torch.Tensor,
    gradient_weight: float = 1.0,
    sobel_eps: float = 1e-8,
) -> torch.Tensor:
    """``L1(F, max(X, Y)) + w·L1(|∇F|, max(|∇X|, |∇Y|))``: the element-wise-maximum intensity
    and gradient loss common in IVIF (e.g. SeAFusion); a deviation from the official loss
    (docs/methods/hclfuse.md)."""
    gradient, target = _gradient_terms(fused, ir, vi, sobel_eps)
    return F.l1_loss(fused, torch.maximum(ir, vi)) + gradient_weight * F.l1_loss(gradient, target)


def training_losses(
    net: HCLFuseNet,
    ir_aligned: torch.Tensor,
    vi: torch.Tensor,
    generator: torch.Generator,
    chain_steps: int,
    chain_grad_steps: int | None,
    fusion: Callable[[torch.Tensor], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """One training step's loss terms (spec §5.3) on ``(B, 1, h, w)`` patches.

    ``fusion`` maps the decoded image to its fusion loss. Returns ``noise`` (Smooth-L1 ε loss),
    ``kl`` and ``fusion`` (unweighted).
    """
    posterior = net.encoder(torch.cat([ir_aligned, vi], dim=1))
    z_norm = net.sample_latent(posterior, generator)
    batch = z_norm.shape[0]
    t = torch.randint(0, net.schedule.num_steps, (batch,), generator=generator)
    noise = torch.randn(z_norm.shape, generator=generator, dtype=z_norm.dtype)
    x_t = net.schedule.add_noise(z_norm, noise, t)
    noise_loss = F.smooth_l1_loss(net.predict_noise(z_norm, x_t, t.float()), noise)
    guidance = PhysicsGuidance(
        ir_aligned, vi, posterior.latent_size, net.config.physics, net.schedule.num_steps
    )
    latent = net.denoise(z_norm, guidance, chain_steps, generator, chain_grad_steps)
    fused = net.decoder(latent, posterior)
    return {
        "noise": noise_loss,
        "kl": kl_divergence(posterior.mu, posterior.logvar),
        "fusion": fusion(fused),
    }
