"""Fuzz cases of the C kernels (seglosses/kernels/native/kernels.c) against the blocked torch passes.

Shared by tests/test_fuzz_native.py, which sends each case to a worker process (tests/_native_fuzz_worker.py: a
crash of the kernels is then reported with its case instead of killing pytest), and by benchmarks/asan_native.py,
which runs the same cases in-process against an AddressSanitizer build of the kernels.

A case is a JSON-able dict (:func:`region_cases`, :func:`lovasz_cases`: hypothesis strategies); its tensors come
from ``torch.Generator().manual_seed(case["seed"])`` (:func:`inputs`), so a case printed by a failure is the whole
example. :func:`check` runs one case and returns the failures it found (empty: passed). Every comparison is of the
C kernels' outputs (policy "inductor", their call counter checked) against the blocked torch passes on the same
inputs (policy "eager"), which the rest of the suite checks against the float64 oracle, and, where ignored pixels
hold NaN or inf logits, against the torch passes on the same inputs with those logits set to 0 (ignored pixels add
nothing, whatever their logits).

What a case varies: N (1-3); C (2-20, and 33, 47, 150 for smaller blocks); the pixels S around the kernels' blocks
(``block_of`` in kernels.c; and 1, 15, 16, 17, 63, 65), as one or two spatial axes; the target's integer dtype;
ignore_index absent, unused, on some pixels or on every pixel (a value outside [0, C), or a class); NaN/inf logits
at ignored pixels; one NaN logit at a valid pixel (must give NaN, never be hidden); a class subset; per_image;
reduction; threads (1 or 2); labels outside [0, C) (sent to the kernels directly: the front end raises before any
kernel runs, the kernels must treat them as ignored and return their error code 2).
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

import seglosses as S
from seglosses.kernels import inductor as _inductor
from seglosses.kernels import native as _native
from seglosses.kernels import ops
from seglosses.kernels.dispatch import LovaszSpec

DTYPES = {"int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
          "uint8": torch.uint8}
#: classes with other block sizes than 2-20's 512 pixels (496, 336 and 96)
EXTRA_CLASSES = (33, 47, 150)
REGION_LOSSES = ("dice", "jaccard", "tversky", "focal_tversky", "generalized_dice", "log_dice")
NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
#: float32 tolerances: values (relative, absolute); gradients: relative, and absolute GRAD_ATOL times their largest
#: magnitude or, where more, GRAD_ERR times the torch passes' own float32 error (against them in float64). The region
#: gradient p_c (a_c + [t = c] m_c - w), w = sum_k p_k a_k + p_t m_t, rounds to within a few ulp of (|a| + |m|) p_c,
#: far above its own size where it cancels (saturated logits): GRAD_ULPS eps (max|a| + max|m|) p_c more there, with
#: a and m as the kernel received them and p the float64 softmax.
RTOL, ATOL, GRAD_ATOL, GRAD_ERR, GRAD_ULPS = 1e-5, 1e-6, 1e-6, 4.0, 8.0
EPS32 = torch.finfo(torch.float32).eps


def block_of(c: int) -> int:
    """Pixels per job of the region kernels (``block_of`` in kernels.c)."""
    b = 16384 // max(c, 1)
    return min(max(b, 32), 512) & ~15


def sizes_near_blocks(c: int) -> list[int]:
    b = block_of(c)
    return sorted({1, 15, 16, 17, 63, 65, b - 1, b, b + 1, 2 * b - 1, 2 * b + 1})


def _fits(v: int, dtype: str) -> bool:
    info = torch.iinfo(DTYPES[dtype])
    return info.min <= v <= info.max


def bad_labels(dtype: str, c: int, ignore) -> list[int]:
    """Labels outside [0, C) that are not ``ignore`` for ``dtype``: its extremes, C, -1, and values whose low bits
    are a class (a kernel that narrowed them before its range check would read a class)."""
    info = torch.iinfo(DTYPES[dtype])
    vals = {info.min, info.max, c, -1, -2, 2 ** 15 + 1, 2 ** 16 + 1, 2 ** 32 + 1, 2 ** 40, -(2 ** 31)}
    return sorted(v for v in vals if _fits(v, dtype) and not 0 <= v < c and v != ignore)


# ------------------------------------------------------------------------------------------------------ strategies
@st.composite
def _common(draw):
    c = draw(st.one_of(st.integers(2, 20), st.sampled_from(EXTRA_CLASSES)))
    n = draw(st.integers(1, 3))
    s = draw(st.sampled_from(sizes_near_blocks(c)))
    # one spatial axis, or two (S = h * w) where S has a factor
    h = draw(st.sampled_from([1] + [f for f in (2, 3, 5, 7) if s % f == 0 and s > f]))
    shape = [s] if h == 1 else [h, s // h]
    dtype = draw(st.sampled_from([d for d in DTYPES if _fits(c - 1, d)]))  # (int8 holds no class of 150)
    cover = draw(st.sampled_from(["absent", "unused", "some", "all"]))
    ignore = None
    if cover != "absent":
        ignore = draw(st.sampled_from([v for v in (255, -1, -100, 1000, 0, c - 1) if _fits(v, dtype)]))
    some_ignored = cover in ("some", "all") or (ignore is not None and 0 <= ignore < c)
    nonfinite = draw(st.sampled_from([None, "nan", "inf", "-inf", "mix"])) if some_ignored else None
    classes = draw(st.one_of(st.none(), st.lists(st.integers(0, c - 1), min_size=1, max_size=c, unique=True)))
    return {
        "seed": draw(st.integers(0, 2 ** 31 - 1)), "n": n, "c": c, "shape": shape, "dtype": dtype,
        "ignore": ignore, "cover": cover, "nonfinite": nonfinite,
        "nan_valid": draw(st.integers(0, 7)) == 0,  # one NaN logit at a valid pixel, in 1 case of 8
        "bad_labels": draw(st.integers(0, 3)) == 0,
        "classes": classes, "per_image": draw(st.booleans()),
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "threads": draw(st.sampled_from([1, 2])),
        "scale": draw(st.sampled_from([0.1, 3.0, 30.0])),
    }


@st.composite
def region_cases(draw):
    case = draw(_common())
    case.update(kind="region", loss=draw(st.sampled_from(REGION_LOSSES)))
    return case


@st.composite
def lovasz_cases(draw):
    case = draw(_common())
    # (saturated logits, scale 30, tie many errors at exactly 0 or 1: both sorts are stable, ties keep the pixels'
    # order, so the derivative agrees pixel by pixel too)
    case.update(kind="lovasz", from_logits=draw(st.booleans()),
                lovasz_classes=draw(st.sampled_from(["present", "all", "list"])))
    return case


# ----------------------------------------------------------------------------------------------------------- inputs
def inputs(case):
    """``(x, t, ignored)``: float32 logits (N, C, *spatial) with the case's NaN/inf at ignored pixels (and at one
    valid pixel), the target (N, *spatial) in the case's dtype, and the ignored pixels (N, *spatial) bool."""
    g = torch.Generator().manual_seed(case["seed"])
    n, c, shape = case["n"], case["c"], tuple(case["shape"])
    x = torch.randn((n, c, *shape), generator=g) * case["scale"]
    t = torch.randint(0, c, (n, *shape), generator=g)
    ign = case["ignore"]
    cover = case["cover"]
    if cover == "some":
        t = torch.where(torch.rand(t.shape, generator=g) < 0.3, ign, t)
    elif cover == "all":
        t = torch.full_like(t, ign)
    ignored = torch.zeros(t.shape, dtype=torch.bool) if ign is None else t == ign
    kind = case["nonfinite"]
    if kind is not None:
        if kind == "mix":  # NaN, inf, -inf or finite, logit by logit
            pick = torch.randint(0, 4, x.shape, generator=g)
            bad = torch.tensor([math.nan, math.inf, -math.inf, 0.0])[pick]
            bad = torch.where(pick == 3, x, bad)
        else:  # a random half of each ignored pixel's logits (all of them where the draw says so)
            some = torch.rand(x.shape, generator=g) < 0.5
            some |= (torch.rand((n, 1, *shape), generator=g) < 0.3)
            bad = torch.where(some, NONFINITE[kind], x)
        x = torch.where(ignored.unsqueeze(1), bad, x)
    if case["nan_valid"] and (~ignored).any():
        where = (~ignored).flatten().nonzero()[0, 0].item()  # the first valid pixel
        i, s = divmod(where, math.prod(shape))
        x.view(n, c, -1)[i, int(torch.randint(0, c, (1,), generator=g)), s] = math.nan
    return x, t.to(DTYPES[case["dtype"]]), ignored


