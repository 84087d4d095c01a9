"""Training HCLFuse with the generic loop (spec §5; CPU recipe in docs/methods/hclfuse.md)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ivif.data import PatchSampler, load_gray_pair, load_pairs
from ivif.methods.hclfuse.config import ModelConfig, TrainConfig
from ivif.methods.hclfuse.model import (
    HCLFuseNet,
    fusion_loss,
    max_fusion_loss,
    training_losses,
)
from ivif.nn import difference_loss, load_matching_weights, save_weights
from ivif.ops import ot_align
from ivif.ops.tiling import pad_to_multiple
from ivif.train import LoopConfig, higher_is_better, validation_quality

__all__ = [
    "HCLFuseTask",
    "loop_config",
    "train_config_from",
]


def loop_config(train: TrainConfig) -> LoopConfig:
    return LoopConfig(
        max_steps=train.max_steps,
        learning_rate=train.learning_rate,
        min_learning_rate=train.min_learning_rate,
        warmup_steps=train.warmup_steps,
        ema_decay=train.ema_decay,
        seed=train.seed,
        log_every=train.log_every,
        checkpoint_every=train.checkpoint_every,
        validate_every=train.validate_every,
        patience=train.patience,
        select_by=train.select_by,
        select_higher=higher_is_better(train.select_by),
        keep_validated=train.keep_validated,
    )


class HCLFuseTask:
    """HCLFuse losses on random patches with precomputed OT-aligned infrared, validated by
    fusing whole validation pairs (20 DDIM steps, fixed seed)."""

    def __init__(
        self,
        model_config: ModelConfig,
        train_config: TrainConfig,
        data_dir: str | os.PathLike,
        val_dir: str | os.PathLike,
        progress: bool = True,
    ) -> None:
        torch.manual_seed(train_config.seed)  # the initial weights
        self.model = HCLFuseNet(model_config)
        #: Parameters ``init_weights`` did not hold (modules added since), kept at initialisation.
        self.fresh_parameters = (
            load_matching_weights(self.model, train_config.init_weights)
            if train_config.init_weights
            else []
        )
        self.model_config = model_config
        self.train_config = train_config
        self.sampler = PatchSampler(
            data_dir,
            train_config.patch_size,
            train_config.batch_size,
            train_config.image_scale,
            train_config.hflip,
            self._aligned_ir,
            progress,
            exposure=train_config.exposure,
            sensor_noise=train_config.sensor_noise,
            source_groups=((0, 2), (1,)),  # X′ = X when augmenting (ot_blend = 0)
        )
        pairs = load_pairs(val_dir)
        count = min(train_config.val_pairs, len(pairs))
        picks = np.linspace(0, len(pairs) - 1, count).round().astype(int) if count else []
        self.val_pairs = [pairs[i] for i in picks]
        self.val_images = [load_gray_pair(pair) for pair in self.val_pairs]
        self.data_dir, self.val_dir = str(data_dir), str(val_dir)

    def _aligned_ir(self, planes: torch.Tensor) -> torch.Tensor:
        cfg = self.train_config
        if cfg.ot_blend == 0.0:  # X′ = X: no transport plan needed
            return planes[:, :1].clone()
        return ot_align(
            planes[:, :1],
            planes[:, 1:2],
            cfg.ot_epsilon,
            cfg.ot_iterations,
            cfg.ot_blend,
            cfg.ot_vi_levels,
        )

    def fusion_loss(self, fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        """The configured fusion loss (``fusion_loss`` option of :class:`TrainConfig`)."""
        cfg = self.train_config
        if cfg.fusion_loss == "official":
            return fusion_loss(fused, ir, vi, cfg.sobel_eps)
        loss = max_fusion_loss(fused, ir, vi, cfg.gradient_weight, cfg.sobel_eps)
        if cfg.difference_weight:
            loss = loss + cfg.difference_weight * difference_loss(fused, ir, vi)
        return loss

    def losses(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        cfg = self.train_config
        batch = self.sampler.sample(generator)
        vi, ir_aligned = batch[:, 1:2], batch[:, 2:3]
        ir_target = ir_aligned if cfg.fusion_ir == "aligned" else batch[:, :1]
        terms = training_losses(
            self.model,
            ir_aligned,
            vi,
            generator,
            cfg.chain_steps,
            cfg.chain_grad_steps,
            lambda fused: self.fusion_loss(fused, ir_target, vi),
        )
        terms["total"] = (
            cfg.noise_weight * terms["noise"]
            + cfg.kl_weight * terms["kl"]
            + cfg.fusion_weight * terms["fusion"]
        )
        return terms

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Mean configured fusion loss (``score``, raw IR as target) and
        :func:`~ivif.train.validation_quality` over the validation pairs."""
        totals: dict[str, float] = {}
        for index, planes in enumerate(self.val_images):
            ir, vi = planes[:, :1], planes[:, 1:2]
            generator = torch.Generator().manual_seed(index)
            h, w = ir.shape[-2:]
            multiple = self.model_config.pad_multiple
            fused = model.fuse(
                pad_to_multiple(ir, multiple), pad_to_multiple(vi, multiple), None, generator
            )[..., :h, :w].clamp(0, 1)
            values = {"score": float(self.fusion_loss(fused, ir, vi))}
            values.update(validation_quality(ir, vi, fused))
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value / len(self.val_images)
        return totals

    def export(self, model: nn.Module, path: Path, info: dict[str, Any]) -> None:
        save_weights(model, path, self.describe(info))

    def describe(self, info: dict[str, Any]) -> dict[str, Any]:
        """The config JSON stored beside exported weights."""
        return {
            "method": "hclfuse",
            "model": self.model_config.to_dict(),
            "train": self.train_config.to_dict(),
            "data": self.data_dir,
            "val": self.val_dir,
            "val_pairs": [pair.name for pair in self.val_pairs],
            "checkpoint": info,
        }


def train_config_from(data: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from a (partial) dict; unknown keys are an error."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}")
    return TrainConfig(**data)
