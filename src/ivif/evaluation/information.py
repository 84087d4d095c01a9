"""Information-theoretic metrics: EN, MI, CE (``spec/metrics.md`` §2.2, §2.4, §2.5, §3.1, §3.2).

All histograms are of 8-bit grey levels (256 bins). Entropies are in bits except VIFB's MI,
which MATLAB's code computes with natural logarithms.
"""

from __future__ import annotations

import math

import torch

from ivif.evaluation._common import stretch_table
from ivif.evaluation.inputs import MetricInputs
from ivif.evaluation.registry import register
from ivif.ops.histogram import entropy, joint_histogram

TANG = ("tang", "tang2022")

VIFB_SOURCE = "VIFB metrics/*.m; Zhang et al., 'VIFB', CVPRW 2020"
TANG_SOURCE = "Tang, Image-Fusion 'General Evaluation Metric' (MATLAB)"


def joint_counts(inputs: MetricInputs) -> torch.Tensor:
    """Joint 256-bin counts of (A, F) and of (B, F), ``(2, C, 256, 256)``.

    The one pass over the pixels that EN, MI and CE share: every histogram they use is a
    marginal of these counts or a relabelling of their bins.
    """
    planes = inputs.planes_u8
    return inputs.cached("joint counts", lambda: joint_histogram(planes[:2], planes[2]))


def _source_histograms(inputs: MetricInputs) -> torch.Tensor:
    """256-bin counts of the sources, ``(2, C, 256)``."""
    return inputs.cached("histograms", lambda: joint_counts(inputs).sum(-1))


def _fused_histogram(inputs: MetricInputs) -> torch.Tensor:
    """256-bin counts of the fused image, ``(C, 256)``."""
    return inputs.cached("histogram", lambda: joint_counts(inputs)[0].sum(-2))


def _relabel(joint: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Joint counts ``(..., 256, 256)`` after mapping the first image's levels through ``rows``
    and the second's through ``cols`` (integer-valued ``(..., 256)`` tables): the count of
    ``(i, j)`` moves to ``(rows[i], cols[j])``, counts landing together add up. Table entries
    outside 0–255 (levels an image does not contain, whose counts are 0) are clipped."""
    lead = joint.shape[:-2]
    rows, cols = rows.clamp(0, 255), cols.clamp(0, 255)
    index = (rows.unsqueeze(-1) * 256.0 + cols.unsqueeze(-2)).to(torch.int64).reshape(-1, 65536)
    index += torch.arange(index.shape[0]).mul_(65536).unsqueeze(1)
    moved = torch.bincount(index.reshape(-1), joint.reshape(-1), minlength=index.numel())
    return moved.reshape(*lead, 256, 256)


def _stretch_tables(counts: torch.Tensor) -> torch.Tensor:
    """:func:`stretch_table` of planes with 256-bin ``counts`` ``(..., 256)``: their level range
    is read off the histogram."""
    levels = torch.arange(256)
    present = counts > 0
    low = torch.where(present, levels, 255).amin(-1)
    high = torch.where(present, levels, 0).amax(-1)
    return stretch_table(low, high)


@register(
    "EN",
    ("vifb",),
    higher_is_better=True,
    definition="entropy (bits) of the fused 256-bin histogram, per RGB channel, averaged",
    source=VIFB_SOURCE + " (metricsEntropy)",
    toolbox_name="Entropy",
    validated=True,
)
@register(
    "EN",
    TANG,
    higher_is_better=True,
    definition="entropy (bits) of the fused image's 256-bin grey-level histogram",
    source=TANG_SOURCE + " (entropy of uint8 F); Roberts et al., J. Appl. Remote Sens. 2008",
    validated=True,
)
def entropy_en(inputs: MetricInputs) -> float:
    """EN = −Σ p log2 p of the fused grey-level histogram (mean over channels)."""
    return float(entropy(_fused_histogram(inputs)).mean())


def _merge_top_levels(joint: torch.Tensor) -> torch.Tensor:
    """Joint counts with levels 254 and 255 of both images in one bin, as ``uint8(x) + 1``
    indexing makes them (§3.2)."""
    merged = joint.clone()
    merged[..., 254, :] += merged[..., 255, :]
    merged[..., 255, :] = 0.0
    merged[..., :, 254] += merged[..., :, 255]
    merged[..., :, 255] = 0.0
    return merged


@register(
    "MI",
    ("vifb",),
    higher_is_better=True,
    definition=(
        "MI(VI,F) + MI(IR,F) in nats, each image min–max stretched and requantised to 256 "
        "levels first; per RGB channel, averaged"
    ),
    source=VIFB_SOURCE + " (metricsMutinf); Qu et al., Electron. Lett. 2002",
    toolbox_name="Mutinf",
    validated=True,
)
def mutual_information_vifb(inputs: MetricInputs) -> float:
    """Σ over sources of H(q_X) + H(q_F) − H(q_X, q_F), natural logarithms (§2.5)."""
    # min–max stretch and int16(255·x) of each plane (§2.5): a relabelling of the levels
    rows = _stretch_tables(_source_histograms(inputs))
    cols = _stretch_tables(_fused_histogram(inputs)).expand_as(rows)
    joint = _relabel(joint_counts(inputs), rows, cols)  # (2, C, 256, 256)
    h_joint = entropy(joint, dims=2, base=math.e)
    h_sources = entropy(joint.sum(-1), base=math.e)
    h_fused = entropy(joint.sum(-2), base=math.e)
    return float((h_sources + h_fused - h_joint).sum(0).mean())


@register(
    "MI",
    TANG,
    higher_is_better=True,
    definition=(
        "MI(IR,F) + MI(VI,F) in bits from 256-bin grey-level histograms (levels 254 and 255 "
        "share a joint-histogram bin, as the toolbox's uint8 indexing does)"
    ),
    source=TANG_SOURCE + " (MI_evaluation.m, Hab.m); Qu et al., Electron. Lett. 2002",
    validated=True,
)
def mutual_information_tang(inputs: MetricInputs) -> float:
    """Σ over sources of H(X) + H(F) − H(F, X) in bits, with the 254/255 joint bin (§3.2)."""
    h_sources = entropy(_source_histograms(inputs))
    h_fused = entropy(_fused_histogram(inputs))
    # The toolbox indexes the joint histogram with uint8(x) + 1, which saturates at 255.
    h_joint = entropy(_merge_top_levels(joint_counts(inputs)), dims=2)
    return float((h_sources + h_fused - h_joint).sum(0).mean())


@register(
    "CE",
    ("vifb",),
    higher_is_better=False,
    definition=(
        "cross-entropy Σ p_X log2(p_X/p_F) of each source's histogram against the fused one "
        "(bins where either is empty skipped), averaged over VI and IR and over RGB channels"
    ),
    source=VIFB_SOURCE + " (metricsCross_entropy)",
    toolbox_name="Cross_entropy",
    validated=True,
)
def cross_entropy(inputs: MetricInputs) -> float:
    """KL divergence of each source histogram from the fused one, in bits (§2.2)."""
    pixels = inputs.size[0] * inputs.size[1]
    p_sources = _source_histograms(inputs) / pixels
    p_fused = (_fused_histogram(inputs) / pixels).unsqueeze(0)
    both = (p_sources > 0) & (p_fused > 0)
    ratio = torch.where(both, p_sources / torch.where(both, p_fused, 1.0), 1.0)
    terms = torch.where(both, p_sources * torch.log2(ratio), 0.0)
    return float(terms.sum(-1).mean(0).mean())
