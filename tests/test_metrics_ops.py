"""Shared operators added for the metrics, against independent float64 references:
histograms and entropies, MATLAB behaviours, FFT filtering, the discrete Meyer DWT."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import torch

from ivif.evaluation.kernels import (
    magnitude,
    masked_contrast,
    qcb_sums,
    ssim_sums,
    strength_and_direction,
    vif_sums,
)
from ivif.ops import filter_separable, gaussian_kernel1d
from ivif.ops.filters import MATMUL_BLOCK, correlate1d, filter_separable_matmul
from ivif.ops.histogram import entropy, histogram, joint_histogram, map_levels
from ivif.ops.matlab import (
    block_sum,
    conv2_same_ordered,
    filter_frequency,
    freqspace_radius,
    round_half_away,
    saturate_u8,
)
from ivif.ops.spectral import (
    circular_response,
    fast_fft_length,
    filter_bank_fft,
    filter_packed,
    packed_spectrum,
    remove_wraparound,
)
from ivif.ops.wavelet import dwt2, meyer_scaling_filter, orthogonal_filter_bank

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# --- histograms ----------------------------------------------------------------------------------


def test_histogram_matches_numpy(rng):
    x = rng.integers(0, 256, (2, 3, 17, 23), dtype=np.uint8)
    counts = histogram(torch.from_numpy(x))
    for index in np.ndindex(2, 3):
        expected = np.bincount(x[index].ravel(), minlength=256)
        np.testing.assert_array_equal(counts[index].numpy(), expected)


def test_joint_histogram_matches_numpy_and_broadcasts(rng):
    x = rng.integers(0, 256, (2, 9, 11), dtype=np.uint8)
    y = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    joint = joint_histogram(torch.from_numpy(x), torch.from_numpy(y))
    assert joint.shape == (2, 256, 256)
    for k in range(2):
        expected, _, _ = np.histogram2d(
            x[k].ravel(), y.ravel(), bins=256, range=[[0, 256], [0, 256]]
        )
        np.testing.assert_array_equal(joint[k].numpy(), expected)


def test_entropy_of_known_distributions():
    uniform = torch.ones(256)
    assert float(entropy(uniform)) == pytest.approx(8.0, abs=1e-12)
    assert float(entropy(torch.tensor([0.0, 5.0, 0.0]))) == 0.0
    assert float(entropy(torch.zeros(4))) == 0.0  # an empty distribution
    two = torch.tensor([1.0, 1.0])
    assert float(entropy(two, base=math.e)) == pytest.approx(math.log(2), abs=1e-15)
    joint = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(entropy(joint, dims=2)) == pytest.approx(1.0, abs=1e-15)


def test_histogram_rejects_out_of_range_and_fractional_values():
    with pytest.raises(ValueError, match="whole numbers"):
        histogram(torch.tensor([[0.5, 1.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        histogram(torch.tensor([[256, 1]]))
    with pytest.raises(ValueError, match="shape"):
        histogram(torch.tensor([1, 2]))


def test_map_levels_is_a_per_plane_lookup(rng):
    x = rng.integers(0, 256, (3, 5, 7), dtype=np.uint8)
    table = rng.normal(size=(3, 256))
    out = map_levels(torch.from_numpy(x), torch.from_numpy(table))
    expected = np.stack([table[k][x[k]] for k in range(3)])
    np.testing.assert_array_equal(out.numpy(), expected)
    with pytest.raises(TypeError):
        map_levels(torch.from_numpy(x).double(), torch.from_numpy(table))
    with pytest.raises(ValueError):
        map_levels(torch.from_numpy(x), torch.from_numpy(table[:2]))


# --- MATLAB behaviours ---------------------------------------------------------------------------


def test_round_half_away_from_zero():
    x = torch.tensor([-2.5, -1.5, -0.5, -0.49, 0.0, 0.49, 0.5, 1.5, 2.5], dtype=torch.float64)
    expected = [math.copysign(math.floor(abs(v) + 0.5), v) for v in x.tolist()]
    assert round_half_away(x).tolist() == expected
    assert round_half_away(x).tolist() != torch.round(x).tolist()  # torch rounds half to even


def test_saturate_u8_rounds_and_clips():
    x = torch.tensor([-3.2, 0.5, 254.5, 300.0, 7.49], dtype=torch.float64)
    assert saturate_u8(x).tolist() == [0.0, 1.0, 255.0, 255.0, 7.0]


def test_freqspace_radius_matches_its_definition():
    h, w = 6, 9
    r = freqspace_radius(h, w, 2.0, 3.0, torch.zeros(1, dtype=torch.float64))
    u = [(k - w // 2) * 2.0 / w * 2.0 for k in range(w)]
    v = [(k - h // 2) * 2.0 / h * 3.0 for k in range(h)]
    expected = [[math.hypot(uu, vv) for uu in u] for vv in v]
    np.testing.assert_allclose(r.numpy(), expected, rtol=0, atol=1e-15)
    assert r[h // 2, w // 2] == 0  # zero frequency at the fftshift centre


@pytest.mark.parametrize("shape", [(8, 10), (7, 9), (6, 11)])
def test_filter_frequency_matches_the_complex_fftshift_pipeline(rng, shape):
    image = torch.from_numpy(rng.normal(size=(2, *shape)))
    response = torch.exp(-freqspace_radius(*shape, 3.0, 2.0, image))
    spectrum = np.fft.fftshift(np.fft.fft2(image.numpy()), axes=(-2, -1))
    expected = np.real(np.fft.ifft2(np.fft.ifftshift(response.numpy() * spectrum, axes=(-2, -1))))
    np.testing.assert_allclose(filter_frequency(image, response).numpy(), expected, atol=1e-13)


def test_filter_frequency_rejects_responses_that_would_make_the_result_complex():
    asymmetric = torch.arange(20, dtype=torch.float64).reshape(4, 5)
    with pytest.raises(ValueError, match="symmetric"):
        filter_frequency(torch.zeros(4, 5, dtype=torch.float64), asymmetric)


def test_block_sum_zero_pads_partial_blocks(rng):
    x = rng.normal(size=(2, 37, 21))
    out = block_sum(torch.from_numpy(x), 16)
    assert out.shape == (2, 3, 2)
    for b in range(2):
        for i in range(3):
            for j in range(2):
                block = x[b, 16 * i : 16 * i + 16, 16 * j : 16 * j + 16]
                assert out[b, i, j].item() == pytest.approx(block.sum(), abs=1e-12)


@pytest.mark.parametrize(
    "kernel",
    [[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], [[1, 0, 2, -1, 3], [0, 5, 0, -2, 1], [4, 1, -3, 0, 2]]],
)
def test_conv2_same_ordered_is_matlab_conv2_same(rng, kernel):
    kernel = np.array(kernel, dtype=np.float64)
    integers = rng.integers(0, 256, (2, 13, 17)).astype(np.float64)
    out = conv2_same_ordered(torch.from_numpy(integers), torch.from_numpy(kernel))
    for k in range(2):  # integer data: exact whatever the order
        expected = scipy.signal.convolve2d(integers[k], kernel, mode="same")
        np.testing.assert_array_equal(out[k].numpy(), expected)


def test_conv2_same_ordered_needs_odd_kernels():
    with pytest.raises(ValueError, match="odd"):
        conv2_same_ordered(torch.zeros(4, 4, dtype=torch.float64), torch.ones(2, 3))


def test_conv2_same_ordered_accumulates_column_major():
    """On non-integer data the result is the sequential sum in column-major kernel order."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (9, 9)) / 255.0
    kernel = np.array([[0.3, 0.0, -0.7], [1.1, 2.0, 0.2], [-0.4, 0.9, 0.6]])
    out = conv2_same_ordered(torch.from_numpy(x), torch.from_numpy(kernel)).numpy()
    padded = np.pad(x, 1)
    for i in range(9):
        for j in range(9):
            total = 0.0
            for q in range(3):
                for p in range(3):
                    if kernel[p, q]:
                        total += kernel[p, q] * padded[i + 2 - p, j + 2 - q]
            assert out[i, j] == total  # bit-exact


