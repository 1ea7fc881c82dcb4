"""Every Keras loss with a pixel weight map equals the PyTorch loss with the same map: value and gradient in the
logits, every reduction the loss has, on the active Keras backend (docs/semantics.md, "Pixel weights" and "Keras:
pixel weights and sample_weight").

The unweighted parity is tests/keras/test_parity.py (and the family files); the weighted values of each side against
the float64 oracles are tests/test_pixel_weight*.py (PyTorch) and tests/keras/test_pixel_weight.py (Keras identities).
Here the two front ends meet on the same weighted calls: each (loss, mode, map layout) of the registry once, with a
map of weights in [0, 2) and about 20% exactly 0 (NaN at ignored entries where the map has the full size: ignore
wins), ignore_index on the "ignored" cases, the loss's default options or one option set of the oracle sweeps
(rotated per loss). Map layouts: "pixel" ``(N, *spatial)``; "class" the logits' shape, ``(N, C, *spatial)`` in
PyTorch = ``(N, *spatial, C)`` in Keras' channels-last layout (not for the losses with one value per softmax pixel in
"multiclass", which refuse it on both sides); "bcast_pixel" ``(1, H, 1)``; "bcast_class" ``(1, C, 1, 1)`` =
``(1, 1, 1, C)``. The PyTorch "mean" is Keras' default "sum_over_batch_size" (the mean over the valid, weighted
entries); "none" maps are compared in Keras' layout, their gradient through a random cotangent.

Every (loss, mode, layout) case runs on one backend (seeded): one case per loss on JAX, its mode rotating over the
losses (one compiled function per case; clDice eagerly), the others alternately on TensorFlow and torch, so that
each backend sees every loss and every mode (a guard test checks it). Also: rows of weight 0 (a whole image, the
whole map) and the per-call maps (dist_maps, target_dist, skeletons) given to both front ends.

Disagreements found and fixed on the Keras side (both against the float64 oracles of tests/oracle*.py):
- Boundary DoU: a row whose weights sum to 0 gave 1 (its valid pixels counted, not their weight); now 0, as a row
  without valid pixels (test_rows_of_weight_zero_equal_torch; found on a binary case whose (1, 1, 1, 1) map was 0).
- SSIM with padding="valid" and a window larger than the image (no centre): an error on torch and JAX (a reshape
  with -1 of an empty map) and on TensorFlow with a pixel weight; now 0 with an empty "none" map, as PyTorch.
"""

import random

import keras
import numpy as np
import pytest
import torch

import test_oracle
import test_survey_oracle
from _kutil import BACKENDS, backend_share, jax_compiled, keras_class, keras_function, keras_inputs, keras_options
from _kutil import torch_function
from cases import IGNORE, oracle_inputs
from seglosses._registry import BY_NAME, LOSSES

NAMES = [row.name for row in LOSSES]
MODES = ("binary", "multiclass", "multilabel")
LAYOUTS = ("pixel", "class", "bcast_pixel", "bcast_class")
#: Losses with one value per softmax pixel in mode "multiclass": a per-class map is refused there (both sides).
PER_PIXEL = {"focal", "poly", "cross_entropy", "weighted_cross_entropy", "balanced_cross_entropy",
             "topk_cross_entropy", "ohem_cross_entropy", "exp_log", "combo", "unified_focal",
             "generalized_wasserstein_dice", "distance_penalized_cross_entropy", "shape_aware"}
#: The PyTorch reduction -> the Keras one.
KERAS_REDUCTION = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
#: Losses whose Keras values are one per row (image, or the batch) averaged over the classes, where PyTorch's "none"
#: keeps a value per class ((K,) or (N, K)) or the compound losses' parts: Keras' "none" and "sum" reduce other
#: values than PyTorch's, and only the mean is the same loss (seglosses/keras/__init__.py). The other losses' Keras
#: values are PyTorch's "none" in Keras' layout (elementwise maps, or TopK/OHEM/generalized Dice/GWDL rows).
CLASS_ROWS = ({row.name for row in LOSSES if row.family in ("region", "lovasz", "compound")} - {"generalized_dice"}
              | {"mcc", "boundary_dou", "cldice", "skeleton_recall"})
#: Per-call maps given to both sides (random maps of the right range: parity needs no true distances).
MAPS = {"boundary": "dist_maps", "hausdorff_dt": "target_dist", "skeleton_recall": "skeletons",
        "distance_penalized_cross_entropy": "dist_maps", "shape_aware": "dist_maps"}
