"""The ``ivif`` command line. Each sub-command lives in its own module exposing
``add_parser(subparsers)``, which registers the sub-command and sets ``run=`` as its handler.

Errors meant for the user (:class:`~ivif.errors.InputError`) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ivif import __version__
from ivif.cli import bench, demo, eval, fuse, methods, train
from ivif.errors import InputError

#: Sub-command modules, in the order ``ivif --help`` lists them.
COMMANDS = (fuse, methods, eval, bench, demo, train)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ivif", description="Infrared–visible image fusion: methods, metrics, benchmarks."
    )
    parser.add_argument("--version", action="version", version=f"ivif {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except InputError as exc:
        print(f"ivif: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ivif: interrupted; finished outputs are kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``ivif methods | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
