"""Blocking of (N, C, S) tensors so fused forward/backward passes keep their temporaries small.

The fused losses compute each block's probabilities, loss and gradient in float32 and write the result into one
preallocated buffer, so the extra memory of a loss is about one buffer plus a few blocks, whatever the input's size
or dtype, and a block stays in cache. Under ``torch.compile`` a single block is used: the compiler fuses the
elementwise chain itself.
"""

from __future__ import annotations

import os

import torch

#: Elements per block on the CPU (256 KiB of float32) and on accelerators (kernel launches cost more there).
CPU_BLOCK = 1 << 20
DEVICE_BLOCK = 1 << 20


def blocks(x: torch.Tensor, scale: float = 1):
    """Yield ``(n0, n1, s0, s1)`` so that ``x[n0:n1, :, s0:s1]`` tile an ``(N, C, S)`` tensor.

    ``scale`` multiplies the block size: > 1 for passes whose temporaries are per pixel (a fraction of a block),
    < 1 for long elementwise chains, which run faster on the CPU when a block and its temporaries stay in cache
    (accelerators keep at least their default size).
    """
    n, c, s = x.shape
    cpu = x.device.type == "cpu"
    target = max(int((CPU_BLOCK if cpu else DEVICE_BLOCK) * (scale if cpu else max(scale, 1))), 1)
    if torch.compiler.is_compiling() or n * c * s <= target or n == 0 or s == 0:
        yield 0, n, 0, s
        return
    per_image = max(c * s, 1)
    if per_image <= target:
        step = max(target // per_image, 1)
        for n0 in range(0, n, step):
            yield n0, min(n0 + step, n), 0, s
        return
    step = max(target // max(c, 1), 1)
    for n0 in range(n):
        for s0 in range(0, s, step):
            yield n0, n0 + 1, s0, min(s0 + step, s)


def triton_kernels(x: torch.Tensor):
    """``seglosses.kernels.triton`` when its kernels apply to ``x`` (a CUDA, or interpreted, float32/half tensor, outside
    torch.compile, Triton installed), else None. Triton is imported only then: CPU work never loads it."""
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16) or torch.compiler.is_compiling():
        return None
    if not (x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
        return None
    try:
        from seglosses.kernels import triton as _triton
    except ImportError:  # Triton not installed
        return None
    return _triton
