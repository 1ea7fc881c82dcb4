#!/usr/bin/env python
"""Benchmark of seglosses' core losses against peer libraries: forward + backward time and extra peak memory.

Run from the repository root, for example::

    PYTHONPATH=. python benchmarks/bench_core.py --quick
    PYTHONPATH=. python benchmarks/bench_core.py --only binary/ --json bench.json --markdown bench.md
    PYTHONPATH=. python benchmarks/bench_core.py --device cuda --only multiclass/dice,multiclass3d/

Also ``python -m seglosses.bench`` or the ``seglosses-bench`` console script; ``--png PATH`` draws a chart of the
ratios (matplotlib).

Settings (logits' shape): ``binary`` (8, 1, 512, 512) with a float {0, 1} target of the same shape;
``multiclass`` (4, 8, 256, 256), ``manyclass`` (2, 150, 128, 128, ADE20K-like) and ``multiclass3d``
(2, 4, 96, 96, 96) with int64 class-index targets (N, *); ``--settings`` picks some of them.
``--quick`` uses tiny shapes (a smoke run; its numbers mean nothing). Cases are named ``<setting>/<loss>``
(``binary/focal``, ``multiclass3d/dice``, ...); ``--only`` keeps those containing one of its comma-separated
substrings. The floor of each setting (``F.binary_cross_entropy_with_logits`` / ``F.cross_entropy``) always runs.

Data: seeded, generated on the CPU (identical on every device and in every process) and deliberately not symmetric,
so that definitions that differ also give different values: multiclass labels have class frequencies proportional
to 1 / (c + 1), binary targets 30 % positives, and the logits lean towards the target (frequent classes more).

Value check: before timing, every implementation's loss is compared with ours (relative difference < 1e-3). Peer
arguments are chosen so that the definitions match where the peer allows it (smoothing constants, reductions, alpha
conventions, batch vs per-image statistics, checked against the matching ours variant); each such choice is printed
as a note. A peer whose value still differs is printed with the known reason and reported as "differs" (timed, not a
failure).

Time: forward + backward on a fresh leaf copy of the logits (made outside the timed region). Each implementation gets
2 warm-up runs, then the ``--repeats`` timed runs of a case are interleaved (one run of each implementation, and of
the floor, per round), so a transient disturbance is spread over the whole group; the median is reported
(``time.perf_counter``, ``torch.cuda.synchronize`` before and after each run on cuda). The ratio to the floor uses
the floor's runs from the same rounds.

Extra peak memory of one forward + backward, the logits' gradient included, the logits and target excluded. On cpu
each (case, implementation) runs in a fresh subprocess of this script (after all timings of the setting) that warms
the implementation up on a tiny input, builds the inputs, returns freed memory to the OS (``malloc_trim``), resets
the peak RSS (``/proc/self/clear_refs``), reads ``VmHWM`` from ``/proc/self/status``, runs one forward + backward
and reads ``VmHWM`` again; the subprocess runs with a fixed glibc mmap threshold, so that large buffers are mapped
afresh and the peak RSS follows the peak of live buffers. On cuda: ``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats`` minus ``memory_allocated`` before.

Peers (segmentation_models_pytorch, torchvision, kornia, monai, keras on its torch backend) are optional: a missing
one is skipped with a note.
If ``seglosses`` cannot be imported, the peers and floors still run. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------------------------------
# Settings and constants
# --------------------------------------------------------------------------------------------------------------------

SETTINGS = ("binary", "multiclass", "manyclass", "multiclass3d", "distance2d", "distance3d")
#: Settings of the distance-based losses only (boundary, Hausdorff DT), the sizes of issue 5.
DISTANCE_SETTINGS = ("distance2d", "distance3d")
SETTING_MODE = {"binary": "binary", "multiclass": "multiclass", "manyclass": "multiclass", "multiclass3d": "multiclass",
                "distance2d": "multiclass", "distance3d": "multiclass"}
FULL_SHAPES = {"binary": (8, 1, 512, 512), "multiclass": (4, 8, 256, 256), "manyclass": (2, 150, 128, 128),
               "multiclass3d": (2, 4, 96, 96, 96), "distance2d": (4, 3, 128, 128), "distance3d": (2, 3, 64, 64, 64)}
QUICK_SHAPES = {"binary": (2, 1, 32, 32), "multiclass": (2, 4, 32, 32), "manyclass": (1, 20, 16, 16),
                "multiclass3d": (1, 3, 8, 8, 8), "distance2d": (2, 3, 16, 16), "distance3d": (1, 3, 8, 8, 8)}
FLOOR_NAME = {"binary": "floor F.binary_cross_entropy_with_logits", "multiclass": "floor F.cross_entropy"}

SMOOTH = 1e-5  # ours' default smoothing of the region losses
BIN_ALPHA = 0.25  # alpha of the sigmoid focal loss (torchvision's default)
GAMMA = 2.0  # focal gamma
TV_ALPHA, TV_BETA = 0.3, 0.7  # ours' Tversky defaults
FT_GAMMA = 0.75  # ours' focal-Tversky default
RTOL = 1e-3  # agreement threshold of the value check
POS_FRACTION = 0.3  # share of positives of the binary target
SIGNAL = 1.5  # how far the logits lean towards the target
SEED = 0
WARMUP = 2
NOISY = 1.5  # a median above NOISY x the fastest run of the same implementation is flagged as disturbed
MEM_TAG = "MEMRESULT "
MMAP_THRESHOLD = 1 << 17  # bytes; glibc's initial value, made fixed in the memory workers

PEER_MODULES = {
    "smp": "segmentation_models_pytorch",
    "torchvision": "torchvision",
    "kornia": "kornia",
    "monai": "monai",
    "keras": "keras",  # timed on its torch backend (KERAS_BACKEND=torch), so on the same tensors and autograd
}


# --------------------------------------------------------------------------------------------------------------------
# Optional imports
# --------------------------------------------------------------------------------------------------------------------


class Peers:
    """Access to the optional peer libraries.

    ``eager`` (the main process): ``available`` imports the library, so that a broken installation is skipped with a
    note. Otherwise (memory workers) it only looks the module up, and ``get`` imports the one library needed.
    """

    def __init__(self, eager: bool = True) -> None:
        self.eager = eager
        self._mods: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def available(self, name: str) -> bool:
        if name in self.errors:
            return False
        if name in self._mods:
            return True
        try:
            found = importlib.util.find_spec(PEER_MODULES[name]) is not None
            if not found:
                self.errors[name] = "not installed"
            elif self.eager:
                self.get(name)
        except Exception as exc:  # a broken installation
            self.errors[name] = f"import failed: {type(exc).__name__}: {exc}"
            return False
        return found

    def get(self, name: str) -> Any:
        if name not in self._mods:
            if name == "keras":
                os.environ.setdefault("KERAS_BACKEND", "torch")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mod = importlib.import_module(PEER_MODULES[name])
            if name == "keras" and mod.backend.backend() != "torch":
                raise RuntimeError(f"keras runs on the {mod.backend.backend()!r} backend here; the benchmark times it "
                                   "on 'torch' (unset KERAS_BACKEND or set it to torch)")
            self._mods[name] = mod
        return self._mods[name]

    @staticmethod
    def version(name: str) -> Optional[str]:
        try:
            return importlib.metadata.version(PEER_MODULES[name])
        except Exception:
            return None


def load_ours() -> tuple[Any, Optional[str]]:
    try:
        import seglosses  # noqa: PLC0415
    except Exception as exc:  # ImportError, or a package half-written
        return None, f"{type(exc).__name__}: {exc}"
    return seglosses, None


# --------------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    setting: str
    mode: str
    logits: torch.Tensor  # float32 (N, C, *)
    target: torch.Tensor  # binary: float (N, 1, *); multiclass: int64 (N, *)

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]

    @property
    def target_n1(self) -> torch.Tensor:
        """The target as (N, 1, *) (monai's layout): a view."""
        return self.target if self.mode == "binary" else self.target.unsqueeze(1)

    @property
    def target_squeezed(self) -> torch.Tensor:
        """A binary target as (N, *) (kornia's hinge layout): a view."""
        return self.target[:, 0] if self.mode == "binary" else self.target


def make_inputs(setting: str, shape: tuple[int, ...], device: torch.device, seed: int = SEED) -> Inputs:
    """Seeded inputs, generated on the CPU so that every device and process gets the same values.

    The data are deliberately not symmetric, so that definitions that differ (per-image vs batch statistics, mean of
    powers vs power of the mean, ...) also give different values: multiclass labels have class frequencies
    proportional to 1 / (c + 1) and the logits lean towards the target, the more so the more frequent the class
    (randn + 2 SIGNAL (1 - c / (C - 1)) at the target class c); binary: randn + SIGNAL (2 t - 1), with POS_FRACTION
    positives.
    """
    mode = SETTING_MODE[setting]
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape, generator=gen)
    if mode == "binary":
        target = (torch.rand(shape, generator=gen) < POS_FRACTION).float()
        logits = noise.add_(target * (2 * SIGNAL) - SIGNAL)
    else:
        n, c = shape[0], shape[1]
        spatial = shape[2:]
        freq = 1.0 / torch.arange(1, c + 1, dtype=torch.float64)
        count = n * math.prod(spatial)
        target = torch.multinomial(freq, count, replacement=True, generator=gen).view(n, *spatial)
        # frequent classes are easy, rare ones hard: the lean is 2 * SIGNAL for class 0, down to 0 for class C - 1
        lean = 2 * SIGNAL * (1 - torch.arange(c, dtype=torch.float32) / max(c - 1, 1))
        logits = noise.scatter_add_(1, target.unsqueeze(1), lean[target].unsqueeze(1))
    return Inputs(setting, mode, logits.contiguous().to(device), target.contiguous().to(device))


