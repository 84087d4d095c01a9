"""Metrics without published reference values, against independent float64 re-derivations.

Nabf, SSIM (Tang 2023), MEF-SSIM, MS-SSIM, FMI, QSF and VIF (Tang 2023) have no values to
reproduce. Each is re-derived here straight from its definition — per pixel, per window or per
patch with plain numpy/scipy loops, no shared code with the package — and compared on small crops
of real TNO images (synthetic images when ``../shared`` is absent would hide border effects, so
those tests need it). Qabf and Qcb, whose published values the conformance tests check when
``../shared`` is present, are also re-derived here on synthetic images, so that their special
cases are checked without it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import scipy.ndimage
import scipy.signal
import torch

from ivif.evaluation import evaluate_arrays
from ivif.evaluation.feature_mi import dct_map, edge_map, feature_mutual_information, wavelet_map
from ivif.io import read_image
from ivif.ops.wavelet import dwt2, meyer_scaling_filter, orthogonal_filter_bank

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tno(shared_dir):
    """A real TNO triple (IR, VI, DenseFuse output) as grey uint8 arrays."""
    data = shared_dir / "data" / "tno" / "test"
    fused = shared_dir / "oracle" / "tang_tno" / "fused" / "DenseFuse" / "05.png"
    return tuple(
        read_image(path)[..., 0] if read_image(path).ndim == 3 else read_image(path)
        for path in (data / "ir" / "05.png", data / "vi" / "05.png", fused)
    )


def crop(images, top, left, size):
    h, w = size
    return tuple(np.ascontiguousarray(x[top : top + h, left : left + w]) for x in images)


def fspecial(size, sigma):
    half = (size - 1) / 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


# --- VIF, Tang 2023 (vifp_mscale on 0–255 doubles) ----------------------------------------------


def vifp_reference(ref, dist):
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (5 - scale) + 1
        win = fspecial(n, n / 5)
        if scale > 1:
            ref = scipy.signal.correlate2d(ref, win, "valid")[::2, ::2]
            dist = scipy.signal.correlate2d(dist, win, "valid")[::2, ::2]
        mu1 = scipy.signal.correlate2d(ref, win, "valid")
        mu2 = scipy.signal.correlate2d(dist, win, "valid")
        s1 = np.maximum(scipy.signal.correlate2d(ref * ref, win, "valid") - mu1 * mu1, 0)
        s2 = np.maximum(scipy.signal.correlate2d(dist * dist, win, "valid") - mu2 * mu2, 0)
        s12 = scipy.signal.correlate2d(ref * dist, win, "valid") - mu1 * mu2
        for i, j in np.ndindex(s1.shape):  # the special cases, pixel by pixel, in order
            a, b, c = s1[i, j], s2[i, j], s12[i, j]
            g = c / (a + 1e-10)
            sv = b - g * c
            if a < 1e-10:
                g, sv, a = 0.0, b, 0.0
            if b < 1e-10:
                g, sv = 0.0, 0.0
            if g < 0:
                sv, g = b, 0.0
            sv = max(sv, 1e-10)
            num += math.log10(1 + g * g * a / (sv + 2.0))
            den += math.log10(1 + a / 2.0)
    return num / den


def test_vif_tang_matches_a_per_pixel_rederivation(tno):
    ir, vi, fused = crop(tno, 40, 60, (48, 56))
    expected = sum(vifp_reference(x.astype(float), fused.astype(float)) for x in (ir, vi))
    got = evaluate_arrays(ir, vi, fused, ["VIF"], "tang")["VIF"]
    assert got == pytest.approx(expected, rel=1e-9)


def test_vif_on_flat_regions_matches_the_per_pixel_rederivation():
    # 32-pixel constant blocks leave windows of (numerically) zero variance at every scale, in
    # the reference (IR), in F, or in both, where the reference code's special cases apply
    rng = np.random.default_rng(5)
    blocks = np.kron(rng.integers(0, 256, (2, 3)), np.ones((32, 32))).astype(np.uint8)
    noise = rng.integers(0, 256, blocks.shape).astype(np.uint8)
    for ir, vi, fused in [
        (blocks, noise, noise),
        (noise, blocks, blocks),
        (blocks, noise, 255 - blocks),
    ]:
        expected = sum(vifp_reference(x.astype(float), fused.astype(float)) for x in (ir, vi))
        got = evaluate_arrays(ir, vi, fused, ["VIF"], "tang")["VIF"]
        assert got == pytest.approx(expected, rel=1e-9)


# --- SSIM, Tang 2023 (MATLAB ssim on 0–255 doubles) ----------------------------------------------


def matlab_ssim(a, b):
    w = fspecial(11, 1.5)

    def blur(x):
        return scipy.ndimage.correlate(x, w, mode="nearest")

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    s_a = blur(a * a) - mu_a**2
    s_b = blur(b * b) - mu_b**2
    s_ab = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
    return float(np.mean(num / ((mu_a**2 + mu_b**2 + c1) * (s_a + s_b + c2))))


def test_ssim_tang_is_the_average_of_matlab_ssim(tno):
    ir, vi, fused = (x.astype(float) for x in crop(tno, 10, 10, (40, 52)))
    expected = (matlab_ssim(fused, ir) + matlab_ssim(fused, vi)) / 2
    got = evaluate_arrays(*crop(tno, 10, 10, (40, 52)), ["SSIM"], "tang")["SSIM"]
    assert got == pytest.approx(expected, rel=1e-10)


# --- MS-SSIM (Wang 2003) -------------------------------------------------------------------------


def ms_ssim_reference(x, y):
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    w = fspecial(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    result = 1.0
    for level, weight in enumerate(weights):
        if level:
            x, y = (
                0.25
                * sum(
                    np.pad(z, ((0, 1), (0, 1)), mode="symmetric")[di::2, dj::2][
                        : (z.shape[0] + 1) // 2, : (z.shape[1] + 1) // 2
                    ]
                    for di in (0, 1)
                    for dj in (0, 1)
                )
                for z in (x, y)
            )
        mu_x = scipy.signal.correlate2d(x, w, "valid")
        mu_y = scipy.signal.correlate2d(y, w, "valid")
        s_x = scipy.signal.correlate2d(x * x, w, "valid") - mu_x**2
        s_y = scipy.signal.correlate2d(y * y, w, "valid") - mu_y**2
        s_xy = scipy.signal.correlate2d(x * y, w, "valid") - mu_x * mu_y
        cs = (2 * s_xy + c2) / (s_x + s_y + c2)
        if level == len(weights) - 1:
            value = np.mean(cs * (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1))
        else:
            value = np.mean(cs)
        result *= max(value, 0.0) ** weight
    return result


def test_ms_ssim_matches_wangs_definition(tno):
    images = crop(tno, 0, 0, (180, 190))
    ir, vi, fused = (x.astype(float) for x in images)
    expected = (ms_ssim_reference(ir, fused) + ms_ssim_reference(vi, fused)) / 2
    got = evaluate_arrays(*images, ["MS_SSIM"], "tang")["MS_SSIM"]
    assert got == pytest.approx(expected, rel=1e-9)


# --- MEF-SSIM (Ma, Zeng & Wang 2015) -------------------------------------------------------------


def mef_ssim_single_reference(seq, fused):
    """Patch by patch: box-window contrast and structure, adaptive weights, Gaussian statistics."""
    eps = np.finfo(float).eps
    gauss = fspecial(11, 1.5).ravel(order="F")
    c = (0.03 * 255) ** 2
    h, w = fused.shape
    scores = []
    for i in range(5, h - 5):
        for j in range(5, w - 5):
            patches = [s[i - 5 : i + 6, j - 5 : j + 6].ravel(order="F") for s in seq]
            means = [p.mean() for p in patches]
            centred = [p - m for p, m in zip(patches, means, strict=True)]
            norms = [np.linalg.norm(v) for v in centred]
            contrast = [n + 0.001 for n in norms]
            consistency = (np.linalg.norm(sum(centred)) + eps) / (sum(norms) + eps)
            if consistency > 1:
                consistency = 1 - eps
            power = min(math.tan(math.pi / 2 * consistency), 10.0)
            weights = np.array([(e / 11) ** power + eps for e in contrast])
            weights /= weights.sum()
            desired = sum(wk * v / e for wk, v, e in zip(weights, centred, contrast, strict=True))
            if np.linalg.norm(desired) > 0:
                desired = desired / np.linalg.norm(desired) * max(contrast)
            f = fused[i - 5 : i + 6, j - 5 : j + 6].ravel(order="F")
            mu_r, mu_f = (gauss * desired).sum(), (gauss * f).sum()
            var_r = (gauss * (desired - mu_r) ** 2).sum()
            var_f = (gauss * (f - mu_f) ** 2).sum()
            cov = (gauss * (desired - mu_r) * (f - mu_f)).sum()
            scores.append((2 * cov + c) / (var_r + var_f + c))
    return float(np.mean(scores))


def _downsample(x):
    padded = np.pad(x, ((0, 1), (0, 1)), mode="symmetric")
    h, w = (x.shape[0] + 1) // 2, (x.shape[1] + 1) // 2
    return 0.25 * sum(padded[di::2, dj::2][:h, :w] for di in (0, 1) for dj in (0, 1))


def test_tang2022_ssim_is_single_scale_mef_ssim(tno):
    images = crop(tno, 100, 120, (22, 25))
    ir, vi, fused = (x.astype(float) for x in images)
    expected = mef_ssim_single_reference([ir, vi], fused)
    got = evaluate_arrays(*images, ["SSIM"], "tang2022")["SSIM"]
    assert got == pytest.approx(expected, rel=1e-9)


def test_mef_ssim_is_the_weighted_product_over_three_scales(tno):
    images = crop(tno, 60, 80, (46, 50))
    seq = [x.astype(float) for x in images[:2]]
    fused = images[2].astype(float)
    weights = np.array([0.0448, 0.2856, 0.3001])
    weights /= weights.sum()
    expected = 1.0
    for level, weight in enumerate(weights):
        if level:
            seq, fused = [_downsample(s) for s in seq], _downsample(fused)
        expected *= mef_ssim_single_reference(seq, fused) ** weight
    got = evaluate_arrays(*images, ["MEF_SSIM"], "tang")["MEF_SSIM"]
    assert got == pytest.approx(expected, rel=1e-9)


# --- FMI (Haghighat's fast FMI, as the toolbox computes it) --------------------------------------


def window_fmi_reference(a, f):
    """One 3×3 window pair, written as the toolbox's loops (``spec`` §3.15)."""
    if np.array_equal(a, f):
        return 1.0

    def pdf(x):
        x = x.ravel(order="F")
        x = np.ones(9) if x.max() == x.min() else (x - x.min()) / (x.max() - x.min())
        return x / x.sum()

    p, q = pdf(a), pdf(f)
    cp, cq = np.cumsum(p), np.cumsum(q)
    pt, qt = p - p.mean(), q - q.mean()
    c = 0.0 if (pt * qt).sum() == 0 else (pt * qt).sum() / math.sqrt((pt**2).sum() * (qt**2).sum())
    idx = np.arange(1, 10)
    sd_p = math.sqrt(max((idx**2 * p).sum() - (idx * p).sum() ** 2, 0))
    sd_q = math.sqrt(max((idx**2 * q).sum() - (idx * q).sum() ** 2, 0))

    def bound(u, v):
        return min(u, v) if c >= 0 else max(u + v - 1, 0.0)

    cov = sum(bound(cq[i], cp[j]) - cq[i] * cp[j] for i in range(9) for j in range(9))
    # cov == 0: the bound is the independence copula, every mixture the independent joint
    # (the toolbox divides by 0 and gets NaN)
    mix = 0.0 if c == 0 or sd_p == 0 or sd_q == 0 or cov == 0 else c / (cov / (sd_q * sd_p))
    joint_entropy = 0.0
    for i in range(9):
        for j in range(9):
            cell = bound(cq[i], cp[j])
            cell -= bound(cq[i - 1], cp[j]) if i else 0.0
            cell -= bound(cq[i], cp[j - 1]) if j else 0.0
            cell += bound(cq[i - 1], cp[j - 1]) if i and j else 0.0
            jpdf = mix * cell + (1 - mix) * q[i] * p[j]
            if jpdf != 0:
                joint_entropy -= jpdf * math.log2(abs(jpdf))
    h_p = -sum(v * math.log2(v) for v in p if v != 0)
    h_q = -sum(v * math.log2(v) for v in q if v != 0)
    mi = h_p + h_q - joint_entropy
    return 0.0 if mi == 0 else 2 * mi / (h_p + h_q)


