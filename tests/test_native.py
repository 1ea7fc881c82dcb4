"""The hand-written C kernels of the softmax region statistics (seglosses.kernels.native).

Each case runs the loss twice, with the blocked torch passes (policy "eager", checked against the float64 oracle by
the rest of the suite) and with the C kernels (policy "inductor"), checks that the kernels really ran and gives the
same loss and gradient; a few cases are also checked against the oracle directly. The library is built once (about a
second) and cached, so these tests are not slow.
"""

import warnings

import numpy as np
import pytest
import torch

import seglosses as S
from seglosses.kernels import inductor as _inductor
from seglosses.kernels import policy
from seglosses.kernels import native as _native

import oracle


@pytest.fixture(autouse=True)
def _policy(monkeypatch):
    # set_cpu_kernels also resets these: restored after each test
    monkeypatch.setitem(policy._state, "mode", policy._state["mode"])
    monkeypatch.setitem(_inductor._state, "broken", _inductor._state["broken"])


@pytest.fixture(scope="module", autouse=True)
def _built():
    before = policy._state["mode"]
    if _native.library() is None:
        pytest.fail(f"building the C kernels failed: {_native._state['error']!r}")
    yield
    policy._state["mode"] = before


def _case(n=2, c=8, shape=(9, 10), ignore=None, dtype=torch.int64, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c, *shape), generator=g) * scale
    t = torch.randint(0, c, (n, *shape), generator=g)
    if ignore is not None:
        t.view(-1)[::5] = ignore
    return x, t.to(dtype)


def _grad_of(fn, x, t, **kw):
    xx = x.detach().clone().requires_grad_(True)
    loss = fn(xx, t, "multiclass", **kw)
    (grad,) = torch.autograd.grad(loss.sum(), xx)
    return loss.detach(), grad


def _both(fn, x, t, **kw):
    S.set_cpu_kernels("eager")
    before = _native._state["calls"]
    eager = _grad_of(fn, x, t, **kw)
    assert _native._state["calls"] == before
    S.set_cpu_kernels("inductor")
    native = _grad_of(fn, x, t, **kw)
    # region losses: forward and backward both run the C kernels; Lovasz: the forward (which keeps the derivative)
    calls = 1 if fn is S.lovasz_loss else 2
    assert _native._state["calls"] == before + calls, "the C kernels did not run"
    return eager, native


def _close(a, b, rtol=1e-5, atol=1e-6):
    torch.testing.assert_close(a[0], b[0], rtol=rtol, atol=atol)
    torch.testing.assert_close(a[1], b[1], rtol=rtol, atol=atol * 0.1)


#: The overlap losses (the region family's losses taking ``log_loss``, which the sweep below sets), from the registry.
LOSSES = [getattr(S, row.function) for row in S._registry.LOSSES
          if row.family == "region" and "log_loss" in S._registry.options(row)]


@pytest.mark.parametrize("fn", LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kw", [{}, {"per_image": True, "reduction": "none"},
                                {"ignore_index": 255, "weight": [1, 2, 0.5, 1, 1, 1, 1, 3], "classes": [1, 2, 7]},
                                {"log_loss": True, "ignore_index": 0}],
                         ids=["default", "per_image", "ignore,weight,classes", "log,ignore0"])
def test_native_equals_torch_path(fn, kw):
    if fn is S.generalized_dice_loss:
        kw = {k: v for k, v in kw.items() if k != "weight"}
    x, t = _case(ignore=kw.get("ignore_index"))
    _close(*_both(fn, x, t, **kw))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8],
                         ids=lambda d: str(d).split(".")[1])
def test_integer_targets_read_as_they_are(dtype):
    ignore = 100 if dtype == torch.int8 else 255
    x, t = _case(ignore=ignore, dtype=dtype)
    eager, native = _both(S.dice_loss, x, t, ignore_index=ignore, per_image=True)
    _close(eager, native)
    _close(eager, _grad_of(S.dice_loss, x, t.long(), ignore_index=ignore, per_image=True))


@pytest.mark.parametrize("n,c,shape", [(1, 2, (5, 3)), (1, 2, (1, 1)), (3, 3, (17,)), (2, 5, (33, 31)),
                                       (1, 150, (24, 24)), (2, 4, (6, 7, 8)), (1, 2, (600, 7))],
                         ids=str)
