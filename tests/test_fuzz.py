"""Property-based fuzzing of every public loss (tests/_losses.py LOSSES) in every mode it takes.

Inputs (tests/_fuzz.py): 0-3 spatial axes (1-3 for the distance losses) of sizes around block and vector boundaries,
N 0-3, C 1-20, logits float32/float64/float16/bfloat16 in contiguous, strided ("sliced", NaN in the gaps),
transposed and channels_last layouts, probabilities with exact 0 and 1 (from_logits=False), class indices of every
integer dtype, dense float/bool/uint8/int64 targets, float and integer one-hot class probabilities, ignore_index
absent / present / covering everything, and the options each loss takes (read from its signature).

Properties, one test each (parametrized by loss):

A. bad arguments raise only ValueError/TypeError/IndexError naming an argument in backticks; non-finite numeric
   options and an ignore_index the target's dtype cannot hold raise ValueError naming them;
B. valid finite inputs give a finite loss and gradient;
C. ignored elements get an exactly zero gradient, and NaN/inf logits there change neither the loss nor the gradient;
D. class indices outside [0, C) (not ignore_index) raise IndexError naming `target`, the value and C; validate()
   raises ValueError for them (and accepts valid inputs);
E. the Module equals the function (value, gradient, errors); every memory layout and the Inductor/C kernels
   (set_cpu_kernels("inductor")) give the eager value and gradient;
F. integer one-hot class probabilities give the value of the float one-hot;
G. a NaN in a valid dense target element gives a NaN loss (or an error), never a plausible number.

Profiles: "ci" (default, derandomized) and "long" (15x the examples); see tests/_fuzz.py.
"""

import math
import re
import shutil

import pytest
import torch
from hypothesis import Phase, assume, find, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

import seglosses as S
from _fuzz import (
    ALLOWED,
    INT_RANGES,
    arrange,
    assert_allowed_error,
    build,
    call,
    fits,
    fractional_power,
    fuzz_settings,
    kept_channels,
    loss_tolerances,
    options_for,
    params,
    recipes,
    tolerances,
    with_dense_nan,
)
from _losses import COMPOUND, DISTANCE, LOSSES, MAPS, MODULES, SPATIAL
from seglosses import _registry

NAMES = sorted(LOSSES)


@pytest.fixture(autouse=True)
def _eager_policy():
    """Every test runs the blocked torch passes unless it says otherwise; the policy is restored afterwards."""
    from seglosses.kernels import inductor as _inductor

    before = S.get_cpu_kernels()
    S.set_cpu_kernels("eager")
    yield
    S.set_cpu_kernels(before)
    _inductor._state["broken"] = None


def _describe(case):
    note(case.describe())


def _exact(a, b, what):
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what} differ:\n{m}")


def _finite(t):
    return bool(torch.isfinite(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).all())


# ---------------------------------------------------------------------------------------------- B: finite and runs
@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(1.0)
@given(data=st.data())
def test_valid_inputs_give_finite_loss_and_gradient(name, data):
    case = build(data.draw(recipes(name, class_counts=True), label="recipe"))
    _describe(case)
    loss, grad = call(case)  # no exception at all for valid inputs
    assert loss.dtype == (torch.float64 if case.logits.dtype == torch.float64 else torch.float32), loss.dtype
    assert _finite(loss), f"non-finite loss {loss}"
    assert grad.shape == case.logits.shape
    bad = ~torch.isfinite(grad.float())
    assert not bad.any(), f"{int(bad.sum())} non-finite gradient entries, e.g. {grad[bad][:4].tolist()}"


