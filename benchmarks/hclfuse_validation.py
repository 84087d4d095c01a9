"""HCLFuse inference variants on the validation pairs (TNO test, 8 evenly spaced pairs).

Compares the physical-consistency forms (``convex`` = code, ``additive`` = paper) and the two
encoder channel orders on one weights file, with the tang metrics of
:func:`ivif.evaluation.evaluate_arrays` (seed 0, 20 steps). Writes
``benchmarks/results/hclfuse_validation.json``.

    .venv/bin/python benchmarks/hclfuse_validation.py [--weights FILE] [--pairs 8]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tno_validation import validation_means, validation_pairs

from ivif.methods import create_method

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "convex (code)": {"consistency": "convex"},
    "additive (paper)": {"consistency": "additive"},
    "convex, vi_ir order": {"consistency": "convex", "channel_order": "vi_ir"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/hclfuse_validation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names, images = validation_pairs(args.pairs)
    results = {}
    for label, options in VARIANTS.items():
        method = create_method("hclfuse", weights=args.weights, **options)
        results[label] = validation_means(method, images)
        print(label, {k: round(v, 4) for k, v in results[label].items()}, flush=True)
    summary = {
        "dataset": "tno/test",
        "pairs": names,
        "weights": args.weights or "shipped cpu",
        "convention": "tang",
        "seed": 0,
        "steps": 20,
        "means": results,
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
