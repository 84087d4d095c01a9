"""A straightforward numpy/scipy port of the fusion metrics, written only as a speed baseline.

This is what one writes when translating the MATLAB toolboxes line by line into numpy/scipy:
``scipy.signal.convolve2d`` for the 3×3 ``conv2``/``filter2`` calls, separable
``scipy.ndimage.correlate1d`` passes for the Gaussian windows, ``scipy.ndimage`` for ``imfilter``,
``np.histogram``/``np.histogram2d`` for the histograms, float64 throughout, one metric at a time
with nothing shared between them. It follows ``spec/metrics.md`` (Tang 2023 semantics for the
``tang`` set, VIFB's per-channel code for the ``vifb`` set) and agrees with :mod:`ivif.evaluation`
to the printed precision; ``benchmarks/metrics_speed.py`` checks that before timing. It is not
part of the package and is not optimised on purpose.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

# --- shared helpers ------------------------------------------------------------------------------


def rgb2gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    y = image.astype(np.float64) @ np.array(
        [0.298936021293775, 0.587043074451121, 0.114020904255103]
    )
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)


def entropy_of(image: np.ndarray) -> float:
    counts, _ = np.histogram(image, bins=256, range=(0, 256))
    p = counts / counts.sum()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    """1-D factor of ``fspecial('gaussian', size, sigma)`` (no entry falls under eps here)."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def filter2_valid(window: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``filter2(window ⊗ window, image, 'valid')`` as two separable 1-D passes."""
    half = len(window) // 2
    out = ndimage.correlate1d(image, window, axis=0, mode="constant")
    out = ndimage.correlate1d(out, window, axis=1, mode="constant")
    return out[half : image.shape[0] - half, half : image.shape[1] - half]


def qabf(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> float:
    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=float)
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)

    def edges(x):
        sx = signal.convolve2d(x, h3, mode="same")
        sy = signal.convolve2d(x, h1, mode="same")
        g = np.sqrt(sx**2 + sy**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where(sx == 0, np.pi / 2, np.arctan(sy / sx))
        return g, alpha

    ga, aa = edges(a)
    gb, ab = edges(b)
    gf, af = edges(f)

    def preservation(gx, ax):
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(gx > gf, gf / gx, np.where(gx == gf, gf, gx / gf))
        orientation = 1 - np.abs(ax - af) / (np.pi / 2)
        qg = 0.9994 / (1 + np.exp(-15 * (g - 0.5)))
        qa = 0.9879 / (1 + np.exp(-22 * (orientation - 0.8)))
        return qg * qa

    qaf, qbf = preservation(ga, aa), preservation(gb, ab)
    return float((qaf * ga + qbf * gb).sum() / (ga + gb).sum())


def average_gradient(f: np.ndarray) -> float:
    gy, gx = np.gradient(f)
    m, n = f.shape
    return float(np.sqrt((gx**2 + gy**2) / 2).sum() / ((m - 1) * (n - 1)))


# --- Tang (2023 code) ----------------------------------------------------------------------------


def vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    sigma_nsq = 2.0
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = gaussian_window(n, n / 5)
        if scale > 1:
            ref = filter2_valid(win, ref)[::2, ::2]
            dist = filter2_valid(win, dist)[::2, ::2]
        mu1, mu2 = filter2_valid(win, ref), filter2_valid(win, dist)
        sigma1_sq = filter2_valid(win, ref * ref) - mu1 * mu1
        sigma2_sq = filter2_valid(win, dist * dist) - mu2 * mu2
        sigma12 = filter2_valid(win, ref * dist) - mu1 * mu2
        sigma1_sq[sigma1_sq < 0] = 0
        sigma2_sq[sigma2_sq < 0] = 0
        g = sigma12 / (sigma1_sq + 1e-10)
        sv_sq = sigma2_sq - g * sigma12
        m = sigma1_sq < 1e-10
        g[m] = 0
        sv_sq[m] = sigma2_sq[m]
        sigma1_sq[m] = 0
        m = sigma2_sq < 1e-10
        g[m] = 0
        sv_sq[m] = 0
        m = g < 0
        sv_sq[m] = sigma2_sq[m]
        g[m] = 0
        sv_sq[sv_sq <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g * g * sigma1_sq / (sv_sq + sigma_nsq)))
        den += np.sum(np.log10(1 + sigma1_sq / sigma_nsq))
    return num / den