# ------------------------------------------------------------------------------------------------- C: ignore_index
@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(1.0)
@given(data=st.data())
def test_ignored_elements_get_zero_gradient(name, data):
    r = data.draw(recipes(name, require_ignore=True, allow_n0=False), label="recipe")
    case = build(r)
    assume(bool(case.ignored.any()))
    _describe(case)
    _, grad = call(case)
    gi = grad[case.ignored]
    nz = gi != 0
    assert not nz.any(), f"{int(nz.sum())} of {gi.numel()} ignored elements have a gradient, e.g. {gi[nz][:4].tolist()}"


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(1.0)
@given(data=st.data())
def test_nonfinite_logits_at_ignored_elements_change_nothing(name, data):
    r = data.draw(recipes(name, require_ignore=True, allow_n0=False), label="recipe")
    case = build(r)
    assume(bool(case.ignored.any()))
    _describe(case)
    poison = data.draw(st.sampled_from(("nan", "inf", "-inf", "mixed")), label="poison")
    values = case.logits.contiguous()
    if poison == "mixed":
        g = torch.Generator().manual_seed(r.seed)
        pick = torch.randint(0, 3, values.shape, generator=g)
        bad = torch.tensor([math.nan, math.inf, -math.inf], dtype=values.dtype)[pick]
    else:
        bad = torch.full_like(values, float(poison))
    poisoned = torch.where(case.ignored, bad, values)
    base_loss, base_grad = call(case, logits=arrange(values, r.layout, math.nan))
    loss, grad = call(case, logits=arrange(poisoned, r.layout, math.nan))
    _exact(loss, base_loss, f"losses (NaN/inf logits at ignored elements: {poison})")
    _exact(grad, base_grad, f"gradients (NaN/inf logits at ignored elements: {poison})")


# -------------------------------------------------------------------------------------- D: class indices out of range
def _bad_values(c, dtype, ignore_index):
    cands = [c, c + 1, 127, 300, 2 ** 15 - 1, -5, -1, 255, -128]
    return [v for v in cands if fits(v, dtype) and v != ignore_index and not 0 <= v < c]


@st.composite
def out_of_range(draw, name):
    r = draw(recipes(name, "multiclass", target_kinds=("index",), allow_n0=False), label="recipe")
    case = build(r)
    t = case.target.contiguous().clone()
    assume(t.numel() > 0)
    values = draw(st.lists(st.sampled_from(_bad_values(r.c, r.target_dtype, r.ignore_index)), min_size=1,
                           max_size=3), label="bad values")
    flat = t.view(-1)
    for v in values:
        flat[draw(st.integers(0, flat.numel() - 1), label="position")] = v
    planted = sorted({int(v) for v in flat.tolist() if not 0 <= v < r.c and v != r.ignore_index})
    return case, arrange(t, r.target_layout, None), planted


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.75)
@given(data=st.data())
def test_out_of_range_class_indices_raise_index_error(name, data):
    case, target, planted = data.draw(out_of_range(name))
    _describe(case)
    note(f"planted out-of-range values {planted} (C = {case.recipe.c})")
    with pytest.raises(Exception) as info:
        call(case, target=target, grad=False)
    e = info.value
    assert isinstance(e, IndexError), f"raised {type(e).__name__}, not IndexError: {e}"
    msg = str(e)
    assert "`target`" in msg, f"IndexError message does not name `target`: {msg!r}"
    assert any(re.search(rf"(?<![\d.]){v}(?![\d.])", msg) for v in planted), f"no bad value {planted} in {msg!r}"
    assert re.search(rf"(?<![\d.]){case.recipe.c}(?![\d.])", msg), f"C = {case.recipe.c} not in {msg!r}"


@fuzz_settings(1.0)
@given(data=st.data())
def test_validate_rejects_out_of_range_class_indices(data):
    case, target, planted = data.draw(out_of_range(data.draw(st.sampled_from(NAMES), label="name")))
    _describe(case)
    with pytest.raises(ValueError, match=r"`target`"):
        S.validate(case.logits, target, "multiclass", ignore_index=case.recipe.ignore_index)


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@fuzz_settings(1.0)
@given(data=st.data())
def test_validate_accepts_valid_inputs(mode, data):
    case = build(data.draw(recipes("dice", mode), label="recipe"))
    _describe(case)
    r = case.recipe
    S.validate(case.logits, case.target, mode, ignore_index=r.ignore_index, from_logits=r.from_logits)


