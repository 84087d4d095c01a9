"""The three Dif-CDFusion training stages, as tasks for the shared loop (:mod:`ivif.train`).

* ``ddpm-ir`` / ``ddpm-vi`` (spec §2.4): an unconditional ε-prediction denoiser per modality with
  SR3's continuous noise level, on random crops of the training pairs.
* ``fusion`` (spec §6): the frozen denoisers give features at ``t_feat`` (one noisy pass, noise
  from the step's generator); the fusion network is trained with the loss of spec §5.

Every stage exports its best (EMA) weights as ``best.safetensors`` with the config JSON beside it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ivif.data import PatchSampler, load_pairs
from ivif.data.patches import load_rgb_pair
from ivif.errors import InputError
from ivif.methods.difcdfusion.config import ModelConfig, TrainConfig
from ivif.methods.difcdfusion.extractor import (
    DiffusionExtractor,
    diffusion_input,
    noisy_input,
    sample_gamma,
)
from ivif.methods.difcdfusion.head import FusionNet
from ivif.methods.difcdfusion.losses import FusionLoss, color_loss
from ivif.nn import (
    NoiseSchedule,
    TimestepUNet,
    load_matching_weights,
    load_weights,
    read_config,
    save_weights,
)
from ivif.ops.tiling import pad_to_multiple
from ivif.train import LoopConfig, TrainResult, higher_is_better, train, validation_quality

__all__ = [
    "STAGES",
    "DenoiserTask",
    "FusionTask",
    "Stage",
    "chroma_error",
    "configs_from",
    "load_extractor",
    "loop_config",
    "model_config_of",
    "run_stage",
    "train_config_from",
]

Stage = Literal["ddpm-ir", "ddpm-vi", "fusion"]
STAGES: tuple[str, ...] = ("ddpm-ir", "ddpm-vi", "fusion")
#: Timesteps at which the denoisers are validated (fixed noise); the score is their mean MSE.
VALIDATION_TIMESTEPS = (100, 250, 500, 1000, 1500)


def chroma_error(fused: torch.Tensor, vi: torch.Tensor) -> float:
    """Mean ``|ΔCb| + |ΔCr|`` against the visible image, in 8-bit levels."""
    return 255.0 * float(color_loss(fused, vi))


def loop_config(train: TrainConfig, stage: Stage) -> LoopConfig:
    steps, lr = (
        (train.fusion_steps, train.fusion_lr)
        if stage == "fusion"
        else (train.ddpm_steps, train.ddpm_lr)
    )
    return LoopConfig(
        max_steps=steps,
        learning_rate=lr,
        min_learning_rate=lr * train.min_lr_ratio,
        warmup_steps=train.warmup_steps,
        ema_decay=train.ema_decay,
        seed=train.seed + STAGES.index(stage),
        log_every=train.log_every,
        checkpoint_every=train.checkpoint_every,
        validate_every=train.validate_every,
        select_by=train.select_by if stage == "fusion" else "score",
        select_higher=stage == "fusion" and higher_is_better(train.select_by),
        keep_validated=train.keep_validated,
    )


def _validation_pairs(val_dir: str | os.PathLike, count: int) -> list[torch.Tensor]:
    pairs = load_pairs(val_dir)
    count = min(count, len(pairs))
    picks = np.linspace(0, len(pairs) - 1, count).round().astype(int) if count else []
    return [load_rgb_pair(pairs[i]) for i in picks]


def _describe(
    stage: str, model: ModelConfig, train: TrainConfig, data: str, val: str, info: dict[str, Any]
) -> dict[str, Any]:
    return {
        "method": "difcdfusion",
        "stage": stage,
        "model": model.to_dict(),
        "train": train.to_dict(),
        "data": data,
        "val": val,
        "checkpoint": info,
    }


class DenoiserTask:
    """Stage ``ddpm-ir`` or ``ddpm-vi``: ``‖ε − ε_θ(γ·x₀ + √(1−γ²)·ε, γ)‖²`` (mean), t uniform
    on ``1 … ddpm_max_t``, γ ~ U(√ᾱ_t, √ᾱ_{t−1})."""

    def __init__(
        self,
        stage: Stage,
        model_config: ModelConfig,
        train_config: TrainConfig,
        data_dir: str | os.PathLike,
        val_dir: str | os.PathLike,
        progress: bool = True,
    ) -> None:
        if stage not in ("ddpm-ir", "ddpm-vi"):
            raise ValueError(f"not a denoiser stage: {stage!r}")
        self.stage = stage
        self.model_config, self.train_config = model_config, train_config
        unet_config = model_config.ir_unet if stage == "ddpm-ir" else model_config.vi_unet
        torch.manual_seed(train_config.seed + STAGES.index(stage))  # the initial weights
        self.model = TimestepUNet(unet_config)
        self.schedule = NoiseSchedule.linear(
            model_config.timesteps, model_config.beta_start, model_config.beta_end
        )
        self.max_t = min(train_config.ddpm_max_t, model_config.timesteps)
        self.sampler = PatchSampler(
            data_dir,
            train_config.ddpm_patch,
            train_config.ddpm_batch,
            hflip=train_config.hflip,
            progress=progress,
            visible="rgb",
        )
        side = 2 * train_config.ddpm_patch
        crops = [
            pad_to_multiple(_centre_crop(planes, side), side)[..., :side, :side]
            for planes in _validation_pairs(val_dir, train_config.val_pairs)
        ]
        self.val_images = self._images(torch.cat(crops))
        self.data_dir, self.val_dir = str(data_dir), str(val_dir)

    def _images(self, planes: torch.Tensor) -> torch.Tensor:
        """The stage's modality from [ir, R, G, B] planes, with the denoiser's channel count."""
        if self.stage == "ddpm-vi":
            return planes[:, 1:4]
        return planes[:, :1].expand(-1, self.model.config.in_channels, -1, -1)

    def _mse(
        self, model: nn.Module, images: torch.Tensor, t: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        x0 = diffusion_input(images, self.model_config.diff_input_range)
        gamma = sample_gamma(self.schedule, t, generator)
        noise = torch.randn(x0.shape, generator=generator)
        prediction = model(noisy_input(x0, gamma, noise), gamma)
        return F.mse_loss(prediction, noise)

    def losses(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        images = self._images(self.sampler.sample(generator))
        t = torch.randint(1, self.max_t + 1, (images.shape[0],), generator=generator)
        mse = self._mse(self.model, images, t, generator)
        return {"total": mse}

    def validate(self, model: nn.Module) -> dict[str, float]:
        generator = torch.Generator().manual_seed(0)
        batch = self.val_images.shape[0]
        values = {
            f"mse_t{t}": float(
                self._mse(model, self.val_images, torch.full((batch,), t), generator)
            )
            for t in VALIDATION_TIMESTEPS
        }
        values["score"] = float(np.mean(list(values.values())))
        return values

    def export(self, model: nn.Module, path: Path, info: dict[str, Any]) -> None:
        save_weights(model, path, self.describe(info))

    def describe(self, info: dict[str, Any]) -> dict[str, Any]:
        return _describe(
            self.stage, self.model_config, self.train_config, self.data_dir, self.val_dir, info
        )


def _centre_crop(planes: torch.Tensor, side: int) -> torch.Tensor:
    h, w = planes.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return planes[..., top : top + side, left : left + side]


def load_extractor(
    model_config: ModelConfig, ir_weights: str | os.PathLike, vi_weights: str | os.PathLike
) -> DiffusionExtractor:
    """A frozen, eval-mode extractor with the two denoisers' weights (safetensors files)."""
    extractor = DiffusionExtractor(model_config)
    for unet, path in ((extractor.ir_unet, ir_weights), (extractor.vi_unet, vi_weights)):
        if not Path(path).is_file():
            raise InputError(f"{path}: denoiser weights not found (train the ddpm stages first)")
        try:
            load_weights(unet, path)
        except RuntimeError as exc:
            raise InputError(f"{path}: weights do not match the model config ({exc})") from None
    return extractor.eval().requires_grad_(False)


