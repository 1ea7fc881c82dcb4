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
