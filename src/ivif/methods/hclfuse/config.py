"""HCLFuse configurations: ``official`` (the published sizes) and ``cpu`` (sized for 2 CPU cores).

Numbers refer to the clean-room spec ``hclfuse.md``. :class:`ModelConfig` fixes the network and
the sampler; :class:`TrainConfig` the training recipe.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from ivif.errors import InputError
from ivif.nn.unet import UNetConfig
from ivif.train.validation import check_selection

__all__ = ["CONFIGS", "ModelConfig", "PhysicsConfig", "TrainConfig", "get_config"]

Posterior = Literal["statistics", "spatial"]
FusionLoss = Literal["official", "max"]
FusionIR = Literal["aligned", "raw"]
Consistency = Literal["convex", "additive"]


@dataclasses.dataclass(frozen=True)
class PhysicsConfig:
    """Constants of the three guidance operators (spec §4.4)."""

    lambda_heat: float = 0.05
    lambda_structure: float = 0.15
    lambda_consistency: float = 0.10
    gamma: float = 5.0
    structure_threshold: float = 1.5
    ir_weight: float = 0.6
    vi_weight: float = 0.4
    #: "convex" = the code's (1 − λ)·z + λ·(…); "additive" = the paper's z + λ·(…).
    consistency: Consistency = "convex"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network widths, posterior form and sampler of one HCLFuse model."""

    #: Encoder/decoder base width C (official 64: scales C, 2C, 4C).
    width: int = 64
    stem_kernel: int = 5
    latent_channels: int = 2
    #: "statistics" = the code's global mean/std of the bottleneck map (2 scalars per channel,
    #: spatially white sample); "spatial" = the paper's per-pixel q(Z|F) = N(μ, σ²).
    posterior: Posterior = "statistics"
    unet: UNetConfig = dataclasses.field(default_factory=UNetConfig)
    train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampling_steps: int = 20
    physics: PhysicsConfig = dataclasses.field(default_factory=PhysicsConfig)
    #: Inputs are reflect-padded to a multiple of this (official 64).
    pad_multiple: int = 64
    #: Give the decoder the encoder's full-resolution stem features (a deviation; the official
    #: decoder's finest skip is at 1/2 resolution, see docs/methods/hclfuse.md).
    full_resolution_skip: bool = False
    #: Further zero-initialised residual blocks at full resolution after that skip, each
    #: ``h + Conv(LeakyReLU(Conv(LeakyReLU(Conv([h, S])))))`` with 2C hidden channels (a deviation).
    detail_blocks: int = 0

    def __post_init__(self) -> None:
        if self.width < 1 or self.stem_kernel % 2 == 0:
            raise ValueError("width must be positive and stem_kernel odd")
        if self.unet.in_channels != 2 * self.latent_channels:
            raise ValueError("the UNet input is [condition, x_t]: 2 × latent_channels")
        if self.unet.out_channels != self.latent_channels:
            raise ValueError("the UNet predicts noise of latent_channels channels")
        if self.detail_blocks < 0 or (self.detail_blocks and not self.full_resolution_skip):
            raise ValueError("detail_blocks must be ≥ 0 and needs full_resolution_skip")
        if self.pad_multiple % 8:
            raise ValueError("pad_multiple must be a multiple of 8 (three stride-2 stages)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        unet = dict(data.pop("unet"))
        for key in ("channel_mult", "attention_levels"):
            unet[key] = tuple(unet[key])
        return cls(unet=UNetConfig(**unet), physics=PhysicsConfig(**data.pop("physics")), **data)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The training recipe (spec §5; CPU deviations documented in docs/methods/hclfuse.md).

    The defaults use the ``max`` fusion loss on raw images (chosen on TNO validation); the shipped
    ``hclfuse-cpu`` weights are a fine-tune with these losses (``benchmarks/configs/``).
    """

    patch_size: int = 128
    batch_size: int = 4
    #: Scale applied to every training image before cropping (official: 0.3 × MSRS).
    image_scale: float = 1.0
    hflip: bool = True
    #: Independent log-uniform gains for the infrared and visible crops (None: off); teaches the
    #: black level of dark scenes that bright training sets lack (docs, deviation 19).
    exposure: tuple[float, float] | None = None
    #: Largest standard deviation (on [0, 1]) of the Gaussian noise added to each source crop
    #: after the exposure gain (0: off); keeps the model from smoothing away fine texture
    #: (docs, deviation 22).
    sensor_noise: float = 0.0
    learning_rate: float = 3e-4
    min_learning_rate: float = 1e-5
    warmup_steps: int = 100
    max_steps: int = 2800
    ema_decay: float = 0.999
    #: DDIM steps of the differentiable training chain, and how many of the last keep gradients.
    chain_steps: int = 5
    chain_grad_steps: int | None = None
    noise_weight: float = 100.0
    kl_weight: float = 10.0
    fusion_weight: float = 10.0
    #: "official" = MSE(F, X) + MSE(F, Y) + MSE(|∇F|, max |∇|) (spec §5.1); "max" =
    #: L1(F, max(X, Y)) + gradient_weight·L1(|∇F|, max |∇|) (a deviation, see the docs).
    fusion_loss: FusionLoss = "max"
    #: The shipped weights' last stage used 10 (SeAFusion's texture weight; docs, deviation 18).
    gradient_weight: float = 10.0
    #: ``max`` loss only: weight of :func:`ivif.nn.difference_loss`, the max-gradient term on
    #: neighbour differences, the finest scale Sobel cannot see (0: off; docs, deviation 21).
    difference_weight: float = 0.0
    #: Infrared X in the fusion loss: the OT-aligned X′ (official) or the raw image.
    fusion_ir: FusionIR = "raw"
    #: ε inside the loss's Sobel square root (official 0: NaN gradient at flat patches).
    sobel_eps: float = 1e-8
    ot_epsilon: float = 0.2
    ot_iterations: int = 30
    #: X′ = blend·P·Y + (1 − blend)·X (official 0.8; 0 gives X′ = X, the test-time input).
    ot_blend: float = 0.0
    #: Visible levels of the OT histogram (None: exact unique values).
    ot_vi_levels: int | None = 1024
    seed: int = 230
    #: Weights (.safetensors) to start from instead of a random initialisation ("": random).
    init_weights: str = ""
    log_every: int = 10
    checkpoint_every: int = 50
    validate_every: int = 400
    val_pairs: int = 8
    #: Stop after this many validations without improvement (0: never stop early).
    patience: int = 4
    #: The validation value that picks ``best.safetensors``: the loss ``score`` or a logged
    #: metric (``SF``, ``VIF``, ``Qabf``, …; higher is better for those).
    select_by: str = "score"
    #: Keep every validation's EMA weights (``validated/step-N.safetensors``).
    keep_validated: bool = False

    def __post_init__(self) -> None:
        if self.fusion_loss not in ("official", "max"):
            raise ValueError(f"fusion_loss must be 'official' or 'max', got {self.fusion_loss!r}")
        if self.fusion_ir not in ("aligned", "raw"):
            raise ValueError(f"fusion_ir must be 'aligned' or 'raw', got {self.fusion_ir!r}")
        check_selection(self.select_by)
        if self.difference_weight and self.fusion_loss != "max":
            raise ValueError("difference_weight applies to the 'max' fusion loss only")
        if self.exposure is not None:
            object.__setattr__(self, "exposure", tuple(self.exposure))  # JSON gives a list
        if (self.exposure is not None or self.sensor_noise) and self.ot_blend != 0.0:
            raise ValueError(
                "exposure and sensor_noise need ot_blend = 0: the OT-aligned infrared is computed"
                " once per image and would not follow the infrared crop's gain or noise"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


OFFICIAL = ModelConfig()

CPU = ModelConfig(
    width=16,
    posterior="spatial",
    unet=UNetConfig(
        channels=32,
        channel_mult=(1, 2, 2),
        num_res_blocks=1,
        attention_levels=(),
        mid_attention=False,
        norm_groups=8,
    ),
    pad_multiple=32,
    full_resolution_skip=True,
    detail_blocks=2,
)

CONFIGS: dict[str, ModelConfig] = {"official": OFFICIAL, "cpu": CPU}


def get_config(name: str) -> ModelConfig:
    """A named model configuration (``official`` or ``cpu``)."""
    try:
        return CONFIGS[name]
    except KeyError:
        raise InputError(f"unknown HCLFuse config {name!r}; choose {', '.join(CONFIGS)}") from None
