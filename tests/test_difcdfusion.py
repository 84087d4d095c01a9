"""Dif-CDFusion: shapes, extractor noise and determinism, attention algebra, losses and their
gradients, training stages and bit-identical resume, the method (padding, tiling, gray input)."""

from __future__ import annotations

import csv
import dataclasses
import math
import shutil

import numpy as np
import pytest
import torch

from ivif.errors import InputError
from ivif.methods import create_method
from ivif.methods.difcdfusion import CONFIGS, ModelConfig
from ivif.methods.difcdfusion.cdaf import CrossAttention, factorised_attention
from ivif.methods.difcdfusion.config import _sr3_unet
from ivif.methods.difcdfusion.extractor import DiffusionExtractor, sample_gamma
from ivif.methods.difcdfusion.head import FusionNet
from ivif.methods.difcdfusion.losses import FusionLoss, color_loss, gradient_loss
from ivif.methods.difcdfusion.method import load_model, shipped_prefix
from ivif.methods.difcdfusion.training import (
    DenoiserTask,
    FusionTask,
    configs_from,
    loop_config,
    run_stage,
)
from ivif.nn import TimestepUNet, load_matching_weights, noise_level_embedding, save_weights
from ivif.ops import tile_starts, tiled_apply
from ivif.train import train

# Two levels; no mid-block attention (at H/2 it would cost O((HW/4)²) on whole validation images).
TINY = ModelConfig(
    ir_unet=dataclasses.replace(_sr3_unet(1, 8, (1, 2), 1, 4, 0.0), mid_attention=False),
    vi_unet=dataclasses.replace(_sr3_unet(3, 8, (1, 2), 1, 4, 0.0), mid_attention=False),
    fusion_channels=8,
    heads=2,
)
#: TINY with the source images in the head (the shipped ``cpu`` behaviour).
TINY_SKIP = dataclasses.replace(TINY, input_skip="head")
TINY_TRAIN = dataclasses.replace(
    CONFIGS["cpu"][1],
    ddpm_steps=24,
    ddpm_patch=32,
    ddpm_batch=4,
    ddpm_lr=2e-3,
    fusion_steps=24,
    fusion_patch=32,
    fusion_batch=3,
    fusion_lr=2e-3,
    warmup_steps=2,
    validate_every=12,
    checkpoint_every=6,
    log_every=6,
    val_pairs=1,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: these models are tiny, and on a shared 2-core box a second thread
    mostly spins."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gamma_bounds(t: int, config: ModelConfig) -> tuple[float, float]:
    """√ᾱ_t and √ᾱ_{t−1} of the linear schedule, re-derived in float64 (1-based t)."""
    betas = np.linspace(config.beta_start, config.beta_end, config.timesteps, dtype=np.float64)
    alpha_bar = np.concatenate([[1.0], np.cumprod(1.0 - betas)])
    return math.sqrt(alpha_bar[t]), math.sqrt(alpha_bar[t - 1])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, request):
    """Three real RoadScene pairs copied into a small ``ir/`` + ``vi/`` folder."""
    shared = request.getfixturevalue("shared_dir")
    root = tmp_path_factory.mktemp("pairs")
    source = shared / "data" / "roadscene" / "all"
    for sub in ("ir", "vi"):
        (root / sub).mkdir()
        for path in sorted((source / sub).iterdir())[:3]:
            shutil.copy(path, root / sub / path.name)
    return root


def _save_tiny(directory, model_config: ModelConfig) -> str:
    """Random weights of ``model_config`` in the shipped layout ``PREFIX-<stage>.safetensors``."""
    torch.manual_seed(0)
    extractor, fusion = DiffusionExtractor(model_config), FusionNet(model_config)
    prefix = directory / "tiny"
    config = {"model": model_config.to_dict()}
    save_weights(extractor.ir_unet, f"{prefix}-ddpm-ir.safetensors", config)
    save_weights(extractor.vi_unet, f"{prefix}-ddpm-vi.safetensors", config)
    save_weights(fusion, f"{prefix}-fusion.safetensors", config)
    return str(prefix)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """Random TINY weights in the shipped layout ``PREFIX-<stage>.safetensors`` (+ JSON)."""
    return _save_tiny(tmp_path_factory.mktemp("weights"), TINY)


