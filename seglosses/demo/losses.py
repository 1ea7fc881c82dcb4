"""Loss names of the demo's ``--losses``: every seglosses loss by its short name, and weighted sums of them.

The grammar (spaces ignored, case-insensitive)::

    spec   := term ("+" term)*
    term   := (coef "*")* name
    coef   := number | [number "-"] schedule
    schedule := linear(start,end,steps[,begin]) | ramp(...) (= linear) | cosine(start,end,steps[,begin])
              | piecewise(v0,b1,v1,b2,v2,...) (v0 before epoch b1, v1 from b1 on, ...)
              | rebalance([start[,step[,floor]]]) | constant(value)

A spec may be wrapped, once each, in ``weighted(spec)`` (every term gets the run's pixel weight maps,
``--weight-map``: border weights from the masks, or ``DIR/weights/*.png``) and ``deep(spec)`` (the U-Net is built
with deep-supervision heads and the loss is :class:`seglosses.DeepSupervision` with nnU-Net's weights), in either
order: ``deep(weighted(dice+ce))``.

A schedule's position is the epoch (``loss.step(epoch)`` at the start of each); the argument ``epochs`` stands for
``--epochs``. Examples: ``0.5*dice+ce``, ``dice+ramp(0.01,1,epochs)*boundary``,
``rebalance()*gdl+1-rebalance()*boundary`` (Kervadec et al.'s rebalancing).
"""

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

_NUMBER = r"[0-9]*\.?[0-9]+(?:e-?[0-9]+)?"
_NAME = re.compile(r"^[a-z_]+$")
_COEF = re.compile(rf"^(?:(?P<minus>{_NUMBER})-)?(?P<fn>[a-z_]+)\((?P<args>[^()]*)\)$")
#: The schedules of the grammar: name -> (factory, the numbers of arguments it takes)
_SCHEDULES = {"linear": ("linear", (3, 4)), "ramp": ("linear", (3, 4)), "cosine": ("cosine", (3, 4)),
              "piecewise": ("piecewise", None), "rebalance": ("rebalance", (0, 1, 2, 3)), "constant": ("constant", (1,))}