# --------------------------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------------------------

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


def _module_fn(build: Callable[[], Callable], target_of: Callable[[Inputs], torch.Tensor], scale=None):
    """make(): build the module/function once, bind the target view; optional scalar rescaling of the loss."""

    def make(inp: Inputs) -> LossFn:
        crit = build(inp)
        t = target_of(inp)
        if scale is None:
            return lambda x: crit(x, t)
        s = float(scale(inp))
        return lambda x: crit(x, t) * s

    return make


def _target(inp: Inputs) -> torch.Tensor:
    return inp.target


def _target_n1(inp: Inputs) -> torch.Tensor:
    return inp.target_n1


def _target_squeezed(inp: Inputs) -> torch.Tensor:
    return inp.target_squeezed


def _num_classes(inp: Inputs) -> int:
    return inp.num_classes


def _onehot(inp: Inputs) -> torch.Tensor:
    """One-hot (N, C, *) float target, built outside the timed region (Keras' categorical losses need it)."""
    return F.one_hot(inp.target.long(), inp.num_classes).movedim(-1, 1).to(inp.logits.dtype)


def _keras_fn(loss, act=None):
    """A Keras loss object as ``fn(x, t)``: Keras takes (y_true, y_pred); ``act`` maps logits to probabilities."""
    if act is None:
        return lambda x, t: loss(t, x)
    return lambda x, t: loss(t, act(x))