#: Run eagerly on JAX: the gradient of clDice's soft skeletons (10 unrolled min/max pools) compiles for minutes
#: (one (2, 5, 6, 1) call: 84 s, 45 s with FAST_COMPILE; growing faster than the iterations), 5 s eagerly.
JAX_EAGER = {"cldice"}
SPATIAL = (5, 6)
#: float32 on both sides, different summation orders.
RTOL, ATOL = 1e-5, 1e-6


def _shape(mode):
    return (2, 1 if mode == "binary" else 3, *SPATIAL)


def _option_sets(name, mode, c):
    """The option sets of the oracle sweeps (tests/test_oracle.py, tests/test_survey_oracle.py), less the PyTorch-only
    distance ``backend``, without duplicates."""
    sets = (test_survey_oracle._options(name, mode, c, _shape(mode)) if name in test_survey_oracle._ORACLE
            else test_oracle._options(name, mode, c))
    out = []
    for opts in sets:
        opts = {k: v for k, v in opts.items() if k != "backend"}
        if opts not in out:
            out.append(opts)
    return out


def _layouts(name, mode):
    return [lay for lay in LAYOUTS if not (mode == "multiclass" and name in PER_PIXEL and "class" in lay)]


def _cases():
    """Every (loss, mode, layout) the loss takes, in a fixed order, each with a case kind (ignored twice as often as
    random or soft targets), the defaults or the loss's next option set, and the backend that runs it: one case per
    loss on JAX (its mode rotating over the losses), the others alternately on TensorFlow and torch. Seeded: the
    same cases in every run."""
    rng = random.Random(18)
    out = []
    for k, name in enumerate(NAMES):
        mine, turn = [], 0
        for mode in MODES:
            sets = _option_sets(name, mode, _shape(mode)[1])
            for layout in _layouts(name, mode):
                kind = rng.choice(("ignored", "random", "ignored", "soft"))
                if kind == "soft" and name in ("shape_aware", "generalized_wasserstein_dice"):
                    kind = "ignored"  # hard targets only (contours of masks; W needs class indices or one-hots)
                opts = {}
                if rng.random() < 0.5:
                    turn += 1
                    opts = sets[turn % len(sets)]
                if kind == "soft" and opts.get("distance_matrix") is not None:
                    opts = {}
                mine.append([name, mode, layout, kind, opts])
        jax_case = rng.choice([c for c in mine if c[1] == MODES[k % len(MODES)]])
        others = iter(("tensorflow", "torch") * len(mine))
        for case in mine:
            out.append((len(out), *case, "jax" if case is jax_case else next(others)))
    return out


CASES = _cases()


def _params():
    return [pytest.param(name, mode, layout, kind, opts, i, id=f"{name}-{mode}-{layout}-{kind}-{i}")
            for i, name, mode, layout, kind, opts, backend in CASES if backend == keras.backend.backend()]


# ---------------------------------------------------------------------------------------------------- helpers ---
def _weight_map(layout, mode, target, rng):
    """The map in PyTorch's layout: values in [0, 2), about 20% exactly 0, NaN at ignored entries (full-size maps)."""
    n, c = 2, _shape(mode)[1]
    wshape = {"pixel": (n, *SPATIAL), "class": (n, c, *SPATIAL), "bcast_pixel": (1, SPATIAL[0], 1),
              "bcast_class": (1, c, 1, 1)}[layout]
    w = rng.uniform(0.0, 2.0, wshape)
    w[rng.random(wshape) < 0.2] = 0.0
    ignored = target == IGNORE  # (N, *spatial) class indices, else the logits' shape
    if layout == "class":
        w[np.broadcast_to(ignored[:, None] if ignored.ndim == len(SPATIAL) + 1 else ignored, w.shape)] = np.nan
    elif layout == "pixel":
        w[ignored if ignored.ndim == len(SPATIAL) + 1 else ignored.all(1)] = np.nan
    return w.astype(np.float32)


def _to_keras(w, layout):
    return np.moveaxis(w, 1, -1) if layout in ("class", "bcast_class") else w


