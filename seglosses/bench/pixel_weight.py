"""What a pixel weight map costs the fused passes: forward + backward of a Dice loss (region pass) and the focal loss
(focal pass) with and without an (N, H, W) weight map, at the benchmark's shapes, per CPU kernel policy.

``python -m seglosses.bench.pixel_weight [--repeats 9] [--settings binary,multiclass] [--policies auto,eager]``

The runs of one setting and policy are interleaved (weighted, unweighted, weighted, ...), so the ratio of their
medians compares the two under the same load. The issue's target: a weight map costs about one extra read of the
map, a fraction 1 / C of the logits' bytes (binary: the same size). No assertions: figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from seglosses.core.checks import compute_dtype
from seglosses.kernels import policy
from seglosses.kernels.ops import FocalSpec, focal_terms, region_stats

#: (N, C, H, W) and the target form of each setting (the benchmark's shapes: seglosses.bench.settings.FULL_SHAPES)
SHAPES = {"binary": (8, 1, 512, 512), "multiclass": (4, 8, 256, 256), "manyclass": (2, 150, 128, 128)}


def _inputs(setting: str, seed: int = 0):
    n, c, h, w = SHAPES[setting]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c, h * w), generator=g) * 2
    if setting == "binary":
        t = (torch.rand((n, c, h * w), generator=g) > 0.7).float()
    else:
        t = torch.randint(0, c, (n, h * w), generator=g)
    wmap = torch.rand((n, 1, h * w), generator=g) * 2  # an (N, H, W) map as pixel_weights views it
    return x, t, wmap


def _losses(setting: str, t: torch.Tensor):
    """{name: fn(x, weight)} of the two losses, written from the passes as the losses use them."""
    binary = setting == "binary"
    act = "sigmoid" if binary else "softmax"
    spec = FocalSpec(not binary, not binary, 2.0, 0.25 if binary else None, None, None, 0.0, True)

    def dice(x, weight):
        tp, fp, fn, _ = region_stats(x, t, act=act, index=not binary, per_image=False, weight=weight)
        return 1 - (2 * tp / (2 * tp + fp + fn).clamp_min(1e-7)).mean()

    def focal(x, weight):
        out, norm = focal_terms(x, t, spec, weight)
        return out / norm

    return {"dice": dice, "focal": focal}


def _time(fn, x, weight) -> float:
    xx = x.detach().clone().requires_grad_(True)
    t0 = time.perf_counter()
    fn(xx, weight).backward()
    return time.perf_counter() - t0


def run(settings, policies, repeats: int) -> list[dict]:
    rows = []
    for setting in settings:
        x, t, wmap = _inputs(setting)
        for pol in policies:
            policy.set_cpu_kernels(pol)
            for name, fn in _losses(setting, t).items():
                for w in (None, wmap):  # warm-up: builds and compilations outside the timed runs
                    _time(fn, x, w)
                plain, weighted = [], []
                for _ in range(repeats):
                    plain.append(_time(fn, x, None))
                    weighted.append(_time(fn, x, wmap))
                a, b = statistics.median(plain), statistics.median(weighted)
                rows.append({"case": f"{setting}/{name}", "policy": pol, "ms": a * 1e3, "weighted ms": b * 1e3,
                             "ratio": b / a, "map / logits": wmap.numel() / x.numel()})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--settings", default="binary,multiclass")
    p.add_argument("--policies", default="auto,eager")
    args = p.parse_args(argv)
    before = policy.get_cpu_kernels()
    try:
        rows = run(args.settings.split(","), args.policies.split(","), args.repeats)
    finally:
        policy.set_cpu_kernels(before)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} interleaved runs, "
          f"forward + backward, float32 ({compute_dtype(torch.zeros(1))})")
    print("| case | policy | unweighted ms | weighted ms | weighted / unweighted | map / logits (elements) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['policy']} | {r['ms']:.1f} | {r['weighted ms']:.1f} | {r['ratio']:.2f} | "
              f"{r['map / logits']:.3f} |")


if __name__ == "__main__":
    main()
