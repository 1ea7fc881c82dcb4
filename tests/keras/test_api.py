"""The Keras front end's public surface: its names are the registry's (seglosses._registry) and nothing else, each
class wraps its function (same options, keyword-only after ``mode``, same defaults), a function call builds no Loss
object, and a class's config holds exactly its constructor's options (what ``from_config`` passes back)."""

import inspect

import keras
import numpy as np
import pytest

import seglosses.keras as K
from _kutil import keras_class, keras_function, to_numpy
from seglosses._registry import LOSSES
from test_behaviour import _data

NAMES = [loss.name for loss in LOSSES]
#: Keyword options of a class that its function has not: every Keras loss has them.
LOSS_ONLY = ("reduction", "name", "dtype")
#: Keyword options of a function that its class has not: precomputed maps (a Loss is called without them).
FUNCTION_ONLY = ("dist_maps", "target_dist", "skeletons", "pixel_weight")  # pixel_weight: a per-call input


def test_public_names_are_the_registry_and_nothing_else():
    public = {name for name in dir(K) if not name.startswith("_")}
    assert public == set(K.__all__), sorted(public ^ set(K.__all__))
    expected = ({"SegLoss", "WeightedSum", "ScheduleCallback", "Schedule", "constant", "linear", "cosine", "piecewise",
                 "rebalance", "DeepSupervision"} | {loss.cls for loss in LOSSES} | {loss.function for loss in LOSSES})
    assert sorted(K.__all__) == sorted(expected)
    for loss in LOSSES:
        cls, fn = getattr(K, loss.cls), getattr(K, loss.function)
        assert issubclass(cls, K.SegLoss) and cls.__module__ == "seglosses.keras", loss.cls
        assert inspect.isfunction(fn) and fn.__name__ == loss.function, loss.function


@pytest.mark.parametrize("name", NAMES)
def test_class_and_function_take_the_same_keyword_options(name):
    cls, fn = keras_class(name), keras_function(name)
    init = list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self
    func = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in init[:1]] == ["mode"] and init[0].default is inspect.Parameter.empty
    assert [p.name for p in func[:3]] == ["y_true", "y_pred", "mode"]
    assert all(p.kind is p.KEYWORD_ONLY for p in init[1:] + func[3:]), "options must be keyword-only"
    class_options = [(p.name, p.default) for p in init[1:] if p.name not in LOSS_ONLY]
    function_options = [(p.name, p.default) for p in func[3:] if p.name not in FUNCTION_ONLY]
    assert class_options == function_options
    defaults = {p.name: p.default for p in init}
    assert (defaults["reduction"], defaults["name"], defaults["dtype"]) == ("sum_over_batch_size", fn.__name__, None)
    with pytest.raises(TypeError):
        cls("multiclass", init[1].default)  # an option given by position


@pytest.mark.parametrize("name", NAMES)
def test_function_builds_no_loss_and_gives_the_class_values(name, monkeypatch):
    x, t = _data("multiclass", shape=(2, 5, 4))
    expected = to_numpy(keras_class(name)("multiclass", from_logits=True, ignore_class=255).call(t, x))

    def refuse(*args, **kwargs):
        raise AssertionError(f"{keras_function(name).__name__} built a keras.losses.Loss")

    monkeypatch.setattr(keras.losses.Loss, "__init__", refuse)
    got = to_numpy(keras_function(name)(t, x, "multiclass", from_logits=True, ignore_class=255))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", NAMES)
def test_config_holds_the_constructor_options(name):
    cls = keras_class(name)
    # every constructor option but dtype, which keras.losses.Loss.get_config leaves out
    options = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "dtype")]
    config = cls("multiclass").get_config()
    assert sorted(config) == sorted(options)
    assert cls.from_config(config).get_config() == config
