"""Metrics built on models of human vision: VIF, Qcb, Qcv.

``spec/metrics.md`` §2.9, §2.10, §3.8.
"""

from __future__ import annotations

import math

import torch

from ivif.evaluation._common import (
    correlate,
    gradient_components,
    safe_ratio,
    split_cached,
    stretch_levels,
)
from ivif.evaluation.information import TANG_SOURCE, VIFB_SOURCE
from ivif.evaluation.inputs import MetricInputs
from ivif.evaluation.registry import register
from ivif.ops import gaussian_kernel1d
from ivif.ops.matlab import (
    block_sum,
    filter_frequency,
    freqspace_radius,
)
from ivif.ops.spectral import filter_bank_fft

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


def reference_statistics(
    reference: torch.Tensor, saturate_first_scale: bool = False
) -> tuple[list, torch.Tensor]:
    """What VIF needs from the reference planes ``(N, H, W)`` alone (§3.8).

    Per scale: the (filtered, subsampled) planes, their local means and their variances
    (clipped at 0; zeroed below eps, as the reference code does for the denominator), and the
    denominator Σ log10(1 + σ_r²/σ_n²) summed over the scales, ``(N,)``.
    ``saturate_first_scale`` forms the scale-1 square in uint8 (capped at 255), as the 2022
    toolbox did.
    """
    levels = []
    den = torch.zeros(reference.shape[0], dtype=torch.float64)
    ref = reference
    for scale in range(1, VIF_SCALES + 1):
        window = _vif_window(scale)
        if scale > 1:
            ref = correlate(ref, window, stride=2)
        square = ref * ref
        if saturate_first_scale and scale == 1:
            square.clamp_(max=255.0)
        mu_ref, ref_sq = correlate(torch.stack((ref, square)), window)
        var_ref = (ref_sq - mu_ref * mu_ref).clamp_(min=0.0)
        levels.append((ref, mu_ref, var_ref))
        counted = var_ref * (var_ref >= VIF_EPS)
        den += counted.div_(VIF_NOISE).add_(1.0).log10_().sum(dim=(-2, -1))
    return levels, den


def vif_numerator(
    levels: list, distorted: torch.Tensor, saturate_first_scale: bool = False
) -> torch.Tensor:
    """Numerator Σ log10(1 + g²σ_r²/(s_v² + σ_n²)) of VIF over the scales, ``(N,)``, for the
    reference statistics ``levels`` (:func:`reference_statistics`) and ``distorted (H, W)``."""
    num = torch.zeros(levels[0][0].shape[0], dtype=torch.float64)
    dist = distorted
    for scale, (ref, mu_ref, var_ref) in enumerate(levels, start=1):
        window = _vif_window(scale)
        if scale > 1:
            dist = correlate(dist, window, stride=2)
        products = torch.cat(((dist * dist).unsqueeze(0), ref * dist))
        if saturate_first_scale and scale == 1:
            products.clamp_(max=255.0)
        stats = correlate(torch.cat((dist.unsqueeze(0), products)), window)
        mu_dist, dist_sq, cross = stats[:1], stats[1:2], stats[2:]
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
    return num


def vif(inputs: MetricInputs, saturate_first_scale: bool = False) -> float:
    """VIF = vifp(A→F) + vifp(B→F) on the grey planes; the sources' statistics are cached.

    A reference without any variance at any scale (a constant source) has nothing to preserve;
    its term is 0 rather than MATLAB's 0/0.
    """
    levels, den = inputs.source_cached(
        ("vif", saturate_first_scale),
        lambda: reference_statistics(inputs.sources[:, 0], saturate_first_scale),
    )
    num = vif_numerator(levels, inputs.f[0], saturate_first_scale)
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
    return vif(inputs)


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
    return vif(inputs, saturate_first_scale=True)


# --- Qcb (Chen & Blum 2009) ----------------------------------------------------------------------


def _qcb_contrast_u8(planes_u8: torch.Tensor) -> torch.Tensor:
    """Qcb's masked contrast of uint8 planes, after VIFB's ``normalize1`` (§2.9 step 1)."""
    return qcb_contrast(stretch_levels(planes_u8))


