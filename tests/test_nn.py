"""Shared diffusion pieces: schedule, DDIM, timestep UNet, EMA, safetensors checkpoints."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from ivif.nn import (
    EMA,
    GuidedResidual,
    NoiseSchedule,
    TimestepUNet,
    UNetConfig,
    ddim_sample,
    ddim_timesteps,
    difference_loss,
    export_ema,
    load_training_state,
    load_weights,
    read_config,
    save_training_state,
    save_weights,
    timestep_embedding,
)


def test_linear_schedule_matches_float64_product():
    schedule = NoiseSchedule.linear(1000, 1e-4, 0.02)
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    for t in (0, 1, 499, 999):
        expected = math.prod(1.0 - b for b in betas[: t + 1])
        assert schedule.alpha_bar(t).item() == pytest.approx(expected, rel=1e-5)
    assert schedule.alpha_bar(-1).item() == 1.0


def test_schedule_rejects_bad_input():
    with pytest.raises(ValueError):
        NoiseSchedule(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError):
        NoiseSchedule.linear(1000).alpha_bar(1000)
    with pytest.raises(ValueError):
        ddim_timesteps(1000, 0)


def test_ddim_timesteps_official_grid():
    pairs = ddim_timesteps(1000, 20)
    assert pairs[0] == (950, 900) and pairs[-1] == (0, -1) and len(pairs) == 20


def test_ddim_with_perfect_predictor_recovers_x0():
    """With ε̂ = (x_t − √ᾱ_t·x₀)/√(1−ᾱ_t) every step's x̂₀ is x₀; the output is x₀."""
    schedule = NoiseSchedule.linear()
    x0 = torch.randn(1, 2, 5, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def oracle(x_t, t):
        a = schedule.alpha_bar(t).item()
        return (x_t - a**0.5 * x0) / (1 - a) ** 0.5

    x_T = torch.randn_like(x0)
    assert torch.allclose(ddim_sample(oracle, schedule, x_T, 20), x0, atol=1e-9)


def test_timestep_embedding_is_sin_then_cos():
    emb = timestep_embedding(torch.tensor([3.0]), 8)
    freqs = [math.exp(-math.log(1e4) * k / 3) for k in range(4)]
    expected = [math.sin(3 * f) for f in freqs] + [math.cos(3 * f) for f in freqs]
    assert torch.allclose(emb[0], torch.tensor(expected), atol=1e-6)


def test_unet_official_parameter_count_and_odd_sizes():
    """DDPM UNet at ch 64, mult (1,2,3,4): 20,761,922 parameters (spec §2.8)."""
    assert sum(p.numel() for p in TimestepUNet().parameters()) == 20_761_922
    small = TimestepUNet(
        UNetConfig(channels=8, channel_mult=(1, 2), norm_groups=4, attention_levels=(1,))
    )
    out = small(torch.randn(2, 4, 9, 13), torch.tensor([3.0, 800.0]))
    assert out.shape == (2, 2, 9, 13)


def test_unet_rejects_bad_config_and_input():
    with pytest.raises(ValueError):
        UNetConfig(channels=12, norm_groups=8)
    with pytest.raises(ValueError):
        UNetConfig(attention_levels=(7,))
    with pytest.raises(ValueError, match="expected"):
        TimestepUNet(UNetConfig(channels=8, channel_mult=(1,), norm_groups=4, attention_levels=()))(
            torch.randn(1, 3, 8, 8), torch.tensor([1.0])
        )


def test_ema_update_formula_and_apply():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9, warmup=False)
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    assert torch.allclose(ema.shadow["weight"], 0.9 * before + 0.1 * (before + 1.0))
    with ema.applied(model):
        assert torch.allclose(model.weight, ema.shadow["weight"])
    assert torch.allclose(model.weight, before + 1.0)
    with pytest.raises(ValueError):
        EMA(model, decay=1.0)


def test_weights_and_training_state_round_trip(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    save_weights(model, tmp_path / "w.safetensors", {"width": 4})
    assert read_config(tmp_path / "w.safetensors") == {"width": 4}
    clone = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    load_weights(clone, tmp_path / "w.safetensors")
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), clone.parameters(), strict=True)
    )

    save_training_state(
        tmp_path / "s.safetensors", model, optimizer, {"0.weight": torch.ones(4, 3)}, {"step": 7}
    )
    fresh_opt = torch.optim.Adam(clone.parameters(), lr=1e-2)
    ema, info = load_training_state(tmp_path / "s.safetensors", clone, fresh_opt)
    assert info == {"step": 7} and torch.equal(ema["0.weight"], torch.ones(4, 3))
    for key, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(torch.as_tensor(value), fresh_opt.state_dict()["state"][0][key])
    with pytest.raises(ValueError, match="training-state"):
        load_training_state(tmp_path / "w.safetensors", clone)
    with pytest.raises(FileNotFoundError):
        read_config(tmp_path / "missing.safetensors")


