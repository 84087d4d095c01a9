"""A learned method's weights on the TNO validation pairs (8 evenly spaced of ``tno/test``).

The model-selection view the model cards quote: each pair fused with ``--method`` (seed 0,
``ivif.api.fuse_arrays``) and scored with the ``tang`` metrics of
:func:`ivif.evaluation.evaluate_arrays`; prints the means, and with ``--out`` writes them as JSON.
TNO is the validation set of the data protocol, never a test set.

    .venv/bin/python benchmarks/tno_validation.py --method difcdfusion [--weights PREFIX]
    .venv/bin/python benchmarks/tno_validation.py --method hclfuse --weights FILE.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ivif.api import fuse_arrays, load_pair
from ivif.data import load_pairs
from ivif.evaluation import evaluate_arrays
from ivif.methods import FusionMethod, create_method

ROOT = Path(__file__).resolve().parents[1]
TNO = ROOT.parent / "shared" / "data" / "tno" / "test"
METRICS = ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SCD", "SSIM")


def validation_pairs(count: int = 8) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """Names and loaded images of ``count`` evenly spaced TNO pairs (the training loops' picks)."""
    pairs = load_pairs(TNO)
    picks = np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round().astype(int)
    return [pairs[i].name for i in picks], [load_pair(pairs[i].ir, pairs[i].vi) for i in picks]


def validation_means(
    method: FusionMethod, images: list[tuple[np.ndarray, np.ndarray]], metrics=METRICS
) -> dict[str, float]:
    """Mean ``tang`` metrics of ``method`` (seed 0) over the pairs."""
    sums = dict.fromkeys(metrics, 0.0)
    for ir, vi in images:
        fused = fuse_arrays(method, ir, vi, seed=0)
        values = evaluate_arrays(ir, vi, fused, metrics=list(metrics), convention="tang")
        for name in metrics:
            sums[name] += values[name] / len(images)
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True, choices=("hclfuse", "difcdfusion"))
    parser.add_argument("--weights", default="", help="weights file or prefix (default: shipped)")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the means to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names, images = validation_pairs(args.pairs)
    means = validation_means(create_method(args.method, weights=args.weights), images)
    print(args.weights or "shipped", {k: round(v, 4) for k, v in means.items()})
    if args.out:
        summary = {"method": args.method, "weights": args.weights or "shipped", "pairs": names}
        args.out.write_text(json.dumps({**summary, "means": means}, indent=2) + "\n")


if __name__ == "__main__":
    main()