#: Qcb's contrast constants k, h, Z (the exponents are p = 3, q = 2) and the Gaussian widths.
QCB_CONTRAST = (1.0, 1.0, 1e-4)
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


def qcb_contrast(images: torch.Tensor) -> torch.Tensor:
    """Qcb's masked local contrast C' of ``normalize1``-d planes ``(..., H, W)`` (§2.9 steps
    2–3): CSF filtering, then |G_2 ⋆ I / G_4 ⋆ I − 1| through k·C^p/(h·C^q + Z).

    A neighbourhood that filters to exactly 0 (a constant image) has contrast 0.
    """
    k, h, z = QCB_CONTRAST
    filtered = filter_frequency(images, _qcb_csf(*images.shape[-2:], like=images))
    narrow, wide = (_unnormalised_gaussian(s) for s in QCB_SIGMAS)
    planes = filtered.reshape(-1, 1, *filtered.shape[-2:])
    bank = filter_bank_fft(planes, [(narrow, narrow), (wide, wide)], "zeros")
    blurred_narrow, blurred_wide = bank.reshape(2, *filtered.shape)
    contrast = (safe_ratio(blurred_narrow, blurred_wide, 1.0) - 1.0).abs()
    square = contrast * contrast
    return (k * square * contrast) / (h * square + z)  # k·C^3 / (h·C^2 + Z)


def qcb(c_sources: torch.Tensor, c_fused: torch.Tensor) -> torch.Tensor:
    """Chen–Blum Q_cb of each channel from the masked contrasts of A and B ``(2, C, H, W)`` and
    of F ``(C, H, W)`` -> ``(C,)`` (§2.9 steps 4–6).

    Undefined ratios get their limits: equal contrasts preserve fully (Q = 1, including 0/0),
    and where both sources have zero contrast each gets saliency ½.
    """
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
    return float(qcb(*split_cached(inputs, "qcb/contrast", _qcb_contrast_u8, "u8")).mean())


# --- Qcv (Chen & Varshney 2007) ------------------------------------------------------------------

QCV_BLOCK = 16


def _qcv_csf(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Mannos–Sakrison CSF θ(r) = 2.6·(0.0192 + 0.144r)·e^{−(0.144r)^1.1} (§2.10)."""
    r = freqspace_radius(height, width, width / 8.0, height / 8.0, like)
    return 2.6 * (0.0192 + 0.144 * r) * torch.exp(-((0.144 * r) ** 1.1))


def qcv_source_terms(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What Qcv needs from ``normalize1``-d source planes alone: the block saliency
    λ = Σ_block g^5 (Sobel magnitude, zero borders) and the CSF-filtered planes (§2.10)."""
    gx, gy = gradient_components(images, "zeros")
    strength = torch.sqrt(gx * gx + gy * gy)
    square = strength * strength
    saliency = block_sum(square.mul_(square).mul_(strength), QCV_BLOCK)  # Σ g^5 per block
    return saliency, filter_frequency(images, _qcv_csf(*images.shape[-2:], like=images))


def qcv(saliency: torch.Tensor, filtered: torch.Tensor, filtered_fused: torch.Tensor):
    """Chen–Varshney Q_cv of each channel, ``(C,)`` (§2.10 steps 4–6), from the sources' block
    saliency ``(2, C, h, w)`` and CSF-filtered planes and the CSF-filtered fused planes.

    The CSF is linear, so the filtered difference I_X − F is the difference of the filtered
    images. When no block of either source has any edge (all saliencies 0), the blocks are
    weighted equally instead of 0/0.
    """
    difference = filtered - filtered_fused
    distortion = block_sum(difference.square_(), QCV_BLOCK) / QCV_BLOCK**2
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
    saliency, filtered = inputs.source_cached(
        "qcv/sources", lambda: qcv_source_terms(stretch_levels(inputs.planes_u8[:2]))
    )
    fused = stretch_levels(inputs.planes_u8[2])
    filtered_fused = filter_frequency(fused, _qcv_csf(*fused.shape[-2:], like=fused))
    return float(qcv(saliency, filtered, filtered_fused).mean())
