"""Training patches: the exposure and noise augmentations of ``ivif.data.PatchSampler``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ivif.data import PatchSampler
from ivif.io import write_image


@pytest.fixture
def pair_folder(tmp_path):
    """Two 40×48 pairs: a gray infrared and a colour visible image, no pixel dark."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_image(tmp_path / "ir" / f"{name}.png", rng.integers(100, 256, (40, 48), np.uint8))
        write_image(tmp_path / "vi" / f"{name}.png", rng.integers(100, 256, (40, 48, 3), np.uint8))
    return tmp_path


def _samplers(folder, **options):
    common = dict(patch_size=16, batch_size=32, hflip=False, progress=False, visible="rgb")
    return PatchSampler(folder, **common), PatchSampler(folder, **common, **options)


def test_exposure_scales_each_source_by_its_own_gain_in_range(pair_folder):
    plain, exposed = _samplers(pair_folder, exposure=(0.1, 1.0))
    generator = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    crops, darkened = plain.sample(generator()), exposed.sample(generator())
    gains = darkened / crops  # the crops themselves are drawn before the gains
    ir_gain, vi_gain = gains[:, 0], gains[:, 1:4]
    # One gain per crop and source: constant over the crop and over the visible planes.
    assert torch.allclose(ir_gain, ir_gain[:, :1, :1].expand_as(ir_gain), rtol=1e-5)
    assert torch.allclose(vi_gain, vi_gain[:, :1, :1, :1].expand_as(vi_gain), rtol=1e-5)
    ir_gain, vi_gain = ir_gain[:, 0, 0], vi_gain[:, 0, 0, 0]
    for gain in (ir_gain, vi_gain):
        assert float(gain.min()) >= 0.1 - 1e-6 and float(gain.max()) <= 1.0 + 1e-6
    # Log-uniform: about half the gains are below the geometric mean √0.1 ≈ 0.316.
    assert 0.2 < float((torch.cat([ir_gain, vi_gain]) < 0.1**0.5).float().mean()) < 0.8
    assert not torch.allclose(ir_gain, vi_gain)  # independent sources


def test_exposure_is_reproducible_from_the_generator(pair_folder):
    _, exposed = _samplers(pair_folder, exposure=(0.2, 0.9))
    first = exposed.sample(torch.Generator().manual_seed(7))
    second = exposed.sample(torch.Generator().manual_seed(7))
    assert torch.equal(first, second)


def test_source_groups_share_a_gain_with_prepared_planes(pair_folder):
    def copy_ir(planes):
        return planes[:, :1].clone()

    sampler = PatchSampler(
        pair_folder,
        16,
        8,
        hflip=False,
        prepare=copy_ir,
        progress=False,
        exposure=(0.1, 0.5),
        source_groups=((0, 2), (1,)),
    )
    batch = sampler.sample(torch.Generator().manual_seed(0))
    assert torch.equal(batch[:, 0], batch[:, 2])
    assert float(batch[:, 1].max()) <= 0.5


def test_exposure_rejects_bad_settings(pair_folder):
    with pytest.raises(ValueError, match="0 < low <= high"):
        PatchSampler(pair_folder, 16, 2, progress=False, exposure=(0.5, 0.2))
    with pytest.raises(ValueError, match="0 < low <= high"):
        PatchSampler(pair_folder, 16, 2, progress=False, exposure=(0.0, 1.0))
    with pytest.raises(ValueError, match="source_groups"):
        PatchSampler(
            pair_folder, 16, 2, progress=False, prepare=lambda p: p[:, :1], exposure=(0.1, 1.0)
        )


def test_noise_adds_one_field_per_source_with_a_bounded_deviation(pair_folder):
    plain, noisy = _samplers(pair_folder, sensor_noise=0.05)
    generator = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    crops, noised = plain.sample(generator()), noisy.sample(generator())
    added = noised - crops  # the crops (levels 100-255) are drawn before the noise
    inside = (crops > 0.3) & (crops < 0.7)  # no clipping possible there (|noise| < 6·0.05)
    # One field per source: the three visible planes receive the same values (up to float32
    # rounding of x + n − x where none of them is clipped).
    unclipped = inside[:, 1] & inside[:, 2] & inside[:, 3]
    for channel in (2, 3):
        assert torch.allclose(added[:, 1][unclipped], added[:, channel][unclipped], atol=1e-6)
    assert not torch.allclose(added[:, 0], added[:, 1], atol=1e-3)  # independent sources
    # Each crop's deviation lies in [0, 0.05] and they spread over that range.
    sigmas = torch.stack([added[i][inside[i]].std() for i in range(len(added))])
    assert float(sigmas.max()) < 0.05 * 1.15 and float(sigmas.min()) < 0.02
    assert float(sigmas.max()) > 0.03
    assert float(noised.min()) >= 0.0 and float(noised.max()) <= 1.0  # clipped
    assert abs(float(added[inside].mean())) < 2e-3  # zero-mean


def test_noise_is_reproducible_and_off_by_default(pair_folder):
    plain, noisy = _samplers(pair_folder, sensor_noise=0.02)
    first = noisy.sample(torch.Generator().manual_seed(7))
    assert torch.equal(first, noisy.sample(torch.Generator().manual_seed(7)))
    zero = PatchSampler(
        pair_folder, 16, 32, hflip=False, progress=False, visible="rgb", sensor_noise=0.0
    )
    generator = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    assert torch.equal(zero.sample(generator()), plain.sample(generator()))


def test_noise_follows_prepared_planes_of_its_source(pair_folder):
    sampler = PatchSampler(
        pair_folder,
        16,
        8,
        hflip=False,
        prepare=lambda planes: planes[:, :1].clone(),
        progress=False,
        sensor_noise=0.05,
        source_groups=((0, 2), (1,)),
    )
    batch = sampler.sample(torch.Generator().manual_seed(1))
    assert torch.equal(batch[:, 0], batch[:, 2])


def test_noise_rejects_bad_settings(pair_folder):
    for noise in (-0.01, 0.6):
        with pytest.raises(ValueError, match="sensor_noise must be"):
            PatchSampler(pair_folder, 16, 2, progress=False, sensor_noise=noise)
    with pytest.raises(ValueError, match="source_groups"):
        PatchSampler(
            pair_folder, 16, 2, progress=False, prepare=lambda p: p[:, :1], sensor_noise=0.01
        )


def test_hclfuse_exposure_needs_unaligned_infrared():
    from ivif.methods.hclfuse.config import TrainConfig

    assert TrainConfig(exposure=[0.1, 1.0]).exposure == (0.1, 1.0)
    with pytest.raises(ValueError, match="ot_blend"):
        TrainConfig(exposure=(0.1, 1.0), ot_blend=0.8)
    with pytest.raises(ValueError, match="ot_blend"):
        TrainConfig(sensor_noise=0.01, ot_blend=0.8)
