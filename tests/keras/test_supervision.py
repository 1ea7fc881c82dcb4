"""seglosses.keras.DeepSupervision: weights, the downsampled targets against the NumPy references, the value against
the hand-weighted sum of the wrapped loss, parity with the PyTorch front end, gradients, sample weights, config round
trip, errors and training through ``Model.compute_loss`` (run on each backend by tests/test_keras_backends.py)."""

import json
import pickle

import keras
import numpy as np
import pytest
import torch

import seglosses as S
import seglosses.keras as K
from _kutil import run, to_numpy, value_and_grad_fn
from reference_supervision import np_area, np_nearest
from seglosses.keras._supervision import area_resize, nearest_resize

SIZES = [(8, 8), (4, 4), (2, 2)]


def _outputs(sizes=SIZES, n=2, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 2, size=(n,) + s + (c,)).astype(np.float32) for s in sizes]


def _index_target(shape=(2, 8, 8), c=3, dtype="uint8", seed=1):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, c, size=shape)
    return np.where(rng.random(shape) < 0.2, 255, t).astype(dtype)


def _channels_first(a):
    return np.moveaxis(a, -1, 1)


def test_weights_are_the_pytorch_rules():
    for rule in ("nnunet", "monai-exp", "uniform"):
        for levels in range(1, 6):
            assert K.DeepSupervision(K.DiceLoss("binary"), rule).level_weights(levels) == \
                S.DeepSupervision(S.DiceLoss("binary"), rule).level_weights(levels)
    np.testing.assert_allclose(K.DeepSupervision(K.DiceLoss("binary")).level_weights(4), [4 / 7, 2 / 7, 1 / 7, 0])


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64"])
@pytest.mark.parametrize("shape,size", [((2, 8, 8), (4, 4)), ((2, 13, 11), (6, 5)), ((1, 6, 5, 4), (3, 2, 2))])
def test_nearest_is_the_index_arithmetic(dtype, shape, size):
    t = _index_target(shape, dtype=dtype)
    tensor = keras.ops.convert_to_tensor(t)  # (int64 is int32 on JAX without x64)
    got = to_numpy(nearest_resize(tensor, list(range(1, len(size) + 1)), size))
    assert keras.backend.standardize_dtype(got.dtype) == keras.backend.standardize_dtype(tensor.dtype)
    np.testing.assert_array_equal(got, np_nearest(t, size))


@pytest.mark.parametrize("shape,size", [((2, 8, 8), (4, 4)), ((2, 13, 11), (6, 5)), ((1, 6, 5, 4), (3, 2, 2)),
                                        ((2, 9, 7), (4, 3))])
@pytest.mark.parametrize("ignore", [None, 255.0])
def test_area_is_the_window_mean(shape, size, ignore):
    rng = np.random.default_rng(2)
    t = (rng.random(shape) < 0.5).astype(np.float32)
    if ignore is not None:
        t[rng.random(shape) < 0.4] = ignore
        t[0, :3, :4] = ignore
    rank = len(size)
    got = to_numpy(area_resize(keras.ops.convert_to_tensor(t), list(range(1, rank + 1)), size, ignore))
    np.testing.assert_allclose(got, np_area(t, size, ignore), rtol=1e-6, atol=1e-7)


def test_value_is_the_hand_weighted_sum_of_the_wrapped_loss():
    outs, t = _outputs(), _index_target()
    dice = K.DiceLoss("multiclass", from_logits=True, ignore_class=255)
    deep = K.DeepSupervision(dice, "monai-exp")
    parts = run(lambda *o: [dice(np_nearest(t, x.shape[1:3]), x) for x in o], *outs)
    expected = sum(w * p for w, p in zip([1.0, 0.5, 0.25], parts))
    np.testing.assert_allclose(run(lambda *o: deep(t, list(o)), *outs), expected, rtol=1e-6)
    single = K.DeepSupervision(dice)
    np.testing.assert_allclose(*run(lambda x: [single(t, x), dice(t, x)], outs[0]), rtol=1e-6)