def build_cases(setting: str, ours: Any, peers: Peers) -> list[Case]:
    """All cases of a setting, deterministic: the memory workers rebuild them and pick one implementation by name."""
    mode = SETTING_MODE[setting]
    binary = mode == "binary"
    two_d = len(FULL_SHAPES[setting]) == 4
    cases: list[Case] = []

    def ours_impl(case: Case, fname: str, *, primary: bool = True, call=None, **kw) -> None:
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

    def peer(case: Case, peer_name: str, label: str, make_factory: Callable[[], Callable[[Inputs], LossFn]], **kw):
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

    def smp_losses():
        return peers.get("smp").losses

    def monai_losses():
        return peers.get("monai").losses

    def kornia_losses():
        return peers.get("kornia").losses

    def keras_losses():
        return peers.get("keras").losses

    spatial_axes = tuple(range(2, len(FULL_SHAPES[setting])))
    softmax1 = lambda x: torch.softmax(x, 1)  # noqa: E731

    act = {"sigmoid": True} if binary else {"softmax": True, "to_onehot_y": True}
    monai_target = _target_n1  # monai: (N, 1, *) index targets (to_onehot_y) or the binary map itself

    if setting in DISTANCE_SETTINGS:
        # ---- Hausdorff distance-transform loss and boundary loss (every class, softmax) -------------------------
        case = Case(setting, "hausdorff_dt", [])
        ours_impl(case, "hausdorff_dt_loss")  # backend "auto": SciPy on the CPU, torch on CUDA
        ours_impl(case, "hausdorff_dt_loss", primary=False,
                  call=lambda func, inp: (lambda t: lambda x: func(x, t, mode, backend="torch"))(inp.target))
        case.impls[-1].name = "ours hausdorff_dt_loss(backend='torch')"
        peer(
            case,
            "monai",
            "monai HausdorffDTLoss",
            lambda: _module_fn(lambda inp: monai_losses().HausdorffDTLoss(alpha=2.0, include_background=True, **act),
                               monai_target),
            note="include_background=True, softmax + to_onehot_y: every class, as ours' default; monai computes "
            "SciPy transforms per (image, class) on the host",
        )
        cases.append(case)
        case = Case(setting, "boundary", [])
        ours_impl(case, "boundary_loss")
        ours_impl(case, "boundary_loss", primary=False,
                  call=lambda func, inp: (lambda t: lambda x: func(x, t, mode, backend="torch"))(inp.target))
        case.impls[-1].name = "ours boundary_loss(backend='torch')"
        peer(
            case,
            "monai",
            "monai BoundaryLoss",
            lambda: _module_fn(lambda inp: monai_losses().BoundaryLoss(include_background=True, **act), monai_target),
            note="include_background=True, softmax + to_onehot_y: every class, as ours' default",
        )
        cases.append(case)
        return cases
    kornia_2d_only = "kornia {} supports only 2-D (B, C, H, W) logits"

    # ---- focal -------------------------------------------------------------------------------------------------
    case = Case(setting, "focal", [])
    if binary:
        ours_impl(case, "focal_loss", alpha=BIN_ALPHA, gamma=GAMMA)
        ours_impl(
            case,
            "sigmoid_focal_loss",
            primary=False,
            call=lambda func, inp: (lambda t: lambda x: func(x, t, alpha=BIN_ALPHA, gamma=GAMMA, reduction="mean"))(
                inp.target
            ),
        )
        peer(
            case,
            "smp",
            "smp FocalLoss",
            lambda: _module_fn(lambda inp: smp_losses().FocalLoss("binary", alpha=BIN_ALPHA, gamma=GAMMA), _target),
        )
        peer(
            case,
            "torchvision",
            "torchvision sigmoid_focal_loss",
            lambda: _module_fn(
                lambda inp: (
                    lambda f: lambda x, t: f(x, t, alpha=BIN_ALPHA, gamma=GAMMA, reduction="mean")
                )(peers.get("torchvision").ops.sigmoid_focal_loss),
                _target,
            ),
        )
        peer(
            case,
            "kornia",
            "kornia BinaryFocalLossWithLogits",
            lambda: _module_fn(
                lambda inp: kornia_losses().BinaryFocalLossWithLogits(
                    alpha=BIN_ALPHA, gamma=GAMMA, reduction="mean", ignore_index=None
                ),
                _target,
            ),
            note="ignore_index=None (kornia's default -100 adds a mask pass; ours has no ignore_index here)",
        )
        peer(
            case,
            "monai",
            "monai FocalLoss",
            lambda: _module_fn(
                lambda inp: monai_losses().FocalLoss(alpha=BIN_ALPHA, gamma=GAMMA, use_softmax=False, reduction="mean"),
                monai_target,
            ),
        )
        peer(
            case,
            "keras",
            "keras BinaryFocalCrossentropy",
            lambda: _module_fn(lambda inp: _keras_fn(keras_losses().BinaryFocalCrossentropy(
                apply_class_balancing=True, alpha=BIN_ALPHA, gamma=GAMMA, from_logits=True)), _target),
            note="apply_class_balancing=True (Keras ignores alpha without it); torch backend",
        )
    else:
        ours_impl(case, "focal_loss", gamma=GAMMA)
        peer(
            case,
            "smp",
            "smp FocalLoss",
            lambda: _module_fn(lambda inp: smp_losses().FocalLoss("multiclass", gamma=GAMMA), _target),
            known_diff="smp's multiclass FocalLoss is a one-vs-rest sigmoid focal loss averaged over classes, "
            "not a softmax focal loss",
        )
        peer(
            case,
            "kornia",
            "kornia FocalLoss",
            lambda: _module_fn(
                lambda inp: kornia_losses().FocalLoss(alpha=None, gamma=GAMMA, reduction="mean", ignore_index=None),
                _target,
                scale=_num_classes,
            ),
            note="kornia's 'mean' divides by C x pixels: its value is multiplied by C; alpha=None (kornia's scalar "
            "alpha weights class 0 by 1-alpha, the others by alpha); ignore_index=None",
        )
        peer(
            case,
            "monai",
            "monai FocalLoss",
            lambda: _module_fn(
                lambda inp: monai_losses().FocalLoss(
                    gamma=GAMMA, alpha=None, use_softmax=True, to_onehot_y=True, reduction="mean"
                ),
                monai_target,
                scale=_num_classes,
            ),
            note="monai's 'mean' averages the (N, C, *) map, i.e. divides by C x pixels: its value is multiplied by C; "
            "alpha=None (monai's scalar alpha is background 1-alpha / others alpha); target (N, 1, *)",
        )
        peer(
            case,
            "keras",
            "keras CategoricalFocalCrossentropy",
            lambda: _module_fn(lambda inp: _keras_fn(keras_losses().CategoricalFocalCrossentropy(
                alpha=1.0, gamma=GAMMA, from_logits=True, axis=1)), _onehot),
            note="alpha=1.0 (Keras' default 0.25 scales every class), axis=1, one-hot target; torch backend",
        )
    cases.append(case)

    # ---- dice --------------------------------------------------------------------------------------------------
    case = Case(setting, "dice", [])
    ours_impl(case, "dice_loss")
    peer(
        case,
        "smp",
        "smp DiceLoss",
        lambda: _module_fn(lambda inp: smp_losses().DiceLoss(mode, smooth=SMOOTH / 2), _target),
        note=f"smooth={SMOOTH / 2:g}: smp adds smooth to I and to (|X|+|Y|)/2, so (2I+{SMOOTH:g})/(|X|+|Y|+{SMOOTH:g})",
    )
    peer(
        case,
        "monai",
        "monai DiceLoss",
        lambda: _module_fn(lambda inp: monai_losses().DiceLoss(batch=True, **act), monai_target),
        note="batch=True (statistics summed over the batch, as ours with per_image=False); smooth_nr=smooth_dr=1e-5",
    )
    peer(
        case,
        "keras",
        "keras Dice",
        lambda: _module_fn(lambda inp: _keras_fn(keras_losses().Dice(axis=(0,) + spatial_axes),
                                                 torch.sigmoid if binary else softmax1),
                           _target if binary else _onehot),
        note="axis=(0, *spatial): one score per class over the batch (ours' per_image=False); Keras has no "
        "smoothing and no logits option (activation applied in the timed call)",
    )
    if binary:
        case.skipped.append("kornia dice_loss: softmax-only (a 1-channel binary input gives a constant loss)")
    elif two_d:
        peer(
            case,
            "kornia",
            "kornia dice_loss",
            lambda: _module_fn(
                lambda inp: (lambda f: lambda x, t: f(x, t, average="macro", eps=SMOOTH, ignore_index=None))(
                    kornia_losses().dice_loss
                ),
                _target,
            ),
            ref={"per_image": True},
            note="kornia's Dice is per image: average='macro' checked against ours(per_image=True); kornia adds eps "
            "to the denominator only",
        )
    else:
        case.skipped.append(kornia_2d_only.format("dice_loss"))
    cases.append(case)

    # ---- jaccard -----------------------------------------------------------------------------------------------
    case = Case(setting, "jaccard", [])
    ours_impl(case, "jaccard_loss")
    peer(
        case,
        "smp",
        "smp JaccardLoss",
        lambda: _module_fn(lambda inp: smp_losses().JaccardLoss(mode, smooth=SMOOTH), _target),
    )
    peer(
        case,
        "monai",
        "monai DiceLoss(jaccard=True)",
        lambda: _module_fn(
            lambda inp: monai_losses().DiceLoss(
                jaccard=True, batch=True, smooth_nr=2 * SMOOTH, smooth_dr=2 * SMOOTH, **act
            ),
            monai_target,
        ),
        note=f"smooth_nr=smooth_dr={2 * SMOOTH:g}: monai's Jaccard is (2I+s)/(2U+s); batch=True",
    )
    case.skipped.append("kornia: no Jaccard loss")
    cases.append(case)

    # ---- tversky -----------------------------------------------------------------------------------------------
    case = Case(setting, "tversky", [])
    ours_impl(case, "tversky_loss", alpha=TV_ALPHA, beta=TV_BETA)
    peer(
        case,
        "smp",
        "smp TverskyLoss",
        lambda: _module_fn(
            lambda inp: smp_losses().TverskyLoss(mode, smooth=SMOOTH, alpha=TV_ALPHA, beta=TV_BETA), _target
        ),
    )
    peer(
        case,
        "monai",
        "monai TverskyLoss",
        lambda: _module_fn(
            lambda inp: monai_losses().TverskyLoss(alpha=TV_ALPHA, beta=TV_BETA, batch=True, **act), monai_target
        ),
        note="batch=True; smooth_nr=smooth_dr=1e-5",
    )
    peer(
        case,
        "keras",
        "keras Tversky",
        lambda: _module_fn(lambda inp: _keras_fn(keras_losses().Tversky(alpha=TV_BETA, beta=TV_ALPHA,
                                                                        axis=(0,) + spatial_axes),
                                                 torch.sigmoid if binary else softmax1),
                           _target if binary else _onehot),
        note=f"alpha={TV_BETA:g}, beta={TV_ALPHA:g}: Keras' alpha weighs false negatives (Salehi's and ours, false "
        "positives; checked on keras 3.15.1); axis=(0, *spatial); no smoothing; activation in the timed call",
    )
    if binary:
        case.skipped.append("kornia tversky_loss: softmax-only")
    elif two_d:
        peer(
            case,
            "kornia",
            "kornia tversky_loss",
            lambda: _module_fn(
                lambda inp: (
                    lambda f: lambda x, t: f(x, t, alpha=TV_ALPHA, beta=TV_BETA, eps=SMOOTH, ignore_index=None)
                )(kornia_losses().tversky_loss),
                _target,
            ),
            ref={"per_image": True},
            note="kornia's Tversky is per image: checked against ours(per_image=True); eps in the denominator only",
        )
    else:
        case.skipped.append(kornia_2d_only.format("tversky_loss"))
    cases.append(case)

    # ---- focal tversky -----------------------------------------------------------------------------------------
    case = Case(setting, "focal_tversky", [])
    ours_impl(case, "focal_tversky_loss", alpha=TV_ALPHA, beta=TV_BETA, gamma=FT_GAMMA)
    peer(
        case,
        "smp",
        "smp TverskyLoss(gamma)",
        lambda: _module_fn(
            lambda inp: smp_losses().TverskyLoss(mode, smooth=SMOOTH, alpha=TV_ALPHA, beta=TV_BETA, gamma=FT_GAMMA),
            _target,
        ),
        known_diff=None if binary else "smp raises the class mean to gamma, (mean_c l_c)^gamma; ours averages "
        "l_c^gamma (same for one class)",
    )
    case.skipped.append("monai: no focal-Tversky (AsymmetricFocalTverskyLoss is a different loss)")
    case.skipped.append("kornia: no focal-Tversky")
    cases.append(case)

    # ---- generalized dice --------------------------------------------------------------------------------------
    case = Case(setting, "generalized_dice", [])
    ours_impl(case, "generalized_dice_loss", weight_type="square")
    peer(
        case,
        "monai",
        "monai GeneralizedDiceLoss",
        lambda: _module_fn(
            lambda inp: monai_losses().GeneralizedDiceLoss(w_type="square", batch=True, **act), monai_target
        ),
        note="batch=True (one score over the batch, as ours with per_image=False); smooth_nr=smooth_dr=1e-5",
    )
    case.skipped.append("smp, kornia: no generalized Dice")
    cases.append(case)

    # ---- lovasz ------------------------------------------------------------------------------------------------
    if setting in ("binary", "multiclass"):
        case = Case(setting, "lovasz", [])
        ours_impl(case, "lovasz_loss")
        peer(
            case,
            "smp",
            "smp LovaszLoss",
            lambda: _module_fn(lambda inp: smp_losses().LovaszLoss(mode), _target),
        )
        if binary:
            peer(
                case,
                "kornia",
                "kornia lovasz_hinge_loss",
                lambda: _module_fn(lambda inp: kornia_losses().lovasz_hinge_loss, _target_squeezed),
                ref={"per_image": True},
                note="kornia's hinge is per image: checked against ours(per_image=True); target (N, H, W)",
            )
        else:
            peer(
                case,
                "kornia",
                "kornia lovasz_softmax_loss",
                lambda: _module_fn(lambda inp: kornia_losses().lovasz_softmax_loss, _target),
                ref={"per_image": True, "classes": "all"},
                note="kornia's Lovasz-softmax is per image over all classes: checked against "
                "ours(per_image=True, classes='all')",
            )
        cases.append(case)

    return cases