def test_gaussian_kernel_matches_fspecial_including_eps_truncation():
    for size, sigma in ((17, 3.4), (11, 1.5), (3, 0.6)):
        k = gaussian_kernel1d(size, sigma, dtype=torch.float64, matlab_eps=True)
        half = (size - 1) / 2
        y, x = np.mgrid[-half : half + 1, -half : half + 1]
        h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
        h[h < np.finfo(float).eps * h.max()] = 0
        np.testing.assert_allclose(np.outer(k, k), h / h.sum(), rtol=1e-13, atol=1e-18)
    wide = gaussian_kernel1d(31, 1.0, dtype=torch.float64, matlab_eps=True)
    assert wide[0] == 0 and wide[15] > 0  # far tails fall under eps·max and are cut


# --- FFT filtering -------------------------------------------------------------------------------


def test_fast_fft_length():
    assert [fast_fft_length(n) for n in (1, 7, 11, 13, 480, 481)] == [1, 8, 12, 15, 480, 486]


@pytest.mark.parametrize("border", ["valid", "zeros", "replicate"])
def test_fft_filtering_matches_direct_filtering(rng, border):
    x = torch.from_numpy(rng.normal(size=(2, 3, 37, 29)) * 100)
    ky = torch.from_numpy(rng.normal(size=17))
    kx = torch.from_numpy(rng.normal(size=11))
    direct = filter_separable(x, ky, kx, border)
    np.testing.assert_allclose(
        filter_bank_fft(x, [(ky, kx)], border)[0].numpy(), direct.numpy(), atol=1e-10
    )
    strided = filter_bank_fft(x, [(ky, kx)], border, stride=2)[0]
    np.testing.assert_allclose(strided.numpy(), direct[..., ::2, ::2].numpy(), atol=1e-10)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("border", ["valid", "zeros", "replicate"])
