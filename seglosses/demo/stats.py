"""The demo's statistics over seeds: mean and sample standard deviation per metric, learning curves' spread, and a
paired comparison of each loss against the first one (the exact two-sided sign test over seeds).

A seed sets the network's initial weights and the order of the training images; the data set is the same for every
seed. Two losses trained with the same seed start from the same weights and see the same batches, so their results
are paired by seed.
"""

from __future__ import annotations

import math

from seglosses.demo.metrics import METRICS

#: Per-epoch values of a run's history that the learning curves show.
CURVES = ("train_loss", "val_mean_dice", "val_mean_iou")


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the finite values; NaN for the mean when none is finite, NaN
    for the standard deviation when fewer than two are.

    Example:
        >>> [round(v, 6) for v in mean_std([0.5, 0.7, 0.9])]
        [0.7, 0.2]
        >>> mean_std([0.5, float("nan")])
        (0.5, nan)
    """
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return math.nan, math.nan
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, math.nan
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test: the probability, under a fair coin, of a split of ``wins + losses`` pairs at least
    as lopsided as the one observed, ``min(1, 2 * sum_{k <= min(wins, losses)} C(n, k) / 2^n)`` (ties are dropped
    before: they are not counted in ``wins`` or ``losses``). 1.0 when there is no pair. With n pairs the smallest
    p-value is ``2 / 2^n``: 0.25 for 3 seeds, 0.0625 for 5.

    Example:
        >>> sign_test(5, 0), sign_test(4, 1), sign_test(2, 2)
        (0.0625, 0.375, 1.0)
    """
    for name, v in (("wins", wins), ("losses", losses)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"`{name}` must be an int >= 0; got {v!r}")
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def paired(first, other) -> dict:
    """Compare ``other``'s per-seed values with ``first``'s, paired by position (the same seed): the per-seed
    differences ``other - first``, their mean, how many seeds ``other`` wins, loses and ties, and the sign test's p.
    Pairs with a NaN are left out.

    Example:
        >>> r = paired([0.5, 0.6, 0.7], [0.6, 0.6, 0.9])
        >>> round(r["mean_diff"], 6), r["wins"], r["losses"], r["ties"], r["p"]
        (0.1, 2, 0, 1, 0.5)
    """
    if len(first) != len(other):
        raise ValueError(f"paired values must have one value per seed on both sides; got {len(first)} and "
                         f"{len(other)}")
    diffs = [b - a for a, b in zip(first, other) if math.isfinite(a) and math.isfinite(b)]
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    return {"diffs": diffs, "mean_diff": sum(diffs) / len(diffs) if diffs else math.nan, "wins": wins,
            "losses": losses, "ties": len(diffs) - wins - losses, "p": sign_test(wins, losses)}


def curves(histories: list[list[dict]]) -> dict[str, dict[str, list[float]]]:
    """Per epoch, the mean, standard deviation, minimum and maximum over seeds of each value in :data:`CURVES`, plus
    ``train_loss_rel`` (each seed's training loss over its own first epoch's): ``{value: {"epoch", "mean", "std",
    "min", "max"}}``. Epochs that not every seed has reached are left out."""
    epochs = min((len(h) for h in histories), default=0)
    out = {}
    for key in (*CURVES, "train_loss_rel"):
        rows = {"epoch": [], "mean": [], "std": [], "min": [], "max": []}
        for e in range(epochs):
            if key == "train_loss_rel":
                vals = [h[e]["train_loss"] / (h[0]["train_loss"] or 1.0) for h in histories]
            else:
                vals = [h[e][key] for h in histories]
            m, s = mean_std(vals)
            finite = [v for v in vals if math.isfinite(v)]
            rows["epoch"].append(histories[0][e]["epoch"])
            rows["mean"].append(m)
            rows["std"].append(s)
            rows["min"].append(min(finite) if finite else math.nan)
            rows["max"].append(max(finite) if finite else math.nan)
        out[key] = rows
    return out


def _finite(values) -> int:
    return sum(v is not None and math.isfinite(v) for v in values)


def aggregate(per_seed: list[dict]) -> dict:
    """One loss's entry of ``metrics.json`` from its per-seed results (in seed order): ``mean`` and ``std`` of each
    metric's foreground mean over seeds, ``per_class`` and ``per_class_std`` the same per class, ``count`` and
    ``per_class_count`` the number of seeds where the value is defined (a class never predicted has no precision),
    ``train_time_s`` the mean training time of one seed, ``curves`` (:func:`curves`), the first seed's
    ``predictions`` (for the overlays) and ``per_seed`` itself."""
    if not per_seed:
        raise ValueError("`per_seed` must hold at least one result; got none")
    first = per_seed[0]
    out = {"loss": first["loss"], "module": first["module"], "seeds": [r["seed"] for r in per_seed],
           "mean": {}, "std": {}, "count": {}, "per_class": {}, "per_class_std": {}, "per_class_count": {}}
    for m in METRICS:
        vals = [r["mean"][m] for r in per_seed]
        out["mean"][m], out["std"][m] = mean_std(vals)
        out["count"][m] = _finite(vals)
        per_class = [[r["per_class"][m][c] for r in per_seed] for c in range(len(first["per_class"][m]))]
        pairs = [mean_std(v) for v in per_class]
        out["per_class"][m] = [p[0] for p in pairs]
        out["per_class_std"][m] = [p[1] for p in pairs]
        out["per_class_count"][m] = [_finite(v) for v in per_class]
    out["train_time_s"] = mean_std(r["train_time_s"] for r in per_seed)[0]
    out["curves"] = curves([r["history"] for r in per_seed])
    out["predictions"] = first["predictions"]
    out["per_seed"] = per_seed
    return out


def compare(losses: dict) -> None:
    """Add ``vs_first`` to every entry of ``losses`` (``{spec: aggregate(...)}``) after the first: for each metric,
    :func:`paired` of its per-seed foreground means against the first loss's."""
    specs = list(losses)
    if not specs:
        return
    base = losses[specs[0]]["per_seed"]
    for spec in specs[1:]:
        other = losses[spec]["per_seed"]
        losses[spec]["vs_first"] = {"baseline": specs[0], **{
            m: paired([r["mean"][m] for r in base], [r["mean"][m] for r in other]) for m in METRICS}}
