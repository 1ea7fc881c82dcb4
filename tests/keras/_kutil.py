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