# ------------------------------------------------------------------------------------- E: Module, layouts, kernels
@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.75)
@given(data=st.data())
def test_module_equals_function(name, data):
    case = build(data.draw(recipes(name), label="recipe"))
    _describe(case)
    f_loss, f_grad = call(case)
    m_loss, m_grad = call(case, module=True)
    _exact(m_loss, f_loss, "Module and function losses")
    _exact(m_grad, f_grad, "Module and function gradients")


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.75)
@given(data=st.data())
def test_layouts_agree_with_contiguous(name, data):
    r = data.draw(recipes(name, layouts=("sliced", "transposed", "channels_last")), label="recipe")
    case = build(r)
    _describe(case)
    loss, grad = call(case)
    ref = build(r.replace(layout="contiguous", target_layout="contiguous"))
    ref_loss, ref_grad = call(ref)
    rtol, atol = loss_tolerances(r, torch.float32 if case.logits.dtype != torch.float64 else torch.float64)
    torch.testing.assert_close(loss, ref_loss, rtol=rtol, atol=atol, equal_nan=True,
                               msg=lambda m: f"losses differ (layout vs contiguous):\n{m}")
    if fractional_power(r) is None:  # (the gradient of a fractional power near 0 has no useful tolerance)
        rtol, atol = tolerances(case.logits.dtype)
        torch.testing.assert_close(grad, ref_grad, rtol=rtol, atol=atol, equal_nan=True,
                                   msg=lambda m: f"gradients differ (layout vs contiguous):\n{m}")


# Inductor compiles take seconds each: few examples, two shapes, contiguous or channels_last logits, and only the
# losses that reach a compiled kernel (the focal pass, the region statistics, the C kernels of float32 multiclass
# class-index region and Lovasz losses); the compiled region kernels are shared by every region loss.
_NO_COMPILED_KERNEL = {"weighted_cross_entropy", "balanced_cross_entropy", "sensitivity_specificity",
                       "skeleton_recall"}
KERNEL_LOSSES = sorted(set(NAMES) - _NO_COMPILED_KERNEL - DISTANCE)
_INDUCTOR_SHAPES = st.sampled_from(((2, 9, (16, 17)), (2, 3, (65,))))


def _inductor_shape(mode):
    return _INDUCTOR_SHAPES.map(lambda s: (s[0], 1, s[2]) if mode == "binary" else s)


@st.composite
def _inductor_recipes(draw):
    name = draw(st.sampled_from(KERNEL_LOSSES), label="name")
    mode = draw(st.sampled_from(("multiclass", "multiclass", "binary", "multilabel")), label="mode")
    return draw(recipes(name, mode, shape=_inductor_shape(mode), dtypes=("float32", "float32", "float64", "bfloat16"),
                        layouts=("contiguous", "contiguous", "channels_last")), label="recipe")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
@fuzz_settings(0.08)
@given(r=_inductor_recipes())
def test_compiled_cpu_kernels_match_eager(r):
    from seglosses.kernels import inductor as _inductor

    case = build(r)
    _describe(case)
    try:
        eager = call(case)
    except ALLOWED:
        assume(False)
    before = S.get_cpu_kernels()
    try:
        S.set_cpu_kernels("inductor")
        calls = _inductor._state["compiled_calls"]
        compiled = call(case)
        note(f"compiled Inductor calls: {_inductor._state['compiled_calls'] - calls}")
        broken = _inductor._state["broken"]
    finally:
        S.set_cpu_kernels(before)
    assert broken is None, f"compiling failed: {broken!r}"
    rtol, atol = loss_tolerances(r, case.logits.dtype)
    torch.testing.assert_close(compiled[0], eager[0], rtol=rtol, atol=atol, equal_nan=True,
                               msg=lambda m: f"losses differ (inductor vs eager):\n{m}")
    if fractional_power(r) is None:  # (the gradient of a fractional power near 0 has no useful tolerance)
        rtol, atol = tolerances(case.logits.dtype)
        torch.testing.assert_close(compiled[1], eager[1], rtol=rtol, atol=atol, equal_nan=True,
                                   msg=lambda m: f"gradients differ (inductor vs eager):\n{m}")


