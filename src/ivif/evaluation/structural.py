"""Structural similarity: SSIM in each toolbox's sense, MEF-SSIM and Wang's MS-SSIM
(``spec/metrics.md`` §2.12, §3.13, §3.14)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ivif.evaluation._common import correlate
from ivif.evaluation.information import TANG, TANG_SOURCE, VIFB_SOURCE
from ivif.evaluation.inputs import MetricInputs
from ivif.evaluation.kernels import plane_index, ssim_sums
from ivif.evaluation.registry import register
from ivif.ops import gaussian_kernel1d
from ivif.ops.filters import Border, pad

#: SSIM's Gaussian window: 11×11, σ = 1.5 (Wang et al. 2004; MATLAB ``ssim``).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _ssim_window() -> torch.Tensor:
    return gaussian_kernel1d(SSIM_WINDOW, SSIM_SIGMA, dtype=torch.float64, matlab_eps=True)


def ssim_means(
    x: torch.Tensor, y: torch.Tensor, c1: float, c2: float, border: Border
) -> tuple[torch.Tensor, torch.Tensor]:
    """Means of the SSIM and contrast–structure maps of ``(..., H, W)`` pairs (Wang et al., IEEE
    TIP 2004), ``cs = (2σ_xy + C2)/(σ_x² + σ_y² + C2)``, with Gaussian-weighted local statistics
    (11×11, σ = 1.5) over the planes extended by ``border``.

    ``x`` and ``y`` broadcast against each other; every pair of planes goes through the fused
    kernel :func:`ivif.evaluation.kernels.ssim_sums`, which filters each plane as it needs it.
    """
    radius = SSIM_WINDOW // 2

    def extended(t: torch.Tensor) -> torch.Tensor:
        h, w = t.shape[-2:]
        flat = pad(t.reshape(-1, 1, h, w), (radius,) * 4, border)
        return flat.reshape(*t.shape[:-2], *flat.shape[-2:])

    x, y = extended(x), extended(y)
    pairs, shape = plane_index(x, y)
    flat = (t.reshape(-1, *t.shape[-2:]) for t in (x, y))
    sums = ssim_sums(*flat, pairs, _ssim_window(), c1, c2)
    pixels = (x.shape[-2] - SSIM_WINDOW + 1) * (x.shape[-1] - SSIM_WINDOW + 1)
    ssim_mean, cs_mean = (sums[:, k].reshape(shape) / pixels for k in range(2))
    return ssim_mean, cs_mean


def _source_ssim(inputs: MetricInputs, c1: float, c2: float, border: Border) -> torch.Tensor:
    """Mean SSIM of each source against F ``(2, C)`` (a grey source broadcast over F's
    channels)."""
    distinct = inputs.source_cached("f64/distinct", lambda: inputs.distinct_sources("f64"))
    values = [
        ssim_means(distinct[rows], inputs.f, c1, c2, border)[0] for rows in inputs.source_rows()
    ]
    return torch.stack(values)


#: Stabilising constants for 8-bit data (K1 = 0.01, K2 = 0.03, L = 255).
C1_8BIT = (0.01 * 255.0) ** 2
C2_8BIT = (0.03 * 255.0) ** 2


@register(
    "SSIM",
    ("vifb",),
    higher_is_better=True,
    definition=(
        "SSIM(VI,F) + SSIM(IR,F) — a sum, up to 2 — with Wang's ssim_index (11×11 Gaussian, "
        "'valid' map, L = 255); per channel, averaged"
    ),
    source=VIFB_SOURCE + " (metricsSsim); Wang et al., IEEE TIP 2004",
    toolbox_name="Ssim",
    validated=True,
    min_size=SSIM_WINDOW,
)
def ssim_vifb(inputs: MetricInputs) -> float:
    """§2.12."""
    return float(_source_ssim(inputs, C1_8BIT, C2_8BIT, "valid").sum(0).mean())


@register(
    "SSIM",
    ("tang",),
    higher_is_better=True,
    definition=(
        "½·ssim(F,IR) + ½·ssim(F,VI) with MATLAB's ssim on 0–255 doubles: replicated borders, "
        "full map, and constants for DynamicRange 1 (C1 = 1e-4, C2 = 9e-4), as the toolbox calls it"
    ),
    source=TANG_SOURCE + " (analysis_Reference.m, 2023, MATLAB ssim); Wang et al., IEEE TIP 2004",
)
def ssim_tang(inputs: MetricInputs) -> float:
    """§3.13 (2023)."""
    return float(_source_ssim(inputs, 0.01**2, 0.03**2, "replicate").mean(0).mean())


# --- MEF-SSIM (Ma, Zeng & Wang 2015) -------------------------------------------------------------

MEF_K = 0.03
MEF_LEVEL_WEIGHTS = (0.0448, 0.2856, 0.3001)
_EPS = torch.finfo(torch.float64).eps


def downsample_mean2(x: torch.Tensor) -> torch.Tensor:
    """``imfilter(x, ones(2)/4, 'symmetric', 'same')`` then ``x(1:2:end, 1:2:end)``.

    Each output is the mean of a 2×2 block starting at an even pixel; the last row/column is
    repeated when the side is odd. ``(..., H, W) -> (..., ceil(H/2), ceil(W/2))``.
    """
    h, w = x.shape[-2:]
    padded = F.pad(x.reshape(-1, 1, h, w), (0, 1, 0, 1), mode="replicate")[:, 0]
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    rows_even, rows_odd = slice(0, 2 * h2, 2), slice(1, 2 * h2 + 1, 2)
    cols_even, cols_odd = slice(0, 2 * w2, 2), slice(1, 2 * w2 + 1, 2)
    total = (
        padded[:, rows_even, cols_even]
        + padded[:, rows_odd, cols_even]
        + padded[:, rows_even, cols_odd]
        + padded[:, rows_odd, cols_odd]
    )
    return (total / 4.0).reshape(*x.shape[:-2], h2, w2)


def mef_ssim_map(sources: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Single-scale MEF-SSIM quality map of a source stack ``(K, H, W)`` and ``fused (H, W)``.

    Per 11×11 patch (Ma et al., IEEE TIP 2015, with the constants of their reference code):
    each source patch x_k is split into its mean μ_k (box window), its contrast
    ``ed_k = ||x_k − μ_k|| + 0.001`` and structure; the desired patch has the largest contrast
    and the structure ``Σ w_k (x_k − μ_k)/ed_k`` (normalised), with weights
    ``(ed_k/11)^p + eps`` whose exponent ``p = tan(π/2 · R)`` (≤ 10) follows the structural
    consistency ``R = ||Σ_k (x_k − μ_k)|| / Σ_k ||x_k − μ_k||``. The map compares that desired
    patch with the fused patch through Gaussian-weighted statistics:
    ``(2σ_rf + C)/(σ_r² + σ_f² + C)``, C = (0.03·255)². Every patch quantity is expressed through
    filtered moment images, so no patch is ever materialised.
    """
    k = sources.shape[0]
    n = SSIM_WINDOW * SSIM_WINDOW
    box = torch.full((SSIM_WINDOW,), 1.0 / SSIM_WINDOW, dtype=torch.float64)
    gauss = _ssim_window()
    rows, cols = torch.triu_indices(k, k)
    pair_products = sources[rows] * sources[cols]  # (P, H, W), P = k(k+1)/2

    mu = correlate(sources, box)  # (K, h, w) box means
    box_pairs = correlate(pair_products, box)
    inner = torch.zeros(k, k, *mu.shape[-2:], dtype=torch.float64)  # <x̃_j, x̃_k>
    centred = n * (box_pairs - mu[rows] * mu[cols])
    inner[rows, cols] = centred
    inner[cols, rows] = centred
    norms = torch.sqrt(torch.diagonal(inner, dim1=0, dim2=1).clamp(min=0.0)).movedim(-1, 0)
    contrast = norms + 0.001

    consistency = (torch.sqrt(inner.sum(dim=(0, 1)).clamp(min=0.0)) + _EPS) / (norms.sum(0) + _EPS)
    consistency = torch.where(consistency > 1.0, 1.0 - _EPS, consistency)
    consistency = torch.where(consistency < 0.0, _EPS, consistency)
    power = torch.tan(math.pi / 2.0 * consistency).clamp(max=10.0)
    weights = (contrast / SSIM_WINDOW) ** power + _EPS
    weights = weights / weights.sum(0)

    coefficients = weights / contrast  # structure vector = Σ coefficient_k · x̃_k
    structure_sq = torch.einsum("jhw,khw,jkhw->hw", coefficients, coefficients, inner)
    structure_norm = torch.sqrt(structure_sq.clamp(min=0.0))
    scale = torch.where(
        structure_norm > 0,
        contrast.amax(0) / torch.where(structure_norm > 0, structure_norm, 1.0),
        0.0,
    )
    alpha = coefficients * scale  # desired patch r = Σ alpha_k (x_k − μ_k)

    g_sources = correlate(sources, gauss)
    g_pairs = correlate(pair_products, gauss)
    g_fused = correlate(fused, gauss)
    g_fused_sq = correlate(fused * fused, gauss)
    g_cross = correlate(sources * fused, gauss)
    second = torch.zeros_like(inner)  # Σ G (x_j − μ_j)(x_k − μ_k)
    centred_g = g_pairs - mu[cols] * g_sources[rows] - mu[rows] * g_sources[cols]
    centred_g = centred_g + mu[rows] * mu[cols]
    second[rows, cols] = centred_g
    second[cols, rows] = centred_g

    mean_r = (alpha * (g_sources - mu)).sum(0)
    var_r = torch.einsum("jhw,khw,jkhw->hw", alpha, alpha, second) - mean_r * mean_r
    var_f = g_fused_sq - g_fused * g_fused
    covariance = (alpha * (g_cross - mu * g_fused)).sum(0) - mean_r * g_fused
    c = (MEF_K * 255.0) ** 2
    return (2.0 * covariance + c) / (var_r + var_f + c)


