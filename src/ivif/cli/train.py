"""``ivif train METHOD``: train a learned method on paired folders (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ivif.errors import InputError
from ivif.train import TrainResult, train


def _train_hclfuse(args: argparse.Namespace) -> TrainResult:
    from ivif.methods.hclfuse.config import CONFIGS, ModelConfig
    from ivif.methods.hclfuse.training import HCLFuseTask, loop_config, train_config_from

    overrides: dict[str, Any] = {}
    if args.config in CONFIGS:
        model_config = CONFIGS[args.config]
    else:
        path = Path(args.config)
        if not path.is_file():
            raise InputError(
                f"--config: {args.config!r} is neither {', '.join(CONFIGS)} nor a file"
            )
        data = json.loads(path.read_text())
        model_config = ModelConfig.from_dict(data["model"]) if "model" in data else CONFIGS["cpu"]
        overrides = data.get("train", {})
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    try:
        train_config = train_config_from(overrides)
    except (TypeError, ValueError) as exc:
        raise InputError(f"--config: {exc}") from None
    task = HCLFuseTask(model_config, train_config, args.data, args.val)
    if task.fresh_parameters:
        print(
            f"init_weights lacks {len(task.fresh_parameters)} tensors; they start from their "
            f"initialisation: {', '.join(task.fresh_parameters)}",
            file=sys.stderr,
        )
    run_dir = Path(args.run_dir or "runs/hclfuse")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(task.describe({}), indent=2) + "\n")
    return train(task, loop_config(train_config), run_dir, resume=args.resume)


def _train_difcdfusion(args: argparse.Namespace) -> TrainResult:
    from ivif.methods.difcdfusion.training import run_stage

    if args.stage is None:
        raise InputError("difcdfusion: --stage ddpm-ir|ddpm-vi|fusion is required")
    return run_stage(
        args.stage,
        args.config,
        args.data,
        args.val,
        args.run_dir,
        args.resume,
        args.max_steps,
        args.ir_weights,
        args.vi_weights,
    )


#: Trainable methods and their entry points.
TRAINERS: dict[str, Callable[[argparse.Namespace], TrainResult]] = {
    "hclfuse": _train_hclfuse,
    "difcdfusion": _train_difcdfusion,
}


def add_parser(subparsers, argv: Sequence[str] | None = None) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a learned fusion method (resumable)",
        description="Train METHOD on --data (ir/ + vi/ pairs), validating on --val. Checkpoints "
        "go to --run-dir; --resume continues bit-identically from the last one.",
    )
    parser.add_argument(
        "method",
        choices=sorted(TRAINERS),
        metavar="METHOD",
        help=f"method to train ({', '.join(sorted(TRAINERS))})",
    )
    parser.add_argument("--data", required=True, help="training dataset folder (ir/ + vi/)")
    parser.add_argument("--val", required=True, help="validation dataset folder (ir/ + vi/)")
    parser.add_argument(
        "--config",
        default="cpu",
        help="named config (cpu, official) or a JSON file {model: …, train: …}",
    )
    parser.add_argument(
        "--run-dir", help="checkpoints and logs (default runs/hclfuse, runs/difcdfusion/STAGE)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from run-dir")
    parser.add_argument("--max-steps", type=int, help="override the configured step count")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1; results depend on it)"
    )
    parser.add_argument(
        "--stage",
        choices=("ddpm-ir", "ddpm-vi", "fusion"),
        help="difcdfusion: which stage to train (the two denoisers, then the fusion network)",
    )
    parser.add_argument("--ir-weights", help="difcdfusion fusion stage: infrared denoiser weights")
    parser.add_argument("--vi-weights", help="difcdfusion fusion stage: visible denoiser weights")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise InputError("--threads must be >= 1")
    torch.set_num_threads(args.threads)
    try:
        result = TRAINERS[args.method](args)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    print(
        f"{args.method}: stopped at step {result.step} ({result.stopped}); best validation "
        f"score {result.best_score:.5g} at step {result.best_step}; {result.seconds:.0f} s"
    )
    return 130 if result.stopped == "interrupted" else 0
