"""Test collection: the Keras tests and doctests need KERAS_BACKEND chosen before Keras is imported, so they run
in one subprocess per backend (tests/test_keras_backends.py), not in the main pytest process."""

import os

collect_ignore = [] if os.environ.get("SEGLOSSES_KERAS_TESTS") else ["tests/keras", "seglosses/keras"]
