"""Hypothesis strategies and helpers for tests/test_fuzz.py: random but valid inputs for every public loss.

A drawn example is a :class:`Recipe`: plain Python values (shapes, dtypes, layout, seed, target kind, options) that
:func:`build` turns into tensors. Its ``repr`` is the whole example, so a failure reads (and reproduces) as
``build(Recipe(...))``; the bulk values come from ``torch.Generator().manual_seed(seed)``, so hypothesis shrinks the
structure (shape, dtype, options) while the numbers stay random.

Profiles (``settings`` objects built from them decorate each test; nothing global is loaded):

* ``"ci"`` (default): derandomized, no deadline, a bounded number of examples (the whole file in 2-3 minutes);
* ``"long"``: 15 times the examples, random, for a night run.

Choose one with ``SEGLOSSES_FUZZ_PROFILE=long`` or hypothesis's ``--hypothesis-profile=long`` (the profile must be
registered before pytest configures its plugins, so load this module as a plugin then:
``python -m pytest -p tests._fuzz --hypothesis-profile=long tests/test_fuzz.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import sys
from typing import Any

import torch
from hypothesis import HealthCheck, Phase, assume, settings
from hypothesis import strategies as st

if __package__:  # loaded as a plugin (-p tests._fuzz): the tests' helper modules are imported top-level
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _losses import COMPOUND, DISTANCE, LOSSES, SPATIAL  # noqa: E402
from seglosses import _registry  # noqa: E402

# ----------------------------------------------------------------------------------------------------------- profiles
_BASE = dict(deadline=None, database=None, print_blob=True,
             phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
#: examples of a standard test under "ci" (tests ask for a multiple of it, see :func:`fuzz_settings`)
CI_EXAMPLES = 150
LONG_FACTOR = 15
settings.register_profile("ci", derandomize=True, max_examples=CI_EXAMPLES, **_BASE)
settings.register_profile("long", derandomize=False, max_examples=CI_EXAMPLES * LONG_FACTOR, **_BASE)


def profile_name() -> str:
    """SEGLOSSES_FUZZ_PROFILE, else a profile loaded by ``--hypothesis-profile``, else "ci"."""
    env = os.environ.get("SEGLOSSES_FUZZ_PROFILE")
    if env:
        return env
    current = settings.get_current_profile_name()
    return current if current in ("ci", "long") else "ci"


def fuzz_settings(scale: float = 1.0, **kw) -> settings:
    """The selected profile with ``scale`` times its number of examples."""
    parent = settings.get_profile(profile_name())
    return settings(parent, max_examples=max(1, round(parent.max_examples * scale)), **kw)


# ------------------------------------------------------------------------------------------------------------ recipes
SIZES = (1, 2, 3, 5, 15, 16, 17, 63, 65)  # and, one example in 16, a spatial axis of size 0
#: logits elements at most (N * C * S); the losses that read the image's structure (distance transforms, skeletons,
#: windows: SPATIAL) are dearer
MAX_ELEMS = 3072
MAX_ELEMS_DISTANCE = 1536
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INDEX_DTYPES = ("int64", "uint8", "int8", "int16", "int32")
DENSE_DTYPES = ("float32", "float64", "bool", "uint8", "int64")
ONEHOT_DTYPES = ("uint8", "int64", "bool", "int32", "int8")
LAYOUTS = ("contiguous", "sliced", "transposed", "channels_last")

#: integer dtypes' ranges (an ignore_index must be one of their values)
INT_RANGES = {"bool": (0, 1), "uint8": (0, 255), "int8": (-128, 127), "int16": (-2 ** 15, 2 ** 15 - 1),
              "int32": (-2 ** 31, 2 ** 31 - 1), "int64": (-2 ** 63, 2 ** 63 - 1)}


def fits(value: int, dtype: str) -> bool:
    lo, hi = INT_RANGES.get(dtype, (-math.inf, math.inf))
    return lo <= value <= hi


def params(name: str) -> dict:
    return dict(inspect.signature(LOSSES[name]).parameters)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything an example is made of. ``build(recipe)`` gives the tensors."""

    name: str
    mode: str
    n: int
    c: int
    spatial: tuple
    dtype: str                 # logits dtype
    layout: str                # logits memory layout (same values)
    binary_flat: bool          # binary logits (N, *) instead of (N, 1, *)
    target_squeeze: bool       # binary target (N, *) for logits (N, 1, *)
    scale: float               # logits ~ N(0, scale^2)
    from_logits: bool
    exact01: bool              # with from_logits=False: some probabilities exactly 0 and 1
    target_kind: str           # "index", "soft", "onehot" (multiclass); "hard", "soft" (dense)
    target_dtype: str
    target_pattern: str        # "random", "empty", "full", "two"
    target_layout: str
    ignore_index: Any          # int or None
    ignore_frac: float         # share of pixels/elements set to ignore_index (0, 0.3 or 1)
    options: tuple             # sorted (key, value) pairs, without ignore_index and from_logits
    seed: int

    @property
    def opts(self) -> dict:
        kw = dict(self.options)
        if self.ignore_index is not None:
            kw["ignore_index"] = self.ignore_index
        if not self.from_logits:
            kw["from_logits"] = False
        return kw

    def replace(self, **kw) -> "Recipe":
        return dataclasses.replace(self, **kw)