@pytest.mark.parametrize("case", ["index", "float", "channels_first"])
def test_parity_with_pytorch(case):
    outs = _outputs([(8, 6), (4, 3), (2, 3)], c=3 if case != "float" else 1)
    if case == "float":
        rng = np.random.default_rng(3)
        t = (rng.random((2, 8, 6, 1)) < 0.5).astype(np.float32)
        t[rng.random(t.shape) < 0.3] = 255.0
        t[0, :2, :2] = 255.0
        kl = K.DiceLoss("binary", from_logits=True, ignore_class=255) + K.FocalLoss("binary", from_logits=True,
                                                                                      ignore_class=255)
        tl = S.DiceLoss("binary", ignore_index=255) + S.FocalLoss("binary", ignore_index=255)
        tt = torch.from_numpy(_channels_first(t))
    else:
        t = _index_target((2, 8, 6))
        axis = 1 if case == "channels_first" else -1
        kl = (K.DiceLoss("multiclass", from_logits=True, ignore_class=255, axis=axis)
              + 0.5 * K.FocalLoss("multiclass", from_logits=True, ignore_class=255, axis=axis))
        tl = S.DiceLoss("multiclass", ignore_index=255) + 0.5 * S.FocalLoss("multiclass", ignore_index=255)
        tt = torch.from_numpy(t)
    if case == "channels_first":
        outs = [_channels_first(o) for o in outs]
    deep, ref = K.DeepSupervision(kl, "uniform"), S.DeepSupervision(tl, "uniform")
    touts = [torch.from_numpy(o if case == "channels_first" else _channels_first(o)).requires_grad_(True)
             for o in outs]
    expected = ref(touts, tt)
    expected_grad = torch.autograd.grad(expected, touts[1])[0].numpy()
    # (z + 0: a tf.Variable in y_pred fails the losses' axis=1 layout, Keras' moveaxis reads `.ndim`)
    got, grad = value_and_grad_fn(lambda z: deep(t, [outs[0], keras.ops.add(z, 0.0), outs[2]]))(outs[1])
    np.testing.assert_allclose(got, expected.item(), rtol=1e-5)
    if case != "channels_first":
        expected_grad = np.moveaxis(expected_grad, 1, -1)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)


def test_gradient_reaches_weighted_outputs_and_weight_zero_levels_are_not_used():
    outs, t = _outputs(), _index_target()
    deep = K.DeepSupervision(K.FocalLoss("multiclass", from_logits=True, ignore_class=255))  # nnunet: [2/3, 1/3, 0]
    for i in (0, 1):
        _, grad = value_and_grad_fn(lambda z: deep(t, outs[:i] + [z] + outs[i + 1:]))(outs[i])
        assert np.abs(grad).sum() > 0 and np.isfinite(grad).all()
    nan = np.full_like(outs[2], np.nan)  # the weight-0 output is never read
    np.testing.assert_allclose(*run(lambda *o: [deep(t, list(o)), deep(t, list(o[:2]) + [nan])], *outs), rtol=0)


def test_pixel_sample_weight_is_area_pooled_and_per_image_weight_passed():
    outs, t = _outputs(), _index_target()
    focal = K.FocalLoss("multiclass", from_logits=True, ignore_class=255)
    deep = K.DeepSupervision(focal, "uniform")
    sw = np.random.default_rng(4).random((2, 8, 8)).astype(np.float32)
    per_image = np.array([2.0, 0.5], dtype=np.float32)

    def both(*o):
        out = []
        for weight in (sw, per_image):
            pooled = [weight if weight.ndim == 1 else np_area(weight, x.shape[1:3]) for x in o]
            out.append(deep(t, list(o), sample_weight=weight))
            out.append(sum(focal(np_nearest(t, x.shape[1:3]), x, sample_weight=w) for x, w in zip(o, pooled)) / 3)
        return out

    got_pixel, expected_pixel, got_image, expected_image = run(both, *outs)
    np.testing.assert_allclose(got_pixel, expected_pixel, rtol=1e-5)
    np.testing.assert_allclose(got_image, expected_image, rtol=1e-5)