def test_filter_separable_matmul_matches_scipy(rng, border, stride):
    # more outputs than one block along both axes, the last blocks partial
    shape = (2 * MATMUL_BLOCK + 21, 3 * MATMUL_BLOCK + 5)
    x = rng.normal(size=(2, 3, *shape)) * 100
    ky, kx = rng.normal(size=17), rng.normal(size=11)
    mode = {"valid": "constant", "zeros": "constant", "replicate": "nearest"}[border]
    expected = scipy.ndimage.correlate1d(x, ky, axis=-2, mode=mode)
    expected = scipy.ndimage.correlate1d(expected, kx, axis=-1, mode=mode)
    if border == "valid":
        expected = expected[..., 8:-8, 5:-5]
    got = filter_separable_matmul(
        torch.from_numpy(x), torch.from_numpy(ky), torch.from_numpy(kx), border, stride=stride
    )
    np.testing.assert_allclose(got.numpy(), expected[..., ::stride, ::stride], atol=1e-10)
    with pytest.raises(ValueError, match="does not fit"):
        filter_separable_matmul(torch.from_numpy(x[..., :5, :5]), torch.from_numpy(ky))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dim", [-1, -2])
@pytest.mark.parametrize("across", [15, 80])  # a direct strip, a banded product
def test_correlate1d_of_wide_kernels_matches_scipy(rng, dim, stride, across):
    shape = (2, 75, across) if dim == -2 else (2, across, 75)
    x, k = rng.normal(size=shape) * 100, rng.normal(size=31)
    expected = scipy.ndimage.correlate1d(x, k, axis=dim, mode="constant")
    expected = expected[..., 15:-15, :][..., ::stride, :] if dim == -2 else expected[..., 15:-15]
    if dim == -1:
        expected = expected[..., ::stride]
    got = correlate1d(torch.from_numpy(x), torch.from_numpy(k), dim, stride)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-10)
    into = torch.full((*shape[:-2], got.shape[-1], got.shape[-2]), math.nan, dtype=torch.float64)
    into = into.transpose(-1, -2)  # a strided target
    correlate1d(torch.from_numpy(x), torch.from_numpy(k), dim, stride, out=into)
    np.testing.assert_allclose(into.numpy(), expected, atol=1e-10)