def test_shapes_across_blocks_and_classes(n, c, shape):
    # pixels not a multiple of the block (or the vector width), one pixel, 150 classes (smaller blocks), 3-D
    x, t = _case(n=n, c=c, shape=shape, ignore=-1)
    _close(*_both(S.dice_loss, x, t, ignore_index=-1, per_image=True, reduction="none"))
    _close(*_both(S.tversky_loss, x, t, ignore_index=-1))


def test_native_equals_oracle():
    # against the float64 oracle directly (float32 kernels: float32 tolerances)
    x, t = _case(c=6, shape=(20, 21), ignore=255, seed=3)
    S.set_cpu_kernels("inductor")
    before = _native._state["calls"]
    for name, fn, kw in (("dice", S.dice_loss, {}), ("tversky", S.tversky_loss, {"per_image": True}),
                         ("generalized_dice", S.generalized_dice_loss, {"reduction": "sum"})):
        got = fn(x, t, "multiclass", ignore_index=255, **kw)
        want = getattr(oracle, name)(x.double().numpy(), t.numpy(), "multiclass", ignore_index=255, **kw)
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-6, atol=1e-7, err_msg=name)
    assert _native._state["calls"] == before + 3


def test_gradient_equals_float64_autograd():
    # the backward kernel against torch's float64 autograd of the same loss (softmax and sums in float64)
    x, t = _case(c=5, shape=(13, 14), ignore=255, seed=4)
    S.set_cpu_kernels("inductor")
    before = _native._state["calls"]
    _, got = _grad_of(S.tversky_loss, x, t, ignore_index=255, alpha=0.2, beta=0.8)
    assert _native._state["calls"] == before + 2
    S.set_cpu_kernels("eager")
    _, want = _grad_of(S.tversky_loss, x.double(), t, ignore_index=255, alpha=0.2, beta=0.8)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-9)


def test_saturated_and_infinite_logits():
    x, t = _case(c=4, ignore=255)
    x = x.sign() * 1e4
    x[0, 1] = -float("inf")  # a class ruled out: p = 0 there, no NaN
    x[1, :, 0, 0] = 3e38  # all classes at the largest float: equal probabilities
    eager, native = _both(S.dice_loss, x, t, ignore_index=255, per_image=True)
    assert torch.isfinite(native[0]).all() and torch.isfinite(native[1]).all()
    _close(eager, native)


def test_ignored_pixels_get_no_gradient():
    x, t = _case(ignore=255)
    _, grad = _both(S.jaccard_loss, x, t, ignore_index=255)[1]
    assert (grad.movedim(1, -1)[t == 255] == 0).all()
    assert (grad.movedim(1, -1)[t != 255] != 0).any()


@pytest.mark.parametrize("ignore", [None, 255])
def test_class_index_out_of_range_raises(ignore):
    # labels outside [0, C) that are not ignore_index (invalid input, seglosses.validate reports them): the front end
    # raises an IndexError before any kernel runs, under either policy
    x, t = _case(ignore=ignore)
    t[0, 0, :5] = 200
    t[1, 3, 2] = -3
    for mode in ("eager", "inductor"):
        S.set_cpu_kernels(mode)
        before = _native._state["calls"]
        with pytest.raises(IndexError, match=r"outside \[0, 8\)"):
            _grad_of(S.dice_loss, x, t, ignore_index=ignore)
        assert _native._state["calls"] == before
    # the kernels themselves, reached without the front end, count them, treat them as ignored and return 2 (an
    # IndexError here); tests/test_fuzz_native.py checks their outputs then equal those of ignored pixels
    xf, tf = x.flatten(2), t.flatten(1)
    with pytest.raises(IndexError, match=rf"class indices outside \[0, 8\) that are not ignore_index \({ignore}\)"):
        _native.softmax_index_sums(xf, tf, ignore)
    with pytest.raises(IndexError, match=r"class indices outside \[0, 8\)"):
        _native.softmax_index_grad(xf, tf, ignore, torch.ones(2, 8), torch.ones(2, 8))
    t[t == 200] = ignore if ignore is not None else 0
    t[t == -3] = 1
    _close(*_both(S.dice_loss, x, t, ignore_index=ignore))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8],
                         ids=lambda d: str(d).split(".")[1])