def floor_case(setting: str) -> Case:
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
    cases = [floor_case(setting)] + build_cases(setting, ours, peers)
    for case in cases:
        if case.loss == case_loss:
            for impl in case.impls:
                if impl.name == impl_name:
                    return impl
    raise KeyError(f"{setting}/{case_loss}: {impl_name}")


# --------------------------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(fn: LossFn, base: torch.Tensor, device: torch.device) -> float:
    x = base.detach().clone().requires_grad_(True)  # a fresh leaf, outside the timed region
    _sync(device)
    t0 = time.perf_counter()
    loss = fn(x)
    loss.backward()
    _sync(device)
    t1 = time.perf_counter()
    return t1 - t0


class GraphRun:
    """One forward + backward of ``fn`` captured in a CUDA graph (``--cuda-graph``): replays time the GPU work alone,
    without Python and launch overhead. Capture fails where the implementation synchronizes with the host."""

    REPLAYS = 5  # replays per timed run, between two CUDA events

    def __init__(self, fn: LossFn, base: torch.Tensor) -> None:
        self.x = base.detach().clone().requires_grad_(True)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                self.x.grad = None
                fn(self.x).backward()
        torch.cuda.current_stream().wait_stream(side)
        self.x.grad = None
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            fn(self.x).backward()

    def __call__(self) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(self.REPLAYS):
            self.graph.replay()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / self.REPLAYS


