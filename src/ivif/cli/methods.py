"""``ivif methods``: list the fusion methods and their options."""

from __future__ import annotations

import argparse

from ivif.api import DEFAULT_METHOD
from ivif.methods import available_methods, get_method, option_specs


def add_parser(subparsers, argv=None) -> None:
    parser = subparsers.add_parser("methods", help="list fusion methods and their options")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for name in available_methods():
        cls = get_method(name)
        marker = " (default)" if name == DEFAULT_METHOD else ""
        print(f"{name}{marker}: {cls.summary}")
        for spec in option_specs(cls.Options):
            choices = f" {{{','.join(map(str, spec.choices))}}}" if spec.choices else ""
            flag = spec.name.replace("_", "-")
            print(f"    --{flag}{choices} (default {spec.default}): {spec.help}")
    return 0