def cleaned(x, ignored):
    """``x`` with the logits of ignored pixels set to 0 (what the losses must see: they do not count)."""
    return torch.where(ignored.unsqueeze(1), 0.0, x)


# ----------------------------------------------------------------------------------------------------------- checks
def _max_abs(t):
    t = t[t.isfinite()]
    return float(t.abs().max()) if t.numel() else 0.0


def grad_atol(ref, ref64):
    """Absolute tolerance of a float32 gradient: see GRAD_ATOL (``ref64``: the torch passes in float64)."""
    return max(GRAD_ATOL * _max_abs(ref), GRAD_ERR * _max_abs(ref.double() - ref64)) + 1e-12


class _Failures(list):
    def close(self, what, got, want, rtol=RTOL, atol=ATOL, slack=None):
        """``|got - want| <= rtol |want| + atol (+ slack, per element)``, NaN where ``want`` is NaN only."""
        if got.shape != want.shape or got.dtype != want.dtype:
            self.append(f"{what}: shape/dtype {tuple(got.shape)} {got.dtype}, want {tuple(want.shape)} {want.dtype}")
            return
        g, w = got.double(), want.double()
        if not torch.equal(g.isnan(), w.isnan()):
            self.append(f"{what}: NaN at {(g.isnan() != w.isnan()).nonzero()[:5].tolist()} (got or want only)")
            return
        allowed = rtol * w.abs() + atol + (0.0 if slack is None else slack.double())
        bad = ~((g == w) | g.isnan() | ((g - w).abs() <= allowed))
        if bad.any():
            i = tuple(bad.nonzero()[0].tolist())
            self.append(f"{what}: {int(bad.sum())} of {g.numel()} elements differ; first at {i}: got {g[i].item()!r}, "
                        f"want {w[i].item()!r}, allowed difference {allowed[i].item():.3g}; largest difference "
                        f"{(g - w).abs()[bad].max().item():.3g}")

    def true(self, what, ok):
        if not ok:
            self.append(what)


