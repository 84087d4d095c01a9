"""Linear filtering of float64 planes through the FFT: banks of wide separable correlations and
frequency-domain responses.

:func:`filter_bank_fft` computes, for each kernel pair, exactly what
:func:`ivif.ops.filter_separable` computes (a correlation with ``kernel_y ⊗ kernel_x`` after the
named border extension), sharing one forward transform; its cost does not grow with the kernel
size. It is meant for float64 work (Qcb's 31×31 Gaussians), where its rounding error — a few
units of 1e-16 times the data's magnitude — is far below any tolerance that matters.

Three facts keep it cheap:

* the product of two separable spectra is the spectrum of the 2-D kernel, so only the two 1-D
  kernel transforms are computed;
* a 'valid' correlation of an ``H``-sample signal with a ``k``-tap kernel only reads samples
  inside the signal, so a circular correlation of length ``L ≥ H`` gives it exactly (``L`` is
  rounded up to a size with small prime factors);
* a real filter maps real planes to real planes, so two planes ride in one complex transform as
  its real and imaginary parts (:func:`complex_filter`). On CPU one complex transform pair is
  markedly faster than two real ones, whose inverse (complex-to-real) is slow.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch

from ivif.ops.filters import Border, _band, _taps, correlate1d, pad, separable_input

__all__ = [
    "circular_response",
    "complex_filter",
    "fast_fft_length",
    "filter_bank_fft",
    "filter_packed",
    "packed_spectrum",
    "remove_wraparound",
]


def fast_fft_length(n: int) -> int:
    """Smallest ``m ≥ n`` whose prime factors are 2, 3 and 5 (fast for every FFT library)."""
    m = max(int(n), 1)
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _plane_batches(count: int) -> list[slice]:
    """How ``count`` planes go through 2-D transforms: one at a time when torch runs several
    threads, else all together. MKL parallelises a batch by plane, each thread working through
    whole planes: at 2 threads it transforms one 640×480 complex plane in 0.86 ms but a batch of
    two in 2.26 ms; at one thread the batch is the faster (5.5 against 6.3 ms for two)."""
    step = 1 if torch.get_num_threads() > 1 else max(count, 1)
    return [slice(start, min(start + step, count)) for start in range(0, count, step)]


def packed_spectrum(x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Spectra of real planes ``(N, H, W)``, two per complex plane: ``fft2(x_k + i·x_{k+h})``
    with ``h = ceil(N/2)`` (an odd last plane is paired with zeros), zero-padded to ``size``.

    :func:`filter_packed` filters them by real filters; one spectrum serves several filters.
    """
    planes = x.shape[0]
    half = (planes + 1) // 2
    packed = torch.empty((half, *x.shape[1:]), dtype=x.dtype.to_complex())
    parts = torch.view_as_real(packed)  # written in place: faster than torch.complex
    parts[..., 0] = x[:half]
    parts[: planes - half, ..., 1] = x[half:]
    parts[planes - half :, ..., 1] = 0.0
    batches = _plane_batches(half)
    if len(batches) == 1:
        return torch.fft.fft2(packed, s=size)
    spectrum = torch.empty((half, *(x.shape[-2:] if size is None else size)), dtype=packed.dtype)
    for batch in batches:
        spectrum[batch] = torch.fft.fft2(packed[batch], s=size)
    return spectrum


