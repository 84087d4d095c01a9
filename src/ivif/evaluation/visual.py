"""Metrics built on models of human vision: VIF, Qcb, Qcv.

``spec/metrics.md`` §2.9, §2.10, §3.8.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch

from ivif.evaluation._common import (
    correlate,
    integer_gradients,
    safe_ratio,
    stretch_levels,
)
from ivif.evaluation.information import TANG_SOURCE, VIFB_SOURCE
from ivif.evaluation.inputs import MetricInputs
from ivif.evaluation.kernels import magnitude, masked_contrast, qcb_sums, vif_sums
from ivif.evaluation.registry import register
from ivif.ops import gaussian_kernel1d
from ivif.ops.matlab import block_sum, fft_order, freqspace_radius
from ivif.ops.spectral import (
    circular_response,
    filter_bank_fft,
    filter_packed,
    packed_spectrum,
    remove_wraparound,
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


def vif_pyramid(planes: torch.Tensor) -> list[torch.Tensor]:
    """Planes ``(..., H, W)`` at each of VIF's scales: as given, then each scale's Gaussian
    'valid' filtering keeping every other row and column."""
    levels = [planes]
    for scale in range(2, VIF_SCALES + 1):
        levels.append(correlate(levels[-1], _vif_window(scale), stride=2))
    return levels


def vif(inputs: MetricInputs, saturate_first_scale: bool = False) -> float:
    """VIF = vifp(A→F) + vifp(B→F) on the grey planes (§3.8): per reference, Σ over the scales
    of the information terms over Σ of the reference terms (:func:`vif_sums`); the sources'
    pyramids are cached. ``saturate_first_scale`` caps the scale-1 squares and products at 255,
    as the 2022 toolbox's uint8 arithmetic did.

    A reference without any variance at any scale (a constant source) has nothing to preserve;
    its term is 0 rather than MATLAB's 0/0.
    """
    references = inputs.source_cached("vif/pyramid", lambda: vif_pyramid(inputs.sources[:, 0]))
    distorted = vif_pyramid(inputs.f[0])
    sums = sum(
        vif_sums(
            ref, dist, _vif_window(scale), VIF_NOISE, VIF_EPS, saturate_first_scale and scale == 1
        )
        for scale, (ref, dist) in enumerate(zip(references, distorted, strict=True), start=1)
    )
    return float(safe_ratio(sums[:, 0], sums[:, 1], 0.0).sum())


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


# --- CSF filtering shared by Qcb and Qcv -------------------------------------------------------


def _normalised(inputs: MetricInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """VIFB's ``normalize1`` of the distinct source planes ``(P, H, W)``
    (:meth:`MetricInputs.distinct_sources`, cached per pair) and of the fused planes."""
    sources = inputs.source_cached("normalize1", lambda: stretch_levels(inputs.distinct_sources()))
    return sources, inputs.cached("normalize1", lambda: stretch_levels(inputs.planes_u8[2]))


@functools.lru_cache(maxsize=8)
def _csf_response(csf, height: int, width: int) -> torch.Tensor:
    """``csf(height, width)`` in ``fft2`` order (kept: every image of a benchmark has the same
    size), held as complex: :func:`ivif.ops.spectral.filter_packed` multiplies by it faster."""
    response = fft_order(csf(height, width, like=torch.empty(0, dtype=torch.float64)))
    return response.to(torch.complex128)


def _spectra(inputs: MetricInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed spectra (:func:`ivif.ops.spectral.packed_spectrum`) of the ``normalize1``-d
    distinct source planes (cached per pair) and fused planes: Qcb and Qcv filter the same
    planes by different CSFs, and these serve both."""
    height, width = inputs.size

    def spectrum(x: torch.Tensor) -> torch.Tensor:
        return packed_spectrum(x.reshape(-1, height, width))

    normalised = _normalised(inputs)
    sources = inputs.source_cached("normalize1/spectra", lambda: spectrum(normalised[0]))
    fused = inputs.cached("normalize1/spectra", lambda: spectrum(normalised[1]))
    return sources, fused


# --- Qcb (Chen & Blum 2009) ----------------------------------------------------------------------


#: Qcb's contrast constant Z (k = h = 1, p = 3, q = 2: C' = C³/(C² + Z)) and the Gaussian widths.
QCB_Z = 1e-4
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


@functools.lru_cache(maxsize=8)
def _qcb_responses(height: int, width: int) -> tuple[torch.Tensor, ...]:
    """Qcb's CSF alone, then followed by each circular Gaussian (:data:`QCB_SIGMAS`), ``fft2``
    order. All are real, held as complex numbers (:func:`_csf_response`): the Gaussians are
    centred and symmetric (their responses' imaginary parts are rounding, ~1e-16, and dropped)."""
    csf = _csf_response(_qcb_csf, height, width)
    kernels = (_unnormalised_gaussian(sigma) for sigma in QCB_SIGMAS)
    return csf, *(csf * circular_response(k, k, (height, width)).real for k in kernels)