# ------------------------------------------------------------------------------------------- F: integer one-hot
@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.75)
@given(data=st.data())
def test_integer_one_hot_equals_float_one_hot(name, data):
    r = data.draw(recipes(name, "multiclass", target_kinds=("onehot",)), label="recipe")
    int_dtype = data.draw(st.sampled_from(("uint8", "int64", "bool", "int32")), label="integer dtype")
    float_case = build(r.replace(target_dtype="float32" if r.dtype != "float64" else "float64"))
    int_case = build(r.replace(target_dtype=int_dtype))
    _describe(int_case)
    f_loss, f_grad = call(float_case)
    i_loss, i_grad = call(int_case)  # accepted as class probabilities
    rtol, atol = tolerances(torch.float64 if r.dtype == "float64" else torch.float32)
    torch.testing.assert_close(i_loss, f_loss, rtol=rtol * 1e-3, atol=atol * 1e-3, equal_nan=True)
    torch.testing.assert_close(i_grad, f_grad, rtol=rtol * 1e-3, atol=atol * 1e-3, equal_nan=True)


# ------------------------------------------------------------------------------------------- G: NaN in the target
@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.75)
@given(data=st.data())
def test_nan_in_valid_target_is_not_a_number(name, data):
    mode = data.draw(st.sampled_from(("binary", "multilabel", "multiclass")), label="mode")
    kinds = ("soft", "onehot") if mode == "multiclass" else None
    r = data.draw(recipes(name, mode, target_kinds=kinds, allow_n0=False, min_ignore_free=True,
                          target_dtypes=("float32", "float64")), label="recipe")
    case = build(r)
    target, pos = with_dense_nan(case, lambda k: data.draw(st.integers(0, k - 1), label="NaN position"))
    assume(target is not None)
    _describe(case)
    note(f"NaN at flat element {pos} of the (N, C, *) target; kept channels {kept_channels(case)}")
    try:
        loss, _ = call(case, target=arrange(target.contiguous(), r.target_layout, math.nan), grad=False)
    except ALLOWED as e:
        assert_allowed_error(e)
        return
    # (an empty "none" map holds no value: ssim's padding="valid" on an image smaller than the window)
    if loss.numel() == 0 or not _finite(loss):
        return
    # finite: only right if the element counts nowhere (ssim's padding="valid" where every window whose support
    # holds it is centred on an ignored pixel): then 0 and 1 there give this same loss
    others = []
    for v in (0.0, 1.0):
        t = target.clone().reshape(-1)
        t[pos] = v
        others.append(call(case, target=arrange(t.reshape(target.shape).contiguous(), r.target_layout, math.nan),
                           grad=False)[0])
    assert all(torch.equal(o, loss) for o in others), (f"a NaN target element gave the finite loss "
                                                         f"{loss.flatten()[:8].tolist()}")


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.75)
@given(data=st.data())
def test_nan_logit_at_a_valid_element_is_not_hidden(name, data):
    """docs/semantics.md, "Bad input": NaN logits at valid elements give NaN in the loss, never hidden."""
    r = data.draw(recipes(name, allow_n0=False, min_ignore_free=True), label="recipe")
    case = build(r)
    full = (r.n, r.c, *r.spatial)
    live = (~case.ignored).reshape(full).clone()
    keep = torch.zeros(r.c, dtype=torch.bool)
    keep[kept_channels(case)] = True
    if r.mode != "multiclass" or not r.from_logits:  # softmax: a NaN in any class reaches its whole pixel
        live &= keep.view(1, -1, *([1] * len(r.spatial)))
    where = live.flatten().nonzero().flatten()
    assume(where.numel() > 0)
    pos = int(where[data.draw(st.integers(0, where.numel() - 1), label="NaN position")])
    values = case.logits.contiguous().clone()
    values.view(-1)[pos] = math.nan
    _describe(case)
    note(f"NaN logit at flat element {pos} of the (N, C, *) logits; kept channels {kept_channels(case)}")
    loss, _ = call(case, logits=arrange(values, r.layout, math.nan), grad=False)
    assert loss.numel() == 0 or not _finite(loss), (f"a NaN logit at a valid element gave the finite loss "
                                                    f"{loss.flatten()[:8].tolist()}")


