"""The demo's outputs: ``report.md`` (tables and figures), ``metrics.json``, learning curves and prediction overlays."""

from __future__ import annotations

import math
import os

from seglosses.demo.metrics import METRICS
from seglosses.demo.store import atomic_save

#: Class colours of the overlays (background transparent), RGBA.
COLOURS = [(0, 0, 0, 0), (0.95, 0.3, 0.2, 1), (0.2, 0.8, 0.3, 1), (0.25, 0.5, 1.0, 1), (1.0, 0.85, 0.1, 1),
           (0.8, 0.3, 0.9, 1), (0.1, 0.9, 0.9, 1), (1.0, 0.6, 0.0, 1)]


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def tables(metrics: dict) -> str:
    """The summary table (mean over foreground classes) and one table per loss (per class and mean)."""
    names = metrics["config"]["class_names"]
    lines = ["| loss | " + " | ".join(f"{m}" for m in METRICS) + " | train time (s) |",
             "|---" * (len(METRICS) + 2) + "|"]
    for spec, r in metrics["losses"].items():
        lines.append(f"| {spec} | " + " | ".join(_fmt(r["mean"][m]) for m in METRICS)
                     + f" | {r['train_time_s']:.1f} |")
    out = ["Held-out set, each metric's mean over the foreground classes (background left out):", "",
           *lines, ""]
    for spec, r in metrics["losses"].items():
        out += [f"### {spec}", "", f"`{r['module']}`", "",
                "| class | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        for c, cname in enumerate(names):
            out.append(f"| {cname} | " + " | ".join(_fmt(r["per_class"][m][c]) for m in METRICS) + " |")
        out.append("| **mean (foreground)** | " + " | ".join(f"**{_fmt(r['mean'][m])}**" for m in METRICS) + " |")
        out.append("")
    return "\n".join(out)


def learning_curves(metrics: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for spec, r in metrics["losses"].items():
        h = r["history"]
        if not h:
            continue
        ep = [e["epoch"] for e in h]
        first = h[0]["train_loss"] or 1.0
        a.plot(ep, [e["train_loss"] / first for e in h], marker="o", ms=3, label=spec)
        b.plot(ep, [e["val_mean_dice"] for e in h], marker="o", ms=3, label=spec)
    a.set(xlabel="epoch", ylabel="training loss / its first epoch's value", title="Training loss (relative)")
    b.set(xlabel="epoch", ylabel="mean Dice, foreground classes", title="Held-out mean Dice")
    a.set_yscale("log")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    b.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def overlays(metrics: dict, val, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.colors import ListedColormap

    images, masks = val
    losses = list(metrics["losses"].items())
    k = min((len(r["predictions"]) for _, r in losses), default=0)
    if k == 0:
        return
    c = len(metrics["config"]["class_names"])
    cmap = ListedColormap([COLOURS[i % len(COLOURS)] for i in range(c)])
    cols = 2 + len(losses)
    fig, axes = plt.subplots(k, cols, figsize=(1.9 * cols, 1.9 * k + 0.4), squeeze=False)
    for i in range(k):
        img = images[i]
        img = img[0] if img.shape[0] == 1 else img[:3].permute(1, 2, 0)
        img = (img - img.min()) / (img.max() - img.min() + 1e-12)
        gt = masks[i].clone()
        gt[gt == 255] = 0
        panels = [("image", None), ("ground truth", gt)] + [(spec, torch.tensor(r["predictions"][i]))
                                                             for spec, r in losses]
        for j, (title, label) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", interpolation="nearest")
            if label is not None:
                ax.imshow(label, cmap=cmap, vmin=0, vmax=c - 1, interpolation="nearest", alpha=0.85)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(metrics: dict, val, cfg) -> None:
    """Write ``metrics.json``, ``learning_curves.png``, ``predictions.png`` and ``report.md`` into ``cfg.out``."""
    out = cfg.out
    atomic_save(metrics, os.path.join(out, "metrics.json"), as_json=True)
    learning_curves(metrics, os.path.join(out, "learning_curves.png"))
    overlays(metrics, val, os.path.join(out, "predictions.png"))
    c = metrics["config"]
    source = f"`{c['data']}`" if c["data"] else (f"synthetic ({c['train_images']} training and {c['val_images']} "
                                                  f"held-out images of {c['size']}x{c['size']})")
    text = [
        "# seglosses demo", "",
        f"Data: {source}; classes: {', '.join(c['class_names'])}. A U-Net of {metrics['parameters']:,} parameters "
        f"trained once per loss with identical seeds, data order and optimizer (Adam, lr {c['lr']}, batch "
        f"{c['batch_size']}, {c['epochs']} epochs, seed {c['seed']}) on {metrics['device']} "
        f"({metrics['threads']} threads, {metrics['world_size']} process(es)); wall time "
        f"{metrics['wall_time_s']:.0f} s.", "",
        "## Results", "", tables(metrics), "",
        "## Learning curves", "", "![learning curves](learning_curves.png)", "",
        "## Predictions on held-out images", "",
        "Image, ground truth and each loss's prediction (colours: classes; background transparent).", "",
        "![predictions](predictions.png)", "",
    ]
    with open(os.path.join(out, "report.md.tmp"), "w") as f:
        f.write("\n".join(text))
    os.replace(os.path.join(out, "report.md.tmp"), os.path.join(out, "report.md"))
