"""The Keras front end exports every loss of the table (seglosses/_registry.py) under the PyTorch front end's names."""

import pytest

from seglosses import _registry

NAMES = [row.name for row in _registry.LOSSES]


@pytest.mark.parametrize("name", NAMES)
def test_row_is_exported_by_keras(name):
    import keras

    import seglosses.keras as K

    row = _registry.BY_NAME[name]
    for public in (row.cls, row.function):
        assert public in K.__all__, f"{public} (registry row {name!r}) is not in seglosses.keras.__all__"
    cls, fn = getattr(K, row.cls), getattr(K, row.function)
    assert isinstance(cls, type) and issubclass(cls, keras.losses.Loss) and callable(fn)
    # registered under the package name, so a saved model loads it without custom_objects
    assert keras.saving.get_registered_object(f"seglosses>{row.cls}") is cls


def test_every_keras_loss_has_a_row():
    import seglosses.keras as K

    losses = {n for n in K.__all__ if n.endswith(("_loss", "Loss"))}
    rows = {row.function for row in _registry.LOSSES} | {row.cls for row in _registry.LOSSES}
    # SegLoss: the base class of the Keras losses, not a loss
    assert losses - rows <= {"SegLoss"}, f"Keras losses without a registry row: {sorted(losses - rows - {'SegLoss'})}"
