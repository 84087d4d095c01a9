"""Deterministic DDIM sampling (Song et al. 2021, η = 0) with an optional x̂₀ guidance hook."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ivif.nn.schedule import NoiseSchedule, ddim_timesteps

__all__ = ["ddim_sample", "ddim_step"]

#: ``predict_noise(x_t, t) -> ε̂`` with ``t`` an int timestep.
NoisePredictor = Callable[[torch.Tensor, int], torch.Tensor]
#: ``guide(x̂₀, t) -> x̂₀'``: edit the predicted clean sample before the update.
X0Guidance = Callable[[torch.Tensor, int], torch.Tensor]


def ddim_step(
    schedule: NoiseSchedule,
    x_t: torch.Tensor,
    noise: torch.Tensor,
    t: int,
    t_next: int,
    guide: X0Guidance | None = None,
) -> torch.Tensor:
    """One η = 0 DDIM update from ``t`` to ``t_next``.

    x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t; optional guidance x̂₀ ← guide(x̂₀, t); the noise is then
    re-derived from the (guided) x̂₀, ε' = (x_t − √ᾱ_t·x̂₀)/√(1−ᾱ_t), and
    x_{t_next} = √ᾱ_{t_next}·x̂₀ + √(1−ᾱ_{t_next})·ε'. Without guidance ε' = ε̂.
    """
    a_t = schedule.alpha_bar(t).item()
    a_next = schedule.alpha_bar(t_next).item()
    x0 = (x_t - (1.0 - a_t) ** 0.5 * noise) / a_t**0.5
    if guide is not None:
        x0 = guide(x0, t)
        noise = (x_t - a_t**0.5 * x0) / (1.0 - a_t) ** 0.5
    return a_next**0.5 * x0 + (1.0 - a_next) ** 0.5 * noise


def ddim_sample(
    predict_noise: NoisePredictor,
    schedule: NoiseSchedule,
    x_T: torch.Tensor,
    steps: int,
    guide: X0Guidance | None = None,
    grad_steps: int | None = None,
) -> torch.Tensor:
    """Run ``steps`` DDIM updates from the noise ``x_T`` and return x₀.

    ``grad_steps`` keeps autograd only on the last ``grad_steps`` updates (truncated
    back-propagation for training; ``None`` keeps it on all of them).
    """
    pairs = ddim_timesteps(schedule.num_steps, steps)
    first_tracked = 0 if grad_steps is None else max(0, len(pairs) - grad_steps)
    x = x_T
    for index, (t, t_next) in enumerate(pairs):
        with torch.set_grad_enabled(torch.is_grad_enabled() and index >= first_tracked):
            x = ddim_step(schedule, x, predict_noise(x, t), t, t_next, guide)
    return x
