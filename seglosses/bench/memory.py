"""Extra peak memory of one forward + backward, the logits' gradient included, the logits and target excluded.

On cpu each (case, implementation) runs in a fresh worker process (``python -m seglosses.bench --_mem-worker SPEC``,
after all timings of the setting) that warms the implementation up on a tiny input, builds the inputs, returns freed
memory to the OS (``malloc_trim``), resets the peak RSS (``/proc/self/clear_refs``), reads ``VmHWM`` from
``/proc/self/status``, runs one forward + backward and reads ``VmHWM`` again; the worker runs with a fixed glibc mmap
threshold, so that large buffers are mapped afresh and the peak RSS follows the peak of live buffers. On cuda:
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` minus ``memory_allocated`` before.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import warnings
from typing import Optional

import torch

from .cases import Case, Impl, LossFn, find_impl
from .data import make_inputs
from .peers import Peers, load_ours
from .settings import MEM_TAG, MMAP_THRESHOLD, QUICK_SHAPES
from .timing import run_once

#: The worker's command line: ``python -m WORKER_MODULE WORKER_FLAG SPEC`` (the hidden flag of the bench's CLI).
WORKER_MODULE = "seglosses.bench"
WORKER_FLAG = "--_mem-worker"
#: The checkout (or site-packages) holding this ``seglosses``: the worker imports this very package.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _proc_status_kib(key: str) -> int:
    """A ``/proc/self/status`` entry (``VmRSS``, ``VmHWM``) in KiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _malloc_trim() -> bool:
    """Give the memory freed so far back to the OS (glibc), so that reusing it later shows in the RSS."""
    try:
        import ctypes  # noqa: PLC0415

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0)) or True
    except Exception:
        return False


def _reset_hwm() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False where it is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def mem_worker(spec: dict) -> None:
    """Hidden entry point: extra peak RSS of one forward + backward of one implementation, in a fresh process."""
    warnings.simplefilter("ignore")
    torch.set_num_threads(spec["threads"])
    device = torch.device("cpu")
    setting = spec["setting"]
    ours, _ = load_ours()
    ours.set_cpu_kernels(spec["cpu_kernels"])
    peers = Peers(eager=False)
    impl = find_impl(setting, spec["case"], spec["impl"], ours, peers)

    # Warm-up on a tiny input: imports, kernels, thread pool and allocator set-up do not count.
    tiny = make_inputs(setting, QUICK_SHAPES[setting], device)
    fn = impl.make(tiny)
    for _ in range(2):
        run_once(fn, tiny.logits, device)
    del fn, tiny

    inp = make_inputs(setting, tuple(spec["shape"]), device)
    fn = impl.make(inp)
    if spec["cpu_kernels"] != "eager":  # the compilation at this shape (its memory is the compiler's) does not count
        run_once(fn, inp.logits, device)
    x = inp.logits.detach().clone().requires_grad_(True)
    gc.collect()
    trimmed = _malloc_trim()
    reset = _reset_hwm()
    rss0 = _proc_status_kib("VmRSS")
    hwm0 = _proc_status_kib("VmHWM")
    loss = fn(x)
    loss.backward()
    hwm1 = _proc_status_kib("VmHWM")
    result = {
        "extra_mib": (hwm1 - hwm0) / 1024.0,
        "hwm_reset": reset,
        "malloc_trim": trimmed,
        "mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "rss_before_mib": rss0 / 1024.0,
        "hwm_before_mib": hwm0 / 1024.0,
        "hwm_after_mib": hwm1 / 1024.0,
        "loss": float(loss.detach()),
    }
    print(MEM_TAG + json.dumps(result), flush=True)


def measure_memory_cpu(setting: str, case: Case, impl: Impl, shape, threads: int,
                       cpu_kernels: str = "inductor") -> tuple[Optional[float], str]:
    """Extra peak RSS (MiB) of one forward + backward of ``impl`` at ``shape``, measured by a fresh worker process,
    and a note (empty when the measurement is sound), or None and the reason it failed."""
    spec = {"setting": setting, "case": case.loss, "impl": impl.name, "shape": list(shape), "threads": threads,
            "cpu_kernels": cpu_kernels}
    cmd = [sys.executable, "-m", WORKER_MODULE, WORKER_FLAG, json.dumps(spec)]
    env = os.environ.copy()
    # glibc: a fixed mmap threshold (it also turns off the dynamic one) maps every large buffer afresh and unmaps it
    # when freed, so the peak RSS follows the peak of the live buffers instead of depending on which freed heap
    # memory happens to be reused.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    # the worker imports this very seglosses (a checkout run through benchmarks/bench_core.py included)
    env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    except subprocess.TimeoutExpired:
        return None, "memory worker timed out"
    for line in proc.stdout.splitlines():
        if line.startswith(MEM_TAG):
            res = json.loads(line[len(MEM_TAG) :])
            return res["extra_mib"], "" if res["hwm_reset"] else "VmHWM not reset (clear_refs refused)"
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return None, f"memory worker failed (rc {proc.returncode}): {tail[0]}"


def measure_memory_cuda(fn: LossFn, base: torch.Tensor, device: torch.device) -> float:
    """Extra peak CUDA memory (MiB) of one forward + backward of ``fn``, in this process."""
    x = base.detach().clone().requires_grad_(True)
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    loss = fn(x)
    loss.backward()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del loss, x
    return (peak - before) / 2**20