def test_huge_labels_are_ignored_by_the_kernels(dtype):
    # labels far outside [0, C) (the dtype's extremes; 2^32 + 1, whose low 32 bits are class 1) sent to the kernels
    # directly: code 2, and sums and gradient those of the same pixels ignored (the torch passes), 0 there exactly
    info = torch.iinfo(dtype)
    bad = [v for v in (info.min, info.max, 2 ** 32 + 1, 2 ** 16 + 1, -1, 8) if info.min <= v <= info.max]
    x, t = _case(n=2, c=8, shape=(37,), dtype=torch.int64, seed=5)
    t.view(-1)[::4] = torch.tensor(bad * 100)[: t.view(-1)[::4].numel()]
    t = t.to(dtype)
    gone = (t.long() < 0) | (t.long() >= 8)
    x[:, 3][gone] = float("nan")  # at the pixels of labels out of range: dropped with them
    lib = _native.library()
    name = _native.TARGET_TYPES[dtype]
    out = torch.full((3, 2, 8), float("nan"))
    a, m = torch.randn(2, 2, 8, generator=torch.Generator().manual_seed(1)).unbind(0)
    grad = torch.full_like(x, float("nan"))
    sums = getattr(lib, f"segl_softmax_index_sums_{name}")
    gradient = getattr(lib, f"segl_softmax_index_grad_{name}")
    assert sums(x.data_ptr(), t.data_ptr(), 2, 8, 37, 0, 0, out[0].data_ptr(), out[1].data_ptr(), out[2].data_ptr(),
                None, 0, 2) == 2
    assert gradient(x.data_ptr(), t.data_ptr(), 2, 8, 37, 0, 0, a.data_ptr(), m.data_ptr(), grad.data_ptr(), None, 0,
                    2) == 2
    from seglosses.kernels.ops import region_stats

    sentinel = -(2 ** 40)
    leaf = x.clone().requires_grad_(True)
    S.set_cpu_kernels("eager")
    tp, fp, _, g = region_stats(leaf, torch.where(gone, sentinel, t.long()), act="softmax", index=True,
                                ignore_index=sentinel, per_image=True)
    (want,) = torch.autograd.grad((a * (tp + fp) + m * tp).sum(), leaf)
    torch.testing.assert_close(out, torch.stack([tp + fp, tp, g]).detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, want, rtol=1e-5, atol=1e-6)
    assert (grad.movedim(1, -1)[gone] == 0).all()


def test_nonfinite_logits_at_ignored_pixels_add_nothing():
    # NaN, inf and -inf logits at ignored pixels: sums, loss and gradient as with those logits at 0, gradient exactly
    # 0 there; the same logits at a valid pixel give NaN (never hidden)
    x, t = _case(n=2, c=6, shape=(40, 13), ignore=255, seed=7)  # 520 pixels: a block of 512 and a tail
    ign = t == 255
    vals = torch.tensor([float("nan"), float("inf"), -float("inf")])
    bad = vals[torch.randint(0, 3, x.shape, generator=torch.Generator().manual_seed(2))]
    xn = torch.where(ign.unsqueeze(1), bad, x)
    clean = torch.where(ign.unsqueeze(1), 0.0, x)
    for fn, kw in ((S.dice_loss, {"per_image": True, "reduction": "none"}), (S.tversky_loss, {}),
                   (S.lovasz_loss, {"per_image": True})):
        native = _both(fn, xn, t, ignore_index=255, **kw)[1]
        S.set_cpu_kernels("eager")
        want = _grad_of(fn, clean, t, ignore_index=255, **kw)
        assert torch.isfinite(native[0]).all() and torch.isfinite(native[1]).all()
        _close(native, want)
        assert (native[1].movedim(1, -1)[ign] == 0).all()
    # at a valid pixel: NaN
    xv = x.clone()
    i, j = (~ign[0]).nonzero()[0].tolist()
    xv[0, 2, i, j] = float("nan")
    loss, _ = _both(S.dice_loss, xv, t, ignore_index=255, per_image=True, reduction="none")[1]
    assert torch.isnan(loss[0]).all() and torch.isfinite(loss[1]).all()


