"""Timing: one forward + backward (``time.perf_counter``, synchronized on cuda), its CUDA-graph replay, and the
device's copy bandwidth that the GPU tables compare with."""

from __future__ import annotations

import statistics
import time

import torch

from .cases import LossFn
from .data import Inputs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(fn: LossFn, base: torch.Tensor, device: torch.device) -> float:
    """Seconds of one forward + backward of ``fn`` on a fresh leaf copy of ``base`` (copied outside the timed
    region)."""
    x = base.detach().clone().requires_grad_(True)  # a fresh leaf, outside the timed region
    _sync(device)
    t0 = time.perf_counter()
    loss = fn(x)
    loss.backward()
    _sync(device)
    t1 = time.perf_counter()
    return t1 - t0


class GraphRun:
    """One forward + backward of ``fn`` captured in a CUDA graph (``--cuda-graph``): replays time the GPU work alone,
    without Python and launch overhead. Capture fails where the implementation synchronizes with the host."""

    REPLAYS = 5  # replays per timed run, between two CUDA events

    def __init__(self, fn: LossFn, base: torch.Tensor) -> None:
        self.x = base.detach().clone().requires_grad_(True)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.x.grad = None
                fn(self.x).backward()
        torch.cuda.current_stream().wait_stream(side)
        self.x.grad = None
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            fn(self.x).backward()

    def __call__(self) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(self.REPLAYS):
            self.graph.replay()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / self.REPLAYS


def copy_bandwidth(device: torch.device, nbytes: int = 1 << 30, repeats: int = 20) -> float:
    """The device's memory bandwidth as a large device-to-device copy moves it: GB/s counting the bytes read and
    the bytes written (median of ``repeats`` copies after a warm-up)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    times = []
    for k in range(repeats + 2):
        _sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        if k >= 2:
            times.append(time.perf_counter() - t0)
    del src, dst
    return 2 * nbytes / statistics.median(times) / 1e9


def min_bytes(inp: Inputs) -> int:
    """The fewest bytes one forward + backward must move through memory: the logits and the target read once,
    the logits' gradient written once.

    Example::

        >>> from seglosses.bench.data import make_inputs
        >>> min_bytes(make_inputs("binary", (2, 1, 4, 4), torch.device("cpu")))  # float32: 2 x 128 + 128
        384
    """
    return 2 * inp.logits.numel() * inp.logits.element_size() + inp.target.numel() * inp.target.element_size()
