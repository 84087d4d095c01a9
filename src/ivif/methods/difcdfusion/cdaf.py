"""Common–differential alternate fusion (spec §3): factorised cross-attention in two modes.

For queries Q (from ``q_in``) and keys/values K, V (from ``kv_in``), per head, the read-out is
``U = Q·(softmax_N(K)ᵀ·V)``: the softmax runs over the N tokens of each key channel, so the
cost is linear in N and the block runs at full feature resolution. "Common" mode keeps U,
"differential" mode keeps ``V − U``. No 1/√d scaling and no LayerNorm before the attention
(as in the official code); a LayerNorm + MLP residual follows.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CommonDifferentialFusion", "CrossAttention", "PatchEmbed", "factorised_attention"]

Mode = Literal["common", "differential"]


def factorised_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Q·(softmax_N(K)ᵀ·V)`` for (B, heads, N, d) tensors (softmax over the token axis)."""
    context = torch.softmax(k, dim=-2).transpose(-2, -1) @ v  # (B, heads, d, d)
    return q @ context


class PatchEmbed(nn.Module):
    """``Hardswish(BN(Conv1×1(DepthwiseConv3×3(x))))`` without conv biases (spec §3.3)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(self.norm(self.pointwise(self.depthwise(x))))


class CrossAttention(nn.Module):
    """One MHCA block on token maps (B, N, C): attention residual, then LayerNorm–MLP residual."""

    def __init__(self, channels: int, heads: int, mlp_ratio: int, mode: Mode) -> None:
        super().__init__()
        if mode not in ("common", "differential"):
            raise ValueError(f"mode must be 'common' or 'differential', got {mode!r}")
        self.mode = mode
        self.heads = heads
        self.q = nn.Linear(channels, channels)
        self.k = nn.Linear(channels, channels)
        self.v = nn.Linear(channels, channels)
        self.proj = nn.Linear(channels, channels)
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(channels, mlp_ratio * channels),
            nn.GELU(),
            nn.Linear(mlp_ratio * channels, channels),
        )

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, q_in: torch.Tensor, kv_in: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(q_in)), self._split(self.k(kv_in)), self._split(self.v(kv_in))
        read_out = factorised_attention(q, k, v)
        z = read_out if self.mode == "common" else v - read_out
        z = z.transpose(1, 2).reshape(q_in.shape)
        x = q_in + self.proj(z)
        return x + self.mlp(self.norm(x))


def _tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


def _map(tokens: torch.Tensor, size: torch.Size) -> torch.Tensor:
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *size)


class CommonDifferentialFusion(nn.Module):
    """Patch embeddings and the alternating chain of spec §3.5 → ``(common, difference)`` maps.

    As coded (``symmetric=False``): D = diff(P_A ← P_B), C₁ = common(D ← P_A),
    C₂ = common(C₁ ← P_B); returns (C₂, D). The figure's two-stream reading
    (``symmetric=True``): D_A = diff(P_A ← P_B), D_B = diff(P_B ← P_A), C_A = common(D_A ← P_B),
    C_B = common(D_B ← P_A); returns (C_A + C_B, D_A + D_B).
    """

    def __init__(self, channels: int, heads: int, mlp_ratio: int, symmetric: bool) -> None:
        super().__init__()
        self.symmetric = symmetric
        self.embed_a = PatchEmbed(channels)
        self.embed_b = PatchEmbed(channels)
        blocks = ("differential", "common", "common")
        if symmetric:
            blocks = ("differential", "differential", "common", "common")
        self.blocks = nn.ModuleList(
            CrossAttention(channels, heads, mlp_ratio, mode) for mode in blocks
        )

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = a.shape[-2:]
        pa, pb = _tokens(self.embed_a(a)), _tokens(self.embed_b(b))
        if self.symmetric:
            diff_a, diff_b, common_a, common_b = self.blocks
            da, db = diff_a(pa, pb), diff_b(pb, pa)
            common, difference = common_a(da, pb) + common_b(db, pa), da + db
        else:
            diff, common_own, common_other = self.blocks
            difference = diff(pa, pb)
            common = common_other(common_own(difference, pa), pb)
        return _map(common, size), _map(difference, size)
