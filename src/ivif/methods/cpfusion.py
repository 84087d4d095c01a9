"""CPFusion: training-free fusion with correlation-driven base rules and a parameter-free
attention on the details (Shan et al., 2025, Research Square 10.21203/rs.3.rs-7227512/v1).

Section numbers (§) refer to ``spec/cpfusion.md``. The official code works on full-resolution
stacks: every pyramid level is blown up by pixel replication (§3), processed, and decimated back.
This implementation does the same arithmetic on each level's native grid:

* statistics of a replicated map (the attention's mean, the correlation's moments) are moments of
  the native level weighted by how many full-resolution pixels each sample covers;
* an 8×8 block of a level-``k`` replicated map is a ``(8 / 2^k)``-square native block repeated
  ``2^k × 2^k`` times, so the mean magnitude of its 8×8 DFT (§5) is a weighted sum of the native
  block's DFT magnitudes (``|X[u]| = |A[u mod m]|·|R_k[u]|``); blocks cut by the image border are
  evaluated with the exact replicate-then-zero-pad matrices;
* the synthesis top only needs the fused base levels at the sampled positions (§6.3 closed form).

Image-sized arrays are float32 like the official code's, and each step is evaluated so that its
float32 result is (to within the last bit) the correctly rounded value of the official step: blurs
accumulate in float64 (``accumulate`` of :mod:`ivif.ops.pyramid`), the kernel taps are
torchvision's float32 ones, means over replicated maps accumulate in float64, and the block mix is
the official ``α·IR + (1 - α)·VI``. The official float32 run then differs from this one only by
its own summation noise, which decides no output pixel of the official sample (docs).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from ivif.color import luma, rgb_to_gray
from ivif.errors import InputError
from ivif.methods.base import FusionMethod, option, register
from ivif.ops import gaussian_kernel1d, laplacian_pyramid, laplacian_synthesis

__all__ = ["CPFusion", "CPFusionOptions", "CPFusionResult", "fuse_luminance", "wcc_weights"]

Variant = Literal["official", "legacy"]
Strategy = Literal["cc+max", "max", "cc", "cc-mix"]
Attention = Literal["pam", "simam", "none"]

#: Detail blocks are 8×8 on the full-resolution replicated maps (§5).
BLOCK = 8
#: The EXPAND blur: torchvision's default for a 5-tap kernel, σ = 0.15·5 + 0.35 (§2).
EXPAND_SIZE, EXPAND_SIGMA = 5, 1.1
#: SimAM's λ (cslib's ``SimAMBlock``, §4).
SIMAM_LAMBDA = 1e-4
#: Working precision of image-sized arrays (float32 as the official code; see the docs).
_WORK = torch.float32
#: Precision in which blurs and means accumulate before rounding to ``_WORK``.
_ACCUMULATE = torch.float64


@dataclasses.dataclass(frozen=True)
class CPFusionOptions:
    variant: Literal["official", "legacy"] = option(
        "official",
        "official: the latest official code (coarsest base = mean of the fused finer base levels); "
        "legacy: the July 2025 code behind the repository's sample output and figures "
        "(coarsest base = fused coarsest level)",
    )
    levels: int = option(
        4, "pyramid levels L (lowered for images smaller than 2^(L+2) pixels on a side)"
    )
    strategy: Literal["cc+max", "max", "cc", "cc-mix"] = option(
        "cc+max",
        "base-layer rule: cc+max (max on even levels, correlation mix on odd ones), max, "
        "cc (every level W_CC·IR + (1-W_CC)·VI, inference.py) or "
        "cc-mix (every level (w·IR + (2-w)·VI)/2, temp.py)",
    )
    attention: Literal["pam", "simam", "none"] = option(
        "pam",
        "detail attention: pam (parameter-free x·(sigmoid((x-μ)²)+0.5), about a 1.5× detail "
        "gain), simam (SimAM, attenuates) or none",
    )
    rounding: Literal["round", "truncate"] = option(
        "round", "float to uint8: round, or truncate as the official code does"
    )

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.levels}")


class CPFusionResult(NamedTuple):
    """Fused luminance on the studio 0–255 scale and the base-rule intermediates (§6.1–6.2)."""

    luminance: torch.Tensor
    #: Per-level correlation values V_CC, shape ``(L + 1,)``; None when the rule does not use them.
    correlation: torch.Tensor | None
    #: W_CC, the WCC curve applied to V_CC.
    wcc: torch.Tensor | None
    #: w = 1.5^((W_CC + 1) / 2), the odd-level IR weight (its half is the IR share).
    weight: torch.Tensor | None


@register
class CPFusion(FusionMethod):
    """CPFusion (§0–§8): adaptive Laplacian pyramid of the studio-range luminance, PAM-boosted
    details fused per 8×8 block by DFT magnitude, correlation-weighted base levels; the visible
    chroma is put back."""

    name = "cpfusion"
    summary = "CPFusion: correlation-driven base rules + parameter-free attention (training-free)"
    colour = "native"
    Options = CPFusionOptions
    ir_luma = "bt709"

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.rounding = self.options.rounding

    def infrared_to_gray(self, ir: torch.Tensor) -> torch.Tensor:
        """scikit-image's BT.709 luma in float64, rounded to float32, as the official loader
        does (§1).

        The official loader weights the exact ``u8 / 255`` values; when ``ir`` holds such values
        (rounded to float32 by :func:`ivif.io.to_tensor`) they are recovered first, so the result
        is bit-identical to it.
        """
        exact = ir.to(torch.float64)
        codes = torch.round(exact * 255)
        if torch.equal((codes / 255).to(ir.dtype), ir):
            exact = codes / 255
        return rgb_to_gray(exact, self.ir_luma).to(ir.dtype)

    def fuse_planes(self, ir, vi, generator=None):
        levels = self.levels_for(*ir.shape[-2:])
        # Gray planes go through the studio matrix as RGB with equal channels (§1), as the
        # official code does; in float32 that is not always 219·v + 16 to the last bit.
        pair = torch.cat([luma(ir.to(_WORK), "studio"), luma(vi.to(_WORK), "studio")], dim=1)
        o = self.options
        fused = _fuse_pair(pair, levels, o.variant, o.strategy, o.attention).luminance
        # Replacing Y and converting back (§7) adds (Yf - Yvi) / 219 to each of R, G, B: the Y
        # column of the inverse BT.601 matrix is (1, 1, 1) / 219 since gray maps to Cb = Cr = 128.
        scale, _ = _studio_gray_luma()
        return vi + fused.sub_(pair[:, 1:]).mul_(1 / scale).to(vi.dtype)

    def levels_for(self, height: int, width: int) -> int:
        """Pyramid levels used for an image: the ``levels`` option, lowered for images whose
        shorter side is below ``2^(levels + 2)`` (the official code refuses those, §2)."""
        fitting = int(math.log2(min(height, width))) - 2
        if fitting < 1:
            raise InputError(f"cpfusion needs images of at least 8×8 pixels, got {height}×{width}")
        return min(self.options.levels, fitting)

    def fuse_luminance(
        self, ir_y: torch.Tensor, vi_y: torch.Tensor, levels: int | None = None
    ) -> CPFusionResult:
        """Fuse two studio-range luminance planes ``(1, 1, H, W)`` with this instance's options
        (``levels`` overrides the option, e.g. with :meth:`levels_for`)."""
        o = self.options
        return fuse_luminance(
            ir_y, vi_y, levels=o.levels if levels is None else levels, variant=o.variant,
            strategy=o.strategy, attention=o.attention,
        )  # fmt: skip


@functools.cache
def _studio_gray_luma() -> tuple[float, float]:
    """Scale and offset of studio Y for a gray pixel (R = G = B = v): Y = scale·v + offset,
    read off :func:`ivif.color.luma` so the matrix lives in one place (219 and 16)."""
    probe = torch.tensor([0.0, 1.0], dtype=torch.float64).view(2, 1, 1, 1)
    black, white = luma(probe, "studio").flatten().tolist()
    return white - black, black


@functools.cache
def adaptive_kernels(levels: int) -> tuple[torch.Tensor, ...]:
    """The "adaptive" REDUCE kernels (§2): step ``i`` uses ``k = 2(L - i + 1) + 1`` taps and
    σ = (k - 1) / 6, so coarser steps get smaller kernels."""
    sizes = [2 * (levels - i + 1) + 1 for i in range(1, levels + 1)]
    return tuple(gaussian_kernel1d(k, (k - 1) / 6, dtype=_WORK, torchvision=True) for k in sizes)


@functools.cache
def expand_kernel() -> torch.Tensor:
    """The EXPAND kernel (§2): torchvision's default 5-tap blur, σ = 1.1, float32 taps."""
    return gaussian_kernel1d(EXPAND_SIZE, EXPAND_SIGMA, dtype=_WORK, torchvision=True)


