"""Metrics built on models of human vision: VIF, Qcb, Qcv.

``spec/metrics.md`` §2.9, §2.10, §3.8.
"""

from __future__ import annotations

import math

import torch

from ivif.evaluation._common import correlate, gradient_components, safe_ratio
from ivif.evaluation.information import TANG_SOURCE, VIFB_SOURCE
from ivif.evaluation.inputs import MetricInputs
from ivif.evaluation.registry import register
from ivif.ops import gaussian_kernel1d
from ivif.ops.matlab import (
    block_sum,
    filter_frequency,
    freqspace_radius,
    round_half_away,
)

# --- VIF (Sheikh & Bovik 2006, pixel-domain multi-scale version) --------------------------------

#: VIF's noise variance σ_n² and its stabilising threshold.
VIF_NOISE = 2.0
VIF_EPS = 1e-10
VIF_SCALES = 4
#: Smallest image side VIF accepts: every scale's 'valid' window must still fit.
VIF_MIN_SIZE = 41


def _vif_window(scale: int) -> torch.Tensor:
    """1-D factor of ``fspecial('gaussian', N, N/5)`` with ``N = 2^(5-scale) + 1`` (17, 9, 5, 3)."""
    size = 2 ** (VIF_SCALES + 1 - scale) + 1
    return gaussian_kernel1d(size, size / 5.0, dtype=torch.float64, matlab_eps=True)


