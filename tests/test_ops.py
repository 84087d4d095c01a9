"""Shared operators against independent float64 references (scipy.ndimage)."""

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

from ivif.ops import (
    burt_adelson_kernel,
    expand,
    filter2d,
    filter_separable,
    gaussian_kernel1d,
    gaussian_pyramid,
    laplacian_pyramid,
    laplacian_synthesis,
    max_levels,
    neighbour_differences,
    sobel,
)

# scipy's names for our border rules ("reflect" = mirror without repeating the edge).
SCIPY_MODE = {"reflect": "mirror", "replicate": "nearest", "zeros": "constant"}


def image64(h=37, w=53, c=1, seed=0) -> torch.Tensor:
    return torch.rand(
        1, c, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )


def test_gaussian_kernel_matches_formula():
    k = gaussian_kernel1d(9, 4 / 3, dtype=torch.float64).numpy()
    x = np.arange(-4, 5)
    ref = np.exp(-(x**2) / (2 * (4 / 3) ** 2))
    np.testing.assert_allclose(k, ref / ref.sum(), atol=1e-15)
    # Spec cpfusion.md §2: the printed half-kernel of the 9-tap level.
    np.testing.assert_allclose(k[4:], [0.29937, 0.22598, 0.09719, 0.02382, 0.00333], atol=5e-6)
    with pytest.raises(ValueError):
        gaussian_kernel1d(4, 1.0)
    with pytest.raises(ValueError):
        gaussian_kernel1d(5, 0.0)


