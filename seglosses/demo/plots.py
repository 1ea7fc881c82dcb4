"""``seglosses plot focal`` (Figure 1 of the focal loss paper) and ``seglosses plot tversky``, from the library's own
loss functions."""

from __future__ import annotations

import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def focal_curves(gammas=(0.0, 0.5, 1.0, 2.0, 5.0), points: int = 400):
    """``p_t`` and, per gamma, the focal loss of an example whose ground-truth class has probability ``p_t``,
    computed by :func:`seglosses.focal_loss` from the logit ``log(p_t / (1 - p_t))`` (gamma 0: cross-entropy)."""
    from seglosses import focal_loss

    p = torch.linspace(0.0, 1.0, points + 2, dtype=torch.float64)[1:-1]
    x = torch.log(p) - torch.log1p(-p)
    ones = torch.ones_like(x)
    return p, {g: focal_loss(x, ones, "binary", gamma=g, reduction="none") for g in gammas}


def plot_focal(path: str) -> str:
    """Loss against the probability of the ground-truth class for gamma in {0, 0.5, 1, 2, 5} (Lin et al. 2017,
    Figure 1)."""
    plt = _plt()
    p, curves = focal_curves()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for g, loss in curves.items():
        ax.plot(p, loss, label=f"γ = {g:g}" + (" (cross-entropy)" if g == 0 else ""))
    ax.axvspan(0.6, 1.0, color="0.9", zorder=0)
    ax.text(0.8, 1.6, "well-classified\nexamples", ha="center", fontsize=9)
    ax.set(xlim=(0, 1), ylim=(0, 5), xlabel="probability of ground truth class", ylabel="loss",
           title="Focal loss: FL(p_t) = -(1 - p_t)^γ log(p_t)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def tversky_curves(tp: float = 100.0, errors: int = 200, settings=((0.5, 0.5), (0.3, 0.7), (0.7, 0.3))):
    """Tversky loss of one object with ``tp`` true-positive pixels as k false positives (or k false negatives) are
    added, for each (alpha, beta), from :func:`seglosses.tversky_loss` on constructed masks' statistics."""
    from seglosses import tversky_loss

    k = torch.arange(errors + 1, dtype=torch.float64)
    out = {}
    for a, b in settings:
        vals_fp, vals_fn = [], []
        for n_err in k.long().tolist():
            # one image: tp foreground pixels predicted right, n_err extra pixels wrong on one side
            n = int(tp) + n_err
            target = torch.zeros(1, 1, n, dtype=torch.float64)
            logits = torch.full((1, 1, n), -40.0, dtype=torch.float64)
            logits[..., : int(tp)] = 40.0
            target[..., : int(tp)] = 1.0
            fp_logits = logits.clone()
            fp_logits[..., int(tp):] = 40.0          # predicted, not in the target: false positives
            fn_target = target.clone()
            fn_target[..., int(tp):] = 1.0           # in the target, not predicted: false negatives
            vals_fp.append(tversky_loss(fp_logits, target, "binary", alpha=a, beta=b, smooth=0.0).item())
            vals_fn.append(tversky_loss(logits, fn_target, "binary", alpha=a, beta=b, smooth=0.0).item())
        out[(a, b)] = (torch.tensor(vals_fp), torch.tensor(vals_fn))
    return k, out


def plot_tversky(path: str) -> str:
    """How alpha (false positives) and beta (false negatives) move the Tversky penalty between the two errors."""
    plt = _plt()
    k, curves = tversky_curves()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for i, ((a, b), (fp, fn)) in enumerate(curves.items()):
        axes[0].plot(k, fn, color=f"C{i}", label=f"α = {a}, β = {b}")
        axes[1].plot(k, fp, color=f"C{i}", label=f"α = {a}, β = {b}")
    axes[0].set(xlabel="false negatives (object pixels missed)", ylabel="Tversky loss",
                title="Missing pixels: weighed by β")
    axes[1].set(xlabel="false positives (extra pixels predicted)", title="Extra pixels: weighed by α")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("Tversky loss of an object of 100 pixels: 1 - TP / (TP + α FP + β FN)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