# --------------------------------------------------------------------------------------------- A: bad arguments
_NUMERIC = {  # numeric options (>= 0 for every loss), and those bounded by 1
    "focal": ("alpha", "gamma", "label_smoothing"),
    "cross_entropy": ("label_smoothing",),
    "weighted_cross_entropy": ("beta", "label_smoothing"),
    "balanced_cross_entropy": ("beta", "label_smoothing"),
    "hausdorff_dt": ("alpha", "spacing"),
    "boundary": ("spacing",),
    "topk_cross_entropy": ("k", "label_smoothing"),
    "ohem_cross_entropy": ("threshold", "label_smoothing"),
    "poly": ("alpha", "gamma", "label_smoothing"),  # epsilon may be negative (>= -1): tests/test_errors.py
    "cldice": ("alpha", "smooth"),
}
_AT_MOST_ONE = {"label_smoothing", "r", "lam", "delta", ("combo", "alpha"), ("combo", "beta"),
                ("balanced_cross_entropy", "beta"), ("unified_focal", "gamma"), ("ohem_cross_entropy", "threshold"),
                ("correlation_ssim", "beta"), ("cldice", "alpha")}


def numeric_keys(name):
    if name in _NUMERIC:
        return _NUMERIC[name]
    p = params(name)
    return tuple(k for k, v in p.items() if isinstance(v.default, float) and not isinstance(v.default, bool))


def _at_most_one(name, mode, key):
    if name in ("focal", "poly") and key == "alpha":
        return mode != "multiclass"
    return key in _AT_MOST_ONE or (name, key) in _AT_MOST_ONE


