"""Training: a generic resumable loop shared by the learned methods, and their validation."""

from ivif.train.loop import LoopConfig, TrainingTask, TrainResult, cosine_lr, step_generator, train
from ivif.train.validation import (
    VALIDATION_METRICS,
    check_selection,
    higher_is_better,
    validation_quality,
)

__all__ = [
    "VALIDATION_METRICS",
    "LoopConfig",
    "TrainResult",
    "TrainingTask",
    "check_selection",
    "cosine_lr",
    "higher_is_better",
    "step_generator",
    "train",
    "validation_quality",
]