def vif_terms(
    reference: torch.Tensor, distorted: torch.Tensor, saturate_first_scale: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Numerator and denominator sums of pixel-domain VIF over the four scales (§3.8).

    ``reference`` is ``(N, H, W)`` (one plane per reference) and ``distorted`` ``(H, W)``; both
    hold 0–255 values. ``saturate_first_scale`` reproduces the 2022 toolbox, which formed the
    scale-1 products in uint8 (each capped at 255). Returns ``(num, den)`` of shape ``(N,)``.
    All local statistics of a scale are filtered in one batch.
    """
    n = reference.shape[0]
    num = torch.zeros(n, dtype=torch.float64)
    den = torch.zeros(n, dtype=torch.float64)
    ref, dist = reference, distorted.unsqueeze(0)
    for scale in range(1, VIF_SCALES + 1):
        window = _vif_window(scale)
        if scale > 1:
            ref, dist = correlate(torch.cat((ref, dist)), window, stride=2).split((n, 1))
        products = torch.cat((ref * ref, dist * dist, ref * dist))
        if saturate_first_scale and scale == 1:
            products.clamp_(max=255.0)
        stats = correlate(torch.cat((ref, dist, products)), window)
        mu_ref, mu_dist, ref_sq, dist_sq, cross = stats.split((n, 1, n, 1, n))
        var_ref = (ref_sq - mu_ref * mu_ref).clamp_(min=0.0)
        var_dist = (dist_sq - mu_dist * mu_dist).clamp_(min=0.0)
        covariance = cross - mu_ref * mu_dist
        gain = covariance / (var_ref + VIF_EPS)
        # The reference code's special cases (flat reference: g = 0, s_v² = σ_d²; flat
        # distorted: g = 0, s_v² = 0; g < 0: g = 0, s_v² = σ_d²; then s_v² ≥ eps) collapse to:
        # keep g where all three tests pass, else g = 0 and s_v² = σ_d² (< eps when flat).
        keep = (var_ref >= VIF_EPS) & (var_dist >= VIF_EPS) & (gain >= 0)
        gain = gain * keep
        noise = (var_dist - gain * covariance).clamp_(min=VIF_EPS)
        information = gain.square_().mul_(var_ref).div_(noise.add_(VIF_NOISE))
        num += information.add_(1.0).log10_().sum(dim=(-2, -1))
        var_ref = var_ref * (var_ref >= VIF_EPS)
        den += var_ref.div_(VIF_NOISE).add_(1.0).log10_().sum(dim=(-2, -1))
    return num, den


def vif(sources: torch.Tensor, fused: torch.Tensor, saturate_first_scale: bool = False) -> float:
    """VIF = vifp(A→F) + vifp(B→F) on grey planes ``(2, H, W)`` and ``(H, W)``.

    A reference without any variance at any scale (a constant source) has nothing to preserve;
    its term is 0 rather than MATLAB's 0/0.
    """
    num, den = vif_terms(sources, fused, saturate_first_scale)
    return float(safe_ratio(num, den, 0.0).sum())


@register(
    "VIF",
    ("tang",),
    higher_is_better=True,
    definition=(
        "visual information fidelity, pixel-domain 4-scale vifp(IR→F) + vifp(VI→F) (σ_n² = 2)"
    ),
    source=TANG_SOURCE + " (vifp_mscale.m, 2023); Sheikh & Bovik, IEEE TIP 2006",
    min_size=VIF_MIN_SIZE,
)
def vif_tang(inputs: MetricInputs) -> float:
    return vif(inputs.sources[:, 0], inputs.f[0])


@register(
    "VIF",
    ("tang2022",),
    higher_is_better=True,
    definition=(
        "vifp(IR→F) + vifp(VI→F) as the 2022 toolbox computed it: scale-1 products formed in "
        "uint8 and capped at 255 (a bug, 24–51 % effect, kept to reproduce published tables)"
    ),
    source=TANG_SOURCE + " (vifp_mscale.m on uint8 data, commit 53f5542)",
    validated=True,
    min_size=VIF_MIN_SIZE,
)
def vif_tang2022(inputs: MetricInputs) -> float:
    return vif(inputs.sources[:, 0], inputs.f[0], saturate_first_scale=True)


# --- Shared preprocessing of Qcb and Qcv ---------------------------------------------------------


def normalize1(x: torch.Tensor) -> torch.Tensor:
    """VIFB's ``normalize1``: per-plane min–max stretch to 0–255, rounded half away (§2.9).

    A constant plane becomes 0 (the toolbox leaves an all-zero image as it is).
    """
    low = x.amin(dim=(-2, -1), keepdim=True)
    span = x.amax(dim=(-2, -1), keepdim=True) - low
    stretched = torch.where(span > 0, (x - low) / torch.where(span > 0, span, 1.0), 0.0)
    return round_half_away(stretched * 255.0)


# --- Qcb (Chen & Blum 2009) ----------------------------------------------------------------------

#: Qcb's contrast constants k, h, p, q, Z and the two Gaussian widths.
QCB_CONTRAST = (1.0, 1.0, 3.0, 2.0, 1e-4)
QCB_SIGMAS = (2.0, 4.0)
QCB_WINDOW = 31


def _qcb_csf(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Qcb's contrast-sensitivity filter S(r) = e^{−(r/15.387)²} − 0.7622·e^{−(r/1.3456)²}."""
    r = freqspace_radius(height, width, width / 30.0, height / 30.0, like)
    return torch.exp(-((r / 15.3870) ** 2)) - 0.7622 * torch.exp(-((r / 1.3456) ** 2))


def _unnormalised_gaussian(sigma: float) -> torch.Tensor:
    """1-D factor of the 31×31 Gaussian exp(−(x²+y²)/2σ²)/(2πσ²) (peak 1/(2πσ²), §2.9)."""
    half = QCB_WINDOW // 2
    x = torch.arange(-half, half + 1, dtype=torch.float64)
    return torch.exp(-(x * x) / (2.0 * sigma * sigma)) / (math.sqrt(2.0 * math.pi) * sigma)


def qcb(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Chen–Blum Q_cb of each channel, planes ``(C, H, W)`` -> ``(C,)`` (§2.9).

    Undefined ratios get their limits: a neighbourhood that filters to exactly 0 has contrast 0,
    equal contrasts preserve fully (Q = 1, including 0/0), and where both sources have zero
    contrast each gets saliency ½.
    """
    k, h, p, q, z = QCB_CONTRAST
    images = normalize1(torch.stack((a, b, f)))
    filtered = filter_frequency(images, _qcb_csf(*images.shape[-2:], like=images))
    narrow, wide = (_unnormalised_gaussian(s) for s in QCB_SIGMAS)
    blurred_narrow = correlate(filtered, narrow, border="zeros")
    blurred_wide = correlate(filtered, wide, border="zeros")
    # A neighbourhood that is exactly 0 (a constant image) has no contrast.
    ratio = safe_ratio(blurred_narrow, blurred_wide, 1.0)
    contrast = (ratio - 1.0).abs()
    masked = k * contrast**p / (h * contrast**q + z)
    c_sources, c_fused = masked[:2], masked[2:]
    low = torch.minimum(c_sources, c_fused)
    high = torch.maximum(c_sources, c_fused)
    preservation = torch.where(low == high, 1.0, low / torch.where(high > 0, high, 1.0))
    saliency_sq = c_sources * c_sources
    total = saliency_sq.sum(0)
    weights = torch.where(total > 0, saliency_sq / torch.where(total > 0, total, 1.0), 0.5)
    return (weights * preservation).sum(0).mean(dim=(-2, -1))


@register(
    "Qcb",
    ("vifb",),
    higher_is_better=True,
    definition=(
        "Chen–Blum perceptual metric: CSF-filtered local contrast preservation weighted by "
        "source saliency; per channel, averaged"
    ),
    source=VIFB_SOURCE + " (metricsQcb); Chen & Blum, Image Vis. Comput. 2009",
    toolbox_name="Qcb",
    validated=True,
)
def qcb_metric(inputs: MetricInputs) -> float:
    return float(qcb(inputs.a, inputs.b, inputs.f).mean())


# --- Qcv (Chen & Varshney 2007) ------------------------------------------------------------------

QCV_ALPHA = 5.0
QCV_BLOCK = 16


def _qcv_csf(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Mannos–Sakrison CSF θ(r) = 2.6·(0.0192 + 0.144r)·e^{−(0.144r)^1.1} (§2.10)."""
    r = freqspace_radius(height, width, width / 8.0, height / 8.0, like)
    return 2.6 * (0.0192 + 0.144 * r) * torch.exp(-((0.144 * r) ** 1.1))


def qcv(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Chen–Varshney Q_cv of each channel, planes ``(C, H, W)`` -> ``(C,)`` (§2.10).

    When no block of either source has any edge (all saliencies 0), the blocks are weighted
    equally instead of 0/0.
    """
    images = normalize1(torch.stack((a, b, f)))
    sources, fused = images[:2], images[2]
    gx, gy = gradient_components(sources, "zeros")
    strength = torch.sqrt(gx * gx + gy * gy)
    saliency = block_sum(strength**QCV_ALPHA, QCV_BLOCK)
    difference = filter_frequency(sources - fused, _qcv_csf(*images.shape[-2:], like=images))
    distortion = block_sum(difference * difference, QCV_BLOCK) / QCV_BLOCK**2
    num = (saliency * distortion).sum(dim=(0, -2, -1))
    den = saliency.sum(dim=(0, -2, -1))
    unweighted = distortion.mean(dim=(0, -2, -1))
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), unweighted)


@register(
    "Qcv",
    ("vifb",),
    higher_is_better=False,
    definition=(
        "Chen–Varshney metric: CSF-filtered squared differences per 16×16 block, weighted by "
        "the sources' block edge saliency (Σ g⁵); per channel, averaged"
    ),
    source=VIFB_SOURCE + " (metricsQcv); Chen & Varshney, Inf. Fusion 2007",
    toolbox_name="Qcv",
    validated=True,
)
def qcv_metric(inputs: MetricInputs) -> float:
    return float(qcv(inputs.a, inputs.b, inputs.f).mean())
