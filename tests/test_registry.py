"""The table of losses (seglosses/_registry.py) agrees with what the package exports, defines and documents.

Every consumer reads the table (the public exports, loss_classes, the demo, the tests' sweeps): these checks catch a
row that names something missing, a loss defined or exported without a row, and a row its docs or reductions do not
match. The Keras front end's exports are checked in tests/keras/test_registry_keras.py.
"""

import importlib
import os
import re

import pytest
import torch

import seglosses as S
from seglosses import _registry

ROWS = _registry.LOSSES
NAMES = [row.name for row in ROWS]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rows_are_unique_and_well_formed():
    for attr in ("name", "cls", "function"):
        values = [getattr(row, attr) for row in ROWS]
        assert len(set(values)) == len(values), f"duplicate {attr} in the registry: {values}"
    assert set(_registry.BY_NAME) == set(NAMES) and all(_registry.BY_NAME[row.name] is row for row in ROWS)
    for row in ROWS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", row.name), row.name
        assert row.function == f"{row.name}_loss" and row.cls.endswith("Loss"), row
        assert row.reductions and set(row.reductions) <= set(_registry.REDUCTIONS), row
        assert {"mean", "sum"} <= set(row.reductions), f"{row.name}: every loss reduces by 'mean' and 'sum'"
    publics = {row.function for row in ROWS} | {row.cls for row in ROWS}
    assert not publics & set(_registry.TOOLS), f"tools named like a loss: {sorted(publics & set(_registry.TOOLS))}"


@pytest.mark.parametrize("name", NAMES)
def test_row_is_exported(name):
    row = _registry.BY_NAME[name]
    for public in (row.function, row.cls):
        assert public in S.__all__, f"{public} (registry row {name!r}) is not in seglosses.__all__"
        assert hasattr(S, public), f"seglosses has no attribute {public} (registry row {name!r})"
        assert public in dir(S)
    assert callable(getattr(S, row.function))
    assert isinstance(getattr(S, row.cls), type) and issubclass(getattr(S, row.cls), torch.nn.Module)


def test_every_exported_loss_has_a_row():
    losses = {n for n in S.__all__ if n.endswith(("_loss", "Loss"))}
    rows = {row.function for row in ROWS} | {row.cls for row in ROWS}
    # the one exception: sigmoid_focal_loss, torchvision's drop-in (no mode, no Module), a tool of the table
    assert losses - rows == {"sigmoid_focal_loss"}, f"exported losses without a registry row: {sorted(losses - rows)}"
    assert "sigmoid_focal_loss" in _registry.TOOLS
    assert set(S.__all__) == set(_registry.exports()) | {"loss_classes"}


def test_loss_classes_are_the_rows_classes():
    classes = S.loss_classes()
    assert list(classes) == [row.cls for row in ROWS]
    assert all(classes[row.cls] is getattr(S, row.cls) for row in ROWS)


@pytest.mark.parametrize("name", NAMES)
def test_module_runs_the_rows_function(name):
    row = _registry.BY_NAME[name]
    assert getattr(S, row.cls)._fn is getattr(S, row.function)


@pytest.mark.parametrize("name", NAMES)
def test_family_module_defines_both(name):
    row = _registry.BY_NAME[name]
    module = importlib.import_module(row.module)
    for public in (row.function, row.cls):
        assert getattr(module, public, None) is getattr(S, public), f"{row.module} does not define {public}"
        assert getattr(S, public).__module__ == row.module, f"{public} is defined in {getattr(S, public).__module__}"


@pytest.mark.parametrize("name", NAMES)
def test_options_are_the_functions_keyword_options(name):
    row = _registry.BY_NAME[name]
    options = _registry.options(row)
    assert {"ignore_index", "from_logits", "reduction"} <= options, f"{name}: every loss takes these"
    assert options == _registry.options(name)


@pytest.mark.parametrize("name", NAMES)
def test_reductions_are_those_the_function_takes(name):
    row = _registry.BY_NAME[name]
    fn = getattr(S, row.function)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    t = torch.randint(0, 3, (2, 4, 5))
    for reduction in _registry.REDUCTIONS:
        if reduction in row.reductions:
            assert torch.isfinite(fn(x, t, "multiclass", reduction=reduction)).all()
        else:
            with pytest.raises(ValueError, match="reduction"):
                fn(x, t, "multiclass", reduction=reduction)


@pytest.mark.parametrize("name", NAMES)
def test_from_config_builds_every_row(name):
    row = _registry.BY_NAME[name]
    module = getattr(S, row.cls)("multiclass", ignore_index=255)
    again = S.from_config(module.to_config())
    assert type(again) is getattr(S, row.cls) and again.to_config() == module.to_config()


def test_every_row_is_in_the_readmes_table_of_losses():
    # README.md, "Losses": one table row per loss, "| `dice_loss` / `DiceLoss` | definition | paper | ... |"
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("|")]
    missing = [row.name for row in ROWS
               if not any(f"`{row.function}` / `{row.cls}`" in line for line in rows)]
    assert not missing, f"README.md's table of losses has no row for {missing}"


#: The 15 losses of Jadon's survey (2020, arXiv 2006.14822, Table I), in its order, and the rows that implement them.
SURVEY = {"binary cross-entropy": "cross_entropy", "weighted cross-entropy": "weighted_cross_entropy",
          "balanced cross-entropy": "balanced_cross_entropy", "focal loss": "focal",
          "distance map derived loss penalty term": "distance_penalized_cross_entropy", "Dice loss": "dice",
          "sensitivity-specificity loss": "sensitivity_specificity", "shape-aware loss": "shape_aware",
          "combo loss": "combo", "exponential logarithmic loss": "exp_log", "Tversky loss": "tversky",
          "focal Tversky loss": "focal_tversky", "log-cosh Dice loss": "log_cosh_dice",
          "Hausdorff distance loss": "hausdorff_dt",
          "correlation maximized structural similarity loss": "correlation_ssim"}


def test_the_surveys_fifteen_losses_are_rows_of_the_registry_and_the_readme():
    assert len(SURVEY) == 15 and len(set(SURVEY.values())) == 15
    missing = {loss: name for loss, name in SURVEY.items() if name not in _registry.BY_NAME}
    assert not missing, f"losses of Jadon's survey without a registry row: {missing}"
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        table = [line for line in f if line.startswith("| `")]
    for loss, name in SURVEY.items():
        row = _registry.BY_NAME[name]
        assert any(line.startswith(f"| `{row.function}` / `{row.cls}`") for line in table), loss


def test_the_readmes_example_runs():
    """README.md's "Example" block, run as it stands (a user copies it first)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## Example"):text.index("## The losses")]
    code = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 3)]
    exec(compile(code, "README.md (Example)", "exec"), {})