def fmi_reference(a, b, f):
    h, w = f.shape
    scores = [
        (
            window_fmi_reference(a[i : i + 3, j : j + 3], f[i : i + 3, j : j + 3])
            + window_fmi_reference(b[i : i + 3, j : j + 3], f[i : i + 3, j : j + 3])
        )
        / 2
        for i in range(h - 2)
        for j in range(w - 2)
    ]
    return float(np.mean(scores))


def test_windowed_fmi_matches_the_loop_definition():
    rng = np.random.default_rng(11)
    a = rng.normal(size=(9, 8))
    b = rng.normal(size=(9, 8))
    f = 0.6 * a + 0.4 * b + 0.1 * rng.normal(size=(9, 8))
    f[:4, :4] = a[:4, :4]  # identical windows score 1
    b[5:, 5:] = 3.0  # a constant source window
    got = feature_mutual_information(*(torch.from_numpy(x) for x in (a, b, f)), chunk=7)
    assert got == pytest.approx(fmi_reference(a, b, f), rel=1e-12)


def test_fmi_dct_of_a_constant_source_is_finite():
    """A constant image's DCT is its DC term and rounding noise: the 3×3 window holding the DC
    term is a point mass up to ~1e-16, whose upper Fréchet bound rounds to the independence
    copula (bound correlation exactly 0, the toolbox's c/0 = NaN); it scores as independent.
    Windows near such a point mass are ill-conditioned (their scores, ~1e-7, are rounding
    noise that differs between summation orders), hence the absolute tolerance."""
    rng = np.random.default_rng(0)
    vi, fused = rng.integers(0, 256, (2, 7, 7), dtype=np.uint8)
    ir = np.full((7, 7), 31, dtype=np.uint8)
    got = evaluate_arrays(ir, vi, fused, ["FMI_dct"], "tang")["FMI_dct"]
    a, b, f = (x.numpy() for x in dct_map(torch.from_numpy(np.stack((ir, vi, fused)) * 1.0)))
    assert math.isfinite(got)
    assert got == pytest.approx(fmi_reference(a, b, f), abs=1e-7)


