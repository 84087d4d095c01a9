"""Feature mutual information, FMI (Haghighat, Aghagolzadeh & Seyedarabi 2011), in the fast
windowed form of Haghighat & Razian 2014 that Tang's toolbox uses (``spec/metrics.md`` §3.15).

For every 3×3 window (the 'valid' region of the feature images) and each source X:

1. if the source and fused feature windows are identical the window scores 1;
2. otherwise each window is min–max normalised (a constant window becomes all ones) and divided
   by its sum: two 9-point PDFs p (source) and q (fused), in column-major order, with CDFs P, Q;
3. the joint PDF is the 2-D difference of a copula mixture (Nelsen): for Pearson correlation
   c ≥ 0 of p and q, ``φ·min(Q_i, P_j) + (1 − φ)·Q_i P_j`` with ``φ = c / corr_up``; for c < 0,
   ``θ·max(Q_i + P_j − 1, 0) + (1 − θ)·Q_i P_j`` with ``θ = c / corr_lo``, where corr_up/lo are
   the correlations of the Fréchet bounds (φ, θ = 0 when c = 0, when either index distribution
   has zero spread, or when the bound equals the independence copula: then every mixture is
   the independent joint, where the toolbox's c/0 gives NaN — a PDF within rounding of a point
   mass, e.g. a DCT window holding a constant image's DC term, gets there);
4. the joint entropy sums −j·log2|j| over non-zero cells (the toolbox takes the real part of a
   complex log for negative cells), and the window scores ``2·I / (H_p + H_q)`` with
   ``I = H_p + H_q − H_joint`` (0 when I = 0 or the entropies are both 0).

The image score is the mean over windows of the average of the two sources' scores. The
computation is vectorised over windows in chunks; no Python loop visits a window.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F

from ivif.evaluation._common import gradient_components
from ivif.evaluation.information import TANG, TANG_SOURCE
from ivif.evaluation.inputs import MetricInputs
from ivif.evaluation.registry import register
from ivif.ops.wavelet import dwt2, meyer_scaling_filter, orthogonal_filter_bank

FMI_WINDOW = 3
_CHUNK = 32768
_EPS = float(np.finfo(np.float64).eps)


# --- Features -------------------------------------------------------------------------------------


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``edge(x)`` (Sobel, automatic threshold, thinning) of ``(N, H, W)`` -> 0/1 maps.

    Gradients are Sobel/8 with replicated borders; ``b = gx² + gy²``; the cutoff is
    ``4·mean(b)``; a pixel is an edge where ``b > cutoff`` and it is a local maximum across the
    edge: left/right when ``|gx| ≥ |gy|``, up/down when ``|gy| ≥ |gx|`` (the neighbour before may
    equal it, the one after must be lower; borders compare with a replicated neighbour). Not
    validated against MATLAB, whose thinning runs in compiled code.
    """
    gx, gy = gradient_components(x / 8.0, "replicate")
    b = gx * gx + gy * gy
    cutoff = 4.0 * b.mean(dim=(-2, -1), keepdim=True)
    padded = F.pad(b.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    left, right = padded[..., 1:-1, :-2], padded[..., 1:-1, 2:]
    up, down = padded[..., :-2, 1:-1], padded[..., 2:, 1:-1]
    ax, ay = gx.abs(), gy.abs()
    tolerance = 100.0 * _EPS
    across_columns = (ax >= ay - tolerance) & (left <= b) & (right < b)
    across_rows = (ay >= ax - tolerance) & (up <= b) & (down < b)
    return ((b > cutoff) & (across_columns | across_rows)).to(torch.float64)


def dct_map(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II of each plane (MATLAB ``dct2``)."""
    return torch.from_numpy(scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1)))


def _rerange(x: torch.Tensor) -> torch.Tensor:
    """Min–max to [0, 1] per plane; a constant plane becomes ones (the toolbox's ``rerange``)."""
    low = x.amin(dim=(-2, -1), keepdim=True)
    span = x.amax(dim=(-2, -1), keepdim=True) - low
    return torch.where(span > 0, (x - low) / torch.where(span > 0, span, 1.0), 1.0)


def wavelet_map(x: torch.Tensor) -> torch.Tensor:
    """``[cA cH; cV cD]`` of a one-level discrete-Meyer DWT, min–max rescaled per plane."""
    low, high = orthogonal_filter_bank(meyer_scaling_filter())
    c_a, c_h, c_v, c_d = dwt2(x, low, high)
    top = torch.cat((c_a, c_h), dim=-1)
    bottom = torch.cat((c_v, c_d), dim=-1)
    return _rerange(torch.cat((top, bottom), dim=-2))


# --- Windowed normalised mutual information -------------------------------------------------------


def _windows(x: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` -> ``(n, 9)`` 3×3 windows of the 'valid' region, column-major within a window."""
    patches = x.unfold(0, FMI_WINDOW, 1).unfold(1, FMI_WINDOW, 1)  # (h, w, row, col)
    return patches.transpose(-2, -1).reshape(-1, FMI_WINDOW * FMI_WINDOW)


def _normalised_pdf(window: torch.Tensor) -> torch.Tensor:
    low = window.amin(-1, keepdim=True)
    span = window.amax(-1, keepdim=True) - low
    stretched = torch.where(span > 0, (window - low) / torch.where(span > 0, span, 1.0), 1.0)
    return stretched / stretched.sum(-1, keepdim=True)


def _entropy_bits(p: torch.Tensor) -> torch.Tensor:
    """−Σ p log2 |p| over non-zero entries along the last dimension."""
    nonzero = p != 0
    return -(torch.where(nonzero, p * torch.log2(torch.where(nonzero, p.abs(), 1.0)), 0.0)).sum(-1)


def _window_fmi(source: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Normalised MI of corresponding, non-identical windows ``(n, 9)`` -> ``(n,)`` (steps 2–4
    above)."""
    length = source.shape[-1]
    p, q = _normalised_pdf(source), _normalised_pdf(fused)
    cdf_p, cdf_q = p.cumsum(-1), q.cumsum(-1)
    pc = p - p.mean(-1, keepdim=True)
    qc = q - q.mean(-1, keepdim=True)
    covariance = (pc * qc).sum(-1)
    spread = torch.sqrt((pc * pc).sum(-1) * (qc * qc).sum(-1))
    c = torch.where(covariance == 0, 0.0, covariance / torch.where(spread > 0, spread, 1.0))

    index = torch.arange(1, length + 1, dtype=torch.float64)
    sd_p = torch.sqrt(((index * index * p).sum(-1) - (index * p).sum(-1) ** 2).clamp(min=0.0))
    sd_q = torch.sqrt(((index * index * q).sum(-1) - (index * q).sum(-1) ** 2).clamp(min=0.0))

    qi, pj = cdf_q.unsqueeze(-1), cdf_p.unsqueeze(-2)  # joint cells [i (fused), j (source)]
    upper = 0.5 * (qi + pj - (qi - pj).abs())
    lower = 0.5 * (qi + pj - 1.0 + (qi + pj - 1.0).abs())
    positive = (c >= 0).unsqueeze(-1).unsqueeze(-1)
    bound = torch.where(positive, upper, lower)
    independent = qi * pj
    bound_corr = (bound - independent).sum(dim=(-2, -1)) / (sd_q * sd_p)
    degenerate = (c == 0) | (sd_p == 0) | (sd_q == 0) | (bound_corr == 0)
    mix = torch.where(degenerate, 0.0, c / torch.where(degenerate, 1.0, bound_corr))
    mix = mix.unsqueeze(-1).unsqueeze(-1)

    # 2-D difference of the copula with zero boundary gives the joint PDF cells.
    padded = F.pad(bound, (1, 0, 1, 0))
    bound_pdf = (
        padded[..., 1:, 1:] - padded[..., :-1, 1:] - padded[..., 1:, :-1] + padded[..., :-1, :-1]
    )
    joint = mix * bound_pdf + (1.0 - mix) * (q.unsqueeze(-1) * p.unsqueeze(-2))
    h_joint = _entropy_bits(joint.flatten(-2))
    h_p, h_q = _entropy_bits(p), _entropy_bits(q)
    mi = h_p + h_q - h_joint
    total = h_p + h_q
    score = torch.where(
        (mi == 0) | (total == 0), 0.0, 2.0 * mi / torch.where(total > 0, total, 1.0)
    )
    return score


def _summed_window_fmi(source: torch.Tensor, fused: torch.Tensor) -> float:
    """Σ over windows of the normalised MI; identical windows score 1 without computation
    (binary edge maps are mostly identical empty windows)."""
    identical = (source == fused).all(-1)
    different = ~identical
    computed = _window_fmi(source[different], fused[different]) if different.any() else None
    return float(identical.sum()) + (0.0 if computed is None else float(computed.sum()))


def feature_mutual_information(
    a: torch.Tensor, b: torch.Tensor, f: torch.Tensor, chunk: int = _CHUNK
) -> float:
    """Fast FMI of feature images ``(H, W)``: mean over 3×3 windows of ½(FMI_AF + FMI_BF)."""
    windows_a, windows_b, windows_f = (_windows(x) for x in (a, b, f))
    total = 0.0
    for start in range(0, windows_f.shape[0], chunk):
        part = slice(start, start + chunk)
        total += _summed_window_fmi(windows_a[part], windows_f[part]) / 2.0
        total += _summed_window_fmi(windows_b[part], windows_f[part]) / 2.0
    return total / windows_f.shape[0]


def _fmi(inputs: MetricInputs, feature, scale: float) -> float:
    planes = torch.stack((inputs.a[0], inputs.b[0], inputs.f[0])) / scale
    a, b, f = feature(planes)
    return feature_mutual_information(a, b, f)


def _data_scale(inputs: MetricInputs) -> float:
    """The 2022 toolbox passed [0, 1] data, the 2023 one 0–255 (results agree up to rounding)."""
    return 255.0 if inputs.convention == "tang2022" else 1.0


FMI_SOURCE = (
    TANG_SOURCE + " (analysis_fmi.m); Haghighat, Aghagolzadeh & Seyedarabi, Comput. Electr. Eng. "
    "2011; Haghighat & Razian, AICT 2014"
)


@register(
    "FMI_pixel",
    TANG,
    higher_is_better=True,
    definition=(
        "fast feature mutual information over 3×3 windows of MATLAB edge() maps — the toolbox's "
        "'FMI_pixel' uses the default 'edge' feature, not raw pixels"
    ),
    source=FMI_SOURCE,
    min_size=FMI_WINDOW,
)
def fmi_pixel(inputs: MetricInputs) -> float:
    return _fmi(inputs, edge_map, _data_scale(inputs))


@register(
    "FMI_dct",
    TANG,
    higher_is_better=True,
    definition="fast feature mutual information over 3×3 windows of the images' 2-D DCT",
    source=FMI_SOURCE,
    min_size=FMI_WINDOW,
)
def fmi_dct(inputs: MetricInputs) -> float:
    return _fmi(inputs, dct_map, _data_scale(inputs))


@register(
    "FMI_w",
    TANG,
    higher_is_better=True,
    definition=(
        "fast feature mutual information over 3×3 windows of one-level discrete-Meyer wavelet "
        "coefficients [cA cH; cV cD], min–max rescaled"
    ),
    source=FMI_SOURCE,
)
def fmi_wavelet(inputs: MetricInputs) -> float:
    return _fmi(inputs, wavelet_map, _data_scale(inputs))