@dataclasses.dataclass
class Case:
    recipe: Recipe
    logits: torch.Tensor       # as passed (maybe a strided view)
    target: torch.Tensor
    options: dict              # every keyword argument of the call (tensors included)
    ignored: torch.Tensor      # bool, logits' shape: elements whose value the loss must not read
    valid_dense: torch.Tensor | None  # bool (N, C, *): valid target elements (dense targets)

    def describe(self) -> str:
        x, t = self.logits, self.target
        opts = {k: (f"<tensor {tuple(v.shape)} {v.dtype}>" if isinstance(v, torch.Tensor) else v)
                for k, v in self.options.items()}
        return (f"{self.recipe!r}\nlogits {tuple(x.shape)} {x.dtype} strides {x.stride()}; target {tuple(t.shape)} "
                f"{t.dtype} strides {t.stride()}; ignored {int(self.ignored.sum())}/{self.ignored.numel()}; "
                f"call {self.recipe.name}_loss(logits, target, {self.recipe.mode!r}, **{opts})")


# ---------------------------------------------------------------------------------------------------------- building
def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def arrange(v: torch.Tensor, layout: str, fill=None) -> torch.Tensor:
    """``v``'s values in another memory layout: a strided view (``fill`` in the gaps of "sliced")."""
    if layout == "contiguous" or v.dim() == 0:
        return v.contiguous()
    if layout == "channels_last" and v.dim() >= 2:
        return v.movedim(1, -1).contiguous().movedim(-1, 1)
    if layout == "transposed" or (layout == "channels_last" and v.dim() < 2):
        order = list(range(v.dim()))[::-1]
        return v.permute(order).contiguous().permute(order)
    # "sliced": every other element of a buffer twice as long in the last axis, the gaps holding ``fill``
    big = torch.empty((*v.shape[:-1], 2 * v.shape[-1]), dtype=v.dtype)
    if fill is not None:
        big.fill_(fill)
    big[..., ::2] = v
    return big[..., ::2]