def _in_keras_layout(ref, shape):
    """A PyTorch "none" map (or gradient) in Keras' layout of ``shape``: the class axis last where it has one."""
    if ref.shape == tuple(shape):
        return ref
    moved = np.moveaxis(ref, 1, -1)
    assert moved.shape == tuple(shape), f"PyTorch shape {ref.shape} vs Keras shape {tuple(shape)}"
    return moved


def _values_and_grads(fn, x, cotangents, *, compiled=True):
    """The outputs of ``fn(x)`` (a list) and, for each, the gradient in ``x`` of ``sum(cotangent * output)``, with
    the active backend's autodiff, all as NumPy: eager on torch and TensorFlow; on JAX one compiled function
    (:data:`_kutil.FAST_COMPILE`) unless ``compiled`` is False."""
    backend = keras.backend.backend()
    if backend == "torch":
        xt = torch.tensor(x, requires_grad=True)
        outs = fn(xt)
        grads = [torch.autograd.grad(o, xt, torch.as_tensor(c), retain_graph=True)[0] for o, c in zip(outs, cotangents)]
        return [o.detach().cpu().numpy() for o in outs], [g.cpu().numpy() for g in grads]
    if backend == "tensorflow":
        import tensorflow as tf

        xv = tf.Variable(x)
        with tf.GradientTape(persistent=True) as tape:
            outs = fn(xv)
        grads = [tape.gradient(o, xv, output_gradients=tf.constant(c)) for o, c in zip(outs, cotangents)]
        return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]
    if backend == "jax":
        import jax

        def run(x):
            outs, vjp = jax.vjp(fn, x)
            zeros = [np.zeros(np.shape(c), np.float32) for c in cotangents]
            return outs, [vjp(zeros[:k] + [c] + zeros[k + 1:])[0] for k, c in enumerate(cotangents)]
        outs, grads = (jax_compiled(run) if compiled else run)(x)
        return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]
    raise RuntimeError(f"no gradient helper for backend {backend!r}")


def _torch_values_and_grads(name, mode, logits, target, w, opts, reductions, cotangents, maps=None):
    x = torch.tensor(logits, dtype=torch.float32, requires_grad=True)
    t, pw = torch.from_numpy(target), torch.from_numpy(w)
    extra = {} if maps is None else {MAPS[name]: torch.from_numpy(maps)}
    values, grads = [], []
    for reduction, cot in zip(reductions, cotangents):
        out = torch_function(name)(x, t, mode, reduction=reduction, pixel_weight=pw, **opts, **extra)
        (g,) = torch.autograd.grad(out, x, torch.as_tensor(cot))
        values.append(out.detach().numpy())
        grads.append(g.numpy())
    return values, grads


def _compare(name, got, ref, what, rtol=RTOL):
    # gradients: atol relative to the largest entry (sums of float32 terms in a different order)
    atol = ATOL if what.startswith("value") else ATOL + rtol * float(np.nanmax(np.abs(ref), initial=0.0))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, err_msg=f"{name}: {what}")


# ------------------------------------------------------------------------------------------------------ tests ---
def test_every_backend_sees_every_loss_and_mode():
    """Each backend's third of the cases holds every loss and every mode, and the cases together every (loss, mode,
    layout) the loss takes."""
    for backend in BACKENDS:
        mine = [c for c in CASES if c[-1] == backend]
        assert {c[1] for c in mine} == set(NAMES), backend
        assert {c[2] for c in mine} == set(MODES), backend
    assert {(c[1], c[2], c[3]) for c in CASES} == {(n, m, lay) for n in NAMES for m in MODES for lay in _layouts(n, m)}
    kinds = {c[4] for c in CASES}
    assert kinds == {"ignored", "random", "soft"}


