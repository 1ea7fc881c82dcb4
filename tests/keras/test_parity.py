"""Every Keras loss equals the float64 oracle (float32 tolerance) and the PyTorch front end on the shared cases."""

import numpy as np
import pytest
import torch

import oracle
import seglosses as S
import seglosses.keras as K
from _kutil import backend_share, keras_class, oracle_function, torch_function
from cases import CASES, IGNORE, make_case, oracle_inputs
from seglosses._registry import BY_NAME, LOSSES
from test_oracle import _options

#: The losses swept here: those of docs/semantics.md, whose oracle is in tests/oracle.py (options from
#: tests/test_oracle.py). The survey losses are swept by test_survey.py, the distance-based ones by test_boundary.py,
#: the new families by test_<family>.py (confusion, contour, hard_pixel incl. Poly-1, structure, topology).
NAMES = [loss.name for loss in LOSSES if hasattr(oracle, loss.name)]


def test_every_loss_is_swept():
    """Every loss of the registry is in exactly one of the sweeps against the float64 oracle and the PyTorch front
    end (here, test_survey.py, test_boundary.py, test_<family>.py): a new loss cannot be left out silently."""
    import test_boundary
    import test_confusion
    import test_contour
    import test_hard_pixel
    import test_structure
    import test_survey
    import test_topology

    swept = (NAMES + test_survey.NAMES + test_boundary.NAMES + test_confusion.NAMES + test_contour.NAMES
             + test_hard_pixel.NAMES + test_structure.NAMES + test_topology.NAMES)
    assert sorted(swept) == sorted(BY_NAME), "a loss of seglosses._registry is in no Keras sweep, or in two"


def _params():
    """Every loss x case kind x mode x shape, with every option set on the ignored and saturated kinds and every
    other one on the rest; the sweep is shared out between the three backends (each case runs on one of them, every
    backend sees every loss, kind and mode)."""
    i = 0
    for name in NAMES:
        for kind, mode, shape in CASES:
            for j, opts in enumerate(_options(name, mode, shape[1])):
                if j % 2 and kind not in ("ignored", "saturated"):  # every other option set on the plain kinds
                    continue
                i += 1
                if backend_share(i):
                    yield pytest.param(name, kind, mode, shape, opts,
                                       id=f"{name}-{kind}-{mode}-{len(shape) - 2}d-o{j}")


def _channels_last(a, dense):
    return np.moveaxis(a, 1, -1) if dense and a.ndim > 2 else a


@pytest.mark.parametrize("name,kind,mode,shape,opts", list(_params()))
def test_equals_oracle_and_torch(name, kind, mode, shape, opts):
    logits, target, opts = oracle_inputs(kind, mode, shape, opts)
    from_logits = opts.get("from_logits", True)
    expected = oracle_function(name)(logits, target, mode, reduction="mean", **opts)
    torch_value = torch_function(name)(torch.from_numpy(logits).float(), torch.from_numpy(target), mode, **opts)
    kopts = {("ignore_class" if k == "ignore_index" else k): v for k, v in opts.items()}
    kopts["from_logits"] = from_logits
    index = mode == "multiclass" and target.ndim == logits.ndim - 1
    y_true = target.astype(np.int32) if index else _channels_last(target.astype(np.float32), True)
    y_pred = _channels_last(logits.astype(np.float32), True)
    got = float(keras_class(name)(mode, **kopts)(y_true, y_pred))
    # float32: p = sigmoid(30) rounds to 1, so a focal-Tversky power gamma < 1 of a ~1e-13 loss (1e-4 in float64)
    # comes out 0 (docs/semantics.md, "Precision"); the PyTorch front end in float32 does the same
    atol = 2e-4 if name == "focal_tversky" and opts.get("gamma", 0.75) < 1 and kind == "saturated" else 2e-6
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=atol, err_msg=f"oracle {name} {kopts}")
    np.testing.assert_allclose(got, float(torch_value), rtol=2e-4, atol=2e-6, err_msg=f"torch {name} {kopts}")


@pytest.mark.parametrize("mode", ["binary", "multilabel", "multiclass"])
def test_focal_none_map_equals_torch(mode):
    c = 1 if mode == "binary" else 3
    logits, target = make_case("ignored", mode, (2, c, 4, 5), seed=3)
    got = K.focal_loss(_channels_last(target.astype(np.int32 if mode == "multiclass" else np.float32), mode != "multiclass"),
                       _channels_last(logits.astype(np.float32), True), mode, from_logits=True, ignore_class=IGNORE)
    ref = S.focal_loss(torch.from_numpy(logits), torch.from_numpy(target), mode, ignore_index=IGNORE, reduction="none")
    ref = _channels_last(ref.numpy(), mode != "multiclass")
    np.testing.assert_allclose(np.asarray(got), ref, rtol=2e-4, atol=1e-6)