@pytest.fixture(scope="module")
def tiny_skip_weights(tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp("skip_weights"), TINY_SKIP)


@pytest.mark.parametrize("size", [(32, 48), (40, 24)])
def test_shapes_at_two_sizes(size):
    extractor, fusion = DiffusionExtractor(TINY).eval(), FusionNet(TINY).eval()
    ir, vi = torch.rand(2, 1, *size), torch.rand(2, 3, *size)
    with torch.no_grad():
        ir_features, vi_features = extractor(ir, vi, torch.Generator().manual_seed(0))
        fused = fusion(ir_features, vi_features)
    assert ir_features.shape == vi_features.shape == (2, TINY.feature_channels, *size)
    assert fused.shape == (2, 3, *size)
    assert float(fused.min()) >= 0.0 and float(fused.max()) <= 1.0


def test_official_sizes_match_the_spec():
    """Spec §2.2 and §4: 370,061,187 parameters per UNet, 1,113,143 in the fusion network."""
    official = CONFIGS["official"][0]
    with torch.device("meta"):
        unet = TimestepUNet(official.vi_unet)
        fusion = FusionNet(official)
    assert sum(p.numel() for p in unet.parameters()) == 370_061_187
    assert sum(p.numel() for p in fusion.parameters()) == 1_113_143
    assert official.t_feat == 100 and official.timesteps == 2000


