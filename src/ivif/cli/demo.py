"""``ivif demo``: fuse the shipped sample pairs with every registered method."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ivif.api import fuse_arrays, load_pair
from ivif.io import write_image
from ivif.methods import available_methods, create_method
from ivif.samples import sample_pairs
from ivif.viz import contact_sheet


def add_parser(subparsers, argv=None) -> None:
    parser = subparsers.add_parser("demo", help="fuse the shipped sample pairs with every method")
    parser.add_argument(
        "-o", "--output", default="ivif-demo", help="output folder (default ./ivif-demo)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    pairs = sample_pairs()
    names = available_methods()
    rows = []
    for pair in pairs:
        ir, vi = load_pair(pair.ir, pair.vi)
        rows.append([ir, vi])
    for name in names:
        method = create_method(name)
        for pair, row in tqdm(
            list(zip(pairs, rows, strict=True)), desc=name, unit="pair", file=sys.stderr
        ):
            fused = fuse_arrays(method, row[0], row[1], seed=0)
            write_image(out / name / f"{pair.name}.png", fused)
            row.append(fused)
    overview = write_image(
        out / "overview.png",
        contact_sheet(rows, ["infrared", "visible", *names], [p.name for p in pairs]),
    )
    print(f"fused {len(pairs)} sample pairs with {len(names)} methods ({', '.join(names)})")
    print(f"  images:   {out}/<method>/<pair>.png")
    print(f"  overview: {overview}")
    return 0