def tang_metrics(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> dict[str, float]:
    ir_u8, vi_u8, f_u8 = rgb2gray(ir), rgb2gray(vi), rgb2gray(fused)
    a, b, f = (x.astype(np.float64) for x in (ir_u8, vi_u8, f_u8))
    out: dict[str, float] = {}
    out["EN"] = entropy_of(f_u8)

    def mutual(x_u8):
        joint, _, _ = np.histogram2d(
            np.minimum(f_u8, 254).ravel(),
            np.minimum(x_u8, 254).ravel(),
            bins=256,
            range=[[0, 256], [0, 256]],
        )
        p = joint / joint.sum()
        p = p[p > 0]
        return entropy_of(x_u8) + entropy_of(f_u8) + float((p * np.log2(p)).sum())

    out["MI"] = mutual(ir_u8) + mutual(vi_u8)
    out["SD"] = float(np.sqrt(np.mean((f - f.mean()) ** 2)))
    rf = np.mean((f[1:, :] - f[:-1, :]) ** 2)
    cf = np.mean((f[:, 1:] - f[:, :-1]) ** 2)
    out["SF"] = float(np.sqrt(rf + cf))
    out["AG"] = average_gradient(f)
    mse = 0.5 * np.mean((f / 255 - a / 255) ** 2) + 0.5 * np.mean((f / 255 - b / 255) ** 2)
    out["PSNR"] = float(20 * np.log10(255 / np.sqrt(mse)))
    out["MSE"] = float(mse)
    out["VIF"] = vifp(a, f) + vifp(b, f)

    def corr2(x, y):
        x = x - x.mean()
        y = y - y.mean()
        return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))

    out["CC"] = (corr2(a, f) + corr2(b, f)) / 2
    out["SCD"] = corr2(f - b, a) + corr2(f - a, b)
    out["Qabf"] = qabf(a, b, f)
    return out


# --- VIFB ----------------------------------------------------------------------------------------