def test_filter_bank_shares_one_transform(rng):
    x = torch.from_numpy(rng.normal(size=(1, 2, 20, 24)))
    k1, k2 = torch.from_numpy(rng.normal(size=(2, 9)))
    bank = filter_bank_fft(x, [(k1, k1), (k2, k2)], "zeros")
    np.testing.assert_allclose(bank[1].numpy(), filter_separable(x, k2, k2, "zeros"), atol=1e-12)
    with pytest.raises(ValueError, match="one size"):
        filter_bank_fft(x, [(k1, k1), (k1[:3], k1[:3])])
    with pytest.raises(TypeError, match="float64"):
        filter_bank_fft(x.float(), [(k1, k1)])
    with pytest.raises(ValueError, match="does not fit"):
        filter_bank_fft(x[..., :5, :5], [(k1, k1)])


@pytest.mark.parametrize(
    ("shape", "taps"), [((37, 29), (17, 11)), ((31, 40), (31, 5)), ((9, 7), (9, 7))]
)
def test_circular_filtering_with_the_wraparound_removed_is_zero_padded_filtering(rng, shape, taps):
    x = torch.from_numpy(rng.normal(size=(3, *shape)) * 100)
    ky, kx = (torch.from_numpy(rng.normal(size=n)) for n in taps)
    (circular,) = filter_packed(packed_spectrum(x), 3, [circular_response(ky, kx, shape)])
    direct = filter_separable(x.unsqueeze(1), ky, kx, "zeros")[:, 0]
    np.testing.assert_allclose(remove_wraparound(circular, x, ky, kx), direct, atol=1e-10)
    with pytest.raises(ValueError, match="does not fit"):
        remove_wraparound(circular[..., :4, :4], x[..., :4, :4], ky, kx)


@pytest.mark.parametrize("threads", [1, 2])  # planes are transformed in a batch, or one by one
@pytest.mark.parametrize("planes", [1, 2, 3, 5])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_filter_packed_matches_per_plane_numpy_filtering(rng, planes, count, threads):
    # an odd last plane is filtered by two responses per transform (R_k + i·R_{k+1})
    shape = (12, 10)
    x = rng.normal(size=(planes, *shape)) * 100
    kernels = [torch.from_numpy(rng.normal(size=(2, 5))) for _ in range(count)]
    responses = [circular_response(ky, kx, shape) for ky, kx in kernels]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = filter_packed(packed_spectrum(torch.from_numpy(x)), planes, responses, stride=2)
    finally:
        torch.set_num_threads(before)
    for k, response in enumerate(responses):
        expected = np.fft.ifft2(np.fft.fft2(x) * response.numpy()).real[..., ::2, ::2]
        np.testing.assert_allclose(got[k].numpy(), expected, atol=1e-10)


# --- discrete Meyer DWT --------------------------------------------------------------------------


def test_meyer_filter_is_a_near_orthogonal_symmetric_lowpass():
    w = meyer_scaling_filter()
    assert w.shape == (62,) and w[0] == 0
    assert float(w.sum()) == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(w[1:].numpy(), w[1:].flip(0).numpy(), atol=1e-15)  # symmetric
    low, _ = orthogonal_filter_bank(w)
    h = low.numpy()
    for shift in range(1, 20):  # orthogonal to its even shifts, up to the FIR truncation
        assert abs(np.dot(h[2 * shift :], h[: -2 * shift])) < 2e-3
    assert np.dot(h, h) == pytest.approx(1.0, abs=2e-3)


