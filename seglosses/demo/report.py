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


def _pm(mean: float, std: float, k: int, n: int | None = None) -> str:
    """``mean ± std`` over seeds (the standard deviation only where there are several seeds), and ``(n/k seeds)``
    where the value is defined for only n of the k seeds."""
    n = k if n is None else n
    if n == 0:
        return "n/a"
    text = _fmt(mean) if k < 2 or n < 2 else f"{_fmt(mean)} ± {_fmt(std)}"
    return text if n == k else f"{text} ({n}/{k} seeds)"


def seeds_sentence(k: int) -> str:
    """What K seeds can and cannot show, for the report."""
    if k < 2:
        return ("One seed per loss: no spread and no comparison over seeds (run with --seeds K, K >= 2, for mean ± "
                "std and a sign test).")
    return (f"With K = {k} seeds the exact two-sided sign test cannot give a p-value below 2/2^{k} = "
            f"{2 / 2 ** k:.3g}" + (": no difference can reach p < 0.05 with fewer than 6 seeds." if k < 6 else "."))


def tables(metrics: dict) -> str:
    """The summary table (mean ± sample std over seeds of each metric's mean over the foreground classes), the
    paired comparison of each loss with the first one (Dice), and one table per loss (per class)."""
    names = metrics["config"]["class_names"]
    k = len(metrics.get("seeds", [None]))
    seeds = metrics.get("seeds", [metrics["config"]["seed"]])
    lines = ["| loss | " + " | ".join(f"{m}" for m in METRICS) + " | train time (s) |",
             "|---" * (len(METRICS) + 2) + "|"]
    for spec, r in metrics["losses"].items():
        lines.append(f"| {spec} | " + " | ".join(_pm(r["mean"][m], r["std"][m], k, r["count"][m])
                                             for m in METRICS) + f" | {r['train_time_s']:.1f} |")
    spread = (f"mean ± sample standard deviation (ddof=1) over K = {k} seeds ({', '.join(map(str, seeds))})"
              if k > 1 else f"one seed ({seeds[0]})")
    out = [(f"Held-out set, each metric's mean over the foreground classes (background left out); {spread}; train "
           f"time per seed:"), "", *lines, ""]
    specs = list(metrics["losses"])
    if k > 1 and len(specs) > 1:
        base = specs[0]
        out += [(f"Paired by seed against {base} (same initial weights and batches): the mean over seeds of the "
                f"difference in mean Dice, the seeds where the loss is better / worse / tied, and the exact two-sided "
                f"sign test's p-value (ties dropped). {seeds_sentence(k)}"), "",
                f"| loss | Dice − {base} | better / worse / tied | sign test p |", "|---|---|---|---|"]
        for spec in specs[1:]:
            c = metrics["losses"][spec]["vs_first"]["dice"]
            diff = "n/a" if math.isnan(c["mean_diff"]) else f"{c['mean_diff']:+.3f}"
            out.append(f"| {spec} | {diff} | {c['wins']} / {c['losses']} / {c['ties']} | {c['p']:.3g} |")
        out.append("")
    for spec, r in metrics["losses"].items():
        out += [f"### {spec}", "", f"`{r['module']}`", "",
                "| class | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
        for c, cname in enumerate(names):
            out.append(f"| {cname} | " + " | ".join(_pm(r["per_class"][m][c], r["per_class_std"][m][c], k,
                                                          r["per_class_count"][m][c])
                                                      for m in METRICS) + " |")
        out.append("| **mean (foreground)** | " + " | ".join(f"**{_pm(r['mean'][m], r['std'][m], k, r['count'][m])}**"
                                                            for m in METRICS) + " |")
        out.append("")
    return "\n".join(out)


def learning_curves(metrics: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    k = len(metrics.get("seeds", [None]))
    for i, (spec, r) in enumerate(metrics["losses"].items()):
        for ax, key in ((a, "train_loss_rel"), (b, "val_mean_dice")):
            c = r["curves"][key]
            if not c["epoch"]:
                continue
            ax.plot(c["epoch"], c["mean"], marker="o", ms=3, color=f"C{i}", label=spec)
            if k > 1:
                ax.fill_between(c["epoch"], c["min"], c["max"], color=f"C{i}", alpha=0.18, lw=0)
    band = f" (line: mean of {k} seeds; band: min to max)" if k > 1 else ""
    a.set(xlabel="epoch", ylabel="training loss / its first epoch's value", title="Training loss (relative)" + band)
    b.set(xlabel="epoch", ylabel="mean Dice, foreground classes", title="Held-out mean Dice" + band)
    from matplotlib.ticker import MaxNLocator

    for ax in (a, b):
        ax.title.set_fontsize(10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_yscale("log")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    b.legend(fontsize=8, loc="upper left")
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
    seeds = metrics.get("seeds", [c["seed"]])
    times = (f"once per loss (seed {seeds[0]})" if len(seeds) == 1 else
             f"{len(seeds)} times per loss, seeds {', '.join(map(str, seeds))} (a seed sets the initial weights and "
             f"the order of the training images; the data set is the same for every seed)")
    text = [
        "# seglosses demo", "",
        (f"Data: {source}; classes: {', '.join(c['class_names'])}. A U-Net of {metrics['parameters']:,} parameters "
        f"trained {times}, with identical seeds, data order and optimizer across losses (Adam, lr {c['lr']}, batch "
        f"{c['batch_size']}, {c['epochs']} epochs, data drawn with seed {c['seed']}) on {metrics['device']} "
        f"({metrics['threads']} threads, {metrics['world_size']} process(es)); wall time "
        f"{metrics['wall_time_s']:.0f} s. Figures vary with the hardware and the thread count."), "",
        "## Results", "", tables(metrics), "",
        "## Learning curves", "", "![learning curves](learning_curves.png)", "",
        "## Predictions on held-out images", "",
        (f"Image, ground truth and each loss's prediction with seed {seeds[0]} (colours: classes; background "
        f"transparent)."), "",
        "![predictions](predictions.png)", "",
    ]
    with open(os.path.join(out, "report.md.tmp"), "w") as f:
        f.write("\n".join(text))
    os.replace(os.path.join(out, "report.md.tmp"), os.path.join(out, "report.md"))
