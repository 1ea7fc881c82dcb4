"""The demo's training run: one small U-Net per loss and seed, identical seeds, data order and optimizer across
losses; evaluation on a held-out split; atomic per-epoch checkpoints per (loss, seed) that a rerun with the same
``--out`` resumes from; DDP under torchrun.

Seeds: ``--seeds K`` trains each loss with the seeds ``--seed``, ``--seed + 1``, ..., ``--seed + K - 1``. A seed sets
the network's initial weights and the order of the training images; the data set (the synthetic images, or the
split of ``--data``) is drawn once from ``--seed`` and is the same for every seed, so the spread over seeds is the
training-seed variance of one data set, and two losses trained with the same seed are paired.

Determinism: the initial weights come from the seed, the order of epoch e from a generator seeded with
``(seed, e)``, and nothing else draws random numbers, so a run resumed from the checkpoint of epoch e trains exactly
as the uninterrupted one (on the same machine, thread count and device).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field

import torch

from seglosses.demo import losses as loss_names
from seglosses.demo.metrics import METRICS, confusion, mean, scores
from seglosses.demo.stats import aggregate, compare
from seglosses.demo.store import atomic_save
from seglosses.demo.unet import UNet

IGNORE = 255


@dataclass
class Config:
    losses: tuple = loss_names.DEFAULT
    epochs: int = 4
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0
    seeds: int = 3
    device: str = "auto"
    out: str = "seglosses-demo"
    data: str | None = None
    size: int = 64
    train_images: int = 384
    val_images: int = 128
    width: int = 24
    weight_map: str = "boundary"
    overlays: int = 4
    progress: bool = True
    class_names: tuple = field(default_factory=tuple)


class _Dist:
    """torchrun's process group, when there is one (WORLD_SIZE > 1)."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        self.main = self.rank == 0

    def barrier(self):
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


def _device(name: str, dist_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", dist_rank)) % torch.cuda.device_count())
    return dev


def load_data(cfg: Config):
    """(train_x, train_y), (val_x, val_y), class names."""
    from seglosses.demo import data

    if cfg.data is None:
        tx, ty = data.synthetic(cfg.train_images, size=cfg.size, seed=cfg.seed)
        vx, vy = data.synthetic(cfg.val_images, size=cfg.size, seed=cfg.seed + 10_000)
        return (tx, ty), (vx, vy), tuple(data.CLASS_NAMES)
    images, masks, names = data.load_folder(cfg.data, ignore_index=IGNORE)
    train, val = data.split(images, masks, seed=cfg.seed)
    return train, val, tuple(names)


@torch.no_grad()
def evaluate(model, images, masks, num_classes, device, batch_size=64):
    """Confusion matrix over the held-out set and the argmax predictions."""
    model.eval()
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    preds = []
    for i in range(0, len(images), batch_size):
        pred = model(images[i:i + batch_size].to(device)).argmax(1).cpu()
        matrix += confusion(pred, masks[i:i + batch_size], num_classes, IGNORE)
        preds.append(pred)
    return matrix, torch.cat(preds) if preds else torch.zeros_like(masks)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


#: The settings a stored checkpoint or result depends on (besides the loss and the seed in its path).
_RUN_KEYS = ("epochs", "batch_size", "lr", "seed", "data", "size", "train_images", "val_images", "width")
#: Further settings of a weighted(...) loss's run (its pixel weight maps).
_WEIGHT_KEYS = ("weight_map",)


def _run_key(cfg: Config, spec: str | None = None) -> dict:
    weighted = spec is not None and loss_names.wrappers(spec)[2]
    return {k: getattr(cfg, k) for k in _RUN_KEYS + (_WEIGHT_KEYS if weighted else ())}


def _check_run(stored: dict, cfg: Config, path: str, spec: str | None = None) -> None:
    key = _run_key(cfg, spec)
    diff = [f"{k}={stored.get(k)!r} (now {key[k]!r})" for k in key if stored.get(k) != key[k]]
    if diff:
        note = " (seed: --seed, which draws the data)" if stored.get("seed") != key["seed"] else ""
        raise ValueError(f"{path} was made with other settings: {', '.join(diff)}{note}; use another --out, or delete "
                         f"it to start again")


def seed_paths(cfg: Config, spec: str, seed: int) -> tuple[str, str]:
    """``(result, checkpoint)`` paths of one (loss, seed): ``<out>/results/<loss>/seed<seed>.json`` and
    ``<out>/checkpoints/<loss>/seed<seed>.pt``."""
    name = loss_names.safe_name(spec)
    return (os.path.join(cfg.out, "results", name, f"seed{seed}.json"),
            os.path.join(cfg.out, "checkpoints", name, f"seed{seed}.pt"))


def pixel_weights(cfg: Config, train) -> torch.Tensor:
    """The training images' pixel weight maps of ``weighted(...)`` losses (``--weight-map``): ``"boundary"``, border
    weights computed from the masks (:func:`seglosses.demo.weights.boundary_weights`), or ``"folder"``, the maps of
    ``--data DIR/weights/*.png`` (the training split's)."""
    from seglosses.demo import data, weights

    if cfg.weight_map == "boundary":
        return weights.boundary_weights(train[1], ignore_index=IGNORE)
    if cfg.data is None:
        raise ValueError("--weight-map folder reads DIR/weights/*.png: it needs --data DIR")
    images, masks, _ = data.load_folder(cfg.data, ignore_index=IGNORE)
    (tw, _), _ = data.split(weights.load_weight_folder(cfg.data), masks, seed=cfg.seed)  # load_data's split
    return tw


def train_one(spec: str, cfg: Config, train, val, num_classes: int, device, dist: _Dist, bar=None,
              seed: int | None = None, train_weights: torch.Tensor | None = None) -> dict:
    """Train and evaluate one loss with one seed (``cfg.seed`` by default); resumes from its checkpoint
    (:func:`seed_paths`) and returns (and writes) its result, or returns the result a previous run already wrote."""
    seed = cfg.seed if seed is None else seed
    result_path, ckpt_path = seed_paths(cfg, spec, seed)
    if os.path.exists(result_path):
        with open(result_path) as f:
            result = json.load(f)
        _check_run(result.get("run", {}), cfg, result_path, spec)
        if bar is not None:
            bar.update(cfg.epochs * _steps(len(train[0]), cfg, dist) - bar.n)
        return result
    tx, ty = train
    vx, vy = val
    _, deep, weighted = loss_names.wrappers(spec)
    if weighted and train_weights is None:
        train_weights = pixel_weights(cfg, train)
    torch.manual_seed(seed)
    model = UNet(tx.shape[1], num_classes, cfg.width, deep_supervision=deep).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    criterion = loss_names.build(spec, ignore_index=IGNORE, dist_sync=dist.world > 1, epochs=cfg.epochs)
    start, history, elapsed = 0, [], 0.0
    if os.path.exists(ckpt_path):
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _check_run(state.get("run", {}), cfg, ckpt_path, spec)
        start, history, elapsed = state["epoch"], state["history"], state["elapsed"]
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    per_rank = max(cfg.batch_size // dist.world, 1)
    if bar is not None:
        bar.update(start * _steps(len(tx), cfg, dist) - bar.n)
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        net.train()
        order = _epoch_order(len(tx), seed, epoch)
        if hasattr(criterion, "step"):  # a sum with scheduled coefficients (its position: the epoch)
            criterion.step(epoch)
        total, count = 0.0, 0
        for i in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):  # full batches only: same size on ranks
            idx = order[i:i + cfg.batch_size][dist.rank * per_rank:(dist.rank + 1) * per_rank]
            x, y = tx[idx].to(device), ty[idx].to(device)
            extra = {"pixel_weight": train_weights[idx].to(device)} if weighted else {}
            loss = criterion(net(x), y, **extra)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
            count += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch + 1)
        elapsed += time.perf_counter() - t0
        matrix, _ = evaluate(model, vx, vy, num_classes, device)
        s = scores(matrix)
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1),
                        "val_mean_dice": mean(s["dice"], skip=0), "val_mean_iou": mean(s["iou"], skip=0)})
        if dist.main:
            os.makedirs(os.path.dirname(ckpt_path), exist_ok=True)
            atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                         "history": history, "elapsed": elapsed, "run": _run_key(cfg, spec)}, ckpt_path)
        dist.barrier()
    matrix, preds = evaluate(model, vx, vy, num_classes, device)
    s = scores(matrix)
    result = {
        "loss": spec,
        "seed": seed,
        "run": _run_key(cfg, spec),
        "module": repr(criterion),
        "per_class": s,
        "mean": {k: mean(s[k], skip=0) for k in METRICS},
        "confusion": matrix.tolist(),
        "train_time_s": elapsed,
        "history": history,
        "predictions": preds[: cfg.overlays].tolist(),
    }
    if dist.main:
        os.makedirs(os.path.dirname(result_path), exist_ok=True)
        atomic_save(result, result_path, as_json=True)
    dist.barrier()
    return result


