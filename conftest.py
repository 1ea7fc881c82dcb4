"""Test collection: the Keras tests and doctests need KERAS_BACKEND chosen before Keras is imported, so they run
in one subprocess per backend (tests/test_keras_backends.py), not in the main pytest process; the Triton kernels' tests
need TRITON_INTERPRET=1 before triton is imported (tests/test_triton_interpreter.py)."""

import os
import tempfile

collect_ignore = [] if os.environ.get("SEGLOSSES_KERAS_TESTS") else ["tests/keras", "seglosses/keras"]
if not os.environ.get("SEGLOSSES_TRITON_TESTS"):
    collect_ignore += ["tests/triton", "seglosses/kernels/triton.py"]

# The suite checks the blocked torch passes on the CPU; the kernels Inductor compiles from them (the default policy
# compiles repeated calls) are checked against them in tests/test_cpu_kernels.py, which sets the policy per test.
# Subprocesses (Keras backends, Triton interpreter, demo) inherit this.
os.environ.setdefault("SEGLOSSES_CPU_KERNELS", "eager")

# The C kernels (seglosses/kernels/native) are built into a fresh cache, not the user's ~/.cache/seglosses.
os.environ.setdefault("SEGLOSSES_CACHE_DIR", tempfile.mkdtemp(prefix="seglosses-test-cache-"))


def pytest_collection_finish(session):
    """Start the suites that need a fresh process (tests/_subsuites.py) now, beside the main suite."""
    import sys

    if session.config.option.collectonly:
        return

    tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import _subsuites

    _subsuites.start_selected(item.nodeid for item in session.items)
