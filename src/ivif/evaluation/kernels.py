"""Compiled kernels (numba) for metric chains that eager torch runs as dozens of passes over
memory.

A kernel here runs a chain of per-pixel arithmetic (for SSIM, its filtering too) in one pass,
one row of output at a time, so that no intermediate plane is ever written, and splits the
rows between as many threads as torch uses (:func:`_run`). Each row's result is kept apart and
the rows are summed in order, so results do not depend on the number of threads.

No kernel calls a transcendental function per pixel: numba would call the C library's scalar
versions, several times slower than torch's vectorised ones (VIF takes one logarithm per eight
pixels). Square roots are one instruction, correctly rounded as MATLAB's are, where torch's
float64 ``sqrt`` is seven times slower here and 1 ulp off for about 1 % of inputs. Division
follows IEEE (0/0 is NaN, x/0 is ±inf), as in torch.

The kernels compile on first use (about 8 s for all of them, both twins) and are cached on
disk, in ``__pycache__`` beside this module or in ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable

import numba
import numpy as np
import torch

__all__ = [
    "magnitude",
    "masked_contrast",
    "plane_index",
    "qcb_sums",
    "ssim_sums",
    "strength_and_direction",
    "vif_sums",
]


def plane_index(*stacks: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    """The planes of ``stacks`` (each ``(..., H, W)``, leading dimensions flattened) that
    broadcasting them against each other brings together: ``(N, len(stacks))`` indices, and
    the broadcast leading shape."""
    index = [torch.arange(t[..., 0, 0].numel()).view(t.shape[:-2]) for t in stacks]
    index = torch.broadcast_tensors(*index)
    return torch.stack([i.flatten() for i in index], dim=1), index[0].shape


def _twins(kernel: Callable) -> tuple[Callable, Callable]:
    """``kernel`` compiled twice: serial, and with its ``prange`` loop split between threads.

    A single-threaded process (e.g. one of ``ivif eval --jobs``'s workers) runs the serial twin
    and starts no thread pool. Numba keys its disk cache by function name and line, not by
    compile options, so the parallel twin is compiled from a copy under another name.
    """
    twin = types.FunctionType(kernel.__code__, kernel.__globals__, kernel.__name__)
    twin.__qualname__ = kernel.__qualname__ + "_parallel"
    options = {"cache": True, "error_model": "numpy"}  # IEEE division: x/0 is ±inf or NaN
    return numba.njit(**options)(kernel), numba.njit(parallel=True, **options)(twin)


def _run(twins: tuple[Callable, Callable], *args):
    """Run the serial twin on one torch thread, else the parallel one on torch's thread count."""
    threads = torch.get_num_threads()
    if threads == 1:
        return twins[0](*args)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return twins[1](*args)


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.detach().contiguous().view(-1).numpy()


def _float64(*tensors: torch.Tensor) -> list[np.ndarray]:
    """C-contiguous float64 arrays of ``tensors`` (views where they already are)."""
    return [np.ascontiguousarray(t.detach().numpy(), dtype=np.float64) for t in tensors]


def _check_components(gx: torch.Tensor, gy: torch.Tensor) -> None:
    if gx.shape != gy.shape or gx.dtype != gy.dtype:
        raise ValueError(f"components differ: {gx.shape} {gx.dtype} and {gy.shape} {gy.dtype}")


@numba.njit(cache=True)
def _local_moments_row(x, y, window, i, saturate):
    """Row ``i`` of the 'valid' local moments E[x], E[x²], E[y], E[y²], E[x·y] of two planes,
    ``(5, W − k + 1)``, weighted by ``window ⊗ window`` (taps in order, down then across);
    ``saturate`` caps the squares and products at 255 first."""
    k, width = window.shape[0], x.shape[1]
    column = np.zeros((5, width))
    for t in range(k):
        weight = window[t]
        for j in range(width):
            a, b = x[i + t, j], y[i + t, j]
            aa, bb, ab = a * a, b * b, a * b
            if saturate:
                aa, bb, ab = min(aa, 255.0), min(bb, 255.0), min(ab, 255.0)
            column[0, j] += weight * a
            column[1, j] += weight * aa
            column[2, j] += weight * b
            column[3, j] += weight * bb
            column[4, j] += weight * ab
    moments = np.zeros((5, width - k + 1))
    for q in range(5):
        for t in range(k):
            weight = window[t]
            for j in range(width - k + 1):
                moments[q, j] += weight * column[q, j + t]
    return moments


def _ssim_rows(xs, ys, pairs, window, c1, c2):
    """SSIM and cs sums of every output row of every pair ``(N·H', 2)``."""
    k = window.shape[0]
    width = xs.shape[2]
    out_h, out_w = xs.shape[1] - k + 1, width - k + 1
    sums = np.empty((pairs.shape[0] * out_h, 2))
    for item in numba.prange(sums.shape[0]):
        pair, i = item // out_h, item % out_h
        x, y = xs[pairs[pair, 0]], ys[pairs[pair, 1]]
        moments = _local_moments_row(x, y, window, i, False)
        ssim_sum, cs_sum = 0.0, 0.0
        for j in range(out_w):
            mu_x, mu_y = moments[0, j], moments[2, j]
            sq_x, sq_y, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
            cs = (2.0 * (moments[4, j] - mu_xy) + c2) / (
                (moments[3, j] - sq_y + c2) + (moments[1, j] - sq_x)
            )
            ssim_sum += (2.0 * mu_xy + c1) / ((sq_y + c1) + sq_x) * cs
            cs_sum += cs
        sums[item, 0], sums[item, 1] = ssim_sum, cs_sum
    return sums


_SSIM_ROWS = _twins(_ssim_rows)


def ssim_sums(
    x: torch.Tensor,
    y: torch.Tensor,
    pairs: torch.Tensor,
    window: torch.Tensor,
    c1: float,
    c2: float,
) -> torch.Tensor:
    """Sums over the 'valid' maps of SSIM and contrast–structure -> ``(N, 2)``, for each of
    ``N`` pairs ``(x[pairs[n, 0]], y[pairs[n, 1]])`` of float64 planes ``x (P, H, W)`` and
    ``y (Q, H, W)``.

    Wang et al., IEEE TIP 2004, eqs. 13 and 16 with C3 = C2/2: local moments weighted by
    ``window ⊗ window`` (taps in order, first down then across), variances E[x²] − μ²,
    ``cs = (2σ_xy + C2)/(σ_x² + σ_y² + C2)``.
    """
    if x.dim() != 3 or y.dim() != 3 or x.shape[1:] != y.shape[1:]:
        shapes = f"{tuple(x.shape)} and {tuple(y.shape)}"
        raise ValueError(f"expected two stacks of planes of one size, got {shapes}")
    if min(x.shape[1:]) < window.numel():
        raise ValueError(f"a {window.numel()}-tap window does not fit {tuple(x.shape[1:])} planes")
    xs, ys, taps = _float64(x, y, window)
    out_h = x.shape[1] - window.numel() + 1
    sums = _run(_SSIM_ROWS, xs, ys, pairs.numpy(), taps, float(c1), float(c2))
    return torch.from_numpy(sums.reshape(len(pairs), out_h, 2).sum(axis=1))


def _magnitude(gx, gy, scale):
    out = np.empty(gx.shape[0])
    for i in numba.prange(gx.shape[0]):
        out[i] = math.sqrt(np.float64((gx[i] * gx[i] + gy[i] * gy[i]) * scale))
    return out


_MAGNITUDE = _twins(_magnitude)


def magnitude(gx: torch.Tensor, gy: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``sqrt((gx² + gy²)·scale)`` as float64, the sum and the scaling formed in the components'
    dtype (exact for 8-bit Sobel components in float32, and for ``scale`` a power of 2)."""
    _check_components(gx, gy)
    factor = gx.new_tensor(scale).numpy()[()]  # a numpy scalar of their dtype
    return torch.from_numpy(_run(_MAGNITUDE, _flat(gx), _flat(gy), factor)).view(gx.shape)


def _strength_and_direction(sx, sy):
    out = np.empty((3, sx.shape[0]))
    for i in numba.prange(sx.shape[0]):
        a, b = sx[i], sy[i]
        sign = np.float64((a > 0) - (a < 0))
        out[0, i] = math.sqrt(np.float64(a * a + b * b))
        out[1, i] = abs(np.float64(a))
        out[2, i] = np.float64(b) * sign + (1.0 - abs(sign))
    return out


_STRENGTH_AND_DIRECTION = _twins(_strength_and_direction)


def strength_and_direction(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Strength and direction of Sobel responses ``(Sx, Sy)``: ``(3, *shape)`` float64 holding
    ``sqrt(Sx² + Sy²)`` (the sum in their dtype) and the vector ``(|Sx|, Sy·s + 1 − |s|)``,
    s = sign(Sx), whose ``atan2`` is atan(Sy/Sx), π/2 where Sx = 0 (Qabf's orientation)."""
    _check_components(sx, sy)
    out = _run(_STRENGTH_AND_DIRECTION, _flat(sx), _flat(sy))
    return torch.from_numpy(out).view(3, *sx.shape)


def _masked_contrast(narrow, wide, z):
    out = np.empty(narrow.shape[0])
    for i in numba.prange(narrow.shape[0]):
        contrast = abs(narrow[i] / wide[i] - 1.0)
        square = contrast * contrast
        masked = contrast * square / (square + z)
        out[i] = masked if masked == masked else 0.0
    return out


_MASKED_CONTRAST = _twins(_masked_contrast)


def masked_contrast(blurred: torch.Tensor, z: float) -> torch.Tensor:
    """Qcb's masked contrast C'= C³/(C² + Z) of C = |G_2 ⋆ I / G_4 ⋆ I − 1| (§2.9 step 3) from
    both Gaussian blurs ``(2, ..., H, W)`` of the CSF-filtered planes -> ``(..., H, W)``.

    A neighbourhood that blurs to exactly 0 (a constant image) has contrast 0, and so has one
    whose ratio overflows C² (beyond 1e154): both make NaN, set to 0.
    """
    narrow, wide = (_flat(t) for t in blurred)
    return torch.from_numpy(_run(_MASKED_CONTRAST, narrow, wide, float(z))).view(blurred.shape[1:])


def _qcb_rows(c_a, c_b, c_f, planes):
    rows = c_f.shape[1]
    sums = np.empty(planes.shape[0] * rows)
    for item in numba.prange(sums.shape[0]):
        pair, i = item // rows, item % rows
        a, b, f = c_a[planes[pair, 0]], c_b[planes[pair, 1]], c_f[planes[pair, 2]]
        total = 0.0
        for j in range(c_f.shape[2]):
            x, y, z = a[i, j], b[i, j], f[i, j]
            square_a = x * x
            saliency_a = square_a / (square_a + y * y)
            saliency_a = saliency_a if saliency_a == saliency_a else 0.5
            q_a = min(x, z) / max(x, z)
            q_b = min(y, z) / max(y, z)
            q_a = q_a if q_a == q_a else 1.0
            q_b = q_b if q_b == q_b else 1.0
            total += (q_a - q_b) * saliency_a + q_b
        sums[item] = total
    return sums


_QCB_ROWS = _twins(_qcb_rows)


def qcb_sums(c_a: torch.Tensor, c_b: torch.Tensor, c_f: torch.Tensor) -> torch.Tensor:
    """Σ over pixels of λ_A·Q_AF + λ_B·Q_BF for each channel of F (§2.9 steps 4–6) -> ``(C,)``,
    from the masked contrasts of A and B (``(C, H, W)``, or ``(1, H, W)`` for a grey source) and
    of F ``(C, H, W)``.

    Q_XF = min(C_X, C_F)/max(C_X, C_F), 1 where both contrasts vanish; the saliencies are
    λ_A = C_A²/(C_A² + C_B²) and λ_B = 1 − λ_A, ½ each where both sources have zero contrast,
    so each term is Q_BF + λ_A·(Q_AF − Q_BF).
    """
    planes, channels = plane_index(c_a, c_b, c_f)
    sums = _run(_QCB_ROWS, *_float64(c_a, c_b, c_f), planes.numpy())
    return torch.from_numpy(sums.reshape(channels.numel(), -1).sum(axis=1))


#: Factors per logarithm in the VIF kernels: Σ log10 x = log10 Π x over runs of this many
#: factors, which for VIF's (in [1, 1 + 255²/8] on 8-bit data) stay finite.
LOG_RUN = 8


@numba.njit(cache=True)
def _log10_runs(factors):
    total = 0.0
    for start in range(0, factors.shape[0], LOG_RUN):
        product = 1.0
        for j in range(start, min(start + LOG_RUN, factors.shape[0])):
            product *= factors[j]
        total += math.log10(product)
    return total


def _vif_rows(refs, dist, window, saturate, noise, eps, below_eps):
    count, height, width = refs.shape
    k = window.shape[0]
    out_h, out_w = height - k + 1, width - k + 1
    sums = np.empty((count * out_h, 2))
    for item in numba.prange(count * out_h):
        p, i = item // out_h, item % out_h
        ref = refs[p]
        moments = _local_moments_row(ref, dist, window, i, saturate)
        information, reference = np.empty(out_w), np.empty(out_w)
        for j in range(out_w):
            mu_r, mu_d = moments[0, j], moments[2, j]
            var_ref = moments[1, j] - mu_r * mu_r
            var_ref = var_ref if var_ref > below_eps else 0.0
            var_dist = max(moments[3, j] - mu_d * mu_d, 0.0)
            covariance = max(moments[4, j] - mu_r * mu_d, 0.0)
            covariance = covariance if var_dist > below_eps else 0.0
            gain = covariance / (var_ref + eps)
            distortion = max(var_dist - gain * covariance, eps)
            information[j] = gain * gain * var_ref / (distortion + noise) + 1.0
            reference[j] = 1.0 + var_ref / noise
        sums[item, 0], sums[item, 1] = _log10_runs(information), _log10_runs(reference)
    return sums


_VIF_ROWS = _twins(_vif_rows)


def vif_sums(
    refs: torch.Tensor,
    dist: torch.Tensor,
    window: torch.Tensor,
    noise: float,
    eps: float,
    saturate: bool = False,
) -> torch.Tensor:
    """One scale of pixel-domain VIF (Sheikh & Bovik, IEEE TIP 2006; ``spec/metrics.md`` §3.8)
    for each reference plane of ``refs (N, H, W)`` against ``dist (H, W)``: ``(N, 2)`` holding
    Σ log10(1 + g²σ_r²/(s_v² + σ_n²)) and Σ log10(1 + σ_r²/σ_n²) over the 'valid' map, with local
    statistics weighted by ``window ⊗ window`` (taps in order, down then across).

    A reference variance below ``eps`` counts as 0 (a flat reference carries no information).
    The reference code's special cases (flat reference: g = 0; flat distorted plane: g = 0;
    g < 0: g = 0; then s_v² ≥ eps) all make the term 0, which a covariance clipped at 0 and
    zeroed where σ_d² < eps, and a flat reference's variance of 0, give directly.
    ``saturate`` caps the squares and products at 255 before filtering (the 2022 toolbox formed
    them in uint8).
    """
    if refs.dim() != 3 or dist.shape != refs.shape[1:]:
        shapes = f"{tuple(refs.shape)} and {tuple(dist.shape)}"
        raise ValueError(f"expected references (N, H, W) and a distorted plane (H, W): {shapes}")
    if min(dist.shape) < window.numel():
        raise ValueError(f"a {window.numel()}-tap window does not fit a {tuple(dist.shape)} plane")
    planes = _float64(refs, dist, window)
    below_eps = math.nextafter(eps, 0.0)  # variance > below_eps is variance ≥ eps
    sums = _run(_VIF_ROWS, *planes, bool(saturate), float(noise), float(eps), below_eps)
    return torch.from_numpy(sums.reshape(refs.shape[0], -1, 2).sum(axis=1))