def filter_packed(
    spectrum: torch.Tensor,
    planes: int,
    responses: Sequence[torch.Tensor],
    *,
    crop: tuple[int, int] | None = None,
    stride: int = 1,
    reuse: bool = False,
) -> torch.Tensor:
    """Filter the ``planes`` real planes packed in ``spectrum`` (:func:`packed_spectrum`) by
    each of R frequency responses -> real ``(R, planes, h, w)``.

    Each response is a ``(L_h, L_w)`` spectrum in ``fft2`` order that must describe a *real*
    filter (Hermitian-symmetric), so the real and imaginary parts of every inverse transform
    are the two packed planes filtered (circularly, on the transform grid). A zero-phase
    response (no imaginary part) is best kept as a complex tensor by callers that reuse it:
    torch multiplies a complex spectrum by a real tensor only after promoting it (0.23 against
    0.11 ms for 640×480), with the same result. An odd last plane (packed alone) is filtered by
    two responses per transform, ``R_k + i·R_{k+1}``, so that no transform carries an empty
    half. Rows and columns ``0, s, 2s, …`` below ``crop`` (default: the whole grid) are kept,
    copied once straight from the inverse transforms. ``reuse=True`` leaves ``spectrum`` intact
    (else it is overwritten).
    """
    half = spectrum.shape[0]
    paired = planes - half  # complex planes carrying two real ones; an odd last one follows
    rows, cols = spectrum.shape[-2:] if crop is None else crop
    keep = (..., slice(0, rows, stride), slice(0, cols, stride))
    shape = (len(responses), planes, len(range(0, rows, stride)), len(range(0, cols, stride)))
    out = torch.empty(shape, dtype=spectrum.real.dtype)
    lone = paired < half and len(responses) > 1
    for batch in _plane_batches(paired if lone else half):
        imaginary = range(batch.start, min(batch.stop, paired))  # planes with a partner
        for k, response in enumerate(responses):
            in_place = not reuse and k == len(responses) - 1
            product = spectrum[batch].mul_(response) if in_place else spectrum[batch] * response
            filtered = torch.fft.ifft2(product)
            out[k, batch] = filtered.real[keep]
            out[k, half + imaginary.start : half + imaginary.stop] = filtered.imag[
                : len(imaginary)
            ][keep]
    if lone:
        for k in range(0, len(responses), 2):
            both = responses[k] if k + 1 == len(responses) else responses[k] + 1j * responses[k + 1]
            filtered = torch.fft.ifft2(spectrum[paired] * both)
            out[k, paired] = filtered.real[keep]
            if k + 1 < len(responses):
                out[k + 1, paired] = filtered.imag[keep]
    return out


def complex_filter(
    x: torch.Tensor,
    responses: Sequence[torch.Tensor],
    size: tuple[int, int] | None = None,
    *,
    crop: tuple[int, int] | None = None,
    stride: int = 1,
) -> torch.Tensor:
    """Filter real planes ``(N, H, W)`` by several frequency responses sharing one transform:
    :func:`filter_packed` of :func:`packed_spectrum`, ``(R, N, h, w)``.

    Planes are packed in pairs as real and imaginary parts of one complex plane, so ``N`` real
    planes cost ``ceil(N/2)`` complex transforms each way; the responses (for transforms of
    ``size``, default ``(H, W)``) must describe real filters.
    """
    spectrum = packed_spectrum(x, size)
    return filter_packed(spectrum, x.shape[0], responses, crop=crop, stride=stride)


