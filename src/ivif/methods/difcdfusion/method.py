"""The registered ``difcdfusion`` method: shipped weights, padding or tiling, native RGB output."""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from pathlib import Path
from typing import Literal

import torch

from ivif.color import rgb_to_gray
from ivif.errors import InputError
from ivif.methods.base import FusionMethod, option, register
from ivif.methods.difcdfusion.extractor import DiffusionExtractor
from ivif.methods.difcdfusion.head import FusionNet
from ivif.methods.difcdfusion.training import load_extractor, model_config_of
from ivif.nn import load_weights
from ivif.ops.tiling import pad_border, pad_to_multiple, tiled_apply

__all__ = ["DifCDFusion", "DifCDFusionOptions", "load_model", "shipped_prefix", "weight_files"]

#: The three files of one model: ``<prefix>-<stage>.safetensors`` (each with its JSON).
STAGE_FILES = ("ddpm-ir", "ddpm-vi", "fusion")


def shipped_prefix(config: str) -> str:
    """Prefix of the packaged weights ``ivif/weights/difcdfusion-<config>-<stage>.safetensors``."""
    return str(resources.files("ivif") / "weights" / f"difcdfusion-{config}")


def weight_files(prefix: str) -> dict[str, Path]:
    return {stage: Path(f"{prefix}-{stage}.safetensors") for stage in STAGE_FILES}


@functools.lru_cache(maxsize=4)
def load_model(prefix: str) -> tuple[DiffusionExtractor, FusionNet]:
    """The frozen extractor and the eval-mode fusion network stored under ``prefix``."""
    files = weight_files(prefix)
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise InputError(
            f"Dif-CDFusion weights not found: {', '.join(missing)}. Train them with `ivif train "
            "difcdfusion --stage ddpm-ir|ddpm-vi|fusion --data DIR --val DIR` and copy each "
            "stage's best.safetensors (+ .json) to PREFIX-<stage>.safetensors, then pass "
            "--weights PREFIX"
        )
    try:
        config = model_config_of(files["fusion"])
    except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{files['fusion']}: unreadable config beside the weights ({exc})"
        ) from None
    extractor = load_extractor(config, files["ddpm-ir"], files["ddpm-vi"])
    fusion = FusionNet(config)
    try:
        load_weights(fusion, files["fusion"])
    except (RuntimeError, OSError) as exc:
        raise InputError(f"{files['fusion']}: weights do not match their config ({exc})") from None
    return extractor, fusion.eval().requires_grad_(False)


@dataclasses.dataclass(frozen=True)
class DifCDFusionOptions:
    config: Literal["cpu", "official"] = option(
        "cpu", "packaged weights to use (official-size weights are not shipped: train them)"
    )
    weights: str = option("", "weights prefix PREFIX (PREFIX-ddpm-ir/-ddpm-vi/-fusion files)")
    t_feat: int = option(0, "feature timestep; 0 = the one the model was trained with (100)")
    share_diffusion_weights: bool = option(
        False, "official-code behaviour: the infrared branch uses the visible denoiser too"
    )
    tile: int = option(
        640, "images larger than this (either side) are fused in tiles of this size; 0: never"
    )
    margin: int = option(
        8,
        "reflect-pad each side by this many pixels and crop back, so that the networks' "
        "zero-padded borders fall outside the image (0: off, bright edge lines)",
    )

    def __post_init__(self) -> None:
        if self.t_feat < 0:
            raise ValueError(f"t_feat must be >= 0, got {self.t_feat}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.tile and self.tile < 128:
            raise ValueError(f"tile must be 0 or >= 128, got {self.tile}")


@register
class DifCDFusion(FusionMethod):
    """Dif-CDFusion (TGRS 2025): features of two per-modality DDPM denoisers (one noisy pass at
    t = 100) fused by common–differential alternate cross-attention, RGB in and out.

    A gray visible image is replicated to RGB for the visible denoiser and the result is
    returned as its BT.601 luma (gray in, gray out). Without a generator the noise of the
    feature pass is seeded with 0, so results are reproducible.
    """

    name = "difcdfusion"
    summary = "Dif-CDFusion: diffusion features + common-differential fusion, RGB (TGRS 2025)"
    colour = "native"
    Options = DifCDFusionOptions
    #: Overlap between tiles, in pixels.
    tile_overlap = 64

    def model(self) -> tuple[DiffusionExtractor, FusionNet]:
        extractor, fusion = load_model(self.options.weights or shipped_prefix(self.options.config))
        timesteps = extractor.config.timesteps
        if self.options.t_feat > timesteps:
            raise InputError(f"difcdfusion: t_feat must lie in [1, {timesteps}]")
        return extractor, fusion

    def fuse_planes(self, ir, vi, generator=None):
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        extractor, fusion = self.model()
        gray = vi.shape[1] == 1
        rgb = vi.expand(-1, 3, -1, -1) if gray else vi
        t = self.options.t_feat or None

        def run(ir_part: torch.Tensor, vi_part: torch.Tensor) -> torch.Tensor:
            h, w = ir_part.shape[-2:]
            m = self.options.margin
            multiple = extractor.config.pad_multiple
            ir_part = pad_to_multiple(pad_border(ir_part, m), multiple)
            vi_part = pad_to_multiple(pad_border(vi_part, m), multiple)
            with torch.inference_mode():
                features = extractor(
                    ir_part, vi_part, generator, t, self.options.share_diffusion_weights or None
                )
                return fusion(*features, ir_part, vi_part)[..., m : m + h, m : m + w]

        tile = self.options.tile
        if tile and max(ir.shape[-2:]) > tile:
            fused = tiled_apply(run, (ir, rgb), tile, self.tile_overlap)
        else:
            fused = run(ir, rgb)
        return rgb_to_gray(fused) if gray else fused