def test_dwt2_matches_a_direct_symmetric_extension_convolution(rng):
    x = rng.normal(size=(11, 14))
    low, high = orthogonal_filter_bank(meyer_scaling_filter())
    c_a, c_h, c_v, c_d = dwt2(torch.from_numpy(x), low, high)
    length = low.numel()
    assert c_a.shape == ((11 + length - 1) // 2, (14 + length - 1) // 2)

    def analysis(signal, f):  # MATLAB dwt: symmetric extension, valid convolution, keep 2, 4, …
        extended = np.pad(signal, length - 1, mode="symmetric")
        return np.convolve(extended, f, mode="valid")[1::2]

    lo, hi = low.numpy(), high.numpy()

    def separable(first, second):
        rows = np.stack([analysis(r, first) for r in x])
        return np.stack([analysis(c, second) for c in rows.T]).T

    np.testing.assert_allclose(c_a.numpy(), separable(lo, lo), atol=1e-12)
    np.testing.assert_allclose(c_h.numpy(), separable(lo, hi), atol=1e-12)
    np.testing.assert_allclose(c_v.numpy(), separable(hi, lo), atol=1e-12)
    np.testing.assert_allclose(c_d.numpy(), separable(hi, hi), atol=1e-12)


def test_scipy_agrees_on_the_sobel_used_by_edge_intensity(rng):
    """Replicate-border Sobel correlation, as MATLAB imfilter(...,'replicate')."""
    x = rng.integers(0, 256, (1, 1, 15, 12)).astype(np.float64)
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    diff = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
    ours = filter_separable(torch.from_numpy(x), kernel, diff, "replicate")[0, 0].numpy()
    expected = scipy.ndimage.correlate(
        x[0, 0], np.outer([1, 2, 1], [-1, 0, 1]).astype(float), mode="nearest"
    )
    np.testing.assert_array_equal(ours, expected)


# --- compiled kernels ----------------------------------------------------------------------------


def _ssim_maps_reference(x, y, window, c1, c2):
    """SSIM and cs maps by explicit 2-D windows ('valid'), float64 numpy."""
    w2 = np.outer(window, window)
    k = len(window)
    h, w = x.shape[0] - k + 1, x.shape[1] - k + 1
    ssim, cs = np.empty((h, w)), np.empty((h, w))
    for i in range(h):
        for j in range(w):
            a, b = x[i : i + k, j : j + k], y[i : i + k, j : j + k]
            mu_a, mu_b = (w2 * a).sum(), (w2 * b).sum()
            var_a, var_b = (w2 * (a - mu_a) ** 2).sum(), (w2 * (b - mu_b) ** 2).sum()
            cov = (w2 * (a - mu_a) * (b - mu_b)).sum()
            cs[i, j] = (2 * cov + c2) / (var_a + var_b + c2)
            ssim[i, j] = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs[i, j]
    return ssim, cs


@pytest.mark.parametrize("threads", [1, 2])  # the serial and the parallel compiled twin
def test_ssim_kernel_matches_explicit_windows(rng, threads):
    xs = rng.integers(0, 256, size=(2, 17, 23)).astype(np.float64)
    ys = rng.integers(0, 256, size=(3, 17, 23)).astype(np.float64)
    ys[2, :, :9] = 40.0  # a flat region: σ² = 0 there
    window = gaussian_kernel1d(11, 1.5, dtype=torch.float64, matlab_eps=True)
    pairs = torch.tensor([[0, 0], [0, 2], [1, 1], [1, 2]])
    c1, c2 = 6.5025, 58.5225
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = ssim_sums(torch.from_numpy(xs), torch.from_numpy(ys), pairs, window, c1, c2)
    finally:
        torch.set_num_threads(before)
    for n, (a, b) in enumerate(pairs.tolist()):
        ssim, cs = _ssim_maps_reference(xs[a], ys[b], window.numpy(), c1, c2)
        np.testing.assert_allclose(got[n].numpy(), [ssim.sum(), cs.sum()], rtol=1e-12)


def test_ssim_kernel_results_do_not_depend_on_the_thread_count(rng):
    xs = torch.from_numpy(rng.integers(0, 256, size=(2, 40, 31)).astype(np.float64))
    window = gaussian_kernel1d(11, 1.5, dtype=torch.float64)
    pairs = torch.tensor([[0, 1], [1, 0]])
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(ssim_sums(xs, xs, pairs, window, 1e-4, 9e-4))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(results[0], results[1])


def test_ssim_kernel_rejects_planes_it_cannot_pair():
    window = gaussian_kernel1d(11, 1.5, dtype=torch.float64)
    pairs = torch.tensor([[0, 0]])
    x = torch.zeros(1, 20, 20, dtype=torch.float64)
    with pytest.raises(ValueError, match="of one size"):
        ssim_sums(x, torch.zeros(1, 20, 21, dtype=torch.float64), pairs, window, 1.0, 1.0)
    with pytest.raises(ValueError, match="does not fit"):
        ssim_sums(x[:, :10], x[:, :10], pairs, window, 1.0, 1.0)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_magnitude_is_the_correctly_rounded_root_of_the_sum_in_the_components_dtype(
    rng, dtype, threads
):
    if dtype == torch.float32:  # 8-bit Sobel components, the metrics' case
        gx, gy = (torch.from_numpy(rng.integers(-1020, 1021, (3, 9, 11))).to(dtype) for _ in "xy")
    else:
        gx, gy = (torch.from_numpy(rng.normal(size=(3, 9, 11)) * 50) for _ in "xy")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = magnitude(gx, gy, 0.5)
    finally:
        torch.set_num_threads(before)
    a, b = gx.numpy(), gy.numpy()
    square_sum = (a * a + b * b) * np.array(0.5, dtype=a.dtype)  # numpy keeps float32 in float32
    assert got.dtype == torch.float64 and got.shape == gx.shape
    np.testing.assert_array_equal(got.numpy(), np.sqrt(square_sum.astype(np.float64)))


def test_strength_and_direction_gives_qabfs_orientation_vector():
    sx = torch.tensor([3.0, -3.0, 0.0, -0.0, 0.0, 5.0, -2.0])
    sy = torch.tensor([4.0, 4.0, 7.0, -7.0, 0.0, -0.0, 0.0])
    strength, u, v = strength_and_direction(sx, sy)
    np.testing.assert_array_equal(strength.numpy(), [5.0, 5.0, 7.0, 7.0, 0.0, 5.0, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.arctan(sy.double().numpy() / sx.double().numpy())  # where Sx ≠ 0
    expected[2:5] = np.pi / 2  # Sx == 0, whatever the sign of either component
    np.testing.assert_allclose(torch.atan2(v, u).numpy(), expected, rtol=0, atol=1e-15)


def test_gradient_kernels_reject_components_that_differ():
    with pytest.raises(ValueError, match="components differ"):
        magnitude(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="components differ"):
        strength_and_direction(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64))


def test_qcb_kernels_match_their_definitions_with_every_degenerate_case(rng):
    narrow = rng.normal(size=(3, 6, 7))
    wide = rng.normal(size=(3, 6, 7))
    narrow[0, 0, :3], wide[0, 0, :3] = 0.0, 0.0  # a constant neighbourhood: 0/0
    narrow[1, 1, :2], wide[1, 1, :2] = 1.0, 0.0  # x/0
    narrow[2, 2, 0], wide[2, 2, 0] = 1e200, 1.0  # C² overflows
    got = masked_contrast(torch.from_numpy(np.stack((narrow, wide))), 1e-4)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c = np.abs(narrow / wide - 1.0)
        expected = np.nan_to_num(c**3 / (c**2 + 1e-4), nan=0.0, posinf=np.inf)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-15)
    assert (got.numpy()[0, 0, :3] == 0).all() and (got.numpy()[1, 1, :2] == 0).all()

    c_a = np.abs(rng.normal(size=(1, 6, 7)))  # a grey source, broadcast over F's channels
    c_b, c_f = np.abs(rng.normal(size=(3, 6, 7))), np.abs(rng.normal(size=(3, 6, 7)))
    c_a[0, 0, :4] = c_b[:, 0, :4] = 0.0  # no source contrast: λ_A = 0/0 (any number gives Q_BF)
    c_f[:, 0, :2] = 0.0  # nor any fused contrast: both preservations 1

    def expected(c_b):
        sums = []
        for k in range(3):
            a, b, f = c_a[0], c_b[min(k, len(c_b) - 1)], c_f[k]
            with np.errstate(invalid="ignore"):
                q_a = np.nan_to_num(np.minimum(a, f) / np.maximum(a, f), nan=1.0)
                q_b = np.nan_to_num(np.minimum(b, f) / np.maximum(b, f), nan=1.0)
                saliency = np.nan_to_num(a**2 / (a**2 + b**2), nan=0.5)
            sums.append((saliency * q_a + (1 - saliency) * q_b).sum())
        return sums

    for sources_b in (c_b, c_b[:1]):  # a grey A with a colour B, or both grey
        got = qcb_sums(*(torch.from_numpy(t) for t in (c_a, sources_b, c_f)))
        np.testing.assert_allclose(got.numpy(), expected(sources_b), rtol=1e-13)


def _vif_sums_reference(ref, dist, window, saturate, noise=2.0, eps=1e-10):
    """Σ information and reference terms by explicit 2-D windows ('valid'), float64 numpy."""
    w2 = np.outer(window, window)
    k = len(window)
    square = (lambda x: np.minimum(x, 255.0)) if saturate else (lambda x: x)
    num = den = 0.0
    for i in range(ref.shape[0] - k + 1):
        for j in range(ref.shape[1] - k + 1):
            r, d = ref[i : i + k, j : j + k], dist[i : i + k, j : j + k]
            mu_r, mu_d = (w2 * r).sum(), (w2 * d).sum()
            var_r = (w2 * square(r * r)).sum() - mu_r**2
            var_d = (w2 * square(d * d)).sum() - mu_d**2
            cov = (w2 * square(r * d)).sum() - mu_r * mu_d
            var_r = var_r if var_r >= eps else 0.0  # a flat reference
            g = 0.0 if var_d < eps else max(cov, 0.0) / (var_r + eps)
            s_v = max(max(var_d, 0.0) - g * max(cov, 0.0), eps)
            num += np.log10(1 + g * g * var_r / (s_v + noise))
            den += np.log10(1 + var_r / noise)
    return num, den


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("saturate", [False, True])
def test_vif_kernel_matches_explicit_windows(rng, saturate, threads):
    refs = rng.integers(0, 256, size=(2, 21, 30)).astype(np.float64)
    dist = np.clip(refs[0] + rng.normal(size=refs.shape[1:]) * 30, 0, 255).round()
    refs[1, :12, :15] = 90.0  # a flat reference region
    dist[10:, 20:] = 7.0  # a flat distorted region
    dist[:5] = 255.0 - refs[0, :5]  # negative covariance
    window = gaussian_kernel1d(9, 1.8, dtype=torch.float64, matlab_eps=True)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = vif_sums(torch.from_numpy(refs), torch.from_numpy(dist), window, 2.0, 1e-10, saturate)
    finally:
        torch.set_num_threads(before)
    for n in range(2):
        expected = _vif_sums_reference(refs[n], dist, window.numpy(), saturate)
        np.testing.assert_allclose(got[n].numpy(), expected, rtol=1e-11)


def test_vif_kernel_rejects_planes_it_cannot_pair():
    window = gaussian_kernel1d(9, 1.8, dtype=torch.float64)
    refs = torch.zeros(2, 20, 20, dtype=torch.float64)
    with pytest.raises(ValueError, match="distorted plane"):
        vif_sums(refs, torch.zeros(20, 21, dtype=torch.float64), window, 2.0, 1e-10)
    with pytest.raises(ValueError, match="does not fit"):
        vif_sums(refs[:, :8], refs[0, :8], window, 2.0, 1e-10)
