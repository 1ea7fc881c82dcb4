"""``python -m seglosses.demo``: the demo (see ``seglosses demo -h``)."""

import sys

from seglosses.cli import demo_main

sys.exit(demo_main())