def split_top(text: str, sep: str) -> list[str]:
    """``text`` split at each ``sep`` outside parentheses: ``split_top("a,f(1,2)", ",") == ["a", "f(1,2)"]``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def split_specs(text: str) -> tuple[str, ...]:
    """The specs of a comma-separated ``--losses`` value (commas inside a schedule's parentheses kept)."""
    return tuple(s.strip() for s in split_top(text, ",") if s.strip())


def _schedule(fn: str, args: str, where: str, epochs: int | None):
    import seglosses

    if fn not in _SCHEDULES:
        raise ValueError(f"`--losses`: unknown schedule {fn!r} in {where!r}; known: {', '.join(sorted(_SCHEDULES))}")
    factory, counts = _SCHEDULES[fn]
    values = []
    for a in (x for x in args.split(",") if x):
        if a == "epochs" and epochs is not None:
            values.append(epochs)
        elif re.fullmatch(rf"-?{_NUMBER}", a):
            values.append(float(a) if re.search(r"[.e]", a) else int(a))
        else:
            raise ValueError(f"`--losses`: cannot read the argument {a!r} of {fn}() in {where!r}; write numbers"
                             + (" or 'epochs'" if epochs is not None else ""))
    if counts is not None and len(values) not in counts:
        raise ValueError(f"`--losses`: {fn}() takes {' or '.join(map(str, counts))} numbers; got {len(values)} in "
                         f"{where!r}")
    try:
        if factory == "piecewise":
            if len(values) % 2 == 0:
                raise ValueError("piecewise(v0,b1,v1,...) takes an odd number of numbers")
            return seglosses.piecewise(values[0::2], values[1::2])
        if factory in ("linear", "cosine") and len(values) == 4:
            return getattr(seglosses, factory)(*values[:3], begin=values[3])
        return getattr(seglosses, factory)(*values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`--losses`: {fn}() in {where!r}: {e}") from None


def _coef(text: str, where: str, epochs: int | None):
    if re.fullmatch(_NUMBER, text):
        return float(text)
    m = _COEF.match(text)
    if m is None:
        raise ValueError(f"`--losses`: cannot read the coefficient {text!r} in {where!r}; write a number, a "
                         "schedule such as ramp(0.01,1,8), or 1-schedule")
    s = _schedule(m["fn"], m["args"], where, epochs)
    return s if m["minus"] is None else float(m["minus"]) - s


_WRAP = re.compile(r"^(?P<fn>deep|weighted)\((?P<inner>.*)\)$")


def wrappers(spec: str) -> tuple[str, bool, bool]:
    """``(inner spec, deep, weighted)`` of a spec: ``wrappers("deep(weighted(dice+ce))") == ("dice+ce", True, True)``.

    Raises:
        ValueError: a wrapper given twice, or an empty inner spec.
    """
    text, found = re.sub(r"\s+", "", spec.lower()), {"deep": False, "weighted": False}
    while (m := _WRAP.match(text)) and len(split_top(text, "+")) == 1:
        if found[m["fn"]]:
            raise ValueError(f"`--losses`: {m['fn']}(...) given twice in {spec!r}")
        found[m["fn"]], text = True, m["inner"]
    if not text:
        raise ValueError(f"`--losses`: an empty loss in {spec!r}")
    return text, found["deep"], found["weighted"]


def available() -> dict[str, type]:
    """``{short name: Module class}`` of every loss the demo can train with: the registry's rows."""
    import seglosses

    return {row.name: getattr(seglosses, row.cls) for row in _registry.LOSSES}


def build(spec: str, *, ignore_index: int = 255, dist_sync: bool = False, epochs: int | None = None):
    """The loss Module for a spec such as ``"dice"``, ``"dice+ce"``, ``"0.5*dice+focal"``,
    ``"dice+ramp(0.01,1,epochs)*boundary"`` or ``"deep(dice+ce)"`` (mode "multiclass"; the grammar: this module's
    docstring; ``weighted(...)`` is read by the training loop, :func:`wrappers`).

    Args:
        epochs: the value of the argument ``epochs`` in a schedule (None: the word is refused).

    Raises:
        ValueError: naming the unknown term, schedule or argument and listing the known names.
    """
    import seglosses

    inner, deep, _ = wrappers(spec)
    classes = available()
    terms = []
    for part in split_top(inner, "+"):
        *coefs, word = split_top(part, "*")
        if not _NAME.match(word):
            raise ValueError(f"`--losses`: cannot read {part!r} in {spec!r}; write name or coef*name, joined by +")
        name = ALIASES.get(word, word)
        if name not in classes:
            known = sorted(set(classes) | set(ALIASES))
            raise ValueError(f"`--losses`: unknown loss {word!r} in {spec!r}; known: {', '.join(known)}")
        cls = classes[name]
        opts = {"ignore_index": ignore_index}
        # (the losses whose statistics can be summed over processes take a process_group; Lovasz takes dist_sync
        # only to refuse it)
        if dist_sync and "process_group" in _registry.options(name):
            opts["dist_sync"] = True
        loss = cls("multiclass", **opts)
        for c in coefs:
            try:
                loss = _coef(c, spec, epochs) * loss
            except TypeError as e:  # two schedules in one term
                raise ValueError(f"`--losses`: {e} in {spec!r}") from None
        terms.append(loss)
    loss = terms[0] if len(terms) == 1 else sum(terms)
    return seglosses.DeepSupervision(loss, weights="nnunet") if deep else loss


def safe_name(spec: str) -> str:
    """A file-name-safe form of a loss spec (``0.5*dice+ce`` -> ``0.5xdice+ce``)."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "x", spec)
