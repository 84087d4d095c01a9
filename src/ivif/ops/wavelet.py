"""One-level 2-D discrete wavelet transform with the discrete Meyer wavelet.

:func:`dwt2` follows MATLAB ``dwt2`` in its default ``'sym'`` mode: half-point symmetric
extension by ``L − 1`` samples, a full convolution kept where it is valid, then every second
sample starting at the second; each side becomes ``floor((n + L − 1) / 2)``. The filter bank is
built from a scaling filter as MATLAB's ``orthfilt`` does.

:func:`meyer_scaling_filter` computes the discrete Meyer ("dmey") scaling filter from the Meyer
scaling function φ (Daubechies, *Ten Lectures on Wavelets*, §4.2.1, with MATLAB's ``meyeraux``
polynomial ν(x) = x⁴(35 − 84x + 70x² − 20x³)): the filter of φ(x) = √2 Σ h[n] φ(2x − n) is
``h[n] = φ(n/2)/√2``, sampled on 61 taps and padded with a leading zero to MATLAB's length 62.
MATLAB ships a stored FIR table for ``dmey`` instead; the two are approximations of the same
wavelet and agree to about 1e-3 (documented in ``docs/metrics.md``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["dwt2", "meyer_scaling_filter", "orthogonal_filter_bank"]

MEYER_TAPS = 62


def _meyer_transition(x: np.ndarray) -> np.ndarray:
    """MATLAB ``meyeraux``: ν(x) = x⁴(35 − 84x + 70x² − 20x³) on [0, 1]."""
    return x**4 * (35.0 - 84.0 * x + 70.0 * x**2 - 20.0 * x**3)


def _meyer_phi(t: np.ndarray) -> np.ndarray:
    """The Meyer scaling function φ(t) = (1/π) ∫₀^{4π/3} φ̂(ω) cos(ωt) dω.

    φ̂ is 1 up to 2π/3 (integrated in closed form) and cos(π/2 · ν(3ω/2π − 1)) up to 4π/3
    (integrated by 200-point Gauss–Legendre quadrature; the integrand is smooth, so the error is
    at the float64 rounding level).
    """
    low, high = 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0
    nodes, weights = np.polynomial.legendre.leggauss(200)
    omega = (high - low) / 2.0 * nodes + (high + low) / 2.0
    weights = weights * (high - low) / 2.0
    envelope = np.cos(math.pi / 2.0 * _meyer_transition(3.0 * omega / (2.0 * math.pi) - 1.0))
    safe_t = np.where(t == 0, 1.0, t)
    plateau = np.where(t == 0, low / math.pi, np.sin(low * t) / (math.pi * safe_t))
    transition = (np.cos(np.outer(t, omega)) * (envelope * weights)).sum(axis=1) / math.pi
    return plateau + transition


def meyer_scaling_filter() -> torch.Tensor:
    """The discrete Meyer scaling filter, length 62, normalised to sum 1 (float64)."""
    offsets = (np.arange(MEYER_TAPS) - MEYER_TAPS // 2) / 2.0
    taps = _meyer_phi(offsets)
    taps[0] = 0.0
    return torch.from_numpy(taps / taps.sum())


def orthogonal_filter_bank(scaling: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decomposition low- and high-pass filters of an orthogonal wavelet (MATLAB ``orthfilt``).

    ``Lo_R = √2 · W / ΣW``, ``Hi_R = qmf(Lo_R)`` (reversed, every second sign flipped starting
    with the second), and the decomposition filters are their reversals.
    """
    lo_r = math.sqrt(2.0) * scaling / scaling.sum()
    hi_r = lo_r.flip(0).clone()
    hi_r[1::2] = -hi_r[1::2]
    return lo_r.flip(0), hi_r.flip(0)


def _analysis(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, dim: int):
    """Filter ``(N, H, W)`` along ``dim`` (-1 or -2) with both filters and downsample."""
    length = low.numel()
    x = x.movedim(dim, -1)
    lead, n = x.shape[:-1], x.shape[-1]
    rows = x.reshape(-1, 1, n)
    # Half-point symmetric extension (mirror including the edge sample), any length.
    index = torch.arange(-(length - 1), n + length - 1)
    period = torch.remainder(index, 2 * n)
    extended = rows[..., torch.where(period < n, period, 2 * n - 1 - period)]
    # conv1d correlates: a true convolution uses the reversed filter.
    weight = torch.stack((low.flip(0), high.flip(0))).unsqueeze(1).to(x)
    filtered = F.conv1d(extended, weight)[..., 1::2]  # valid part, every second from the 2nd
    out = filtered.reshape(*lead, 2, filtered.shape[-1]).movedim(-2, 0)
    return out[0].movedim(-1, dim), out[1].movedim(-1, dim)


def dwt2(
    x: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One-level 2-D DWT of ``(..., H, W)`` float64 data -> ``(cA, cH, cV, cD)``.

    Rows are filtered along the width first, then along the height (MATLAB ``dwt2``): ``cH`` is
    low-pass across columns and high-pass across rows, ``cV`` the reverse.
    """
    lead = x.shape[:-2]
    flat = x.reshape(-1, *x.shape[-2:])
    lo_w, hi_w = _analysis(flat, low, high, dim=-1)
    c_a, c_h = _analysis(lo_w, low, high, dim=-2)
    c_v, c_d = _analysis(hi_w, low, high, dim=-2)
    return tuple(c.reshape(*lead, *c.shape[-2:]) for c in (c_a, c_h, c_v, c_d))
