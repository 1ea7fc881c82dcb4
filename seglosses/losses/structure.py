"""Structure losses: the SSIM loss (Wang et al. 2004) and the correlation-maximized structural similarity loss
(Zhao et al. 2019), 1-D to 3-D, every mode, with local statistics from a separable Gaussian window.

Windows are normalised to the valid pixels they cover: a window's weights over pixels outside the image or ignored
are dropped and the rest rescaled to sum 1 (:func:`_moments`). So no pixel is invented at the borders (no zero or
reflect padding), an image smaller than the window has a defined answer (the window truncated to the image), and
ignoring a pixel removes it from every window. Inside the image, on windows without an ignored pixel, the
statistics are those of the plain Gaussian filter (MONAI's and kornia's).
"""

from __future__ import annotations

import itertools
import math

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

from seglosses.core.args import (Mode, Reduction, check_bool, check_classes, check_one_of, check_reduction,
                                 check_scalar, check_window)
from seglosses.core.checks import (
    activation, class_vector, compute_dtype, pixel_weights, prepare, spatial_axes, take, to_compute, values_at_hand,
)
from seglosses.core.module import LossModule
from seglosses.core.pixel import pixels
from seglosses.core.targets import activate, valid_indices

#: SSIM's constants (Wang et al. 2004, section III.B): C1 = (K1 L)^2, C2 = (K2 L)^2, data range L = 1.
K1, K2 = 0.01, 0.03
#: Zhao et al. 2019, eq. (2): the stabilising constant of the normalised structure, "set to 0.01 empirically".
C4 = 0.01


