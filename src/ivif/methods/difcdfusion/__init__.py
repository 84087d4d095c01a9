"""Dif-CDFusion (TGRS 2025): diffusion features of two per-modality denoisers fused in colour by
a common–differential alternate fusion network. Spec: ``difcdfusion.md``; docs:
``docs/methods/difcdfusion.md``."""

from ivif.methods.difcdfusion.config import CONFIGS, ModelConfig, TrainConfig, get_config
from ivif.methods.difcdfusion.method import DifCDFusion, DifCDFusionOptions

__all__ = [
    "CONFIGS",
    "DifCDFusion",
    "DifCDFusionOptions",
    "ModelConfig",
    "TrainConfig",
    "get_config",
]
