"""Method registry, colour policy and the classic baselines."""

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage

import ivif
from ivif.color import rgb_to_ycbcr
from ivif.errors import InputError
from ivif.io import to_tensor
from ivif.methods import available_methods, create_method

RNG = np.random.default_rng(3)
IR = RNG.integers(0, 256, size=(37, 53), dtype=np.uint8)
VI = RNG.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)


def test_registry_lists_baselines():
    assert {"average", "laplacian"} <= set(ivif.methods())
    assert ivif.methods() == available_methods()


def test_unknown_method_and_options_are_clear_errors():
    with pytest.raises(InputError, match="unknown method 'nope'.*laplacian"):
        ivif.fuse(IR, VI, method="nope")
    with pytest.raises(InputError, match="no option colour"):
        ivif.fuse(IR, VI, method="laplacian", colour=1)
    with pytest.raises(InputError, match="not one of"):
        create_method("laplacian", detail_rule="median")
    with pytest.raises(InputError, match="levels must be >= 1"):
        create_method("laplacian", levels=0)
    with pytest.raises(InputError, match="must be int"):
        create_method("laplacian", levels="many")


@pytest.mark.parametrize("method", ["average", "laplacian"])
def test_colour_policy(method):
    colour = ivif.fuse(IR, VI, method=method)
    assert colour.shape == VI.shape and colour.dtype == np.uint8
    gray = ivif.fuse(IR, VI[..., 0], method=method)
    assert gray.shape == IR.shape
    three_equal = ivif.fuse(IR, np.dstack([VI[..., 0]] * 3), method=method)
    np.testing.assert_array_equal(three_equal, gray)


def test_luminance_methods_keep_visible_chroma():
    smooth_vi = ndimage.uniform_filter(VI.astype(float), size=(9, 9, 1)).astype(np.uint8)
    fused = ivif.fuse(np.full(IR.shape, 128, np.uint8), smooth_vi, method="average")

    def chroma(a):
        return rgb_to_ycbcr(to_tensor(a, torch.float64))[0, 1:]

    inside = (slice(None), slice(2, -2), slice(2, -2))
    fused_chroma, vi_chroma = chroma(fused)[inside], chroma(smooth_vi)[inside]
    assert float((fused_chroma - vi_chroma).abs().mean()) < 1.5 / 255


def test_average_is_the_mean_of_luminances():
    fused = ivif.fuse(IR, VI[..., 1], method="average")
    expected = np.floor((IR.astype(float) + VI[..., 1]) / 2 + 0.5)
    np.testing.assert_array_equal(fused, expected)


def test_laplacian_of_identical_sources_is_identity():
    np.testing.assert_array_equal(ivif.fuse(IR, IR, method="laplacian"), IR)


def _laplacian_reference(ir: np.ndarray, vi: np.ndarray, levels: int) -> np.ndarray:
    """Burt–Adelson fusion re-derived in float64 with scipy (mirror borders)."""
    k = np.array([0.05, 0.25, 0.4, 0.25, 0.05])

    def blur(x):
        return ndimage.correlate1d(ndimage.correlate1d(x, k, 0, mode="mirror"), k, 1, mode="mirror")

    def up(x, shape):
        z = np.zeros((2 * x.shape[0], 2 * x.shape[1]))
        z[::2, ::2] = x
        return 4 * blur(z)[: shape[0], : shape[1]]

    def pyramid(x):
        gs = [x]
        for _ in range(levels):
            gs.append(blur(gs[-1])[::2, ::2])
        return gs[-1], [g - up(c, g.shape) for g, c in itertools.pairwise(gs)]

    top_a, det_a = pyramid(ir / 255.0)
    top_b, det_b = pyramid(vi / 255.0)
    result = (top_a + top_b) / 2
    for da, db in reversed(list(zip(det_a, det_b, strict=True))):
        result = np.where(np.abs(da) >= np.abs(db), da, db) + up(result, da.shape)
    return np.floor(np.clip(result, 0, 1) * 255 + 0.5)


def test_laplacian_matches_float64_reference_on_odd_size():
    fused = ivif.fuse(IR, VI[..., 2], method="laplacian", levels=3)
    reference = _laplacian_reference(IR.astype(float), VI[..., 2].astype(float), 3)
    assert np.abs(fused.astype(int) - reference).max() <= 1  # float32 vs float64 rounding
    assert (fused != reference).mean() < 0.01


def test_laplacian_on_tiny_images_reduces_levels():
    assert ivif.fuse(IR[:3, :4], VI[:3, :4], method="laplacian", levels=6).shape == (3, 4, 3)
    assert ivif.fuse(IR[:1, :1], VI[:1, :1, 0], method="laplacian").shape == (1, 1)


def test_inputs_as_float_arrays_and_paths(tmp_path):
    from_float = ivif.fuse(IR / 255.0, VI / 255.0, method="average")
    np.testing.assert_array_equal(from_float, ivif.fuse(IR, VI, method="average"))
    ivif.write_image(tmp_path / "ir.png", IR)
    ivif.write_image(tmp_path / "vi.png", VI)
    np.testing.assert_array_equal(
        ivif.fuse(tmp_path / "ir.png", str(tmp_path / "vi.png"), method="average"), from_float
    )


def test_bad_arrays():
    with pytest.raises(InputError, match="sizes differ.*53×37.*52×37"):
        ivif.fuse(IR, VI[:, :52], method="average")
    with pytest.raises(InputError, match=r"within \[0, 1\]"):
        ivif.fuse(IR * 2.0, VI, method="average")
    with pytest.raises(InputError, match="H×W"):
        ivif.fuse(IR, np.zeros((2, 2, 2, 2)), method="average")
    resized = ivif.fuse(IR[::2, ::2], VI, method="average", resize="ir")
    assert resized.shape == VI.shape