def test_lovasz_rows_drop_nonfinite_probabilities_and_labels_out_of_range():
    # the rows kernels by themselves (the front end zeroes ignored logits first): NaN/inf probabilities at ignored
    # pixels and int16 labels outside [0, C) at valid ones count as ignored pixels (sorted last, 0 derivative)
    from seglosses.kernels import ops
    from seglosses.kernels.dispatch import LovaszSpec

    g = torch.Generator().manual_seed(3)
    n, c, s = 2, 5, 300
    q = torch.softmax(torch.randn(n, c, s, generator=g) * 2, 1)
    label = torch.randint(0, c, (n, 1, s), generator=g, dtype=torch.int64)
    ign = torch.rand(n, s, generator=g) < 0.2
    out = (torch.rand(n, s, generator=g) < 0.1) & ~ign
    label = torch.where(ign.unsqueeze(1), -1, label)
    label = torch.where(out.unsqueeze(1), torch.tensor([32767, -32768, 5, -2])[torch.randint(0, 4, (n, 1, s),
                                                                                            generator=g)], label)
    label = label.to(torch.int16)
    qn = torch.where(ign.unsqueeze(1), torch.tensor(float("nan")), q)
    qn[:, 1][ign] = float("inf")
    ref_label = torch.where(out.unsqueeze(1), -1, label)
    for per_image in (False, True):
        for cols in ((0, 1, 2, 3, 4), (4, 1)):
            S.set_cpu_kernels("inductor")
            before = _native._state["calls"]
            got = ops.rows(qn.clone(), label, ~ign, LovaszSpec(True, True, tuple(cols), per_image))
            assert _native._state["calls"] == before + 1
            S.set_cpu_kernels("eager")
            want = ops.rows(q.clone(), ref_label, ~(ign | out), LovaszSpec(True, True, tuple(cols), per_image))
            for a, b in zip(got, want):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
            assert (got[2].movedim(1, -1)[ign | out] == 0).all()


def test_lovasz_kernels_guard_their_indices():
    # classes outside [0, C) return 2 before anything is read or written; keys whose positions lie outside their
    # row are skipped (2): nothing out of bounds (the AddressSanitizer run, benchmarks/asan_native.sh, checks reads)
    pytest.importorskip("hypothesis")  # (imported by the fuzz cases' module)
    import _native_fuzz_cases

    assert _native_fuzz_cases.raw_lovasz_guards() == []
    q = torch.rand(1, 3, 4)
    with pytest.raises(IndexError, match=r"Lovasz classes \[0, 3\] outside \[0, 3\)"):
        _native.lovasz_index_rows(q, torch.zeros(1, 4, dtype=torch.int16), None, (0, 3), True, lambda k: None)


def test_thread_counts_agree():
    x, t = _case(n=3, shape=(64, 65))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _both(S.dice_loss, x, t, per_image=True)[1]
        torch.set_num_threads(max(threads, 2))
        two = _both(S.dice_loss, x, t, per_image=True)[1]
    finally:
        torch.set_num_threads(threads)
    _close(one, two)


def test_other_inputs_take_the_other_paths(monkeypatch):
    x, t = _case()
    S.set_cpu_kernels("inductor")
    monkeypatch.setitem(_inductor._state, "broken", RuntimeError("Inductor off"))  # (no compile: fast; see below)
    before = _native._state["calls"]
    S.dice_loss(x.double(), t, "multiclass")  # float64: the blocked passes
    S.dice_loss(x.to(torch.bfloat16), t, "multiclass")
    S.dice_loss(x.contiguous(memory_format=torch.channels_last), t, "multiclass")  # strided logits
    S.dice_loss(torch.softmax(x, 1), t, "multiclass", from_logits=False)  # probabilities
    S.dice_loss(x, torch.softmax(x, 1), "multiclass")  # dense targets
    torch.compile(lambda a: S.dice_loss(a, t, "multiclass"), backend="eager", fullgraph=True)(x)
    assert _native._state["calls"] == before
    S.dice_loss(x, t, "multiclass")  # the C kernels do not depend on Inductor
    assert _native._state["calls"] == before + 1


