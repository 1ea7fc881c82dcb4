"""Worker of tests/test_metrics.py::test_two_process_gloo_reduction, one process per rank (gloo, CPU)."""

import torch
import torch.distributed as dist

from seglosses.metrics import ConfusionMetrics, SurfaceMetrics


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 3, (2, 6, 7), generator=g)
    return torch.randn(2, 3, 6, 7, generator=g), t


def check(rank, world, init_file):
    """Each rank updates with its own batch; compute() on every rank equals one process's metrics of both batches."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        for make in (lambda: ConfusionMetrics(3), lambda: ConfusionMetrics(3, per_image=True),
                     lambda: SurfaceMetrics(3, tolerance=1.0, spacing=(1.0, 2.0))):
            local, whole = make(), make()
            local.update(*_batch(rank))
            for r in range(world):
                whole.update(*_batch(r))
            got, expected = local.compute(), whole.compute(sync=False)
            for k in expected:
                torch.testing.assert_close(got[k], expected[k], equal_nan=True)
            assert not torch.equal(local.compute(sync=False)[k], expected[k]) or k.startswith("mean")
    finally:
        dist.destroy_process_group()
