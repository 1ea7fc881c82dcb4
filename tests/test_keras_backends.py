"""The Keras front end's tests (tests/keras), run once per Keras backend in a fresh process each (tests/_subsuites.py:
started in the background when collection ends)."""

import os

import pytest

import _subsuites


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(_subsuites.KERAS_BACKENDS))
def test_keras_suite_passes_on_backend(backend):
    name = f"keras-{backend}"
    missing = _subsuites.missing(name)
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} not installed: CI must run the Keras tests on every backend")
        pytest.skip(f"{missing} not installed (pip install '.[test]')")
    code, output = _subsuites.result(name)
    tail = output[-6000:]
    # exit 5 (nothing collected) or any skip would hide untested code: both fail here
    assert code == 0, f"Keras tests failed on {backend} (exit {code}):\n{tail}"
    assert " passed" in output and " skipped" not in output, tail