def test_noise_level_embedding_matches_float64_formula():
    gamma = torch.tensor([0.0, 0.3, 0.9877, 1.0])
    dim = 16
    k = np.arange(dim // 2)
    angles = gamma.numpy().astype(np.float64)[:, None] * 10.0 ** (-4.0 * k / (dim // 2))[None]
    expected = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    np.testing.assert_allclose(noise_level_embedding(gamma, dim).numpy(), expected, atol=1e-6)


def test_gamma_lies_in_the_sr3_interval_for_t100():
    config = CONFIGS["cpu"][0]
    extractor = DiffusionExtractor(TINY)
    t = torch.full((4096,), 100)
    gamma = sample_gamma(extractor.schedule, t, torch.Generator().manual_seed(1)).double()
    low, high = _gamma_bounds(100, config)
    assert low == pytest.approx(0.9877, abs=5e-4)  # spec §2.1
    assert float(gamma.min()) >= low - 1e-6 and float(gamma.max()) <= high + 1e-6
    assert float(gamma.max() - gamma.min()) > 0.9 * (high - low)  # uniform over the interval


def test_extractor_features_deterministic_for_fixed_t_and_seed():
    extractor = DiffusionExtractor(TINY).eval()
    ir, vi = torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        a = extractor(ir, vi, torch.Generator().manual_seed(7), t=100)
        b = extractor(ir, vi, torch.Generator().manual_seed(7), t=100)
        c = extractor(ir, vi, torch.Generator().manual_seed(8), t=100)
        d = extractor(ir, vi, torch.Generator().manual_seed(7), t=500)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], d[1])


def test_extractor_uses_separate_or_shared_denoisers():
    extractor = DiffusionExtractor(TINY).eval()
    ir, vi = torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        separate = extractor(ir, vi, torch.Generator().manual_seed(0))
        shared = extractor(ir, vi, torch.Generator().manual_seed(0), share_weights=True)
        # The infrared image replicated to RGB through the visible denoiser (noise drawn first).
        expected = extractor._features(extractor.vi_unet, ir, 100, torch.Generator().manual_seed(0))
    torch.testing.assert_close(shared[0], expected)
    assert not torch.equal(shared[0], separate[0])


def test_factorised_attention_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 10, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    expected = torch.zeros_like(q)
    for b in range(2):
        for h in range(3):
            weights = torch.exp(k[b, h]) / torch.exp(k[b, h]).sum(dim=0, keepdim=True)
            for n in range(10):
                for j in range(4):
                    expected[b, h, n, j] = sum(
                        q[b, h, n, i] * sum(weights[m, i] * v[b, h, m, j] for m in range(10))
                        for i in range(4)
                    )
    torch.testing.assert_close(factorised_attention(q, k, v), expected)


def test_differential_mode_is_value_minus_read_out():
    torch.manual_seed(0)
    common = CrossAttention(8, 2, 3, "common")
    diff = CrossAttention(8, 2, 3, "differential")
    diff.load_state_dict(common.state_dict())
    for block in (common, diff):  # isolate the attention residual
        torch.nn.init.zeros_(block.mlp[2].weight)
        torch.nn.init.zeros_(block.mlp[2].bias)
        torch.nn.init.eye_(block.proj.weight)
        torch.nn.init.zeros_(block.proj.bias)
    q_in, kv_in = torch.randn(1, 12, 8), torch.randn(1, 12, 8)
    read_out = common(q_in, kv_in) - q_in
    value = common.v(kv_in)
    torch.testing.assert_close(diff(q_in, kv_in) - q_in, value - read_out)
    with pytest.raises(ValueError, match="mode"):
        CrossAttention(8, 2, 3, "sum")


def test_color_loss_matches_opencv_formula_and_has_gradient():
    gen = torch.Generator().manual_seed(0)
    fused = torch.rand(2, 3, 8, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    vi = torch.rand(2, 3, 8, 8, generator=gen, dtype=torch.float64)

    def chroma(x):
        r, g, b = x.detach().numpy().transpose(1, 0, 2, 3)
        y = 0.299 * r + 0.587 * g + 0.114 * b
        return 0.713 * (r - y) + 0.5, 0.564 * (b - y) + 0.5

    (cr_f, cb_f), (cr_v, cb_v) = chroma(fused), chroma(vi)
    expected = np.abs(cr_f - cr_v).mean() + np.abs(cb_f - cb_v).mean()
    loss = color_loss(fused, vi)
    assert float(loss.detach()) == pytest.approx(expected, rel=2e-3)
    loss.backward()
    assert float(fused.grad.abs().sum()) > 0
    assert not color_loss(fused, vi, differentiable=False).requires_grad  # as coded


def test_colour_loss_gradient_reaches_the_fusion_network():
    torch.manual_seed(0)
    fusion = FusionNet(TINY).train()
    features = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16)
    vi = torch.rand(2, 3, 16, 16)
    color_loss(fusion(*features), vi).backward()
    grads = [p.grad for p in fusion.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert float(fusion.cdaf.embed_a.pointwise.weight.grad.abs().sum()) > 0


def test_fusion_loss_terms_and_targets():
    vi = torch.rand(1, 3, 12, 12)
    ir = torch.rand(1, 1, 12, 12)
    target = torch.maximum(vi, ir.expand(-1, 3, -1, -1))
    terms = FusionLoss(dataclasses.replace(TINY_TRAIN, perceptual="none"))(target, vi, ir)
    assert float(terms["intensity"]) == 0.0
    assert float(terms["grad"]) > 0  # the max of gradients is not the gradient of the max
    assert float(gradient_loss(vi, vi, torch.zeros_like(ir))) == 0.0
    expected = 20 * terms["grad"] + 0.5 * terms["color"]
    torch.testing.assert_close(terms["total"], expected)
    with pytest.raises(InputError, match="vgg_weights"):
        FusionLoss(dataclasses.replace(TINY_TRAIN, perceptual="vgg16", vgg_weights=""))
    with pytest.raises(InputError, match="not found"):
        FusionLoss(dataclasses.replace(TINY_TRAIN, perceptual="vgg16", vgg_weights="/no/vgg"))
    with pytest.raises(ValueError, match="matching RGB"):
        FusionLoss(TINY_TRAIN)(target[:, :1], vi[:, :1], ir)


def test_bad_inputs_and_configs():
    extractor = DiffusionExtractor(TINY)
    with pytest.raises(ValueError, match="multiples of 2"):
        extractor(torch.rand(1, 1, 15, 16), torch.rand(1, 3, 15, 16))
    with pytest.raises(ValueError, match="differ"):
        extractor(torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 18))
    with pytest.raises(ValueError, match="t must lie"):
        extractor(torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16), t=0)
    with pytest.raises(ValueError, match="fusion_channels"):
        dataclasses.replace(TINY, fusion_channels=6)
    with pytest.raises(ValueError, match="query_modality"):
        dataclasses.replace(TINY, query_modality="both")
    with pytest.raises(ValueError, match="even"):
        FusionNet(TINY)(torch.rand(1, 8, 5, 6), torch.rand(1, 8, 5, 6))
    with pytest.raises(InputError, match="neither"):
        configs_from("no-such-config")
    with pytest.raises(InputError, match="stage"):
        run_stage("ddpm-xx", "cpu", "a", "b")
    with pytest.raises(InputError, match="t_feat"):
        create_method("difcdfusion", t_feat=-1)
    with pytest.raises(InputError, match="weights not found"):
        create_method("difcdfusion", weights="/no/such/prefix").fuse(
            torch.rand(1, 1, 8, 8), torch.rand(1, 3, 8, 8)
        )