def mef_ssim(sources: torch.Tensor, fused: torch.Tensor, levels: int = 3) -> float:
    """MEF-SSIM over ``levels`` scales: Π_l Q_l^{w_l} with the normalised weights
    (0.0448, 0.2856, 0.3001), each level downsampled by a 2×2 mean (``levels=1``: single scale).

    A negative per-scale score would make the fractional power undefined; it is taken as 0.
    """
    if levels == 1:
        return float(mef_ssim_map(sources, fused).mean())
    weights = torch.tensor(MEF_LEVEL_WEIGHTS[:levels], dtype=torch.float64)
    weights = weights / weights.sum()
    scores = []
    for level in range(levels):
        if level:
            sources, fused = downsample_mean2(sources), downsample_mean2(fused)
        scores.append(mef_ssim_map(sources, fused).mean())
    return float(torch.prod(torch.stack(scores).clamp(min=0.0) ** weights))


@register(
    "MEF_SSIM",
    TANG,
    higher_is_better=True,
    definition=(
        "3-scale MEF-SSIM of Ma et al. with IR and VI as the exposure stack — the toolbox's "
        "'MS_SSIM' (analysis_ms_ssim.m), which is not Wang's MS-SSIM"
    ),
    source=TANG_SOURCE + " (analysis_ms_ssim.m, mef_ssim.m); Ma, Zeng & Wang, IEEE TIP 2015",
    min_size=SSIM_WINDOW * 4,
)
def mef_ssim_metric(inputs: MetricInputs) -> float:
    """§3.14."""
    return mef_ssim(inputs.sources[:, 0], inputs.f[0], levels=3)


