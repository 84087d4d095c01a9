"""``ivif demo``: fuse the shipped sample pairs with every registered method and write the
benchmark report for them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ivif.data import Dataset
from ivif.io import read_image, write_image
from ivif.methods import available_methods
from ivif.samples import sample_folder
from ivif.viz import contact_sheet


def add_parser(subparsers, argv=None) -> None:
    parser = subparsers.add_parser("demo", help="fuse the shipped sample pairs with every method")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("ivif-demo"),
        help="output folder (default ./ivif-demo)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ivif.bench import BenchConfig, run_benchmark, write_outputs  # matplotlib: load on use

    samples = Dataset("samples", sample_folder() / "ir", sample_folder() / "vi")
    methods = available_methods()
    config = BenchConfig(
        datasets=[samples], methods=methods, output=args.output, overwrite=True, jobs=1
    )
    results = run_benchmark(config)
    paths = write_outputs(results, grid_images=4)
    pairs, _ = samples.pairs()
    failed = sorted({method for (_, _, method) in results.failures})
    shown = [m for m in methods if m not in failed]
    rows = [
        [read_image(p.ir), read_image(p.vi)]
        + [read_image(args.output / "fused" / samples.key / m / f"{p.name}.png") for m in shown]
        for p in pairs
    ]
    overview = write_image(
        args.output / "overview.png",
        contact_sheet(rows, ["infrared", "visible", *shown], [p.name for p in pairs]),
    )
    print(f"fused {len(pairs)} sample pairs with {len(shown)} methods ({', '.join(shown)})")
    if failed:
        print(f"  failed:   {', '.join(failed)} (reasons in {paths['summary']})")
    print(f"  images:   {args.output / 'fused' / samples.key}/<method>/<pair>.png")
    print(f"  overview: {overview}")
    print(f"  tables:   {paths['summary']}")
    print(f"  report:   {paths['report'].resolve()}")
    return 0
