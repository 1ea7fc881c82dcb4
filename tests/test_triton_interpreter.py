"""The Triton kernels' tests (tests/triton), in a fresh process with TRITON_INTERPRET=1 set before triton is
imported (the interpreter replaces triton.language when triton loads), so they run on the CPU."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_triton_kernels_equal_the_torch_path():
    for module in ("triton", "hypothesis"):  # tests/triton/test_kernel_fuzz.py is property-based
        if importlib.util.find_spec(module) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{module} is not installed: CI must run the kernel tests (Triton's interpreter, CPU)")
            pytest.skip(f"{module} not installed (pip install '.[test]')")
    env = dict(os.environ, TRITON_INTERPRET="1", SEGLOSSES_TRITON_TESTS="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/triton"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, f"Triton kernel tests failed (exit {proc.returncode}):\n{tail}"
    assert " passed" in proc.stdout and " skipped" not in proc.stdout, tail