def _policy(mode):
    S.set_cpu_kernels(mode)
    _inductor._state["broken"] = RuntimeError("Inductor off in the C kernels' fuzz cases")  # (nothing compiles)


def _run(mode, fn, calls, fails, what):
    """``fn()`` under the policy ``mode``, checking that the C kernels ran ``calls`` times ("inductor") or never."""
    _policy(mode)
    before = _native._state["calls"]
    out = fn()
    ran = _native._state["calls"] - before
    want = calls if mode == "inductor" else 0
    fails.true(f"{what}: the C kernels ran {ran} times under {mode!r}, not {want}", ran == want)
    return out


class _GradInputs:
    """Records max|a| + max|m| of the C gradient kernel's calls (the scale of its rounding, see GRAD_ULPS)."""

    def __enter__(self):
        self.scale, self.orig = 0.0, _native.softmax_index_grad

        def wrapped(x, target, ignore_index, a, m):
            self.scale = max(self.scale, _max_abs(a) + _max_abs(m))
            return self.orig(x, target, ignore_index, a, m)

        _native.softmax_index_grad = wrapped
        return self

    def __exit__(self, *exc):
        _native.softmax_index_grad = self.orig


def region_slack(x, ignored, scale):
    """Per-element gradient tolerance GRAD_ULPS eps scale p_c (p: the float64 softmax, 0 at ignored pixels)."""
    p = torch.softmax(x.double(), 1).nan_to_num(0.0)
    return GRAD_ULPS * EPS32 * scale * torch.where(ignored.unsqueeze(1), 0.0, p)


