"""Keras per-pixel weights (``pixel_weight=``, and a per-pixel ``sample_weight`` read as one), every loss of the
registry: weight 1 is no weight; an integer weight is the pixel repeated (non-spatial losses); weight 0 is the pixel
ignored and a NaN weight at an ignored pixel changes nothing; float64 NumPy values written from the formulas of
docs/semantics.md ("Pixel weights") for a pixel loss, Dice and MCC; the shape errors name ``pixel_weight``; a
per-pixel ``sample_weight`` equals ``pixel_weight`` in a direct call, in a WeightedSum and in ``model.fit``."""

import keras
import numpy as np
import pytest

import seglosses.keras as K
from _kutil import backend_share, keras_class, keras_function, run
from seglosses._registry import BY_NAME, LOSSES

NAMES = [loss.name for loss in LOSSES]
NON_SPATIAL = [loss.name for loss in LOSSES if not loss.spatial]
MODES = ("multiclass", "multilabel", "binary")
IGNORE = 255


def _options(name):
    """Options that make every loss depend on each pixel (TopK keeps 30%, OHEM a threshold and a small min_kept)."""
    return {"topk_cross_entropy": {"k": 30.0}, "ohem_cross_entropy": {"threshold": 0.5, "min_kept": 3},
            "ssim": {"window_size": 3}, "correlation_ssim": {"window_size": 3},
            "cldice": {"iterations": 2}}.get(name, {})


def _case(mode, shape=(2, 5, 6), c=3, seed=0, ignored=True):
    """``(y_true, y_pred)`` channels-last logits and targets (class indices for "multiclass"), with one ignored
    pixel per image when ``ignored``."""
    rng = np.random.default_rng(seed)
    c = 1 if mode == "binary" else c
    y_pred = rng.normal(size=shape + (c,)).astype(np.float32) * 2
    if mode == "multiclass":
        y_true = rng.integers(0, c, shape).astype(np.int32)
    else:
        y_true = (rng.uniform(size=shape + (c,)) > 0.5).astype(np.float32)
    if ignored:
        y_true[:, 0, 0] = IGNORE
    return y_true, y_pred


def _loss(name, mode, **extra):
    return keras_class(name)(mode, from_logits=True, ignore_class=IGNORE, **_options(name), **extra)


def _value(loss, y_true, y_pred, **kw):
    return float(run(lambda t, x, *w: loss(t, x, **dict(zip(kw, w))), y_true, y_pred, *kw.values()))


def _values(loss, calls):
    """``loss(y_true, y_pred, pixel_weight=w)`` for each ``(y_true, y_pred, w)`` of ``calls`` (w None: no weight),
    in one compiled function (one compilation on JAX)."""
    args = [a for call in calls for a in call if a is not None]

    def fn(*flat):
        it, out = iter(flat), []
        for call in calls:
            t, x = next(it), next(it)
            out.append(loss(t, x) if call[2] is None else loss(t, x, pixel_weight=next(it)))
        return out
    return [float(v) for v in run(fn, *args)]


def _share(names, modes=MODES):
    """The (name, mode) cases, shared out between the three backends (each runs a third, see _kutil)."""
    cases = [(n, m) for n in names for m in modes]
    return [pytest.param(n, m, id=f"{n}-{m}") for i, (n, m) in enumerate(cases) if backend_share(i)]