@st.composite
def bad_options(draw, name, r):
    """(what, option overrides, exception types, names one of which the message must hold) for recipe ``r``."""
    p = params(name)
    c, mode = r.c, r.mode
    kinds = []
    num = numeric_keys(name)
    if num:
        kinds += ["nonfinite", "negative", "string"]
    if any(_at_most_one(name, mode, k) for k in num):
        kinds += ["above_one"]
    vec = list(MODULES[name].per_class_options())  # the options the signature types as per-class vectors
    if vec and c > 0:
        kinds += ["vector_nonfinite", "vector_negative", "vector_length"]
    bools = [k for k in ("per_image", "log_loss", "from_logits", "asymmetric") if k in p]
    kinds += ["bool", "reduction", "ignore_float"]
    if "classes" in p:
        kinds += ["classes"]
    if name in DISTANCE:
        kinds += ["spacing_length", "backend"]
    if name == "unified_focal" and mode == "multiclass":
        kinds += ["background"]
    if name == "generalized_dice":
        kinds += ["weight_type"]
    if name in ("tversky", "focal_tversky"):
        kinds += ["tversky_zero"]
    if name == "lovasz":
        kinds += ["dist_sync"]
    if "iterations" in p:
        kinds += ["iterations"]
    kind = draw(st.sampled_from(kinds), label="bad option kind")
    V, T = (ValueError,), (TypeError,)
    if kind == "nonfinite":
        key = draw(st.sampled_from(num))
        value = draw(st.sampled_from((math.inf, -math.inf, math.nan)))
        return kind, {key: value}, V, (key,)
    if kind == "negative":
        key = draw(st.sampled_from(num))
        return kind, {key: draw(st.sampled_from((-0.5, -1, -1e-9)))}, V, (key,)
    if kind == "string":
        key = draw(st.sampled_from(num))
        return kind, {key: "0.5"}, V + T, (key,)
    if kind == "above_one":
        key = draw(st.sampled_from([k for k in num if _at_most_one(name, mode, k)]))
        return kind, {key: draw(st.sampled_from((1.5, 1.0000001, 2)))}, V, (key,)
    if kind.startswith("vector"):
        key = draw(st.sampled_from(vec))
        values = [0.5] * c
        if kind == "vector_length":
            values = values + [0.5] if draw(st.booleans()) or c == 1 else values[:-1]
        else:
            i = draw(st.integers(0, c - 1))
            values[i] = (draw(st.sampled_from((math.nan, math.inf, -math.inf))) if kind == "vector_nonfinite"
                         else -1.0)
        form = draw(st.sampled_from(("list", "tuple", "float64 tensor", "float32 tensor")), label="vector form")
        if form == "tuple":
            values = tuple(values)
        elif form != "list":  # CPU tensors are checked at each call too (docs/semantics.md, "Bad input")
            values = torch.tensor(values, dtype=torch.float64 if form == "float64 tensor" else torch.float32)
        return kind, {key: values}, V, (key,)
    if kind == "bool":
        key = draw(st.sampled_from(bools))
        return kind, {key: draw(st.sampled_from(("yes", 1, None)))}, T, (key,)
    if kind == "reduction":
        bad = ("avg", "none") if name in COMPOUND else ("avg", "MEAN", None)
        return kind, {"reduction": draw(st.sampled_from(bad))}, V + T, ("reduction",)
    if kind == "ignore_float":
        return kind, {"ignore_index": draw(st.sampled_from((255.0, "255", -1.5)))}, T, ("ignore_index",)
    if kind == "classes":
        bad = draw(st.sampled_from(([c], [-1], [0, 0], [], [0, c + 3], [0.0])))
        return kind, {"classes": bad}, V + T, ("classes",)
    if kind == "spacing_length":
        nd = len(r.spatial)
        bad = draw(st.sampled_from(((1.0,) * (nd + 1), (0.0,) * nd, (1.0,) * (nd - 1) + (-2.0,), 0.0)))
        return kind, {"spacing": bad}, V + T, ("spacing",)
    if kind == "backend":
        return kind, {"backend": "cuda"}, V, ("backend",)
    if kind == "background":
        return kind, {"background": draw(st.sampled_from((c, -1, 1.0)))}, V + T, ("background",)
    if kind == "weight_type":
        return kind, {"weight_type": "cubic"}, V, ("weight_type",)
    if kind == "tversky_zero":
        return kind, {"alpha": 0.0, "beta": 0.0}, V, ("alpha", "beta")
    if kind == "dist_sync":
        return kind, {"dist_sync": True}, V, ("dist_sync",)
    if kind == "iterations":
        bad = draw(st.sampled_from((-1, 2.0, "3", True)))
        return kind, {"iterations": bad}, V + T, ("iterations",)
    raise AssertionError(kind)


def _call_raises(case, module=False, **override):
    try:
        call(case, module=module, grad=False, **override)
    except Exception as e:  # noqa: BLE001 - sorted by the caller
        return e
    return None


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(1.0)
@given(data=st.data())
def test_bad_options_raise_named_errors(name, data):
    r = data.draw(recipes(name, dtypes=("float32", "float64")), label="recipe")
    case = build(r)
    kind, override, types, names = data.draw(bad_options(name, r))
    _describe(case)
    note(f"bad option ({kind}): {override}")
    e = _call_raises(case, **override)
    assert e is not None, f"bad option {override} ({kind}) was accepted"
    assert isinstance(e, types), f"bad option {override} raised {type(e).__name__}, not {types}: {e}"
    assert_allowed_error(e, names)