def build(r: Recipe) -> Case:
    g = torch.Generator().manual_seed(r.seed)
    n, c, sp = r.n, r.c, tuple(r.spatial)
    full = (n, c, *sp)
    z = torch.randn(full, generator=g, dtype=torch.float64) * r.scale
    mc = r.mode == "multiclass"
    if r.from_logits:
        vals = z
    else:
        vals = torch.softmax(z, 1) if mc else torch.sigmoid(z)
        if r.exact01:
            pick = torch.rand((n, *sp) if mc else full, generator=g) < 0.4
            if mc:
                hard = torch.nn.functional.one_hot(z.argmax(1), c).movedim(-1, 1).to(vals.dtype) if n else vals
                vals = torch.where(pick.unsqueeze(1), hard, vals)
            else:
                vals = torch.where(pick, (z > 0).to(vals.dtype), vals)
    # ------------------------------------------------------------------ target (N, C, *) dense or (N, *) indices
    valid_dense = None
    if mc and r.target_kind == "index":
        pix = (n, *sp)
        if r.target_pattern == "empty":
            t = torch.zeros(pix, dtype=torch.int64)
        elif r.target_pattern == "full":
            t = torch.full(pix, c - 1, dtype=torch.int64)
        elif r.target_pattern == "two":
            t = torch.randint(0, 2, pix, generator=g) * (c - 1)
        else:
            t = torch.randint(0, c, pix, generator=g)
        ign = _ignore_mask(pix, r, g)
        if r.ignore_index is not None:
            t = torch.where(ign, torch.tensor(r.ignore_index), t)
        target = t.to(_dtype(r.target_dtype))
        ignored = ign.unsqueeze(1).expand(full)
        fill = _bad_label(c, r.target_dtype, r.ignore_index)
    elif mc:  # class probabilities
        if r.target_kind == "soft":
            t = torch.softmax(torch.randn(full, generator=g, dtype=torch.float64) * 2, 1)
        else:
            idx = torch.randint(0, c, (n, *sp), generator=g)
            if r.target_pattern == "empty":
                idx.zero_()
            elif r.target_pattern == "full":
                idx.fill_(c - 1)
            t = torch.nn.functional.one_hot(idx, c).movedim(-1, 1) if n else torch.zeros(full)
        target = t.to(_dtype(r.target_dtype))
        ignored = torch.zeros(full, dtype=torch.bool)
        valid_dense = torch.ones(full, dtype=torch.bool)
        fill = float("nan") if target.is_floating_point() else None
    else:  # binary / multilabel dense target (N, C, *)
        if r.target_kind == "soft":
            t = torch.rand(full, generator=g, dtype=torch.float64)
        else:
            share = {"empty": 0.0, "full": 1.0}.get(r.target_pattern, 0.5)
            t = (torch.rand(full, generator=g) < share).to(torch.float64)
        ign = _ignore_mask(full, r, g)
        if r.ignore_index is not None:
            t = torch.where(ign, torch.tensor(float(r.ignore_index), dtype=torch.float64), t)
        target = t.to(_dtype(r.target_dtype))
        ignored = ign
        valid_dense = ~ign
        fill = float("nan") if target.is_floating_point() else None
    # -------------------------------------------------------------------------------- shapes of the binary mode
    logits = vals.to(_dtype(r.dtype))
    if r.mode == "binary":
        if r.binary_flat:
            logits, target, ignored = (a.reshape(n, *sp) for a in (logits, target, ignored))
            valid_dense = valid_dense.reshape(n, *sp)
        elif r.target_squeeze:
            target = target.reshape(n, *sp)
    logits = arrange(logits, r.layout, float("nan"))
    target = arrange(target, r.target_layout, fill)
    options = r.opts
    _add_tensor_options(options, r, logits)
    return Case(r, logits, target, options, ignored, valid_dense)


def _ignore_mask(shape, r: Recipe, g) -> torch.Tensor:
    if r.ignore_index is None or r.ignore_frac == 0:
        return torch.zeros(shape, dtype=torch.bool)
    if r.ignore_frac >= 1:
        return torch.ones(shape, dtype=torch.bool)
    mask = torch.rand(shape, generator=g) < r.ignore_frac
    if mask.numel() and not mask.any():  # "some" ignored: at least one
        mask.view(-1)[0] = True
    return mask


def _bad_label(c: int, dtype: str, ignore_index):
    """A class index outside [0, C) that ``dtype`` holds (the gaps of a "sliced" target: never read)."""
    for v in (c, 127, -7, 0):
        if fits(v, dtype) and v != ignore_index:
            return v
    return None


