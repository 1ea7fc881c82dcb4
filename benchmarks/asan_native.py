"""The C kernels (seglosses/kernels/native/kernels.c) under AddressSanitizer: the cases run by benchmarks/asan_native.sh, which
builds the instrumented library, loads it through ``SEGLOSSES_NATIVE_LIB`` and preloads the ASan runtime. Not a
benchmark: it lives here as a tool run by hand or by CI, apart from the test suite.

Runs, with the kernels' results compared against the blocked torch passes each time (tests/_native_fuzz_cases.py):

1. edge cases: C = 0, 1 and 2, S = 0 and 1, N = 0, every pixel ignored, NaN/inf logits, labels at every integer dtype's
   extremes and beyond 32 bits sent to the kernels directly, 1 and 2 threads;
2. the fuzz cases of tests/test_fuzz_native.py (hypothesis, derandomized; ``--examples`` of each kind);
3. the Lovasz kernels' guards (classes outside [0, C), sorted keys outside their rows).

Each case is written to ``--progress`` before it runs, so the case that an ASan report (which ends the process) came
from is the file's last line. Prints the number of cases and of mismatches; exits 1 on a mismatch, 2 if the kernels
loaded are not the library named by SEGLOSSES_NATIVE_LIB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import seglosses as S  # noqa: E402
from seglosses.kernels import ops  # noqa: E402
from seglosses.kernels import native as _native  # noqa: E402

import _native_fuzz_cases as cases  # noqa: E402


class Runner:
    def __init__(self, progress):
        self.progress = open(progress, "w", buffering=1) if progress else None
        self.count = {}
        self.failures = []

    def run(self, group, what, fn):
        self.count[group] = self.count.get(group, 0) + 1
        if self.progress:
            self.progress.write(f"{group} {self.count[group]}: {what}\n")
        try:
            fails = fn()
        except Exception as e:  # noqa: BLE001 - reported with its case
            fails = [f"raised {type(e).__name__}: {e}"]
        for f in fails:
            self.failures.append(f"[{group}] {what}: {f}")


def _spec(**kw):
    base = {"kind": "region", "seed": 0, "n": 1, "c": 2, "shape": [1], "dtype": "int64", "ignore": None,
            "cover": "absent", "nonfinite": None, "nan_valid": False, "bad_labels": False, "classes": None,
            "per_image": False, "reduction": "mean", "threads": 1, "scale": 3.0, "loss": "dice",
            "from_logits": True, "lovasz_classes": "present"}
    base.update(kw)
    return base


def edge_specs():
    """Hand-picked cases of the fuzz space: the smallest shapes, every pixel ignored, labels out of range."""
    out = []
    for kind in ("region", "lovasz"):
        for dtype in cases.DTYPES:
            ign = 255 if dtype != "int8" else -1
            out += [
                _spec(kind=kind, dtype=dtype, bad_labels=True),  # C = 2, one pixel, its label out of range
                _spec(kind=kind, dtype=dtype, n=3, c=2, shape=[1], ignore=ign, cover="all", nonfinite="mix",
                      threads=2, bad_labels=True, per_image=True),  # every pixel ignored, NaN/inf there
                _spec(kind=kind, dtype=dtype, n=2, c=3, shape=[513], ignore=ign, cover="some", nonfinite="nan",
                      nan_valid=True, bad_labels=True, threads=2),  # a block and one pixel, NaN at a valid pixel
                _spec(kind=kind, dtype=dtype, n=1, c=20, shape=[2, 511], ignore=0, cover="unused", nonfinite="inf",
                      bad_labels=True, classes=[19, 0], per_image=True, scale=30.0),
            ]
        out.append(_spec(kind=kind, c=150, n=2, shape=[97], dtype="uint8", ignore=255, cover="some",
                         nonfinite="-inf", bad_labels=True, threads=2))
    return out


def empty_and_tiny() -> list[tuple[str, object]]:
    """Shapes the fuzz space leaves out (N = 0, S = 0, C = 1), through the public losses: both policies agree and the
    C kernels run."""
    def one(fn, shape, **kw):
        def go():
            g = torch.Generator().manual_seed(0)
            x = torch.randn(shape, generator=g)
            t = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
            fails = cases._Failures()
            got = []
            for mode in ("inductor", "eager"):
                cases._policy(mode)
                before = _native._state["calls"]
                leaf = x.clone().requires_grad_(True)
                loss = fn(leaf, t, "multiclass", **kw)
                (grad,) = torch.autograd.grad(loss.sum(), leaf)
                got.append((loss.detach(), grad))
                if mode == "inductor":
                    fails.true("the C kernels did not run", _native._state["calls"] > before)
            cases._policy("eager")
            fails.close("loss", got[0][0], got[1][0])
            fails.close("gradient", got[0][1], got[1][1], atol=1e-7)
            return list(fails)
        return f"{fn.__name__} {shape} {kw}", go

    def stats(shape, threads):  # region sums by the kernels directly (the front end wants C >= 2)
        def go():
            g = torch.Generator().manual_seed(1)
            x = torch.randn(shape, generator=g)
            t = torch.randint(0, max(shape[1], 1), (shape[0], shape[2]), generator=g)
            a, m = torch.randn((2, shape[0], shape[1]), generator=g).unbind(0)
            fails = cases._Failures()
            if not shape[1]:  # C = 0: every label is out of range (IndexError); the calls must not touch memory
                for call in (lambda: _native.softmax_index_sums(x, t, None),
                             lambda: _native.softmax_index_grad(x, t, None, a, m)):
                    try:
                        call()
                    except IndexError:
                        pass
                return list(fails)
            got = (*_native.softmax_index_sums(x, t, None), _native.softmax_index_grad(x, t, None, a, m))
            cases._policy("eager")
            leaf = x.clone().requires_grad_(True)
            tp, fp, _, gsum = ops.region_stats(leaf, t, act="softmax", index=True, per_image=True)
            (want,) = torch.autograd.grad((a * (tp + fp) + m * tp).sum(), leaf)
            for name, u, v in zip("PTG", got, (tp + fp, tp, gsum)):
                fails.close(name, u, v.detach())
            fails.close("gradient", got[3], want, atol=1e-6)
            return list(fails)
        def with_threads():
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return go()
            finally:
                torch.set_num_threads(before)
        return f"region kernels directly {shape}, {threads} threads", with_threads

    out = []
    for fn in (S.dice_loss, S.lovasz_loss):
        for shape in ((0, 3, 4, 4), (2, 3, 0, 4), (2, 3, 0), (1, 2, 1), (3, 2, 1, 1)):
            for per_image in (False, True):
                out.append(one(fn, shape, per_image=per_image))
    for shape in ((1, 1, 5), (2, 1, 513), (2, 0, 7), (0, 3, 5), (2, 3, 0), (1, 2, 1)):
        for threads in (1, 2):
            out.append(stats(shape, threads))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=150, help="fuzz examples of each kind (region, Lovasz)")
    ap.add_argument("--progress", default=None, help="file that gets each case before it runs")
    args = ap.parse_args()

    want = os.environ.get("SEGLOSSES_NATIVE_LIB")
    lib = _native.library()
    if lib is None or not want or lib._name != want:
        print(f"asan_native: the kernels loaded are {getattr(lib, '_name', None)!r}, not SEGLOSSES_NATIVE_LIB={want!r}"
              f" ({_native._state['error']!r})", file=sys.stderr)
        return 2
    r = Runner(args.progress)
    for spec in edge_specs():
        r.run("edge", json.dumps(spec), lambda spec=spec: cases.check(spec))
    for what, fn in empty_and_tiny():
        r.run("edge", what, fn)
    r.run("guards", "Lovasz kernels' index guards", cases.raw_lovasz_guards)

    from hypothesis import HealthCheck, given, settings

    fuzz = settings(max_examples=args.examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
    for strategy in (cases.region_cases(), cases.lovasz_cases()):
        @fuzz
        @given(spec=strategy)
        def each(spec):
            r.run(spec["kind"], json.dumps(spec), lambda: cases.check(spec))

        each()

    total = sum(r.count.values())
    detail = ", ".join(f"{k} {v}" for k, v in r.count.items())
    for f in r.failures:
        print(f, file=sys.stderr)
    print(f"asan_native: {total} cases ({detail}), {len(r.failures)} mismatches, kernels {want}")
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main())