@pytest.mark.parametrize("name", [n for n in NAMES if numeric_keys(n)])
@fuzz_settings(0.5)
@given(data=st.data())
def test_nonfinite_numeric_options_raise_value_error(name, data):
    keys = numeric_keys(name)
    r = data.draw(recipes(name, dtypes=("float32", "float64")), label="recipe")
    case = build(r)
    key = data.draw(st.sampled_from(keys), label="option")
    value = data.draw(st.sampled_from((math.inf, -math.inf, math.nan)), label="value")
    _describe(case)
    e = _call_raises(case, **{key: value})
    assert e is not None, f"{key}={value} was accepted"
    assert isinstance(e, ValueError), f"{key}={value} raised {type(e).__name__}, not ValueError: {e}"
    assert_allowed_error(e, (key,))


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.5)
@given(data=st.data())
def test_unrepresentable_ignore_index_raises_value_error(name, data):
    mode = data.draw(st.sampled_from(("binary", "multiclass", "multilabel")), label="mode")
    r = data.draw(recipes(name, mode, target_kinds=("index",) if mode == "multiclass" else ("hard",),
                          dtypes=("float32", "float64")), label="recipe")
    dtype = data.draw(st.sampled_from(("uint8", "int8", "bool", "int16", "int32", "int64")
                                      if mode != "multiclass" else ("uint8", "int8", "int16", "int32", "int64")),
                      label="target dtype")
    case = build(r.replace(target_dtype=dtype, ignore_index=None, ignore_frac=0.0))
    lo, hi = INT_RANGES[dtype]
    bad = data.draw(st.sampled_from((lo - 1, hi + 1, 255 if hi < 255 else -1 if lo == 0 else hi + 1)),
                    label="ignore_index")
    _describe(case)
    note(f"ignore_index={bad} with a {dtype} target")
    e = _call_raises(case, ignore_index=bad)
    assert e is not None, f"ignore_index={bad} with a {dtype} target was accepted"
    assert isinstance(e, ValueError), f"raised {type(e).__name__}, not ValueError: {e}"
    assert_allowed_error(e, ("ignore_index",))


_BAD_INPUTS = ("mode", "multiclass_one_class", "target_shape", "logits_int", "logits_numpy", "index_float",
               "target_complex", "ignore_prob", "distance_ndim", "maps_shape")


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.5)
@given(data=st.data())
def test_bad_inputs_raise_named_errors(name, data):
    r = data.draw(recipes(name, dtypes=("float32", "float64"), allow_n0=False), label="recipe")
    case = build(r)
    mc_index = r.mode == "multiclass" and r.target_kind == "index"
    applicable = {"multiclass_one_class": mc_index, "index_float": mc_index,
                  "ignore_prob": r.mode == "multiclass" and not mc_index,
                  "distance_ndim": name in SPATIAL, "maps_shape": name in MAPS}
    kind = data.draw(st.sampled_from([k for k in _BAD_INPUTS if applicable.get(k, True)]), label="bad input")
    x, t, over = case.logits, case.target, {}
    if kind == "mode":
        over["mode_"] = data.draw(st.sampled_from(("softmax", "sigmoid", None, "Binary")))
    elif kind == "multiclass_one_class":
        x = x[:, :1]
    elif kind == "target_shape":
        t = torch.cat([t, t[:1]])  # one image more than the logits
    elif kind == "logits_int":
        x = x.to(torch.int64)
    elif kind == "logits_numpy":
        x = x.detach().numpy()
    elif kind == "index_float":
        t = t.to(torch.float32)
    elif kind == "target_complex":
        t = t.to(torch.complex64)
    elif kind == "ignore_prob":
        over["ignore_index"] = data.draw(st.sampled_from((0, 255)))
    elif kind == "distance_ndim":  # 0 or 4 spatial axes
        spatial = () if data.draw(st.booleans()) else tuple(r.spatial) + (1,) * (4 - len(r.spatial))
        opts = tuple((k, v) for k, v in r.options if k not in (MAPS.get(name), "spacing"))
        other = build(r.replace(spatial=spatial, options=opts, binary_flat=r.binary_flat and bool(spatial)))
        x, t = other.logits, other.target
        over = {MAPS[name]: None} if name in MAPS else {}
        if "spacing" in params(name):
            over["spacing"] = None
    elif kind == "maps_shape":
        over[MAPS[name]] = torch.zeros(r.n, r.c + 1, *r.spatial)
    _describe(case)
    note(f"bad input: {kind}; logits {type(x).__name__} {getattr(x, 'shape', None)} {getattr(x, 'dtype', None)}; "
         f"target {tuple(t.shape)} {t.dtype}; overrides {over}")
    mode = over.pop("mode_", r.mode)
    opts = {**case.options, **over}
    try:
        LOSSES[name](x, t, mode, **opts)
    except Exception as e:  # noqa: BLE001
        assert_allowed_error(e)
        return
    raise AssertionError(f"bad input ({kind}) was accepted")