class FusionTask:
    """Stage ``fusion``: frozen extractor features → fusion network, loss of spec §5; validated by
    fusing whole validation pairs (fixed noise seed per pair)."""

    def __init__(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        data_dir: str | os.PathLike,
        val_dir: str | os.PathLike,
        ir_weights: str | os.PathLike,
        vi_weights: str | os.PathLike,
        progress: bool = True,
    ) -> None:
        self.stage = "fusion"
        self.model_config, self.train_config = model_config, train_config
        self.extractor = load_extractor(model_config, ir_weights, vi_weights)
        self.extractor_weights = (str(ir_weights), str(vi_weights))
        torch.manual_seed(train_config.seed + STAGES.index("fusion"))  # the initial weights
        self.model = FusionNet(model_config)
        if train_config.fusion_init != "normal":
            self.model.reset_parameters(train_config.fusion_init)
        if train_config.fusion_init_weights:
            load_matching_weights(self.model, train_config.fusion_init_weights)
        self.loss = FusionLoss(train_config)
        self.sampler = PatchSampler(
            data_dir,
            train_config.fusion_patch,
            train_config.fusion_batch,
            hflip=train_config.hflip,
            progress=progress,
            visible="rgb",
            exposure=train_config.exposure,
            sensor_noise=train_config.sensor_noise,
        )
        self.val_images = _validation_pairs(val_dir, train_config.val_pairs)
        self.data_dir, self.val_dir = str(data_dir), str(val_dir)

    def losses(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        batch = self.sampler.sample(generator)
        ir, vi = batch[:, :1], batch[:, 1:4]
        with torch.no_grad():
            ir_features, vi_features = self.extractor(ir, vi, generator)
        return self.loss(self.model(ir_features, vi_features, ir, vi), vi, ir)

    def fuse(
        self, model: nn.Module, ir: torch.Tensor, vi: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Pad to the model's multiple, extract, fuse, crop back."""
        h, w = ir.shape[-2:]
        multiple = self.model_config.pad_multiple
        ir, vi = pad_to_multiple(ir, multiple), pad_to_multiple(vi, multiple)
        return model(*self.extractor(ir, vi, generator), ir, vi)[..., :h, :w]

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Mean loss terms (``score`` = total), chroma error in 8-bit levels and
        :func:`~ivif.train.validation_quality`."""
        totals: dict[str, float] = {}
        for index, planes in enumerate(self.val_images):
            ir, vi = planes[:, :1], planes[:, 1:4]
            fused = self.fuse(model, ir, vi, torch.Generator().manual_seed(index))
            values = {k: float(v) for k, v in self.loss(fused, vi, ir).items()}
            values["score"] = values.pop("total")
            values["chroma_levels"] = chroma_error(fused, vi)
            values.update(validation_quality(ir, vi, fused))  # eval mode: already clamped
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value / len(self.val_images)
        return totals

    def export(self, model: nn.Module, path: Path, info: dict[str, Any]) -> None:
        save_weights(model, path, self.describe(info))

    def describe(self, info: dict[str, Any]) -> dict[str, Any]:
        described = _describe(
            "fusion", self.model_config, self.train_config, self.data_dir, self.val_dir, info
        )
        described["extractor_weights"] = list(self.extractor_weights)
        return described


def train_config_from(base: TrainConfig, data: dict[str, Any]) -> TrainConfig:
    """``base`` with the settings in ``data`` replaced; unknown keys are an error."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}")
    return dataclasses.replace(base, **data)


def model_config_of(weights: str | os.PathLike) -> ModelConfig:
    """The model config stored beside a stage's exported weights."""
    return ModelConfig.from_dict(read_config(weights)["model"])


def configs_from(name_or_path: str) -> tuple[ModelConfig, TrainConfig]:
    """A named config (``cpu``, ``official``) or a JSON file ``{"base": NAME, "model": {…},
    "train": {…}}`` (``model`` a complete model config, ``train`` overrides of the base's)."""
    from ivif.methods.difcdfusion.config import CONFIGS

    if name_or_path in CONFIGS:
        return CONFIGS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(f"--config: {name_or_path!r} is neither {', '.join(CONFIGS)} nor a file")
    data = json.loads(path.read_text())
    base_model, base_train = CONFIGS[data.get("base", "cpu")]
    try:
        model = ModelConfig.from_dict(data["model"]) if "model" in data else base_model
        return model, train_config_from(base_train, data.get("train", {}))
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"--config: {exc}") from None