def _add_tensor_options(options: dict, r: Recipe, logits: torch.Tensor) -> None:
    """Options that are tensors (precomputed distance maps, tensor weights) from the recipe's markers."""
    for key in ("dist_maps", "target_dist", "skeletons"):
        if options.get(key) == "random":
            g = torch.Generator().manual_seed(r.seed + 1)
            m = torch.randn((r.n, r.c, *r.spatial), generator=g) * 3
            options[key] = m if key == "dist_maps" else m.abs()
    if options.get("pixel_weight") in ("pixel", "broadcast", "element"):
        g = torch.Generator().manual_seed(r.seed + 2)
        if options["pixel_weight"] == "element" or (r.mode == "binary" and r.binary_flat):
            shape = tuple(logits.shape)
        else:
            shape = (1 if options["pixel_weight"] == "broadcast" else r.n, *r.spatial)
        w = torch.rand(shape, generator=g) * 2
        options["pixel_weight"] = torch.where(torch.rand(shape, generator=g) < 0.2, 0.0, w)  # some exactly 0
    for key in ("weight", "alpha", "beta", "class_frequency"):
        v = options.get(key)
        if isinstance(v, tuple) and len(v) == 2 and v[0] in ("tensor32", "tensor64"):
            options[key] = torch.tensor(v[1], dtype=torch.float32 if v[0] == "tensor32" else torch.float64)


# -------------------------------------------------------------------------------------------------------- strategies

@st.composite
def shapes(draw, name: str, mode: str, *, sizes=SIZES, max_elems=None, allow_n0=True, max_c=20, min_c=None,
           ndims=None):
    """(n, c, spatial)."""
    if ndims is None:
        ndims = (1, 2, 3) if name in SPATIAL else (0, 1, 2, 3)
    nd = draw(st.sampled_from(ndims))
    n = draw(st.sampled_from((1, 2, 3, 0) if allow_n0 else (1, 2, 3)))
    if mode == "binary":
        c = 1
    else:
        lo = min_c if min_c is not None else (2 if mode == "multiclass" else 0)  # C = 0: multilabel, no channel
        c = draw(st.sampled_from(tuple(dict.fromkeys(v for v in (max(lo, 1), 3, 4, 5, 7, 16, 17, 20, 1, 2, 0)
                                                     if lo <= v <= max_c))))
    budget = (max_elems or (MAX_ELEMS_DISTANCE if name in SPATIAL else MAX_ELEMS)) // max(n * c, 1)
    spatial = []
    for _ in range(nd):
        choices = tuple(s for s in sizes if s <= max(budget, 1))
        s = draw(st.sampled_from(choices))
        spatial.append(s)
        budget //= s
    if nd and draw(st.integers(0, 15)) == 0:  # an empty image
        spatial[draw(st.integers(0, nd - 1))] = 0
    return n, c, tuple(spatial)


def _per_class(draw, c, values):
    return [draw(st.sampled_from(values)) for _ in range(c)]


def _maybe_tensor(draw, vec):
    kind = draw(st.sampled_from(("list", "list", "tensor64", "tensor32")))
    return vec if kind == "list" else (kind, tuple(vec))


