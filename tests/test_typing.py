"""The type hints of the public surface: mypy passes on it and on a typed use of every public name
(tests/typing_usage.py, also run here), each Module's typed constructor equals its function's options, and every
hint resolves at run time."""

import ast
import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import torch

import seglosses
from seglosses import _registry
from seglosses.core.args import Mode, Reduction
from seglosses.core.module import LossModule
from seglosses.kernels import policy

ROOT = Path(__file__).resolve().parents[1]

#: Per-batch inputs of a loss function: ``forward(logits, target, **inputs)`` takes them, the constructor does not.
INPUTS = {"boundary": {"dist_maps"}, "hausdorff_dt": {"target_dist"}, "distance_penalized_cross_entropy": {"dist_maps"},
          "shape_aware": {"dist_maps"}, "skeleton_recall": {"skeletons"}}


def test_mypy(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]' installs it)")
    # the files and options are pyproject.toml's [tool.mypy]; a fresh cache, so the result depends on the tree only
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                          "--cache-dir", str(tmp_path / "mypy-cache")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"mypy found errors:\n{run.stdout}{run.stderr}"
    assert "Success: no issues found" in run.stdout


def test_typed_usage_runs():
    # the typed examples mypy checks are valid calls
    import typing_usage

    before = policy.get_cpu_kernels()
    try:
        typing_usage.use()
    finally:
        policy.set_cpu_kernels(before)


def _init_stub(loss):
    """The ``def __init__`` under ``if TYPE_CHECKING:`` in the body of ``loss``'s Module class."""
    path = ROOT / Path(*loss.module.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == loss.cls)
    for node in cls.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
                    return fn
    raise AssertionError(f"{loss.cls} has no typed constructor (`if TYPE_CHECKING: def __init__(...)`)")


def _normal(annotation):
    return ast.unparse(ast.parse(annotation, mode="eval")) if isinstance(annotation, str) else annotation


@pytest.mark.parametrize("loss", _registry.LOSSES, ids=lambda loss: loss.cls)
def test_constructor_is_the_functions_options(loss):
    # the typed constructor type checkers see: (self, mode, *, <options>) -> None, each option with the function's
    # name, annotation and default, in its order; per-batch inputs left out
    fn = getattr(seglosses, loss.function)
    stub = _init_stub(loss)
    expected = [(p.name, p.kind, _normal(p.annotation), p.default)
                for p in list(inspect.signature(fn).parameters.values())[2:]
                if p.name not in INPUTS.get(loss.name, ()) and p.name != "pixel_weight"]
    args = stub.args
    assert [a.arg for a in args.args[:1]] == ["self"] and not args.posonlyargs and not args.vararg and not args.kwarg
    got = [(a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, ast.unparse(a.annotation), inspect.Parameter.empty)
           for a in args.args[1:]]
    got += [(a.arg, inspect.Parameter.KEYWORD_ONLY, ast.unparse(a.annotation),
             inspect.Parameter.empty if d is None else ast.literal_eval(d))
            for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    assert got == expected
    assert [type(g[3]) for g in got] == [type(e[3]) for e in expected]  # 1 is not 1.0, nor True 1
    assert ast.unparse(stub.returns) == "None"
    assert got[0][:3] == ("mode", inspect.Parameter.POSITIONAL_OR_KEYWORD, "Mode")
    # and what help() and inspect.signature show at run time
    cls = getattr(seglosses, loss.cls)
    assert set(cls._inputs) == INPUTS.get(loss.name, set()) | ({"pixel_weight"} & set(inspect.signature(fn).parameters))
    shown = inspect.signature(cls).parameters.values()
    assert [(p.name, p.kind, _normal(p.annotation), p.default) for p in shown] == expected


@pytest.mark.parametrize("name", sorted(seglosses.__all__))
def test_public_hints_resolve(name):
    # every parameter and return of a public function is annotated, and each hint names something that exists
    obj = getattr(seglosses, name)
    fn = obj.__init__ if isinstance(obj, type) else obj
    if "process_group" in inspect.signature(fn).parameters and not torch.distributed.is_available():
        pytest.skip("torch.distributed.ProcessGroup: this torch build has no torch.distributed")
    # (loss_classes names LossModule for type checkers only: seglosses imports no torch until a name is used)
    hints = typing.get_type_hints(fn, localns={"LossModule": LossModule})
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    missing = [p.name for p in params if p.name not in hints] + ([] if "return" in hints else ["return"])
    assert not missing, f"{name}: no type hint for {missing}"


def test_lazy_names_are_visible_to_type_checkers():
    # seglosses imports its names on first use (__getattr__); its `if TYPE_CHECKING:` block imports each of them
    # (`name as name`: an explicit re-export) from its defining module, so type checkers see the real signatures
    tree = ast.parse((ROOT / "seglosses" / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            if alias.asname is not None:
                assert alias.asname == alias.name
                seen[alias.name] = node.module
    assert seen == _registry.exports()
    assert set(seen) | {"loss_classes"} == set(seglosses.__all__)


def test_type_aliases_match_the_runtime_values():
    assert typing.get_args(Mode) == _registry.MODES
    assert typing.get_args(Reduction) == _registry.REDUCTIONS
    assert typing.get_args(policy.CpuKernels) == policy.MODES


def test_py_typed_ships():
    assert (ROOT / "seglosses" / "py.typed").is_file()
    try:
        import tomllib
    except ImportError:  # Python 3.10
        pytest.skip("tomllib needs Python 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["seglosses"]
    assert any(r.startswith("mypy") for r in config["project"]["optional-dependencies"]["test"])
