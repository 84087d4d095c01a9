"""Dif-CDFusion against the ``average`` and ``laplacian`` baselines on MSRS test.

Fuses an evenly spaced subset of ``--pairs`` pairs (all 361 by default) of
``../shared/data/msrs/test`` with each of ``--methods`` (``ivif.api.fuse_arrays``, seed 0),
evaluates every result with :func:`ivif.evaluation.evaluate_arrays` under the ``tang`` convention
(gray images), and measures colour fidelity as mean ``|ΔCb| + |ΔCr|`` (BT.601 full range, 8-bit
levels) of the fused RGB against the visible image. One row per (pair, method) is appended to
``benchmarks/results/difcdfusion_msrs.csv`` (an interrupted run resumes; methods can be run in
separate processes); ``--summary`` writes the means over the pairs every method has to ``.json``
and ``.md``. ``--import-rows CSV`` copies baseline rows that another run (e.g.
``benchmarks/hclfuse_msrs.py``, same fusion call and metrics) already computed, with ``dCbCr``
left empty; the colour figure of a method is the mean over the rows that have it.
``--reverse`` starts from the last pair, so a second process can share the work (each re-reads
the CSV before every pair); ``--stride K`` orders the pairs every K-th first, so that a run
stopped early still covers the set evenly. ``--fused-dir runs/full_protocol/fused/msrs`` also writes the fused images (and seconds per
pair) where ``ivif bench msrs/test -o runs/full_protocol`` looks for them.

    .venv/bin/python benchmarks/difcdfusion_msrs.py --methods average laplacian difcdfusion
    .venv/bin/python benchmarks/difcdfusion_msrs.py --summary
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ivif.api import fuse_arrays, load_pair
from ivif.color import rgb_to_ycbcr
from ivif.data import load_pairs
from ivif.evaluation import evaluate_arrays
from ivif.io import to_tensor, write_image
from ivif.methods import create_method

ROOT = Path(__file__).resolve().parents[1]
MSRS = ROOT.parent / "shared" / "data" / "msrs" / "test"
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("EN", "SD", "SF", "AG", "MI", "VIF", "Qabf", "SCD", "SSIM")
COLUMNS = ("pair", "method", *METRICS, "dCbCr")
ORDER = ("difcdfusion", "average", "laplacian")


def chroma_error(fused: np.ndarray, vi: np.ndarray) -> float:
    """Mean ``|ΔCb| + |ΔCr|`` in 8-bit levels between two uint8 RGB images."""
    f, v = (rgb_to_ycbcr(to_tensor(x).double())[:, 1:] for x in (fused, vi))
    diff = (f - v).abs().mean(dim=(0, 2, 3)) * 255.0
    return float(diff.sum())


def _done(csv_path: Path) -> set[tuple[str, str]]:
    with csv_path.open(newline="") as handle:
        return {(row["pair"], row["method"]) for row in csv.DictReader(handle)}


def run(
    methods: list[str],
    count: int,
    csv_path: Path,
    weights: str,
    fused_dir: Path | None,
    reverse: bool = False,
    stride: int = 1,
) -> None:
    pairs = load_pairs(MSRS)
    picks = np.unique(np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round())
    picked = [pairs[int(i)] for i in picks]
    # every stride-th pair first, so that an unfinished run still covers the set evenly
    chosen = [pair for offset in range(stride) for pair in picked[offset::stride]]
    if reverse:
        chosen.reverse()
    options = {"difcdfusion": {"weights": weights}} if weights else {}
    fusers = {name: create_method(name, **options.get(name, {})) for name in methods}
    if not csv_path.exists():
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        csv_path.write_text(",".join(COLUMNS) + "\n")
    for pair in tqdm(chosen, desc="msrs", unit="pair"):
        done = _done(csv_path)  # re-read: a second process may fill the CSV from the other end
        todo = [name for name in fusers if (pair.name, name) not in done]
        if not todo:
            continue
        ir, vi = load_pair(pair.ir, pair.vi)
        for name in todo:
            start = time.perf_counter()
            fused = fuse_arrays(fusers[name], ir, vi, seed=0)
            if fused_dir is not None:
                save_fused(fused_dir / name, pair.name, fused, time.perf_counter() - start)
            values = evaluate_arrays(ir, vi, fused, metrics=list(METRICS), convention="tang")
            values["dCbCr"] = chroma_error(fused, vi)
            with csv_path.open("a", newline="") as handle:
                csv.writer(handle).writerow(
                    [pair.name, name, *(f"{values[m]:.6g}" for m in COLUMNS[2:])]
                )


def save_fused(folder: Path, name: str, fused: np.ndarray, seconds: float) -> None:
    """Write ``folder/<name>.png`` and a ``timing.csv`` row as ``ivif bench`` does, so that the
    full-protocol benchmark reuses the images instead of fusing them again."""
    write_image(folder / f"{name}.png", fused)
    timing = folder / "timing.csv"
    new = not timing.exists()
    with timing.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(("image", "seconds"))
        writer.writerow((name, f"{seconds:.6f}"))


def summarise(csv_path: Path) -> None:
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    unique = {}
    for row in rows:  # two processes meeting in the middle may both have written one pair
        unique.setdefault((row["pair"], row["method"]), row)
    rows = list(unique.values())
    methods = [m for m in ORDER if any(r["method"] == m for r in rows)]
    common = set.intersection(*({r["pair"] for r in rows if r["method"] == m} for m in methods))
    keys = COLUMNS[2:]
    means = {
        m: {
            k: float(
                np.mean(
                    [
                        float(r[k])
                        for r in rows
                        if r["method"] == m and r["pair"] in common and r[k] != ""
                    ]
                )
            )
            for k in keys
        }
        for m in methods
    }
    beats = {}
    if "difcdfusion" in means:
        for k in ("SD", "SF", "AG", "VIF", "Qabf"):
            beats[k] = all(
                means["difcdfusion"][k] > means[m][k]
                for m in ("average", "laplacian")
                if m in means
            )
    summary = {
        "dataset": "msrs/test",
        "pairs": len(common),
        "convention": "tang",
        "seed": 0,
        "means": means,
        "difcdfusion_beats_both_baselines": beats,
    }
    csv_path.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [
        "# Dif-CDFusion on MSRS test (tang metrics, colour fidelity)",
        "",
        f"{len(common)} of 361 pairs (evenly spaced), `ivif.evaluation.evaluate_arrays(..., "
        'convention="tang")` on the uint8 fused images (gray); seed 0; Dif-CDFusion trained on '
        "RoadScene only (cross-dataset). dCbCr = mean |ΔCb| + |ΔCr| against the visible image "
        "in 8-bit levels (the baselines re-attach the visible chroma, so theirs is rounding only).",
        "",
        "| method | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
        *(f"| {m} | " + " | ".join(f"{means[m][k]:.4g}" for k in keys) + " |" for m in methods),
        "",
        f"Dif-CDFusion above both baselines: {beats}",
        "",
    ]
    csv_path.with_suffix(".md").write_text("\n".join(lines))


def import_rows(source: Path, csv_path: Path) -> None:
    """Append the baseline rows of ``source`` that ``csv_path`` lacks (``dCbCr`` empty)."""
    existing: set[tuple[str, str]] = set()
    if csv_path.exists():
        with csv_path.open(newline="") as handle:
            existing = {(row["pair"], row["method"]) for row in csv.DictReader(handle)}
    else:
        csv_path.write_text(",".join(COLUMNS) + "\n")
    with source.open(newline="") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if r["method"] in ("average", "laplacian") and (r["pair"], r["method"]) not in existing
        ]
    with csv_path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow([row["pair"], row["method"], *(row[m] for m in METRICS), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=ORDER, default=list(ORDER))
    parser.add_argument("--pairs", type=int, default=361)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", default="", help="Dif-CDFusion weights prefix")
    parser.add_argument("--summary", action="store_true", help="only write the summary")
    parser.add_argument("--import-rows", type=Path, help="baseline rows computed elsewhere")
    parser.add_argument("--out", type=Path, default=RESULTS / "difcdfusion_msrs.csv")
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="last pair first: a second process fills the same CSV from the other end",
    )
    parser.add_argument(
        "--stride", type=int, default=1, help="order: every K-th pair first, then the next …"
    )
    parser.add_argument(
        "--fused-dir",
        type=Path,
        help="also save the fused images as FUSED_DIR/<method>/<pair>.png (ivif bench layout, "
        "e.g. runs/full_protocol/fused/msrs)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.import_rows:
        import_rows(args.import_rows, args.out)
    if not args.summary:
        run(
            args.methods,
            args.pairs,
            args.out,
            args.weights,
            args.fused_dir,
            args.reverse,
            max(1, args.stride),
        )
    summarise(args.out)


if __name__ == "__main__":
    main()
