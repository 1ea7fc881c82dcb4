"""Helpers of the Keras tests."""

import keras
import numpy as np


def value_and_grad(fn, x):
    """``fn(x)`` (a scalar) and its gradient in ``x``, with the active backend's autodiff, as NumPy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xv = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = fn(xv)
        return np.asarray(y), np.asarray(tape.gradient(y, xv))
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        y, g = jax.value_and_grad(fn)(jnp.asarray(x))
        return np.asarray(y), np.asarray(g)
    if backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        y = fn(xt)
        (g,) = torch.autograd.grad(y, xt)
        return y.detach().cpu().numpy(), g.cpu().numpy()
    raise RuntimeError(f"no gradient helper for backend {backend!r}")


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


#: The backends that share out the parity sweeps (tests/test_keras_backends.py runs each of them).
BACKENDS = ("tensorflow", "jax", "torch")


def backend_share(i: int) -> bool:
    """Whether sweep case number ``i`` runs on the active backend: case i on backend i mod 3, so the three runs
    together cover the whole sweep once and each backend gets a third of it."""
    return i % len(BACKENDS) == BACKENDS.index(keras.backend.backend())


# ------------------------------------------------------------------------------------ losses by registry name ---
def keras_class(name: str):
    """The Keras class of the registry's loss ``name`` (seglosses._registry): ``keras_class("dice") is DiceLoss``."""
    import seglosses.keras
    from seglosses._registry import BY_NAME

    return getattr(seglosses.keras, BY_NAME[name].cls)


def keras_function(name: str):
    """The Keras function of the registry's loss ``name``: ``keras_function("dice") is dice_loss``."""
    import seglosses.keras
    from seglosses._registry import BY_NAME

    return getattr(seglosses.keras, BY_NAME[name].function)


def torch_function(name: str):
    """The PyTorch function of the registry's loss ``name``: ``torch_function("dice") is seglosses.dice_loss``."""
    import seglosses
    from seglosses._registry import BY_NAME

    return getattr(seglosses, BY_NAME[name].function)


def oracle_function(name: str):
    """The float64 NumPy oracle of the registry's loss ``name``: ``tests/oracle.py`` (the losses of
    docs/semantics.md), ``tests/oracle_survey.py`` (the survey losses) or the family's ``tests/oracle_<family>.py``
    (confusion, contour, hard_pixel, structure, topology), each function named as the loss."""
    import oracle
    import oracle_confusion
    import oracle_contour
    import oracle_hard_pixel
    import oracle_structure
    import oracle_survey
    import oracle_topology

    for module in (oracle, oracle_survey, oracle_confusion, oracle_contour, oracle_hard_pixel, oracle_structure,
                   oracle_topology):
        if hasattr(module, name):
            return getattr(module, name)
    raise KeyError(f"no oracle for the loss {name!r} in tests/oracle.py, oracle_survey.py or oracle_<family>.py")


def channels_last(a):
    return np.moveaxis(a, 1, -1) if a.ndim > 2 else a


def keras_inputs(logits, target, mode, axis=-1):
    index = mode == "multiclass" and target.ndim == logits.ndim - 1
    y_true = target.astype(np.int32) if index else target.astype(np.float32)
    y_pred = logits.astype(np.float32)
    if axis == -1:
        y_pred = channels_last(y_pred)
        y_true = y_true if index else channels_last(y_true)
    return y_true, y_pred


def keras_options(opts):
    kopts = {("ignore_class" if k == "ignore_index" else k): v for k, v in opts.items()}
    kopts["from_logits"] = opts.get("from_logits", True)
    return kopts


#: XLA options of the JAX compilations here: these tests compile many small graphs and run each once, so compile
#: fast (half the time) rather than run fast; the numbers do not change.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def jax_compiled(fn):
    """``jax.jit(fn)`` compiled with :data:`FAST_COMPILE`, once per argument shapes (the arguments: NumPy arrays)."""
    import jax

    jitted, compiled = jax.jit(fn), {}

    def call(*args):
        key = tuple((a.shape, a.dtype.str) for a in args)
        if key not in compiled:
            compiled[key] = jitted.lower(*args).compile(compiler_options=FAST_COMPILE)
        return compiled[key](*args)
    return call


def run(fn, *args):
    """``fn(*args)`` as NumPy; compiled on JAX, whose eager mode compiles every op anew for each shape (5x slower
    here; the eager path is tested by the doctests)."""
    if keras.backend.backend() == "jax":
        fn = jax_compiled(fn)
    return keras.tree.map_structure(to_numpy, fn(*args))


def value_and_grad_fn(fn):
    """``x -> (fn(x), grad)`` as NumPy, with the backend's autodiff (compiled on JAX, see :func:`run`)."""
    if keras.backend.backend() == "jax":
        import jax

        compiled = jax_compiled(jax.value_and_grad(fn))
        return lambda x: tuple(np.asarray(o) for o in compiled(x))
    return lambda x: value_and_grad(fn, x)


def check_config_round_trip(cls, options, shape=(2, 3, 5, 6)):
    """A loss built with ``options`` survives get_config/from_config, keras (de)serialisation and pickle: the same
    repr and the same value on an ignored multiclass case."""
    import json
    import pickle

    from cases import make_case

    loss = cls("multiclass", **options)
    config = loss.get_config()
    json.dumps(config)
    logits, target = make_case("ignored", "multiclass", shape, seed=10)
    y_true, y_pred = keras_inputs(logits, target, "multiclass")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls and repr(restored) == repr(loss)
    copies = [cls.from_config(config), restored, pickle.loads(pickle.dumps(loss))]
    value, *again = run(lambda t, x: [c(t, x) for c in [loss] + copies], y_true, y_pred)
    for v in again:
        np.testing.assert_allclose(v, value, rtol=1e-6)
