"""The `pg-llm` command. Each feature registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that define add_parser(subparsers); imported lazily so a missing optional
# dependency (e.g. torch for `serve`) only breaks its own subcommand.
SUBCOMMAND_MODULES = [
    "pg_llm.serve.cli",
    "pg_llm.finetune.cli",
    "pg_llm_tutorial.cli",  # `demo`, `demo-data`: the tutorial, not part of the extension
    "pg_llm.evaluate.cli",
    "pg_llm.secret_cli",
]


def plot_subparsers(subparsers):
    """The shared `plot` command: each feature adds its own `plot <what>` under it."""
    parser = subparsers.choices.get("plot")
    if parser is None:
        parser = subparsers.add_parser("plot", help="charts (PNG) from the catalog")
        parser.set_defaults(func=lambda a: parser.print_help() or 2)
        parser._pg_llm_subparsers = parser.add_subparsers(dest="plot_what", required=True)
    return parser._pg_llm_subparsers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pg-llm", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(name.rsplit(".", 1)[0]):
                continue  # that feature is not part of this build
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
