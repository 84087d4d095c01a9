"""The metrics API, analytic cases, invariances and degenerate input.

Uses the sample pairs shipped with ivif (no ``../shared`` needed). Analytic values are the
consequences of each definition (F equal to the sources, constant images); invariances are the
symmetries each definition has (source order, transposition, per-channel averaging).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import ivif
from ivif.color import matlab_rgb2gray_u8
from ivif.errors import InputError
from ivif.evaluation import SourceCache, conventions, evaluate_arrays, get_convention
from ivif.evaluation.inputs import MetricInputs, prepare_inputs
from ivif.evaluation.registry import metric_entry
from ivif.io import read_image, write_image
from ivif.samples import sample_folder

pytestmark = pytest.mark.usefixtures("single_thread")

CANONICAL = {
    "EN", "SD", "SF", "AG", "MI", "PSNR", "MSE", "RMSE", "CE", "EI", "Qabf", "Nabf", "Qcb",
    "Qcv", "VIF", "SSIM", "CC", "SCD", "FMI_pixel", "FMI_dct", "FMI_w", "QSF", "MEF_SSIM",
    "MS_SSIM",
}  # fmt: skip
TANG_ALL = [info.name for info in ivif.metrics("tang")]
VIFB_ALL = [info.name for info in ivif.metrics("vifb")]
#: Every Tang metric that fits the 48×64 crops (MS-SSIM needs 176 px).
TANG_SMALL = [name for name in TANG_ALL if name != "MS_SSIM"]


@pytest.fixture(scope="module")
def pair():
    """A real 240×320 pair (grey IR, colour VI) and a colour fused image (pixel average)."""
    ir = read_image(sample_folder() / "ir" / "msrs_00537D.png")
    vi = read_image(sample_folder() / "vi" / "msrs_00537D.png")
    fused = ivif.fuse(ir, vi, method="average")
    return ir, vi, fused


@pytest.fixture(scope="module")
def gray(pair):
    """Grey 48×64 crops of the pair: IR, VI, fused."""
    ir, vi, fused = pair
    return tuple(
        np.ascontiguousarray(matlab_rgb2gray_u8(x)[80:128, 130:194]) for x in (ir, vi, fused)
    )


# --- registry and API ----------------------------------------------------------------------------


def test_every_canonical_name_is_registered_somewhere():
    names = {info.name for c in conventions() for info in ivif.metrics(c)}
    assert names == CANONICAL
    assert set(VIFB_ALL) == set(get_convention("vifb").default)  # VIFB's 13, nothing else
    assert {"CE", "EI", "Qcb", "Qcv", "RMSE"}.isdisjoint(TANG_ALL)


@pytest.mark.parametrize("convention", ["tang", "tang2022", "vifb"])
def test_metrics_lists_directions_and_definitions(convention):
    infos = ivif.metrics(convention)
    default = get_convention(convention).default
    assert [info.name for info in infos[: len(default)]] == list(default)
    for info in infos:
        assert isinstance(info, ivif.MetricInfo)
        assert info.convention == convention
        assert isinstance(info.higher_is_better, bool)
        assert info.definition and "\n" not in info.definition
        assert info.source
    with pytest.raises(dataclasses.FrozenInstanceError):
        infos[0].name = "X"
    by_name = {info.name: info for info in infos}
    for name, better in (("EN", True), ("MSE", False), ("Qcv", False), ("Nabf", False)):
        if name in by_name:
            assert by_name[name].higher_is_better is better
    if "QSF" in by_name:
        assert by_name["QSF"].ideal == 0.0


def test_default_convention_is_tang_and_results_keep_order(gray):
    values = ivif.evaluate(*gray)
    assert list(values) == list(get_convention("tang").default)
    chosen = evaluate_arrays(*gray, metrics=["qabf", "EN", "mi"])
    assert list(chosen) == ["Qabf", "EN", "MI"]
    assert chosen["EN"] == values["EN"]


def test_toolbox_names_are_aliases_and_all_selects_everything(gray):
    aliased = evaluate_arrays(*gray, ["Avg_gradient", "Variance"], "vifb")
    assert list(aliased) == ["AG", "SD"]
    assert list(evaluate_arrays(*gray, "all", "vifb")) == VIFB_ALL


def test_unknown_names_and_conventions_are_clear_errors(gray):
    with pytest.raises(InputError, match=r"'VIF'.*vifb.*exists in convention tang"):
        evaluate_arrays(*gray, ["VIF"], "vifb")
    with pytest.raises(InputError, match="unknown metric 'nope'"):
        evaluate_arrays(*gray, ["nope"])
    with pytest.raises(InputError, match="unknown metric convention 'matlab'"):
        ivif.metrics("matlab")
    with pytest.raises(InputError, match="no metrics"):
        evaluate_arrays(*gray, [])


def test_paths_arrays_and_float_arrays_agree(tmp_path, gray):
    paths = [write_image(tmp_path / f"{k}.png", x) for k, x in zip("abc", gray, strict=True)]
    from_paths = ivif.evaluate(*paths, metrics=TANG_SMALL)
    from_arrays = ivif.evaluate(*gray, metrics=TANG_SMALL)
    from_floats = ivif.evaluate(*(x / 255.0 for x in gray), metrics=TANG_SMALL)
    assert from_paths == from_arrays == from_floats


@pytest.mark.parametrize("convention", ["tang", "tang2022", "vifb"])
def test_source_cache_changes_no_value_and_recognises_its_pair(gray, convention):
    ir, vi, fused = gray
    names = TANG_SMALL if convention != "vifb" else VIFB_ALL
    cache = SourceCache()
    for f in (fused, np.ascontiguousarray(fused[::-1]), ir):
        cached = evaluate_arrays(ir, vi, f, names, convention, cache=cache)
        assert cached == evaluate_arrays(ir, vi, f, names, convention)
    swapped = evaluate_arrays(vi, fused, ir, names, convention, cache=cache)  # another pair
    assert swapped == evaluate_arrays(vi, fused, ir, names, convention)


# --- analytic cases ------------------------------------------------------------------------------


def test_fused_equal_to_both_sources(gray):
    a = gray[0]
    tang = evaluate_arrays(a, a, a, TANG_SMALL, "tang")
    assert tang["PSNR"] == math.inf and tang["MSE"] == 0.0
    assert tang["CC"] == pytest.approx(1.0, abs=1e-15)
    assert tang["SCD"] == 0.0  # F − B is constant: no correlation to measure
    for name in ("SSIM", "MEF_SSIM", "FMI_pixel", "FMI_dct", "FMI_w"):
        assert tang[name] == pytest.approx(1.0, abs=1e-9), name
    assert tang["VIF"] == pytest.approx(2.0, rel=1e-8)  # vifp(A→A) = 1 for each source
    assert tang["QSF"] == 0.0 and tang["Nabf"] == 0.0
    vifb = evaluate_arrays(a, a, a, "all", "vifb")
    assert vifb["PSNR"] == math.inf and vifb["RMSE"] == 0.0 and vifb["CE"] == 0.0
    assert vifb["SSIM"] == pytest.approx(2.0, abs=1e-9)  # VIFB sums the two sources
    assert vifb["Qcb"] == pytest.approx(1.0, abs=1e-12)
    assert vifb["Qcv"] == pytest.approx(0.0, abs=1e-12)


def test_mutual_information_of_a_copy_is_twice_the_entropy():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 254, (40, 50), dtype=np.uint8)  # no 254/255: Tang's joint bin is exact
    a[0, 0], a[0, 1] = 0, 253
    tang = evaluate_arrays(a, a, a, ["MI", "EN"], "tang")
    assert tang["MI"] == pytest.approx(2 * tang["EN"], rel=1e-12)
    full = a.copy()
    full[0, 1] = 255  # VIFB stretches min..max onto 0..255: a full-range image is unchanged
    vifb = evaluate_arrays(full, full, full, ["MI", "EN"], "vifb")
    assert vifb["MI"] == pytest.approx(2 * vifb["EN"] * math.log(2), rel=1e-12)  # nats


def test_fused_equal_to_one_source(gray):
    ir, vi, _ = gray
    values = evaluate_arrays(ir, vi, ir, ["CC", "SSIM"], "tang")
    cross = evaluate_arrays(vi, vi, ir, ["CC", "SSIM"], "tang")  # both terms compare IR with VI
    assert values["CC"] == pytest.approx((1.0 + cross["CC"]) / 2, rel=1e-12)
    assert values["SSIM"] == pytest.approx((1.0 + cross["SSIM"]) / 2, rel=1e-12)


def test_psnr_mse_and_rmse_relations(gray):
    tang = evaluate_arrays(*gray, ["PSNR", "MSE"], "tang")
    assert tang["PSNR"] == pytest.approx(10 * math.log10(255**2 / tang["MSE"]), rel=1e-12)
    vifb = evaluate_arrays(*gray, ["PSNR", "RMSE"], "vifb")
    assert vifb["PSNR"] == pytest.approx(20 * math.log10(255 / math.sqrt(vifb["RMSE"])), rel=1e-12)


def test_tang2022_quirks_against_the_current_code(gray):
    current = evaluate_arrays(*gray, ["SF", "SD"], "tang")
    legacy = evaluate_arrays(*gray, ["SF", "SD"], "tang2022")
    assert legacy["SF"] == pytest.approx(current["SF"] / 255, rel=1e-12)  # SF on [0, 1]
    assert legacy["SD"] <= math.sqrt(255) < current["SD"]  # uint8-saturated pseudo-SD


def test_qsf_sign_tells_lost_from_added_detail(gray):
    ir, vi, fused = gray
    blurred = np.full_like(fused, int(fused.mean()))
    blurred[::2] = fused[::2]
    smooth = ((fused.astype(int) + np.roll(fused, 1, 1)) // 2).astype(np.uint8)
    grain = np.random.default_rng(0).integers(-60, 61, fused.shape)
    noisy = np.clip(fused.astype(int) + grain, 0, 255).astype(np.uint8)
    assert evaluate_arrays(ir, vi, smooth, ["QSF"])["QSF"] < 0
    assert evaluate_arrays(ir, vi, noisy, ["QSF"])["QSF"] > 0


# --- degenerate input ----------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["tang", "tang2022", "vifb"])
@pytest.mark.parametrize("values", [(90, 90, 90), (0, 200, 77)])
def test_constant_images_give_documented_values(convention, values):
    ir, vi, fused = (np.full((64, 64), v, dtype=np.uint8) for v in values)
    names = TANG_SMALL if convention != "vifb" else VIFB_ALL
    result = evaluate_arrays(ir, vi, fused, names, convention)
    assert not any(math.isnan(v) for v in result.values())
    for name in ("EN", "SD", "SF", "AG", "EI", "CC", "SCD", "VIF", "MI", "Nabf"):
        if name in result:
            assert result[name] == 0.0, name
    # conv2's zero padding makes the border of a non-zero constant image an edge
    assert 0.0 <= result["Qabf"] <= 1.0
    if "Qcb" in result:
        assert result["Qcb"] == 1.0  # no contrast anywhere: nothing is lost
    if "QSF" in result:
        assert result["QSF"] == 0.0
    if len(set(values)) == 1:
        assert result["PSNR"] == math.inf
    else:
        assert math.isfinite(result["PSNR"])


def test_constant_images_at_the_ms_ssim_size():
    ir, vi, fused = (np.full((176, 180), v, dtype=np.uint8) for v in (0, 200, 77))
    value = evaluate_arrays(ir, vi, fused, ["MS_SSIM"])["MS_SSIM"]
    assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("convention", ["tang", "tang2022", "vifb"])
def test_single_pixel_images(convention):
    one = np.array([[7]], dtype=np.uint8)
    small = [info.name for info in ivif.metrics(convention) if info.min_size == 1]
    result = evaluate_arrays(one, one, one, small, convention)
    assert all(not math.isnan(v) for v in result.values())
    assert result["EN"] == 0.0 and result["SD"] == 0.0
    for info in ivif.metrics(convention):
        if info.min_size > 1:
            with pytest.raises(InputError, match=rf"{info.name} .* at least {info.min_size}"):
                evaluate_arrays(one, one, one, [info.name], convention)


def test_minimum_sizes_are_accepted():
    rng = np.random.default_rng(2)
    for info in ivif.metrics("tang") + ivif.metrics("vifb"):
        side = info.min_size
        images = [rng.integers(0, 256, (side, side + 1), dtype=np.uint8) for _ in range(3)]
        value = evaluate_arrays(*images, [info.name], info.convention)[info.name]
        assert not math.isnan(value), info.name


def test_bad_input_is_rejected_clearly(gray):
    ir, vi, fused = gray
    with pytest.raises(InputError, match="sizes differ"):
        evaluate_arrays(ir, vi, fused[:-1])
    with pytest.raises(InputError, match="expected H×W or H×W×3"):
        evaluate_arrays(ir[None, None], vi, fused)
    with pytest.raises(InputError, match="uint8, or float"):
        evaluate_arrays(ir.astype(np.int16), vi, fused)
    with pytest.raises(InputError, match="within"):
        evaluate_arrays(ir / 100.0, vi, fused)
    with pytest.raises(InputError, match="within"):
        evaluate_arrays(np.full(ir.shape, np.nan), vi, fused)
    with pytest.raises(InputError, match="no such file"):
        ivif.evaluate("missing.png", vi, fused)


# --- invariances ---------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["tang", "tang2022", "vifb"])
def test_swapping_the_sources_changes_nothing(gray, convention):
    ir, vi, fused = gray
    names = TANG_SMALL if convention != "vifb" else VIFB_ALL
    forward = evaluate_arrays(ir, vi, fused, names, convention)
    backward = evaluate_arrays(vi, ir, fused, names, convention)
    for name in names:
        assert backward[name] == pytest.approx(forward[name], rel=1e-9, abs=1e-12), name


def test_transposing_everything_leaves_isotropic_metrics_unchanged(pair):
    ir, vi, fused = (matlab_rgb2gray_u8(x) for x in pair)
    names = ["EN", "MI", "SD", "SF", "AG", "PSNR", "MSE", "VIF", "CC", "SCD", "SSIM", "MS_SSIM"]
    values = evaluate_arrays(ir, vi, fused, names, "tang")
    transposed = evaluate_arrays(ir.T, vi.T, fused.T, names, "tang")
    for name in names:
        assert transposed[name] == pytest.approx(values[name], rel=1e-9), name


def test_vifb_averages_channels_except_sf_and_ei(pair):
    ir, vi, fused = (x[100:180, 120:220] for x in pair)
    names = [n for n in VIFB_ALL if n not in ("SF", "EI")]
    colour = evaluate_arrays(ir, vi, fused, names, "vifb")
    per_channel = [evaluate_arrays(ir, vi[..., k], fused[..., k], names, "vifb") for k in range(3)]
    for name in names:
        mean = sum(c[name] for c in per_channel) / 3
        assert colour[name] == pytest.approx(mean, rel=1e-12), name


def test_a_grey_source_is_one_distinct_plane_with_unchanged_values(pair):
    ir, vi, fused = (x[100:180, 120:220] for x in pair)
    inputs = prepare_inputs(ir, vi, fused, "vifb")
    assert inputs.source_index.tolist() == [[0, 1, 2], [3, 3, 3]]  # A = VI (colour), B = IR
    distinct = inputs.distinct_sources()
    assert distinct.shape == (4, 80, 100)
    rows_a, rows_b = inputs.source_rows()
    assert torch.equal(distinct[rows_a], inputs.planes_u8[0])
    assert torch.equal(distinct[rows_b].expand(3, -1, -1), inputs.planes_u8[1])
    # A colour file with equal channels is grey too; a colour IR is not.
    grey_rgb = np.repeat(ir[..., None], 3, axis=2)
    assert prepare_inputs(grey_rgb, vi, fused, "vifb").source_index.tolist() == [
        [0, 1, 2],
        [3, 3, 3],
    ]
    assert prepare_inputs(vi, vi, fused, "vifb").source_index.tolist() == [[0, 1, 2], [3, 4, 5]]
    # Every VIFB metric gives the same value when each plane is computed on its own.
    every_plane = MetricInputs("vifb", inputs.planes_u8)
    assert every_plane.source_index.tolist() == [[0, 1, 2], [3, 4, 5]]
    for name in VIFB_ALL:
        entry = metric_entry(name, "vifb")
        separate = entry.compute(MetricInputs("vifb", inputs.planes_u8))
        assert entry.compute(inputs) == pytest.approx(separate, rel=1e-13, abs=1e-15), name


def test_colour_is_converted_the_toolbox_way(pair):
    ir, vi, fused = (x[:96, :128] for x in pair)
    tang = evaluate_arrays(ir, vi, fused, TANG_SMALL, "tang")
    grey_images = (ir, matlab_rgb2gray_u8(vi), matlab_rgb2gray_u8(fused))
    grey = evaluate_arrays(*grey_images, TANG_SMALL, "tang")
    assert tang == grey  # Tang converts every colour image with MATLAB's rgb2gray first
    grey_fused = matlab_rgb2gray_u8(fused)
    vifb = evaluate_arrays(ir, vi, grey_fused, "all", "vifb")
    assert vifb == evaluate_arrays(ir, matlab_rgb2gray_u8(vi), grey_fused, "all", "vifb")