@st.composite
def options_for(draw, name: str, mode: str, c: int, nd: int, *, class_counts: bool = False):
    """Valid keyword options of loss ``name`` (ignore_index and from_logits come with the target); ``class_counts``:
    exp_log's multiclass ``class_frequency`` may hold counts (> 1) as its docstring allows, else shares."""
    p = params(name)
    kw = {}
    kw["reduction"] = draw(st.sampled_from(("mean", "sum") if name in COMPOUND else ("mean", "sum", "none")))
    if "weight" in p and draw(st.booleans()):
        kw["weight"] = _maybe_tensor(draw, _per_class(draw, c, (1.0, 0.5, 2.0, 0.0, 3.0)))
    if "classes" in p:
        if name == "lovasz":
            choice = draw(st.sampled_from(("present", "all", "list", None)))
        else:
            choice = draw(st.sampled_from((None, "list")))
        if choice == "list":
            if c > 0:
                k = draw(st.integers(1, c))
                kw["classes"] = draw(st.permutations(range(c)))[:k]
        elif choice is not None:
            kw["classes"] = choice
    if "per_image" in p:
        kw["per_image"] = draw(st.booleans())
    if "dist_sync" in p and name != "lovasz" and draw(st.integers(0, 4)) == 0:
        kw["dist_sync"] = True  # no process group: the local loss
    if "log_loss" in p:
        kw["log_loss"] = draw(st.booleans())
    if "smooth" in p:
        default = p["smooth"].default
        kw["smooth"] = draw(st.sampled_from((default, 0.0, 1.0)))
    if "label_smoothing" in p:
        kw["label_smoothing"] = draw(st.sampled_from((0.0, 0.1, 1.0)))
    if "gamma" in p:
        kw["gamma"] = draw(st.sampled_from((0.5, 1.0, 0.0) if name == "unified_focal" else (2.0, 0.0, 0.5, 0.75)))
    if name == "topk_cross_entropy":
        kw["k"] = draw(st.sampled_from((10.0, 100.0, 0.5, 33.3, 1e-3)))
    if name == "ohem_cross_entropy":
        kw["threshold"] = draw(st.sampled_from((0.7, 0.0, 1.0, 0.3)))
        kw["min_kept"] = draw(st.sampled_from((100000, 0, 1, 7)))
    if name == "poly":
        kw["epsilon"] = draw(st.sampled_from((1.0, -1.0, 0.0, 2.5)))
    if name in ("focal", "poly"):
        a = draw(st.sampled_from(("none", "scalar", "vector")))
        if a == "scalar":
            kw["alpha"] = draw(st.sampled_from((0.25, 0.0, 1.0)))
        elif a == "vector":
            vals = (0.25, 0.0, 1.0, 0.6) if mode != "multiclass" else (0.25, 0.0, 1.0, 2.0)
            kw["alpha"] = _maybe_tensor(draw, _per_class(draw, c, vals))
    if name in ("tversky", "focal_tversky"):
        kw["alpha"], kw["beta"] = draw(st.sampled_from(((0.3, 0.7), (0.5, 0.5), (0.0, 1.0), (1.0, 0.0), (2.0, 3.0))))
    if name == "generalized_dice":
        kw["weight_type"] = draw(st.sampled_from(("square", "simple", "uniform")))
    if name == "weighted_cross_entropy":
        b = draw(st.sampled_from(("scalar", "vector")))
        kw["beta"] = (draw(st.sampled_from((1.0, 0.0, 2.5))) if b == "scalar"
                      else _maybe_tensor(draw, _per_class(draw, c, (1.0, 0.0, 3.0))))
    if name == "balanced_cross_entropy":
        b = draw(st.sampled_from(("scalar", "auto", "vector")))
        kw["beta"] = ("auto" if b == "auto" else draw(st.sampled_from((0.5, 0.0, 1.0))) if b == "scalar"
                      else _maybe_tensor(draw, _per_class(draw, c, (0.5, 0.0, 1.0, 0.2))))
    if name == "sensitivity_specificity":
        kw["r"] = draw(st.sampled_from((0.05, 0.0, 1.0, 0.5)))
    if name == "exp_log":
        kw["w_dice"] = draw(st.sampled_from((0.8, 0.0, 1.0)))
        kw["w_cross"] = draw(st.sampled_from((0.2, 0.0, 1.0)))
        kw["gamma_dice"] = draw(st.sampled_from((0.3, 0.0, 1.0, 2.0)))
        kw["gamma_cross"] = draw(st.sampled_from((0.3, 0.0, 1.0, 2.0)))
        if draw(st.booleans()):
            vals = (0.1, 0.5, 3.0, 100.0) if mode == "multiclass" and class_counts else (0.1, 0.5, 0.9)
            kw["class_frequency"] = _maybe_tensor(draw, _per_class(draw, c, vals))
    if name == "combo":
        kw["alpha"] = draw(st.sampled_from((0.5, 0.0, 1.0)))
        kw["beta"] = draw(st.sampled_from((0.5, 0.0, 1.0)))
    if name == "unified_focal":
        kw["lam"] = draw(st.sampled_from((0.5, 0.0, 1.0)))
        kw["delta"] = draw(st.sampled_from((0.6, 0.0, 1.0, 0.5)))
        kw["asymmetric"] = draw(st.booleans())
        if mode == "multiclass":
            kw["background"] = draw(st.integers(0, c - 1))
    if name == "hausdorff_dt":
        kw["alpha"] = draw(st.sampled_from((2.0, 0.0, 1.0, 0.5)))
    if "pixel_weight" in p and draw(st.integers(0, 3)) == 0:  # a weight map, built by _add_tensor_options:
        # (N, *spatial), broadcast from (1, *spatial), or per element (binary, multilabel: every loss takes it)
        kw["pixel_weight"] = draw(st.sampled_from(("pixel", "broadcast") + (() if mode == "multiclass" else
                                                                            ("element",))))
    if name == "generalized_wasserstein_dice":
        kw["weighting_mode"] = draw(st.sampled_from(("default", "GDL")))
        k = c if mode == "multiclass" else 2
        if k >= 2 and draw(st.booleans()):  # a distance: 0 on the diagonal, >= 0, one entry > 0 (recipes() drops it
            m = [[0.0 if i == j else draw(st.sampled_from((1.0, 0.5, 0.0, 3.0))) for j in range(k)]  # for dense
                 for i in range(k)]                                                                # multiclass)
            m[0][1] = draw(st.sampled_from((1.0, 0.25, 4.0)))
            kw["distance_matrix"] = tuple(tuple(r) for r in m)
    if name == "cldice":
        kw["alpha"] = draw(st.sampled_from((0.5, 0.0, 1.0, 0.3)))
        kw["iterations"] = draw(st.sampled_from((10, 0, 1, 3)))
    if name == "skeleton_recall" and draw(st.integers(0, 3)) == 0:
        kw["skeletons"] = "random"
    if name in DISTANCE:
        sp = draw(st.sampled_from(("none", "number", "axes")))
        if sp == "number":
            kw["spacing"] = draw(st.sampled_from((1.0, 0.5, 2)))
        elif sp == "axes":
            kw["spacing"] = tuple(draw(st.sampled_from((1.0, 0.5, 3.0))) for _ in range(nd))
        kw["backend"] = draw(st.sampled_from(("auto", "torch", "scipy")))
        key = "target_dist" if "target_dist" in _registry.options(name) else "dist_maps"
        if draw(st.integers(0, 3)) == 0:
            kw[key] = "random"
    if name in ("ssim", "correlation_ssim"):
        kw["window_size"] = draw(st.sampled_from((11, 3, 1, 5) if name == "ssim" else (3, 1, 5, 11)))
        kw["sigma"] = draw(st.sampled_from((1.5, 0.5, 4.0)))
    if name == "ssim":
        kw["padding"] = draw(st.sampled_from(("same", "valid")))
    if name == "correlation_ssim":
        kw["beta"] = draw(st.sampled_from((0.1, 0.0, 1.0, 0.5)))
    return tuple(sorted(kw.items(), key=lambda kv: kv[0]))


