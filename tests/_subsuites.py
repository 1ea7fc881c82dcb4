"""Test suites that need a fresh process: the Keras tests once per backend (KERAS_BACKEND is read when Keras is
imported) and the Triton kernels' tests under the interpreter (TRITON_INTERPRET=1 before triton is imported).

conftest.py starts every selected one in the background as soon as collection ends, so they run beside the main
suite on the machine's other core; tests/test_keras_backends.py and tests/test_triton_interpreter.py wait for their
results. Output goes to a file, not a pipe, so a long log cannot block a process.
"""

import atexit
import importlib.util
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERAS_BACKENDS = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}  # backend: the module it needs

#: name: (the test file that reads it, modules it needs, extra environment, pytest arguments)
SUITES = {
    **{f"keras-{b}": ("tests/test_keras_backends.py", ("keras", m),
                      {"KERAS_BACKEND": b, "SEGLOSSES_KERAS_TESTS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
                       "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}, ["tests/keras", "seglosses/keras"])
       for b, m in KERAS_BACKENDS.items()},
    # tests/triton/test_kernel_fuzz.py is property-based: hypothesis too
    "triton": ("tests/test_triton_interpreter.py", ("triton", "hypothesis"),
               {"TRITON_INTERPRET": "1", "SEGLOSSES_TRITON_TESTS": "1"}, ["tests/triton"]),
}

_running: dict = {}


def missing(name):
    """The modules the suite needs that are not installed."""
    return [m for m in SUITES[name][1] if importlib.util.find_spec(m) is None]


def start(name):
    """Start the suite ``name`` in the background (once; not if a module it needs is missing)."""
    if name in _running or missing(name):
        return
    _, _, extra, args = SUITES[name]
    log = os.path.join(tempfile.mkdtemp(prefix=f"seglosses-{name}-"), "log.txt")
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT,
                                env=dict(os.environ, **extra), stdout=f, stderr=subprocess.STDOUT, text=True)
    _running[name] = proc, log


def result(name):
    """``(exit code, output)`` of the suite ``name``, started now if it was not; waits for it."""
    start(name)
    proc, log = _running[name]
    code = proc.wait()
    with open(log) as f:
        return code, f.read()


def start_selected(nodeids):
    """Start the suites whose test files are among the collected ``nodeids``."""
    files = {nodeid.split("::")[0] for nodeid in nodeids}
    for name, (test_file, *_) in SUITES.items():
        if test_file in files:
            start(name)


@atexit.register
def _stop():
    for proc, _ in _running.values():
        if proc.poll() is None:
            proc.kill()