def _normalize1(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    if span == 0:
        return np.zeros_like(x)
    y = (x - x.min()) / span * 255
    return np.floor(y + 0.5)


def _freq_radius(m: int, n: int, divisor: float) -> np.ndarray:
    u = (np.arange(n) - n // 2) * 2 / n * n / divisor
    v = (np.arange(m) - m // 2) * 2 / m * m / divisor
    uu, vv = np.meshgrid(u, v)
    return np.sqrt(uu**2 + vv**2)


def _csf_filter(image: np.ndarray, response: np.ndarray) -> np.ndarray:
    spectrum = np.fft.fftshift(np.fft.fft2(image))
    return np.real(np.fft.ifft2(np.fft.ifftshift(response * spectrum)))


def qcb(im1: np.ndarray, im2: np.ndarray, fused: np.ndarray) -> float:
    im1, im2, fused = _normalize1(im1), _normalize1(im2), _normalize1(fused)
    m, n = fused.shape
    r = _freq_radius(m, n, 30)
    csf = np.exp(-((r / 15.3870) ** 2)) - 0.7622 * np.exp(-((r / 1.3456) ** 2))
    x = np.arange(-15, 16)

    def gauss(sigma):  # 1-D factor of exp(-(x²+y²)/2σ²)/(2πσ²)
        return np.exp(-(x**2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)

    def blur(image, g):
        out = ndimage.correlate1d(image, g, axis=0, mode="constant")
        return ndimage.correlate1d(out, g, axis=1, mode="constant")

    g1, g2 = gauss(2), gauss(4)

    def contrast(image):
        filtered = _csf_filter(image, csf)
        c = np.abs(blur(filtered, g1) / blur(filtered, g2) - 1)
        return c**3 / (c**2 + 1e-4)

    c1, c2, cf = contrast(im1), contrast(im2), contrast(fused)

    def preservation(cx):
        return np.where(cx < cf, cx / cf, cf / cx)

    lam1 = c1**2 / (c1**2 + c2**2)
    lam2 = c2**2 / (c1**2 + c2**2)
    return float(np.mean(lam1 * preservation(c1) + lam2 * preservation(c2)))


def _blocks(x: np.ndarray, size: int = 16) -> np.ndarray:
    m, n = x.shape
    pm, pn = -m % size, -n % size
    x = np.pad(x, ((0, pm), (0, pn)))
    return x.reshape((m + pm) // size, size, (n + pn) // size, size).sum(axis=(1, 3))


def qcv(im1: np.ndarray, im2: np.ndarray, fused: np.ndarray) -> float:
    im1, im2, fused = _normalize1(im1), _normalize1(im2), _normalize1(fused)
    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    sy = sx.T

    def saliency(image):
        g = np.sqrt(
            signal.correlate2d(image, sx, "same") ** 2 + signal.correlate2d(image, sy, "same") ** 2
        )
        return _blocks(g**5)

    m, n = fused.shape
    r = _freq_radius(m, n, 8)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1))

    def distortion(image):
        d = _csf_filter(image - fused, csf)
        return _blocks(d**2) / 256

    l1, l2 = saliency(im1), saliency(im2)
    d1, d2 = distortion(im1), distortion(im2)
    return float((l1 * d1 + l2 * d2).sum() / (l1 + l2).sum())


def ssim_index(img1: np.ndarray, img2: np.ndarray) -> float:
    window = gaussian_window(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filter2_valid(window, img1), filter2_valid(window, img2)
    s1 = filter2_valid(window, img1 * img1) - mu1**2
    s2 = filter2_valid(window, img2 * img2) - mu2**2
    s12 = filter2_valid(window, img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def _vifb_mutinf(x: np.ndarray, y: np.ndarray) -> float:
    def requantise(z):
        span = z.max() - z.min()
        z = (z - z.min()) / span if span else np.zeros_like(z)
        return np.floor(z * 255 + 0.5)

    joint, _, _ = np.histogram2d(
        requantise(x).ravel(), requantise(y).ravel(), bins=256, range=[[0, 256], [0, 256]]
    )
    p = joint / joint.sum()
    px, py = p.sum(1), p.sum(0)

    def h(q):
        q = q[q > 0]
        return -(q * np.log(q)).sum()

    return float(h(px) + h(py) - h(p))


def vifb_metrics(ir: np.ndarray, vi: np.ndarray, fused: np.ndarray) -> dict[str, float]:
    f = fused.astype(np.float64)
    channels = f.shape[2]

    def channel(image, k):
        return (image[..., k] if image.ndim == 3 else image).astype(np.float64)

    per: dict[str, list[float]] = {}
    for k in range(channels):
        fk, vk, ik = f[..., k], channel(vi, k), channel(ir, k)
        m, n = fk.shape
        values = per.setdefault
        values("AG", []).append(average_gradient(fk))
        hf, _ = np.histogram(fk, bins=256, range=(0, 256))
        ce = 0.0
        for src in (vk, ik):
            hs, _ = np.histogram(src, bins=256, range=(0, 256))
            ps, pf = hs / (m * n), hf / (m * n)
            both = (ps > 0) & (pf > 0)
            ce += (ps[both] * np.log2(ps[both] / pf[both])).sum() / 2
        values("CE", []).append(ce)
        values("EN", []).append(entropy_of(fk))
        values("MI", []).append(_vifb_mutinf(vk, fk) + _vifb_mutinf(ik, fk))
        errors = [np.sqrt(((src - fk) ** 2).sum()) / (m * n) for src in (vk, ik)]
        mean_error = (errors[0] + errors[1]) / 2
        values("PSNR", []).append(20 * np.log10(255 / np.sqrt(mean_error)))
        values("RMSE", []).append(mean_error)
        values("Qabf", []).append(qabf(vk, ik, fk))
        values("Qcb", []).append(qcb(vk, ik, fk))
        values("Qcv", []).append(qcv(vk, ik, fk))
        values("SSIM", []).append(ssim_index(vk, fk) + ssim_index(ik, fk))
        values("SD", []).append(np.sqrt(((fk - fk.mean()) ** 2).mean()))
    out = {name: float(np.mean(v)) for name, v in per.items()}
    sobel = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=float)
    gx = ndimage.correlate(f, sobel[..., None], mode="nearest")
    gy = ndimage.correlate(f, sobel.T[..., None], mode="nearest")
    out["EI"] = float(np.sqrt(gx**2 + gy**2).mean())
    wide = np.concatenate([f[..., k] for k in range(channels)], axis=1)
    m, n = wide.shape
    rf = ((wide[:, 1:] - wide[:, :-1]) ** 2).sum() / (m * n)
    cf = ((wide[1:, :] - wide[:-1, :]) ** 2).sum() / (m * n)
    out["SF"] = float(np.sqrt(rf + cf))
    return out
