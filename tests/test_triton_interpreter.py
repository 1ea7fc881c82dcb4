"""The Triton kernels' tests (tests/triton), in a fresh process with TRITON_INTERPRET=1 set before triton is
imported (the interpreter replaces triton.language when triton loads), so they run on the CPU (tests/_subsuites.py:
started in the background when collection ends)."""

import os

import pytest

import _subsuites


@pytest.mark.slow
def test_triton_kernels_equal_the_torch_path():
    missing = _subsuites.missing("triton")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} not installed: CI must run the kernel tests (Triton's interpreter, CPU)")
        pytest.skip(f"{missing} not installed (pip install '.[test]')")
    code, output = _subsuites.result("triton")
    tail = output[-6000:]
    assert code == 0, f"Triton kernel tests failed (exit {code}):\n{tail}"
    assert " passed" in output and " skipped" not in output, tail