def _correlation_spectrum(kernel: torch.Tensor, length: int, centred: bool = False) -> torch.Tensor:
    """Spectrum that multiplies a signal's spectrum to correlate it with ``kernel``.

    Correlation with ``k`` is convolution with ``k`` reversed; its transform is ``conj(FFT(k))``
    for the kernel placed at the origin ('valid' indexing: output ``i`` reads ``i … i + k − 1``)
    or, ``centred``, with its middle tap at the origin (output ``i`` reads ``i ± k//2``).
    """
    padded = torch.zeros(length, dtype=torch.float64)
    padded[: kernel.numel()] = kernel.to(torch.float64).flatten()
    if centred:
        padded = padded.roll(-(kernel.numel() // 2))
    return torch.fft.fft(padded).conj()


@functools.lru_cache(maxsize=16)
def _separable_spectrum(
    taps_y: tuple[float, ...],
    taps_x: tuple[float, ...],
    length_h: int,
    length_w: int,
    centred: bool = False,
) -> torch.Tensor:
    """The ``(length_h, length_w)`` response correlating with ``taps_y ⊗ taps_x`` (kept: the
    metrics filter every image of a benchmark with the same few kernels at the same size)."""
    kernel_y, kernel_x = (torch.tensor(t, dtype=torch.float64) for t in (taps_y, taps_x))
    return _correlation_spectrum(kernel_y, length_h, centred).unsqueeze(-1) * (
        _correlation_spectrum(kernel_x, length_w, centred)
    )


def circular_response(kernel_y: torch.Tensor, kernel_x: torch.Tensor, size: tuple[int, int]):
    """The ``size`` response (``fft2`` order) of the circular correlation with the centred
    ``kernel_y ⊗ kernel_x``, for :func:`filter_packed`; :func:`remove_wraparound` turns its
    output into the zero-padded correlation."""
    return _separable_spectrum(_taps(kernel_y), _taps(kernel_x), *size, centred=True)


def _strip_matrix(kernel: torch.Tensor, offset: int) -> torch.Tensor:
    """``(r, r)`` matrix, ``r`` the kernel's radius, such that the 'valid' correlation of ``r``
    samples placed at ``offset`` in an otherwise zero window of ``3r`` samples is
    ``samples @ M``: the columns of that window's correlation band (:func:`_band`) that meet
    the samples."""
    radius = kernel.numel() // 2
    band = _band(_taps(kernel), 1, kernel.dtype, rows=radius)  # (r, 3r)
    return band[:, offset : offset + radius].T


def remove_wraparound(
    circular: torch.Tensor, x: torch.Tensor, kernel_y: torch.Tensor, kernel_x: torch.Tensor
) -> torch.Tensor:
    """Turn the circular correlation of ``x (..., H, W)`` with the centred, odd-sized
    ``kernel_y ⊗ kernel_x`` (:func:`circular_response`) into the zero-padded one, in place.

    With C_c / C_z the circular / zero-padded 1-D correlations along rows (h) and columns (v)
    and D = C_c − C_z (the terms that wrapped around, non-zero only within a kernel radius of
    the edges): C_c,v C_c,h x − C_z,v C_z,h x = C_c,v D_h x + D_v C_z,h x. Both are formed
    directly on edge strips, so this costs a small fraction of a transform; the corrections
    across a strip's narrow side are small matrix products (:func:`_strip_matrix`). The kernels
    must fit the image (``len ≤ H`` and ``≤ W``).
    """
    h, w = x.shape[-2:]
    ry, rx = kernel_y.numel() // 2, kernel_x.numel() // 2
    if 2 * ry + 1 > h or 2 * rx + 1 > w:
        raise ValueError(f"a {2 * ry + 1}×{2 * rx + 1} kernel does not fit a {h}×{w} image")
    kernel_y, kernel_x = kernel_y.to(x), kernel_x.to(x)
    # D_h x: the columns within rx of an edge, from the rx columns of the opposite edge
    left = x[..., w - rx :] @ _strip_matrix(kernel_x, 0)
    right = x[..., :rx] @ _strip_matrix(kernel_x, 2 * rx)
    strips = torch.stack((left, right))
    wrapped_rows = torch.cat((strips[..., h - ry :, :], strips, strips[..., :ry, :]), -2)
    left, right = correlate1d(wrapped_rows, kernel_y, dim=-2)  # C_c,v D_h x
    circular[..., :rx] -= left
    circular[..., w - rx :] -= right
    # D_v C_z,h x: the rows within ry of an edge, from C_z,h x on the opposite edge's rows
    edge_rows = torch.stack((x[..., h - ry :, :], x[..., :ry, :]))
    rows = correlate1d(pad(edge_rows, (rx, rx, 0, 0), "zeros"), kernel_x, dim=-1)
    circular[..., :ry, :] -= _strip_matrix(kernel_y, 0).T @ rows[0]
    circular[..., h - ry :, :] -= _strip_matrix(kernel_y, 2 * ry).T @ rows[1]
    return circular


def filter_bank_fft(
    x: torch.Tensor,
    kernels: Sequence[tuple[torch.Tensor, torch.Tensor]],
    border: Border = "valid",
    *,
    stride: int = 1,
) -> torch.Tensor:
    """Correlate ``x`` with several separable kernels ``(kernel_y, kernel_x)`` of one size,
    sharing the forward transform: ``(B, C, H, W) -> (K, B, C, H', W')``."""
    if x.dtype != torch.float64:
        raise TypeError(f"FFT filtering works on float64 data, got {x.dtype}")
    sizes = {(ky.numel(), kx.numel()) for ky, kx in kernels}
    if len(sizes) != 1:
        raise ValueError(f"the kernels of a bank must share one size, got {sorted(sizes)}")
    ((ky, kx),) = sizes
    xp = separable_input(x, ky, kx, border, stride, check_fit=True)
    b, c, h, w = xp.shape
    length_h, length_w = fast_fft_length(h), fast_fft_length(w)
    responses = [
        _separable_spectrum(_taps(kernel_y), _taps(kernel_x), length_h, length_w)
        for kernel_y, kernel_x in kernels
    ]
    crop = (h - ky + 1, w - kx + 1)
    out = complex_filter(
        xp.reshape(b * c, h, w), responses, (length_h, length_w), crop=crop, stride=stride
    )
    return out.reshape(len(kernels), b, c, *out.shape[-2:])
