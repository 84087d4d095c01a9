"""Intensity statistics: SD, PSNR, MSE, RMSE, CC, SCD (``spec/metrics.md`` §2.6, §2.7, §2.13,
§3.3, §3.6, §3.7, §3.9, §3.10)."""

from __future__ import annotations

import math

import torch

from ivif.evaluation._common import safe_ratio
from ivif.evaluation.information import TANG, TANG_SOURCE, VIFB_SOURCE, joint_counts
from ivif.evaluation.inputs import MetricInputs
from ivif.evaluation.registry import register
from ivif.ops.matlab import saturate_u8


def _integer_sums(inputs: MetricInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ X·Y ``(C, 3, 3)`` and Σ X ``(C, 3)`` over the pixels of A, B and F, exactly.

    Every sum that involves F, and each source's own, is a weighted sum of the joint 256-bin
    counts of (A, F) and (B, F) that EN, MI and CE share (:func:`joint_counts`); Σ A·B is one
    dot product per channel. The planes hold 8-bit levels, so every product and every partial
    sum is an integer below 2^53: float64 forms them without rounding, in any order.
    """

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        joint = joint_counts(inputs).to(torch.float64)  # (2, C, 256, 256)
        levels = torch.arange(256, dtype=torch.float64)
        counts = torch.cat((joint.sum(-1), joint[:1].sum(-2)))  # (3, C, 256): A, B, F
        with_fused = (joint @ levels) @ levels  # Σ X·F, (2, C)
        with_b = torch.linalg.vecdot(inputs.a.flatten(-2), inputs.b.flatten(-2))  # Σ A·B, (C,)
        products = torch.diag_embed((counts @ levels.square()).T)
        products[:, 0, 1] = products[:, 1, 0] = with_b
        products[:, :2, 2] = products[:, 2, :2] = with_fused.T
        return products, (counts @ levels).T

    return inputs.cached("integer sums", compute)


def _moments(inputs: MetricInputs) -> torch.Tensor:
    """Centred second moments Σ (X − X̄)(Y − Ȳ) of A, B, F per channel: ``(C, 3, 3)``.

    ``(N·Σ XY − Σ X·Σ Y) / N`` in exact integer arithmetic, rounded once; SD, CC and SCD all
    follow from it (MATLAB's ``corr2`` is the same centred formula).
    """

    def compute() -> torch.Tensor:
        products, totals = _integer_sums(inputs)
        n = inputs.size[0] * inputs.size[1]
        t = [[int(v) for v in row] for row in totals.tolist()]
        centred = [
            [[(n * int(p) - t[c][i] * t[c][j]) / n for j, p in enumerate(row)] for i, row in
             enumerate(channel)]
            for c, channel in enumerate(products.tolist())
        ]  # fmt: skip
        return torch.tensor(centred, dtype=torch.float64)

    return inputs.cached("moments", compute)


def _squared_errors(inputs: MetricInputs) -> list[list[int]]:
    """Σ (X − F)² of each source per channel, ``[[A per channel], [B per channel]]``, exact."""
    products, _ = _integer_sums(inputs)
    return [
        [int(p[x][x]) + int(p[2][2]) - 2 * int(p[x][2]) for p in products.tolist()] for x in (0, 1)
    ]


def _correlation(covariance: torch.Tensor, var_x: torch.Tensor, var_y: torch.Tensor):
    """Pearson correlation from centred sums; 0 where either variance vanishes."""
    return safe_ratio(covariance, torch.sqrt(var_x * var_y), 0.0)


@register(
    "SD",
    ("vifb",),
    higher_is_better=True,
    definition="population standard deviation of the fused image (0–255), per channel, averaged",
    source=VIFB_SOURCE + " (metricsVariance, which returns the standard deviation)",
    toolbox_name="Variance",
    validated=True,
)
@register(
    "SD",
    ("tang",),
    higher_is_better=True,
    definition="population standard deviation of the fused grey image (0–255)",
    source=TANG_SOURCE + " (SD_evaluation.m on double data, 2023)",
)
def standard_deviation(inputs: MetricInputs) -> float:
    """sqrt(Σ (F − μ)² / (M·N)) (§2.13, §3.3)."""
    pixels = inputs.size[0] * inputs.size[1]
    return float(torch.sqrt(_moments(inputs)[:, 2, 2] / pixels).mean())


@register(
    "SD",
    ("tang2022",),
    higher_is_better=True,
    definition=(
        "the 2022 toolbox's uint8-saturated pseudo-SD: sqrt(Σ min(max(round(F − μ), 0)², 255) "
        "/ (M·N)), at most 15.97 (a bug, kept to reproduce published tables)"
    ),
    source=TANG_SOURCE + " (SD_evaluation.m on uint8 data, commit 53f5542)",
    validated=True,
)
def standard_deviation_tang2022(inputs: MetricInputs) -> float:
    """uint8 arithmetic: F − μ saturates (negatives to 0) and its square caps at 255 (§3.3)."""
    f = inputs.f
    deviation = saturate_u8(f - f.mean(dim=(-2, -1), keepdim=True))
    squared = (deviation * deviation).clamp_(max=255.0)
    return float(torch.sqrt(squared.mean(dim=(-2, -1))).mean())


def _vifb_errors(inputs: MetricInputs) -> torch.Tensor:
    """VIFB's ``mse`` helper, sqrt(SSE)/(M·N), averaged over the two sources: ``(C,)``."""
    pixels = inputs.size[0] * inputs.size[1]
    sse = torch.tensor(_squared_errors(inputs), dtype=torch.float64)
    return (torch.sqrt(sse) / pixels).mean(0)


@register(
    "RMSE",
    ("vifb",),
    higher_is_better=False,
    definition=(
        "mean over VI and IR of sqrt(Σ (X − F)²) / (M·N) — VIFB's 'Rmse', not an RMSE in grey "
        "levels; per channel, averaged"
    ),
    source=VIFB_SOURCE + " (metricsRmse)",
    toolbox_name="Rmse",
    validated=True,
)
def rmse_vifb(inputs: MetricInputs) -> float:
    """Rmse_k = (e(VI,F) + e(IR,F)) / 2 with e = sqrt(SSE)/(M·N) (§2.7)."""
    return float(_vifb_errors(inputs).mean())


@register(
    "PSNR",
    ("vifb",),
    higher_is_better=True,
    definition=(
        "20·log10(255 / sqrt(ē)) with ē VIFB's 'Rmse' error (mean of sqrt(SSE)/(M·N)); per "
        "channel, averaged; +inf when F equals both sources"
    ),
    source=VIFB_SOURCE + " (metricsPsnr)",
    toolbox_name="Psnr",
    validated=True,
)
def psnr_vifb(inputs: MetricInputs) -> float:
    """PSNR_k = 20 log10(255 / sqrt(ē_k)), averaged over channels (§2.6)."""
    errors = _vifb_errors(inputs)
    if bool((errors == 0).any()):
        return math.inf
    return float((20.0 * torch.log10(255.0 / torch.sqrt(errors))).mean())


def _mse_unit(inputs: MetricInputs) -> float:
    """½·mean((F−A)²) + ½·mean((F−B)²) on [0, 1] data (§3.6, §3.7), from the exact sums."""
    pixels = inputs.size[0] * inputs.size[1]
    (sse_a,), (sse_b,) = _squared_errors(inputs)
    return (sse_a + sse_b) / (2 * pixels * 255**2)


@register(
    "MSE",
    TANG,
    higher_is_better=False,
    definition="mean squared error of F against each source on the [0, 1] scale, averaged",
    source=TANG_SOURCE + " (MSE_evaluation.m)",
    validated=True,
)
def mse_tang(inputs: MetricInputs) -> float:
    return _mse_unit(inputs)


@register(
    "PSNR",
    TANG,
    higher_is_better=True,
    definition=(
        "10·log10(255² / MSE) with MSE on the [0, 1] scale — the standard PSNR plus "
        "20·log10(255) ≈ 48.13 dB; +inf when F equals both sources"
    ),
    source=TANG_SOURCE + " (PSNR_evaluation.m)",
    validated=True,
)
def psnr_tang(inputs: MetricInputs) -> float:
    mse = _mse_unit(inputs)
    return math.inf if mse == 0 else 20.0 * math.log10(255.0 / math.sqrt(mse))


@register(
    "CC",
    TANG,
    higher_is_better=True,
    definition=(
        "mean of the Pearson correlations r(IR,F) and r(VI,F); a constant image contributes 0"
    ),
    source=TANG_SOURCE + " (CC_evaluation.m)",
    validated=True,
)
def correlation_coefficient(inputs: MetricInputs) -> float:
    """CC = (r(A,F) + r(B,F)) / 2 (§3.9)."""
    m = _moments(inputs)
    r_a = _correlation(m[:, 0, 2], m[:, 0, 0], m[:, 2, 2])
    r_b = _correlation(m[:, 1, 2], m[:, 1, 1], m[:, 2, 2])
    return float(((r_a + r_b) / 2.0).mean())


@register(
    "SCD",
    TANG,
    higher_is_better=True,
    definition=(
        "sum of correlations of differences corr(F−VI, IR) + corr(F−IR, VI); a constant "
        "operand contributes 0"
    ),
    source=TANG_SOURCE + " (analysis_SCD.m); Aslantas & Bendes, AEU 2015",
    validated=True,
)
def sum_of_correlation_differences(inputs: MetricInputs) -> float:
    """SCD = corr2(F − B, A) + corr2(F − A, B) (§3.10), expanded into the centred sums."""
    m = _moments(inputs)
    aa, bb, ff = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    ab, af, bf = m[:, 0, 1], m[:, 0, 2], m[:, 1, 2]
    first = _correlation(af - ab, ff + bb - 2.0 * bf, aa)
    second = _correlation(bf - ab, ff + aa - 2.0 * af, bb)
    return float((first + second).mean())