def test_tiling_covers_and_blends():
    assert tile_starts(100, 40, 8) == [0, 32, 60]
    assert tile_starts(30, 40, 8) == [0]
    x = torch.rand(1, 2, 70, 90)
    torch.testing.assert_close(tiled_apply(lambda a: a * 2, (x,), 32, 8), x * 2)


@pytest.mark.parametrize("skip", [False, True])
def test_method_pads_tiles_and_handles_gray(skip, tiny_weights, tiny_skip_weights):
    tiny_weights = tiny_skip_weights if skip else tiny_weights
    method = create_method("difcdfusion", weights=tiny_weights)
    ir, vi = torch.rand(1, 1, 37, 51), torch.rand(1, 3, 37, 51)
    fused = method.fuse(ir, vi, torch.Generator().manual_seed(3))
    assert fused.shape == (1, 3, 37, 51)
    again = method.fuse(ir, vi, torch.Generator().manual_seed(3))
    assert torch.equal(fused, again)
    assert torch.equal(method.fuse(ir, vi), method.fuse(ir, vi))  # seeded without a generator
    # Gray visible input: replicated to RGB, result returned as BT.601 luma (gray out).
    gray = vi.mean(dim=1, keepdim=True)
    fused_gray = method.fuse(ir, gray, torch.Generator().manual_seed(3))
    replicated = method.fuse(ir, gray.expand(-1, 3, -1, -1), torch.Generator().manual_seed(3))
    assert fused_gray.shape == (1, 1, 37, 51)
    torch.testing.assert_close(fused_gray, replicated)  # collapsed to gray by the base class
    rgb = method.fuse_planes(ir, gray.expand(-1, 3, -1, -1), torch.Generator().manual_seed(3))
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    expected = (rgb.clamp(0, 1) * weights).sum(dim=1, keepdim=True)
    torch.testing.assert_close(fused_gray, expected, atol=1e-5, rtol=0)
    tiled = create_method("difcdfusion", weights=tiny_weights, tile=128)
    big_ir, big_vi = torch.rand(1, 1, 150, 200), torch.rand(1, 3, 150, 200)
    out = tiled.fuse(big_ir, big_vi, torch.Generator().manual_seed(0))
    assert out.shape == (1, 3, 150, 200) and bool(torch.isfinite(out).all())


def _weights_equal(a, b) -> bool:
    from safetensors.torch import load_file

    sa, sb = load_file(str(a)), load_file(str(b))
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("stage", ["ddpm-ir", "ddpm-vi", "fusion"])
def test_training_stage_lowers_loss_and_resumes_bit_identically(
    stage, tiny_data, tiny_weights, tmp_path
):
    def task():
        if stage == "fusion":
            return FusionTask(
                TINY_SKIP,
                TINY_TRAIN,
                tiny_data,
                tiny_data,
                f"{tiny_weights}-ddpm-ir.safetensors",
                f"{tiny_weights}-ddpm-vi.safetensors",
                progress=False,
            )
        return DenoiserTask(stage, TINY, TINY_TRAIN, tiny_data, tiny_data, progress=False)

    config = loop_config(TINY_TRAIN, stage)
    first = task()
    first.model.eval()
    with torch.no_grad():
        before = first.validate(first.model)["score"]
    result = train(first, config, tmp_path / "straight", progress=False)
    assert result.step == TINY_TRAIN.ddpm_steps
    assert result.best_score < before
    train(task(), config, tmp_path / "resumed", progress=False, stop_at=12)
    train(task(), config, tmp_path / "resumed", resume=True, progress=False)
    assert _weights_equal(
        tmp_path / "straight" / "last.safetensors", tmp_path / "resumed" / "last.safetensors"
    )
    straight, resumed = (
        _losses(tmp_path / run / "train_log.csv") for run in ("straight", "resumed")
    )
    assert resumed == straight and len(resumed) == TINY_TRAIN.ddpm_steps // TINY_TRAIN.log_every
    if stage == "fusion":  # the fusion stage also logs colour error and image-quality metrics
        with open(tmp_path / "straight" / "val_log.csv", newline="") as handle:
            header = next(csv.reader(handle))
        assert {"score", "chroma_levels", "SF", "AG", "VIF", "Qabf"} <= set(header)


