#!/usr/bin/env python
"""The benchmark suite lives in ``seglosses.bench``; this keeps ``python benchmarks/bench_core.py`` working from a
checkout. Same as ``python -m seglosses.bench`` or the ``seglosses-bench`` console script."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from seglosses.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