@pytest.mark.parametrize(("name", "feature"), [("FMI_dct", dct_map), ("FMI_pixel", edge_map)])
def test_fmi_metrics_apply_the_windowed_fmi_to_their_features(tno, name, feature):
    images = crop(tno, 30, 30, (14, 15))
    planes = torch.from_numpy(np.stack(images).astype(np.float64))
    a, b, f = (x.numpy() for x in feature(planes))
    got = evaluate_arrays(*images, [name], "tang")[name]
    assert got == pytest.approx(fmi_reference(a, b, f), rel=1e-12)


def test_fmi_w_uses_the_rescaled_wavelet_mosaic(tno):
    """[cA cH; cV cD] of the one-level DWT (checked against a direct convolution in the ops
    tests), min–max rescaled per image, through the windowed FMI checked above."""
    images = crop(tno, 30, 30, (6, 7))
    planes = torch.from_numpy(np.stack(images).astype(np.float64))
    features = wavelet_map(planes)
    low, high = orthogonal_filter_bank(meyer_scaling_filter())
    c_a, c_h, c_v, c_d = dwt2(planes, low, high)
    mosaic = torch.cat((torch.cat((c_a, c_h), -1), torch.cat((c_v, c_d), -1)), -2).numpy()
    for k in range(3):
        low_k, high_k = mosaic[k].min(), mosaic[k].max()
        np.testing.assert_allclose(features[k], (mosaic[k] - low_k) / (high_k - low_k), atol=1e-15)
    got = evaluate_arrays(*images, ["FMI_w"], "tang")["FMI_w"]
    assert got == pytest.approx(feature_mutual_information(*features), rel=1e-12)