@pytest.mark.parametrize("name,mode", _share(NAMES))
def test_weight_one_and_ignored_nan(name, mode):
    """Weight 1 gives the unweighted loss; a NaN weight at an ignored pixel changes nothing; a weight 0 at a valid
    pixel is that pixel ignored (not for the spatial losses, whose distances, skeletons and windows leave ignored
    pixels out but are not computed from weights; nor TopK/OHEM, whose selection sizes count weights)."""
    y_true, y_pred = _case(mode)
    loss = _loss(name, mode)
    ones = np.ones(y_pred.shape[:-1], np.float32)
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=ones.shape).astype(np.float32)
    w[:, 0, 0] = np.nan  # at the ignored pixels
    w1 = w.copy()
    w1[:, 0, 0] = 1.0
    # weight 0 at a valid pixel == that pixel ignored (its target set to ignore_class)
    w0, t0 = w1.copy(), y_true.copy()
    w0[:, 1, 2] = 0.0
    t0[:, 1, 2] = IGNORE
    base, one, got, got1, zero, ignored = _values(loss, [(y_true, y_pred, None), (y_true, y_pred, ones),
                                                         (y_true, y_pred, w), (y_true, y_pred, w1),
                                                         (y_true, y_pred, w0), (t0, y_pred, w1)])
    np.testing.assert_allclose(one, base, rtol=1e-6, atol=1e-7)
    assert np.isfinite(got), (name, mode, got)
    np.testing.assert_allclose(got, got1, rtol=1e-6, atol=1e-7)
    if name not in ("topk_cross_entropy", "ohem_cross_entropy") and not BY_NAME[name].spatial:
        np.testing.assert_allclose(zero, ignored, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,mode", _share(NON_SPATIAL))
def test_integer_weight_is_repeated_pixel(name, mode):
    """An integer weight k equals the pixel repeated k times (one image: the pooled statistics, the selections and
    the mean over pixels all see the same multiset of pixels)."""
    y_true, y_pred = _case(mode, shape=(1, 4, 5), ignored=False)
    w = np.random.default_rng(2).integers(0, 4, size=(1, 4, 5))
    loss = _loss(name, mode)
    flat = w.reshape(-1)
    rep_x = np.repeat(y_pred.reshape(1, 20, -1), flat, axis=1)
    rep_t = np.repeat(y_true.reshape((1, 20) + y_true.shape[3:]), flat, axis=1)
    got, want = _values(loss, [(y_true, y_pred, w.astype(np.float32)), (rep_t, rep_x, None)])
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


# ------------------------------------------------------------------------------- float64 NumPy formulas ---
def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_cross_entropy_weighted_mean_formula():
    """Softmax CE with class weights: sum(w weight[t] CE) / sum(w weight[t]) over the valid pixels, and "sum"."""
    y_true, y_pred = _case("multiclass")
    cw = [0.5, 1.0, 2.0]
    w = np.random.default_rng(3).uniform(0, 2, size=y_true.shape)
    x, t = y_pred.astype(np.float64), y_true
    valid = t != IGNORE
    ts = np.where(valid, t, 0)
    ce = -np.log(np.take_along_axis(_softmax(x), ts[..., None], -1)[..., 0])
    wt = w * np.asarray(cw)[ts] * valid
    expected = (wt * ce).sum() / wt.sum()
    loss = K.CrossEntropyLoss("multiclass", weight=cw, ignore_class=IGNORE, from_logits=True)
    np.testing.assert_allclose(_value(loss, t, y_pred, pixel_weight=w.astype(np.float32)), expected, rtol=1e-5)
    loss_sum = K.CrossEntropyLoss("multiclass", weight=cw, ignore_class=IGNORE, from_logits=True, reduction="sum")
    np.testing.assert_allclose(_value(loss_sum, t, y_pred, pixel_weight=w.astype(np.float32)), (wt * ce).sum(),
                               rtol=1e-5)


def _weighted_stats(p, g, w):
    """tp, fp, fn, tn per class ``(C,)`` pooled over the batch: each pixel's share times its weight."""
    axes = tuple(range(p.ndim - 1))
    return ((w * p * g).sum(axes), (w * p * (1 - g)).sum(axes), (w * (1 - p) * g).sum(axes),
            (w * (1 - p) * (1 - g)).sum(axes))


@pytest.mark.parametrize("per_class_map", [False, True])
def test_dice_and_mcc_formula(per_class_map):
    """Dice and MCC ("multilabel", pooled) from tp = sum w p g, fp, fn, tn with per-pixel or per-class weights."""
    y_true, y_pred = _case("multilabel", ignored=False)
    rng = np.random.default_rng(4)
    w = rng.uniform(0, 2, size=y_pred.shape if per_class_map else y_pred.shape[:-1])
    p = 1 / (1 + np.exp(-y_pred.astype(np.float64)))
    g = y_true.astype(np.float64)
    tp, fp, fn, tn = _weighted_stats(p, g, w if per_class_map else w[..., None])
    s = 1e-5
    dice = (1 - (2 * tp + s) / (2 * tp + fp + fn + s)).mean()
    mcc = (1 - ((tp + s) * (tn + s) - fp * fn)
           / np.sqrt((tp + fp + s) * (tp + fn + s) * (tn + fp + s) * (tn + fn + s))).mean()
    w32 = w.astype(np.float32)
    np.testing.assert_allclose(_value(K.DiceLoss("multilabel", from_logits=True), y_true, y_pred, pixel_weight=w32),
                               dice, rtol=1e-5)
    np.testing.assert_allclose(_value(K.MCCLoss("multilabel", from_logits=True), y_true, y_pred, pixel_weight=w32),
                               mcc, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- the shapes ---
def test_broadcast_and_layouts():
    """A map with axes of size 1 equals the broadcast full map; channels-first equals channels-last."""
    y_true, y_pred = _case("multilabel")
    w = np.random.default_rng(5).uniform(0.5, 2, size=(1, 5, 1)).astype(np.float32)
    loss = _loss("dice", "multilabel")
    full = np.broadcast_to(w, (2, 5, 6)).copy()
    np.testing.assert_allclose(_value(loss, y_true, y_pred, pixel_weight=w),
                               _value(loss, y_true, y_pred, pixel_weight=full), rtol=1e-6)
    wc = np.random.default_rng(6).uniform(0.5, 2, size=y_pred.shape).astype(np.float32)
    first = _loss("dice", "multilabel", axis=1)
    np.testing.assert_allclose(
        _value(first, np.moveaxis(y_true, -1, 1), np.moveaxis(y_pred, -1, 1), pixel_weight=np.moveaxis(wc, -1, 1)),
        _value(loss, y_true, y_pred, pixel_weight=wc), rtol=1e-6)


@pytest.mark.parametrize("bad,match", [
    (np.ones((2, 5, 7)), r"`pixel_weight` must have shape \(2, 5, 6\) or \(2, 5, 6, 3\)"),
    (np.ones((2, 5)), "`pixel_weight` must have shape"),
    (np.ones((2, 5, 6, 3)), "`pixel_weight` of this loss takes one weight per pixel"),
    ([[1.0]], "`pixel_weight` must be a tensor or an array"),
    (np.ones((2, 5, 6), np.complex64), "`pixel_weight` must be real"),
])
def test_errors_name_pixel_weight(bad, match):
    y_true, y_pred = _case("multiclass")
    error = TypeError if "must be" in match and ("tensor" in match or "real" in match) else ValueError
    with pytest.raises(error, match=match):
        K.FocalLoss("multiclass", from_logits=True)(y_true, y_pred, pixel_weight=bad)
    with pytest.raises(error, match=match):
        K.focal_loss(y_true, y_pred, "multiclass", from_logits=True, pixel_weight=bad)


def test_per_class_map_accepted_by_region_losses():
    y_true, y_pred = _case("multiclass")
    w = np.random.default_rng(7).uniform(0.5, 2, size=y_pred.shape).astype(np.float32)
    assert np.isfinite(_value(_loss("dice", "multiclass"), y_true, y_pred, pixel_weight=w))


# ----------------------------------------------------------------------------------------- sample_weight ---
def test_sample_weight_of_pixel_shape_is_pixel_weight():
    """A per-pixel sample_weight ((N, *spatial), or with a trailing 1) is the pixel weight, also in a WeightedSum
    and for a loss that pools the batch; a per-image one keeps Keras' meaning; both at once are refused."""
    y_true, y_pred = _case("multiclass")
    w = np.random.default_rng(8).uniform(0.5, 2, size=y_true.shape).astype(np.float32)
    for loss in (_loss("focal", "multiclass"), _loss("dice", "multiclass"), _loss("combo", "multiclass"),
                 0.5 * _loss("dice", "multiclass") + _loss("cross_entropy", "multiclass")):
        want = _value(loss, y_true, y_pred, pixel_weight=w)
        np.testing.assert_allclose(_value(loss, y_true, y_pred, sample_weight=w), want, rtol=1e-6)
        np.testing.assert_allclose(_value(loss, y_true, y_pred, sample_weight=w[..., None]), want, rtol=1e-6)
    per_image = np.array([1.0, 3.0], np.float32)  # Keras' meaning: each image's values scaled
    focal = _loss("focal", "multiclass", reduction="sum")
    maps = keras.ops.convert_to_numpy(K.focal_loss(y_true, y_pred, "multiclass", from_logits=True,
                                                   ignore_class=IGNORE))
    np.testing.assert_allclose(_value(focal, y_true, y_pred, sample_weight=per_image),
                               (maps.sum((1, 2)) * per_image).sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        focal(y_true, y_pred, sample_weight=w, pixel_weight=w)
    with pytest.raises(ValueError, match="`sample_weight` of shape .* taken as the loss's `pixel_weight`"):
        focal(y_true, y_pred, sample_weight=np.ones((2, 5, 7), np.float32))


def test_model_fit_sample_weight_equals_pixel_weight():
    """model.fit with a per-pixel sample_weight: the loss it reports is the pixel-weighted loss (a compiled step)."""
    keras.utils.set_random_seed(0)
    y_true, y_pred = _case("multiclass", ignored=False)
    w = np.random.default_rng(9).uniform(0.5, 2, size=y_true.shape).astype(np.float32)
    loss = 0.5 * K.DiceLoss("multiclass", from_logits=True) + K.FocalLoss("multiclass", from_logits=True)
    inputs = keras.Input(shape=y_pred.shape[1:])
    model = keras.Model(inputs, keras.layers.Dense(3, use_bias=False, kernel_initializer="identity")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss, jit_compile=keras.backend.backend() != "torch")
    history = model.fit(y_pred, y_true, sample_weight=w, batch_size=2, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(history.history["loss"][0], _value(loss, y_true, y_pred, pixel_weight=w), rtol=1e-5)


def test_config_round_trip_unaffected():
    """pixel_weight is a per-call input, never a setting: the config and the restored loss are the same."""
    loss = _loss("dice", "multiclass")
    assert "pixel_weight" not in loss.get_config()
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    y_true, y_pred = _case("multiclass")
    w = np.random.default_rng(10).uniform(0.5, 2, size=y_true.shape).astype(np.float32)
    np.testing.assert_allclose(_value(restored, y_true, y_pred, pixel_weight=w),
                               _value(loss, y_true, y_pred, pixel_weight=w), rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_function_takes_pixel_weight(name):
    """Every Keras function takes ``pixel_weight`` and gives the class's unreduced values."""
    import inspect

    assert "pixel_weight" in inspect.signature(keras_function(name)).parameters
