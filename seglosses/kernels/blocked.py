"""The blocked torch passes' shared pieces: tiling of (N, C, S) tensors into blocks, and a block's target.

Blocking keeps a fused forward/backward pass's temporaries small.

The fused losses compute each block's probabilities, loss and gradient in float32 and write the result into one
preallocated buffer, so the extra memory of a loss is about one buffer plus a few blocks, whatever the input's size
or dtype, and a block stays in cache. Under ``torch.compile`` a single block is used: the compiler fuses the
elementwise chain itself.
"""

from __future__ import annotations

import torch

#: Elements per block (4 MiB of float32), before a pass's ``scale``.
BLOCK = 1 << 20


def blocks(x: torch.Tensor, scale: float = 1):
    """Yield ``(n0, n1, s0, s1)`` so that ``x[n0:n1, :, s0:s1]`` tile an ``(N, C, S)`` tensor.

    ``scale`` multiplies the block size: > 1 for passes whose temporaries are per pixel (a fraction of a block),
    < 1 for long elementwise chains, which run faster on the CPU when a block and its temporaries stay in cache
    (accelerators keep at least their default size).
    """
    n, c, s = x.shape
    cpu = x.device.type == "cpu"
    target = max(int(BLOCK * (scale if cpu else max(scale, 1))), 1)
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


def class_sums(out: torch.Tensor, t: torch.Tensor, src: torch.Tensor) -> None:
    """``out[n, c] += sum_s src[n, s] [t[n, s] == c]`` for out (n, C), t and src (n, S).

    scatter_add runs each row serially on the CPU, so long rows are first cut into up to 256 pieces (their partial
    sums are then added), which lets every thread work when the batch is small.
    """
    n, s = t.shape
    if n == 0:
        return
    k = 1
    while n * k < 512 and s % (2 * k) == 0 and s // (2 * k) >= 1024:
        k *= 2
    if k == 1:
        out.scatter_add_(1, t, src)
        return
    part = torch.zeros((n * k, out.shape[1]), dtype=out.dtype, device=out.device)
    part.scatter_add_(1, t.reshape(n * k, s // k), src.reshape(n * k, s // k))
    out += part.view(n, k, -1).sum(1)
