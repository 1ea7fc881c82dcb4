"""The CPU kernels Inductor compiles from the losses' torch passes (seglosses.kernels.inductor).

Each case runs the loss twice, with the blocked torch passes (policy "eager", checked against the float64 oracle by
the rest of the suite) and compiled (policy "inductor"), and checks that the compiled pass really ran and gives the
same loss and gradient; a few cases are also checked against the oracle directly. Every case compiles (about two
seconds each on 2 cores), hence the slow mark.
"""

import warnings

import numpy as np
import pytest
import torch

import seglosses as S
from seglosses.kernels import inductor as _inductor
from seglosses.kernels import dispatch, policy

import oracle

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _policy(monkeypatch):
    # the C kernels (tests/test_native.py) would take the softmax region statistics with class indices: these tests
    # check the Inductor kernels, which run those where the C kernels cannot be built
    monkeypatch.setattr(dispatch.NATIVE, "covers", lambda *a: False)
    before = policy._state["mode"]
    yield
    policy._state["mode"] = before
    _inductor._state["broken"] = None


def _case(mode, n=2, c=3, shape=(9, 10), ignore=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    if mode == "binary":
        c = 1
    x = torch.randn((n, c, *shape), generator=g) * 3
    if mode == "multiclass":
        t = torch.randint(0, c, (n, *shape), generator=g)
    elif mode == "binary":
        t = (torch.rand((n, 1, *shape), generator=g) > 0.6).float()
    else:
        t = torch.rand((n, c, *shape), generator=g)
    if ignore:
        t.view(-1)[::5] = 255
    return x, t


def _grad_of(fn, x, t, mode, **kw):
    xx = x.detach().clone().requires_grad_(True)
    loss = fn(xx, t, mode, **kw)
    (grad,) = torch.autograd.grad(loss.sum(), xx)
    return loss.detach(), grad


def _run(fn, x, t, mode, policy, **kw):
    S.set_cpu_kernels(policy)
    return _grad_of(fn, x, t, mode, **kw)


def _both(fn, x, t, mode, **kw):
    eager = _run(fn, x, t, mode, "eager", **kw)
    before = _inductor._state["compiled_calls"]
    compiled = _run(fn, x, t, mode, "inductor", **kw)
    assert _inductor._state["broken"] is None, f"compiling failed: {_inductor._state['broken']!r}"
    # forward and backward both ran compiled (the focal pass computes the gradient in its forward)
    assert _inductor._state["compiled_calls"] > before
    return eager, compiled


def _close(a, b, rtol=1e-5, atol=1e-6):
    torch.testing.assert_close(a[0], b[0], rtol=rtol, atol=atol)
    torch.testing.assert_close(a[1], b[1], rtol=rtol, atol=atol * 0.1)


FOCAL_CASES = [
    ("binary", {}),
    ("binary", {"alpha": 0.25, "ignore_index": 255, "label_smoothing": 0.1}),
    ("binary", {"from_logits": False, "gamma": 0.5, "reduction": "sum"}),
    ("multilabel", {"weight": [0.5, 1.0, 2.0], "alpha": [0.2, 0.5, 0.8], "reduction": "none"}),
    ("multiclass", {}),
    ("multiclass", {"alpha": [0.2, 0.3, 0.5], "weight": [1.0, 2.0, 0.5], "ignore_index": 255}),
    ("multiclass", {"label_smoothing": 0.1, "reduction": "none"}),
    ("multiclass-probs", {"gamma": 1.5}),
]


@pytest.mark.parametrize("mode,kw", FOCAL_CASES, ids=lambda v: v if isinstance(v, str) else ",".join(v) or "default")
def test_focal_compiled_equals_torch_path(mode, kw):
    probs = mode.endswith("-probs")
    mode = mode.split("-")[0]
    x, t = _case(mode, ignore="ignore_index" in kw)
    if probs:
        t = torch.softmax(torch.randn(x.shape, generator=torch.Generator().manual_seed(1)), 1)
    if not kw.get("from_logits", True):
        x = torch.sigmoid(x)
    _close(*_both(S.focal_loss, x, t, mode, **kw))


REGION_CASES = [
    (S.dice_loss, "binary", {}),
    (S.dice_loss, "binary", {"ignore_index": 255, "per_image": True}),
    (S.jaccard_loss, "multilabel", {"from_logits": False}),
    (S.dice_loss, "multiclass", {}),
    (S.tversky_loss, "multiclass", {"ignore_index": 255, "weight": [1.0, 2.0, 0.5, 1, 1, 1, 1, 3], "classes": [1, 7]}),
    (S.dice_loss, "multiclass", {"from_logits": False, "ignore_index": 255, "reduction": "none"}),
    (S.generalized_dice_loss, "multiclass-probs", {}),
    (S.focal_tversky_loss, "multiclass", {"per_image": True, "log_loss": True}),
]


@pytest.mark.parametrize("fn,mode,kw", REGION_CASES,
                         ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", None) or ",".join(v))
def test_region_compiled_equals_torch_path(fn, mode, kw):
    probs = mode.endswith("-probs")
    mode = mode.split("-")[0]
    # 8 classes: softmax with class indices over fewer runs the blocked passes (see the last test)
    x, t = _case(mode, c=8, ignore="ignore_index" in kw)
    if probs:  # softmax with dense targets: a case the Triton kernels leave to the torch path
        t = torch.softmax(torch.randn(x.shape, generator=torch.Generator().manual_seed(1)), 1)
    if not kw.get("from_logits", True):
        x = torch.softmax(x, 1) if mode == "multiclass" else torch.sigmoid(x)
    _close(*_both(fn, x, t, mode, **kw))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    x, t = _case("multiclass", c=8, ignore=True)
    x = x.to(dtype)
    for fn in (S.focal_loss, S.dice_loss):
        eager, compiled = _both(fn, x, t, "multiclass", ignore_index=255)
        assert compiled[1].dtype == dtype and torch.isfinite(compiled[1]).all()
        _close(eager, compiled, rtol=1e-3, atol=1e-3)


def test_compiled_equals_oracle_float64():
    x, t = _case("multiclass", c=8, ignore=True, seed=3)
    x = x.double()
    S.set_cpu_kernels("inductor")
    kw = {"ignore_index": 255}
    for name, fn in (("focal", S.focal_loss), ("dice", S.dice_loss), ("tversky", S.tversky_loss)):
        got = fn(x, t, "multiclass", **kw)
        want = getattr(oracle, name)(x.numpy(), t.numpy(), "multiclass", **kw)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-9, err_msg=name)
    assert _inductor._state["broken"] is None


def test_saturated_logits_stay_finite():
    x, t = _case("binary")
    x = x.sign() * 1e4
    for fn, kw in ((S.focal_loss, {"gamma": 0.5}), (S.dice_loss, {})):
        eager, (loss, grad) = _both(fn, x, t, "binary", **kw)
        assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
        _close(eager, (loss, grad))


def test_auto_never_switches_paths():
    # "auto" compiles nothing with Inductor: a call's value and gradient are the same bits at every repetition (they
    # used to move by an ulp at the third call, when a compiled kernel took over), so gradcheck's reentrancy check
    # passes and two runs of a script agree whatever step they resumed at
    S.set_cpu_kernels("auto")
    for fn, mode in ((S.dice_loss, "binary"), (S.focal_loss, "multiclass"), (S.focal_loss, "binary")):
        x, t = _case(mode, shape=(7, 11))
        before = _inductor._state["compiled_calls"]
        runs = []
        for _ in range(4):
            xx = x.clone().requires_grad_(True)
            loss = fn(xx, t, mode)
            (grad,) = torch.autograd.grad(loss, xx)
            runs.append((loss, grad))
        assert _inductor._state["compiled_calls"] == before
        for loss, grad in runs[1:]:
            assert torch.equal(loss, runs[0][0]) and torch.equal(grad, runs[0][1])


@pytest.mark.parametrize("name", ["focal", "dice", "lovasz", "cross_entropy"])
def test_gradcheck_under_default_policy(name):
    # the reproduction: gradcheck (its reentrancy check runs the backward pass twice) failed on the focal
    # loss under "auto" once the third call switched to a compiled kernel
    from _losses import LOSSES

    S.set_cpu_kernels("auto")
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (2, 4, 5))
    assert torch.autograd.gradcheck(lambda z: LOSSES[name](z, t, "multiclass"), (x,))