@register(
    "SSIM",
    ("tang2022",),
    higher_is_better=True,
    definition=(
        "what the 2022 toolbox reports as SSIM: single-scale MEF-SSIM of Ma et al. with IR and "
        "VI as the exposure stack"
    ),
    source=TANG_SOURCE + " (mef_ssim.m, commit 53f5542); Ma, Zeng & Wang, IEEE TIP 2015",
    min_size=SSIM_WINDOW,
)
def ssim_tang2022(inputs: MetricInputs) -> float:
    """§3.13 (2022)."""
    return mef_ssim(inputs.sources[:, 0], inputs.f[0], levels=1)


# --- MS-SSIM (Wang, Simoncelli & Bovik 2003) -----------------------------------------------------

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Wang's 5-scale MS-SSIM of ``(..., H, W)`` pairs on 0–255 data -> ``(...)``.

    Contrast–structure at scales 1–4, full SSIM at scale 5 ('valid' 11×11 Gaussian maps,
    L = 255), 2×2-mean downsampling between scales; negative per-scale terms count as 0.
    """
    terms = []
    for scale, weight in enumerate(MS_SSIM_WEIGHTS):
        if scale:
            x, y = downsample_mean2(x), downsample_mean2(y)
        ssim, cs = ssim_means(x, y, C1_8BIT, C2_8BIT, "valid")
        value = ssim if scale == len(MS_SSIM_WEIGHTS) - 1 else cs
        terms.append(value.clamp(min=0.0) ** weight)
    return torch.stack(terms).prod(0)


@register(
    "MS_SSIM",
    TANG,
    higher_is_better=True,
    definition=(
        "Wang's multi-scale SSIM (5 scales, L = 255), averaged over MS-SSIM(IR,F) and "
        "MS-SSIM(VI,F); not in the toolbox, whose 'MS_SSIM' is MEF_SSIM here"
    ),
    source="Wang, Simoncelli & Bovik, Asilomar 2003 (not in either toolbox)",
    min_size=SSIM_WINDOW * 16,
)
def ms_ssim_metric(inputs: MetricInputs) -> float:
    return float(ms_ssim(inputs.sources, inputs.f).mean())