def test_policy_auto_and_eager(monkeypatch):
    # "auto" (the default) and "inductor": the kernels serve every call they apply to, from the first one (which
    # loads them, from the cache); "eager": never
    x, t = _case(shape=(5, 6))
    monkeypatch.setitem(_native._state, "lib", None)  # not loaded yet in this process
    for mode in ("auto", "inductor"):
        S.set_cpu_kernels(mode)
        before = _native._state["calls"]
        _grad_of(S.dice_loss, x, t)
        _grad_of(S.dice_loss, *_case(shape=(4, 4)))  # any shape
        assert _native._state["calls"] == before + 4
    S.set_cpu_kernels("eager")
    before = _native._state["calls"]
    _grad_of(S.dice_loss, x, t)
    assert _native._state["calls"] == before


def test_native_lib_variable_loads_the_given_library(monkeypatch, tmp_path):
    # SEGLOSSES_NATIVE_LIB: that library, no build (the AddressSanitizer run loads its own build this way)
    path = _native._build(_native._compiler())
    monkeypatch.setenv("SEGLOSSES_NATIVE_LIB", str(path))
    monkeypatch.setenv("SEGLOSSES_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_native, "_compiler", lambda: pytest.fail("built instead of loading"))
    monkeypatch.setattr(_native, "_state", {"lib": None, "error": None, "calls": 0})
    assert _native.library()._name == str(path)
    assert list(tmp_path.iterdir()) == []
    x, t = _case(c=4)
    _close(*_both(S.dice_loss, x, t))
    monkeypatch.setattr(_native, "_state", {"lib": None, "error": None, "calls": 0})
    monkeypatch.setenv("SEGLOSSES_NATIVE_LIB", str(tmp_path / "missing.so"))
    with pytest.warns(RuntimeWarning, match="missing.so"):
        assert _native.library() is None


def test_build_is_cached_per_source_and_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLOSSES_CACHE_DIR", str(tmp_path))
    cc = _native._compiler()
    path = _native._build(cc)
    assert path.parent == tmp_path and path.exists()
    mtime = path.stat().st_mtime_ns
    assert _native._build(cc) == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_build_failure_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.delenv("SEGLOSSES_NATIVE_LIB", raising=False)  # (a build, not a given library)
    monkeypatch.setenv("SEGLOSSES_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(_native.shutil, "which", lambda name: None)
    monkeypatch.setattr(_native, "_state", {"lib": None, "error": None, "calls": 0})
    x, t = _case(c=4)  # (fewer than 8 classes: the blocked passes then, not Inductor, which would compile)
    S.set_cpu_kernels("eager")
    want = _grad_of(S.dice_loss, x, t)
    S.set_cpu_kernels("inductor")
    with pytest.warns(RuntimeWarning, match="building the C kernels failed .*no C compiler found"):
        got = _grad_of(S.dice_loss, x, t)
    _close(want, got)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _close(want, _grad_of(S.dice_loss, x, t))
    assert _native._state["calls"] == 0
    S.set_cpu_kernels("inductor")  # an explicit choice tries again
    with pytest.warns(RuntimeWarning, match="building the C kernels failed"):
        _close(want, _grad_of(S.dice_loss, x, t))


def test_missing_source_warns_and_falls_back(monkeypatch, tmp_path):
    # a copy of the package without kernels.c imports, and runs the other paths after one warning
    monkeypatch.delenv("SEGLOSSES_NATIVE_LIB", raising=False)  # (a build, not a given library)
    monkeypatch.setenv("SEGLOSSES_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_native, "_SOURCE_BYTES", None)
    monkeypatch.setattr(_native, "_SOURCE_ERROR", FileNotFoundError("kernels.c"))
    monkeypatch.setattr(_native, "_state", {"lib": None, "error": None, "calls": 0})
    x, t = _case(c=4)
    S.set_cpu_kernels("eager")
    want = _grad_of(S.dice_loss, x, t)
    S.set_cpu_kernels("inductor")
    with pytest.warns(RuntimeWarning, match="the kernels' source is missing"):
        _close(want, _grad_of(S.dice_loss, x, t))
    assert _native._state["calls"] == 0


def test_compiler_errors_are_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGLOSSES_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_native, "_SOURCE_BYTES", b"this is not C\n")
    with pytest.raises(RuntimeError, match="the C compiler failed: -O3 -march=native"):
        _native._build(_native._compiler())
    assert list(tmp_path.iterdir()) == []  # no library, no temporary left


def test_the_library_matches_the_source_read_at_import(monkeypatch, tmp_path):
    # the source on disk changing under a running process (an upgrade) builds nothing this module does not describe
    monkeypatch.setenv("SEGLOSSES_CACHE_DIR", str(tmp_path))
    cc = _native._compiler()
    path = _native._build(cc)
    monkeypatch.setattr(_native, "SOURCE", tmp_path / "changed.c")
    (tmp_path / "changed.c").write_text("int changed;\n")
    assert _native._build(cc) == path


def test_lovasz_softmax_runs_the_kernels_where_they_apply(monkeypatch):
    # values and gradients against the authors' implementation: tests/test_lovasz_reference.py ("C kernels")
    x, t = _case(c=5, ignore=255)
    S.set_cpu_kernels("inductor")
    monkeypatch.setitem(_inductor._state, "broken", RuntimeError("Inductor off"))
    before = _native._state["calls"]
    for per_image in (False, True):
        S.lovasz_loss(x, t, "multiclass", ignore_index=255, per_image=per_image)
    assert _native._state["calls"] == before + 2
    t = torch.where(t == 255, 0, t)  # (without ignore_index, 255 is a label out of range: an IndexError)
    S.lovasz_loss(x.double(), t, "multiclass")  # float64
    S.lovasz_loss(x, torch.softmax(x, 1), "multiclass")  # dense targets
    S.lovasz_loss(x[:, :1], (t > 2).float().unsqueeze(1), "binary")  # the hinge
    S.set_cpu_kernels("eager")
    S.lovasz_loss(x, t, "multiclass")
    assert _native._state["calls"] == before + 2
    # under torch.compile the rows are an operator (torch.library) whose CPU implementation runs them too
    S.set_cpu_kernels("inductor")
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    got = torch.compile(lambda a: S.lovasz_loss(a, t, "multiclass"), backend="eager", fullgraph=True)(xa)
    assert _native._state["calls"] == before + 3
    S.set_cpu_kernels("eager")
    want = S.lovasz_loss(xb, t, "multiclass")
    got.backward()
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0, 4)], ids=str)
@pytest.mark.parametrize("fn", [S.dice_loss, S.lovasz_loss], ids=lambda f: f.__name__)
def test_empty_inputs(fn, shape):
    x = torch.randn(shape)
    t = torch.randint(0, 3, (shape[0], *shape[2:]))
    for per_image in (False, True):
        _close(*_both(fn, x, t, per_image=per_image))