def _build_fails(fn, **kw):
    from torch._inductor.exc import CppCompileError

    def run(*a):  # what Inductor raises where the C++ build fails
        raise CppCompileError(["c++"], "no C++ compiler found")
    return run


def _compile_refused(fn, **kw):  # torch.compile itself, on a Python it does not support
    raise RuntimeError("torch.compile is not supported on this Python")


@pytest.mark.parametrize("compile_,match", [(_build_fails, "CppCompileError: C.. compile error"),
                                            (_compile_refused, "not supported on this Python")])
def test_compiler_failure_warns_once_and_falls_back(monkeypatch, compile_, match):
    monkeypatch.setattr(_inductor, "_compiled", {})
    monkeypatch.setattr(torch, "compile", compile_)
    for fn, mode in ((S.focal_loss, "multiclass"), (S.dice_loss, "binary")):
        x, t = _case(mode)
        want = _run(fn, x, t, mode, "eager")
        with pytest.warns(RuntimeWarning, match=match):
            got = _run(fn, x, t, mode, "inductor")
        _close(want, got)
        # later calls run eagerly without a word (set_cpu_kernels would retry the compiler)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _close(want, _grad_of(fn, x, t, mode))
        assert _inductor._state["broken"] is not None


def test_inside_torch_compile():
    # under the caller's torch.compile nothing is compiled here for the region losses (the caller's compiler sees the
    # formulas); the focal pass is an operator whose CPU implementation may run the compiled kernel
    x, t = _case("multiclass")
    S.set_cpu_kernels("inductor")

    def f(x):
        return S.focal_loss(x, t, "multiclass") + S.dice_loss(x, t, "multiclass")

    want = _run(lambda a, b, m: f(a), x, t, "multiclass", "eager")
    got = _run(lambda a, b, m: torch.compile(f, backend="inductor", fullgraph=True)(a), x, t, "multiclass", "inductor")
    _close(want, got)