def qcb_blurred(spectra: torch.Tensor, planes: int, constant: torch.Tensor) -> torch.Tensor:
    """Qcb's CSF filter (§2.9 step 2), then both zero-padded 31×31 Gaussians (step 3), of the
    ``planes`` ``normalize1``-d planes packed in ``spectra`` (:func:`_spectra`) ->
    ``(2, planes, H, W)``; ``constant`` (``(planes,)``, bool) marks constant planes: those blur to
    exactly 0 (the packed transforms would leave ~1e-16 of their partner plane in them).

    The CSF and each Gaussian are applied in one pass on the image's own transform grid, a
    circular correlation whose wrapped-around edge terms are then removed
    (:func:`ivif.ops.spectral.remove_wraparound`, which needs the CSF-filtered planes: they come
    from the same inverse transforms); images smaller than the window are padded and
    transformed again instead.
    """
    height, width = spectra.shape[-2:]
    kernels = [_unnormalised_gaussian(sigma) for sigma in QCB_SIGMAS]
    if min(height, width) >= QCB_WINDOW:
        out = filter_packed(spectra, planes, _qcb_responses(height, width), reuse=True)
        filtered, bank = out[0], out[1:]
        for kernel, blurred in zip(kernels, bank, strict=True):
            remove_wraparound(blurred, filtered, kernel, kernel)
    else:
        response = _csf_response(_qcb_csf, height, width)
        (filtered,) = filter_packed(spectra, planes, [response], reuse=True)
        bank = filter_bank_fft(filtered.unsqueeze(1), [(k, k) for k in kernels], "zeros")[:, :, 0]
    if constant.any():
        bank[:, constant] = 0.0
    return bank


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
    spectra, spectrum_fused = _spectra(inputs)

    def contrast(spectra: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
        constant = planes.amax(dim=(-2, -1)) == planes.amin(dim=(-2, -1))
        return masked_contrast(qcb_blurred(spectra, planes.shape[0], constant), QCB_Z)

    c_sources = inputs.source_cached(
        "qcb/contrast", lambda: contrast(spectra, inputs.distinct_sources())
    )
    c_fused = contrast(spectrum_fused, inputs.planes_u8[2])
    c_a, c_b = (c_sources[rows] for rows in inputs.source_rows())
    pixels = c_fused.shape[-2] * c_fused.shape[-1]
    return float((qcb_sums(c_a, c_b, c_fused) / pixels).mean())


# --- Qcv (Chen & Varshney 2007) ------------------------------------------------------------------

QCV_BLOCK = 16


def _qcv_csf(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Mannos–Sakrison CSF θ(r) = 2.6·(0.0192 + 0.144r)·e^{−(0.144r)^1.1} (§2.10)."""
    r = freqspace_radius(height, width, width / 8.0, height / 8.0, like)
    return 2.6 * (0.0192 + 0.144 * r) * torch.exp(-((0.144 * r) ** 1.1))


def _qcv_filtered(inputs: MetricInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``normalize1``-d distinct source planes ``(P, H, W)`` and fused planes ``(C, H, W)``
    filtered by Qcv's CSF as :func:`ivif.ops.matlab.filter_frequency` does (the sources' cached
    per pair), from :func:`_spectra`."""
    response = _csf_response(_qcv_csf, *inputs.size)

    def filtered(spectra: torch.Tensor, planes: int) -> torch.Tensor:
        return filter_packed(spectra, planes, [response], reuse=True)[0]

    spectra, spectrum_fused = _spectra(inputs)
    sources = inputs.source_cached("qcv/csf", lambda: filtered(spectra, inputs.distinct_count))
    return sources, filtered(spectrum_fused, inputs.planes.shape[1])


def qcv_saliency(images: torch.Tensor) -> torch.Tensor:
    """Qcv's block saliency λ = Σ_block g^5 of ``normalize1``-d source planes (Sobel magnitude,
    zero borders; §2.10)."""
    strength = magnitude(*integer_gradients(images, "zeros"))
    square = strength * strength
    return block_sum(square.mul_(square).mul_(strength), QCV_BLOCK)  # Σ g^5 per block


def qcv(
    saliency: Sequence[torch.Tensor],
    filtered: Sequence[torch.Tensor],
    filtered_fused: torch.Tensor,
) -> torch.Tensor:
    """Chen–Varshney Q_cv of each channel, ``(C,)`` (§2.10 steps 4–6), from each source's block
    saliency ``(C, h, w)`` and CSF-filtered planes ``(C, H, W)`` (``1`` instead of ``C`` for a
    grey source) and the CSF-filtered fused planes ``(C, H, W)``.

    The CSF is linear, so the filtered difference I_X − F is the difference of the filtered
    images. When no block of either source has any edge (all saliencies 0), the blocks are
    weighted equally instead of 0/0.
    """
    distortion = torch.stack(
        [block_sum((x - filtered_fused).square_(), QCV_BLOCK) for x in filtered]
    ).div_(QCV_BLOCK**2)
    saliency = torch.stack([s.expand_as(distortion[0]) for s in saliency])
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
    saliency = inputs.source_cached("qcv/saliency", lambda: qcv_saliency(_normalised(inputs)[0]))
    filtered, filtered_fused = _qcv_filtered(inputs)
    rows = inputs.source_rows()
    per_source = [saliency[r] for r in rows], [filtered[r] for r in rows]
    return float(qcv(*per_source, filtered_fused).mean())
