"""HCLFuse: shapes, OT, physics guidance, sampler algebra, training/resume, the method."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import ivif
from ivif.errors import InputError
from ivif.methods import create_method
from ivif.methods.hclfuse import CONFIGS, HCLFuseNet, ModelConfig, load_model
from ivif.methods.hclfuse.config import TrainConfig
from ivif.methods.hclfuse.physics import PhysicsGuidance, guidance_weights
from ivif.methods.hclfuse.training import HCLFuseTask, loop_config
from ivif.nn import UNetConfig, difference_loss, save_weights
from ivif.ops import histogram_sinkhorn, ot_align
from ivif.ops.tiling import pad_border, pad_to_multiple
from ivif.train import train

TINY = ModelConfig(
    width=4,
    unet=UNetConfig(
        channels=8,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_levels=(),
        mid_attention=False,
        norm_groups=4,
    ),
    pad_multiple=16,
)


def _real_pair(shared_dir, size=None):
    from ivif.data import load_gray_pair, load_pairs

    planes = load_gray_pair(load_pairs(shared_dir / "data" / "roadscene" / "all")[0])
    return planes if size is None else planes[..., 40 : 40 + size[0], 60 : 60 + size[1]]


# --- model -----------------------------------------------------------------------------------


def test_official_parameter_count():
    """Spec §2.8: 27,323,013 parameters without the unused info_gradient_estimator."""
    assert sum(p.numel() for p in HCLFuseNet(CONFIGS["official"]).parameters()) == 27_323_013


@pytest.mark.parametrize(("config", "size"), [("official", (144, 192)), ("cpu", (480, 640))])
def test_shapes(config, size):
    """Spec §2.1 shape trace at the official training size and at MSRS size (cpu config)."""
    net = HCLFuseNet(CONFIGS[config]).eval()
    c = CONFIGS[config].width
    h, w = size
    with torch.inference_mode():
        posterior = net.encoder(torch.rand(1, 2, h, w))
        shapes = [tuple(f.shape) for f in posterior.features]
        assert shapes == [
            (1, c, h // 2, w // 2),
            (1, 2 * c, h // 4, w // 4),
            (1, 4 * c, h // 8, w // 8),
        ]
        stats_shape = (1, 1) if CONFIGS[config].posterior == "statistics" else (h // 8, w // 8)
        assert posterior.mu.shape == posterior.logvar.shape == (1, 2, *stats_shape)
        latent = net.sample_latent(posterior, torch.Generator().manual_seed(0))
        assert latent.shape == (1, 2, h // 8, w // 8)
        if config == "cpu":
            fused = net.fuse(torch.rand(1, 1, h, w), torch.rand(1, 1, h, w), steps=2)
            assert fused.shape == (1, 1, h, w)


def test_spatial_posterior_and_bad_input():
    net = HCLFuseNet(dataclasses.replace(TINY, posterior="spatial"))
    posterior = net.encoder(torch.rand(2, 2, 32, 48))
    assert posterior.mu.shape == posterior.logvar.shape == (2, 2, 4, 6)
    with pytest.raises(ValueError, match="multiples of 8"):
        net.encoder(torch.rand(1, 2, 30, 48))
    with pytest.raises(ValueError, match="multiples of 8"):
        net.encoder(torch.rand(1, 3, 32, 48))
    with pytest.raises(ValueError):
        ModelConfig(stem_kernel=4)


def test_statistics_kl_has_the_spec_floor():
    """Spec D5: with z in (0, 1), σ² ≤ μ(1 − μ) so the KL never drops below ≈ 0.413."""
    from ivif.methods.hclfuse.model import kl_divergence

    generator = torch.Generator().manual_seed(0)
    for p in (0.1, 0.38, 0.5, 0.9):
        z = torch.where(torch.rand(1, 2, 64, 64, generator=generator) < p, 0.999, 0.001)
        mu = z.mean(dim=(2, 3), keepdim=True)
        logvar = torch.log(z.var(dim=(2, 3), keepdim=True) + 1e-6)
        assert kl_divergence(mu, logvar).item() >= 0.4129


def _sobel_magnitude_f64(x: np.ndarray, eps: float) -> np.ndarray:
    """Zero-padded 3×3 Sobel magnitude by explicit neighbour sums, float64."""
    p = np.pad(x, 1)
    h, w = x.shape

    def at(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx = at(-1, 1) + 2 * at(0, 1) + at(1, 1) - at(-1, -1) - 2 * at(0, -1) - at(1, -1)
    gy = at(1, -1) + 2 * at(1, 0) + at(1, 1) - at(-1, -1) - 2 * at(-1, 0) - at(-1, 1)
    return np.sqrt(gx * gx + gy * gy + eps)


def test_max_fusion_loss_equals_float64_rederivation(shared_dir):
    from ivif.methods.hclfuse.model import max_fusion_loss

    planes = _real_pair(shared_dir, (48, 40)).double()
    ir, vi = planes[:, :1], planes[:, 1:2]
    fused = 0.5 * ir + 0.3 * vi + 0.1
    weight, eps = 2.5, 1e-8
    a, b, f = (t[0, 0].numpy() for t in (ir, vi, fused))
    grad_target = np.maximum(_sobel_magnitude_f64(a, eps), _sobel_magnitude_f64(b, eps))
    expected = (
        np.abs(f - np.maximum(a, b)).mean()
        + weight * np.abs(_sobel_magnitude_f64(f, eps) - grad_target).mean()
    )
    got = max_fusion_loss(fused.float(), ir.float(), vi.float(), weight, eps).item()
    assert got == pytest.approx(expected, rel=1e-5)
    # The maximum of identical sources is themselves: the loss vanishes (up to the ε floor).
    assert max_fusion_loss(vi, vi, vi, weight, eps).item() == pytest.approx(0.0, abs=1e-12)


def test_train_config_rejects_unknown_loss_options():
    with pytest.raises(ValueError, match="fusion_loss"):
        TrainConfig(fusion_loss="mean")
    with pytest.raises(ValueError, match="fusion_ir"):
        TrainConfig(fusion_ir="ot")
    with pytest.raises(ValueError, match="difference_weight applies to the 'max' fusion loss"):
        TrainConfig(fusion_loss="official", difference_weight=1.0)


def test_config_round_trips_through_json_dict():
    for config in CONFIGS.values():
        assert ModelConfig.from_dict(config.to_dict()) == config


# --- optimal transport ---------------------------------------------------------------------


def _brute_force_plan(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The reference's N×N algorithm (spec §3), in float64."""
    cost = ((x.reshape(-1, 1) - y.reshape(1, -1)) ** 2).clamp(1e-6, 1e6)
    plan = torch.exp(-cost / 0.2)
    plan = plan / plan.sum(dim=1, keepdim=True)
    for _ in range(30):
        plan = plan / plan.sum(dim=0, keepdim=True).clamp_min(1e-6)
        plan = plan / plan.sum(dim=1, keepdim=True).clamp_min(1e-6)
    return plan


