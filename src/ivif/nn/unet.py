"""The timestep-conditioned UNet of DDPM/DDIM (Ho et al. 2020), with configurable widths.

Layout (and state-dict names) follow the DDPM reference UNet: a sinusoidal time embedding and a
two-layer MLP (``temb.dense``), ``conv_in``, per level ``down[i].block[j]`` / ``down[i].attn[j]`` /
``down[i].downsample``, a middle ``mid.block_1`` / ``mid.attn_1`` / ``mid.block_2``, per level
``up[i].block[j]`` (skip concatenation) / ``up[i].attn[j]`` / ``up[i].upsample``, then
``norm_out`` and ``conv_out``. Skips that do not match the current size (odd inputs) are
nearest-resized, as is the output.

Two additions for SR3-style denoisers (Saharia et al. 2021; Dif-CDFusion spec §2.2):
``conditioning="noise_level"`` embeds a continuous noise level γ = √ᾱ in [0, 1] instead of an
integer timestep (:func:`noise_level_embedding`), and :meth:`TimestepUNet.decoder_features`
returns the output of the last full-resolution decoder block (the feature map diffusion-feature
fusion methods take) without running the output head.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TimestepUNet", "UNetConfig", "noise_level_embedding", "timestep_embedding"]


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Widths and topology of :class:`TimestepUNet`."""

    in_channels: int = 4
    out_channels: int = 2
    channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 3, 4)
    num_res_blocks: int = 2
    #: Level indices that get self-attention after each res block (DDPM: the 16×16 level).
    attention_levels: tuple[int, ...] = (2,)
    mid_attention: bool = True
    norm_groups: int = 32
    dropout: float = 0.0
    #: "timestep": integer t, DDPM embedding MLP (C → 4C → 4C, swish before each block's
    #: projection); "noise_level": continuous γ = √ᾱ, SR3's MLP (C → 4C → C, projected as is).
    conditioning: Literal["timestep", "noise_level"] = "timestep"
    #: Biases on the attention q/k/v projections (DDPM: yes; SR3: no).
    attention_bias: bool = True

    def __post_init__(self) -> None:
        if self.channels < 1 or self.num_res_blocks < 1 or not self.channel_mult:
            raise ValueError("channels, num_res_blocks and channel_mult must be positive")
        widths = {self.channels * m for m in (1, *self.channel_mult)}
        bad = sorted(w for w in widths if w % self.norm_groups)
        if bad:
            raise ValueError(f"widths {bad} are not divisible by norm_groups={self.norm_groups}")
        if any(not 0 <= level < len(self.channel_mult) for level in self.attention_levels):
            raise ValueError(f"attention_levels {self.attention_levels} outside the levels")
        if self.conditioning not in ("timestep", "noise_level"):
            raise ValueError(f"unknown conditioning {self.conditioning!r}")

    @property
    def time_channels(self) -> int:
        """Width of the embedding each res block receives."""
        return self.channels if self.conditioning == "noise_level" else 4 * self.channels


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (unnormalised) timesteps ``t`` (B,): ``[sin(t·f_k), cos(t·f_k)]``
    with ``f_k = exp(−k·ln(10⁴)/(dim/2 − 1))``, ``k = 0 … dim/2 − 1`` (zero-padded if odd)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half, dtype=torch.float32))
    angles = t.float()[:, None] * freqs.to(t.device)[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(emb, (0, dim % 2))


def noise_level_embedding(gamma: torch.Tensor, dim: int) -> torch.Tensor:
    """SR3's embedding of a continuous noise level γ (B,): ``[sin(γ·ω_k), cos(γ·ω_k)]`` with
    ``ω_k = 10^(−4k/(dim/2))``, ``k = 0 … dim/2 − 1`` (no rescaling of γ; zero-padded if odd)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) / half * torch.arange(half, dtype=torch.float32))
    angles = gamma.float()[:, None] * freqs.to(gamma.device)[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """GroupNorm–swish–conv, + time projection, GroupNorm–swish–dropout–conv, + shortcut."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        time_channels: int,
        groups: int,
        dropout: float,
        activate_embedding: bool = True,
    ):
        super().__init__()
        self.activate_embedding = activate_embedding
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(time_channels, c_out)
        self.norm2 = _norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb) if self.activate_embedding else temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        shortcut = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return shortcut + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels, added as a residual."""

    def __init__(self, channels: int, groups: int, bias: bool = True):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1, bias=bias)
        self.k = nn.Conv2d(channels, channels, 1, bias=bias)
        self.v = nn.Conv2d(channels, channels, 1, bias=bias)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        # (B, 1 head, N, C): the 4-D form lets PyTorch use its blockwise (flash) CPU kernel,
        # which never materialises the N×N matrix (2.3 GB at N = 16,384 in the 3-D form).
        q = self.q(y).reshape(b, 1, c, h * w).transpose(2, 3)
        k = self.k(y).reshape(b, 1, c, h * w).transpose(2, 3)
        v = self.v(y).reshape(b, 1, c, h * w).transpose(2, 3)
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj_out(out.transpose(2, 3).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Zero-pad right/bottom by one, then a stride-2 3×3 conv: ``n ↦ ⌊(n − 2)/2⌋ + 1``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest ×2, then a 3×3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """The blocks of one resolution (a container, so state-dict names read ``down.0.block.1``)."""

    def __init__(self, blocks: list[nn.Module], attns: list[nn.Module]):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)


class _Middle(nn.Module):
    def __init__(self, channels: int, cfg: UNetConfig):
        super().__init__()
        args = (cfg.time_channels, cfg.norm_groups, cfg.dropout, cfg.conditioning == "timestep")
        self.block_1 = ResnetBlock(channels, channels, *args)
        self.attn_1 = (
            AttnBlock(channels, cfg.norm_groups, cfg.attention_bias)
            if cfg.mid_attention
            else nn.Identity()
        )
        self.block_2 = ResnetBlock(channels, channels, *args)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(h, temb)), temb)


class TimestepUNet(nn.Module):
    """ε-prediction UNet ``(x (B, in, h, w), t (B,)) -> (B, out, h, w)``."""

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        cfg = config or UNetConfig()
        self.config = cfg
        ch, tch, groups = cfg.channels, cfg.time_channels, cfg.norm_groups
        block_args = (tch, groups, cfg.dropout, cfg.conditioning == "timestep")
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, 4 * ch), nn.Linear(4 * ch, tch)])
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)

        levels = len(cfg.channel_mult)
        self.down = nn.ModuleList()
        skip_widths = [ch]
        width = ch
        for level, mult in enumerate(cfg.channel_mult):
            blocks, attns = [], []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResnetBlock(width, ch * mult, *block_args))
                width = ch * mult
                if level in cfg.attention_levels:
                    attns.append(AttnBlock(width, groups, cfg.attention_bias))
                skip_widths.append(width)
            stage = _Level(blocks, attns)
            if level != levels - 1:
                stage.downsample = Downsample(width)
                skip_widths.append(width)
            self.down.append(stage)

        self.mid = _Middle(width, cfg)

        up_stages: list[nn.Module] = []
        for level in reversed(range(levels)):
            blocks, attns = [], []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(
                    ResnetBlock(
                        width + skip_widths.pop(), ch * cfg.channel_mult[level], *block_args
                    )
                )
                width = ch * cfg.channel_mult[level]
                if level in cfg.attention_levels:
                    attns.append(AttnBlock(width, groups, cfg.attention_bias))
            stage = _Level(blocks, attns)
            if level != 0:
                stage.upsample = Upsample(width)
            up_stages.insert(0, stage)
        self.up = nn.ModuleList(up_stages)
        self.norm_out = _norm(width, groups)
        self.conv_out = nn.Conv2d(width, cfg.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise for ``x`` at timestep (or noise level) ``t`` (scalar or (B,))."""
        h = self.conv_out(F.silu(self.norm_out(self.decoder_features(x, t))))
        if h.shape[-2:] != x.shape[-2:]:
            h = F.interpolate(h, size=x.shape[-2:], mode="nearest")
        return h

    def decoder_features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Output of the last decoder block (after its attention, if any): ``(B, channels ·
        channel_mult[0], h, w)`` at the input resolution (for sizes divisible by the
        down-sampling factor)."""
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected (B, {self.config.in_channels}, H, W) input, got {tuple(x.shape)}"
            )
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(x.shape[0])
        embed = (
            noise_level_embedding
            if self.config.conditioning == "noise_level"
            else timestep_embedding
        )
        dense = self.temb.dense
        temb = dense[1](F.silu(dense[0](embed(t, self.config.channels))))

        skips = [self.conv_in(x)]
        for stage in self.down:
            for j, block in enumerate(stage.block):
                h = block(skips[-1], temb)
                skips.append(stage.attn[j](h) if len(stage.attn) else h)
            if hasattr(stage, "downsample"):
                skips.append(stage.downsample(skips[-1]))

        h = self.mid(skips[-1], temb)
        for stage in reversed(self.up):
            for j, block in enumerate(stage.block):
                skip = skips.pop()
                if skip.shape[-2:] != h.shape[-2:]:
                    skip = F.interpolate(skip, size=h.shape[-2:], mode="nearest")
                h = block(torch.cat([h, skip], dim=1), temb)
                if len(stage.attn):
                    h = stage.attn[j](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return h
