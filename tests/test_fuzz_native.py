"""Property-based checks of the C kernels (seglosses/kernels/native/kernels.c) against the blocked torch passes.

Hypothesis draws cases (tests/_native_fuzz_cases.py: N, C, pixels around the kernels' blocks, target dtypes,
ignore_index absent/unused/some/all, NaN/inf logits at ignored pixels, a NaN at a valid pixel, class subsets,
per_image, labels outside [0, C) sent to the kernels directly); each runs in a worker process
(tests/_native_fuzz_worker.py), which computes the sums, losses and gradients by the C kernels (policy "inductor",
their call counter checked) and by the torch passes (policy "eager"), and returns the differences. A crash of the
kernels ends the worker only: the test then fails with the case that crashed it (and hypothesis shrinks it).

Budget: ``SEGLOSSES_FUZZ_EXAMPLES`` examples per test (default 60; the file takes 10-30 s on one core), e.g.
``SEGLOSSES_FUZZ_EXAMPLES=1000 python -m pytest tests/test_fuzz_native.py`` for a longer run. The same cases run
against an AddressSanitizer build in benchmarks/asan_native.sh.
"""

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

import _native_fuzz_cases as cases  # noqa: E402

EXAMPLES = int(os.environ.get("SEGLOSSES_FUZZ_EXAMPLES", "60"))
#: seconds a case may take in the worker before it counts as hung
CASE_TIMEOUT = 300
WORKER = Path(__file__).with_name("_native_fuzz_worker.py")
ROOT = Path(__file__).resolve().parents[1]

FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Worker:
    """One worker process, restarted after it dies."""

    def __init__(self):
        self.proc = None
        self.err = None

    def _start(self):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, cwd=ROOT, text=True, bufsize=1)
        ready = self._reply("starting the worker", 120)
        if not ready.get("ready"):
            raise RuntimeError(f"the fuzz worker did not start: {ready.get('error')}")

    def _stderr_tail(self, chars=4000):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-chars:]

    def _reply(self, what, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = self.proc.stdout.readline() if sel.select(timeout) else None
        sel.close()
        if line:
            return json.loads(line)
        hung = line is None
        if hung:
            self.proc.kill()
        rc = self.proc.wait()
        how = (f"hung for {timeout} s" if hung else
               f"died by {signal.Signals(-rc).name}" if rc < 0 else f"exited with code {rc}")
        tail = self._stderr_tail()
        self.close()
        raise AssertionError(f"the fuzz worker {how} on {what}\n--- its stderr (end) ---\n{tail}")

    def check(self, case):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        reply = self._reply(f"case {case}", CASE_TIMEOUT)
        if "error" in reply:
            raise AssertionError(f"case {case} raised in the worker:\n{reply['error']}")
        assert not reply["fails"], f"case {case}:\n" + "\n".join(reply["fails"])

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.err is not None:
            self.err.close()
            self.err = None


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


@FUZZ
@given(case=cases.region_cases())
def test_region_kernels_equal_torch_passes(worker, case):
    # sums (T, P, G) and their gradient for random weights, a region loss and its gradient; labels outside [0, C)
    # sent to the kernels directly (code 2, treated as ignored) in a quarter of the cases
    worker.check(case)


@FUZZ
@given(case=cases.lovasz_cases())
def test_lovasz_kernels_equal_torch_passes(worker, case):
    # the Lovasz-softmax loss and its gradient, and the rows (losses, counts, derivative) with NaN/inf
    # probabilities at ignored pixels and int16 labels outside [0, C)
    worker.check(case)


def test_worker_reports_a_crash_with_its_case(worker):
    # a segfault in the worker fails the test with the case that caused it; the next case gets a new worker
    with pytest.raises(AssertionError, match=r"died by SIGSEGV on case \{'kind': 'segfault'\}"):
        worker.check({"kind": "segfault"})
    worker.check({"kind": "region", "seed": 0, "n": 1, "c": 2, "shape": [1], "dtype": "uint8", "ignore": None,
                  "cover": "absent", "nonfinite": None, "nan_valid": False, "bad_labels": True, "classes": None,
                  "per_image": False, "reduction": "mean", "threads": 1, "scale": 3.0, "loss": "dice"})