def test_histogram_ot_equals_brute_force_on_real_image(shared_dir):
    planes = _real_pair(shared_dir, (18, 24)).double()
    ir, vi = planes[:, :1], planes[:, 1:2]
    plan = _brute_force_plan(ir, vi)
    x_values, x_index, x_counts = torch.unique(ir, return_inverse=True, return_counts=True)
    y_values, y_index, y_counts = torch.unique(vi, return_inverse=True, return_counts=True)
    u, kernel, v = histogram_sinkhorn(x_values, x_counts, y_values, y_counts)
    xi, yi = x_index.reshape(-1), y_index.reshape(-1)
    dense = u[xi, None] * kernel[xi][:, yi] * v[None, yi]
    assert (dense - plan).abs().max() < 1e-10
    expected = 0.8 * (plan @ vi.reshape(-1, 1)).reshape(ir.shape) + 0.2 * ir
    assert (ot_align(ir, vi) - expected).abs().max() < 1e-10


def test_ot_align_bad_input():
    with pytest.raises(ValueError):
        ot_align(torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4))
    with pytest.raises(ValueError):
        ot_align(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))
    with pytest.raises(ValueError):
        ot_align(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4), vi_levels=1)


# --- physics guidance and sampler ----------------------------------------------------------


def test_guidance_weights_table():
    """Spec §4.4 table of w(t) = exp(−5t/1000) and λ⁰ = (0.05, 0.15, 0.10)."""
    table = {
        950: 0.0087,
        700: 0.030,
        500: 0.082,
        300: 0.223,
        200: 0.368,
        100: 0.607,
        50: 0.779,
        0: 1.0,
    }
    physics = CONFIGS["official"].physics
    for t, w in table.items():
        heat, structure, consistency = guidance_weights(t, physics)
        assert heat / 0.05 == pytest.approx(w, abs=6e-4)
        assert (heat, structure, consistency) == pytest.approx(
            (0.05 * w, 0.15 * w, 0.10 * w), rel=7e-3
        )