@st.composite
def recipes(draw, name: str, mode: str | None = None, *, dtypes=FLOAT_DTYPES, layouts=LAYOUTS, ignore=True,
            target_kinds=None, from_logits=None, shape=None, allow_n0=True, min_ignore_free=False,
            require_ignore=False, class_counts=False, target_dtypes=None):
    """A valid example for loss ``name``. ``ignore``: whether ignore_index may be set (``require_ignore``: always,
    with ignored elements); ``target_kinds``: restrict the target kinds; ``shape``: a strategy for (n, c, spatial);
    ``class_counts``: see :func:`options_for`; ``target_dtypes``: restrict the target dtypes."""
    mode = mode or draw(st.sampled_from(("binary", "multiclass", "multilabel")))
    n, c, spatial = draw(shape if shape is not None else shapes(name, mode, allow_n0=allow_n0))
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(layouts))
    # binary logits (N, *): not when the first spatial axis has size 1 ((N, 1, ...) reads as (N, C=1, ...))
    binary_flat = mode == "binary" and not (spatial and spatial[0] == 1) and draw(st.integers(0, 3)) == 0
    target_squeeze = mode == "binary" and not binary_flat and draw(st.booleans())
    scale = draw(st.sampled_from((3.0, 0.0, 0.5, 30.0, 1e4)))
    fl = draw(st.sampled_from((True, True, False))) if from_logits is None else from_logits
    exact01 = (not fl) and draw(st.booleans())
    if require_ignore:
        target_kinds = ("index",) if mode == "multiclass" else target_kinds
    if mode == "multiclass":
        kinds = target_kinds or ("index", "index", "index", "soft", "onehot")
        kind = draw(st.sampled_from(kinds))
        if kind == "index":
            tdtype = draw(st.sampled_from(INDEX_DTYPES))
        elif kind == "soft":
            tdtype = draw(st.sampled_from(("float32", "float64")))
        else:
            tdtype = draw(st.sampled_from(ONEHOT_DTYPES + ("float32", "float64")))
    else:
        kinds = target_kinds or ("hard", "hard", "soft")
        kind = draw(st.sampled_from(kinds))
        dense = tuple(d for d in DENSE_DTYPES if d != "bool") if require_ignore else DENSE_DTYPES
        tdtype = draw(st.sampled_from(("float32", "float64") if kind == "soft" else dense))
    if target_dtypes is not None:
        allowed = [d for d in target_dtypes if d in {"index": INDEX_DTYPES, "soft": ("float32", "float64"),
                                                      "onehot": ONEHOT_DTYPES + ("float32", "float64")}.get(
                                                          kind, DENSE_DTYPES)]
        assume(allowed)
        tdtype = tdtype if tdtype in allowed else draw(st.sampled_from(allowed))
    pattern = draw(st.sampled_from(("random", "random", "empty", "full", "two")))
    target_layout = draw(st.sampled_from(layouts))
    # ignore_index: a value the target dtype holds
    ignore_index, frac = None, 0.0
    can_ignore = ignore and not (mode == "multiclass" and kind != "index") and tdtype != "bool"
    if can_ignore and (require_ignore or draw(st.integers(0, 2)) > 0):
        cands = [v for v in (255, -1, -100) if fits(v, tdtype)]
        ignore_index = draw(st.sampled_from(cands))
        fracs = (0.3, 1.0) if require_ignore else (0.3, 0.0) if min_ignore_free else (0.3, 0.0, 1.0)
        frac = draw(st.sampled_from(fracs))
    options = draw(options_for(name, mode, c, len(spatial), class_counts=class_counts))
    if name == "generalized_wasserstein_dice" and mode == "multiclass" and kind != "index":
        options = tuple(kv for kv in options if kv[0] != "distance_matrix")  # class probabilities: 0-1 distance only
    seed = draw(st.integers(0, 2 ** 16))
    return Recipe(name, mode, n, c, spatial, dtype, layout, binary_flat, target_squeeze, scale, fl, exact01, kind,
                  tdtype, pattern, target_layout, ignore_index, frac, options, seed)


