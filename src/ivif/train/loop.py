"""A generic, resumable training loop: seeded per step, EMA, CSV logs, checkpoints, validation.

Reproducibility: the batch and every random draw of step ``s`` come from a generator seeded
with ``(seed, s)``, the learning rate is a pure function of ``s``, and the checkpoint holds the
model, the EMA weights and the Adam moments. A run resumed from a checkpoint therefore continues
bit-identically (same thread count assumed). SIGINT/SIGTERM finish the current step, write a
checkpoint and return.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

from ivif.nn import EMA, load_training_state, save_training_state

__all__ = ["LoopConfig", "TrainResult", "TrainingTask", "cosine_lr", "step_generator", "train"]

CHECKPOINT = "last.safetensors"


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """What the loop itself needs (the task owns data, model and losses)."""

    max_steps: int
    learning_rate: float = 2e-4
    min_learning_rate: float = 1e-5
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.999)
    ema_decay: float = 0.999
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    validate_every: int = 500
    #: Stop after this many validations without a better score (0: never).
    patience: int = 0
    #: The validation value that chooses ``best.safetensors`` (a key of ``task.validate``).
    select_by: str = "score"
    #: Whether a higher ``select_by`` is better (``score`` is a loss: lower is better).
    select_higher: bool = False
    #: Also export the EMA weights of every validation to ``validated/step-N.safetensors``, so
    #: that any step can be shipped after comparing the logged metrics.
    keep_validated: bool = False


class TrainingTask(Protocol):
    """A model with its losses and its validation."""

    model: nn.Module

    def losses(self, batch_generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Loss terms of one step; must contain ``total`` (the one that is back-propagated)."""

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation values; must contain ``score`` (lower is better) and ``select_by``."""

    def export(self, model: nn.Module, path: Path, info: dict[str, Any]) -> None:
        """Write ``model``'s weights to ``path`` with the config JSON beside it."""


@dataclasses.dataclass
class TrainResult:
    step: int
    best_step: int
    best_score: float
    stopped: str
    seconds: float


def cosine_lr(step: int, config: LoopConfig) -> float:
    """Linear warm-up, then cosine decay from ``learning_rate`` to ``min_learning_rate``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    span = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    low, high = config.min_learning_rate, config.learning_rate
    return low + 0.5 * (high - low) * (1.0 + math.cos(math.pi * progress))


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of one step: independent of how the run was interrupted."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


class _CsvLog:
    """Append-only CSV; on resume, rows beyond the checkpoint step are dropped."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.exists():
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            kept = [row for row in rows if int(row["step"]) <= resume_step]
            if rows:
                self.fields = list(rows[0].keys())
                self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        with self.path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(row)
            self._rewrite([])
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, self.fields, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )


def _improves(metrics: dict[str, float], best: float, config: LoopConfig) -> bool:
    """Whether a validation beats the best so far by ``config.select_by``."""
    if config.select_by not in metrics:
        raise KeyError(
            f"select_by={config.select_by!r} is not a validation value; "
            f"choose from {', '.join(sorted(metrics))}"
        )
    value = metrics[config.select_by]
    return value > best if config.select_higher else value < best


@contextmanager
def _stop_requests() -> Iterator[Callable[[], bool]]:
    """Turn SIGINT/SIGTERM into a flag checked between steps."""
    requested = []

    def handler(signum, frame):
        requested.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: bool(requested)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def train(
    task: TrainingTask,
    config: LoopConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    stop_at: int | None = None,
) -> TrainResult:
    """Train ``task.model`` with Adam until ``max_steps`` (or ``stop_at``, or early stopping).

    ``run_dir`` receives ``last.safetensors`` (resume state), ``train_log.csv``,
    ``val_log.csv``, ``best.safetensors`` (the EMA weights of the best validation by
    ``config.select_by``; ``best_score`` is that value) and, with ``keep_validated``, one
    ``validated/step-N.safetensors`` per validation; :meth:`TrainingTask.export` writes them.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = task.model
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=config.betas)
    ema = EMA(model, config.ema_decay)
    info: dict[str, Any] = {
        "step": 0,
        "best_score": -math.inf if config.select_higher else math.inf,
        "best_step": -1,
        "stale": 0,
        "seconds": 0.0,
        "ema_updates": 0,
    }
    checkpoint = run_dir / CHECKPOINT
    if resume and checkpoint.exists():
        ema_state, info = load_training_state(checkpoint, model, optimizer)
        ema.load_state_dict(ema_state, info["ema_updates"])
    elif resume:
        raise FileNotFoundError(f"{checkpoint}: nothing to resume")
    train_log = _CsvLog(run_dir / "train_log.csv", info["step"])
    val_log = _CsvLog(run_dir / "val_log.csv", info["step"])
    end = config.max_steps if stop_at is None else min(stop_at, config.max_steps)

    def save() -> None:
        info["ema_updates"] = ema.updates
        save_training_state(checkpoint, model, optimizer, ema.state_dict(), info)

    stopped = "max_steps" if info["step"] >= end else ""
    started = time.perf_counter() - info["seconds"]
    bar = tqdm(total=end, initial=info["step"], desc="train", unit="step", disable=not progress)
    with _stop_requests() as stop_requested:
        while info["step"] < end and not stopped:
            step = info["step"]
            lr = cosine_lr(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.train()
            losses = task.losses(step_generator(config.seed, step))
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            ema.update(model)
            info["step"] = step = step + 1
            info["seconds"] = time.perf_counter() - started
            if step % config.log_every == 0 or step == end:
                row = {"step": step, "lr": lr, "seconds": info["seconds"]}
                row.update({k: float(v.detach()) for k, v in losses.items()})
                train_log.write(row)
                bar.set_postfix(loss=f"{row['total']:.4g}")
            if step % config.validate_every == 0 or step == end:
                model.eval()
                with ema.applied(model), torch.inference_mode():
                    metrics = task.validate(model)
                val_log.write({"step": step, **metrics})
                described = {"step": step, **metrics}
                if config.keep_validated:
                    with ema.applied(model):
                        path = run_dir / "validated" / f"step-{step}.safetensors"
                        task.export(model, path, described)
                if _improves(metrics, info["best_score"], config):
                    info.update(best_score=metrics[config.select_by], best_step=step, stale=0)
                    with ema.applied(model):
                        task.export(model, run_dir / "best.safetensors", described)
                else:
                    info["stale"] += 1
                    if config.patience and info["stale"] >= config.patience:
                        stopped = "no_improvement"
            if step % config.checkpoint_every == 0 or step == end or stopped:
                save()
            bar.update(1)
            if stop_requested() and not stopped:
                save()
                stopped = "interrupted"
    bar.close()
    return TrainResult(
        info["step"],
        info["best_step"],
        info["best_score"],
        stopped or "max_steps",
        info["seconds"],
    )
