"""Workers of tests/test_dist.py, one process per rank (gloo, CPU, float64)."""

import os

import torch
import torch.distributed as dist

import seglosses as S
from seglosses import _registry

#: ``{name: function}`` of the losses that all-reduce their statistics with ``dist_sync`` (those taking a
#: ``process_group``; Lovasz takes ``dist_sync`` only to reject it), from the registry.
REGION = {row.name: getattr(S, row.function) for row in _registry.LOSSES
          if {"dist_sync", "process_group"} <= _registry.options(row)}
MODES = _registry.MODES
OPTIONS = [{}, {"per_image": True}, {"ignore_index": 255}, {"reduction": "sum"},
           {"weight": [0.5, 2.0, 1.0], "classes": [2, 0]}, {"per_image": True, "ignore_index": 255, "reduction": "sum"},
           {"log_loss": True, "from_logits": False}]


def _init(rank, world, init_file):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)


def batch(mode, sizes, empty_rank, c=3, seed=0):
    """float64 logits and a target for the whole batch; the shard of ``empty_rank`` has no foreground at all."""
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    c = 1 if mode == "binary" else c
    x = torch.randn(n, c, 4, 5, generator=g, dtype=torch.float64) * 2
    if mode == "multiclass":
        t = torch.randint(0, c, (n, 4, 5), generator=g)
    else:
        t = (torch.rand(n, c, 4, 5, generator=g) > 0.6).double()
    if empty_rank is not None:
        lo = sum(sizes[:empty_rank])
        t[lo:lo + sizes[empty_rank]] = 0
    drop = torch.rand(t.shape, generator=g) < 0.15
    t255 = t.masked_fill(drop, 255)
    return x, t, t255


def check_losses(rank, world, init_file, sizes, empty_rank):
    """Every loss of :data:`REGION` and mode: the dist_sync loss of each rank's shard equals the single-process loss of
    the whole batch, and the shard's gradient / world equals the single-process gradient of that slice."""
    _init(rank, world, init_file)
    try:
        lo = sum(sizes[:rank])
        hi = lo + sizes[rank]
        for name, fn in REGION.items():
            takes = _registry.options(name)
            for mode in MODES:
                for opts in OPTIONS:
                    opts = {k: v for k, v in opts.items() if k in takes}  # (log_loss: the overlap losses only)
                    if mode == "binary" and "classes" in opts:
                        opts.pop("classes"), opts.pop("weight", None)
                    x, t, t255 = batch(mode, sizes, empty_rank)
                    tgt = t255 if "ignore_index" in opts else t
                    if not opts.get("from_logits", True):
                        x = torch.softmax(x, 1) if mode == "multiclass" else torch.sigmoid(x)
                    full = x.clone().requires_grad_(True)
                    ref = fn(full, tgt, mode, **opts)
                    (g_ref,) = torch.autograd.grad(ref, full)
                    part = x[lo:hi].clone().requires_grad_(True)
                    got = fn(part, tgt[lo:hi], mode, dist_sync=True, **opts)
                    (g,) = torch.autograd.grad(got, part)
                    what = f"{name} {mode} {opts} rank {rank}/{world}"
                    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-9, msg=lambda m: f"{what}: {m}")
                    torch.testing.assert_close(g / world, g_ref[lo:hi], rtol=1e-6, atol=1e-9,
                                               msg=lambda m: f"{what} gradient: {m}")
    finally:
        dist.destroy_process_group()


def _net(c):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Tanh(),
                               torch.nn.Conv2d(4, c, 1)).double()


def _train(model, x, t, steps, **loss_opts):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(steps):
        opt.zero_grad()
        S.dice_loss(model(x), t, "multiclass", **loss_opts).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def check_ddp(rank, world, init_file, steps=4):
    """DDP training with dist_sync=True ends with the parameters of single-process training on the full batch."""
    _init(rank, world, init_file)
    try:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(4, 2, 6, 6, generator=g, dtype=torch.float64)
        t = torch.randint(0, 3, (4, 6, 6), generator=g)
        expected = _train(_net(3), x, t, steps)
        shard = slice(rank * 4 // world, (rank + 1) * 4 // world)
        ddp = torch.nn.parallel.DistributedDataParallel(_net(3))
        got = _train(ddp, x[shard], t[shard], steps, dist_sync=True)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
    finally:
        dist.destroy_process_group()


def run(target, world, tmp, *args):
    init_file = os.path.join(tmp, f"init-{target.__name__}-{world}")
    torch.multiprocessing.spawn(target, args=(world, init_file) + args, nprocs=world, join=True)
