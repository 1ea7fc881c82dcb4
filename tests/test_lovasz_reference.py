"""Lovasz losses equal the authors' reference implementation (tests/reference_lovasz.py), values and gradients."""

import pytest
import torch

import reference_lovasz as ref
import seglosses as S
from seglosses.kernels import inductor as _inductor
from seglosses.kernels import policy
from seglosses.kernels import native as _native
from seglosses.kernels import lovasz as L


@pytest.fixture(params=["torch.sort", "key sort", "chunks", "C kernels"], autouse=True)
def sort_path(request, monkeypatch):
    """Every test runs with both CPU sorts of the rows: torch.sort, and the NumPy sort of packed keys that float32 rows
    of KEY_SORT_MIN elements or more take (forced here on the tests' small rows); with the rows sorted a few at a
    time, as on CUDA (SORT_CHUNK elements: here a row or two); and with the C kernels of seglosses.kernels.native, which
    take Lovasz-softmax with class indices (float32) under a compiled-kernels policy (the suite's is "eager")."""
    if request.param == "C kernels":
        monkeypatch.setitem(policy._state, "mode", "inductor")
        monkeypatch.setitem(_inductor._state, "broken", RuntimeError("no Inductor here"))
        if _native.library() is None:
            pytest.fail(f"building the C kernels failed: {_native._state['error']!r}")
    monkeypatch.setattr(L, "KEY_SORT_MIN", 0 if request.param == "key sort" else 10 ** 12)
    if request.param == "chunks":
        monkeypatch.setattr(L, "CHUNK_ON_CPU", True)
        monkeypatch.setattr(L, "SORT_CHUNK", 64)
        monkeypatch.setattr(L, "SORT_PARTS", 10 ** 6)
    return request.param


def _case(seed, n=3, c=4, h=5, w=6, ignore=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g) * 2
    t = torch.randint(0, c, (n, h, w), generator=g)
    t[1] = t[1].clamp(max=1)  # image 1 has only classes 0 and 1: "present" matters per image
    if ignore:
        t[torch.rand(t.shape, generator=g) < 0.25] = 255
    return x, t


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("classes", ["present", "all", [3, 1]])
def test_lovasz_softmax_equals_reference(seed, per_image, ignore, classes, sort_path):
    x, t = _case(seed, ignore=ignore)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    calls = _native._state["calls"]
    ours = S.lovasz_loss(xa, t, "multiclass", per_image=per_image, classes=classes,
                         ignore_index=255 if ignore else None)
    assert _native._state["calls"] == calls + (sort_path == "C kernels")
    theirs = ref.lovasz_softmax(torch.softmax(xb, 1), t, classes=classes, per_image=per_image,
                                ignore=255 if ignore else None)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_lovasz_hinge_equals_reference(seed, per_image, ignore):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 1, 5, 6, generator=g) * 2
    y = (torch.rand(3, 1, 5, 6, generator=g) > 0.6).float()
    y[2] = 0  # an image without foreground
    if ignore:
        y[torch.rand(y.shape, generator=g) < 0.25] = 255
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours = S.lovasz_loss(xa, y, "binary", per_image=per_image, ignore_index=255 if ignore else None)
    theirs = ref.lovasz_hinge(xb.squeeze(1), y.squeeze(1), per_image=per_image, ignore=255 if ignore else None)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-6)


def test_lovasz_multilabel_is_mean_of_per_class_hinge():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 3, 4, 5, generator=g)
    y = (torch.rand(2, 3, 4, 5, generator=g) > 0.5).float()
    per_class = [ref.lovasz_hinge(x[:, c].contiguous(), y[:, c].contiguous(), per_image=False) for c in range(3)]
    torch.testing.assert_close(S.lovasz_loss(x, y, "multilabel"), torch.stack(per_class).mean())


@pytest.mark.parametrize("shape", [(1, 1, 70000), (3, 4, 20000), (2, 1, 1)])
def test_key_sort_equals_stable_torch_sort(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g) * 1e3
    flat = x.view(-1)
    flat[::7] = float("-inf")  # ignored pixels
    flat[::5] = 1.5  # ties
    flat[::11] = torch.finfo(torch.float32).max
    flat[::13] = torch.finfo(torch.float32).tiny
    flat[::17] = 0.0
    flat[::19] = float("nan")  # NaN logits: both signs of NaN sort first, as in torch.sort
    flat[::23] = -float("nan")
    want = torch.sort(x.clone(), stable=True, dim=-1, descending=True)
    values, perm = L._sort_keys_cpu(x.clone(), block=4096)  # several blocks
    assert perm.dtype == torch.int64 and perm.shape == x.shape
    torch.testing.assert_close(values, want.values, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(perm, want.indices)


def test_key_sort_large_rows_equal_reference(monkeypatch, sort_path):
    # rows above the default KEY_SORT_MIN: the path float32 training batches take
    monkeypatch.setattr(L, "KEY_SORT_MIN", 1 << 15)
    monkeypatch.setattr(L, "CHUNK_ON_CPU", False)
    calls = []
    real = L._sort_keys_cpu
    monkeypatch.setattr(L, "_sort_keys_cpu", lambda rows: calls.append(rows.numel()) or real(rows))
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 96, 96, generator=g) * 2
    t = torch.randint(0, 4, (2, 96, 96), generator=g)
    t[0, :10] = 255
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours = S.lovasz_loss(xa, t, "multiclass", ignore_index=255)
    theirs = ref.lovasz_softmax(torch.softmax(xb, 1), t, ignore=255)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-7)
    # (the C kernels sort their own keys with NumPy)
    assert calls == ([] if sort_path == "C kernels" else [4 * 2 * 96 * 96])
