"""The ``seglosses`` command: ``seglosses demo``, ``seglosses plot focal|tversky``, ``seglosses bench``."""

from __future__ import annotations

import argparse
import os
import sys


def _demo_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from seglosses.demo import losses as names
    from seglosses.demo.train import Config

    d = Config()
    p.add_argument("--losses", default=",".join(names.DEFAULT),
                   help="comma-separated losses: any seglosses loss by short name (ce, focal, dice, jaccard, tversky, "
                   "focal_tversky, lovasz, generalized_dice, unified_focal, combo, exp_log, boundary, ...) or a "
                   "weighted sum such as 0.5*dice+ce; a coefficient may be a schedule over epochs: "
                   "linear|ramp(start,end,steps[,begin]), cosine(...), piecewise(v0,b1,v1,...), "
                   "rebalance([start,step,floor]), constant(v), or 1-schedule, where 'epochs' stands for --epochs: "
                   "dice+ramp(0.01,1,epochs)*boundary, rebalance()*gdl+1-rebalance()*boundary; "
                   "weighted(spec) trains with pixel weight maps (--weight-map), deep(spec) with deep supervision "
                   f"(a U-Net with two extra heads): deep(weighted(dice+ce)) (default: {','.join(names.DEFAULT)})")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed, help="first seed; it also draws the data set (the synthetic "
                   "images or the split of --data), the same for every seed")
    p.add_argument("--seeds", type=int, default=d.seeds, metavar="K",
                   help="train each loss K times with seeds --seed, ..., --seed + K - 1 (initial weights and data "
                   "order) and report mean ± std over seeds and a sign test against the first loss "
                   f"(default: {d.seeds})")
    p.add_argument("--device", default=d.device, help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--out", default=d.out, help="output folder; rerunning with the same folder resumes")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="train on DIR/images/*.png and DIR/masks/*.png (integer labels, 255 ignored) instead of "
                   "the synthetic set")
    p.add_argument("--weight-map", choices=("boundary", "folder"), default=d.weight_map,
                   help="the pixel weights of weighted(...) losses: boundary = 1 + 5 exp(-d^2 / 8), d the distance "
                   "in pixels to the nearest class border (U-Net's border term); folder = DIR/weights/<stem>.png of "
                   "--data DIR, each pixel's value its weight (default: boundary)")
    p.add_argument("--size", type=int, default=d.size, help="synthetic images' side")
    p.add_argument("--train-images", type=int, default=d.train_images)
    p.add_argument("--val-images", type=int, default=d.val_images)
    p.add_argument("--width", type=int, default=d.width, help="U-Net width (channels of the first stage)")
    p.add_argument("--overlays", type=int, default=d.overlays, help="held-out images in predictions.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _check(p, args):
    for name in ("epochs", "seeds", "batch_size", "size", "train_images", "val_images", "width"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    if args.size % 4:
        p.error(f"--size must be divisible by 4 (two 2x down-samplings); got {args.size}")
    if args.lr <= 0:
        p.error(f"--lr must be > 0; got {args.lr}")
    if args.data is not None and not os.path.isdir(args.data):
        p.error(f"--data: {args.data!r} is not a folder")


def demo_main(argv=None) -> int:
    """``seglosses demo`` / ``python -m seglosses.demo``."""
    from seglosses.demo import losses as names
    from seglosses.demo.train import Config, run

    p = _demo_parser(argparse.ArgumentParser(prog="seglosses demo", description="Train a small U-Net per loss "
                                             "and seed and compare the losses on a held-out set."))
    args = p.parse_args(argv)
    _check(p, args)
    specs = names.split_specs(args.losses)
    try:
        for s in specs:
            names.build(s, epochs=args.epochs)
    except ValueError as e:
        p.error(str(e))
    cfg = Config(losses=specs, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                 seeds=args.seeds, device=args.device, out=args.out, data=args.data, size=args.size,
                 train_images=args.train_images, val_images=args.val_images, width=args.width, overlays=args.overlays,
                 weight_map=args.weight_map, progress=not args.no_progress)
    try:
        metrics = run(cfg)
    except KeyboardInterrupt:
        print(f"\ninterrupted: rerun the same command (same --out {cfg.out!r}) to resume", file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        from seglosses.demo.report import tables

        print()
        print(tables(metrics))
        print(f"wall time {metrics['wall_time_s']:.0f} s; report: {os.path.join(cfg.out, 'report.md')}")
    return 0


def plot_main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="seglosses plot", description="Plots of the losses' shapes.")
    p.add_argument("which", choices=("focal", "tversky"))
    p.add_argument("--out", default=None, help="PNG path (default: focal.png / tversky.png)")
    args = p.parse_args(argv)
    from seglosses.demo import plots

    path = args.out or f"{args.which}.png"
    (plots.plot_focal if args.which == "focal" else plots.plot_tversky)(path)
    print(path)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = {"demo": demo_main, "plot": plot_main}
    if not argv or argv[0] not in commands | {"bench": None}:
        print("usage: seglosses {demo,plot,bench} [options]   (seglosses <command> -h for help)", file=sys.stderr)
        return 2
    if argv[0] == "bench":
        from seglosses.bench import main as bench_main

        return bench_main(argv[1:])
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