def copy_bandwidth(device: torch.device, nbytes: int = 1 << 30, repeats: int = 20) -> float:
    """The device's memory bandwidth as a large device-to-device copy moves it: GB/s counting the bytes read and
    the bytes written (median of ``repeats`` copies after a warm-up)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    times = []
    for k in range(repeats + 2):
        _sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        if k >= 2:
            times.append(time.perf_counter() - t0)
    del src, dst
    return 2 * nbytes / statistics.median(times) / 1e9


def min_bytes(inp: "Inputs") -> int:
    """The fewest bytes one forward + backward must move through memory: the logits and the target read once,
    the logits' gradient written once."""
    return 2 * inp.logits.numel() * inp.logits.element_size() + inp.target.numel() * inp.target.element_size()


def _proc_status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def _malloc_trim() -> bool:
    """Give the memory freed so far back to the OS (glibc), so that reusing it later shows in the RSS."""
    try:
        import ctypes  # noqa: PLC0415

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0)) or True
    except Exception:
        return False


def _reset_hwm() -> bool:
    """Reset the peak RSS to the current RSS (Linux >= 4.0); False where it is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def mem_worker(spec: dict) -> None:
    """Hidden entry point: extra peak RSS of one forward + backward of one implementation, in a fresh process."""
    warnings.simplefilter("ignore")
    torch.set_num_threads(spec["threads"])
    device = torch.device("cpu")
    setting = spec["setting"]
    ours, _ = load_ours()
    ours.set_cpu_kernels(spec["cpu_kernels"])
    peers = Peers(eager=False)
    impl = find_impl(setting, spec["case"], spec["impl"], ours, peers)

    # Warm-up on a tiny input: imports, kernels, thread pool and allocator set-up do not count.
    tiny = make_inputs(setting, QUICK_SHAPES[setting], device)
    fn = impl.make(tiny)
    for _ in range(2):
        run_once(fn, tiny.logits, device)
    del fn, tiny

    inp = make_inputs(setting, tuple(spec["shape"]), device)
    fn = impl.make(inp)
    if spec["cpu_kernels"] != "eager":  # the compilation at this shape (its memory is the compiler's) does not count
        run_once(fn, inp.logits, device)
    x = inp.logits.detach().clone().requires_grad_(True)
    gc.collect()
    trimmed = _malloc_trim()
    reset = _reset_hwm()
    rss0 = _proc_status_kib("VmRSS")
    hwm0 = _proc_status_kib("VmHWM")
    loss = fn(x)
    loss.backward()
    hwm1 = _proc_status_kib("VmHWM")
    result = {
        "extra_mib": (hwm1 - hwm0) / 1024.0,
        "hwm_reset": reset,
        "malloc_trim": trimmed,
        "mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
        "rss_before_mib": rss0 / 1024.0,
        "hwm_before_mib": hwm0 / 1024.0,
        "hwm_after_mib": hwm1 / 1024.0,
        "loss": float(loss.detach()),
    }
    print(MEM_TAG + json.dumps(result), flush=True)


def measure_memory_cpu(setting: str, case: Case, impl: Impl, shape, threads: int,
                       cpu_kernels: str = "inductor") -> tuple[Optional[float], str]:
    spec = {"setting": setting, "case": case.loss, "impl": impl.name, "shape": list(shape), "threads": threads,
            "cpu_kernels": cpu_kernels}
    cmd = [sys.executable, "-m", "seglosses.bench", "--_mem-worker", json.dumps(spec)]
    env = os.environ.copy()
    # glibc: a fixed mmap threshold (it also turns off the dynamic one) maps every large buffer afresh and unmaps it
    # when freed, so the peak RSS follows the peak of the live buffers instead of depending on which freed heap
    # memory happens to be reused.
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    # the worker imports this very seglosses (a checkout run through benchmarks/bench_core.py included)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    except subprocess.TimeoutExpired:
        return None, "memory worker timed out"
    for line in proc.stdout.splitlines():
        if line.startswith(MEM_TAG):
            res = json.loads(line[len(MEM_TAG) :])
            return res["extra_mib"], "" if res["hwm_reset"] else "VmHWM not reset (clear_refs refused)"
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return None, f"memory worker failed (rc {proc.returncode}): {tail[0]}"


def measure_memory_cuda(fn: LossFn, base: torch.Tensor, device: torch.device) -> float:
    x = base.detach().clone().requires_grad_(True)
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    loss = fn(x)
    loss.backward()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del loss, x
    return (peak - before) / 2**20


# --------------------------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _loadavg() -> Optional[float]:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _short_err(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0][:160] if msg else ''}"


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def run_case(
    case: Case, inp: Inputs, args, device: torch.device, log, pending: list, floor: Optional[Impl] = None
) -> list[dict]:
    """Value check and timing of every implementation of a case; timed rows are appended to ``pending``.

    ``floor``: timed in the same rounds as the case's implementations (not reported as a row of the case), so that
    the ratio to the floor compares runs made at the same time.
    """
    rows: list[dict] = []
    for s in case.skipped:
        log(f"  skip  [{case.name}] {s}")
    if not case.impls:
        return rows
    ref_cache: dict[str, Any] = {}

    def reference(overrides: Optional[dict]) -> Optional[float]:
        if case.ours_func is None:
            return None
        key = json.dumps(overrides or {}, sort_keys=True)
        if key not in ref_cache:
            kw = {**case.ours_kwargs, **(overrides or {})}
            try:
                with torch.no_grad():
                    ref_cache[key] = float(case.ours_func(inp.logits, inp.target, inp.mode, **kw))
            except Exception as exc:
                ref_cache[key] = exc
        return ref_cache[key]

    timed: list = []
    for impl in case.impls:
        row: dict[str, Any] = {
            "case": case.name,
            "loss": case.loss,
            "impl": impl.name,
            "kind": impl.kind,
            "note": impl.note,
            "known_diff": impl.known_diff or "",
            "ref": impl.ref,
            "group": impl.group,
        }
        rows.append(row)
        if impl.note:
            log(f"  note  [{case.name}] {impl.name}: {impl.note}")
        try:
            fn = impl.make(inp)
            with torch.no_grad():
                value = float(fn(inp.logits))
        except Exception as exc:
            row.update(status="error", error=_short_err(exc))
            log(f"  ERROR [{case.name}] {impl.name}: {_short_err(exc)}")
            continue
        row["value"] = value
        if not math.isfinite(value):
            row.update(status="error", error=f"non-finite loss {value}")
            log(f"  ERROR [{case.name}] {impl.name}: non-finite loss {value}")
            continue

        # value check against ours
        if impl.kind == "floor":
            row["status"] = "floor"
        elif case.ours_func is None:
            row["status"] = "unchecked"
            log(f"  check [{case.name}] {impl.name}: value {value:.6g} (unchecked: ours missing)")
        else:
            ref = reference(impl.ref)
            if isinstance(ref, Exception):
                row.update(status="unchecked", ref_error=_short_err(ref))
                log(f"  check [{case.name}] {impl.name}: ours reference failed: {_short_err(ref)}")
            else:
                rel = _rel(value, ref)
                row.update(ref_value=ref, rel_diff=rel)
                against = "ours" if not impl.ref else "ours(" + ", ".join(f"{k}={v!r}" for k, v in impl.ref.items()) + ")"
                if impl.primary and impl.ref is None:
                    row["status"] = "ref"
                elif rel < RTOL:
                    row["status"] = "ok"
                else:
                    row["status"] = "differs"
                if row["status"] == "differs":
                    why = impl.known_diff or "definitions differ (no known reason recorded)"
                    log(
                        f"  NOTE  [{case.name}] {impl.name} DIFFERS from {against}: {value:.6g} vs {ref:.6g} "
                        f"(rel {rel:.2e} >= {RTOL:g}); {why}. Timed anyway, reported as 'differs'."
                    )
                elif row["status"] == "ok":
                    log(f"  check [{case.name}] {impl.name}: {value:.6g} vs {against} {ref:.6g} (rel {rel:.1e}) ok")
                    if impl.known_diff:
                        log(f"  NOTE  [{case.name}] {impl.name} agrees on these data, but its definition differs: "
                            f"{impl.known_diff}")
                else:
                    log(f"  check [{case.name}] {impl.name}: {value:.6g} (the reference)")

        timed.append((impl, row, fn))

    floor_row: dict[str, Any] = {"impl": "floor (same rounds)", "kind": "floor-companion"}
    if floor is not None and timed:
        try:
            timed.append((floor, floor_row, floor.make(inp)))
        except Exception as exc:
            log(f"  ERROR [{case.name}] floor companion: {_short_err(exc)}")

    # Time: warm-up of each implementation, then the timed runs interleaved (one run of each implementation per
    # round), so that a transient disturbance (another process, frequency changes) is spread over the whole group
    # instead of falling on one implementation.
    for impl, row, fn in timed:
        try:
            for _ in range(WARMUP):
                run_once(fn, inp.logits, device)
            if args.cuda_graph:
                row["graph"] = GraphRun(fn, inp.logits)
                for _ in range(WARMUP):
                    row["graph"]()
            row["times_ms"] = []
        except Exception as exc:
            row.update(status="error", error=_short_err(exc))
            log(f"  ERROR [{case.name}] {impl.name} (forward+backward): {_short_err(exc)}")
    timed = [t for t in timed if t[1].get("status") != "error"]
    for _ in range(args.repeats):
        for impl, row, fn in timed:
            if row.get("status") == "error":
                continue
            try:
                run = row.get("graph") or (lambda fn=fn: run_once(fn, inp.logits, device))
                row["times_ms"].append(run() * 1e3)
            except Exception as exc:
                row.update(status="error", error=_short_err(exc))
                log(f"  ERROR [{case.name}] {impl.name} (forward+backward): {_short_err(exc)}")
    floor_ms = statistics.median(floor_row["times_ms"]) if floor_row.get("times_ms") else None
    for impl, row, fn in timed:
        row.pop("graph", None)
        if row.get("status") == "error":
            row.pop("times_ms", None)
            continue
        if row is floor_row:
            continue
        if floor_ms is not None:
            row["floor_ms_same_rounds"] = floor_ms
        times = row["times_ms"]
        row["ms"] = statistics.median(times)
        row["min_ms"] = min(times)
        row["noisy"] = row["ms"] > NOISY * row["min_ms"]
        pending.append((case, impl, row))
        log(f"  time  [{case.name}] {impl.name}: {row['ms']:.3f} ms (min {row['min_ms']:.3f})")
    return rows


def measure_memory_rows(pending: list, inp: Inputs, args, device: torch.device, log) -> None:
    """Extra peak memory of every timed implementation, after all timings of the setting (so that the worker
    processes cannot disturb them)."""
    for case, impl, row in pending:
        if device.type == "cuda":
            try:
                row["extra_mib"] = measure_memory_cuda(impl.make(inp), inp.logits, device)
            except Exception as exc:
                row["mem_error"] = _short_err(exc)
        else:
            mib, err = measure_memory_cpu(case.setting, case, impl, tuple(inp.logits.shape), args.threads,
                                           args.cpu_kernels)
            row["extra_mib"] = mib
            if err:
                row["mem_error"] = err
        if row.get("extra_mib") is not None:
            log(f"  mem   [{case.name}] {impl.name}: {row['extra_mib']:.1f} MiB" + (f" ({row['mem_error']})" if row.get("mem_error") else ""))
        else:
            log(f"  mem   [{case.name}] {impl.name}: failed: {row.get('mem_error')}")


def finish_rows(rows: list[dict], logits_mib: float, moved: Optional[int] = None,
                copy_gbps: Optional[float] = None) -> None:
    """Ratios of every row; with ``moved`` (bytes, :func:`min_bytes`) and ``copy_gbps`` (GPU runs) also the
    bandwidth the row's time implies for those bytes and its share of the copy bandwidth."""
    floor_ms = next((r.get("ms") for r in rows if r["kind"] == "floor" and r.get("ms")), None)
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    for case_rows in by_case.values():
        def fastest_of(group):
            """Fastest agreeing peer timed at ``group``'s options (None: any group), and whether it is approximate."""
            same = [r for r in case_rows if r["kind"] == "peer" and r.get("ms") and (group is None or r["group"] == group)]
            ok = [r["ms"] for r in same if r.get("status") == "ok"]
            if ok:
                return min(ok), False
            return (min(r["ms"] for r in same), True) if same else (None, False)

        for r in case_rows:
            ms = r.get("ms")
            fastest, approx = fastest_of(r["group"])
            if fastest is None:  # no peer at these options: every peer, flagged
                fastest, _ = fastest_of(None)
                approx = fastest is not None
            r["x_fastest_peer"] = ms / fastest if ms and fastest and r["kind"] != "floor" else None
            r["fastest_peer_approx"] = approx
            floor_ref = r.get("floor_ms_same_rounds") or floor_ms
            r["x_floor"] = ms / floor_ref if ms and floor_ref else None
            mib = r.get("extra_mib")
            r["x_logits_mib"] = mib / logits_mib if mib is not None else None
            if moved is not None and copy_gbps and ms:
                r["gbps"] = moved / (ms * 1e-3) / 1e9
                r["x_copy_bw"] = r["gbps"] / copy_gbps


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def _status_cell(r: dict) -> str:
    st = r.get("status", "?")
    if st in ("ok", "differs") and r.get("rel_diff") is not None:
        return f"{st} {r['rel_diff']:.0e}"
    return st