def fuse_luminance(
    ir_y: torch.Tensor,
    vi_y: torch.Tensor,
    *,
    levels: int = 4,
    variant: Variant = "official",
    strategy: Strategy = "cc+max",
    attention: Attention = "pam",
) -> CPFusionResult:
    """CPFusion on two studio-range (0–255) luminance planes ``(1, 1, H, W)`` (§2–§7).

    Returns the fused luminance (float32, unclipped) and the base-rule intermediates.
    """
    if ir_y.shape != vi_y.shape or ir_y.dim() != 4 or ir_y.shape[:2] != (1, 1):
        raise ValueError(
            f"expected two (1, 1, H, W) planes, got {tuple(ir_y.shape)} and {tuple(vi_y.shape)}"
        )
    pair = torch.cat([ir_y, vi_y], dim=1).to(_WORK)
    return _fuse_pair(pair, levels, variant, strategy, attention)


def _fuse_pair(
    pair: torch.Tensor, levels: int, variant: str, strategy: str, attention: str
) -> CPFusionResult:
    """:func:`fuse_luminance` on the (IR, VI) planes stacked as ``(1, 2, H, W)`` float32."""
    size = (pair.shape[-2], pair.shape[-1])
    up_kernel = expand_kernel()
    gaussians, details = laplacian_pyramid(
        pair, levels, adaptive_kernels(levels), up_kernel, accumulate=_ACCUMULATE
    )

    for k, detail in enumerate(details):  # fused in place: each level is freed once fused
        weights = _replication_counts(detail, k, size)
        details[k] = fuse_detail_level(_attend(detail, weights, attention), k, size)

    # Levels that reach the output: all finer ones (official) or only the coarsest (legacy).
    used = range(levels) if variant == "official" else [levels]
    correlation = wcc = weight = None
    if strategy in ("cc", "cc-mix") or (strategy == "cc+max" and any(k % 2 for k in used)):
        correlation = correlation_values(gaussians, size)
        wcc, weight = wcc_weights(correlation)
    top = _fused_top(gaussians, variant, strategy, wcc, weight)
    del gaussians, pair
    luminance = laplacian_synthesis(top, details, up_kernel, accumulate=_ACCUMULATE)
    return CPFusionResult(luminance, correlation, wcc, weight)


