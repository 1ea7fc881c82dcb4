"""Loss names of the demo's ``--losses``: every seglosses loss by its short name, and weighted sums of them."""

from __future__ import annotations

import re

from seglosses import _registry

#: Short names: every loss of the registry by its name (``dice`` for ``dice_loss``), plus aliases.
ALIASES = {"ce": "cross_entropy", "iou": "jaccard", "gdl": "generalized_dice", "ft": "focal_tversky",
           "wce": "weighted_cross_entropy", "bce": "balanced_cross_entropy", "hausdorff": "hausdorff_dt",
           "unified": "unified_focal"}
#: The default set: cross-entropy, focal, Dice and their compound, a story about small classes; four losses, so that
#: the default run (3 seeds each) stays near 5 minutes on 2 CPU cores.
DEFAULT = ("ce", "focal", "dice", "dice+ce")

_TERM = re.compile(r"^\s*(?:(?P<coef>[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*\*\s*)?(?P<name>[a-z_]+)\s*$")


def available() -> dict[str, type]:
    """``{short name: Module class}`` of every loss the demo can train with: the registry's rows."""
    import seglosses

    return {row.name: getattr(seglosses, row.cls) for row in _registry.LOSSES}


def build(spec: str, *, ignore_index: int = 255, dist_sync: bool = False):
    """The loss Module for a spec such as ``"dice"``, ``"dice+ce"`` or ``"0.5*dice+focal"`` (mode "multiclass").

    Raises:
        ValueError: naming the unknown term and listing the known names.
    """
    classes = available()
    terms = []
    for part in spec.split("+"):
        m = _TERM.match(part.lower())
        if m is None:
            raise ValueError(f"`--losses`: cannot read {part!r} in {spec!r}; write name or coef*name, joined by +")
        name = ALIASES.get(m["name"], m["name"])
        if name not in classes:
            known = sorted(set(classes) | set(ALIASES))
            raise ValueError(f"`--losses`: unknown loss {m['name']!r} in {spec!r}; known: {', '.join(known)}")
        cls = classes[name]
        opts = {"ignore_index": ignore_index}
        # (the losses whose statistics can be summed over processes take a process_group; Lovasz takes dist_sync
        # only to refuse it)
        if dist_sync and "process_group" in _registry.options(name):
            opts["dist_sync"] = True
        loss = cls("multiclass", **opts)
        terms.append(loss if m["coef"] is None else float(m["coef"]) * loss)
    return terms[0] if len(terms) == 1 else sum(terms)


def safe_name(spec: str) -> str:
    """A file-name-safe form of a loss spec (``0.5*dice+ce`` -> ``0.5xdice+ce``)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "x", spec)