def test_physics_operators_by_hand():
    """Heat step on a delta, the convex blend, and the additive form, in float64."""
    physics = CONFIGS["official"].physics
    ir = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    vi = torch.zeros_like(ir)
    guide = PhysicsGuidance(ir, vi, (8, 8), physics)
    x = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    x[..., 4, 4] = 1.0
    heat = guide.heat(x, 0.1)
    assert heat[0, 0, 4, 4].item() == pytest.approx(0.6)
    assert heat[0, 0, 3, 4].item() == pytest.approx(0.1)
    assert torch.equal(guide.consistency(x, 0.1), 0.9 * x)  # zero sources: only the shrink
    additive = PhysicsGuidance(ir, vi, (8, 8), dataclasses.replace(physics, consistency="additive"))
    assert torch.equal(additive.consistency(x, 0.1), x)


def test_sampler_with_perfect_predictor_returns_physics_of_condition(shared_dir):
    """Spec §7.4: ε̂ = (x_t − √ᾱ·z)/√(1−ᾱ) makes the output Φ_con∘Φ_stru∘Φ_heat(z) at t = 0."""
    net = HCLFuseNet(TINY).double()
    planes = _real_pair(shared_dir, (64, 96)).double()
    ir, vi = planes[:, :1], planes[:, 1:2]
    condition = torch.randn(
        1, 2, 8, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64
    )
    schedule = net.schedule

    def oracle(cond, x_t, t):
        a = schedule.alpha_bar(int(t)).item()
        return (x_t - a**0.5 * cond) / (1 - a) ** 0.5

    net.predict_noise = oracle
    guide = PhysicsGuidance(ir, vi, (8, 12), TINY.physics)
    latent = net.denoise(condition, guide, 20, torch.Generator().manual_seed(0))
    expected = guide.consistency(guide.structure(guide.heat(condition, 0.05), 0.15), 0.10)
    assert (latent - ((expected + 1) / 2).clamp(0, 1)).abs().max() < 1e-9
    assert guide.structure_mask.sum() > 0  # real images: the structure step is exercised


