"""The generic training loop: selection of ``best`` by any validation value, per-validation
exports, and the selection surviving an interrupted and resumed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from ivif.nn import load_weights, read_config, save_weights
from ivif.train import (
    VALIDATION_METRICS,
    LoopConfig,
    check_selection,
    higher_is_better,
    train,
    validation_quality,
)

pytestmark = pytest.mark.usefixtures("single_thread")

#: The scripted "Qabf" of validations 1, 2, 3, 4: best at the second, worst loss there too.
SCRIPTED_QABF = (0.40, 0.55, 0.50, 0.45)


class ToyTask:
    """Linear regression; validation reports its loss and a scripted quality value."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(4, 1)
        self.validations = 0
        self.target = torch.tensor([[1.0, -2.0, 0.5, 3.0]])

    def losses(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        x = torch.randn(16, 4, generator=generator)
        loss = (self.model(x) - x @ self.target.T).pow(2).mean()
        return {"total": loss}

    def validate(self, model: nn.Module) -> dict[str, float]:
        self.validations += 1
        x = torch.linspace(-1, 1, 32).reshape(8, 4)
        score = float((model(x) - x @ self.target.T).pow(2).mean())
        return {"score": score, "Qabf": SCRIPTED_QABF[self.validations - 1]}

    def export(self, model: nn.Module, path: Path, info: dict[str, Any]) -> None:
        save_weights(model, path, {"checkpoint": info})


def _config(**overrides: Any) -> LoopConfig:
    settings = dict(max_steps=40, learning_rate=0.05, warmup_steps=1, validate_every=10)
    settings.update(checkpoint_every=10, log_every=5)
    return LoopConfig(**{**settings, **overrides})


def test_default_selection_is_the_lowest_loss(tmp_path):
    task = ToyTask()
    result = train(task, _config(), tmp_path, progress=False)
    scores = np.loadtxt(tmp_path / "val_log.csv", delimiter=",", skiprows=1, usecols=1)
    assert result.best_step == 10 * (int(np.argmin(scores)) + 1)
    assert result.best_score == pytest.approx(scores.min(), rel=1e-5)
    assert not (tmp_path / "validated").exists()


def test_select_by_a_higher_is_better_metric_and_keep_every_validation(tmp_path):
    task = ToyTask()
    config = _config(select_by="Qabf", select_higher=True, keep_validated=True)
    result = train(task, config, tmp_path, progress=False)
    assert (result.best_step, result.best_score) == (20, 0.55)
    assert read_config(tmp_path / "best.safetensors")["checkpoint"]["step"] == 20
    kept = sorted(p.name for p in (tmp_path / "validated").glob("*.safetensors"))
    assert kept == [f"step-{s}.safetensors" for s in (10, 20, 30, 40)]
    # The kept step-20 file is the exported best, byte for byte in its tensors.
    best, kept_20 = nn.Linear(4, 1), nn.Linear(4, 1)
    load_weights(best, tmp_path / "best.safetensors")
    load_weights(kept_20, tmp_path / "validated" / "step-20.safetensors")
    assert torch.equal(best.weight, kept_20.weight) and torch.equal(best.bias, kept_20.bias)
    # Each kept file describes its own validation.
    step_30 = json.loads((tmp_path / "validated" / "step-30.json").read_text())
    assert step_30["checkpoint"]["Qabf"] == 0.50


def test_selection_survives_interruption_and_resume(tmp_path):
    config = _config(select_by="Qabf", select_higher=True)
    first = ToyTask()
    train(first, config, tmp_path, progress=False, stop_at=20)
    resumed = ToyTask()
    resumed.validations = first.validations  # the scripted sequence continues
    result = train(resumed, config, tmp_path, resume=True, progress=False)
    assert (result.best_step, result.best_score) == (20, 0.55)


def test_unknown_selection_value_is_a_clear_error(tmp_path):
    with pytest.raises(KeyError, match="select_by='SF' is not a validation value.*Qabf"):
        train(ToyTask(), _config(select_by="SF"), tmp_path, progress=False)
    with pytest.raises(ValueError, match="select_by must be one of score, EN"):
        check_selection("qabf")
    check_selection("chroma_levels", extra=("chroma_levels",))


def test_directions_follow_the_metric_registry():
    assert not higher_is_better("score")
    assert not higher_is_better("chroma_levels")
    assert all(higher_is_better(name) for name in VALIDATION_METRICS)


def test_validation_quality_equals_evaluate_on_uint8_planes():
    from ivif.evaluation import evaluate_arrays

    rng = np.random.default_rng(0)
    ir, vi, fused = (rng.integers(0, 256, (1, 1, 48, 56)).astype(np.float32) for _ in range(3))
    colour = rng.integers(0, 256, (1, 3, 48, 56)).astype(np.float32)
    tensors = [torch.from_numpy(x / 255.0) for x in (ir, vi, fused, colour)]
    expected = evaluate_arrays(
        ir[0, 0].astype(np.uint8),
        vi[0, 0].astype(np.uint8),
        fused[0, 0].astype(np.uint8),
        metrics=VALIDATION_METRICS,
        convention="tang",
    )
    assert validation_quality(*tensors[:3]) == pytest.approx(expected, rel=1e-12)
    rgb = np.moveaxis(colour[0], 0, -1).astype(np.uint8)
    expected_rgb = evaluate_arrays(
        ir[0, 0].astype(np.uint8), rgb, rgb, metrics=VALIDATION_METRICS, convention="tang"
    )
    assert validation_quality(tensors[0], tensors[3], tensors[3]) == pytest.approx(
        expected_rgb, rel=1e-12
    )