def test_the_tables_match_the_losses():
    """PER_PIXEL: exactly the losses whose PyTorch function refuses a per-class map in "multiclass", and the Keras
    function refuses it too (the others take it on both sides: their "class" cases above); CLASS_ROWS: exactly the
    losses whose PyTorch "none" keeps a class axis ((C,) without per_image) or that have no "none" (compound), so no
    loss's "none" and "sum" are left unchecked by mistake."""
    logits, target = oracle_inputs("random", "multiclass", _shape("multiclass"), {})[:2]
    x, t = torch.from_numpy(logits), torch.from_numpy(target)
    y_true, y_pred = keras_inputs(logits, target, "multiclass")
    w = np.ones(_shape("multiclass"), np.float32)
    for name in NAMES:
        try:
            torch_function(name)(x, t, "multiclass", pixel_weight=torch.from_numpy(w))
            refused = False
        except ValueError as error:
            assert "`pixel_weight`" in str(error), (name, error)
            refused = True
        assert refused == (name in PER_PIXEL), name
        if refused:
            with pytest.raises(ValueError, match="`pixel_weight` of this loss takes one weight per pixel"):
                keras_function(name)(y_true, y_pred, "multiclass", pixel_weight=np.moveaxis(w, 1, -1))
        if "none" in BY_NAME[name].reductions:
            shape = tuple(torch_function(name)(x, t, "multiclass", reduction="none").shape)
            assert (shape == (3,)) == (name in CLASS_ROWS), (name, shape)
        else:
            assert name in CLASS_ROWS, name


def _check(name, mode, logits, target, maps, opts, rng):
    """The Keras class (each reduction) against the PyTorch function on the same weighted calls, one per
    ``(map, layout)`` of ``maps`` (the map in PyTorch's layout): values and gradients in the logits; on JAX the
    Keras side is one compiled function."""
    reductions = ("mean",) if name in CLASS_ROWS else BY_NAME[name].reductions
    calls = [(w, layout, r) for w, layout in maps for r in reductions]
    cotangents, want, want_grads = [], [], []
    for w, _, r in calls:
        if r == "none":  # the map's shape from a first PyTorch call: its gradient through a random cotangent
            shape = torch_function(name)(torch.from_numpy(logits), torch.from_numpy(target), mode, reduction="none",
                                         pixel_weight=torch.from_numpy(w), **opts).shape
            cotangents.append(rng.normal(size=shape).astype(np.float32))
        else:
            cotangents.append(np.float32(1.0))
        (v,), (g,) = _torch_values_and_grads(name, mode, logits, target, w, opts, [r], cotangents[-1:])
        want.append(v)
        want_grads.append(g)

    y_true, y_pred = keras_inputs(logits, target, mode)
    losses = {r: keras_class(name)(mode, reduction=KERAS_REDUCTION[r], **keras_options(opts)) for r in reductions}
    k_calls = [(_to_keras(w, layout), losses[r]) for w, layout, r in calls]
    k_cots = [c if r != "none" else _in_keras_layout(c, _keras_shape(c.shape))
              for (_, _, r), c in zip(calls, cotangents)]
    got, got_grads = _values_and_grads(lambda x: [loss(y_true, x, pixel_weight=pw) for pw, loss in k_calls], y_pred,
                                       k_cots, compiled=name not in JAX_EAGER)
    # SSIM with a 1-tap window: var ~ 0 against c2 = 9e-4, so float32 gradients carry ~1e-4 of the largest entry
    # on either side (measured against PyTorch's float64 gradient: PyTorch 6e-5, Keras on TensorFlow 1e-4)
    grad_rtol = 3e-4 if name == "ssim" and opts.get("window_size") == 1 else RTOL
    for (_, layout, r), v, ref, g, gref in zip(calls, got, want, got_grads, want_grads):
        what = f"reduction {r}, {layout} map, {opts}"
        _compare(name, v, _in_keras_layout(ref, v.shape), f"value, {what}")
        _compare(name, g, _in_keras_layout(gref, g.shape), f"gradient, {what}", grad_rtol)


def _keras_shape(torch_shape):
    """Keras' shape of a PyTorch "none" shape: an elementwise map ``(N, C, *spatial)`` with its class axis last;
    per-pixel maps ``(N, *spatial)`` and per-row values as they are."""
    if len(torch_shape) == 2 + len(SPATIAL):
        return (torch_shape[0], *torch_shape[2:], torch_shape[1])
    return tuple(torch_shape)


@pytest.mark.parametrize("name,mode,layout,kind,opts,seed", _params())
def test_weighted_equals_torch(name, mode, layout, kind, opts, seed):
    logits, target, opts = oracle_inputs(kind, mode, _shape(mode), opts)
    logits = logits.astype(np.float32)
    target = target.astype(np.float32) if target.dtype.kind == "f" else target
    rng = np.random.default_rng(seed)
    _check(name, mode, logits, target, [(_weight_map(layout, mode, target, rng), layout)], opts, rng)