def _losses(path) -> list[tuple[str, str]]:
    """(step, total loss) rows of a training log (the wall-clock column differs between runs)."""
    with open(path, newline="") as handle:
        return [(row["step"], row["total"]) for row in csv.DictReader(handle)]


def test_cli_train_needs_a_stage_and_weights(tmp_path, capsys):
    from ivif.cli import main

    common = ["train", "difcdfusion", "--data", str(tmp_path), "--val", str(tmp_path)]
    assert main(common) == 2
    assert "--stage" in capsys.readouterr().err
    run_dir = tmp_path / "runs" / "fusion"
    assert main([*common, "--stage", "fusion", "--run-dir", str(run_dir)]) == 2
    assert "denoiser weights not found" in capsys.readouterr().err


def test_unet_attention_matches_float64_softmax_attention():
    """The shared UNet's single-head attention (4-D, blockwise kernel) vs the textbook formula."""
    from ivif.nn.unet import AttnBlock

    torch.manual_seed(0)
    block = AttnBlock(16, 4, bias=False)
    x = torch.randn(2, 16, 12, 10)
    ref = block.double()
    x64 = x.double()
    y = ref.norm(x64)
    q, k, v = (m(y).flatten(2).transpose(1, 2) for m in (ref.q, ref.k, ref.v))
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(16), dim=-1)
    expected = x64 + ref.proj_out((weights @ v).transpose(1, 2).reshape(2, 16, 12, 10))
    torch.testing.assert_close(block.float()(x).double(), expected, atol=1e-5, rtol=1e-5)


def _sobel_magnitude_f64(x: np.ndarray) -> np.ndarray:
    """``|x ⋆ k_x| + |x ⋆ k_y|`` with zero padding, by explicit shifts (float64)."""
    p = np.pad(x, 1)
    h, w = x.shape

    def at(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    gy = (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1)) - (at(1, -1) + 2 * at(1, 0) + at(1, 1))
    return np.abs(gx) + np.abs(gy)


def test_luma_loss_space_matches_float64_rederivation():
    gen = torch.Generator().manual_seed(3)
    fused, vi = (torch.rand(1, 3, 12, 12, generator=gen, dtype=torch.float64) for _ in "fv")
    ir = torch.rand(1, 1, 12, 12, generator=gen, dtype=torch.float64)
    config = dataclasses.replace(TINY_TRAIN, perceptual="none", loss_space="luma", color_weight=7)
    terms = FusionLoss(config)(fused, vi, ir)

    def luma(x: torch.Tensor) -> np.ndarray:
        r, g, b = x[0].numpy()
        return 0.299 * r + 0.587 * g + 0.114 * b

    yf, yv, i = luma(fused), luma(vi), ir[0, 0].numpy()
    intensity = np.abs(yf - np.maximum(yv, i)).mean()
    target = np.maximum(_sobel_magnitude_f64(yv), _sobel_magnitude_f64(i))
    grad = np.abs(_sobel_magnitude_f64(yf) - target).mean()
    assert float(terms["intensity"]) == pytest.approx(intensity, rel=1e-9)
    assert float(terms["grad"]) == pytest.approx(grad, rel=1e-9)
    total = 20 * grad + 20 * intensity + 7 * float(color_loss(fused, vi))
    assert float(terms["total"]) == pytest.approx(total, rel=1e-9)
    with pytest.raises(ValueError, match="loss_space"):
        dataclasses.replace(TINY_TRAIN, loss_space="lab")


