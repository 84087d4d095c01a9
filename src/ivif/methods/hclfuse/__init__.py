"""HCLFuse (Li et al., NeurIPS 2025): information-bottleneck encoder, OT alignment and
physics-guided latent diffusion. See docs/methods/hclfuse.md and the spec ``hclfuse.md``."""

from ivif.methods.hclfuse.config import CONFIGS, ModelConfig, PhysicsConfig, TrainConfig, get_config
from ivif.methods.hclfuse.method import HCLFuse, HCLFuseOptions, load_model, shipped_weights
from ivif.methods.hclfuse.model import HCLFuseNet

__all__ = [
    "CONFIGS",
    "HCLFuse",
    "HCLFuseNet",
    "HCLFuseOptions",
    "ModelConfig",
    "PhysicsConfig",
    "TrainConfig",
    "get_config",
    "load_model",
    "shipped_weights",
]
