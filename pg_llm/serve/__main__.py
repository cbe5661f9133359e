"""python -m pg_llm.serve [options]: the same as `pg-llm serve`."""

import argparse
import sys

from .cli import run
from .options import add_arguments

parser = argparse.ArgumentParser(prog="python -m pg_llm.serve")
add_arguments(parser)
sys.exit(run(parser.parse_args()))
