"""The package's layering, read from its source (docs/architecture.md): module sizes, import circles, layer rules.

Every import inside the package counts, at module level or inside a function (a lazy import is still a
dependency), except those of the package root ``seglosses/__init__.py``, the lazy facade over everything.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "seglosses"
#: Longest module, in lines (the issue's "~600").
MAX_LINES = 620

#: What each part of the package may import from the package (by dotted prefix).
ALLOWED = {
    "seglosses._registry": (),
    "seglosses.core": ("seglosses.core", "seglosses._registry"),
    "seglosses.kernels": ("seglosses.core", "seglosses.kernels"),
    "seglosses.distance": ("seglosses.core",),
    "seglosses.skeleton": ("seglosses.core", "seglosses.distance"),
    "seglosses.metrics": ("seglosses.core", "seglosses.distance"),
    "seglosses.weighting": ("seglosses.core",),
    "seglosses.losses": ("seglosses.core", "seglosses.kernels", "seglosses.losses", "seglosses.distance",
                         "seglosses.skeleton"),
    # framework-free rules only: importing seglosses.keras never imports torch
    "seglosses.keras": ("seglosses.keras", "seglosses._registry", "seglosses.core.args", "seglosses.core.formulas",
                        "seglosses.core.composable", "seglosses.core.schedules",
                        "seglosses.core.levels"),
}


def _modules():
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name, path):
    """The package's modules that ``name`` imports (``from seglosses.x import y`` counts as seglosses.x.y where that
    is a module, else seglosses.x)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("seglosses"):
                found.add(t)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items() if name != "seglosses"}


def _ancestors(name):
    return {name.rsplit(".", i)[0] for i in range(name.count("."))}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = MODULES[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by concern"


def test_no_import_circle():
    # a package's __init__ importing its own submodules is not a circle (Python imports the package first)
    graph = {a: {b for b in deps if a not in _ancestors(b)} for a, deps in GRAPH.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_layers(part):
    bad = []
    for name, deps in GRAPH.items():
        if name == part or name.startswith(part + "."):
            for dep in deps:
                if not any(dep == ok or dep.startswith(ok + ".") for ok in ALLOWED[part]) and dep != "seglosses":
                    bad.append(f"{name} imports {dep}")
    assert not bad, f"{part} may import only {ALLOWED[part]}: " + "; ".join(sorted(bad))


def test_the_graph_is_read():
    # the checks above see the imports they are about
    assert "seglosses.kernels.dispatch" in GRAPH["seglosses.kernels.ops"]
    assert "seglosses.core.checks" in GRAPH["seglosses.losses.focal"]
    assert "seglosses.kernels.focal" in GRAPH["seglosses.kernels.dispatch"]