def _steps(n: int, cfg: Config, dist: _Dist) -> int:
    return n // cfg.batch_size


def _terminate(signum, frame):  # SIGTERM: leave like Ctrl-C, so that `finally` blocks run
    raise KeyboardInterrupt(f"signal {signum}")


def run(cfg: Config) -> dict:
    """The whole demo: every loss and seed, then the report. Returns the metrics written to ``metrics.json``:
    per loss, :func:`seglosses.demo.stats.aggregate` of its seeds and (after the first loss) ``vs_first``."""
    from seglosses.demo.report import write_report

    dist_rank = int(os.environ.get("RANK", "0"))
    device = _device(cfg.device, dist_rank)
    dist = _Dist(device)
    previous = signal.signal(signal.SIGTERM, _terminate) if dist.main else None
    try:
        train, val, names = load_data(cfg)
        cfg.class_names = names
        num_classes = len(names)
        os.makedirs(cfg.out, exist_ok=True)
        results = {}
        t_start = time.perf_counter()
        seeds = [cfg.seed + i for i in range(cfg.seeds)]
        weighted = any(loss_names.wrappers(spec)[2] for spec in cfg.losses)
        train_weights = pixel_weights(cfg, train) if weighted else None  # once for every weighted(...) loss
        for spec in cfg.losses:
            per_seed = []
            for seed in seeds:
                bar = _bar(spec if cfg.seeds == 1 else f"{spec} s{seed}", cfg, len(train[0]), dist)
                try:
                    per_seed.append(train_one(spec, cfg, train, val, num_classes, device, dist, bar, seed=seed,
                                              train_weights=train_weights))
                finally:
                    if bar is not None:
                        bar.close()
            results[spec] = aggregate(per_seed)
        compare(results)
        metrics = {"config": {k: v for k, v in asdict(cfg).items() if k != "progress"},
                   "seeds": seeds, "device": str(device), "world_size": dist.world, "threads": torch.get_num_threads(),
                   "parameters": sum(p.numel() for p in UNet(train[0].shape[1], num_classes, cfg.width).parameters()),
                   "wall_time_s": time.perf_counter() - t_start, "losses": results}
        if dist.main:
            write_report(metrics, val, cfg)
        return metrics
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _bar(spec, cfg, n, dist):
    if not cfg.progress or not dist.main:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=cfg.epochs * (n // cfg.batch_size), desc=f"{spec:>18}", unit="step", leave=True,
                dynamic_ncols=True)

