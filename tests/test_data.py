"""Training patches: the exposure augmentation of ``ivif.data.PatchSampler``."""

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


def test_exposure_groups_share_a_gain_with_prepared_planes(pair_folder):
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
        exposure_groups=((0, 2), (1,)),
    )
    batch = sampler.sample(torch.Generator().manual_seed(0))
    assert torch.equal(batch[:, 0], batch[:, 2])
    assert float(batch[:, 1].max()) <= 0.5


def test_exposure_rejects_bad_settings(pair_folder):
    with pytest.raises(ValueError, match="0 < low <= high"):
        PatchSampler(pair_folder, 16, 2, progress=False, exposure=(0.5, 0.2))
    with pytest.raises(ValueError, match="0 < low <= high"):
        PatchSampler(pair_folder, 16, 2, progress=False, exposure=(0.0, 1.0))
    with pytest.raises(ValueError, match="exposure_groups"):
        PatchSampler(
            pair_folder, 16, 2, progress=False, prepare=lambda p: p[:, :1], exposure=(0.1, 1.0)
        )


def test_hclfuse_exposure_needs_unaligned_infrared():
    from ivif.methods.hclfuse.config import TrainConfig

    assert TrainConfig(exposure=[0.1, 1.0]).exposure == (0.1, 1.0)
    with pytest.raises(ValueError, match="ot_blend"):
        TrainConfig(exposure=(0.1, 1.0), ot_blend=0.8)
