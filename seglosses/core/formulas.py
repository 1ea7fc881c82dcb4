"""Framework-free formulas shared by the PyTorch and Keras front ends (plain arithmetic on tensors of either).

Each score is returned as ``(err, num)`` with ``score = num / (num + err)``: the loss ``1 - score`` is then
``err / den`` and ``-log(score)`` is ``-log(num / den)``, so nothing cancels near a score of 1 or of 0.
"""

from __future__ import annotations

from seglosses.core.args import check_scalar

#: Floor under a score before ``-log(score)`` (``log_loss=True``), as smp does.
LOG_EPS = 1e-7
#: The smallest normal float32 (``torch.finfo(torch.float32).tiny``): the floor of a loss before a power < 1, so that
#: the power's gradient stays finite.
TINY = 2.0 ** -126


def dice_score(tp, fp, fn, s):
    """Dice = (2 tp + s) / (2 tp + fp + fn + s)."""
    return fp + fn, 2 * tp + s


def tversky_score(alpha, beta):
    """Tversky = (tp + s) / (tp + alpha fp + beta fn + s): alpha weighs false positives, beta false negatives."""
    def score(tp, fp, fn, s):
        return alpha * fp + beta * fn, tp + s
    return score


def check_distance_matrix(value, k=None):
    """A distance matrix between classes (nested sequences of numbers, or anything with ``tolist()``) as a list of
    lists of floats: square, ``(k, k)`` when ``k`` is given, finite, >= 0, 0 on the diagonal, not all 0 (it is
    normalised by its largest entry)."""
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    shape = f"({k}, {k})" if k is not None else "(C, C)"
    if not isinstance(value, (list, tuple)) or not all(isinstance(r, (list, tuple)) for r in value):
        raise TypeError(f"`distance_matrix` must be a {shape} matrix (nested sequences or a tensor); got "
                        f"{type(value).__name__}")
    got = (len(value),) + ((len(value[0]),) if value else ())
    if any(len(r) != len(value) for r in value) or (k is not None and len(value) != k):
        raise ValueError(f"`distance_matrix` must have shape {shape}: one row and column per class (C for "
                         f"mode='multiclass', 2 states (absent, present) for 'binary'/'multilabel'); got {got} "
                         f"(row lengths {[len(r) for r in value]})")
    rows = [[check_scalar(f"distance_matrix[{i}][{j}]", v, low=0.0) for j, v in enumerate(r)]
            for i, r in enumerate(value)]
    if any(rows[i][i] != 0 for i in range(len(rows))):
        raise ValueError(f"`distance_matrix` must be 0 on its diagonal (a distance between classes); got "
                         f"{[rows[i][i] for i in range(len(rows))]}")
    if not any(v > 0 for r in rows for v in r):
        raise ValueError("`distance_matrix` must hold a positive distance (it is normalised by its largest entry); "
                         "got all zeros")
    return rows


def check_alpha_beta(alpha, beta):
    """Tversky's weights: each >= 0, not both 0."""
    alpha = check_scalar("alpha", alpha, low=0.0)
    beta = check_scalar("beta", beta, low=0.0)
    if alpha + beta == 0:
        raise ValueError(f"`alpha` + `beta` must be > 0 (they weigh false positives and negatives); "
                         f"got {alpha} + {beta}")
    return alpha, beta


def mcc_loss(tp, fp, fn, tn, s, xp):
    """``1 - MCC`` per class from the soft statistics, with ``xp`` the array namespace (``torch`` or ``keras.ops``:
    ``where``, ``sqrt``, ``logical_not``).

    With the four margins ``d1 = tp + fp + s`` (predicted), ``d2 = tp + fn + s`` (target), ``d3 = tn + fp + s``
    (target negatives) and ``d4 = tn + fn + s`` (predicted negatives), the smoothed coefficient is
    ``MCC = ((tp + s)(tn + s) - fp fn) / sqrt(d1 d2 d3 d4)``, that is ``A B - F`` with
    ``A = (tp + s) / sqrt(d1 d2)``, ``B = (tn + s) / sqrt(d3 d4)``, ``F = fp fn / sqrt(d1 d2 d3 d4)``, and the loss is
    written as a sum of terms that are each >= 0, so that no difference of two near-equal numbers is formed:

        1 - MCC = (1 - A) + A (1 - B) + F,   1 - A = (e1 + r1 e2) / (1 + A),   1 - B = (e3 + r3 e4) / (1 + B)

    with ``e1 = fp / d1``, ``e2 = fn / d2``, ``e3 = fp / d3``, ``e4 = fn / d4`` and ``r_i = 1 - e_i`` computed as its
    own ratio (``r1 = (tp + s) / d1``, ``r3 = (tn + s) / d3``). A ratio 0/0 (a margin of 0, possible with s = 0 only)
    is taken as its limit for s -> 0+ (``e = 0``, ``r = 1``): a class absent from the target and the prediction
    scores 1; a factor of A, B or F whose margin is 0 is 0 (1 when both of its margins are 0), its value there, with
    no gradient through it (the true one is infinite: sqrt at 0). A NaN statistic gives a NaN loss."""
    def ok(den):  # den > 0, or NaN (a NaN statistic reaches the loss)
        return xp.logical_not(den <= 0)

    def ratio(num, den, empty):
        good = ok(den)
        return xp.where(good, num / xp.where(good, den, 1.0), empty)

    def root(den):  # sqrt(den), 1 where den is 0 (the branch where() drops: no infinite slope there)
        return xp.sqrt(xp.where(ok(den), den, 1.0))

    def factor(num, da, db, empty):  # num / sqrt(da db); num is 0 where a margin is 0: 0 there, ``empty`` if both are
        both = xp.logical_not(xp.logical_or(da <= 0, db <= 0))
        fill = xp.where(xp.logical_or(ok(da), ok(db)), xp.zeros_like(num), xp.zeros_like(num) + empty)
        return xp.where(both, num / (root(da) * root(db)), fill)

    d1, d2, d3, d4 = tp + fp + s, tp + fn + s, tn + fp + s, tn + fn + s
    a, b = factor(tp + s, d1, d2, 1.0), factor(tn + s, d3, d4, 1.0)
    one_minus_a = (ratio(fp, d1, 0.0) + ratio(tp + s, d1, 1.0) * ratio(fn, d2, 0.0)) / (1 + a)
    one_minus_b = (ratio(fp, d3, 0.0) + ratio(tn + s, d3, 1.0) * ratio(fn, d4, 0.0)) / (1 + b)
    f = factor(fp, d1, d3, 0.0) * factor(fn, d2, d4, 0.0)
    return one_minus_a + a * one_minus_b + f
