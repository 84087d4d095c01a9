"""Dif-CDFusion configurations: ``official`` (published sizes) and ``cpu`` (sized for 2 CPU cores).

Section numbers refer to the clean-room spec ``difcdfusion.md``. :class:`ModelConfig` fixes the
two diffusion feature extractors and the fusion network; :class:`TrainConfig` the three training
stages (``ddpm-ir``, ``ddpm-vi``, ``fusion``). The decisions of spec §9.4 are named fields:
``query_modality``, ``share_diffusion_weights``, ``color_loss_grad``, ``diff_input_range``,
``t_feat``, ``symmetric_cdaf`` and ``perceptual``; ``input_skip`` is ours (docs/methods).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from ivif.errors import InputError
from ivif.nn.unet import UNetConfig
from ivif.train.validation import check_selection

__all__ = ["CONFIGS", "ModelConfig", "TrainConfig", "get_config"]

QueryModality = Literal["ir", "vis"]
InputRange = Literal["-1..1", "0..255"]
Perceptual = Literal["none", "random", "vgg16"]
LossSpace = Literal["rgb", "luma"]
InputSkip = Literal["none", "projection", "head"]


def _sr3_unet(
    channels: int, width: int, mult: tuple[int, ...], blocks: int, groups: int, dropout: float
) -> UNetConfig:
    """An unconditional SR3-style denoiser: γ-conditioned, attention only in the middle."""
    return UNetConfig(
        in_channels=channels,
        out_channels=channels,
        channels=width,
        channel_mult=mult,
        num_res_blocks=blocks,
        attention_levels=(),
        mid_attention=True,
        norm_groups=groups,
        dropout=dropout,
        conditioning="noise_level",
        attention_bias=False,
    )


#: The published denoiser (spec §2.2): width 128, multipliers 1-2-4-8-8, 2 ResBlocks, dropout 0.2.
OFFICIAL_UNET = _sr3_unet(3, 128, (1, 2, 4, 8, 8), 2, 32, 0.2)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The two extractors (§2) and the common–differential fusion network (§3–4)."""

    #: Denoiser of the infrared image (1 input channel, or 3 = IR replicated as coded).
    ir_unet: UNetConfig = OFFICIAL_UNET
    #: Denoiser of the visible RGB image.
    vi_unet: UNetConfig = OFFICIAL_UNET
    #: Linear β schedule of the diffusion (§2.1).
    timesteps: int = 2000
    beta_start: float = 1e-6
    beta_end: float = 1e-2
    #: The one timestep whose noisy forward pass gives the features (§2.3).
    t_feat: int = 100
    #: Scaling of images fed to the denoisers: "-1..1" (SR3) or "0..255" (the code's tensors).
    diff_input_range: InputRange = "-1..1"
    #: True: the infrared branch uses the visible denoiser too (the code's loading bug, fixed).
    share_diffusion_weights: bool = False
    #: Embedding width C of the fusion network (the features are projected if it differs).
    fusion_channels: int = 128
    heads: int = 4
    mlp_ratio: int = 3
    #: Whose features form the attention queries: "ir" (the code's swap) or "vis" (ATFuse).
    query_modality: QueryModality = "ir"
    #: False: the code's single chain D → C₁ → C₂ (§3.5); True: the figure's two streams.
    symmetric_cdaf: bool = False
    #: Ours: where the source images (in the denoisers' input range) join the fusion network.
    #: "none": features only (spec); "projection": each image, as 3 channels, beside its own
    #: feature map before the projection to C; "head": the infrared and visible images
    #: (1 + 3 channels) beside the head's pooled map, before its last two ResBlocks.
    input_skip: InputSkip = "none"
    #: Ours: zero-initialised residual blocks on the output, each ``y + body([y, ir, vi])``
    #: with two hidden 3×3 convs of C channels (needs ``input_skip``; docs/methods).
    detail_blocks: int = 0

    def __post_init__(self) -> None:
        for name, unet in (("ir_unet", self.ir_unet), ("vi_unet", self.vi_unet)):
            if unet.in_channels != unet.out_channels or unet.conditioning != "noise_level":
                raise ValueError(f"{name}: an ε-predicting, γ-conditioned denoiser is required")
        if self.ir_unet.in_channels not in (1, 3) or self.vi_unet.in_channels != 3:
            raise ValueError("the infrared denoiser takes 1 or 3 channels, the visible one 3")
        if not 1 <= self.t_feat <= self.timesteps:
            raise ValueError(f"t_feat must lie in [1, {self.timesteps}], got {self.t_feat}")
        c = self.fusion_channels
        if c < 4 or c % 4 or c % self.heads:
            raise ValueError("fusion_channels must be a multiple of 4 and of heads")
        if self.query_modality not in ("ir", "vis"):
            raise ValueError(f"query_modality must be 'ir' or 'vis', got {self.query_modality!r}")
        if self.diff_input_range not in ("-1..1", "0..255"):
            raise ValueError(f"unknown diff_input_range {self.diff_input_range!r}")
        if self.input_skip not in ("none", "projection", "head"):
            raise ValueError(
                f"input_skip must be 'none', 'projection' or 'head', got {self.input_skip!r}"
            )
        if self.detail_blocks < 0 or (self.detail_blocks and self.input_skip == "none"):
            raise ValueError("detail_blocks must be ≥ 0 and needs the source images (input_skip)")

    @property
    def pad_multiple(self) -> int:
        """Inputs are padded to this multiple: the UNet's down-sampling and the ×2 head."""
        levels = max(len(self.ir_unet.channel_mult), len(self.vi_unet.channel_mult))
        return math.lcm(2 ** (levels - 1), 2)

    @property
    def feature_channels(self) -> int:
        return self.vi_unet.channels * self.vi_unet.channel_mult[0]

    @property
    def projection_inputs(self) -> int:
        """Channels entering the projection to C: the features, plus 3 with ``"projection"``."""
        return self.feature_channels + (3 if self.input_skip == "projection" else 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        for key in ("ir_unet", "vi_unet"):
            unet = dict(data.pop(key))
            for field in ("channel_mult", "attention_levels"):
                unet[field] = tuple(unet[field])
            data[key] = UNetConfig(**unet)
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The three training stages (spec §2.4 and §6; CPU deviations in docs/methods)."""

    seed: int = 0
    # Stage ddpm-ir / ddpm-vi: ε-prediction with SR3's continuous γ (§2.4).
    ddpm_steps: int = 30_000
    ddpm_patch: int = 160
    ddpm_batch: int = 1
    ddpm_lr: float = 1e-4
    #: Highest timestep drawn in pre-training (the schedule's T = faithful).
    ddpm_max_t: int = 2000
    # Stage fusion (§5–6).
    fusion_steps: int = 3000
    fusion_patch: int = 128
    fusion_batch: int = 22
    fusion_lr: float = 1e-4
    grad_weight: float = 20.0
    #: Weight of :func:`ivif.nn.difference_loss`, the max-gradient term on neighbour
    #: differences, the finest scale Sobel cannot see (0: off; docs, deviation 19).
    difference_weight: float = 0.0
    intensity_weight: float = 20.0
    perceptual_weight: float = 3.0
    color_weight: float = 0.5
    #: "rgb": intensity and gradient terms per RGB channel (spec §5); "luma": on the BT.601 luma
    #: of F and V (the infrared image is already one plane), leaving chroma to the colour term.
    loss_space: LossSpace = "rgb"
    #: Initial fusion-network weights: "normal" (spec §4, N(0, 0.02)) or "pytorch" (default).
    fusion_init: Literal["normal", "pytorch"] = "normal"
    #: Fusion-network weights (.safetensors) to fine-tune instead of initialising ("": none).
    fusion_init_weights: str = ""
    #: Independent log-uniform gains for the infrared and visible crops (None: off), as in
    #: HCLFuse: dark scenes that the bright training set lacks (docs, "Training").
    exposure: tuple[float, float] | None = None
    #: Largest standard deviation (on [0, 1]) of the Gaussian noise added to each source crop
    #: after the exposure gain, one field per source (fusion stage; 0: off; docs, deviation 20).
    sensor_noise: float = 0.0
    #: True: the colour loss is differentiable (intended); False: a constant, as coded.
    color_loss_grad: bool = True
    #: "vgg16" needs ``vgg_weights`` (a local safetensors file of VGG-16 ``features``);
    #: "random" is a frozen, seeded random VGG-like stack; "none" drops the term.
    perceptual: Perceptual = "vgg16"
    vgg_weights: str = ""
    # Shared by every stage.
    min_lr_ratio: float = 0.05
    warmup_steps: int = 50
    ema_decay: float = 0.999
    hflip: bool = True
    log_every: int = 10
    checkpoint_every: int = 50
    validate_every: int = 250
    val_pairs: int = 4
    #: Fusion stage: the validation value that picks ``best.safetensors`` (the loss ``score``,
    #: ``chroma_levels`` or a logged metric such as ``Qabf``); the denoisers use their loss.
    select_by: str = "score"
    #: Keep every validation's EMA weights (``validated/step-N.safetensors``).
    keep_validated: bool = False

    def __post_init__(self) -> None:
        if self.perceptual not in ("none", "random", "vgg16"):
            raise ValueError(f"unknown perceptual loss {self.perceptual!r}")
        if self.loss_space not in ("rgb", "luma"):
            raise ValueError(f"unknown loss_space {self.loss_space!r}")
        if self.fusion_init not in ("normal", "pytorch"):
            raise ValueError(f"unknown fusion_init {self.fusion_init!r}")
        if self.ddpm_max_t < 1:
            raise ValueError("ddpm_max_t must be >= 1")
        check_selection(self.select_by, extra=("chroma_levels",))
        if self.exposure is not None:
            object.__setattr__(self, "exposure", tuple(self.exposure))  # JSON gives a list

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Named configurations. ``official``: the published sizes (2 × 370 M-parameter UNets, C = 128).
#: ``cpu``: measured on 2 cores (docs/methods/difcdfusion.md, "Sizing").
CONFIGS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    "official": (ModelConfig(), TrainConfig()),
    "cpu": (
        ModelConfig(
            ir_unet=_sr3_unet(1, 16, (1, 2, 2, 4), 1, 8, 0.0),
            vi_unet=_sr3_unet(3, 16, (1, 2, 2, 4), 1, 8, 0.0),
            fusion_channels=24,
            heads=2,
            input_skip="head",
            detail_blocks=2,
        ),
        TrainConfig(
            ddpm_steps=2000,
            ddpm_patch=64,
            ddpm_batch=8,
            ddpm_lr=2e-4,
            fusion_steps=1500,
            fusion_patch=64,
            fusion_batch=6,
            fusion_lr=2e-4,
            perceptual="random",
        ),
    ),
}


def get_config(name: str) -> tuple[ModelConfig, TrainConfig]:
    try:
        return CONFIGS[name]
    except KeyError:
        raise InputError(
            f"unknown Dif-CDFusion config {name!r}; known: {', '.join(CONFIGS)}"
        ) from None
