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


def check_alpha_beta(alpha, beta):
    """Tversky's weights: each >= 0, not both 0."""
    alpha = check_scalar("alpha", alpha, low=0.0)
    beta = check_scalar("beta", beta, low=0.0)
    if alpha + beta == 0:
        raise ValueError(f"`alpha` + `beta` must be > 0 (they weigh false positives and negatives); "
                         f"got {alpha} + {beta}")
    return alpha, beta