def _replication_counts(level: torch.Tensor, k: int, size):
    """How many full-resolution rows (columns) each row (column) of the level-``k`` map ``level``
    covers after alignment (§3): ``min(2^k, H - j·2^k)``; None for level 0 (all ones)."""
    if k == 0:
        return None
    step = 1 << k
    return tuple(
        (n - torch.arange(m, dtype=level.dtype, device=level.device) * step).clamp(max=step)
        for m, n in zip(level.shape[-2:], size, strict=True)
    )


def _weighted_mean(x: torch.Tensor, weights) -> torch.Tensor:
    """Mean of the replicated full-resolution map of each channel, ``(B, C, 1, 1)``, accumulated
    in float64 and rounded to ``x``'s dtype."""
    if weights is None:  # in bands of rows: widening them one by one stays in cache
        total = sum(band.sum(dim=(-2, -1), keepdim=True, dtype=_ACCUMULATE) for band in _bands(x))
        return total.div_(x.shape[-2] * x.shape[-1]).to(x.dtype)
    rows, cols = (w.to(_ACCUMULATE) for w in weights)
    total = torch.einsum("h,bchw,w->bc", rows, x.to(_ACCUMULATE), cols) / (rows.sum() * cols.sum())
    return total[..., None, None].to(x.dtype)