TABLE_HEAD = ["case", "implementation", "check", "ms", "x fastest peer", "x floor", "extra MiB", "MiB / logits MiB"]
BW_HEAD = ["GB/s", "of copy BW"]


def _head(rows: list[dict]) -> tuple[bool, list[str]]:
    """Whether the rows carry bandwidth figures (GPU runs), and the table's header."""
    bw = any(r.get("gbps") is not None for r in rows)
    return bw, TABLE_HEAD + (BW_HEAD if bw else [])


def table_cells(r: dict, bw: bool = False) -> list[str]:
    xp = _fmt(r.get("x_fastest_peer"), ".2f")
    if r.get("x_fastest_peer") is not None and r.get("fastest_peer_approx"):
        xp += "~"
    return [
        r["loss"],
        r["impl"],
        _status_cell(r),
        _fmt(r.get("ms"), ".3f" if (r.get("ms") or 1) < 1 else ".2f") + ("!" if r.get("noisy") else ""),
        xp,
        _fmt(r.get("x_floor"), ".2f"),
        _fmt(r.get("extra_mib"), ".1f"),
        _fmt(r.get("x_logits_mib"), ".2f"),
    ] + ([_fmt(r.get("gbps"), ".0f"), _fmt(None if r.get("x_copy_bw") is None else 100 * r["x_copy_bw"], ".0f", "-")
          + ("%" if r.get("x_copy_bw") is not None else "")] if bw else [])


