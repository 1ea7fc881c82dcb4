"""seglosses: exact, stable, one-hot-free segmentation losses for PyTorch and Keras 3.

Every PyTorch loss is a function ``loss(logits, target, mode, **options)`` and a Module ``Loss(mode, **options)``;
:mod:`seglosses.keras` holds the same losses for Keras 3 (TensorFlow, JAX or PyTorch backend).

The PyTorch names are imported on first use, so ``import seglosses.keras`` needs neither torch nor its import
time, and importing this package never imports Keras.
"""

from importlib import import_module

from seglosses import _registry

__version__ = "0.1.0"

_EXPORTS = _registry.exports()

__all__ = list(_EXPORTS) + ["loss_classes"]


def loss_classes() -> dict:
    """``{name: class}`` of every public loss Module (the names :func:`from_config` accepts)."""
    from seglosses.core.module import LossModule

    out = {loss.cls: __getattr__(loss.cls) for loss in _registry.LOSSES}
    for name, value in out.items():  # (a row that names something else is a defect of the table)
        if not (isinstance(value, type) and issubclass(value, LossModule)):
            raise TypeError(f"seglosses._registry: {name} is not a LossModule")
    return out


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'seglosses' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
