"""``python -m seglosses.bench``: the benchmark's command line (also the memory workers' entry point)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m seglosses.bench"))
