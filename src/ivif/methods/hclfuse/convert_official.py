"""Convert the official HCLFuse checkpoint (``lxq-jnu/HCLFuse``) to ivif's safetensors layout.

Usage::

    python -m ivif.methods.hclfuse.convert_official CHECKPOINT.pth.tar hclfuse-official.safetensors
    ivif fuse IR VI -o OUT --method hclfuse --weights hclfuse-official.safetensors \\
        --channel-order vi_ir   # the official test-time input order (spec §2.9 D1)

The official file is a torch pickle holding ``state_dict`` (``nn.DataParallel`` names with a
``module.`` prefix), the optimiser, the EMA shadow (``ema_helper``) and counters. It is read with
``torch.load(weights_only=True)`` (no code execution). ``--ema`` converts the EMA shadow instead
of the raw weights (the official test code uses the raw weights). The unused
``info_gradient_estimator`` (3,522 parameters) is dropped.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ivif.errors import InputError
from ivif.methods.hclfuse.config import OFFICIAL
from ivif.methods.hclfuse.model import HCLFuseNet
from ivif.nn import save_weights

__all__ = ["convert_state_dict", "main", "official_name_to_ivif"]

#: (official pattern, ivif replacement); the first match wins. Sequential indices of the ivif
#: conv stacks skip the LeakyReLU modules (0, 2, 4).
_RULES: tuple[tuple[str, str], ...] = (
    (r"^Unet\.(.+)$", r"unet.\1"),
    (r"^encoder\.ReconNet\.pyramid\.convs\.(\d)\.(.+)$", r"encoder.stem.\1.\2"),
    (
        r"^encoder\.ReconNet\.pyramid\.block(\d)\.model\.(\d)\.(.+)$",
        r"encoder.blocks.\1.body.\2.\3",
    ),
    (r"^encoder\.ReconNet\.pyramid\.block(\d)\.conv\.(.+)$", r"encoder.blocks.\1.shortcut.\2"),
    (r"^encoder\.ReconNet\.pyramid\.mask(\d)\.mask$", r"encoder.masks.\1.logits"),
    (r"^encoder\.ReconNet\.pyramid\.down(\d)\.(.+)$", r"encoder.downs.\1.\2"),
    (r"^encoder\.ReconNet\.channel_down\.conv(\d)\.(.+)$", "encoder.bottleneck.{2x}.\\2"),
    (r"^encoder\.ReconNet\.channel_up\.conv(\d)\.(.+)$", "decoder.expand.{2x}.\\2"),
    (r"^encoder\.ReconNet\.block_up(\d)\.model\.(\d)\.(.+)$", r"decoder.blocks.\1.body.\2.\3"),
    (r"^encoder\.ReconNet\.block_up(\d)\.conv\.(.+)$", r"decoder.blocks.\1.shortcut.\2"),
    (r"^encoder\.ReconNet\.up_sampling(\d)\.conv\.(.+)$", r"decoder.ups.\1.conv.\2"),
    (r"^encoder\.ReconNet\.conv2\.(.+)$", r"decoder.head.0.\1"),
    (r"^encoder\.ReconNet\.conv3\.(.+)$", r"decoder.head.2.\1"),
)
_DROPPED = re.compile(r"^info_gradient_estimator\.")


def official_name_to_ivif(name: str) -> str | None:
    """The ivif state-dict name of an official parameter (``None`` for the unused estimator)."""
    name = name.removeprefix("module.")
    if _DROPPED.match(name):
        return None
    for pattern, replacement in _RULES:
        match = re.match(pattern, name)
        if match:
            if "{2x}" in replacement:
                replacement = replacement.replace("{2x}", str(2 * int(match.group(1))))
            return match.expand(replacement)
    raise InputError(f"unexpected parameter {name!r} in the official checkpoint")


def convert_state_dict(official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official state dict and check it against the ``official`` configuration."""
    converted = {}
    for name, tensor in official.items():
        target = official_name_to_ivif(name)
        if target is not None:
            converted[target] = tensor.detach().to(torch.float32).contiguous()
    expected = HCLFuseNet(OFFICIAL).state_dict()
    missing = sorted(expected.keys() - converted.keys())
    extra = sorted(converted.keys() - expected.keys())
    if missing or extra:
        raise InputError(
            f"checkpoint does not match the official model: missing {missing[:3]}, "
            f"unexpected {extra[:3]}"
        )
    wrong = [k for k, v in expected.items() if v.shape != converted[k].shape]
    if wrong:
        raise InputError(f"shape mismatch for {wrong[:3]} (is this an HCLFuse checkpoint?)")
    return converted


def _load_official(path: Path, ema: bool) -> Mapping[str, torch.Tensor]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or unsafe pickles
        raise InputError(
            f"{path}: cannot read as a weights-only torch checkpoint ({exc})"
        ) from None
    if not isinstance(checkpoint, Mapping):
        raise InputError(f"{path}: expected a dict checkpoint, got {type(checkpoint).__name__}")
    key = "ema_helper" if ema else "state_dict"
    if key in checkpoint:
        return checkpoint[key]
    if ema:
        raise InputError(f"{path}: no 'ema_helper' entry (keys: {sorted(checkpoint)[:6]})")
    return checkpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="official .pth / .pth.tar file")
    parser.add_argument("output", type=Path, help="output .safetensors (a .json is written beside)")
    parser.add_argument("--ema", action="store_true", help="convert the EMA shadow weights")
    args = parser.parse_args(argv)
    try:
        state = convert_state_dict(_load_official(args.checkpoint, args.ema))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = {
        "method": "hclfuse",
        "model": OFFICIAL.to_dict(),
        "source": f"official checkpoint {args.checkpoint.name}" + (" (EMA)" if args.ema else ""),
        "note": "the official test code feeds [VIS-Y, IR]: fuse with --channel-order vi_ir",
    }
    save_weights(HCLFuseNet(OFFICIAL), args.output.with_suffix(".safetensors"), config, state)
    print(f"wrote {args.output.with_suffix('.safetensors')} ({len(state)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