def test_dct_feature_is_matlab_dct2(tno):
    image = crop(tno, 0, 0, (12, 10))[0].astype(float)
    expected = scipy.fft.dctn(image, norm="ortho")
    np.testing.assert_allclose(dct_map(torch.from_numpy(image)).numpy(), expected, atol=1e-12)


def edge_reference(x):
    """MATLAB edge(x, 'sobel') with its default threshold and thinning, pixel by pixel."""
    op = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 8
    bx = scipy.ndimage.correlate(x, op.T, mode="nearest")
    by = scipy.ndimage.correlate(x, op, mode="nearest")
    b = bx**2 + by**2
    cutoff = 4 * b.mean()
    h, w = x.shape
    e = np.zeros_like(x)
    tol = 100 * np.finfo(float).eps
    for i in range(h):
        for j in range(w):
            if b[i, j] <= cutoff:
                continue
            left, right = b[i, max(j - 1, 0)], b[i, min(j + 1, w - 1)]
            up, down = b[max(i - 1, 0), j], b[min(i + 1, h - 1), j]
            horizontal = abs(bx[i, j]) >= abs(by[i, j]) - tol and left <= b[i, j] > right
            vertical = abs(by[i, j]) >= abs(bx[i, j]) - tol and up <= b[i, j] > down
            e[i, j] = float(horizontal or vertical)
    return e