def _grad_of(x, fn, upstream_seed):
    """The value of ``fn(leaf)`` (detached) and the gradient of ``sum(u * value)`` with random weights u."""
    leaf = x.detach().clone().requires_grad_(True)
    value = fn(leaf)
    u = torch.rand(value.shape, generator=torch.Generator().manual_seed(upstream_seed)) + 0.5
    (grad,) = torch.autograd.grad((value * u).sum(), leaf)
    return value.detach(), grad


def _zero_at(grad, ignored):
    """Whether the gradient (N, C, *) is exactly 0 (not NaN) at every ignored pixel."""
    return bool((grad.movedim(1, -1)[ignored] == 0).all())


def nan_expected(case, x, ignored, cols=None) -> bool:
    """Whether the case's NaN at a valid pixel must show in the outputs: always through a softmax (it spreads over
    the pixel's classes); probabilities (Lovasz, from_logits=False): where its class is one of the rows ``cols``."""
    at = x.isnan() & ~ignored.unsqueeze(1)
    if not at.any():
        return False
    if case.get("nan_hidden"):
        return False
    if case["kind"] == "region" or case["from_logits"] or cols is None:
        return True
    return bool(at.movedim(1, -1).reshape(-1, x.shape[1])[:, list(cols)].any())


def _compare_paths(fails, what, fn, x, ignored, case, calls, cols=None):
    """``fn`` on ``x`` by the C kernels and by the torch passes (and by those on cleaned logits), values and
    gradients; the C kernels' gradient is 0 at every ignored pixel. Returns the C kernels' (value, grad)."""
    seed = case["seed"] + 1
    with _GradInputs() as rec:
        native = _run("inductor", lambda: _grad_of(x, fn, seed), calls, fails, what)
    slack = region_slack(x, ignored, rec.scale) if case["kind"] == "region" else None
    eager = _run("eager", lambda: _grad_of(x, fn, seed), 0, fails, what)
    refs = [("torch passes", eager)]
    atol = grad_atol(eager[1], _run("eager", lambda: _grad_of(x.double(), fn, seed), 0, fails, what)[1])
    if case["nonfinite"] is not None:
        refs.append(("torch passes, ignored logits 0", _run("eager", lambda: _grad_of(cleaned(x, ignored), fn, seed),
                                                             0, fails, what)))
    for name, ref in refs:
        fails.close(f"{what} value vs {name}", native[0], ref[0])
        fails.close(f"{what} gradient vs {name}", native[1], ref[1], atol=atol, slack=slack)
    fails.true(f"{what}: gradient not exactly 0 at ignored pixels", _zero_at(native[1], ignored))
    if nan_expected(case, x, ignored, cols):  # a NaN logit at a valid pixel: NaN, never hidden
        fails.true(f"{what}: a NaN logit at a valid pixel gave no NaN value", bool(native[0].isnan().any()))
    elif not (x.isnan() & ~ignored.unsqueeze(1)).any() and case["nonfinite"] is not None:
        fails.true(f"{what}: NaN/inf logits at ignored pixels reached the value",
                   bool(native[0].isfinite().all()) and bool(native[1].isfinite().all()))
    return native


def _region_loss(name):
    fn = {"dice": S.dice_loss, "jaccard": S.jaccard_loss, "tversky": S.tversky_loss,
          "focal_tversky": S.focal_tversky_loss, "generalized_dice": S.generalized_dice_loss,
          "log_dice": S.dice_loss}[name]
    kw = {"log_loss": True} if name == "log_dice" else {"alpha": 0.2, "beta": 0.8} if name == "tversky" else {}
    return fn, kw