@pytest.fixture
def one_thread():
    """Small models run fastest (and reproducibly) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- training ------------------------------------------------------------------------------


def _small_dataset(shared_dir, tmp_path):
    """Four real pairs cropped to 48×64, as a paired folder."""
    from PIL import Image

    from ivif.data import load_pairs

    for sub in ("ir", "vi"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for pair in load_pairs(shared_dir / "data" / "roadscene" / "all")[:4]:
        for sub, path in (("ir", pair.ir), ("vi", pair.vi)):
            Image.open(path).crop((60, 40, 124, 88)).save(
                tmp_path / "data" / sub / f"{pair.name}.png"
            )
    return tmp_path / "data"


def test_training_lowers_loss_and_resumes_bit_identically(shared_dir, tmp_path, one_thread):
    data = _small_dataset(shared_dir, tmp_path)
    cfg = TrainConfig(
        patch_size=32,
        batch_size=2,
        max_steps=10,
        warmup_steps=2,
        learning_rate=2e-3,
        chain_steps=2,
        log_every=1,
        checkpoint_every=5,
        validate_every=10,
        val_pairs=1,
        patience=0,
    )

    def run(run_dir, stop_at=None, resume=False):
        task = HCLFuseTask(TINY, cfg, data, data, progress=False)
        train(task, loop_config(cfg), run_dir, resume=resume, progress=False, stop_at=stop_at)
        return task

    full = run(tmp_path / "full")
    log = np.genfromtxt(tmp_path / "full" / "train_log.csv", delimiter=",", names=True)
    assert log["total"][-3:].mean() < log["total"][:3].mean()
    run(tmp_path / "split", stop_at=5)
    resumed = run(tmp_path / "split", resume=True)
    for a, b in zip(
        full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    split_log = np.genfromtxt(tmp_path / "split" / "train_log.csv", delimiter=",", names=True)
    assert np.array_equal(split_log["total"], log["total"])
    with pytest.raises(FileNotFoundError):
        run(tmp_path / "nothing", resume=True)


# --- the registered method -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(HCLFuseNet(TINY), path, {"model": TINY.to_dict()})
    return str(path)


def test_init_weights_and_max_loss_task(shared_dir, tmp_path, tiny_weights):
    """``init_weights`` starts from a file; the ``max`` loss drives the task's fusion term."""
    from ivif.methods.hclfuse.model import max_fusion_loss

    data = _small_dataset(shared_dir, tmp_path)
    cfg = TrainConfig(
        patch_size=32,
        batch_size=2,
        chain_steps=2,
        val_pairs=1,
        init_weights=tiny_weights,
        fusion_loss="max",
        fusion_ir="raw",
        gradient_weight=3.0,
    )
    task = HCLFuseTask(TINY, cfg, data, data, progress=False)
    for a, b in zip(
        task.model.state_dict().values(),
        load_model(tiny_weights).state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    planes = _real_pair(shared_dir, (32, 32))
    ir, vi = planes[:, :1], planes[:, 1:2]
    fused = 0.5 * (ir + vi)
    assert task.fusion_loss(fused, ir, vi).item() == max_fusion_loss(fused, ir, vi, 3.0).item()
    assert torch.isfinite(task.losses(torch.Generator().manual_seed(0))["total"])
    task.train_config = dataclasses.replace(cfg, difference_weight=7.0)
    expected = max_fusion_loss(fused, ir, vi, 3.0) + 7.0 * difference_loss(fused, ir, vi)
    assert task.fusion_loss(fused, ir, vi).item() == pytest.approx(expected.item(), rel=1e-6)


def test_full_resolution_skip_starts_as_the_model_without_it(tiny_weights, tmp_path):
    """The added skip is a zero-initialised residual: weights saved without it load (only its
    own tensors stay fresh), the output is unchanged, and its last conv receives gradients."""
    from ivif.nn import load_matching_weights

    with_skip = HCLFuseNet(dataclasses.replace(TINY, full_resolution_skip=True))
    fresh = load_matching_weights(with_skip, tiny_weights)
    assert fresh and all(name.startswith("decoder.full_resolution.") for name in fresh)
    ir, vi = torch.rand(1, 1, 48, 64), torch.rand(1, 1, 48, 64)
    with torch.inference_mode():
        expected = load_model(tiny_weights).fuse(ir, vi, 2, torch.Generator().manual_seed(1))
        got = with_skip.fuse(ir, vi, 2, torch.Generator().manual_seed(1))
    assert got.shape == (1, 1, 48, 64) and torch.equal(got, expected)
    with_skip.fuse(ir, vi, 2, torch.Generator().manual_seed(1)).square().mean().backward()
    assert with_skip.decoder.full_resolution.body[-1].weight.grad.abs().sum() > 0
    path = tmp_path / "skip.safetensors"
    save_weights(with_skip, path, {"model": with_skip.config.to_dict()})
    with pytest.raises(ValueError, match="full_resolution"):
        load_matching_weights(HCLFuseNet(TINY), path)


def test_detail_blocks_start_as_the_model_without_them(tmp_path):
    """``detail_blocks`` add zero-initialised full-resolution residuals after the skip: weights
    saved without them load (only the blocks start fresh) and give the same output."""
    from ivif.nn import load_matching_weights

    torch.manual_seed(0)
    config = dataclasses.replace(TINY, full_resolution_skip=True)
    base = HCLFuseNet(config)
    torch.nn.init.normal_(base.decoder.full_resolution.body[-1].weight, std=0.1)
    save_weights(base, tmp_path / "base.safetensors", {"model": config.to_dict()})
    detailed = HCLFuseNet(dataclasses.replace(config, detail_blocks=2))
    fresh = load_matching_weights(detailed, tmp_path / "base.safetensors")
    assert fresh and all(name.startswith("decoder.details.") for name in fresh)
    ir, vi = torch.rand(1, 1, 32, 40), torch.rand(1, 1, 32, 40)
    with torch.inference_mode():
        expected = base.fuse(ir, vi, 2, torch.Generator().manual_seed(1))
        got = detailed.fuse(ir, vi, 2, torch.Generator().manual_seed(1))
    assert torch.equal(got, expected)
    with pytest.raises(ValueError, match="detail_blocks"):
        dataclasses.replace(TINY, detail_blocks=1)


def test_identical_seeds_give_identical_outputs(tiny_weights):
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    vi = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    a = ivif.fuse(ir, vi, "hclfuse", seed=5, weights=tiny_weights, steps=3)
    b = ivif.fuse(ir, vi, "hclfuse", seed=5, weights=tiny_weights, steps=3)
    c = ivif.fuse(ir, vi, "hclfuse", seed=6, weights=tiny_weights, steps=3)
    assert a.shape == (37, 53, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    unseeded = ivif.fuse(ir, vi, "hclfuse", weights=tiny_weights, steps=3)
    assert np.array_equal(unseeded, ivif.fuse(ir, vi, "hclfuse", weights=tiny_weights, steps=3))


def test_consistency_option_leaves_the_cached_model_alone(tiny_weights):
    ir, vi = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)

    def run(**options):
        method = create_method("hclfuse", weights=tiny_weights, steps=2, **options)
        with torch.inference_mode():
            return method.fuse_planes(ir, vi, torch.Generator().manual_seed(0))

    trained = run()
    assert not torch.equal(run(consistency="additive"), trained)
    assert torch.equal(run(consistency="convex"), trained)  # TINY was built convex
    assert torch.equal(run(), trained)
    assert load_model(tiny_weights).config.physics.consistency == "convex"


def test_tiling_covers_large_images(tiny_weights):
    method = create_method("hclfuse", weights=tiny_weights, steps=2, tile=128)
    ir, vi = torch.rand(1, 1, 150, 300), torch.rand(1, 1, 150, 300)
    with torch.inference_mode():
        tiled = method.fuse_planes(ir, vi, torch.Generator().manual_seed(0))
    assert tiled.shape == (1, 1, 150, 300) and torch.isfinite(tiled).all()
    whole = create_method("hclfuse", weights=tiny_weights, steps=2, tile=0)
    with torch.inference_mode():
        small = whole.fuse_planes(
            ir[..., :100, :100], vi[..., :100, :100], torch.Generator().manual_seed(0)
        )
        same = method.fuse_planes(
            ir[..., :100, :100], vi[..., :100, :100], torch.Generator().manual_seed(0)
        )
    assert torch.equal(small, same)  # below the tile size nothing changes


def test_shipped_weights_match_the_cpu_config_and_fuse(shared_dir):
    from ivif.methods.hclfuse import shipped_weights
    from ivif.nn import read_config

    path = shipped_weights("cpu")
    if not path.is_file():
        pytest.skip("shipped weights absent (train them: see docs/models/hclfuse-cpu.md)")
    assert ModelConfig.from_dict(read_config(path)["model"]) == CONFIGS["cpu"]
    assert path.stat().st_size <= 25 * 2**20
    msrs = shared_dir / "data" / "msrs" / "test"
    ir, vi = ivif.load_pair(msrs / "ir" / "00004N.png", msrs / "vi" / "00004N.png")
    fused = ivif.fuse(ir[:100, :140], vi[:100, :140], "hclfuse", seed=0, steps=4)
    assert fused.shape == (100, 140, 3) and 10 < fused.mean() < 245


def test_method_errors(tmp_path, tiny_weights):
    with pytest.raises(InputError, match="ivif train hclfuse"):
        load_model(str(tmp_path / "absent.safetensors"))
    with pytest.raises(InputError):
        create_method("hclfuse", steps=0)
    with pytest.raises(InputError):
        create_method("hclfuse", channel_order="rgb")
    with pytest.raises(InputError):
        create_method("hclfuse", tile=64)
    (tmp_path / "bad.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="config"):
        load_model(str(tmp_path / "bad.safetensors"))


def test_pad_border():
    x = torch.arange(20.0).reshape(1, 1, 4, 5)
    padded = pad_border(x, 2)
    assert padded.shape == (1, 1, 8, 9) and torch.equal(padded[..., 2:6, 2:7], x)
    assert padded[0, 0, 2, 0].item() == 2.0  # reflect: two columns in
    assert torch.equal(pad_border(x, 4)[0, 0, 0, :4], torch.zeros(4))  # replicate when too small
    assert pad_border(x, 0) is x


def test_pad_to_multiple():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    padded = pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 8, 8) and torch.equal(padded[..., :3, :4], x)
    reflected = pad_to_multiple(torch.arange(16.0).reshape(1, 1, 4, 4), 6)
    assert reflected[0, 0, 0, 4].item() == 2.0  # reflect: the column before the last
