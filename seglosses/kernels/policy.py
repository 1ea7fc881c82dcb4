"""Which compiled CPU kernels serve the losses: :func:`set_cpu_kernels` or ``SEGLOSSES_CPU_KERNELS``.

* ``"auto"`` (default): the C kernels of :mod:`seglosses.kernels.native` where they apply (built once per machine, at
  the first call that can use them), the blocked torch passes elsewhere; never Inductor, whose compilations cost
  seconds per shape. The kernel that serves a call does not depend on how often the call ran, so neither do its
  results;
* ``"inductor"``: every CPU call is compiled by Inductor (:mod:`seglosses.kernels.inductor`) from its first run (the
  C kernels still serve the cases they cover); for long CPU training runs and benchmarks;
* ``"eager"``: never (the blocked torch passes only).

Each path equals the float64 oracle to its dtype's rounding and the paths equal each other to a few ulps
(tests/test_cpu_kernels.py, tests/test_fuzz.py), not bit for bit: the policy is chosen once, for the process, so a
call's result never changes between one step and the next. GPUs run the Triton kernels where they apply, whatever
the policy. :func:`seglosses.kernels.dispatch.select` applies it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal, TypeAlias

MODES = ("auto", "inductor", "eager")
#: A policy, for type checkers: the values of :data:`MODES`.
CpuKernels: TypeAlias = Literal["auto", "inductor", "eager"]

_state: dict = {"mode": None}
#: Called by :func:`set_cpu_kernels`: each backend that can fail to build forgets its failure (an explicit choice
#: retries it).
_retry: list[Callable[[], None]] = []


def _check_mode(mode: object, name: str) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"{name} must be one of {', '.join(repr(m) for m in MODES)}; got {mode!r}")
    return mode


def set_cpu_kernels(mode: CpuKernels) -> None:
    """Choose which compiled CPU kernels serve the losses: ``"auto"`` (default: the C kernels where they apply),
    ``"inductor"`` (those, and TorchInductor's for every other pass) or ``"eager"`` (none: the blocked torch
    passes). Overrides ``SEGLOSSES_CPU_KERNELS``; see :mod:`seglosses.kernels.policy`. A compiler that failed is
    tried again.

    Example:
        >>> import seglosses
        >>> seglosses.set_cpu_kernels("eager"); seglosses.get_cpu_kernels()
        'eager'
        >>> seglosses.set_cpu_kernels("auto")
    """
    _state["mode"] = _check_mode(mode, "mode")
    for forget in _retry:
        forget()


def get_cpu_kernels() -> CpuKernels:
    """The policy in force: ``"auto"``, ``"inductor"`` or ``"eager"``."""
    if _state["mode"] is None:
        _state["mode"] = _check_mode(os.environ.get("SEGLOSSES_CPU_KERNELS", "auto"), "SEGLOSSES_CPU_KERNELS")
    return _state["mode"]


def on_retry(forget: Callable[[], None]) -> None:
    """Register ``forget``, called whenever the policy is set (a backend's record of a failed build)."""
    _retry.append(forget)