def check_region(case, fails):
    x, t, ignored = inputs(case)
    n, c = case["n"], case["c"]
    ign = case["ignore"]
    if case["bad_labels"]:
        _raw_region(case, x, t, ignored, fails)
    # the sums (T, P, G) and the gradient of random weights of (tp, fp, fn): every dL/dP, dL/dT the kernel takes
    xf, tf = x.reshape(n, c, -1), t.reshape(n, -1)

    def sums(leaf):
        tp, fp, fn, g = ops.region_stats(leaf, tf, act="softmax", index=True, ignore_index=ign,
                                            per_image=case["per_image"])
        return torch.stack([tp, fp, fn, g])

    def tpg(leaf):  # T, P, G (P = tp + fp: no cancellation in the comparison), and their (tp, fp, fn) weights
        out = sums(leaf)
        return torch.stack([out[0], out[0] + out[1], out[3], out[0] + 0.5 * out[1] - 0.25 * out[2]])

    _compare_paths(fails, "region sums", tpg, xf, ignored.reshape(n, -1), case, 2)
    # the public loss
    fn, kw = _region_loss(case["loss"])
    kw.update(ignore_index=ign, per_image=case["per_image"], classes=case["classes"], reduction=case["reduction"])
    if case["reduction"] == "mean" and case["loss"] != "generalized_dice":
        kw["weight"] = [1.0 + (k % 3) for k in range(c)]
    # (log_loss hides a NaN score: region._ratio_loss reads den > 0, False for NaN, as a perfect score and returns 0;
    # the formula's, not the kernels': their sums are checked for the NaN above)
    _compare_paths(fails, f"{case['loss']} loss", lambda leaf: fn(leaf, t, "multiclass", **kw), x, ignored,
                   dict(case, nan_hidden=case["loss"] == "log_dice"), 2)


def _with_bad_labels(case, t, ignored):
    """``t`` with labels outside [0, C) (not ignore_index) at about a quarter of the valid pixels (at least one),
    and those pixels."""
    g = torch.Generator().manual_seed(case["seed"] + 2)
    vals = torch.tensor(bad_labels(case["dtype"], case["c"], case["ignore"]), dtype=torch.int64)
    pick = (torch.rand(t.shape, generator=g) < 0.25) & ~ignored
    first = (~ignored).flatten().nonzero()
    if len(first):
        pick.view(-1)[first[0, 0]] = True
    labels = vals[torch.randint(0, len(vals), t.shape, generator=g)]
    return torch.where(pick, labels, t.long()).to(t.dtype), pick


def _raw_region(case, x, t, ignored, fails):
    """The region kernels called directly with labels outside [0, C) (the front end raises first): code 2, and every
    output as if those pixels were ignored (the torch passes with them set to an ignore_index)."""
    n, c = case["n"], case["c"]
    xf = x.reshape(n, c, -1).contiguous()
    tb, pick = _with_bad_labels(case, t, ignored)
    tf = tb.reshape(n, -1).contiguous()
    lib = _native.library()
    name = _native.TARGET_TYPES[tb.dtype]
    ign, has = _native._ignore(case["ignore"])
    out = torch.full((3, n, c), math.nan)
    g = torch.Generator().manual_seed(case["seed"] + 3)
    a, m = torch.randn((2, n, c), generator=g).unbind(0)
    grad = torch.full(xf.shape, math.nan)
    torch.set_num_threads(case["threads"])
    code = getattr(lib, f"segl_softmax_index_sums_{name}")(
        xf.data_ptr(), tf.data_ptr(), n, c, xf.shape[2], ign, has, out[0].data_ptr(), out[1].data_ptr(),
        out[2].data_ptr(), None, 0, case["threads"])
    gcode = getattr(lib, f"segl_softmax_index_grad_{name}")(
        xf.data_ptr(), tf.data_ptr(), n, c, xf.shape[2], ign, has, a.data_ptr(), m.data_ptr(), grad.data_ptr(),
        None, 0, case["threads"])
    want_code = 2 if pick.any() else 0
    fails.true(f"raw region kernels: codes {code}, {gcode}; want {want_code}", code == gcode == want_code)
    # the torch passes with those pixels ignored (int64 targets: any ignore value fits)
    sentinel = case["ignore"] if case["ignore"] is not None else -(2 ** 40)
    tr = torch.where(pick, sentinel, t.long()).reshape(n, -1)
    leaf = xf.clone().requires_grad_(True)
    _policy("eager")
    tp, fp, _, gsum = ops.region_stats(leaf, tr, act="softmax", index=True, ignore_index=sentinel, per_image=True)
    (want_grad,) = torch.autograd.grad((a * (tp + fp) + m * tp).sum(), leaf)  # dL/dP = a, dL/dT = m
    leaf64 = xf.double().requires_grad_(True)
    tp64, fp64, _, _ = ops.region_stats(leaf64, tr, act="softmax", index=True, ignore_index=sentinel,
                                           per_image=True)
    (grad64,) = torch.autograd.grad((a * (tp64 + fp64) + m * tp64).sum(), leaf64)
    gone = (ignored | pick).reshape(n, -1)
    fails.close("raw region sums (P, T, G) vs torch passes, bad labels ignored", out,
                torch.stack([tp + fp, tp, gsum]).detach())
    fails.close("raw region gradient vs torch passes, bad labels ignored", grad, want_grad,
                atol=grad_atol(want_grad, grad64),
                slack=region_slack(xf, gone, _max_abs(a) + _max_abs(m)))
    fails.true("raw region gradient not exactly 0 at ignored pixels and bad labels", _zero_at(grad, gone))
    # and the front end: an IndexError before any kernel runs, under both policies (where a label is out of range:
    # with every pixel ignored, none is)
    for mode in ("inductor", "eager") if pick.any() else ():
        _policy(mode)
        before = _native._state["calls"]
        try:
            S.dice_loss(x, tb, "multiclass", ignore_index=case["ignore"])
        except IndexError:
            pass
        else:
            fails.append(f"labels outside [0, C) gave no IndexError under {mode!r}")
        fails.true(f"labels outside [0, C) ran the C kernels under {mode!r}", _native._state["calls"] == before)


