"""Entropic optimal transport between the intensity histograms of two images.

HCLFuse aligns the infrared tones to the visible image with a Sinkhorn plan between the *pixels*
of the two images, using an intensity-only cost ``(x_i − y_j)²`` (spec ``hclfuse.md`` §3). Since
the Gibbs kernel depends only on the pair of values, the Sinkhorn scalings depend only on the
value too, and the N×N problem reduces exactly to one between the K unique infrared and L unique
visible values, weighted by their counts: O(K·L) per sweep instead of O(N²).
"""

from __future__ import annotations

import torch

from ivif.ops.filters import check_image

__all__ = ["histogram_sinkhorn", "ot_align"]

_FLOOR = 1e-6


def histogram_sinkhorn(
    x_values: torch.Tensor,
    x_counts: torch.Tensor,
    y_values: torch.Tensor,
    y_counts: torch.Tensor,
    epsilon: float = 0.2,
    iterations: int = 30,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sinkhorn scalings of the pixel-level plan, per unique value.

    The pixel plan is ``P_ij = u[k(i)]·K[k(i), l(j)]·v[l(j)]`` with
    ``K_kl = exp(−clamp((x_k − y_l)², 1e−6, 1e6)/ε)``. Like the reference, the plan starts
    row-normalised, and each of the ``iterations`` sweeps normalises the columns, then the rows,
    to sum 1 (sums floored at 1e−6). Returns ``(u, K, v)`` in float64.
    """
    x = x_values.double().reshape(-1, 1)
    y = y_values.double().reshape(1, -1)
    a = x_counts.double().reshape(-1, 1)
    b = y_counts.double().reshape(1, -1)
    kernel = torch.exp(-((x - y) ** 2).clamp(_FLOOR, 1e6) / epsilon)
    u = 1.0 / (kernel * b).sum(dim=1, keepdim=True)
    v = torch.ones_like(b)
    for _ in range(iterations):
        column_sums = v * (a * u * kernel).sum(dim=0, keepdim=True)
        v = v / column_sums.clamp_min(_FLOOR)
        row_sums = u * (kernel * b * v).sum(dim=1, keepdim=True)
        u = u / row_sums.clamp_min(_FLOOR)
    return u.reshape(-1), kernel, v.reshape(-1)


def ot_align(
    ir: torch.Tensor,
    vi: torch.Tensor,
    epsilon: float = 0.2,
    iterations: int = 30,
    blend: float = 0.8,
    vi_levels: int | None = None,
) -> torch.Tensor:
    """HCLFuse's OT tone alignment ``X′ = blend·P·Y + (1 − blend)·X`` (spec §3), per image.

    ``P·Y`` is the barycentric projection of the visible intensities through the Sinkhorn plan;
    it depends on the infrared value only, so it is a tone curve evaluated at the unique values.
    ``ir`` and ``vi`` are ``(B, 1, H, W)`` on [0, 1]; the result has ``ir``'s dtype.
    ``vi_levels`` rounds the visible values to that many uniform levels first (exact when the
    visible image has at most that many distinct values; a 1/(levels−1) approximation else).
    """
    if vi_levels is not None and vi_levels < 2:
        raise ValueError(f"vi_levels must be >= 2, got {vi_levels}")
    check_image(ir, "ir")
    check_image(vi, "vi")
    if ir.shape != vi.shape or ir.shape[1] != 1:
        raise ValueError(
            f"ir and vi must both be (B, 1, H, W), got {tuple(ir.shape)}, {tuple(vi.shape)}"
        )
    aligned = []
    for ir_image, vi_image in zip(ir, vi, strict=True):
        x_values, x_index, x_counts = torch.unique(
            ir_image.double(), return_inverse=True, return_counts=True
        )
        vi_image = vi_image.double()
        if vi_levels is not None:
            vi_image = torch.round(vi_image * (vi_levels - 1)) / (vi_levels - 1)
        y_values, y_counts = torch.unique(vi_image, return_counts=True)
        u, kernel, v = histogram_sinkhorn(
            x_values, x_counts, y_values, y_counts, epsilon, iterations
        )
        curve = u * (kernel * (y_counts.double() * v * y_values)).sum(dim=1)
        projected = curve[x_index]
        aligned.append(blend * projected + (1.0 - blend) * ir_image.double())
    return torch.stack(aligned).to(ir.dtype)