def _bands(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Row bands of ``x`` of about 2^18 samples (2 MiB in float64): cache-sized, and few."""
    return x.split(max(1, (1 << 18) // (x[..., 0, :].numel())), dim=-2)


def _attend(detail: torch.Tensor, weights, attention: str) -> torch.Tensor:
    """Detail attention on each channel of a level (§4), statistics over the replicated map."""
    if attention == "none":
        return detail
    centred_sq = (detail - _weighted_mean(detail, weights)).square_()
    if attention == "pam":
        return centred_sq.sigmoid_().add_(0.5).mul_(detail)
    count = (
        detail.shape[-2] * detail.shape[-1]
        if weights is None
        else weights[0].sum() * weights[1].sum()
    )
    variance = _weighted_mean(centred_sq, weights) * count / (count - 1)
    return detail * torch.sigmoid(centred_sq / (4 * (variance + SIMAM_LAMBDA)) + 0.5)


@functools.cache
def _block_dft(level: int, valid: int) -> torch.Tensor:
    """``(8, m)`` complex matrix mapping an ``m``-sample native block (m = 8 / 2^k) to the 8-point
    DFT of its replicated version cropped to the first ``valid`` samples (the rest zero, §5)."""
    samples = torch.arange(valid)
    frequencies = torch.arange(BLOCK)
    dft = torch.exp(-2j * math.pi * torch.outer(frequencies, samples).double() / BLOCK)
    replicate = F.one_hot(samples >> level, BLOCK >> level).to(dft.dtype)
    return dft @ replicate


@functools.cache
def _interior_weights(level: int) -> torch.Tensor:
    """Weights over one axis of an ``m``-point DFT: the mean of ``|8-point DFT|`` of a replicated
    block is ``Σ_pq |A[p,q]|·a[p]·a[q] / 64`` with ``a[p] = Σ_{u ≡ p (mod m)} |R_k[u]|``."""
    m = BLOCK >> level
    response = _block_dft(level, BLOCK)[:, 0].abs()  # |R_k[u]|: DFT of 2^k ones
    return response.view(1 << level, m).sum(0)


def _block_scores(blocks: torch.Tensor, level: int, size) -> torch.Tensor:
    """Mean |8×8 DFT| of every replicated block (§5) from native blocks ``(B, C, P, m, Q, m)``;
    returns ``(B, C, P, 1, Q, 1)``."""
    m = BLOCK >> level
    axis = _interior_weights(level)
    half = m // 2 + 1  # rfft keeps q = 0..m/2; the others mirror q = 1..m/2-1
    mirror = torch.ones(half, dtype=axis.dtype)
    mirror[1 : (m + 1) // 2] = 2.0
    # A real DFT along the contiguous axis, then a complex one across rows: no transposed copy.
    spectrum = torch.fft.fft(torch.fft.rfft(blocks, dim=5), dim=3).abs()
    rows, cols = axis.to(spectrum), (axis[:half] * mirror).to(spectrum)
    scores = torch.einsum("bcpuq,u->bcpq", spectrum @ cols, rows) / BLOCK**2
    rows_left = size[0] - BLOCK * (blocks.shape[2] - 1)
    cols_left = size[1] - BLOCK * (blocks.shape[4] - 1)
    if level > 0 and (rows_left < BLOCK or cols_left < BLOCK):
        # Blocks cut by the border are not replicated native blocks: use the exact matrices.
        full = _block_dft(level, BLOCK)
        last_row, last_col = _block_dft(level, rows_left), _block_dft(level, cols_left)
        if rows_left < BLOCK:
            cols = torch.stack([full] * (blocks.shape[4] - 1) + [last_col])
            edge = _explicit_scores(blocks[:, :, -1:], last_row[None], cols)
            scores[:, :, -1] = edge[:, :, 0]
        if cols_left < BLOCK:
            rows = torch.stack([full] * (blocks.shape[2] - 1) + [last_row])
            edge = _explicit_scores(blocks[:, :, :, :, -1:], rows, last_col[None])
            scores[:, :, :, -1] = edge[:, :, :, 0]
    return scores[:, :, :, None, :, None]


def _explicit_scores(blocks: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor):
    """Mean |Gy·A·Gxᵀ| with per-block-row ``rows (P, 8, m)`` and per-block-column ``cols``."""
    spectrum = torch.einsum("pus,bcpsqt,qvt->bcpquv", rows, blocks.to(rows.dtype), cols)
    return spectrum.abs().mean(dim=(-2, -1)).to(blocks.dtype)


def fuse_detail_level(detail: torch.Tensor, level: int, size) -> torch.Tensor:
    """Fuse a ``(1, 2, h, w)`` (IR, VI) detail level blockwise (§5): each 8×8 full-resolution
    block is ``α·IR + (1 - α)·VI`` with ``α = s_IR / (s_IR + s_VI)``, ``s`` the mean magnitude of
    the block's 2-D DFT. Returns ``(1, 1, h, w)``. Blocks where both scores are 0 take α = ½."""
    if level >= 3:  # one native sample per block: s is |x| times a factor common to both
        magnitude = detail.abs()
        return _mix(magnitude[:, :1], magnitude[:, 1:], detail[:, :1], detail[:, 1:])
    height, width = size
    m = BLOCK >> level
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    h, w = detail.shape[-2:]
    if (rows * m, cols * m) != (h, w):
        detail = F.pad(detail, (0, cols * m - w, 0, rows * m - h))
    blocks = detail.view(detail.shape[0], 2, rows, m, cols, m)
    scores = _block_scores(blocks, level, size)
    fused = _mix(scores[:, :1], scores[:, 1:], blocks[:, :1], blocks[:, 1:])
    return fused.reshape(detail.shape[0], 1, rows * m, cols * m)[..., :h, :w]


def _mix(score_ir, score_vi, ir, vi):
    """``α·ir + (1 - α)·vi`` with ``α = s_ir / (s_ir + s_vi)`` (½ where both scores are 0),
    evaluated in that form as the official code does (``lerp`` rounds differently)."""
    total = score_ir + score_vi
    alpha = torch.where(total > 0, score_ir / total.where(total > 0, 1.0), 0.5)
    fused = alpha * ir
    return fused.add_((1 - alpha) * vi)


def correlation_values(gaussians: list[torch.Tensor], size) -> torch.Tensor:
    """V_CC of each base level (§6.1): the covariance pooled over all levels of the replicated
    stacks, divided by each level's unbiased standard deviations. A constant level gives 0.
    Moments accumulate in float64."""
    covariances, variances = [], []
    count = size[0] * size[1]
    for k, level in enumerate(gaussians):
        moments = _second_moments(level, _replication_counts(level, k, size))
        covariances.append(moments[0, 1])
        variances.append(moments.diagonal() * count / (count - 1))
    covariance = torch.stack(covariances).mean()
    product = torch.stack(variances).prod(dim=1)
    return torch.where(product > 0, covariance / product.clamp_min(1e-300).sqrt(), 0.0)


def _second_moments(level: torch.Tensor, weights) -> torch.Tensor:
    """Population covariance matrix ``(2, 2)`` of the (IR, VI) channels of a ``(1, 2, h, w)``
    level's replicated full-resolution map, from float64 sums of x and x·xᵀ."""
    if weights is None:  # full resolution: widen in bands of rows, one matrix product each
        wide = {"dtype": _ACCUMULATE, "memory_format": torch.contiguous_format}
        bands = [band.to(**wide).view(2, -1) for band in _bands(level[0])]
        weighted = bands
        total = float(level.shape[-2] * level.shape[-1])
    else:
        rows, cols = (w.to(_ACCUMULATE) for w in weights)
        bands = [level[0].to(_ACCUMULATE).reshape(2, -1)]
        weighted = [bands[0] * torch.outer(rows, cols).flatten()]
        total = float(rows.sum() * cols.sum())
    sums = sum(w.sum(dim=1) for w in weighted) / total
    products = sum(w @ b.T for w, b in zip(weighted, bands, strict=True)) / total
    return products - torch.outer(sums, sums)


def wcc_weights(correlation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The WCC curve (§6.2): ``W_CC = 1 - e^-V`` for V > 0 else ``e^V - 1``, and
    ``w = 1.5^((W_CC + 1) / 2)``."""
    wcc = torch.where(correlation > 0, -torch.expm1(-correlation), torch.expm1(correlation))
    return wcc, 1.5 ** ((wcc + 1) / 2)


def _fuse_base(ir, vi, level: int, strategy: str, wcc, weight) -> torch.Tensor:
    """One base level under the base rule (§6.3, §6.5)."""
    if strategy == "max" or (strategy == "cc+max" and level % 2 == 0):
        return torch.maximum(ir, vi)
    if strategy == "cc":
        return wcc[level] * ir + (1 - wcc[level]) * vi
    return (weight[level] * ir + (2 - weight[level]) * vi) / 2


def _fused_top(gaussians, variant: str, strategy: str, wcc, weight) -> torch.Tensor:
    """The synthesis top (§6.3–6.4). Legacy: the fused coarsest level. Official: the mean of the
    fused finer levels 0..L-1, point-sampled onto the coarsest grid (no anti-alias filter)."""
    levels = len(gaussians) - 1

    def fused(k: int, sample: int) -> torch.Tensor:
        g = gaussians[k][..., ::sample, ::sample]
        return _fuse_base(g[:, :1], g[:, 1:], k, strategy, wcc, weight)

    if variant == "legacy":
        return fused(levels, 1)
    return torch.stack([fused(k, 1 << (levels - k)) for k in range(levels)]).mean(dim=0)