def test_export_ema_writes_the_ema_weights_with_their_config(tmp_path):
    """The EMA replaces the parameters; buffers (BatchNorm statistics) keep the model's."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    model(torch.randn(5, 3))  # non-trivial running statistics
    optimizer = torch.optim.Adam(model.parameters())
    ema = {name: value + 1.0 for name, value in model.named_parameters()}
    save_training_state(tmp_path / "last.safetensors", model, optimizer, ema, {"step": 3})
    out = export_ema(tmp_path / "last.safetensors", tmp_path / "w.safetensors", {"step": 3})
    clone = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    load_weights(clone, out)
    expected = {**model.state_dict(), **ema}
    assert clone.state_dict().keys() == expected.keys()
    assert all(torch.equal(clone.state_dict()[k], v) for k, v in expected.items())
    assert read_config(out) == {"step": 3}
    save_training_state(tmp_path / "no_ema.safetensors", model, optimizer, None, {"step": 3})
    with pytest.raises(ValueError, match="no EMA"):
        export_ema(tmp_path / "no_ema.safetensors", tmp_path / "x.safetensors")


def test_guided_residual_starts_as_identity_and_learns():
    """``h + body([h, guide])``: the zero last conv makes it the identity, gradients still reach
    that conv, and once it is non-zero the block equals a float64 re-derivation."""
    torch.manual_seed(0)
    block = GuidedResidual(3, 4, hidden=5, depth=2)
    assert [m.out_channels for m in block.body if isinstance(m, torch.nn.Conv2d)] == [5, 5, 3]
    h, guide = torch.rand(2, 3, 9, 11), torch.rand(2, 4, 9, 11)
    assert torch.equal(block(h, guide), h)
    block(h, guide).square().sum().backward()
    assert float(block.body[-1].weight.grad.abs().sum()) > 0
    torch.nn.init.normal_(block.body[-1].weight)
    x = torch.cat([h, guide], 1).double()
    convs = [m for m in block.body if isinstance(m, torch.nn.Conv2d)]
    for index, conv in enumerate(convs):
        x = torch.nn.functional.conv2d(x, conv.weight.double(), conv.bias.double(), padding=1)
        if index < len(convs) - 1:
            x = torch.nn.functional.leaky_relu(x)
    with torch.no_grad():
        torch.testing.assert_close(block(h, guide).double(), h.double() + x, rtol=0, atol=1e-5)
    block.zero_output()
    assert torch.equal(block(h, guide), h)


def test_difference_loss_equals_a_float64_loop_rederivation():
    generator = torch.Generator().manual_seed(3)
    fused, vi = (torch.rand(2, 3, 5, 6, generator=generator, dtype=torch.float64) for _ in range(2))
    ir = torch.rand(2, 1, 5, 6, generator=generator, dtype=torch.float64)  # broadcast over RGB
    f, v, r = fused.tolist(), vi.tolist(), ir.tolist()
    means = []
    for dy, dx in ((0, 1), (1, 0)):
        errors = []
        for b, c in itertools.product(range(2), range(3)):
            for i, j in itertools.product(range(5 - dy), range(6 - dx)):
                steps = [
                    abs(x[b][ch][i + dy][j + dx] - x[b][ch][i][j])
                    for x, ch in ((f, c), (v, c), (r, 0))
                ]
                errors.append(abs(steps[0] - max(steps[1], steps[2])))
        means.append(math.fsum(errors) / len(errors))
    assert float(difference_loss(fused, vi, ir)) == pytest.approx(sum(means) / 2, rel=1e-12)


def test_difference_loss_analytic_cases_and_gradient():
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert float(difference_loss(x, x, 0.5 * x)) == 0.0  # F is the source with the larger steps
    checkerboard = torch.from_numpy(np.indices((16, 16)).sum(0) % 2.0).float()[None, None]
    flat = torch.full_like(checkerboard, 0.5)
    assert float(difference_loss(flat, checkerboard)) == 1.0  # target steps 1, F's steps 0
    weak = (0.45 + 0.1 * checkerboard).requires_grad_()  # steps of 0.1
    loss = difference_loss(weak, checkerboard)
    assert float(loss.detach()) == pytest.approx(0.9)
    loss.backward()
    with torch.no_grad():  # descending raises the contrast towards the target's
        assert (
            float(difference_loss(weak - 0.05 * weak.grad / weak.grad.abs().max(), checkerboard))
            < 0.9 - 0.09
        )
    with pytest.raises(ValueError, match="at least one source"):
        difference_loss(flat)