def _lovasz_kwargs(case):
    c = case["c"]
    classes = {"present": "present", "all": "all", "list": case["classes"] or list(range(c))}[case["lovasz_classes"]]
    kw = dict(classes=classes, per_image=case["per_image"], ignore_index=case["ignore"],
              from_logits=case["from_logits"], reduction=case["reduction"])
    if case["reduction"] != "none":
        kw["weight"] = [1.0 + (k % 3) for k in range(c)]
    return kw


def check_lovasz(case, fails):
    x, t, ignored = inputs(case)
    if not case["from_logits"]:  # probabilities (NaN/inf where x had them: the kernel's derivative is the gradient)
        p = torch.softmax(torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), 1)
        x = torch.where(x.isfinite(), p, x)
    kw = _lovasz_kwargs(case)
    cols = kw["classes"] if isinstance(kw["classes"], list) else range(case["c"])
    _compare_paths(fails, "lovasz loss", lambda leaf: S.lovasz_loss(leaf, t, "multiclass", **kw), x, ignored,
                   case, 1, cols)
    _lovasz_rows(case, x, t, ignored, fails)


def _lovasz_rows(case, x, t, ignored, fails):
    """The Lovasz rows (seglosses.kernels.ops.rows: losses, foreground counts, derivative in q) by the C kernels and by
    the torch passes, on probabilities holding NaN/inf at ignored pixels as given (the front end zeroes those logits
    before the rows; the kernels must drop them by themselves), and, in a quarter of the cases, int16 labels outside
    [0, C) at valid pixels (the kernels treat them as ignored; the torch rows get them as ignored pixels)."""
    n, c = case["n"], case["c"]
    q = x if not case["from_logits"] else torch.softmax(x, 1)
    q = q.reshape(n, c, -1).contiguous()
    cols = tuple(case["classes"] or range(c))
    per_image = case["per_image"]
    valid = None if case["ignore"] is None else ~ignored.reshape(n, -1)
    label = torch.where(ignored, -1, t.long()).reshape(n, 1, -1).to(torch.int16)
    ref_label, ref_valid = label, valid
    if case["bad_labels"]:
        g = torch.Generator().manual_seed(case["seed"] + 4)
        vals = torch.tensor([-32768, -2, -1, c, 32767], dtype=torch.int16)
        pick = (torch.rand(label.shape, generator=g) < 0.25) & ~ignored.reshape(n, 1, -1)
        label = torch.where(pick, vals[torch.randint(0, len(vals), label.shape, generator=g)], label)
        ref_label = torch.where(pick, -1, label)
        ref_valid = ~pick.squeeze(1) if valid is None else valid & ~pick.squeeze(1)
    gone = ignored.reshape(n, -1) if ref_valid is None else ~ref_valid
    torch.set_num_threads(case["threads"])

    def rows(lab, v, dtype=torch.float32):
        return ops.rows(q.to(dtype, copy=True), lab, v, LovaszSpec(True, True, tuple(cols), per_image))

    native = _run("inductor", lambda: rows(label, valid), 1, fails, "lovasz rows")
    eager = _run("eager", lambda: rows(ref_label, ref_valid), 0, fails, "lovasz rows")
    eager64 = _run("eager", lambda: rows(ref_label, ref_valid, torch.float64), 0, fails, "lovasz rows")
    for name, got, want, atol in zip(("losses", "foreground counts", "derivative"), native, eager,
                                     (ATOL, 0, grad_atol(eager[2], eager64[2]))):
        fails.close(f"lovasz rows {name} vs torch passes", got, want, atol=atol)
    fails.true("lovasz rows: derivative not exactly 0 at ignored pixels", bool((native[2].movedim(1, -1)[gone] == 0)
                                                                              .all()))
    xr = x.reshape(n, c, -1)  # (the pixels of labels outside [0, C) count as ignored here)
    if nan_expected(case, xr, gone, cols):
        fails.true("lovasz rows: a NaN probability at a valid pixel gave no NaN loss", bool(native[0].isnan().any()))
    elif not (xr.isnan() & ~gone.unsqueeze(1)).any():
        fails.true("lovasz rows: non-finite loss or derivative without NaN at valid pixels",
                   bool(native[0].isfinite().all()) and bool(native[2].isfinite().all()))