@pytest.mark.parametrize("border", ["reflect", "replicate", "zeros"])
def test_filters_match_scipy(border):
    x = image64(c=2)
    ky = torch.tensor([0.1, 0.5, -0.2, 0.3, 0.7], dtype=torch.float64)
    kx = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    kernel2d = torch.outer(ky, kx)
    ref = np.stack(
        [
            ndimage.correlate(x[0, c].numpy(), kernel2d.numpy(), mode=SCIPY_MODE[border])
            for c in range(2)
        ]
    )
    np.testing.assert_allclose(filter2d(x, kernel2d, border)[0].numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(filter_separable(x, ky, kx, border)[0].numpy(), ref, atol=1e-12)


def test_valid_border_shrinks():
    out = filter_separable(image64(), torch.ones(5, dtype=torch.float64) / 5, border="valid")
    assert out.shape[-2:] == (33, 49)


def test_sobel_matches_scipy():
    x = image64()
    gx, gy = sobel(x, border="replicate")
    np.testing.assert_allclose(
        gx[0, 0].numpy(), ndimage.sobel(x[0, 0].numpy(), axis=1, mode="nearest"), atol=1e-12
    )
    np.testing.assert_allclose(
        gy[0, 0].numpy(), ndimage.sobel(x[0, 0].numpy(), axis=0, mode="nearest"), atol=1e-12
    )


def test_neighbour_differences_match_numpy_and_see_what_sobel_cannot():
    x = image64(9, 12, c=2)
    horizontal, vertical = neighbour_differences(x)
    np.testing.assert_array_equal(horizontal.numpy(), np.diff(x.numpy(), axis=-1))
    np.testing.assert_array_equal(vertical.numpy(), np.diff(x.numpy(), axis=-2))
    assert neighbour_differences(x[0, 0])[0].shape == (9, 11)  # any leading dimensions
    checkerboard = torch.from_numpy(np.indices((8, 8)).sum(0) % 2.0)[None, None]
    gx, gy = sobel(checkerboard, border="valid")
    assert gx.abs().max() == 0 and gy.abs().max() == 0
    assert all(d.abs().min() == 1 for d in neighbour_differences(checkerboard))


def test_shape_checks():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        filter_separable(torch.rand(5, 5), torch.ones(3))
    with pytest.raises(TypeError):
        filter_separable(torch.ones(1, 1, 5, 5, dtype=torch.int64), torch.ones(3))


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (2, 3), (64, 64), (45, 17)])
@pytest.mark.parametrize("kernel", ["burt_adelson", "adaptive"])
def test_laplacian_pyramid_reconstructs_exactly_on_any_size(size, kernel):
    x = image64(*size, c=2)
    up = burt_adelson_kernel(dtype=torch.float64)
    levels = max_levels(*size, kernel_size=9 if kernel == "adaptive" else 5)
    if kernel == "adaptive":  # per-level Gaussians as CPFusion uses them
        down = [
            gaussian_kernel1d(2 * (levels - i) + 1, (2 * (levels - i)) / 6, dtype=torch.float64)
            for i in range(levels)
        ]
    else:
        down = up
    gaussians, details = laplacian_pyramid(x, levels, down, up)
    assert gaussians[0].shape[-2:] == size
    for finer, coarser in itertools.pairwise(gaussians):
        assert coarser.shape[-2:] == tuple((n + 1) // 2 for n in finer.shape[-2:])
    recon = laplacian_synthesis(gaussians[-1], details, up)
    torch.testing.assert_close(recon, x, atol=1e-12, rtol=0)


def test_burt_adelson_expand_preserves_constants():
    const = torch.full((1, 1, 10, 13), 3.0, dtype=torch.float64)
    out = expand(const, (19, 26), burt_adelson_kernel(dtype=torch.float64))
    torch.testing.assert_close(out, torch.full_like(out, 3.0))


def test_pyramid_against_numpy_reference():
    """REDUCE/EXPAND re-derived with scipy: blur (mirror), decimate; zero-insert, blur, ×4."""
    x = image64(29, 31)
    k = burt_adelson_kernel(dtype=torch.float64).numpy()
    g0 = x[0, 0].numpy()
    g1 = ndimage.correlate1d(
        ndimage.correlate1d(g0, k, axis=0, mode="mirror"), k, axis=1, mode="mirror"
    )[::2, ::2]
    up = np.zeros((2 * g1.shape[0], 2 * g1.shape[1]))
    up[::2, ::2] = g1
    e1 = 4 * ndimage.correlate1d(
        ndimage.correlate1d(up, k, axis=0, mode="mirror"), k, axis=1, mode="mirror"
    )
    gaussians, details = laplacian_pyramid(x, 1, torch.from_numpy(k), torch.from_numpy(k))
    np.testing.assert_allclose(gaussians[1][0, 0].numpy(), g1, atol=1e-13)
    np.testing.assert_allclose(details[0][0, 0].numpy(), g0 - e1[:29, :31], atol=1e-13)


def test_accumulated_levels_are_correctly_rounded_blurs():
    """``accumulate=float64``: every float32 level is the float64 blur of the float32 level
    above, rounded once (scipy reference in float64); float32 accumulation is not."""
    x = (image64(61, 70, c=2) * 219 + 16).float()
    k, up = gaussian_kernel1d(9, 4 / 3), gaussian_kernel1d(5, 1.1)
    gaussians, details = laplacian_pyramid(x, 1, k, up, accumulate=torch.float64)
    kd, upd = k.double().numpy(), up.double().numpy()
    for c in range(2):
        g0 = x[0, c].double().numpy()
        g1 = ndimage.correlate1d(
            ndimage.correlate1d(g0, kd, axis=0, mode="mirror"), kd, axis=1, mode="mirror"
        )[::2, ::2].astype(np.float32)
        np.testing.assert_array_equal(gaussians[1][0, c].numpy(), g1)
        zeros = np.zeros((2 * g1.shape[0], 2 * g1.shape[1]))
        zeros[::2, ::2] = g1
        e1 = 4 * ndimage.correlate1d(
            ndimage.correlate1d(zeros, upd, axis=0, mode="mirror"), upd, axis=1, mode="mirror"
        )
        expected = x[0, c].numpy() - e1[:61, :70].astype(np.float32)
        np.testing.assert_array_equal(details[0][0, c].numpy(), expected)
    assert gaussians[1].dtype == details[0].dtype == torch.float32
    plain, _ = laplacian_pyramid(x, 1, k, up)
    assert not torch.equal(plain[1], gaussians[1])  # float32 sums round differently


def test_torchvision_taps():
    """torchvision's float32 taps: within an ulp of the exact ones, different in the last bit."""
    for size, sigma in ((9, 4 / 3), (5, 1.1), (3, 1 / 3)):
        exact = gaussian_kernel1d(size, sigma, dtype=torch.float64)
        ours = gaussian_kernel1d(size, sigma, torchvision=True)
        np.testing.assert_allclose(ours.double().numpy(), exact.numpy(), rtol=3e-7, atol=0)
    assert not torch.equal(
        gaussian_kernel1d(9, 4 / 3, torchvision=True), gaussian_kernel1d(9, 4 / 3)
    )
    with pytest.raises(ValueError, match="exclusive"):
        gaussian_kernel1d(5, 1.0, matlab_eps=True, torchvision=True)


def test_too_many_levels_is_a_clear_error():
    with pytest.raises(ValueError, match="do not fit"):
        gaussian_pyramid(image64(8, 8), 6, burt_adelson_kernel(dtype=torch.float64))
    with pytest.raises(ValueError, match="kernels"):
        gaussian_pyramid(image64(), 3, [burt_adelson_kernel()] * 2)
    with pytest.raises(ValueError, match="cannot expand"):
        expand(image64(4, 4), (10, 10), burt_adelson_kernel(dtype=torch.float64))