def test_lovasz_nan_logits_and_negative_labels():
    # a NaN logit at a valid pixel makes the loss NaN (not hidden), as in the torch path; labels < 0 without
    # ignore_index raise an IndexError in the front end under either policy (only ignore_index leaves pixels out)
    x, t = _case(c=4, shape=(6, 7))
    for kw in ({}, {"per_image": True}, {"ignore_index": 2}):
        _close(*_both(S.lovasz_loss, x, t, **kw))
    tn = t.clone()
    tn[0, 0, :3] = -5
    for mode in ("eager", "inductor"):
        S.set_cpu_kernels(mode)
        with pytest.raises(IndexError, match=r"outside \[0, 4\)"):
            S.lovasz_loss(x, tn, "multiclass")
    x[1, 2, 3, 3] = float("nan")
    S.set_cpu_kernels("inductor")
    loss, grad = _grad_of(S.lovasz_loss, x, t, per_image=True, reduction="none")
    S.set_cpu_kernels("eager")
    want_loss, want_grad = _grad_of(S.lovasz_loss, x, t, per_image=True, reduction="none")
    assert torch.isnan(loss[1]).any() and torch.isfinite(loss[0]).all()
    torch.testing.assert_close(loss, want_loss, equal_nan=True)
    torch.testing.assert_close(grad, want_grad, equal_nan=True)