@pytest.mark.parametrize("weights", ["nnunet", [1.0, 0.5, 0.25]])
def test_config_round_trip(weights):
    outs, t = _outputs(), _index_target()
    deep = K.DeepSupervision(0.3 * K.DiceLoss("multiclass", weight=[1.0, 2.0, 0.5], ignore_class=255,
                                              from_logits=True)
                             + K.FocalLoss("multiclass", ignore_class=255, from_logits=True, gamma=1.0), weights)
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(deep)))
    again = keras.saving.deserialize_keras_object(config)
    copies = [again, K.DeepSupervision.from_config(deep.get_config()), pickle.loads(pickle.dumps(deep))]
    for copy in copies:
        assert isinstance(copy, K.DeepSupervision) and repr(copy) == repr(deep)
    value, *others = run(lambda *o: [d(t, list(o)) for d in [deep] + copies], *outs)
    for v in others:
        np.testing.assert_allclose(v, value, rtol=1e-6)


def test_errors():
    outs, t = _outputs(), _index_target()
    with pytest.raises(ValueError, match="`weights` must be one of"):
        K.DeepSupervision(K.DiceLoss("binary"), "nnUNet")
    with pytest.raises(ValueError, match="finite numbers >= 0"):
        K.DeepSupervision(K.DiceLoss("binary"), [1.0, -1.0])
    with pytest.raises(TypeError, match="`loss` must be a Keras loss"):
        K.DeepSupervision(S.DiceLoss("binary"))
    with pytest.raises(ValueError, match="set different values of `ignore_class`"):
        K.DeepSupervision(K.DiceLoss("binary", ignore_class=255) + K.FocalLoss("binary", ignore_class=-1))
    with pytest.raises(ValueError, match="set different values of `axis`"):
        K.DeepSupervision(K.DiceLoss("binary", axis=1) + K.FocalLoss("binary", axis=-1))
    deep = K.DeepSupervision(K.DiceLoss("multiclass", from_logits=True, ignore_class=255), [1.0, 0.5])
    with pytest.raises(ValueError, match="`weights` has 2 values but the network gave 3 outputs"):
        deep(t, outs)
    deep = K.DeepSupervision(K.DiceLoss("multiclass", from_logits=True, ignore_class=255))
    with pytest.raises(ValueError, match=r"`y_pred\[1\]` must have the batch size, classes and rank"):
        deep(t, [outs[0], outs[1][..., :2], outs[2]])
    with pytest.raises(ValueError, match=r"`y_pred\[2\]` has spatial shape \(16, 2\), larger than the target's"):
        deep(t, [outs[0], outs[1], np.zeros((2, 16, 2, 3), np.float32)])
    with pytest.raises(ValueError, match="`y_true` must be at the resolution of `y_pred\\[0\\]`"):
        deep(t, outs[::-1])
    with pytest.raises(ValueError, match="`sample_weight` must be per image or have the target's spatial shape"):
        deep(t, outs, sample_weight=np.ones((2, 7, 8), np.float32))


def test_training_through_compute_loss():
    """``model.compile(loss=...)`` pairs a loss with each output; overriding ``compute_loss`` gives the loss the
    list of outputs and the one target (the way docs/semantics.md shows)."""
    keras.utils.set_random_seed(0)
    deep = K.DeepSupervision(K.DiceLoss("multiclass", from_logits=True) + K.FocalLoss("multiclass", from_logits=True),
                             "uniform")

    class Net(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return deep(y, y_pred, sample_weight=sample_weight)

    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(3, 3, padding="same")(inp)
    outs = [h, keras.layers.Conv2D(3, 1)(keras.layers.AveragePooling2D(2)(h)),
            keras.layers.Conv2D(3, 1)(keras.layers.AveragePooling2D(4)(h))]
    model = Net(inp, outs)
    model.compile(keras.optimizers.SGD(0.1))
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    y = (x[..., 0] * 3).astype(np.int32).clip(0, 2)
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), to_numpy(deep(y, model(x))), rtol=1e-4)
