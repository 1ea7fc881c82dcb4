"""Keras tests: run once per backend by tests/test_keras_backends.py (KERAS_BACKEND set before Keras is imported)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: oracle, cases

if "KERAS_BACKEND" not in os.environ:
    raise RuntimeError("tests/keras runs under tests/test_keras_backends.py, which sets KERAS_BACKEND")

import keras


@pytest.fixture(autouse=True)
def _float32_policy():
    keras.config.set_floatx("float32")
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")