def render_text(rows: list[dict]) -> str:
    bw, head = _head(rows)
    body = [head] + [table_cells(r, bw) for r in rows]
    widths = [max(len(row[i]) for row in body) for i in range(len(head))]
    right = set(range(3, len(head)))
    lines = []
    prev_case = None
    for k, row in enumerate(body):
        if k > 1 and rows[k - 1]["case"] != prev_case:
            lines.append("")
        if k >= 1:
            prev_case = rows[k - 1]["case"]
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[dict]) -> str:
    bw, head = _head(rows)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in table_cells(r, bw)) + " |")
    return "\n".join(out)


def setting_header(setting: str, shape, device: torch.device, args, logits_mib: float) -> str:
    return (
        f"{setting}: logits {tuple(shape)} float32 ({logits_mib:.1f} MiB), mode {SETTING_MODE[setting]}, "
        f"device {device.type}, threads {args.threads}, repeats {args.repeats} (median after {WARMUP} warm-up)"
        + (f", cpu kernels {args.cpu_kernels}" if device.type == "cpu" else "")
        + (f"; time of CUDA graph replays ({GraphRun.REPLAYS} per run): the GPU work alone"
           if args.cuda_graph else "")
    )


LEGEND = (
    f"ms: median forward+backward (!: median > {NOISY:g} x the fastest of its runs, i.e. disturbed timings). "
    "x fastest peer: ms / fastest peer whose value agrees with ours at the same options (a peer that matches ours "
    "only with other options, e.g. per_image=True, is compared with 'ours fn(those options)', timed too; "
    "~: no agreeing peer at those options, fastest of all peers). x floor: ms / the floor (BCE-with-logits or cross_entropy) timed in "
    "the same interleaved rounds. "
    "extra MiB: peak memory of one forward+backward above the inputs (logits' gradient included); "
    "MiB / logits MiB: that divided by the logits' size. check: rel. difference of the loss value to ours "
    f"(ok < {RTOL:g}; 'differs' = a different definition, see notes). "
    "GPU only: GB/s = the fewest bytes a forward+backward must move (logits and target read once, gradient written "
    "once) / ms; of copy BW = that / the bandwidth of a 1 GiB device-to-device copy measured at the start."
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes (smoke run)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per implementation (default 7)")
    p.add_argument("--only", default=None, help="comma-separated substrings; run the cases whose name contains one "
                   "(names: <setting>/<loss>, e.g. binary/focal, multiclass3d/dice)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    p.add_argument("--markdown", default=None, metavar="PATH", help="write the tables as Markdown")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--skip-memory", action="store_true", help="do not measure the extra peak memory")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated subset of {', '.join(SETTINGS)}")
    p.add_argument("--png", default=None, metavar="PATH", help="draw the ratios to the fastest peer (matplotlib)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="cuda: time replays of each forward+backward captured in a CUDA graph (the GPU work alone)")
    p.add_argument("--batch-scale", type=int, default=1, metavar="K",
                   help="multiply every setting's batch size by K (GPU: sizes where memory, not launches, bounds)")
    p.add_argument("--shape", action="append", default=[], metavar="SETTING=NxCxHxW",
                   help="another logits shape for a setting, e.g. multiclass3d=2x4x64x64x64 (repeatable)")
    p.add_argument("--cpu-kernels", default="inductor", choices=["inductor", "eager", "auto"],
                   help="cpu: seglosses.set_cpu_kernels for ours (default inductor: what a training loop runs from "
                   "its third step on; eager: the blocked torch passes)")
    p.add_argument("--_mem-worker", dest="mem_worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.mem_worker is not None:
        mem_worker(json.loads(args.mem_worker))
        return 0

    if args.repeats < 1 or args.threads < 1 or args.batch_scale < 1:
        p.error("--repeats, --threads and --batch-scale must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    if args.cuda_graph and args.device != "cuda":
        p.error("--cuda-graph needs --device cuda")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)

    def log(msg: str) -> None:
        print(msg, flush=True)

    ours, ours_err = load_ours()
    if ours is not None:
        ours.set_cpu_kernels(args.cpu_kernels)
    peers = Peers()
    shapes = dict(QUICK_SHAPES if args.quick else FULL_SHAPES)
    for spec in args.shape:
        name, _, dims = spec.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if name not in shapes or len(shape) != len(shapes[name]) or min(shape, default=0) < 1:
            p.error(f"--shape: expected SETTING=NxCx... with a setting of {', '.join(shapes)} and as many positive "
                    f"sizes as its shape {tuple(shapes.get(name, ()))}; got {spec!r}")
        shapes[name] = shape
    filters = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None

    meta = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": WARMUP,
        "quick": args.quick,
        "batch_scale": args.batch_scale,
        "cuda_graph": args.cuda_graph,
        "only": args.only,
        "rtol": RTOL,
        "seglosses": None if ours is None else getattr(ours, "__version__", "importable"),
        "seglosses_error": ours_err,
        "peers": {name: (Peers.version(name) if peers.available(name) else None) for name in PEER_MODULES},
        "memory_method": None
        if args.skip_memory
        else (
            "cuda max_memory_allocated - memory_allocated before"
            if device.type == "cuda"
            else "VmHWM delta in a fresh subprocess (malloc_trim + clear_refs reset before; "
            f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', MMAP_THRESHOLD)})"
        ),
    }
    log(f"torch {torch.__version__}, device {args.device}, threads {args.threads}, repeats {args.repeats}"
        + (" (quick)" if args.quick else "") + (f", batch x{args.batch_scale}" if args.batch_scale > 1 else "")
        + (", CUDA graph replays" if args.cuda_graph else ""))
    copy_gbps = None
    if device.type == "cuda":
        copy_gbps = copy_bandwidth(device)
        meta["copy_gbps"] = copy_gbps
        log(f"{meta['device_name']}: 1 GiB device-to-device copy {copy_gbps:.0f} GB/s (read + written)")
    load1 = _loadavg()
    meta["loadavg_1min_at_start"] = load1
    if load1 is not None and device.type == "cpu" and load1 > 0.5:
        log(f"NOTE: 1-min load average {load1:.2f} on {os.cpu_count()} CPUs before starting: other processes compete "
            "for the CPUs, timings may be noisy (see times_ms in the JSON)")
    if ours is None:
        log(f"NOTE: ours (seglosses) is missing: {ours_err}. Running the peers and floors only.")
    else:
        log(f"seglosses: {ours.__file__}")
    for name in PEER_MODULES:
        if peers.available(name):
            log(f"peer {name}: {Peers.version(name)}")
        else:
            log(f"NOTE: peer {name} skipped: {peers.errors.get(name)}")

    results: dict[str, Any] = {"meta": meta, "settings": {}}
    md_parts = [f"# seglosses core benchmark\n\n{LEGEND}\n",
                f"torch {torch.__version__}, device {meta['device_name']} ({args.device}), threads {args.threads}, "
                f"repeats {args.repeats}" + (f", copy bandwidth {copy_gbps:.0f} GB/s" if copy_gbps else "")
                + (f", batch x{args.batch_scale}" if args.batch_scale > 1 else "") + "; peers: "
                + ", ".join(f"{k} {v}" for k, v in meta["peers"].items() if v) + "; seglosses: "
                + (str(meta["seglosses"]) if ours is not None else f"missing ({ours_err})") + "\n"]
    all_ok = True
    chosen = [s.strip() for s in args.settings.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SETTINGS]
    if bad:
        p.error(f"--settings: unknown {bad}; choose from {SETTINGS}")
    for setting in [s for s in SETTINGS if s in chosen]:
        cases = build_cases(setting, ours, peers)
        if filters is not None:
            cases = [c for c in cases if any(f in c.name for f in filters)]
        if not cases:
            continue
        shape = (shapes[setting][0] * args.batch_scale, *shapes[setting][1:])
        inp = make_inputs(setting, shape, device)
        logits_mib = inp.logits.numel() * inp.logits.element_size() / 2**20
        header = setting_header(setting, shape, device, args, logits_mib)
        log("\n" + "=" * len(header) + "\n" + header + "\n" + "=" * len(header))
        rows: list[dict] = []
        pending: list = []
        fcase = floor_case(setting)
        for case in [fcase] + cases:
            log(f"[{case.name}]")
            try:
                rows += run_case(case, inp, args, device, log, pending, None if case is fcase else fcase.impls[0])
            except Exception:  # a bug here must not lose the other settings
                all_ok = False
                log(f"  ERROR [{case.name}] case failed:\n{traceback.format_exc()}")
        if not args.skip_memory and pending:
            log(f"[{setting}: extra peak memory, "
                + ("fresh subprocess per implementation]" if device.type == "cpu" else "in process]"))
            measure_memory_rows(pending, inp, args, device, log)
        finish_rows(rows, logits_mib, min_bytes(inp) if copy_gbps else None, copy_gbps)
        table = render_text(rows)
        load_end = _loadavg()
        log("\n" + header + "\n" + table)
        skipped = [f"{c.name}: {s}" for c in cases for s in c.skipped]
        differs = [r for r in rows if r.get("status") == "differs"]
        errors = [r for r in rows if r.get("status") == "error"]
        for r in differs:
            log(f"  differs: {r['case']} {r['impl']} (rel {r['rel_diff']:.2e})")
        noisy = [r for r in rows if r.get("noisy")]
        if noisy and device.type == "cpu":
            log(f"  NOTE: {len(noisy)} of {len(rows)} timings are disturbed (median > {NOISY:g} x min, marked '!'); "
                "other processes were probably competing for the CPUs: rerun on a quiet machine, or with --threads 1")
        for r in errors:
            log(f"  error: {r['case']} {r['impl']}: {r.get('error')}")
        results["settings"][setting] = {
            "shape": list(shape),
            "mode": SETTING_MODE[setting],
            "logits_mib": logits_mib,
            "rows": rows,
            "skipped": skipped,
            "loadavg_1min_at_end": load_end,
        }
        notes = sorted({f"{r['impl']}: {r['note']}" for r in rows if r.get("note")})
        md = [f"## {setting}\n", header + "\n", render_markdown(rows) + "\n"]
        if notes:
            md.append("Notes:\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
        if differs:
            md.append("Definitions that differ from ours:\n\n" + "\n".join(
                f"- {r['case']} {r['impl']}: rel {r['rel_diff']:.2e}"
                + (f" ({r['known_diff']})" if r.get("known_diff") else "") for r in differs) + "\n")
        if skipped:
            md.append("Skipped:\n\n" + "\n".join(f"- {s}" for s in skipped) + "\n")
        md_parts.append("\n".join(md))
        del inp
        gc.collect()

    if not results["settings"]:
        log(f"no case matches --only {args.only!r}")
    log("\n" + LEGEND)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
        log(f"JSON written to {args.json}")
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as fh:
            fh.write("\n".join(md_parts))
        log(f"Markdown written to {args.markdown}")
    if args.png:
        log(draw_chart(results, args.png))
    return 0 if all_ok else 1


def draw_chart(results: dict, path: str) -> str:
    """A PNG of every ours row's time ratio to the fastest agreeing peer (log scale, 1 = parity)."""
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        import matplotlib.ticker  # noqa: PLC0415, F401
    except ImportError:
        return "--png: matplotlib is not installed (pip install matplotlib)"
    labels, ratios = [], []
    for setting, res in results["settings"].items():
        for r in res["rows"]:
            if r["kind"] == "ours" and r.get("x_fastest_peer"):
                labels.append(f"{setting}/{r['impl'][5:]}")
                ratios.append(r["x_fastest_peer"])
    if not ratios:
        return "--png: no ratio to draw"
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(ratios) + 1.2))
    ax.barh(range(len(ratios)), ratios, color=["#2a9d8f" if v <= 1 else "#e76f51" for v in ratios])
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_yticks(range(len(ratios)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ours / fastest agreeing peer (forward + backward time; < 1 is faster)")
    ax.set_title(f"seglosses vs peers, {results['meta']['device_name']}, {results['meta']['threads']} threads",
                 fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"PNG written to {path}"


if __name__ == "__main__":
    sys.exit(main())
