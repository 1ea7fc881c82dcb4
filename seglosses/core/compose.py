"""Composition of losses: ``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")`` and plain config dicts.

Every loss Module supports ``+``, ``-``, ``*`` and ``/`` by a number, unary ``-`` and ``sum([...])``; the result is
a :class:`WeightedSum`, one Module that computes the weighted sum, keeps each term's last value for logging, moves
with ``.to()`` and round-trips through :meth:`WeightedSum.to_config` / :func:`from_config` (JSON-safe dicts, so a
training config can name its loss). One class serves every combination: there is no DiceCE/DiceFocal class per pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from seglosses.core.composable import ComposableBase, check_pairs, sum_repr


class Composable(ComposableBase):
    """Arithmetic on losses (:mod:`seglosses.core.composable`). Mixed into every loss Module and into
    :class:`WeightedSum`."""

    @staticmethod
    def _weighted_sum(pairs):
        return WeightedSum(pairs)


Composable._family = Composable


class WeightedSum(Composable, nn.Module):
    r"""The weighted sum of losses, :math:`L = \sum_i c_i L_i(\text{logits}, \text{target})`.

    Built by the operators (``0.5 * DiceLoss("multiclass") + FocalLoss("multiclass")``) or directly from
    ``(coef, loss)`` pairs. Every term receives the same ``(logits, target)``.

    Args:
        terms: a sequence of ``(coef, loss)`` pairs, ``coef`` a finite number, ``loss`` a seglosses loss Module.

    Attributes:
        last: after each call, ``{name: value}`` with each term's unweighted value, detached (no host sync: the
            values stay tensors on the device until you read them). Names are the terms' class names, numbered
            from the second occurrence on (``"DiceLoss"``, ``"DiceLoss_2"``).

    Example:
        >>> import torch, seglosses
        >>> loss = 0.5 * seglosses.DiceLoss("multiclass") + seglosses.FocalLoss("multiclass")
        >>> loss
        0.5 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass')
        >>> x, t = torch.zeros(1, 2, 4), torch.tensor([[0, 1, 1, 0]])
        >>> round(loss(x, t).item(), 4)  # p = 0.5 everywhere: 0.5 * (1 - 0.5) + (1 - 0.5)^2 ln 2
        0.4233
        >>> sorted(loss.last)
        ['DiceLoss', 'FocalLoss']
        >>> seglosses.from_config(loss.to_config())
        0.5 * DiceLoss('multiclass') + 1.0 * FocalLoss('multiclass')
    """

    def __init__(self, terms: Iterable[tuple[float, Composable]]) -> None:
        super().__init__()
        pairs = check_pairs(terms, Composable, WeightedSum, "seglosses loss Module")
        self.coefs = tuple(c for c, _ in pairs)
        self.terms = nn.ModuleList(t for _, t in pairs)
        names, seen = [], {}
        for t in self.terms:
            base = type(t).__name__
            seen[base] = seen.get(base, 0) + 1
            names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
        self.names = tuple(names)
        self.last: dict[str, torch.Tensor] = {}

    def _pairs(self):
        return list(zip(self.coefs, self.terms))

    def forward(self, logits: torch.Tensor, target: torch.Tensor, **inputs: torch.Tensor | None) -> torch.Tensor:
        """The weighted sum; each keyword input (``dist_maps=...``) goes to the terms whose function takes it."""
        total = None
        last = {}
        unused = set(inputs)
        for name, k, term in zip(self.names, self.coefs, self.terms):
            accepted = term.keywords()
            mine = {k: v for k, v in inputs.items() if k in accepted}
            unused -= set(mine)
            value = term(logits, target, **mine)
            last[name] = value.detach()
            part = value * k
            total = part if total is None else total + part
        if unused:
            raise TypeError(f"no term of {self!r} takes the input(s) {sorted(unused)}")
        self.last = last
        return total

    def __repr__(self) -> str:
        return sum_repr(self.coefs, self.terms)

    def to_config(self) -> dict[str, Any]:
        """``{"class": "WeightedSum", "terms": [{"coef": c, "loss": <config>}, ...]}``, JSON-safe."""
        return {"class": "WeightedSum",
                "terms": [{"coef": c, "loss": t.to_config()} for c, t in zip(self.coefs, self.terms)]}


def _json_value(name: str, value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_value(name, v) for v in value]
    raise TypeError(f"option `{name}` of type {type(value).__name__} cannot be written to a config "
                    "(only numbers, strings, bools, None, lists and tensors can)")


def module_config(module) -> dict[str, Any]:
    """``{"class": name, "mode": mode, "options": {...}}`` of a loss Module, JSON-safe."""
    opts = {k: _json_value(k, v) for k, v in module.options.items()}
    return {"class": type(module).__name__, "mode": module.mode, "options": opts}


def from_config(config: Mapping[str, Any]) -> nn.Module:
    """The loss Module described by ``config`` (as written by ``to_config()``).

    Args:
        config: ``{"class": "DiceLoss", "mode": "multiclass", "options": {...}}`` for one loss (``mode`` and
            ``options`` optional), ``{"class": "WeightedSum", "terms": [{"coef": 0.5, "loss": {...}}, ...]}``, or
            ``{"class": "DeepSupervision", "loss": {...}, "weights": "nnunet"}``.

    Returns:
        A fresh loss Module (:class:`WeightedSum` for a sum, :class:`~seglosses.DeepSupervision` for deep
        supervision).

    Example:
        >>> import seglosses
        >>> seglosses.from_config({"class": "TverskyLoss", "mode": "binary", "options": {"alpha": 0.7, "beta": 0.3}})
        TverskyLoss('binary', alpha=0.7, beta=0.3)
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"`config` must be a dict; got {type(config).__name__}")
    name = config.get("class")
    if name == "WeightedSum":
        unknown = set(config) - {"class", "terms"}
        if unknown:
            raise ValueError(f"`config` of a WeightedSum takes the keys 'class' and 'terms'; got {sorted(unknown)}")
        terms = config.get("terms")
        if not isinstance(terms, (list, tuple)):
            raise ValueError(f"`config['terms']` must be a list of {{'coef': ..., 'loss': ...}}; got {terms!r}")
        pairs = []
        for i, term in enumerate(terms):
            if not isinstance(term, Mapping) or set(term) != {"coef", "loss"}:
                raise ValueError(f"`config['terms'][{i}]` must be a dict with the keys 'coef' and 'loss'; got {term!r}")
            pairs.append((term["coef"], from_config(term["loss"])))
        return WeightedSum(pairs)
    if name == "DeepSupervision":
        from seglosses.core.supervision import DeepSupervision

        if "loss" not in config or set(config) - {"class", "loss", "weights"}:
            raise ValueError("`config` of a DeepSupervision takes the keys 'class', 'loss' and 'weights' ('loss' "
                             f"required); got {sorted(config)}")
        return DeepSupervision(from_config(config["loss"]), weights=config.get("weights", "nnunet"))
    import seglosses

    classes = seglosses.loss_classes()
    if name not in classes:
        allowed = sorted(classes) + ["DeepSupervision", "WeightedSum"]
        raise ValueError(f"`config['class']` must be one of {allowed}; got {name!r}")
    unknown = set(config) - {"class", "mode", "options"}
    if unknown:
        raise ValueError(f"`config` of a loss takes the keys 'class', 'mode' and 'options'; got {sorted(unknown)}")
    options = config.get("options") or {}
    if not isinstance(options, Mapping):
        raise TypeError(f"`config['options']` must be a dict; got {type(options).__name__}")
    mode = config.get("mode")
    return classes[name](mode, **options) if mode is not None else classes[name](**options)
