"""The registered ``hclfuse`` fusion method: loads weights, pads or tiles, samples, crops back."""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from pathlib import Path
from typing import Literal

import torch

from ivif.errors import InputError
from ivif.methods.base import FusionMethod, option, register
from ivif.methods.hclfuse.config import ModelConfig, PhysicsConfig
from ivif.methods.hclfuse.model import HCLFuseNet
from ivif.nn import load_weights, read_config
from ivif.ops.tiling import pad_to_multiple, tiled_apply

__all__ = ["HCLFuse", "HCLFuseOptions", "load_model", "shipped_weights"]


def shipped_weights(config: str) -> Path:
    """Path of the packaged weights ``ivif/weights/hclfuse-<config>.safetensors``."""
    return Path(str(resources.files("ivif") / "weights" / f"hclfuse-{config}.safetensors"))


@functools.lru_cache(maxsize=4)
def load_model(weights: str) -> HCLFuseNet:
    """An eval-mode :class:`HCLFuseNet` from a weights file with its config JSON beside it."""
    path = Path(weights)
    if not path.is_file():
        raise InputError(
            f"HCLFuse weights not found at {path}. Train them with `ivif train hclfuse --data "
            "DIR --val DIR` and copy runs/hclfuse/best.safetensors (+ .json) there, pass "
            "--weights FILE, or convert the official checkpoint with `python -m "
            "ivif.methods.hclfuse.convert_official CKPT OUT.safetensors`"
        )
    try:
        config = ModelConfig.from_dict(read_config(path)["model"])
    except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: unreadable HCLFuse config beside the weights ({exc})") from None
    model = HCLFuseNet(config)
    try:
        load_weights(model, path)
    except (RuntimeError, OSError) as exc:
        raise InputError(f"{path}: weights do not match their config ({exc})") from None
    return model.eval()


@dataclasses.dataclass(frozen=True)
class HCLFuseOptions:
    steps: int = option(20, "DDIM sampling steps (the paper uses 20)")
    config: Literal["cpu", "official"] = option(
        "cpu", "which packaged weights to use (official weights must be converted first)"
    )
    weights: str = option("", "a weights file (.safetensors with its .json) instead")
    channel_order: Literal["ir_vi", "vi_ir"] = option(
        "ir_vi", "encoder input order; vi_ir reproduces the official test code's swap"
    )
    consistency: Literal["config", "convex", "additive"] = option(
        "config", "physical-consistency step: as trained, code's convex blend, paper's additive"
    )
    unseeded: bool = option(
        False, "official behaviour: draw noise from the global RNG when no seed is given"
    )
    tile: int = option(1024, "images larger than this (either side) are fused in tiles; 0: never")

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise ValueError(f"steps must lie in [1, 1000], got {self.steps}")
        if self.tile and self.tile < 128:
            raise ValueError(f"tile must be 0 or >= 128, got {self.tile}")


@register
class HCLFuse(FusionMethod):
    """HCLFuse (Li et al., NeurIPS 2025): variational bottleneck encoder and physics-guided
    latent diffusion (heat conduction, structure preservation, physical consistency)."""

    name = "hclfuse"
    summary = "HCLFuse: VBE encoder + physics-guided latent DDIM (NeurIPS 2025); learned"
    Options = HCLFuseOptions
    #: Overlap between tiles, in pixels.
    tile_overlap = 64

    def model(self) -> HCLFuseNet:
        """The (cached) network of the chosen weights."""
        return load_model(self.options.weights or str(shipped_weights(self.options.config)))

    def physics(self, model: HCLFuseNet) -> PhysicsConfig:
        """The guidance constants, with the ``consistency`` option applied."""
        physics = model.config.physics
        if self.options.consistency == "config":
            return physics
        return dataclasses.replace(physics, consistency=self.options.consistency)

    def fuse_planes(self, ir, vi, generator=None):
        if generator is None and not self.options.unseeded:
            generator = torch.Generator().manual_seed(0)
        model = self.model()
        tile = self.options.tile
        h, w = ir.shape[-2:]
        if not tile or max(h, w) <= tile:
            return self._fuse_padded(model, ir, vi, generator)
        return tiled_apply(
            lambda ir_part, vi_part: self._fuse_padded(model, ir_part, vi_part, generator),
            (ir, vi),
            tile,
            self.tile_overlap,
        )

    def _fuse_padded(self, model, ir, vi, generator):
        h, w = ir.shape[-2:]
        multiple = model.config.pad_multiple
        fused = model.fuse(
            pad_to_multiple(ir, multiple),
            pad_to_multiple(vi, multiple),
            self.options.steps,
            generator,
            self.options.channel_order,
            self.physics(model),
        )
        return fused[..., :h, :w]
