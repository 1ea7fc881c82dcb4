"""Worker process of tests/test_fuzz_native.py: runs the C kernels' fuzz cases (tests/_native_fuzz_cases.py) sent to
it, so that a crash of the kernels (a segfault) ends this process, not pytest, and is reported with its case.

Protocol: one JSON case per line on stdin; one JSON line per case on the protocol stream (the original stdout; the
process's own prints go to stderr): ``{"fails": [...]}`` (empty: passed) or ``{"error": traceback}``. A first line
``{"ready": true}`` says the kernels are built and loaded. The case ``{"kind": "segfault"}`` crashes the worker (the
test that a crash is reported).
"""

import json
import os
import signal
import sys
import traceback


def main() -> None:
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints (warnings, torch) leave the protocol alone
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _native_fuzz_cases as cases
    from seglosses.kernels import native as _native

    if _native.library() is None:
        proto.write(json.dumps({"error": f"the C kernels were not built: {_native._state['error']!r}"}) + "\n")
        return
    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        if case.get("kind") == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        try:
            reply = {"fails": cases.check(case)}
        except Exception:  # noqa: BLE001 - reported to the test with its case
            reply = {"error": traceback.format_exc()}
        proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
