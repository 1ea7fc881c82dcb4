"""The one way the PyTorch losses share docstring text: :func:`fill_doc`."""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable
from typing import TypeVar

#: A placeholder: a line holding only ``{name}`` (any indentation).
_PLACEHOLDER = re.compile(r"^( *)\{(\w+)\}\n", re.MULTILINE)
#: A section header: ``Args:``, ``Returns:``, ...
_HEADER = re.compile(r"[A-Z]\w*( \w+)*:")
#: A decorated function: its type is kept (type checkers see its signature, not an untyped decorator's result).
_F = TypeVar("_F", bound=Callable[..., object])


def _entries_for(text: str, params: set) -> str:
    """``text`` without the Args entries (and their continuation lines) of parameters not in ``params``.

    In a text of sections (``Args:``, ``Returns:``, ...) the entries are the lines one level (4 spaces) into the
    ``Args:`` section; a text without section headers is a run of entries at its own indentation (0). An entry
    ``a, b: ...`` is kept if any name is a parameter, with its continuation lines; placeholder lines are kept."""
    lines = text.split("\n")
    sections = any(_HEADER.fullmatch(line) for line in lines)
    out, in_args, keep = [], not sections, True
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip():
            keep = True  # (a blank line ends an entry)
        elif sections and indent == 0:
            in_args, keep = line == "Args:", True
        elif in_args and indent == (4 if sections else 0):
            names = line.strip().split(":")[0].split(", ")
            keep = _PLACEHOLDER.fullmatch(line.strip() + "\n") is not None or any(n in params for n in names)
        if keep:
            out.append(line)
    return "\n".join(out)


def fill_doc(**blocks: str) -> Callable[[_F], _F]:
    """Decorator: replace each docstring line ``{name}`` by the text ``blocks[name]``.

    A block is dedented, then indented as its placeholder line; it may hold placeholder lines itself (filled from the
    same ``blocks``). Args entries of a block are kept only for parameters the function has (:func:`_entries_for`),
    so one block serves functions with different options.

    Example:
        >>> @fill_doc(args='''
        ...     Args:
        ...         x: the input.
        ...         y: left out, ``f`` has no ``y``.''')
        ... def f(x):
        ...     '''Identity.
        ...
        ...     {args}
        ...     '''
        >>> print(f.__doc__)
        Identity.
        <BLANKLINE>
            Args:
                x: the input.
        <BLANKLINE>
    """

    def fill(fn: _F) -> _F:
        params = set(inspect.signature(fn).parameters)

        def sub(match):
            indent, name = match.groups()
            if name not in blocks:
                return match.group(0)
            text = _entries_for(textwrap.dedent(blocks[name]).strip("\n"), params)
            return textwrap.indent(text, indent) + "\n"

        doc, previous = fn.__doc__, None
        while doc is not None and doc != previous:  # blocks may hold placeholders of other blocks (None: python -OO)
            previous, doc = doc, _PLACEHOLDER.sub(sub, doc)
        fn.__doc__ = doc
        return fn

    return fill


#: The one Args entry of ``pixel_weight`` (a ``{pixel_weight}`` line of a docstring, filled by :func:`fill_doc`).
PIXEL_WEIGHT = """
    pixel_weight: a per-pixel weight map (None: every pixel 1), a per-call input (the Module takes it in
        ``forward``): ``(N, *spatial)``, or the logits' shape for a weight per pixel and class (refused by the
        losses with one value per softmax pixel: use ``weight=`` there), each axis the full size or 1. Used as
        given (:func:`seglosses.validate` reports negative or non-finite values), no gradient; a weight at an
        ignored pixel has no effect. Pixel losses weigh each term (mean: sum of w * term / sum of w), overlap
        losses each pixel's share of tp, fp, fn (and of the target volume): docs/semantics.md, "Pixel weights".
"""
