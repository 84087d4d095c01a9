"""CPFusion (spec/cpfusion.md): the official sample output, the §14 fixtures, a brute-force
full-resolution re-derivation in float64 (numpy/scipy, as the official code computes it),
options, colour handling, CLI and bad input."""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

import ivif
from ivif.api import DEFAULT_METHOD, fuse_arrays, load_pair
from ivif.cli import main
from ivif.color import rgb_to_ycbcr, ycbcr_to_rgb
from ivif.errors import InputError
from ivif.io import from_tensor, read_image, to_tensor, write_image
from ivif.methods import create_method
from ivif.methods.cpfusion import (
    CPFusion,
    _attend,
    adaptive_kernels,
    correlation_values,
    fuse_detail_level,
    fuse_luminance,
    wcc_weights,
)
from ivif.ops import gaussian_kernel1d, laplacian_pyramid, laplacian_synthesis

RNG = np.random.default_rng(11)
STRATEGIES = ("cc+max", "max", "cc", "cc-mix")


# ---------------------------------------------------------------- brute-force reference (§2–§7)
def _blur(x: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """torchvision-style blur: 2-D outer-product kernel, reflect padding ('mirror' in scipy)."""
    k = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    k /= k.sum()
    return ndimage.correlate(x, np.outer(k, k), mode="mirror")


def _pyr_up(x: np.ndarray, shape) -> np.ndarray:
    up = np.zeros((2 * x.shape[0], 2 * x.shape[1]))
    up[::2, ::2] = x
    return 4 * _blur(up, 5, 1.1)[: shape[0], : shape[1]]


def _replicate(x: np.ndarray, level: int, shape) -> np.ndarray:
    return np.kron(x, np.ones((2**level, 2**level)))[: shape[0], : shape[1]]


def _block_fuse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """§5 on one full-resolution channel, including the zero-padding quirk."""
    h, w = x.shape
    if h % 8 or w % 8:
        pad = ((0, 8 - h % 8), (0, 8 - w % 8))
        x, y = np.pad(x, pad), np.pad(y, pad)
    shape = (x.shape[0] // 8, 8, x.shape[1] // 8, 8)
    bx, by = x.reshape(shape), y.reshape(shape)
    sx = np.abs(np.fft.fft2(bx, axes=(1, 3))).mean(axis=(1, 3), keepdims=True)
    sy = np.abs(np.fft.fft2(by, axes=(1, 3))).mean(axis=(1, 3), keepdims=True)
    with np.errstate(invalid="ignore"):
        alpha = sx / (sx + sy)
    return (alpha * bx + (1 - alpha) * by).reshape(x.shape)[:h, :w]


def reference_fusion(ir_y, vi_y, levels, variant, strategy, attention):
    """The official pipeline on full-resolution stacks, float64. Returns (Y, V_CC)."""
    shape = ir_y.shape
    stacks = {}
    for name, y in (("ir", ir_y), ("vi", vi_y)):
        g = [y]
        for i in range(1, levels + 1):
            k = 2 * (levels - i + 1) + 1
            g.append(_blur(g[-1], k, (k - 1) / 6)[::2, ::2])
        d = [g[i] - _pyr_up(g[i + 1], g[i].shape) for i in range(levels)]
        base = np.stack([_replicate(x, k, shape) for k, x in enumerate(g)])
        detail = np.stack([_replicate(x, k, shape) for k, x in enumerate(d)])
        mu = detail.mean(axis=(1, 2), keepdims=True)
        if attention == "pam":
            detail = detail * (1 / (1 + np.exp(-((detail - mu) ** 2))) + 0.5)
        elif attention == "simam":
            sq = (detail - mu) ** 2
            var = sq.sum(axis=(1, 2), keepdims=True) / (shape[0] * shape[1] - 1)
            detail = detail / (1 + np.exp(-(sq / (4 * (var + 1e-4)) + 0.5)))
        stacks[name] = base, detail
    (bx, dx), (by, dy) = stacks["ir"], stacks["vi"]
    fused_detail = [_block_fuse(a, b) for a, b in zip(dx, dy, strict=True)]
    cx = bx - bx.mean(axis=(1, 2), keepdims=True)
    cy = by - by.mean(axis=(1, 2), keepdims=True)
    cov = (cx * cy).mean()
    v = cov / np.sqrt(bx.var(axis=(1, 2), ddof=1) * by.var(axis=(1, 2), ddof=1))
    wcc = np.where(v > 0, 1 - np.exp(-v), np.exp(v) - 1)
    w = 1.5 ** ((wcc + 1) / 2)
    fused_base = []
    for c in range(levels + 1):
        if strategy == "max" or (strategy == "cc+max" and c % 2 == 0):
            fused_base.append(np.maximum(bx[c], by[c]))
        elif strategy == "cc":
            fused_base.append(wcc[c] * bx[c] + (1 - wcc[c]) * by[c])
        else:
            fused_base.append((w[c] * bx[c] + (2 - w[c]) * by[c]) / 2)
    if variant == "official":
        fused_base[levels] = np.mean(fused_base[:levels], axis=0)
    result = fused_base[levels][:: 2**levels, :: 2**levels]
    for k in reversed(range(levels)):
        detail = fused_detail[k][:: 2**k, :: 2**k]
        result = detail + _pyr_up(result, detail.shape)
    return result, v


def _planes(h, w):
    ir = RNG.uniform(16, 235, (h, w))
    vi = np.clip(0.4 * ir + RNG.uniform(10, 140, (h, w)), 16, 235)
    return ir, vi


def _ours(ir, vi, **options):
    as_tensor = [torch.from_numpy(x).float()[None, None] for x in (ir, vi)]
    return fuse_luminance(*as_tensor, **options)


@pytest.mark.parametrize("size", [(64, 64), (67, 93), (101, 77)])
@pytest.mark.parametrize("variant", ["official", "legacy"])
def test_matches_full_resolution_reference(size, variant):
    ir, vi = _planes(*size)
    for strategy, levels in itertools.product(STRATEGIES, (1, 3, 4)):
        expected, v = reference_fusion(ir, vi, levels, variant, strategy, "pam")
        ours = _ours(ir, vi, levels=levels, variant=variant, strategy=strategy)
        np.testing.assert_allclose(ours.luminance[0, 0].numpy(), expected, atol=2e-3, rtol=0)
        if ours.correlation is not None:
            np.testing.assert_allclose(ours.correlation.numpy(), v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["none", "simam"])
def test_attention_variants_match_reference(attention):
    ir, vi = _planes(75, 70)
    expected, _ = reference_fusion(ir, vi, 4, "official", "cc+max", attention)
    ours = _ours(ir, vi, attention=attention)
    np.testing.assert_allclose(ours.luminance[0, 0].numpy(), expected, atol=2e-3, rtol=0)


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_native_block_fusion_equals_replicated_blocks(level):
    """§5 on native grids (weighted m-point DFTs, exact border blocks) = 8×8 FFTs of the
    replicated, zero-padded full-resolution maps."""
    full = (77, 91)
    native = tuple(-(-n // 2**level) for n in full)
    pair = torch.from_numpy(RNG.normal(0, 20, (1, 2, *native)))
    expected = _block_fuse(*(_replicate(p, level, full) for p in pair[0].numpy()))
    ours = fuse_detail_level(pair, level, full)[0, 0].numpy()
    np.testing.assert_allclose(ours, expected[:: 2**level, :: 2**level], atol=1e-10)


# ---------------------------------------------------------------- §14 unit checks
def test_synthesis_reproduces_the_input():
    y = torch.from_numpy(RNG.uniform(16, 235, (1, 1, 93, 130)))
    up = gaussian_kernel1d(5, 1.1, dtype=torch.float64)
    gaussians, details = laplacian_pyramid(y, 4, [k.double() for k in adaptive_kernels(4)], up)
    torch.testing.assert_close(laplacian_synthesis(gaussians[-1], details, up), y)


def test_adaptive_kernels_are_the_spec_taps():
    half_kernels = {9: [0.29937, 0.22598, 0.09719, 0.02382, 0.00333], 3: [0.97826, 0.01087]}
    for kernel in adaptive_kernels(4):
        if kernel.numel() in half_kernels:
            centre = kernel.numel() // 2
            np.testing.assert_allclose(
                kernel[centre:].numpy(), half_kernels[kernel.numel()], atol=6e-6
            )
    assert [k.numel() for k in adaptive_kernels(4)] == [9, 7, 5, 3]


def test_replicated_statistics_and_align_resample_identity():
    """Moments on native grids = moments of the replicated maps (§6.1); resampling a replicated
    map gives the level back (§3)."""
    full = (45, 70)
    gaussians = [
        torch.from_numpy(RNG.normal(size=(1, 2, -(-45 // 2**k), -(-70 // 2**k)))) for k in range(4)
    ]
    stacks = [
        np.stack([_replicate(g[0, c].numpy(), k, full) for k, g in enumerate(gaussians)])
        for c in range(2)
    ]
    for k, g in enumerate(gaussians):
        np.testing.assert_array_equal(stacks[0][k][:: 2**k, :: 2**k], g[0, 0].numpy())
    cx = stacks[0] - stacks[0].mean(axis=(1, 2), keepdims=True)
    cy = stacks[1] - stacks[1].mean(axis=(1, 2), keepdims=True)
    expected = (cx * cy).mean() / np.sqrt(
        stacks[0].var(axis=(1, 2), ddof=1) * stacks[1].var(axis=(1, 2), ddof=1)
    )
    np.testing.assert_allclose(correlation_values(gaussians, full).numpy(), expected, rtol=1e-12)


def test_pam_gain_range():
    """§4: the gain x -> x·(sigmoid((x-μ)²) + 0.5) lies in [1, 1.5); 1.23 at |x-μ| = 1, 1.06 at
    0.5, 1.4999 from 3 on."""
    centred = torch.linspace(-40, 40, 8001, dtype=torch.float64)
    values = torch.cat([centred, centred.new_zeros(1)]).view(1, 1, 1, -1)  # mean 0
    ones = (torch.ones(1, dtype=torch.float64), torch.ones(values.shape[-1], dtype=torch.float64))
    gain = _attend(values, ones, "pam")[0, 0, 0, :-1] / centred
    gain = gain[centred != 0]
    # [1, 1.5) exactly; here up to the rounding of (gain·x)/x and of sigmoid near 1
    assert gain.min() >= 1.0 - 1e-12 and gain.max() <= 1.5 + 1e-12
    at = {round(float(c), 6): float(g) for c, g in zip(centred[centred != 0], gain, strict=True)}
    assert (round(at[1.0], 2), round(at[0.5], 2), round(at[3.0], 4)) == (1.23, 1.06, 1.4999)
    simam = _attend(values, ones, "simam")[0, 0, 0, :-1] / centred
    assert simam[centred != 0].max() < 1.0  # SimAM attenuates


def test_wcc_table():
    """§6.2 table, to the printed precision."""
    v = torch.tensor([-1, -0.5, 0, 0.25, 0.5, 1], dtype=torch.float64)
    wcc, w = wcc_weights(v)
    np.testing.assert_allclose(wcc.numpy(), [-0.632, -0.393, 0, 0.221, 0.393, 0.632], atol=5e-4)
    np.testing.assert_allclose(w.numpy(), [1.077, 1.131, 1.225, 1.281, 1.326, 1.392], atol=5e-4)
    # the spec's IR-share row halves the rounded w (0.641 = 1.281 / 2, rounded up)
    np.testing.assert_allclose(
        (w / 2).numpy(), [0.539, 0.565, 0.612, 0.641, 0.663, 0.696], atol=1e-3
    )


def test_chroma_shortcut_equals_the_studio_round_trip():
    """§7: putting Yf into the visible YCbCr and converting back = adding (Yf - Yvi)/219."""
    vi = torch.from_numpy(RNG.uniform(0, 1, (1, 3, 9, 11)))
    fused = torch.from_numpy(RNG.uniform(-50, 300, (1, 1, 9, 11)))
    ycbcr = rgb_to_ycbcr(vi, "studio")
    expected = ycbcr_to_rgb(torch.cat([fused, ycbcr[:, 1:]], dim=1), "studio")
    torch.testing.assert_close(vi + (fused - ycbcr[:, :1]) / 219, expected)


# ---------------------------------------------------------------- the official sample (§14)
@pytest.fixture(scope="module")
def sample(shared_dir):
    """The official LLVIP pair and output, and our raw legacy and official results."""
    folder = shared_dir / "oracle" / "cpfusion"
    ir, vi = load_pair(folder / "ir" / "190015.jpg", folder / "vis" / "190015.jpg")
    oracle = np.asarray(Image.open(folder / "fused" / "190015.jpg")).astype(int)
    ir_t, vi_t = to_tensor(ir), to_tensor(vi)
    ir_y = to_tensor(ir[..., 0]) * 219 + 16
    vi_y = rgb_to_ycbcr(vi_t, "studio")[:, :1]
    results = {}
    for variant in ("legacy", "official"):
        method = CPFusion(variant=variant)
        with torch.inference_mode():  # the path of ivif.fuse, before clamping and quantising
            rgb = method.fuse_planes(method.prepare_ir(ir_t), vi_t)
        results[variant] = method.fuse_luminance(ir_y, vi_y), rgb
    return oracle, results


def _jpeg75(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=75)
    return np.asarray(Image.open(buffer)).astype(int)


def test_legacy_reproduces_the_official_sample(sample):
    """Legacy + truncation, saved as Pillow JPEG q75, equals the official file: identical decoded
    pixels (spec §14)."""
    oracle, results = sample
    fused = from_tensor(results["legacy"][1].clamp(0, 1), "truncate")
    np.testing.assert_array_equal(_jpeg75(fused), oracle)


def test_legacy_sample_through_the_api(shared_dir, tmp_path):
    """The same through ``ivif.fuse`` and a JPEG q75 file written by :func:`write_image`."""
    folder = shared_dir / "oracle" / "cpfusion"
    fused = ivif.fuse(
        folder / "ir" / "190015.jpg", folder / "vis" / "190015.jpg", method="cpfusion",
        variant="legacy", rounding="truncate",
    )  # fmt: skip
    out = tmp_path / "190015.jpg"
    write_image(out, fused, quality=75)
    oracle = np.asarray(Image.open(folder / "fused" / "190015.jpg"))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), oracle)


def test_sample_statistics_and_intermediates(sample):
    """§14 fixtures for both variants, to the printed precision."""
    _, results = sample
    (legacy, legacy_rgb), (official, official_rgb) = results["legacy"], results["official"]
    y = legacy.luminance.double()
    assert (round(y.mean().item(), 3), round(y.std().item(), 3)) == (100.693, 57.717)
    y = official.luminance.double()
    assert (round(y.mean().item(), 3), round(y.std().item(), 3)) == (91.224, 52.370)
    assert (round(y.min().item(), 1), round(y.max().item(), 1)) == (-92.5, 376.3)
    np.testing.assert_array_equal(
        official.correlation.double().numpy().round(4), [0.2724, 0.2918, 0.3040, 0.3135, 0.3137]
    )
    np.testing.assert_array_equal(
        official.weight.double().numpy().round(4), [1.2854, 1.2892, 1.2916, 1.2934, 1.2935]
    )
    for rgb, means in ((legacy_rgb, (92.50, 100.67, 93.37)), (official_rgb, (82.14, 90.28, 83.14))):
        fused = from_tensor(rgb.clamp(0, 1), "truncate")
        np.testing.assert_array_equal(fused.reshape(-1, 3).mean(axis=0).round(2), means)
    clipped = ((official_rgb < 0) | (official_rgb > 1)).double().mean().item()
    assert clipped == pytest.approx(0.042, abs=0.001)  # "about 4.2% of values clipped"


# ---------------------------------------------------------------- options and colour
@pytest.fixture(scope="module")
def colour_pair():
    ir = RNG.integers(0, 256, (70, 83), dtype=np.uint8)
    vi = RNG.integers(0, 256, (70, 83, 3), dtype=np.uint8)
    return ir, vi


def test_every_option_changes_the_result(colour_pair):
    ir, vi = colour_pair
    outputs = {}
    settings = [{}]
    settings += [{"strategy": s} for s in STRATEGIES[1:]]
    settings += [{"attention": a} for a in ("simam", "none")]
    settings += [{"variant": "legacy"}, {"levels": 2}, {"levels": 3}]
    settings += [{"variant": "legacy", "strategy": "cc"}]
    for options in settings:
        outputs[str(options)] = fuse_arrays(create_method("cpfusion", **options), ir, vi)
    for (a, x), (b, y) in itertools.combinations(outputs.items(), 2):
        assert not np.array_equal(x, y), f"{a} and {b} give the same image"
    # legacy ignores the odd-level mix when L is even: CC+MAX and MAX coincide (§6.4)
    legacy = [create_method("cpfusion", variant="legacy", strategy=s) for s in ("cc+max", "max")]
    np.testing.assert_array_equal(*(fuse_arrays(m, ir, vi) for m in legacy))


def test_rounding_option(colour_pair):
    ir, vi = colour_pair
    methods = {r: create_method("cpfusion", rounding=r) for r in ("round", "truncate")}
    assert {r: m.rounding for r, m in methods.items()} == {"round": "round", "truncate": "truncate"}
    rounded, truncated = (fuse_arrays(m, ir, vi).astype(int) for m in methods.values())
    assert set(np.unique(rounded - truncated)) <= {0, 1} and (rounded != truncated).any()


def test_gray_visible_gives_gray_output(colour_pair):
    ir, vi = colour_pair
    gray = vi[..., 1]
    method = create_method("cpfusion")
    single = fuse_arrays(method, ir, gray)
    triple = fuse_arrays(method, ir, np.repeat(gray[..., None], 3, axis=2))
    assert single.shape == (70, 83)
    np.testing.assert_array_equal(single, triple)
    # equal to the colour path on an R = G = B image, channel for channel (within rounding)
    with torch.inference_mode():
        rgb = method.fuse_planes(to_tensor(ir), to_tensor(np.repeat(gray[..., None], 3, axis=2)))
    assert np.abs(ivif.io.from_tensor(rgb.clamp(0, 1))[..., 0].astype(int) - single).max() <= 1


def test_colour_infrared_uses_bt709_luma(colour_pair):
    _, vi = colour_pair
    ir = RNG.integers(0, 256, (70, 83, 3), dtype=np.uint8)
    luma = ir.astype(np.float64) / 255 @ np.array([0.2125, 0.7154, 0.0721])
    method = CPFusion()
    prepared = method.prepare_ir(to_tensor(ir))
    np.testing.assert_array_equal(prepared[0, 0].numpy(), luma.astype(np.float32))
    gray_ir = ir[..., 0]
    same = np.repeat(gray_ir[..., None], 3, axis=2)
    np.testing.assert_array_equal(fuse_arrays(method, gray_ir, vi), fuse_arrays(method, same, vi))


def test_small_images_use_fewer_levels_and_tiny_ones_are_refused():
    method = CPFusion(levels=4)
    assert [method.levels_for(n, 100) for n in (8, 31, 32, 63, 64, 1000)] == [1, 2, 3, 3, 4, 4]
    small = RNG.integers(0, 256, (20, 37), dtype=np.uint8)
    assert fuse_arrays(method, small, small).shape == (20, 37)
    tiny = RNG.integers(0, 256, (7, 30), dtype=np.uint8)
    with pytest.raises(InputError, match="at least 8×8"):
        fuse_arrays(method, tiny, tiny)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"levels": 0}, "levels must be >= 1"),
        ({"variant": "head"}, "variant='head' is not one of"),
        ({"strategy": "CC"}, "strategy='CC' is not one of"),
        ({"attention": True}, "attention=True is not one of"),
        ({"rounding": "ceil"}, "rounding='ceil'"),
        ({"layers": 4}, "has no option layers"),
    ],
)
def test_bad_options_are_input_errors(options, message):
    with pytest.raises(InputError, match=message):
        create_method("cpfusion", **options)


def test_bad_planes_are_rejected():
    with pytest.raises(ValueError, match=r"\(1, 1, H, W\)"):
        fuse_luminance(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 65))


def test_is_the_default_method():
    assert DEFAULT_METHOD == "cpfusion" and "cpfusion" in ivif.methods()


# ---------------------------------------------------------------- command line
def test_cli_pair_and_folders_with_options(tmp_path, capsys, colour_pair):
    ir, vi = colour_pair
    for folder in ("ir", "vi"):
        (tmp_path / folder).mkdir()
    for name in ("a", "b"):
        write_image(tmp_path / "ir" / f"{name}.png", ir)
        write_image(tmp_path / "vi" / f"{name}.png", vi)
    flags = ["--variant", "legacy", "--strategy", "cc", "--attention", "none", "--levels", "3",
             "--rounding", "truncate"]  # fmt: skip
    out = tmp_path / "single.png"
    ir_path, vi_path = tmp_path / "ir" / "a.png", tmp_path / "vi" / "a.png"
    assert main(["fuse", str(ir_path), str(vi_path), "-o", str(out), "-m", "cpfusion", *flags]) == 0
    expected = fuse_arrays(
        create_method(
            "cpfusion", variant="legacy", strategy="cc", attention="none", levels=3,
            rounding="truncate",
        ),
        ir,
        vi,
    )  # fmt: skip
    np.testing.assert_array_equal(read_image(out), expected)
    code = main(
        ["fuse", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"), "-o",
         str(tmp_path / "out"), "--method", "cpfusion", *flags]
    )  # fmt: skip
    assert code == 0
    for name in ("a", "b"):
        np.testing.assert_array_equal(read_image(tmp_path / "out" / f"{name}.png"), expected)
    with pytest.raises(SystemExit) as exited:
        main(["fuse", str(ir_path), str(vi_path), "-o", str(out), "--strategy", "mean"])
    assert exited.value.code == 2 and "invalid choice: 'mean'" in capsys.readouterr().err


def test_levels_fit_the_log2_guard():
    for n in (8, 64, 65, 127, 128):
        assert CPFusion(levels=10).levels_for(n, n) == int(math.log2(n)) - 2