def _zero_rows():
    """One case per loss, its mode rotating over the losses, alternately on TensorFlow and torch (the weighting rule,
    not a backend's ops, is what this checks); Boundary DoU's (the disagreement found) on JAX too."""
    backend = keras.backend.backend()
    return [pytest.param(name, MODES[k % len(MODES)], id=f"{name}-{MODES[k % len(MODES)]}")
            for k, name in enumerate(NAMES)
            if ("tensorflow", "torch")[k % 2] == backend or backend == "jax" and name == "boundary_dou"]


@pytest.mark.parametrize("name,mode", _zero_rows())
def test_rows_of_weight_zero_equal_torch(name, mode):
    """A map of 0 on a whole image (a row of ``per_image`` statistics with no weight) and a map of 0 everywhere:
    weight 0 is "left out", so such a row is a row without valid pixels (a normaliser of 0 gives 0) on both
    sides. Found: Keras' Boundary DoU counted the row's valid pixels instead of their weight (1 instead of 0)."""
    opts = {"per_image": True} if _takes_per_image(name) else {}
    logits, target, opts = oracle_inputs("ignored", mode, _shape(mode), opts)
    logits = logits.astype(np.float32)
    target = target.astype(np.float32) if target.dtype.kind == "f" else target
    rng = np.random.default_rng(len(name))
    w = _weight_map("pixel", mode, target, rng)
    w[0] = 0.0
    _check(name, mode, logits, target, [(w, "pixel"), (np.zeros((1, 1, 1), np.float32), "bcast_pixel")], opts, rng)


def _takes_per_image(name):
    import inspect

    return "per_image" in inspect.signature(keras_class(name).__init__).parameters


def test_ssim_without_centres_equals_torch():
    """SSIM with padding="valid" and a window (11) larger than the image (5 x 6): no centre, so 0 with an empty "none"
    map ``(N, *spatial', K)`` and a zero gradient, weighted or not, as PyTorch (the Keras side raised before)."""
    mode = "multiclass"
    logits, target, opts = oracle_inputs("ignored", mode, _shape(mode), {"padding": "valid"})
    logits = logits.astype(np.float32)
    rng = np.random.default_rng(11)
    maps = [(np.ones((1, 1, 1), np.float32), "bcast_pixel"), (_weight_map("class", mode, target, rng), "class")]
    _check("ssim", mode, logits, target, maps, opts, rng)


@pytest.mark.parametrize("name", [n for i, n in enumerate(sorted(MAPS)) if backend_share(i)])
def test_weighted_with_given_maps_equals_torch(name):
    """The per-call maps (dist_maps, target_dist, skeletons) given to both functions with a per-pixel weight map:
    the same unreduced values (Skeleton Recall: the Keras function's batch value is PyTorch's mean) and
    gradients. The maps are random numbers of the right range: parity needs no true distances."""
    mode = "multilabel"
    logits, target, opts = oracle_inputs("ignored", mode, _shape(mode), {})
    logits, target = logits.astype(np.float32), target.astype(np.float32)
    rng = np.random.default_rng(len(name))
    w = _weight_map("pixel", mode, target, rng)
    maps = rng.uniform(-2.0, 3.0, logits.shape).astype(np.float32)
    if name != "boundary":  # distances >= 0; skeletons 0/1
        maps = np.abs(maps) if name != "skeleton_recall" else (maps > 1.0).astype(np.float32)
    reduction = "mean" if name in CLASS_ROWS else "none"
    none = torch_function(name)(torch.from_numpy(logits), torch.from_numpy(target), mode, reduction=reduction,
                                pixel_weight=torch.from_numpy(w), **{MAPS[name]: torch.from_numpy(maps)}, **opts)
    cot = rng.normal(size=none.shape).astype(np.float32)
    (want,), (want_grad,) = _torch_values_and_grads(name, mode, logits, target, w, opts, [reduction], [cot], maps)
    y_true, y_pred = keras_inputs(logits, target, mode)
    fn = keras_function(name)
    (got,), (got_grad,) = _values_and_grads(
        lambda x: [fn(y_true, x, mode, pixel_weight=w, **{MAPS[name]: np.moveaxis(maps, 1, -1)},
                      **keras_options(opts))], y_pred, [_in_keras_layout(cot, _keras_shape(cot.shape))])
    _compare(name, got, _in_keras_layout(want, got.shape), "value")
    _compare(name, got_grad, _in_keras_layout(want_grad, got_grad.shape), "gradient")
