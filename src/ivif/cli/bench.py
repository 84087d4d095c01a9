"""``ivif bench``: fuse datasets with several methods; paper-style tables and an HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ivif.api import DEFAULT_METHOD
from ivif.data import default_data_root, resolve_dataset
from ivif.errors import InputError
from ivif.methods import available_methods, get_method


def add_parser(subparsers, argv=None) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark methods on datasets: tables and an HTML report",
        description=(
            "DATA are folders holding ir/ and vi/ (pairs by file stem) or dataset names under "
            "--data-root laid out as <name>/<split>/{ir,vi} (e.g. tno, msrs/test)."
        ),
    )
    parser.add_argument("data", nargs="+", metavar="DATA", help="dataset folders or names")
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHOD,
        help="comma-separated methods, or 'all' (default %(default)s)",
    )
    parser.add_argument(
        "--convention",
        default="tang",
        help="metric convention: tang, vifb, tang2022 (default tang)",
    )
    parser.add_argument(
        "--metrics", help="comma-separated metric names (default: the convention's set)"
    )
    parser.add_argument(
        "--external",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="fused images made elsewhere, named by pair stem (repeatable)",
    )
    parser.add_argument("--limit", type=int, help="use only the first N pairs of each dataset")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help=f"where dataset names live (default $IVIF_DATA_ROOT or {default_data_root()})",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--overwrite", action="store_true", help="fuse again even where results exist"
    )
    parser.add_argument("--jobs", type=int, default=2, help="parallel metric workers (default 2)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for stochastic methods (default 0)"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="fuse in this process instead of a fresh process per dataset and method "
        "(faster start; the peak-memory column then shows this process's high-water mark)",
    )
    parser.add_argument(
        "--grid-images",
        type=int,
        default=3,
        help="images per dataset shown in the report (default 3)",
    )
    parser.set_defaults(run=run)


def parse_externals(items: list[str]) -> dict[str, Path]:
    externals = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise InputError(f"--external {item!r}: expected NAME=DIR")
        if not Path(folder).is_dir():
            raise InputError(f"--external {name}: folder {folder} not found")
        externals[name] = Path(folder)
    return externals


def parse_methods(text: str) -> list[str]:
    methods = (
        available_methods() if text == "all" else [m.strip() for m in text.split(",") if m.strip()]
    )
    for method in methods:
        get_method(method)  # a clear error for unknown names
    if not methods:
        raise InputError("--methods: name at least one method")
    return methods


def _metric_names(text: str | None) -> list[str] | str | None:
    if text is None or text.lower() == "all":
        return text
    return [m.strip() for m in text.split(",") if m.strip()]


def run(args: argparse.Namespace) -> int:
    from ivif.bench import BenchConfig, run_benchmark, write_outputs  # matplotlib: load on use

    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    config = BenchConfig(
        datasets=[resolve_dataset(spec, args.data_root) for spec in args.data],
        methods=parse_methods(args.methods),
        output=args.output,
        convention=args.convention,
        metrics=_metric_names(args.metrics),
        externals=parse_externals(args.external),
        limit=args.limit,
        overwrite=args.overwrite,
        jobs=args.jobs,
        seed=args.seed,
        isolate=not args.in_process,
    )
    results = run_benchmark(config)
    paths = write_outputs(results, args.grid_images)
    print(f"benchmark written to {config.output}:")
    for name, path in paths.items():
        print(f"  {name:8s} {path}")
    return 0
