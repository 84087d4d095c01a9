"""The official-checkpoint converter: names, shapes, the dropped estimator, bad input."""

from __future__ import annotations

import re

import pytest
import torch

from ivif.errors import InputError
from ivif.methods.hclfuse import CONFIGS, HCLFuseNet, load_model
from ivif.methods.hclfuse.convert_official import convert_state_dict, main

#: Official names (spec §2, DataParallel prefix) and their shapes at the published sizes.
OFFICIAL_SHAPES = {
    "module.encoder.ReconNet.pyramid.convs.0.weight": (64, 2, 5, 5),
    "module.encoder.ReconNet.pyramid.block1.conv.weight": (128, 64, 1, 1),
    "module.encoder.ReconNet.pyramid.mask2.mask": (1, 256, 1, 1),
    "module.encoder.ReconNet.channel_down.conv2.weight": (2, 64, 3, 3),
    "module.encoder.ReconNet.channel_up.conv1.weight": (128, 64, 3, 3),
    "module.encoder.ReconNet.up_sampling0.conv.weight": (256, 128, 3, 3),
    "module.encoder.ReconNet.block_up5.model.2.weight": (64, 64, 3, 3),
    "module.encoder.ReconNet.conv3.weight": (1, 64, 1, 1),
    "module.Unet.down.2.attn.1.q.weight": (192, 192, 1, 1),
    "module.Unet.up.3.block.2.nin_shortcut.weight": (256, 448, 1, 1),
}


def _to_official(name: str) -> str:
    """Hand-written inverse of the converter's renaming (independent of its regexes)."""
    simple = [
        ("encoder.stem.", "encoder.ReconNet.pyramid.convs."),
        ("decoder.head.0.", "encoder.ReconNet.conv2."),
        ("decoder.head.2.", "encoder.ReconNet.conv3."),
        ("unet.", "Unet."),
    ]
    for ours, theirs in simple:
        if name.startswith(ours):
            return "module." + theirs + name[len(ours) :]
    part, index, rest = re.match(r"^(\w+\.\w+)\.(\d+)\.(.+)$", name).groups()
    rest = rest.replace("body.", "model.").replace("shortcut.", "conv.")
    prefix = {
        "encoder.blocks": f"pyramid.block{index}.",
        "encoder.masks": f"pyramid.mask{index}.",
        "encoder.downs": f"pyramid.down{index}.",
        "encoder.bottleneck": f"channel_down.conv{int(index) // 2}.",
        "decoder.expand": f"channel_up.conv{int(index) // 2}.",
        "decoder.blocks": f"block_up{index}.",
        "decoder.ups": f"up_sampling{index}.",
    }[part]
    rest = rest.replace("logits", "mask")
    return "module.encoder.ReconNet." + prefix + rest


@pytest.fixture(scope="module")
def official_state():
    torch.manual_seed(0)
    ours = HCLFuseNet(CONFIGS["official"]).state_dict()
    state = {_to_official(k): v for k, v in ours.items()}
    state["module.info_gradient_estimator.0.weight"] = torch.zeros(64, 4, 3, 3)
    state["module.info_gradient_estimator.2.bias"] = torch.zeros(2)
    return ours, state


def test_official_names_and_shapes(official_state):
    _, state = official_state
    for name, shape in OFFICIAL_SHAPES.items():
        assert tuple(state[name].shape) == shape, name


def test_round_trip_and_load(official_state, tmp_path):
    ours, state = official_state
    converted = convert_state_dict(state)
    assert converted.keys() == ours.keys()
    assert all(torch.equal(converted[k], ours[k]) for k in ours)
    torch.save({"state_dict": state, "step": 1}, tmp_path / "ckpt.pth.tar")
    assert main([str(tmp_path / "ckpt.pth.tar"), str(tmp_path / "official.safetensors")]) == 0
    model = load_model(str(tmp_path / "official.safetensors"))
    assert sum(p.numel() for p in model.parameters()) == 27_323_013


def test_bad_checkpoints(official_state, tmp_path):
    _, state = official_state
    with pytest.raises(InputError, match="unexpected parameter"):
        convert_state_dict({**state, "module.extra.weight": torch.zeros(1)})
    broken = dict(state)
    del broken["module.encoder.ReconNet.conv3.bias"]
    with pytest.raises(InputError, match="missing"):
        convert_state_dict(broken)
    wrong = {**state, "module.encoder.ReconNet.conv3.bias": torch.zeros(3)}
    with pytest.raises(InputError, match="shape"):
        convert_state_dict(wrong)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert main([str(tmp_path / "junk.pth"), str(tmp_path / "out.safetensors")]) == 2
    torch.save({"state_dict": state}, tmp_path / "noema.pth")
    assert main([str(tmp_path / "noema.pth"), str(tmp_path / "out.safetensors"), "--ema"]) == 2