def test_edge_feature_matches_a_per_pixel_rederivation(tno):
    image = crop(tno, 50, 70, (30, 33))[1].astype(float)
    got = edge_map(torch.from_numpy(image)[None])[0].numpy()
    np.testing.assert_array_equal(got, edge_reference(image))
    assert 0 < got.sum() < got.size  # a real image has some, not only, edges


# --- Qabf (Xydeas & Petrović 2000, as VIFB and Tang's toolboxes compute it) --------------------


def qabf_reference(a, b, f):
    """Spec §2.8 with masks, as written: conv2 'same' Sobel, α = π/2 where Sx = 0, G = g_F where
    the strengths are equal."""
    kx = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])

    def features(p):
        sx = scipy.signal.convolve2d(p, kx, mode="same")
        sy = scipy.signal.convolve2d(p, kx.T[::-1], mode="same")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.hypot(sx, sy), np.where(sx == 0, np.pi / 2, np.arctan(sy / sx))

    (g_f, a_f), total, weight = features(f), 0.0, 0.0
    for g_x, a_x in (features(a), features(b)):
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = np.where(g_x > g_f, g_f / g_x, np.where(g_x < g_f, g_x / g_f, g_f))
        orientation = 1 - np.abs(a_x - a_f) / (np.pi / 2)
        q = (
            0.9994
            / (1 + np.exp(-15 * (strength - 0.5)))
            * 0.9879
            / (1 + np.exp(-22 * (orientation - 0.8)))
        )
        total, weight = total + (q * g_x).sum(), weight + g_x.sum()
    return total / weight


@pytest.mark.parametrize("convention", ["tang", "vifb"])
def test_qabf_matches_a_masked_rederivation(convention):
    # flat blocks (no edge: the quirk gives 0), F copying A or B in places (equal strengths:
    # the quirk gives g_F), vertical and horizontal steps (Sx = 0: α = π/2)
    rng = np.random.default_rng(11)
    a = rng.integers(0, 256, (40, 48)).astype(np.uint8)
    b = np.kron(rng.integers(0, 256, (4, 4)), np.ones((10, 12))).astype(np.uint8)
    f = ((a.astype(int) + b) // 2).astype(np.uint8)
    f[:20, :24], f[20:, 24:] = a[:20, :24], b[20:, 24:]
    expected = qabf_reference(*(x.astype(float) for x in (a, b, f)))
    got = evaluate_arrays(a, b, f, ["Qabf"], convention)["Qabf"]
    assert got == pytest.approx(expected, rel=1e-12)


# --- Qcb (Chen & Blum 2009, as VIFB computes it) ------------------------------------------------


def qcb_reference(vi, ir, f):
    """Spec §2.9 step by step: normalize1, the CSF on fftshift-ed spectra, 'same' zero-padded
    31×31 Gaussians, masked contrast, preservation under the mask C_X < C_F, saliency."""

    def contrast(x):
        x = np.floor((x - x.min()) / (x.max() - x.min()) * 255.0 + 0.5)
        m, n = x.shape
        u, v = np.meshgrid(
            (np.arange(n) - n // 2) * (2 / n) * n / 30, (np.arange(m) - m // 2) * (2 / m) * m / 30
        )
        r = np.hypot(u, v)
        csf = np.exp(-((r / 15.3870) ** 2)) - 0.7622 * np.exp(-((r / 1.3456) ** 2))
        y = np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(x)) * csf)))
        offsets = np.arange(-15, 16)
        blurred = []
        for sigma in (2.0, 4.0):
            g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
            blurred.append(scipy.signal.correlate2d(y, g / (2 * np.pi * sigma**2), mode="same"))
        c = np.abs(blurred[0] / blurred[1] - 1)
        return c**3 / (c**2 + 1e-4)

    c1, c2, cf = (contrast(x) for x in (vi, ir, f))
    q1, q2 = (np.where(c < cf, c / cf, cf / c) for c in (c1, c2))
    return np.mean(c1**2 / (c1**2 + c2**2) * q1 + c2**2 / (c1**2 + c2**2) * q2)


