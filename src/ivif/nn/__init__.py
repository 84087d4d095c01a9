"""Neural-network pieces shared by the diffusion-based methods (HCLFuse, Dif-CDFusion): noise
schedule, DDIM sampler, timestep UNet, EMA, safetensors checkpoints, small conv blocks and shared
loss terms."""

from ivif.nn.blocks import GuidedResidual, conv_stack
from ivif.nn.checkpoint import (
    export_ema,
    load_matching_weights,
    load_training_state,
    load_weights,
    read_config,
    save_training_state,
    save_weights,
)
from ivif.nn.ddim import ddim_sample, ddim_step
from ivif.nn.ema import EMA
from ivif.nn.losses import difference_loss
from ivif.nn.schedule import NoiseSchedule, ddim_timesteps
from ivif.nn.unet import TimestepUNet, UNetConfig, noise_level_embedding, timestep_embedding

__all__ = [
    "EMA",
    "GuidedResidual",
    "NoiseSchedule",
    "TimestepUNet",
    "UNetConfig",
    "conv_stack",
    "ddim_sample",
    "ddim_step",
    "ddim_timesteps",
    "difference_loss",
    "export_ema",
    "load_matching_weights",
    "load_training_state",
    "load_weights",
    "noise_level_embedding",
    "read_config",
    "save_training_state",
    "save_weights",
    "timestep_embedding",
]
