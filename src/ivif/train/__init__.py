"""Training: a generic resumable loop shared by the learned methods."""

from ivif.train.loop import LoopConfig, TrainingTask, TrainResult, cosine_lr, step_generator, train

__all__ = ["LoopConfig", "TrainResult", "TrainingTask", "cosine_lr", "step_generator", "train"]
