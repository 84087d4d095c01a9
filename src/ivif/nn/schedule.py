"""Diffusion noise schedules (DDPM, Ho et al. 2020): β_t, ᾱ_t and the DDIM time grid."""

from __future__ import annotations

import torch

__all__ = ["NoiseSchedule", "ddim_timesteps"]


class NoiseSchedule:
    """A discrete variance schedule over ``T`` steps, indexed ``0 … T-1``.

    ``alpha_bar(t)`` accepts ``t = -1`` and returns 1 there (the "step before the first", as the
    DDIM sampler's final step needs).
    """

    def __init__(self, betas: torch.Tensor) -> None:
        if betas.dim() != 1 or betas.numel() < 2:
            raise ValueError(f"betas must be a 1-D tensor of length >= 2, got {tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta must lie in (0, 1)")
        self.betas = betas.to(torch.float32)
        # ᾱ with a leading 1 for t = -1, computed in float32 as the reference code does.
        self._alpha_bar = torch.cat([torch.ones(1), torch.cumprod(1.0 - self.betas, dim=0)])

    @classmethod
    def linear(cls, steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        """Linear β from ``beta_start`` to ``beta_end`` (float64 linspace, then float32)."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        return cls(torch.linspace(beta_start, beta_end, steps, dtype=torch.float64))

    @property
    def num_steps(self) -> int:
        return self.betas.numel()

    def alpha_bar(self, t: torch.Tensor | int) -> torch.Tensor:
        """ᾱ_t for integer ``t`` in ``-1 … T-1`` (a tensor of the same shape as ``t``)."""
        t = torch.as_tensor(t, dtype=torch.long)
        if bool(((t < -1) | (t >= self.num_steps)).any()):
            raise ValueError(f"timesteps must lie in [-1, {self.num_steps - 1}]")
        return self._alpha_bar[t + 1]

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward process ``x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε`` for a batch of timesteps ``t`` (B,)."""
        a = self.alpha_bar(t).to(x0).view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise


def ddim_timesteps(num_train_steps: int, num_sample_steps: int) -> list[tuple[int, int]]:
    """The DDIM (t, t_next) pairs with uniform stride, from high to low noise.

    Stride ``T // S``: visits ``(S-1)·stride, …, stride, 0`` and ends at ``t_next = -1``
    (e.g. T = 1000, S = 20: 950 → 900 → … → 0 → -1).
    """
    if not 1 <= num_sample_steps <= num_train_steps:
        raise ValueError(
            f"sampling steps must lie in [1, {num_train_steps}], got {num_sample_steps}"
        )
    stride = num_train_steps // num_sample_steps
    grid = list(range(0, num_train_steps, stride))
    return list(zip(reversed(grid), reversed([-1, *grid[:-1]]), strict=True))