# ------------------------------------------------------------------------------------------------------------ running
ALLOWED = (ValueError, TypeError, IndexError)
NAMED = re.compile(r"`[A-Za-z_][\w\[\]]*(=[^`]*)?`")


def call(case: Case, *, module: bool = False, logits=None, target=None, grad: bool = True, **override):
    """(loss, d loss.sum() / d logits) of the case (``module``: through the Module form). The gradient is None
    without ``grad``."""
    x = (case.logits if logits is None else logits).detach()
    if grad:
        x = x.requires_grad_(True)
    t = case.target if target is None else target
    opts = {**case.options, **override}
    r = case.recipe
    if module:
        from _losses import MODULES

        out = MODULES[r.name](r.mode, **opts)(x, t)
    else:
        out = LOSSES[r.name](x, t, r.mode, **opts)
    if not grad:
        return out.detach(), None
    (g,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if g is None:
        g = torch.zeros_like(x)
    return out.detach(), g


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) comparing two execution paths of one loss on the same input."""
    if dtype == torch.float64:
        return 1e-9, 1e-9
    if dtype == torch.float32:
        return 1e-5, 1e-5
    return 1e-2, 1e-2


def fractional_power(r: Recipe) -> float | None:
    """The smallest exponent in (0, 1) the loss raises a near-zero quantity to (focal-Tversky's gamma, Unified
    Focal's 1 - gamma, exp-log's gammas), or None. Near a perfect score such a power turns the ulps of the
    statistics into a much larger absolute error (docs/semantics.md, "Precision"): e.g. (1e-7)^0.3 = 8e-3."""
    o = dict(r.options)
    powers = []
    if r.name == "focal_tversky":
        powers.append(o.get("gamma", 0.75))
    if r.name == "unified_focal":
        powers.append(1 - o.get("gamma", 0.5))
    if r.name == "exp_log":
        powers += [o.get("gamma_dice", 0.3), o.get("gamma_cross", 0.3)]
    powers = [q for q in powers if 0 < q < 1]
    return min(powers) if powers else None


def loss_tolerances(r: Recipe, dtype: torch.dtype) -> tuple[float, float]:
    """:func:`tolerances`, widened for losses with a fractional power (:func:`fractional_power`): the error of the
    statistics (a few ulps times the element count) raised to that power."""
    rtol, atol = tolerances(dtype)
    q = fractional_power(r)
    if q is not None:
        eps = torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32).eps
        count = max(r.n * r.c * math.prod(r.spatial), 1)
        atol = max(atol, (4 * eps * count) ** q)
    return rtol, atol


def assert_allowed_error(e: BaseException, names=None) -> None:
    """``e`` is a ValueError/TypeError/IndexError naming an argument in backticks (one of ``names`` if given)."""
    assert isinstance(e, ALLOWED), f"raised {type(e).__name__} (only ValueError/TypeError/IndexError allowed): {e}"
    msg = str(e)
    assert NAMED.search(msg), f"{type(e).__name__} message names no argument in backticks: {msg!r}"
    if names:
        assert any(f"`{k}" in msg for k in names), f"{type(e).__name__} message does not name {names}: {msg!r}"


def kept_channels(case: Case) -> list[int]:
    """Channels whose elements reach the loss (the ``classes`` selection of the loss, else all)."""
    cl = case.options.get("classes")
    if isinstance(cl, (list, tuple)):
        return list(cl)
    return list(range(case.recipe.c))


def with_dense_nan(case: Case, draw_index):
    """The target with NaN at one valid element of a kept channel (None if there is none)."""
    t = case.target
    r = case.recipe
    full = (r.n, r.c, *r.spatial)
    valid = case.valid_dense.reshape(full).clone()
    keep = torch.zeros(r.c, dtype=torch.bool)
    keep[kept_channels(case)] = True
    valid &= keep.view(1, -1, *([1] * len(r.spatial)))
    where = valid.flatten().nonzero().flatten()
    if where.numel() == 0:
        return None, None
    pos = int(where[draw_index(where.numel())])
    t2 = t.clone().reshape(-1) if t.is_contiguous() else t.contiguous().reshape(-1)
    t2[pos] = float("nan")
    return t2.reshape(t.shape), pos

