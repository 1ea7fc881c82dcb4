"""What every family's case table is made of: implementations, cases, and the helpers that bind a loss to inputs.

A case is one loss at one setting (``binary/dice``); its implementations are ours (the reference), the peers, and
ours again at a peer's options where a peer matches ours only with other options (``per_image=True``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from ..data import Inputs
from ..peers import Peers
from ..settings import FULL_SHAPES, SETTING_MODE

LossFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Impl:
    name: str
    kind: str  # "ours" | "peer" | "floor"
    make: Callable[[Inputs], LossFn]  # built outside the timed region (modules, target layouts)
    ref: Optional[dict] = None  # ours' kwargs overrides this implementation is checked against (None: ours as timed)
    note: str = ""  # how the peer's arguments were chosen to match ours
    known_diff: str = ""  # a known definition difference, printed when the check fails
    primary: bool = False  # ours' primary implementation: the reference of the case
    group: str = "{}"  # ours' options this row is timed at (JSON); ratios compare ours and peers of one group


@dataclass
class Case:
    setting: str
    loss: str
    impls: list[Impl]
    ours_func: Optional[Callable] = None  # ours' primary function, for the reference values
    ours_kwargs: dict = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # implementations left out, with the reason

    @property
    def name(self) -> str:
        return f"{self.setting}/{self.loss}"


def module_fn(build: Callable[[], Callable], target_of: Callable[[Inputs], torch.Tensor], scale=None):
    """make(): build the module/function once, bind the target view; optional scalar rescaling of the loss."""

    def make(inp: Inputs) -> LossFn:
        crit = build(inp)
        t = target_of(inp)
        if scale is None:
            return lambda x: crit(x, t)
        s = float(scale(inp))
        return lambda x: crit(x, t) * s

    return make


def plain_target(inp: Inputs) -> torch.Tensor:
    return inp.target


def monai_target(inp: Inputs) -> torch.Tensor:
    """monai's target: (N, 1, *) class indices (made one-hot by ``to_onehot_y``) or the binary map itself."""
    return inp.target_n1


def target_squeezed(inp: Inputs) -> torch.Tensor:
    return inp.target_squeezed


def num_classes(inp: Inputs) -> int:
    return inp.num_classes


def onehot_target(inp: Inputs) -> torch.Tensor:
    """One-hot (N, C, *) float target, built outside the timed region (Keras' categorical losses need it)."""
    return F.one_hot(inp.target.long(), inp.num_classes).movedim(-1, 1).to(inp.logits.dtype)


def keras_fn(loss, act=None):
    """A Keras loss object as ``fn(x, t)``: Keras takes (y_true, y_pred); ``act`` maps logits to probabilities."""
    if act is None:
        return lambda x, t: loss(t, x)
    return lambda x, t: loss(t, act(x))


def softmax1(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 1)


KORNIA_2D_ONLY = "kornia {} supports only 2-D (B, C, H, W) logits"


class Builder:
    """One setting's table under construction: ours, the peers, and the two ways to add an implementation to a case.

    The family modules (``focal``, ``region``, ``lovasz``, ``distance``) each return their cases built with it.
    """

    def __init__(self, setting: str, ours: Any, peers: Peers) -> None:
        self.setting = setting
        self.ours = ours
        self.peers = peers
        self.mode = SETTING_MODE[setting]
        self.binary = self.mode == "binary"
        self.two_d = len(FULL_SHAPES[setting]) == 4
        self.spatial_axes = tuple(range(2, len(FULL_SHAPES[setting])))
        # monai's activation: sigmoid on the binary map, softmax with (N, 1, *) index targets made one-hot otherwise
        self.act = {"sigmoid": True} if self.binary else {"softmax": True, "to_onehot_y": True}

    def losses(self, peer_name: str) -> Any:
        """The peer's ``losses`` module (smp, monai, kornia, keras), imported at the first call."""
        return self.peers.get(peer_name).losses


    def ours_impl(self, case: Case, fname: str, *, primary: bool = True, call=None, **kw) -> None:
        """Add ``seglosses.<fname>`` to ``case``, called as ``fname(x, target, mode, **kw)`` or by ``call(func, inp)``;
        the primary one is the case's reference."""
        ours, mode = self.ours, self.mode
        func = getattr(ours, fname, None) if ours is not None else None
        if func is None:
            reason = "seglosses not importable" if ours is None else f"seglosses.{fname} missing"
            case.skipped.append(f"ours {fname}: {reason}")
            return
        if primary:
            case.ours_func, case.ours_kwargs = func, dict(kw)
        if call is None:

            def make(inp: Inputs, func=func, kw=kw) -> LossFn:
                t = inp.target
                return lambda x: func(x, t, mode, **kw)

        else:

            def make(inp: Inputs, func=func) -> LossFn:
                return call(func, inp)

        case.impls.append(Impl(f"ours {fname}", "ours", make, primary=primary))

    def peer(self, case: Case, peer_name: str, label: str, make_factory: Callable[[], Callable[[Inputs], LossFn]],
             **kw) -> None:
        """Add a peer's implementation to ``case`` (skipped with the reason where the peer is missing); ``kw``: the
        :class:`Impl` fields ``ref``, ``note``, ``known_diff``."""
        peers, mode = self.peers, self.mode
        if not peers.available(peer_name):
            case.skipped.append(f"{label}: {peer_name} {peers.errors.get(peer_name, 'unavailable')}")
            return
        ref = kw.get("ref")
        group = json.dumps(ref or {}, sort_keys=True)
        case.impls.append(Impl(label, "peer", make_factory(), group=group, **kw))
        # A peer that computes ours with other options (ref) is compared with ours timed at those options.
        if ref and case.ours_func is not None and not any(i.kind == "ours" and i.group == group for i in case.impls):
            func, base_kw = case.ours_func, dict(case.ours_kwargs)
            opts = ", ".join(f"{k}={v!r}" for k, v in ref.items())

            def make(inp: Inputs, func=func, kw={**base_kw, **ref}) -> LossFn:
                t = inp.target
                return lambda x: func(x, t, mode, **kw)

            case.impls.append(Impl(f"ours {func.__name__}({opts})", "ours", make, ref=dict(ref), group=group))
