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
    "pg_llm.demo.cli",
    "pg_llm.evaluate.cli",
]


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