def run_stage(
    stage: Stage,
    config: str,
    data_dir: str | os.PathLike,
    val_dir: str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    max_steps: int | None = None,
    ir_weights: str | os.PathLike | None = None,
    vi_weights: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train one stage (``ivif train difcdfusion --stage …``). Runs go to
    ``runs/difcdfusion/<stage>``; the fusion stage reads ``../ddpm-ir/best.safetensors`` and
    ``../ddpm-vi/best.safetensors`` beside its run folder unless weights are given."""
    if stage not in STAGES:
        raise InputError(f"--stage must be one of {', '.join(STAGES)}, got {stage!r}")
    model_config, train_config = configs_from(config)
    if max_steps is not None:
        key = "fusion_steps" if stage == "fusion" else "ddpm_steps"
        train_config = dataclasses.replace(train_config, **{key: max_steps})
    run_dir = Path(run_dir) if run_dir else Path("runs/difcdfusion") / stage
    if stage == "fusion":
        ir_weights = ir_weights or run_dir.parent / "ddpm-ir" / "best.safetensors"
        vi_weights = vi_weights or run_dir.parent / "ddpm-vi" / "best.safetensors"
        task: DenoiserTask | FusionTask = FusionTask(
            model_config, train_config, data_dir, val_dir, ir_weights, vi_weights, progress
        )
    else:
        task = DenoiserTask(stage, model_config, train_config, data_dir, val_dir, progress)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(task.describe({}), indent=2) + "\n")
    return train(task, loop_config(train_config, stage), run_dir, resume=resume, progress=progress)