@pytest.mark.parametrize("name", NAMES)
@fuzz_settings(0.5)
@given(data=st.data())
def test_module_raises_as_the_function_does(name, data):
    r = data.draw(recipes(name, dtypes=("float32", "float64")), label="recipe")
    case = build(r)
    kind, override, _, _ = data.draw(bad_options(name, r))
    _describe(case)
    note(f"bad option ({kind}): {override}")
    f_err = _call_raises(case, **override)
    m_err = _call_raises(case, module=True, **override)
    assert type(m_err) is type(f_err), (f"function: {type(f_err).__name__}: {f_err}; "
                                        f"Module: {type(m_err).__name__}: {m_err}")
    if m_err is not None:
        assert_allowed_error(m_err)


# ------------------------------------------------------------------------------------- coverage of the registry
#: Keyword options no drawn options carry: ignore_index and from_logits come with the recipe's target and inputs;
#: a process group needs torch.distributed (tests/test_dist.py); Lovasz takes dist_sync only to reject it (drawn by
#: bad_options instead).
_NOT_DRAWN = {"ignore_index", "from_logits", "process_group", ("lovasz", "dist_sync")}


@pytest.mark.parametrize("name", NAMES)
def test_every_option_of_the_loss_is_fuzzed(name):
    # options_for (tests/_fuzz.py) knows each loss's own options by name: a new loss, or a new option of one, that it
    # does not draw would be fuzzed with its defaults only.
    drawn = st.sampled_from(_registry.MODES).flatmap(lambda mode: options_for(name, mode, 3, 2))
    quick = settings(database=None, derandomize=True, max_examples=2000, phases=(Phase.generate,))
    missing = []
    for key in sorted(k for k in _registry.options(name) if k not in _NOT_DRAWN and (name, k) not in _NOT_DRAWN):
        try:
            find(drawn, lambda kw, key=key: key in dict(kw), settings=quick)
        except NoSuchExample:
            missing.append(key)
    assert not missing, f"tests/_fuzz.py options_for never draws {missing} of {name}_loss: add them there"


def test_per_loss_tables_name_losses_of_the_registry():
    pairs = {k[0] for k in _AT_MOST_ONE | _NOT_DRAWN if isinstance(k, tuple)}
    named = set(_NUMERIC) | pairs | _NO_COMPILED_KERNEL
    assert named <= set(NAMES), f"not losses of seglosses/_registry.py: {sorted(named - set(NAMES))}"


# Last in the file: a kernel that read an index out of range could abort the process rather than raise.
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
@fuzz_settings(0.07)
@given(data=st.data())
def test_out_of_range_class_indices_raise_under_compiled_kernels(data):
    name = data.draw(st.sampled_from(KERNEL_LOSSES), label="name")
    case, target, planted = data.draw(out_of_range(name))
    _describe(case)
    note(f"planted out-of-range values {planted} (C = {case.recipe.c})")
    before = S.get_cpu_kernels()
    try:
        S.set_cpu_kernels("inductor")
        e = _call_raises(case, target=target)
    finally:
        S.set_cpu_kernels(before)
    assert isinstance(e, IndexError), f"raised {type(e).__name__}, not IndexError: {e}"
    assert "`target`" in str(e), f"IndexError message does not name `target`: {e}"
