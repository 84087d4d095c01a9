"""A learned method against the ``average`` and ``laplacian`` baselines on MSRS test.

Fuses an evenly spaced subset of ``--pairs`` pairs (all 361 by default) of
``../shared/data/msrs/test`` with ``--method`` and the baselines (``ivif.api.fuse_arrays``,
seed 0), evaluates every result with :func:`ivif.evaluation.evaluate_arrays` under the ``tang``
convention (gray images) and, for colour output, measures colour fidelity as mean
``|ΔCb| + |ΔCr|`` (BT.601 full range, 8-bit levels) against the visible image. One row per
(pair, method) is appended to ``--out`` (default ``benchmarks/results/<method>_msrs.csv``); an
interrupted run resumes. The means over the pairs every method has go to ``.json`` and ``.md``
beside it (``--summary`` writes only those).

Sharing the work: ``--only NAME…`` runs some of the methods (e.g. the baselines in a second
process), ``--reverse`` starts from the last pair so that a second process fills the same CSV from
the other end (each re-reads the CSV before every pair), and ``--stride K`` orders the pairs every
K-th first, so that a run stopped early still covers the set evenly. ``--fused-dir
runs/full_protocol/fused/msrs_test`` also writes the fused images (and seconds per pair) where
``ivif bench`` looks for them. ``--import-rows CSV`` copies baseline rows another run computed.

    .venv/bin/python benchmarks/msrs_quality.py --method hclfuse [--weights FILE] [--stride 8]
    .venv/bin/python benchmarks/msrs_quality.py --method difcdfusion --summary
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
BASELINES = ("average", "laplacian")
#: The issues' criterion: the learned method above both baselines on these.
CRITERION = ("SD", "SF", "AG", "VIF", "Qabf")
#: Published MSRS figures we can compare with (spec, §8).
PAPER = {"hclfuse": {"AG": 6.44, "SF": 17.90}}


def chroma_error(fused: np.ndarray, vi: np.ndarray) -> float | None:
    """Mean ``|ΔCb| + |ΔCr|`` in 8-bit levels between uint8 RGB images (None for gray output)."""
    if fused.ndim != 3 or vi.ndim != 3:
        return None
    f, v = (rgb_to_ycbcr(to_tensor(x).double())[:, 1:] for x in (fused, vi))
    return float(((f - v).abs().mean(dim=(0, 2, 3)) * 255.0).sum())


def _read_rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def run(args: argparse.Namespace, methods: list[str]) -> None:
    pairs = load_pairs(MSRS)
    picks = np.unique(np.linspace(0, len(pairs) - 1, min(args.pairs, len(pairs))).round())
    picked = [pairs[int(i)] for i in picks]
    stride = max(1, args.stride)
    chosen = [pair for offset in range(stride) for pair in picked[offset::stride]]
    if args.reverse:
        chosen.reverse()
    options = {"steps": args.steps} if args.steps else {}
    if args.weights:
        options["weights"] = args.weights
    fusers = {
        name: create_method(name, **(options if name == args.method else {})) for name in methods
    }
    for pair in tqdm(chosen, desc="msrs", unit="pair"):
        done = {(row["pair"], row["method"]) for row in _read_rows(args.out)}
        todo = [name for name in fusers if (pair.name, name) not in done]
        if not todo:
            continue
        ir, vi = load_pair(pair.ir, pair.vi)
        for name in todo:
            start = time.perf_counter()
            fused = fuse_arrays(fusers[name], ir, vi, seed=0)
            if args.fused_dir is not None:
                save_fused(args.fused_dir / name, pair.name, fused, time.perf_counter() - start)
            values = evaluate_arrays(ir, vi, fused, metrics=list(METRICS), convention="tang")
            chroma = chroma_error(fused, vi)
            cells = [f"{values[m]:.6g}" for m in METRICS]
            cells.append("" if chroma is None else f"{chroma:.6g}")
            with args.out.open("a", newline="") as handle:
                csv.writer(handle).writerow([pair.name, name, *cells])


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


def import_rows(source: Path, csv_path: Path) -> None:
    """Append the baseline rows of ``source`` that ``csv_path`` lacks (``dCbCr`` if it has it)."""
    existing = {(row["pair"], row["method"]) for row in _read_rows(csv_path)}
    rows = [
        row
        for row in _read_rows(source)
        if row["method"] in BASELINES and (row["pair"], row["method"]) not in existing
    ]
    with csv_path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow([row["pair"], row["method"], *(row.get(k, "") for k in COLUMNS[2:])])


def summarise(args: argparse.Namespace) -> None:
    unique: dict[tuple[str, str], dict[str, str]] = {}
    for row in _read_rows(args.out):  # two processes meeting in the middle may both write a pair
        unique.setdefault((row["pair"], row["method"]), row)
    rows = list(unique.values())
    order = (args.method, *BASELINES)
    methods = [m for m in order if any(row["method"] == m for row in rows)]
    common = set.intersection(*({r["pair"] for r in rows if r["method"] == m} for m in methods))
    colour_rows = [r for r in rows if r["method"] == (methods[0] if methods else "")]
    keys = [*METRICS, *(["dCbCr"] if any(r["dCbCr"] for r in colour_rows) else [])]

    def mean(method: str, key: str) -> float:
        values = [
            float(r[key])
            for r in rows
            if r["method"] == method and r["pair"] in common and r[key] != ""
        ]
        return float(np.mean(values)) if values else float("nan")

    means = {m: {k: mean(m, k) for k in keys} for m in methods}
    missing = [m for m in order if m not in means]
    beats = (
        None
        if missing
        else {k: all(means[args.method][k] > means[b][k] for b in BASELINES) for k in CRITERION}
    )
    paper = PAPER.get(args.method, {})
    summary = {
        "dataset": "msrs/test",
        "pairs": len(common),
        "convention": "tang",
        "seed": 0,
        "weights": args.weights or "shipped",
        "means": means,
        "beats_both_baselines": beats,
        **({"paper": paper} if paper else {}),
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    colour = (
        " dCbCr = mean |ΔCb| + |ΔCr| against the visible image in 8-bit levels (the baselines "
        "re-attach the visible chroma, so theirs is rounding only)."
        if "dCbCr" in keys
        else ""
    )
    lines = [
        f"# {args.method} on MSRS test (tang metrics)",
        "",
        f"{len(common)} of 361 pairs (evenly spaced), `ivif.evaluation.evaluate_arrays(..., "
        f'convention="tang")` on the uint8 fused images (gray); seed 0; weights: '
        f"{summary['weights']}; trained on RoadScene only (cross-dataset).{colour}",
        "",
        "| method | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
        *(f"| {m} | " + " | ".join(f"{means[m][k]:.4g}" for k in keys) + " |" for m in methods),
        *(
            [f"| paper {args.method} | " + " | ".join(str(paper.get(k, "–")) for k in keys) + " |"]
            if paper
            else []
        ),
        "",
        f"{args.method} above both baselines: {beats}"
        if beats is not None
        else f"not compared: no rows for {', '.join(missing)} (run them, or --import-rows CSV)",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", required=True, choices=("hclfuse", "difcdfusion"))
    parser.add_argument("--only", nargs="+", help="run only these of the method and the baselines")
    parser.add_argument("--pairs", type=int, default=361)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", default="", help="the method's weights (default: shipped)")
    parser.add_argument("--steps", type=int, default=0, help="HCLFuse DDIM steps (default 20)")
    parser.add_argument("--summary", action="store_true", help="only write the summary")
    parser.add_argument("--import-rows", type=Path, help="baseline rows computed elsewhere")
    parser.add_argument("--out", type=Path, help="CSV (default results/<method>_msrs.csv)")
    parser.add_argument("--reverse", action="store_true", help="last pair first")
    parser.add_argument("--stride", type=int, default=1, help="every K-th pair first")
    parser.add_argument(
        "--fused-dir", type=Path, help="also save FUSED_DIR/<method>/<pair>.png (ivif bench)"
    )
    args = parser.parse_args()
    args.out = args.out or RESULTS / f"{args.method}_msrs.csv"
    methods = args.only or [args.method, *BASELINES]
    unknown = sorted(set(methods) - {args.method, *BASELINES})
    if unknown:
        parser.error(f"--only: not {args.method} or a baseline: {', '.join(unknown)}")
    torch.set_num_threads(args.threads)
    if not args.out.exists():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(",".join(COLUMNS) + "\n")
    if args.import_rows:
        import_rows(args.import_rows, args.out)
    if not args.summary:
        run(args, methods)
    summarise(args)


if __name__ == "__main__":
    main()
