"""The benchmark's case table: one function per loss family returns that family's cases for a setting.

:func:`build_cases` is deterministic (the memory workers rebuild the table and pick one implementation by name), so
the order below is the order of the tables.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from ..data import Inputs
from ..peers import Peers
from ..settings import DISTANCE_SETTINGS, FLOOR_NAME, SETTING_MODE, TOPOLOGY_SETTINGS
from .base import Builder, Case, Impl, LossFn
from .confusion import confusion_cases
from .contour import contour_cases
from .distance import distance_cases
from .focal import focal_cases
from .hard_pixel import hard_pixel_cases
from .lovasz import lovasz_cases
from .region import region_cases
from .structure import structure_cases
from .topology import topology_cases

__all__ = ["Case", "Impl", "LossFn", "build_cases", "find_impl", "floor_case"]


def build_cases(setting: str, ours: Any, peers: Peers) -> list[Case]:
    """All cases of a setting, deterministic: the memory workers rebuild them and pick one implementation by name."""
    b = Builder(setting, ours, peers)
    if setting in DISTANCE_SETTINGS:
        return distance_cases(b) + contour_cases(b) + structure_cases(b)
    if setting in TOPOLOGY_SETTINGS:
        return topology_cases(b)
    return focal_cases(b) + region_cases(b) + lovasz_cases(b) + confusion_cases(b) + hard_pixel_cases(b)


def floor_case(setting: str) -> Case:
    """The setting's floor: ``F.binary_cross_entropy_with_logits`` or ``F.cross_entropy``, timed with every case."""
    mode = SETTING_MODE[setting]
    if mode == "binary":

        def make(inp: Inputs) -> LossFn:
            t = inp.target
            return lambda x: F.binary_cross_entropy_with_logits(x, t)

    else:

        def make(inp: Inputs) -> LossFn:
            t = inp.target
            return lambda x: F.cross_entropy(x, t)

    return Case(setting, "floor", [Impl(FLOOR_NAME[mode], "floor", make)])


def find_impl(setting: str, case_loss: str, impl_name: str, ours: Any, peers: Peers) -> Impl:
    """The implementation ``impl_name`` of the case ``<setting>/<case_loss>`` (the floor's case loss is "floor")."""
    cases = [floor_case(setting)] + build_cases(setting, ours, peers)
    for case in cases:
        if case.loss == case_loss:
            for impl in case.impls:
                if impl.name == impl_name:
                    return impl
    raise KeyError(f"{setting}/{case_loss}: {impl_name}")