def gaussian_window(window_size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """The 1-D Gaussian window ``exp(-k^2 / (2 sigma^2))``, ``k = -(w-1)/2 .. (w-1)/2``, normalised to sum 1 (the
    window of Wang et al. 2004, MONAI and kornia; the n-D window is its separable product)."""
    k = torch.arange(window_size, dtype=torch.float64, device=device) - (window_size - 1) / 2  # made there: no copy
    g = torch.exp(-(k * k) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype=dtype)


def _filter(t: torch.Tensor, kernel: torch.Tensor, nd: int, valid: bool) -> torch.Tensor:
    """``t`` ``(G, *spatial)`` filtered by the separable window along each of its ``nd`` spatial axes in turn:
    zero-padded to the same size, or only the centres whose window fits (``valid``). Each pass is a depthwise 2-D
    convolution of ``(1, G, rest, length)`` with a ``1 x w`` kernel (oneDNN's fast path; a 1-channel conv1d of
    ``(G * rest, 1, length)`` is ~15x slower on the CPU)."""
    w, g = kernel.numel(), t.shape[0]
    weight = kernel.view(1, 1, 1, w).expand(g, 1, 1, w)
    for a in range(nd):
        axis = 1 + a
        t = t.movedim(axis, -1)
        lead = t.shape[:-1]
        with torch.autocast(t.device.type if t.device.type in ("cpu", "cuda") else "cpu", enabled=False):
            y = F.conv2d(t.reshape(1, g, math.prod(lead[1:]), t.shape[-1]), weight, padding=(0, 0 if valid else w // 2),
                         groups=g)  # in the compute dtype
        t = y.reshape(*lead, y.shape[-1]).movedim(-1, axis)
    return t


class _Stats:
    """Local statistics of two maps over the normalised windows, at the window centres."""

    def __init__(self, x, y, valid, spatial, window_size, sigma, padding_valid, means_only=False):
        # x, y (N, K, S) in the compute dtype, 0 at ignored elements; valid (N, K, S) bool or None.
        n, k = x.shape[:2]
        nd = len(spatial)
        kernel = gaussian_window(window_size, sigma, x.dtype, x.device)
        # Centred at 1/2: the values lie in [-1/2, 1/2], so E[x^2] - E[x]^2 cancels less (the variances are then
        # clamped at 0; their rounding, ~1e-7 in float32, is small against C2 = 9e-4 in the SSIM denominators).
        xc, yc = x - 0.5, y - 0.5
        one = torch.ones_like(x)
        parts = [one, xc, yc] if means_only else [one, xc, yc, xc * xc, yc * yc, xc * yc]
        if valid is not None:
            zero = torch.zeros((), dtype=x.dtype, device=x.device)
            parts = [torch.where(valid, t, zero) for t in parts]
        stack = torch.stack(parts).reshape(len(parts) * n * k, *spatial)
        f = _filter(stack, kernel, nd, padding_valid)
        self.out_spatial = tuple(f.shape[1:])
        f = f.reshape(len(parts), n, k, math.prod(self.out_spatial))
        if valid is None:
            centre = None
        else:
            centre = valid.reshape(n, k, *spatial)
            if padding_valid:
                r = window_size // 2
                for a in range(nd):
                    centre = centre.narrow(2 + a, r, spatial[a] - 2 * r)
            centre = centre.reshape(n, k, math.prod(self.out_spatial))
        self.centre = centre  # (N, K, S') bool: the centres that count; None: all
        wsum = f[0] if centre is None else torch.where(centre, f[0], 1.0)  # >= the centre's weight where it counts
        mx, my = f[1] / wsum, f[2] / wsum
        if not means_only:
            self.vx = (f[3] / wsum - mx * mx).clamp_min(0.0)
            self.vy = (f[4] / wsum - my * my).clamp_min(0.0)
            self.cxy = f[5] / wsum - mx * my
        self.mx, self.my = mx + 0.5, my + 0.5
        self._args, self.sigma = (x, y, valid, spatial, kernel, wsum), sigma

    def centred_variances(self):
        """The variances as the window means of the squared deviations from each centre's mean (two passes, one
        shifted copy per window offset, no gradient): no cancellation, for square roots near 0 ("same" only)."""
        x, y, valid, spatial, kernel, wsum = self._args
        n, k = x.shape[:2]
        nd, r = len(spatial), kernel.numel() // 2
        grid = (n, k, *spatial)
        pad = [r, r] * nd
        xp, yp = F.pad(x.reshape(grid), pad), F.pad(y.reshape(grid), pad)
        vp = F.pad((torch.ones(grid, dtype=torch.bool, device=x.device) if valid is None
                    else valid.reshape(grid)), pad, value=False)
        mx, my = self.mx.reshape(grid), self.my.reshape(grid)
        taps = [math.exp(-(i * i) / (2.0 * self.sigma ** 2)) for i in range(-r, r + 1)]  # Python floats: no read
        taps = [v / math.fsum(taps) for v in taps]
        sx, sy = torch.zeros_like(mx), torch.zeros_like(my)
        for offset in itertools.product(range(2 * r + 1), repeat=nd):
            w = 1.0
            xs, ys, vs = xp, yp, vp
            for a, o in enumerate(offset):
                w *= taps[o]
                xs, ys, vs = xs.narrow(2 + a, o, spatial[a]), ys.narrow(2 + a, o, spatial[a]), vs.narrow(2 + a, o,
                                                                                                          spatial[a])
            sx = sx + torch.where(vs, (xs - mx) ** 2, 0.0) * w
            sy = sy + torch.where(vs, (ys - my) ** 2, 0.0) * w
        s_ = math.prod(spatial)
        return sx.reshape(n, k, s_) / wsum, sy.reshape(n, k, s_) / wsum


def _valid_centres(padding, spatial, window_size):
    return padding == "same" or all(d >= window_size for d in spatial)


def _setup(logits, target, mode, ignore_index, from_logits, classes, name):
    inp = prepare(logits, target, mode, ignore_index)  # (checks ignore_index)
    check_bool("from_logits", from_logits)
    spatial = spatial_axes(logits.shape, mode, name)
    classes = check_classes(classes, inp.c)
    return inp, spatial, classes


def _probs_and_target(inp, mode, ignore_index, from_logits):
    """Probabilities p and the one-vs-rest target g, each ``(N, C, S)`` in the compute dtype, 0 at ignored
    elements, and the valid mask (None: all valid)."""
    dt = compute_dtype(inp.x)
    with torch.no_grad():
        if inp.index:
            t = inp.target
            valid = valid_indices(t, ignore_index, None if values_at_hand(t) else inp.c)
            cls = torch.arange(inp.c, device=t.device).view(1, -1, 1)
            g = (t.unsqueeze(1) == cls).to(dt)  # (N, C, S): the window moments are 6 maps of this size anyway
            valid = None if valid is None else valid.unsqueeze(1).expand(-1, inp.c, -1)
        else:
            valid = None if ignore_index is None else inp.target != ignore_index
            g = inp.target.to(dt)
            if valid is not None:
                g = torch.where(valid, g, 0.0)
    x = inp.x
    if valid is not None:  # ignored elements: a finite input, so that a NaN there reaches nothing
        x = torch.where(valid, x, 0.0 if from_logits else 0.5)
    p = activate(to_compute(x), activation(mode, from_logits))
    if valid is not None:
        p = torch.where(valid, p, 0.0)
    return p, g, valid


def _pixel_weight(pixel_weight, logits, mode, inp, valid, classes):
    """The pixel weights ``(N, 1 | K, S)`` of the kept classes, 0 at ignored elements (a NaN there reaches
    nothing); None without a map."""
    pw = pixel_weights(pixel_weight, logits, mode, inp)
    if pw is None:
        return None
    if valid is not None:
        pw = torch.where(valid, pw, 0.0)
    return take(pw, classes) if pw.shape[1] > 1 else pw


def _at_centres(t, spatial, window_size):
    """``t`` ``(N, K, S)`` at the centres of the "valid" windows ``(N, K, S')``."""
    r = window_size // 2
    t = t.reshape(*t.shape[:2], *spatial)
    for a in range(len(spatial)):
        t = t.narrow(2 + a, r, spatial[a] - 2 * r)
    return t.reshape(*t.shape[:2], -1)


def _reduce_map(loss, norm, reduction, shape):
    """A map ``(N, K, S')`` (0 where it does not count) reduced: "none" the map in ``shape``, "sum", or "mean":
    the sum over ``norm`` (0 when ``norm`` is 0)."""
    if reduction == "none":
        return loss.reshape(shape)
    total = loss.sum()
    if reduction == "sum":
        return total
    return total / torch.where(norm > 0, norm, 1.0)


def ssim_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, window_size: int = 11, sigma: float = 1.5,
              padding: Literal["same", "valid"] = "same", classes: Sequence[int] | None = None,
              weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
              pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
              reduction: Reduction = "mean") -> torch.Tensor:
    r"""SSIM loss: one minus the structural similarity (Wang et al. 2004) of each class's probability map and
    target map, with a Gaussian window.

    .. math::
        L = \frac{1}{|V| K} \sum_c \sum_{x \in V} 1 - \frac{(2 \mu_p \mu_g + C_1)(2 \sigma_{pg} + C_2)}
            {(\mu_p^2 + \mu_g^2 + C_1)(\sigma_p^2 + \sigma_g^2 + C_2)}

    At each centre x, mu, sigma^2 and sigma_pg are the local means, variances and covariance of the class-c maps
    p_c (sigmoid, or softmax for "multiclass") and g_c (the target; one-vs-rest for class indices) under the
    Gaussian window (``window_size`` taps per axis, std ``sigma``), restricted to the valid pixels of the image and
    renormalised. C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with data range L = 1 (Wang et al., section III.B).
    V is the set of valid centres: every valid pixel (``padding="same"``), or those whose window lies inside the
    image (``"valid"``: Wang's MATLAB code, MONAI). Without ignored pixels and with ``padding="valid"`` this is
    MONAI's ``SSIMLoss`` and twice kornia's ``ssim_loss(padding="valid")`` on (p, g). ``"same"`` truncates the window
    at the borders where kornia reflects the image. A composite such as the BASNet / UNet3+ hybrid loss is a sum:
    ``CrossEntropyLoss("binary") + SSIMLoss("binary") + JaccardLoss("binary")``.

    Args:
        logits: ``(N, C, *spatial)`` logits (probabilities with ``from_logits=False``), 1 to 3 spatial axes;
            ``(N, *spatial)`` or ``(N, 1, *spatial)`` for "binary".
        target: as :func:`seglosses.dice_loss`.
        mode: "binary", "multiclass" or "multilabel".
        window_size: taps of the Gaussian window per axis (odd; 11 in Wang et al.), truncated to the image.
        sigma: the window's standard deviation in pixels (1.5 in Wang et al.).
        padding: "same" (a value at every valid pixel, the window truncated at the borders) or "valid" (centres
            whose whole window lies in the image; none, and a loss of 0, when an axis is shorter than the window).
        classes: class indices to keep; None keeps all.
        weight: per-class weights ``(C,)``: the map of class c is multiplied by w_c and "mean" divides by
            sum_c w_c |V_c| (a weighted mean over the (centre, class) pairs); None: all 1.
        ignore_index: target value whose pixels count nowhere: left out of every window and of the mean, zero
            gradient.
        pixel_weight: a weight map ``(N, *spatial)`` (every class of a pixel) or ``(N, C, *spatial)`` (per pixel
            and class), each axis the full size or 1, a per-call input of the Module; None: all 1. The value at
            each centre (and class) is multiplied by the weight of the centre's pixel and "mean" divides by the sum
            of those weights (times ``weight``) over the valid centres: a weighted mean of the SSIM map. The
            windows themselves are not weighted: a pixel of weight 0 drops its own centre's value but stays in its
            neighbours' windows. A weight at an ignored pixel has no effect; no gradient flows to it.
        from_logits: False: the input holds probabilities.
        reduction: "mean" (over valid centres and kept classes), "sum" or "none" (the map
            ``(N, K, *spatial')``, ``spatial'`` smaller by ``window_size - 1`` per axis for "valid"; 0 at ignored
            centres).

    Returns:
        A scalar, or the map for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> t = torch.tensor([[[0.0, 1.0, 1.0, 0.0]]])
        >>> x = torch.where(t > 0, 30.0, -30.0)                   # p = g: SSIM 1 everywhere
        >>> round(seglosses.ssim_loss(x, t, "binary").item(), 6)
        0.0

    References:
        Wang, Bovik, Sheikh, Simoncelli. Image quality assessment: from error visibility to structural similarity.
        IEEE TIP 13(4), 2004.
    """
    reduction = check_reduction(reduction)
    window_size, sigma = check_window(window_size, sigma)
    padding = check_one_of("padding", padding, ("same", "valid"))
    inp, spatial, classes = _setup(logits, target, mode, ignore_index, from_logits, classes, "the SSIM loss")
    w = class_vector("weight", weight, inp.c, logits.device)
    p, g, valid = _probs_and_target(inp, mode, ignore_index, from_logits)
    pw = _pixel_weight(pixel_weight, logits, mode, inp, valid, classes)
    if classes is not None:
        p, g = take(p, classes), take(g, classes)
        valid = None if valid is None else take(valid, classes)
        w = None if w is None else take(w, classes, 0)
    n, k = p.shape[:2]
    if p.numel() == 0 or not _valid_centres(padding, spatial, window_size):  # no centre: an empty map
        out = tuple(max(d - window_size + 1, 0) for d in spatial)
        empty = (p.sum() + g.sum()) * 0.0  # keeps the graph; a NaN in a valid element still reaches the loss
        return empty.expand(n, k, *out) if reduction == "none" else empty
    st = _Stats(p, g, valid, spatial, window_size, sigma, padding == "valid")
    c1, c2 = K1 * K1, K2 * K2
    num = (2 * st.mx * st.my + c1) * (2 * st.cxy + c2)
    den = (st.mx * st.mx + st.my * st.my + c1) * (st.vx + st.vy + c2)
    loss = (den - num) / den
    wk = None if w is None else w.to(loss.dtype).view(1, k, 1)
    if pw is not None:  # the weight of each centre's pixel (times the class weight): a weighted mean of the map
        pw = _at_centres(pw, spatial, window_size) if padding == "valid" else pw
        wk = pw if wk is None else pw * wk
        wk = wk.expand(n, k, loss.shape[-1])
    if wk is not None:
        loss = loss * wk
    if st.centre is not None:
        loss = torch.where(st.centre, loss, 0.0)
        counted = st.centre.to(loss.dtype)
        count = (counted * wk).sum() if wk is not None else counted.sum()
    elif pw is not None:
        count = wk.sum()
    elif wk is not None:
        count = wk.sum() * (n * loss.shape[-1])
    else:
        count = torch.full((), float(loss.numel()), dtype=loss.dtype, device=loss.device)
    return _reduce_map(loss, count, reduction, (n, k, *st.out_spatial))


def correlation_ssim_loss(logits: torch.Tensor, target: torch.Tensor, mode: Mode, *, beta: float = 0.1,
                          window_size: int = 3, sigma: float = 1.5, classes: Sequence[int] | None = None,
                          weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                          pixel_weight: torch.Tensor | None = None, from_logits: bool = True,
                          reduction: Reduction = "mean") -> torch.Tensor:
    r"""Correlation-maximized structural similarity loss (Zhao et al. 2019, arXiv 1910.08711): the cross entropy of
    the pixels whose local structure disagrees most with the target's, weighted by that disagreement.

    .. math::
        e = \left| \frac{g - \mu_g + C_4}{\sigma_g + C_4} - \frac{p - \mu_p + C_4}{\sigma_p + C_4} \right|, \quad
        f = [e > \beta\, e_{\max}], \quad
        L = \frac{\sum_{x, c} e\, f\, \mathrm{CE}(g_c(x), p_c(x))}{\sum_{x, c} f}

    per pixel x and class c, with mu, sigma the local mean and standard deviation of p_c and g_c under the Gaussian
    window (normalised to the valid pixels of the image, as :func:`ssim_loss`), C4 = 0.01 and e_max the largest e
    over the valid elements of the batch and the kept classes (Zhao et al., eqs. 2-5). CE is -g log p per class
    channel for "multiclass" (softmax) and the binary cross entropy per channel otherwise. e and f are weights:
    they are computed from detached probabilities, so the gradient is that of the weighted cross entropy.

    Args:
        logits, target, mode, classes, ignore_index, from_logits: as :func:`ssim_loss`.
        weight: per-class weights ``(C,)`` of the cross entropy: the map is e f w_c CE and "mean" divides by
            sum w_c f (as PyTorch's weighted cross entropy); None: all 1.
        pixel_weight: a weight map ``(N, *spatial)`` or ``(N, C, *spatial)`` (as :func:`ssim_loss`), a per-call
            input of the Module; None: all 1. The map becomes e f w_c v CE with v the element's weight and "mean"
            divides by sum w_c v f. e, f and e_max (the windows, the selection) do not depend on it. A weight at an
            ignored pixel has no effect; no gradient flows to it.
        beta: the hard-pixel threshold relative to e_max, in [0, 1).
        window_size: taps of the Gaussian window per axis (odd).
        sigma: the window's standard deviation in pixels.
        reduction: "mean" (the sum over the number of selected elements, sum f; 0 when none is), "sum" or "none"
            (the map e f CE ``(N, K, *spatial)``, 0 at ignored pixels).

    Returns:
        A scalar, or the map for "none"; float32 for half-precision input.

    Example:
        >>> import torch, seglosses
        >>> t = torch.tensor([[[0.0, 1.0, 1.0, 0.0]]])
        >>> x = torch.where(t > 0, 30.0, -30.0)                   # p = g: e = 0, no pixel selected
        >>> round(seglosses.correlation_ssim_loss(x, t, "binary").item(), 6)
        0.0

    References:
        Zhao, Wu, Chu, Hu, Cai. Correlation Maximized Structural Similarity Loss for Semantic Segmentation.
        arXiv 1910.08711, 2019.
    """
    reduction = check_reduction(reduction)
    window_size, sigma = check_window(window_size, sigma)
    beta = check_scalar("beta", beta, low=0.0, high=1.0)
    inp, spatial, classes = _setup(logits, target, mode, ignore_index, from_logits, classes,
                                   "the correlation SSIM loss")
    px = pixels(logits, target, mode, ignore_index=ignore_index, from_logits=from_logits, complement=False)
    p, g, valid = _probs_and_target(inp, mode, ignore_index, from_logits)
    if mode == "multiclass":
        ce = -g * px.logp
    else:
        ce = -(g * px.logp + (1 - g) * px.log1mp)
    w = class_vector("weight", weight, inp.c, logits.device)
    pw = _pixel_weight(pixel_weight, logits, mode, inp, valid, classes)
    if classes is not None:
        p, g, ce = take(p, classes), take(g, classes), take(ce, classes)
        valid = None if valid is None else take(valid, classes)
        w = None if w is None else take(w, classes, 0)
    n, k = p.shape[:2]
    if p.numel() == 0:  # no element: an empty map, a loss of 0 with the graph kept
        empty = (p.sum() + g.sum() + ce.sum()) * 0.0
        return empty.expand(n, k, *spatial) if reduction == "none" else empty
    with torch.no_grad():
        st = _Stats(p.detach(), g, valid, spatial, window_size, sigma, False, means_only=True)
        vx, vy = st.centred_variances()
        zp = (p.detach() - st.mx + C4) / (vx.sqrt() + C4)
        zg = (g - st.my + C4) / (vy.sqrt() + C4)
        e = (zg - zp).abs()
        if valid is not None:
            e = torch.where(valid, e, 0.0)
        e_max = e.amax() if e.numel() else e.sum()
        f = e > beta * e_max
    wk = None if w is None else w.to(ce.dtype).view(1, k, 1)
    if pw is not None:
        wk = pw if wk is None else pw * wk
    loss = torch.where(f, e * ce if wk is None else e * ce * wk, 0.0)
    # a NaN logit or target at a valid element reaches the loss (e > beta e_max alone would drop it)
    loss = torch.where(torch.isnan(e), e, loss)
    count = f.sum().to(loss.dtype) if wk is None else torch.where(f, wk, 0.0).sum()
    return _reduce_map(loss, count, reduction, (n, k, *spatial))


class SSIMLoss(LossModule):
    """Module form of :func:`ssim_loss`; ``forward(logits, target, pixel_weight=None)``."""

    _fn = staticmethod(ssim_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, window_size: int = 11, sigma: float = 1.5,
                     padding: Literal["same", "valid"] = "same", classes: Sequence[int] | None = None,
                     weight: Sequence[float] | torch.Tensor | None = None, ignore_index: int | None = None,
                     from_logits: bool = True, reduction: Reduction = "mean") -> None: ...


class CorrelationSSIMLoss(LossModule):
    """Module form of :func:`correlation_ssim_loss`; ``forward(logits, target, pixel_weight=None)``."""

    _fn = staticmethod(correlation_ssim_loss)

    if TYPE_CHECKING:  # typed constructor: the function's mode and options (kept equal by tests/test_typing.py)
        def __init__(self, mode: Mode, *, beta: float = 0.1, window_size: int = 3, sigma: float = 1.5,
                     classes: Sequence[int] | None = None, weight: Sequence[float] | torch.Tensor | None = None,
                     ignore_index: int | None = None, from_logits: bool = True,
                     reduction: Reduction = "mean") -> None: ...
