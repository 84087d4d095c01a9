"""Colour conversions against the BT.601 definitions and MATLAB's rgb2gray rule."""

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import torch
from PIL import Image

from ivif.color import (
    LUMA_WEIGHTS,
    luma,
    matlab_rgb2gray_u8,
    rgb_to_gray,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)

KR, KB = 0.299, 0.114  # ITU-R BT.601 luma coefficients


def bt601_reference(rgb: np.ndarray) -> np.ndarray:
    """Y'CbCr from the BT.601 definition: Y' = Kr R + Kg G + Kb B, Cb = (B - Y')/(2(1 - Kb)),
    Cr = (R - Y')/(2(1 - Kr)), in float64."""
    r, g, b = rgb
    y = KR * r + (1 - KR - KB) * g + KB * b
    return np.stack([y, (b - y) / (2 * (1 - KB)), (r - y) / (2 * (1 - KR))])


@pytest.fixture
def rgb64() -> torch.Tensor:
    return torch.rand(2, 3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def test_full_range_matches_definition(rgb64):
    ref = bt601_reference(rgb64[0].numpy())
    ours = rgb_to_ycbcr(rgb64)[0].numpy()
    np.testing.assert_allclose(ours[0], ref[0], atol=1e-12)
    np.testing.assert_allclose(ours[1:] - 0.5, ref[1:], atol=1e-9)


def test_studio_range_matches_definition(rgb64):
    ref = bt601_reference(rgb64[0].numpy())
    ours = rgb_to_ycbcr(rgb64, range="studio")[0].numpy()
    # The published studio matrix is the definition scaled by 219/224 and rounded to 3 decimals.
    np.testing.assert_allclose(ours[0], 16 + 219 * ref[0], atol=2e-3)
    np.testing.assert_allclose(ours[1:], 128 + 224 * ref[1:], atol=2e-3)


def test_studio_levels_of_black_and_white():
    corners = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=torch.float64).view(
        1, 3, 1, 2
    )
    ycbcr = rgb_to_ycbcr(corners, range="studio")[0, :, 0]
    np.testing.assert_allclose(ycbcr[0].numpy(), [16.0, 235.0], atol=1e-9)
    np.testing.assert_allclose(ycbcr[1:].numpy(), [[128.0, 128.0], [128.0, 128.0]], atol=1e-9)


@pytest.mark.parametrize("range_", ["full", "studio"])
def test_round_trip(rgb64, range_):
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb64, range=range_), range=range_)
    torch.testing.assert_close(back, rgb64, atol=1e-12, rtol=0)


def test_float32_round_trip_and_batch_shapes():
    x = torch.rand(4, 3, 5, 6)
    assert rgb_to_ycbcr(x).shape == x.shape
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-6, rtol=0)


def test_bad_shapes_and_names():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, H, W\)"):
        rgb_to_ycbcr(torch.rand(1, 4, 2, 2))
    with pytest.raises(ValueError, match="range"):
        rgb_to_ycbcr(torch.rand(1, 3, 2, 2), range="pc")
    with pytest.raises(TypeError):
        rgb_to_ycbcr(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="luma"):
        rgb_to_gray(torch.rand(1, 3, 2, 2), weights="nope")


@pytest.mark.parametrize("range_", ["full", "studio"])
def test_luma_is_the_y_of_rgb_to_ycbcr(range_):
    """Bit for bit, float32, for RGB and for gray planes taken as R = G = B (all 8-bit levels
    and random values)."""
    gen = torch.Generator().manual_seed(3)
    gray = torch.cat([torch.arange(256) / 255.0, torch.rand(20000, generator=gen)]).view(
        1, 1, 1, -1
    )
    y = rgb_to_ycbcr(gray.expand(-1, 3, -1, -1), range_)[:, :1]
    assert torch.equal(luma(gray, range_), y)
    rgb = torch.rand(2, 3, 40, 50, generator=gen)
    assert torch.equal(luma(rgb, range_), rgb_to_ycbcr(rgb, range_)[:, :1])
    with pytest.raises(ValueError, match="1 or 3"):
        luma(torch.rand(1, 2, 4, 4))


def test_matlab_weights_are_inverse_ntsc_row():
    ntsc = np.array([[1, 0.956, 0.621], [1, -0.272, -0.647], [1, -1.106, 1.703]])
    np.testing.assert_allclose(np.linalg.inv(ntsc)[0], LUMA_WEIGHTS["matlab"], atol=1e-15)


def _matlab_exact(rgb: np.ndarray) -> np.ndarray:
    """MATLAB's rule in exact decimal arithmetic: round half away from zero, saturate."""
    w = [Decimal(repr(c)) for c in LUMA_WEIGHTS["matlab"]]
    out = [
        int((w[0] * int(r) + w[1] * int(g) + w[2] * int(b)).quantize(Decimal(1), ROUND_HALF_UP))
        for r, g, b in rgb.reshape(-1, 3)
    ]
    return np.clip(np.array(out), 0, 255).astype(np.uint8).reshape(rgb.shape[:-1])


def test_matlab_rgb2gray_at_half_boundaries():
    # Every RGB triple whose weighted sum lies within 1e-4 of a .5 boundary: the hard cases.
    r, g, b = np.meshgrid(
        np.arange(256.0), np.arange(0, 256.0, 3), np.arange(0, 256.0, 5), indexing="ij"
    )
    y = (
        r * LUMA_WEIGHTS["matlab"][0]
        + g * LUMA_WEIGHTS["matlab"][1]
        + b * LUMA_WEIGHTS["matlab"][2]
    )
    near_half = np.abs(y - np.floor(y) - 0.5) < 1e-4
    triples = np.stack([r[near_half], g[near_half], b[near_half]], axis=-1).astype(np.uint8)
    assert len(triples) > 50
    image = triples.reshape(1, -1, 3)
    np.testing.assert_array_equal(matlab_rgb2gray_u8(image), _matlab_exact(image))


def test_matlab_rgb2gray_differs_from_pil_where_documented():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    ours = matlab_rgb2gray_u8(image)
    np.testing.assert_array_equal(ours, _matlab_exact(image))
    pil = np.asarray(Image.fromarray(image).convert("L"))
    assert np.abs(ours.astype(int) - pil).max() <= 1
    assert matlab_rgb2gray_u8(ours) is ours  # gray input passes through
    with pytest.raises(ValueError):
        matlab_rgb2gray_u8(image.astype(np.float64))