def test_policy_errors(monkeypatch):
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'inductor', 'eager'; got 'fast'"):
        S.set_cpu_kernels("fast")
    monkeypatch.setenv("SEGLOSSES_CPU_KERNELS", "yes")
    policy._state["mode"] = None
    with pytest.raises(ValueError, match="SEGLOSSES_CPU_KERNELS must be one of"):
        S.get_cpu_kernels()
    monkeypatch.setenv("SEGLOSSES_CPU_KERNELS", "inductor")
    policy._state["mode"] = None
    assert S.get_cpu_kernels() == "inductor"


def test_past_the_recompile_limit_calls_run_eagerly(monkeypatch):
    monkeypatch.setattr(_inductor, "RECOMPILE_LIMIT", 1)
    monkeypatch.setattr(_inductor, "_compiled", {})  # a fresh compiled function: no compilation cached yet
    monkeypatch.setattr(_inductor, "_uncompiled", set())
    torch._dynamo.reset()
    S.set_cpu_kernels("inductor")
    x, t = _case("binary", shape=(6, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning (nor any other)
        first = _grad_of(S.focal_loss, x, t, "binary", gamma=1.0)
        n = _inductor._state["compiled_calls"]
        second = _grad_of(S.focal_loss, x, t, "binary", gamma=3.0)  # a second compilation of the focal pass: refused
        assert _inductor._state["compiled_calls"] == n and len(_inductor._uncompiled) == 1
        again = _grad_of(S.focal_loss, x, t, "binary", gamma=1.0)  # the first one keeps its kernel
        assert _inductor._state["compiled_calls"] == n + 1
    assert _inductor._state["broken"] is None
    _close(first, again)
    _close(_run(S.focal_loss, x, t, "binary", "eager", gamma=3.0), second)


def test_few_classes_softmax_with_indices_stays_on_the_blocked_passes():
    # measured: with fewer than 8 classes the blocked passes (probabilities kept for the backward pass) are as fast
    x, t = _case("multiclass", c=4)
    S.set_cpu_kernels("inductor")
    before = _inductor._state["compiled_calls"]
    _grad_of(S.dice_loss, x, t, "multiclass")
    assert _inductor._state["compiled_calls"] == before
    _grad_of(S.dice_loss, torch.softmax(x, 1), t, "multiclass", from_logits=False)  # probabilities: compiled
    assert _inductor._state["compiled_calls"] == before + 2


@pytest.mark.parametrize("fn", [S.dice_loss, S.focal_loss], ids=lambda f: f.__name__)
def test_class_index_out_of_range_is_one_error_under_every_policy(fn):
    # invalid input: the front end raises the same IndexError under every policy before a kernel runs (before, eager
    # raised torch's RuntimeError, the C kernels an IndexError and Inductor's kernels left the pixels out)
    x, t = _case("multiclass", c=8)
    t[0, 0, :5] = 255  # neither a class nor ignore_index
    t[1, 3, 2] = -3
    messages = []
    for mode in ("eager", "inductor"):
        S.set_cpu_kernels(mode)
        with pytest.raises(IndexError, match=r"`target` holds class index (255|-3) outside \[0, 8\) in 6 of") as e:
            _grad_of(fn, x, t, "multiclass")
        messages.append(str(e.value))
    assert messages[0] == messages[1]


def test_compiled_region_pass_leaves_out_of_range_labels_out():
    # called directly (as under an outer torch.compile, where the front end cannot check), the compiled statistics
    # treat such labels as ignored rather than checking them inside a parallel loop (a failed check aborts)
    from seglosses.kernels import region
    from seglosses.kernels.dispatch import INDUCTOR, RegionSpec

    x, t = _case("multiclass", c=8)
    x, t = x.reshape(2, 8, -1), t.reshape(2, -1)
    t[0, :5] = 255
    t[1, 7] = -3
    S.set_cpu_kernels("inductor")
    got = INDUCTOR.region_sums(x, t, RegionSpec("softmax", True, None))
    want = region.sums_whole(x, torch.where((t < 0) | (t >= 8), 255, t), "softmax", True, 255)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
