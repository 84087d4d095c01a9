"""``ivif fuse``: fuse one pair, or every pair of two folders (paired by file stem)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ivif.api import DEFAULT_METHOD, fuse_arrays, load_pair
from ivif.data import pair_folders
from ivif.errors import InputError
from ivif.io import DEPTH_RULES, write_image
from ivif.methods import available_methods, create_method, get_method, option_specs


def _requested_method(argv: Sequence[str] | None) -> str:
    """The ``--method`` given on the command line (so its options can become flags)."""
    if not argv or argv[0] != "fuse":
        return DEFAULT_METHOD
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("-m", "--method", default=DEFAULT_METHOD)
    known, _ = probe.parse_known_args(argv[1:])
    return known.method


def add_method_options(parser: argparse.ArgumentParser, method: str) -> None:
    """Add one flag per option of ``method`` (``levels`` -> ``--levels``)."""
    if method not in available_methods():
        return  # reported with the list of methods when the command runs
    group = parser.add_argument_group(f"options of method {method!r}")
    for spec in option_specs(get_method(method).Options):
        flag = "--" + spec.name.replace("_", "-")
        kwargs = {
            "dest": f"option_{spec.name}",
            "default": argparse.SUPPRESS,
            "help": f"{spec.help} (default {spec.default})",
        }
        if spec.type is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            metavar = None if spec.choices else spec.name.upper()
            group.add_argument(
                flag, type=spec.type, choices=spec.choices, metavar=metavar, **kwargs
            )


def add_parser(subparsers, argv: Sequence[str] | None = None) -> None:
    method = _requested_method(argv)
    parser = subparsers.add_parser(
        "fuse",
        help="fuse an infrared/visible pair or two folders of pairs",
        description=(
            "Fuse IR VI -o OUT, or --ir DIR --vi DIR -o DIR (pairs by file stem). "
            "Method options appear below once --method is given."
        ),
    )
    parser.add_argument("ir", nargs="?", help="infrared image")
    parser.add_argument("vi", nargs="?", help="visible image")
    parser.add_argument("--ir", dest="ir_dir", metavar="DIR", help="folder of infrared images")
    parser.add_argument("--vi", dest="vi_dir", metavar="DIR", help="folder of visible images")
    parser.add_argument(
        "-o", "--output", required=True, help="output image (pair) or folder (folders)"
    )
    parser.add_argument(
        "-m",
        "--method",
        default=DEFAULT_METHOD,
        help=f"fusion method (default {DEFAULT_METHOD}; see `ivif methods`)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for stochastic methods")
    parser.add_argument(
        "--resize",
        choices=("ir", "vi"),
        help="resample IR onto VI's grid (ir) or the reverse (vi) when sizes differ",
    )
    parser.add_argument(
        "--depth-rule",
        choices=sorted(DEPTH_RULES),
        default="percentile",
        help="how 16-bit frames become 8-bit (default percentile: 0.5–99.5 %% stretch)",
    )
    parser.add_argument(
        "--quality", type=int, default=95, help="JPEG quality of the outputs (default 95)"
    )
    parser.add_argument("--ext", default=".png", help="output format for folders (default .png)")
    parser.add_argument(
        "--overwrite", action="store_true", help="redo outputs that already exist (folders)"
    )
    add_method_options(parser, method)
    parser.set_defaults(run=run)


def _method_options(args: argparse.Namespace) -> dict:
    return {
        key[len("option_") :]: value
        for key, value in vars(args).items()
        if key.startswith("option_")
    }


def run(args: argparse.Namespace) -> int:
    method = create_method(args.method, **_method_options(args))
    if args.ir_dir or args.vi_dir:
        if args.ir or args.vi:
            raise InputError("give either IR VI image paths or --ir DIR --vi DIR, not both")
        if not (args.ir_dir and args.vi_dir):
            raise InputError("folder mode needs both --ir DIR and --vi DIR")
        return _run_folders(method, args)
    if not (args.ir and args.vi):
        raise InputError(
            "give an infrared and a visible image (ivif fuse IR VI -o OUT) or --ir DIR --vi DIR"
        )
    ir, vi = load_pair(args.ir, args.vi, args.resize, args.depth_rule)
    fused = fuse_arrays(method, ir, vi, args.seed)
    out = write_image(args.output, fused, quality=args.quality)
    print(f"wrote {out} ({method.name})")
    return 0


def _run_folders(method, args: argparse.Namespace) -> int:
    pairs, unpaired = pair_folders(args.ir_dir, args.vi_dir)
    out_dir = Path(args.output)
    ext = args.ext if args.ext.startswith(".") else f".{args.ext}"
    failures = [
        (path, "no counterpart with the same name in the other folder") for path in unpaired
    ]
    done = skipped = 0
    for pair in tqdm(pairs, desc=f"fuse {method.name}", unit="pair", file=sys.stderr):
        target = out_dir / f"{pair.name}{ext}"
        if target.exists() and not args.overwrite:
            skipped += 1
            continue
        try:
            ir, vi = load_pair(pair.ir, pair.vi, args.resize, args.depth_rule)
            write_image(target, fuse_arrays(method, ir, vi, args.seed), quality=args.quality)
            done += 1
        except (InputError, ValueError, RuntimeError, OSError) as exc:
            failures.append((pair.ir, str(exc)))
    print(
        f"{done} fused, {skipped} already present (use --overwrite to redo), "
        f"{len(failures)} failed -> {out_dir}"
    )
    for path, reason in failures:
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    return 1 if failures else 0