def check(case) -> list[str]:
    """Run one case; the failures found (empty: passed). Leaves the policy at "eager"."""
    threads = torch.get_num_threads()
    fails = _Failures()
    try:
        torch.set_num_threads(case["threads"])
        {"region": check_region, "lovasz": check_lovasz}[case["kind"]](case, fails)
    finally:
        torch.set_num_threads(threads)
        _policy("eager")
    return list(fails)


def raw_lovasz_guards() -> list[str]:
    """The Lovasz kernels' defences, called directly: classes outside [0, C) return 2 before touching anything,
    keys whose positions lie outside their row are skipped (code 2), nothing is written out of bounds."""
    fails = _Failures()
    lib = _native.library()
    n, c, s = 2, 3, 5
    q = torch.rand((n, c, s))
    lab = torch.randint(0, c, (n, s), dtype=torch.int16)
    for per_image in (0, 1):
        r, length = (n, s) if per_image else (1, n * s)
        for cols in ([0, 3], [-1], [2, 1, 0]):
            k = len(cols)
            col = torch.tensor(cols, dtype=torch.int64)
            keys = torch.zeros((r * k, length), dtype=torch.int64)
            count = torch.full((r, k), -7, dtype=torch.int64)
            code = lib.segl_lovasz_index_keys(q.data_ptr(), lab.data_ptr(), None, n, c, s, col.data_ptr(), k,
                                              per_image, keys.data_ptr(), count.data_ptr(), 1)
            inside = all(0 <= j < c for j in cols)
            fails.true(f"keys with cols {cols}: code {code}", code == (0 if inside else 2))
            if not inside:
                fails.true(f"keys with cols {cols} wrote its outputs", bool((keys == 0).all() and (count == -7).all()))
                continue
            # positions past the row, in place of some keys: skipped, code 2
            bad = keys.clone()
            bad.view(-1)[::3] = (bad.view(-1)[::3] & ~0xFFFFFFFF) | (length + 5)
            loss = torch.zeros((r, k))
            unit = torch.zeros((n, k, s))
            code = lib.segl_lovasz_index_scan(bad.data_ptr(), lab.data_ptr(), n, s, col.data_ptr(), k, per_image,
                                              count.data_ptr(), loss.data_ptr(), unit.data_ptr(), 1)
            fails.true(f"scan of keys outside their rows: code {code}, not 2", code == 2)
    return list(fails)