@pytest.mark.parametrize("size", [(40, 48), (24, 28)])
def test_qcb_matches_a_stepwise_rederivation(size):
    # 40×48 filters on the transform grid and removes the wrapped-around terms; 24×28 is
    # smaller than the Gaussians' window and is padded instead
    rng = np.random.default_rng(13)
    ir, vi = (rng.integers(0, 256, size).astype(np.uint8) for _ in range(2))
    f = ((ir.astype(int) + vi) // 2).astype(np.uint8)
    expected = qcb_reference(*(x.astype(float) for x in (vi, ir, f)))
    got = evaluate_arrays(ir, vi, f, ["Qcb"], "vifb")["Qcb"]
    assert got == pytest.approx(expected, rel=1e-12)


# --- Nabf (Kumar 2013) ---------------------------------------------------------------------------


def nabf_reference(a, b, f):
    gv_k = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    gh_k = gv_k.T

    def window_sum(padded, kernel):
        """sum(sum(window .* kernel)) as the toolbox's sobel_fn: each column, then the columns
        (the order matters on [0, 1] data, where ties between images decide artefacts)."""
        h, w = padded.shape[0] - 2, padded.shape[1] - 2
        columns = []
        for q in range(3):
            total = np.zeros((h, w))
            for p in range(3):
                total = total + padded[p : p + h, q : q + w] * kernel[p, q]
            columns.append(total)
        return (columns[0] + columns[1]) + columns[2]

    def edges(x):
        padded = np.pad(x, 1, mode="reflect")
        gv = window_sum(padded, gv_k)
        gh = window_sum(padded, gh_k)
        g = np.sqrt(gv**2 + gh**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = np.where((gv == 0) & (gh == 0), 0.0, np.arctan(gv / gh))
        return g, alpha

    (ga, aa), (gb, ab), (gf, af) = edges(a), edges(b), edges(f)

    def preservation(gx, ax):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where((gx == 0) | (gf == 0), 0.0, np.minimum(gx, gf) / np.maximum(gx, gf))
        orientation = np.abs(np.abs(ax - af) - np.pi / 2) * 2 / np.pi
        qg = 0.9999 / (1 + np.exp(-19 * (ratio - 0.5)))
        qa = 0.9995 / (1 + np.exp(-22 * (orientation - 0.5)))
        return np.sqrt(qg * qa)

    wa = np.where(ga >= 2, ga**1.5, 0.001)
    wb = np.where(gb >= 2, gb**1.5, 0.001)
    artefact = ((gf > ga) & (gf > gb)).astype(float)
    num = (artefact * ((1 - preservation(ga, aa)) * wa + (1 - preservation(gb, ab)) * wb)).sum()
    return num / (wa + wb).sum()


@pytest.mark.parametrize(("convention", "scale"), [("tang", 1.0), ("tang2022", 255.0)])
def test_nabf_matches_a_numpy_rederivation(tno, convention, scale):
    images = crop(tno, 20, 30, (40, 45))
    ir, vi, fused = (x.astype(float) / scale for x in images)
    got = evaluate_arrays(*images, ["Nabf"], convention)["Nabf"]
    assert got == pytest.approx(nabf_reference(ir, vi, fused), rel=1e-12)


# --- QSF (Zheng et al. 2007) ---------------------------------------------------------------------


def qsf_reference(a, b, f):
    m, n = f.shape
    sums_f = np.zeros(4)
    sums_r = np.zeros(4)
    for i in range(m):
        for j in range(n):
            neighbours = [
                (i, j - 1) if j >= 1 else None,
                (i - 1, j) if i >= 1 else None,
                (i - 1, j - 1) if i >= 1 and j >= 1 else None,
                (i + 1, j - 1) if i + 1 < m and j >= 1 else None,
            ]
            for d, nb in enumerate(neighbours):
                if nb is None:
                    continue
                sums_f[d] += (f[i, j] - f[nb]) ** 2
                sums_r[d] += max(abs(a[i, j] - a[nb]), abs(b[i, j] - b[nb])) ** 2
    weights = np.array([1, 1, math.sqrt(2) / 2, math.sqrt(2) / 2])
    sf_f = math.sqrt((weights * sums_f).sum() / (m * n))
    sf_r = math.sqrt((weights * sums_r).sum() / (m * n))
    return (sf_f - sf_r) / sf_r


def test_qsf_matches_zhengs_definition(tno):
    images = crop(tno, 80, 90, (17, 19))
    got = evaluate_arrays(*images, ["QSF"], "tang")["QSF"]
    assert got == pytest.approx(qsf_reference(*(x.astype(float) for x in images)), rel=1e-12)