def test_difference_term_is_added_in_the_loss_space_when_weighted():
    gen = torch.Generator().manual_seed(4)
    fused, vi = (torch.rand(1, 3, 10, 11, generator=gen, dtype=torch.float64) for _ in "fv")
    ir = torch.rand(1, 1, 10, 11, generator=gen, dtype=torch.float64)
    base = dataclasses.replace(TINY_TRAIN, perceptual="none", loss_space="luma")
    without = FusionLoss(base)(fused, vi, ir)
    assert "difference" not in without
    terms = FusionLoss(dataclasses.replace(base, difference_weight=5.0))(fused, vi, ir)
    luma = np.array([0.299, 0.587, 0.114])
    yf, yv = (np.tensordot(luma, x[0].numpy(), axes=1) for x in (fused, vi))
    i = ir[0, 0].numpy()
    expected = np.mean(
        [
            np.abs(
                np.abs(np.diff(yf, axis=a))
                - np.maximum(*(np.abs(np.diff(x, axis=a)) for x in (yv, i)))
            ).mean()
            for a in (1, 0)
        ]
    )
    assert float(terms["difference"]) == pytest.approx(expected, rel=1e-9)
    assert float(terms["total"] - without["total"]) == pytest.approx(5 * expected, rel=1e-9)


def test_fusion_init_schemes():
    torch.manual_seed(0)
    fusion = FusionNet(TINY)
    conv = fusion.upscale.expand.weight.detach()  # 8 → 16 channels, 3×3: fan-in 72
    assert float(conv.std()) == pytest.approx(0.02, rel=0.15)  # spec §4
    fusion.reset_parameters("pytorch")
    conv = fusion.upscale.expand.weight.detach()
    bound = 1 / math.sqrt(72)  # kaiming_uniform(a=√5): U(±1/√fan_in)
    assert float(conv.abs().max()) <= bound
    assert float(conv.std()) == pytest.approx(bound / math.sqrt(3), rel=0.15)
    with pytest.raises(ValueError, match="init"):
        fusion.reset_parameters("xavier")
    with pytest.raises(ValueError, match="fusion_init"):
        dataclasses.replace(TINY_TRAIN, fusion_init="xavier")


@pytest.mark.parametrize("skip", ["projection", "head"])
def test_input_skip_feeds_the_images_to_the_fusion_network(skip):
    """``input_skip``: the images, as ``2x − 1``, enter the projection (``[F, image]`` per
    modality, the infrared image replicated to 3 channels) or the head's C/2→C/4 ResBlock
    (``[pooled map, ir, vi]``); they change the output and the gradient reaches their weights;
    without them the network refuses to run."""
    torch.manual_seed(0)
    fusion = FusionNet(dataclasses.replace(TINY, input_skip=skip)).train()
    layer = fusion.project if skip == "projection" else fusion.head.reduce.conv1
    extra = TINY.fusion_channels // 2 if skip == "head" else TINY.feature_channels
    assert layer.in_channels == extra + (3 if skip == "projection" else 4)
    features = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16)
    ir, vi = torch.rand(2, 1, 16, 16), torch.rand(2, 3, 16, 16)
    seen = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    fused = fusion(*features, ir, vi)
    handle.remove()
    assert fused.shape == (2, 3, 16, 16)
    ir64, vi64 = 2 * ir.double() - 1, 2 * vi.double() - 1
    if skip == "projection":  # query_modality "ir": the infrared side is projected first
        torch.testing.assert_close(seen[0][:, 8:], ir64.expand(-1, 3, -1, -1).float())
        torch.testing.assert_close(seen[1][:, 8:], vi64.float())
        torch.testing.assert_close(seen[0][:, :8], features[0])
    else:
        torch.testing.assert_close(seen[0][:, -4:], torch.cat([ir64, vi64], 1).float())
    color_loss(fused, vi).backward()
    assert float(layer.weight.grad[:, extra:].abs().sum()) > 0
    fusion.eval()
    with torch.no_grad():
        assert not torch.equal(fusion(*features, ir, vi), fusion(*features, ir, vi.flip(1)))
    with pytest.raises(ValueError, match="source images"):
        fusion(*features)
    with pytest.raises(ValueError, match="does not match"):
        fusion(*features, ir, vi[..., :8])


def test_detail_blocks_start_as_the_network_without_them(tmp_path):
    """``detail_blocks``: zero-initialised residuals on the RGB output, guided by the source
    images; weights saved without them load and give the same output, whatever the init
    scheme; they need the images."""
    torch.manual_seed(0)
    base = FusionNet(TINY_SKIP).eval()
    save_weights(base, tmp_path / "base.safetensors", {"model": TINY_SKIP.to_dict()})
    detailed = FusionNet(dataclasses.replace(TINY_SKIP, detail_blocks=1))
    detailed.reset_parameters("pytorch")
    fresh = load_matching_weights(detailed, tmp_path / "base.safetensors")
    assert fresh and all(name.startswith("details.") for name in fresh)
    features = torch.randn(1, 8, 16, 16), torch.randn(1, 8, 16, 16)
    ir, vi = torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(detailed.eval()(*features, ir, vi), base(*features, ir, vi))
    detailed.train()
    color_loss(detailed(*features, ir, vi), vi).backward()
    assert float(detailed.details[0].body[-1].weight.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="detail_blocks"):
        dataclasses.replace(TINY, detail_blocks=1)


def test_input_skip_configs():
    """The ``cpu`` config feeds the images to the head at C = 24 and has two detail blocks;
    ``official`` keeps the features-only network of the spec."""
    cpu, official = CONFIGS["cpu"][0], CONFIGS["official"][0]
    assert cpu.input_skip == "head" and cpu.fusion_channels == 24 and cpu.detail_blocks == 2
    assert official.input_skip == "none" and official.detail_blocks == 0
    assert official.projection_inputs == official.feature_channels == 128
    with pytest.raises(ValueError, match="input_skip"):
        dataclasses.replace(TINY, input_skip="both")


def test_shipped_weights_fuse_a_real_pair_in_colour(shared_dir):
    """The packaged ``cpu`` weights load (``input_skip="head"``) and keep the visible colour on a
    real MSRS crop: mean |ΔCb| + |ΔCr| well below that of a gray output (BT.601, float64)."""
    from ivif.api import load_pair
    from ivif.color import rgb_to_ycbcr
    from ivif.io import to_tensor

    fusion = load_model(shipped_prefix("cpu"))[1]
    assert fusion.config.input_skip == "head"
    folder = shared_dir / "data" / "msrs" / "test"
    ir, vi = load_pair(folder / "ir" / "00004N.png", folder / "vi" / "00004N.png")
    ir, vi = to_tensor(ir)[..., 200:328, 300:428], to_tensor(vi)[..., 200:328, 300:428]
    fused = create_method("difcdfusion").fuse(ir, vi, torch.Generator().manual_seed(0))
    assert fused.shape == vi.shape and bool(torch.isfinite(fused).all())

    def chroma_error(image: torch.Tensor) -> float:
        diff = rgb_to_ycbcr(image.double())[:, 1:] - rgb_to_ycbcr(vi.double())[:, 1:]
        return float(diff.abs().mean(dim=(0, 2, 3)).sum()) * 255

    gray = rgb_to_ycbcr(vi)[:, :1].expand(-1, 3, -1, -1)
    assert chroma_error(fused) < 0.75 * chroma_error(gray)


def test_margin_keeps_the_network_borders_outside_the_image(shared_dir):
    """With the default ``margin`` the outermost rows and columns of a real MSRS crop follow
    their neighbours; with ``margin=0`` the networks' zero-padded borders show as edge lines."""
    from ivif.api import load_pair
    from ivif.io import to_tensor

    folder = shared_dir / "data" / "msrs" / "test"
    ir, vi = load_pair(folder / "ir" / "00004N.png", folder / "vi" / "00004N.png")
    ir, vi = to_tensor(ir)[..., 200:296, 300:412], to_tensor(vi)[..., 200:296, 300:412]

    def edge_excess(margin: int) -> float:
        """Summed positive excess, over the four sides, of the mean jump between the outermost
        and the next row (column) over the jump one row (column) further in, in grey levels."""
        method = create_method("difcdfusion", margin=margin)
        y = method.fuse(ir, vi, torch.Generator().manual_seed(0)).mean(dim=1)[0] * 255
        excess = []
        for side in (y, y.flip(0), y.T, y.T.flip(0)):
            edge, inner = (side[0] - side[1]).abs().mean(), (side[1] - side[2]).abs().mean()
            excess.append(max(0.0, float(edge - inner)))
        return sum(excess)

    # The shipped weights' detail blocks already soften the bare border (1.6 levels in all with
    # the 2026-12-07 weights); the margin removes most of what is left.
    with_margin, without = edge_excess(8), edge_excess(0)
    assert with_margin < 0.5 and with_margin < without / 3
    with pytest.raises(InputError):
        create_method("difcdfusion", margin=-1)
