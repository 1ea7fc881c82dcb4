"""seglosses.distance: the torch EDT equals SciPy's bitwise (unit spacing) or to 1e-12 (spacing); the boundary-loss
maps equal direct NumPy/SciPy implementations of the references (Kervadec's ``one_hot2dist``, MONAI's
``HausdorffDTLoss`` field); per-class maps equal per-class calls; bad arguments raise naming the argument."""

import math
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

from seglosses import distance as D
from seglosses.distance import boundary_distance, distance_maps, edt, signed_distance

# ---------------------------------------------------------------------------------------------------------------
# references, straight from the definitions (SciPy per slice)
# ---------------------------------------------------------------------------------------------------------------


def slices(m, ndim):
    return m.reshape(-1, *m.shape[m.ndim - ndim:])


def ref_edt(m, ndim, sampling=None):
    """SciPy per slice; inf on slices without a False element (where SciPy's numbers mean nothing)."""
    out = np.stack([np.full(s.shape, np.inf) if s.all() else ndimage.distance_transform_edt(s, sampling=sampling)
                    for s in slices(m, ndim)])
    return out.reshape(m.shape)


def one_hot2dist(posmask, sampling=None):
    """Kervadec et al.'s ``one_hot2dist`` for one mask; 0 where the mask is empty, and (here) where it is full."""
    if not posmask.any() or posmask.all():
        return np.zeros(posmask.shape)
    negmask = ~posmask
    return (ndimage.distance_transform_edt(negmask, sampling=sampling) * negmask
            - (ndimage.distance_transform_edt(posmask, sampling=sampling) - 1) * posmask)


def monai_field(fg, sampling=None):
    """MONAI's ``HausdorffDTLoss.distance_field`` for one mask."""
    if fg.any() and not fg.all():
        return (ndimage.distance_transform_edt(fg, sampling=sampling)
                + ndimage.distance_transform_edt(~fg, sampling=sampling))
    return np.zeros(fg.shape)


def per_slice(fn, m, ndim, sampling=None):
    return np.stack([fn(s, sampling) for s in slices(m, ndim)]).reshape(m.shape)


def random_masks(shape, ndim, density, seed):
    """True with probability ``density``, different per slice; every slice keeps at least one False element."""
    rng = np.random.default_rng(seed)
    m = rng.random(shape) < density
    flat = slices(m, ndim).reshape(-1, math.prod(shape[len(shape) - ndim:]))
    flat[np.arange(len(flat)), rng.integers(0, flat.shape[1], len(flat))] = False
    return m


CASES = [  # (shape, ndim)
    ((3, 2, 17, 23), 2),
    ((2, 2, 9, 11, 13), 3),
    ((2, 7, 1, 5), 3),
    ((4, 1, 13), 2),
    ((3, 13, 1), 2),
    ((5, 31), 1),
    ((40, 33), 2),
    ((6, 5, 4), 3),
]
DENSITIES = [0.3, 0.9, 0.995, 1.0]  # 1.0: a single False element per slice (largest distances)


@pytest.mark.parametrize("shape,ndim", CASES)
@pytest.mark.parametrize("density", DENSITIES)
def test_torch_equals_scipy_exactly(shape, ndim, density):
    m = random_masks(shape, ndim, density, seed=hash((shape, density)) % 2**32)
    ref = ref_edt(m, ndim)
    np.testing.assert_array_equal(edt(torch.from_numpy(m), ndim=ndim, backend="torch").numpy(), ref)
    np.testing.assert_array_equal(edt(m, ndim=ndim, backend="scipy"), ref)


def test_sparse_true_pixels_and_default_ndim():
    m = np.zeros((2, 3, 32, 29), dtype=bool)
    rng = np.random.default_rng(1)
    m[rng.integers(0, 2, 20), rng.integers(0, 3, 20), rng.integers(0, 32, 20), rng.integers(0, 29, 20)] = True
    np.testing.assert_array_equal(edt(torch.from_numpy(m), backend="torch").numpy(), ref_edt(m, 2))  # (N, C, H, W)
    v = random_masks((1, 2, 8, 9, 10), 3, 0.97, seed=2)
    np.testing.assert_array_equal(edt(torch.from_numpy(v), backend="torch").numpy(), ref_edt(v, 3))  # (N, C, D, H, W)
    w = random_masks((8, 9, 10), 3, 0.97, seed=3)
    np.testing.assert_array_equal(edt(torch.from_numpy(w), backend="torch").numpy(), ref_edt(w, 3))  # one volume


def test_large_slice_is_exact_and_blocked(monkeypatch):
    # small blocks force the blocking over lines, trailing positions and output positions
    m = random_masks((2, 40, 70), 2, 0.99, seed=4)
    ref = ref_edt(m, 2)
    for block in (2**19, 3000, 50):
        monkeypatch.setattr(D, "_BLOCK_CPU", block)
        np.testing.assert_array_equal(edt(m, ndim=2, backend="torch"), ref)
    v = random_masks((2, 6, 7, 8), 3, 0.98, seed=5)
    monkeypatch.setattr(D, "_BLOCK_CPU", 100)
    np.testing.assert_array_equal(edt(v, ndim=3, backend="torch"), ref_edt(v, 3))


def test_int64_path(monkeypatch):
    m = random_masks((3, 20, 21), 2, 0.99, seed=6)
    monkeypatch.setattr(D, "_INT32_BOUND", 10)
    np.testing.assert_array_equal(edt(m, ndim=2, backend="torch"), ref_edt(m, 2))


def test_empty_and_full_slices():
    m = np.zeros((2, 3, 5, 6), dtype=bool)
    m[0, 1] = True  # a full slice
    m[1, 2, 2, 3] = True
    for backend in ("torch", "scipy"):
        out = edt(m, backend=backend)
        assert np.isinf(out[0, 1]).all()
        np.testing.assert_array_equal(np.delete(out.reshape(6, 30), 1, axis=0)[:-1], 0)
        assert out[1, 2, 2, 3] == 1 and np.count_nonzero(out) == 31
    assert np.isinf(edt(torch.ones(1, 7, dtype=torch.bool), backend="torch")).all()
    assert edt(np.zeros((0, 3, 4, 4), dtype=bool)).shape == (0, 3, 4, 4)
    assert edt(torch.zeros(2, 0, 4, dtype=torch.bool), backend="torch").shape == (2, 0, 4)


def test_hand_computed():
    line = np.array([[0, 1, 1, 1, 0]], dtype=bool)
    for backend in ("torch", "scipy"):
        np.testing.assert_array_equal(edt(line, backend=backend), [[0, 1, 2, 1, 0]])
        np.testing.assert_array_equal(signed_distance(line, backend=backend), [[1, 0, -1, 0, 1]])
        np.testing.assert_array_equal(boundary_distance(line, backend=backend), [[1, 1, 2, 1, 1]])
        dot = np.zeros((3, 3), dtype=bool)
        dot[1, 1] = True
        r2 = math.sqrt(2)
        np.testing.assert_array_equal(signed_distance(dot, backend=backend), [[r2, 1, r2], [1, 0, 1], [r2, 1, r2]])
        corner = np.ones((3, 3), dtype=bool)
        corner[0, 0] = False
        np.testing.assert_allclose(edt(corner, spacing=(2.0, 1.0), backend=backend),
                                   np.sqrt([[0, 1, 4], [4, 5, 8], [16, 17, 20]]), rtol=1e-15)


@pytest.mark.parametrize("shape,ndim,spacing", [
    ((2, 2, 9, 11, 13), 3, (2.5, 1.0, 0.7)),
    ((3, 2, 17, 23), 2, (0.3, 1.7)),
    ((4, 1, 13), 2, (3.0, 0.5)),
    ((5, 31), 1, (0.1,)),
    ((2, 12, 10), 2, 0.8),
])
@pytest.mark.parametrize("density", [0.5, 0.99])
def test_spacing_matches_scipy(shape, ndim, spacing, density):
    m = random_masks(shape, ndim, density, seed=7)
    sampling = spacing if isinstance(spacing, tuple) else (spacing,) * ndim
    ref = ref_edt(m, ndim, sampling)
    np.testing.assert_allclose(edt(m, ndim=ndim, spacing=spacing, backend="torch"), ref, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(edt(m, ndim=ndim, spacing=spacing, backend="scipy"), ref)
    out32 = edt(torch.from_numpy(m), ndim=ndim, spacing=spacing, backend="torch", dtype=torch.float32)
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.numpy(), ref, rtol=2e-6)


def test_types_devices_dtypes_and_backends():
    m = random_masks((2, 3, 10, 12), 2, 0.8, seed=8)
    t = torch.from_numpy(m)
    out = edt(m)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert edt(m, backend="torch").dtype == np.float64
    assert edt(m, dtype=np.float32).dtype == np.float32
    for backend in ("auto", "torch", "scipy"):
        o = edt(t, backend=backend)
        assert isinstance(o, torch.Tensor) and o.dtype == torch.float64 and o.device == t.device
        assert not o.requires_grad
        np.testing.assert_array_equal(o.numpy(), out)
    o32 = edt(t, backend="torch", dtype=torch.float32)
    assert o32.dtype == torch.float32
    np.testing.assert_array_equal(o32.numpy(), out.astype(np.float32))
    np.testing.assert_array_equal(edt(t.to(torch.uint8), backend="torch").numpy(), out)  # 0/1 integers
    np.testing.assert_array_equal(edt(m.astype(np.int64) * 3), out)  # nonzero is True
    assert edt(t, backend="torch", dtype=torch.float16).dtype == torch.float16
    assert D._check_dtype(None, torch.empty(0, device="meta")) == torch.float32  # float32 off the CPU by default
    ro = np.broadcast_to(np.array([0, 1, 1], dtype=bool), (2, 3))  # read-only, not contiguous
    np.testing.assert_array_equal(edt(ro, backend="torch"), [[0, 1, 2], [0, 1, 2]])


def test_auto_backend_and_without_scipy(monkeypatch):
    m = random_masks((2, 9, 8), 2, 0.8, seed=9)
    assert D._check_backend("auto", m, 2) == "torch"
    assert D._check_backend("auto", np.zeros((1, 300, 8), bool), 2) == "scipy"
    monkeypatch.setattr(D, "_scipy_available", lambda: False)
    assert D._check_backend("auto", m, 2) == "torch"
    np.testing.assert_array_equal(edt(m, ndim=2), ref_edt(m, 2))
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(ImportError, match=r"pip install seglosses\[distance\]"):
        edt(m, backend="scipy")


def test_torch_path_never_reads_values(monkeypatch):
    """No host sync: nothing on the torch path turns a tensor into a Python value."""
    m = torch.from_numpy(random_masks((2, 2, 7, 9), 2, 0.7, seed=10))
    target = torch.randint(0, 3, (2, 7, 9))
    expected = [edt(m, backend="scipy"), signed_distance(m, backend="scipy"),
                distance_maps(target, "multiclass", num_classes=3, batched=True, backend="scipy", ignore_index=1)]

    def boom(*args, **kwargs):
        raise AssertionError("host sync")

    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    got = [edt(m, backend="torch"), signed_distance(m, backend="torch", spacing=(1.5, 0.5)),
           boundary_distance(m, backend="torch"),
           distance_maps(target, "multiclass", num_classes=3, batched=True, backend="torch", ignore_index=1)]
    monkeypatch.undo()
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)
    torch.testing.assert_close(got[3], expected[2], rtol=0, atol=0)
    assert got[1].shape == got[2].shape == m.shape


def test_compiles_fullgraph():
    m = torch.from_numpy(random_masks((2, 2, 6, 7), 2, 0.8, seed=11))
    fn = torch.compile(lambda x: signed_distance(x, backend="torch"), fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(m), signed_distance(m, backend="scipy"), rtol=0, atol=0)


@pytest.mark.parametrize("shape,ndim,spacing", [
    ((3, 2, 17, 23), 2, None),
    ((2, 2, 9, 11, 13), 3, None),
    ((2, 2, 9, 11, 13), 3, (2.5, 1.0, 0.7)),
    ((4, 1, 13), 2, (2.0, 0.5)),
])
@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_signed_and_boundary_match_references(shape, ndim, spacing, backend):
    m = random_masks(shape, ndim, 0.6, seed=12)
    m.reshape(-1, *shape[-ndim:])[0] = False  # an empty slice
    m.reshape(-1, *shape[-ndim:])[-1] = True  # a full slice
    sampling = spacing
    check = np.testing.assert_array_equal if spacing is None else (
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12))
    phi = signed_distance(m, ndim=ndim, spacing=spacing, backend=backend)
    check(phi, per_slice(one_hot2dist, m, ndim, sampling))
    assert (phi.reshape(-1, *shape[-ndim:])[[0, -1]] == 0).all()
    field = boundary_distance(torch.from_numpy(m), ndim=ndim, spacing=spacing, backend=backend)
    assert isinstance(field, torch.Tensor) and field.dtype == torch.float64
    check(field.numpy(), per_slice(monai_field, m, ndim, sampling))


def _per_class(masks, kind, ndim):
    fn = signed_distance if kind == "signed" else boundary_distance
    return fn(masks, ndim=ndim).astype(np.float32)


@pytest.mark.parametrize("kind", ["signed", "unsigned"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_distance_maps_modes(kind, as_tensor):
    rng = np.random.default_rng(13)
    conv = torch.from_numpy if as_tensor else (lambda a: a)

    def check(out, expected):
        assert isinstance(out, torch.Tensor if as_tensor else np.ndarray)
        out = out.numpy() if as_tensor else out
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, expected)

    # multiclass, single (H, W) and batched (N, D, H, W), with ignore_index
    t = rng.integers(0, 4, (12, 10))
    t[0, :3] = 255
    masks = (t[None] == np.arange(3)[:, None, None])
    check(distance_maps(conv(t), "multiclass", num_classes=3, kind=kind, ignore_index=255),
          _per_class(masks, kind, 2))
    check(distance_maps(conv(t), "multiclass", num_classes=3, kind=kind, ignore_index=1),
          _per_class(masks & (np.arange(3) != 1)[:, None, None], kind, 2))
    tb = rng.integers(0, 3, (2, 5, 6, 7))
    check(distance_maps(conv(tb), "multiclass", num_classes=3, kind=kind, batched=True),
          _per_class(tb[:, None] == np.arange(3)[None, :, None, None, None], kind, 3))
    # multilabel, single (C, H, W) and batched (N, C, H, W), soft values
    y = rng.random((3, 9, 8))
    check(distance_maps(conv(y), "multilabel", kind=kind), _per_class(y > 0.5, kind, 2))
    yb = rng.integers(0, 2, (2, 3, 9, 8))
    yb[0, 0, 0] = 7
    check(distance_maps(conv(yb), "multilabel", kind=kind, batched=True, ignore_index=7),
          _per_class((yb > 0.5) & (yb != 7), kind, 2))
    # binary: (H, W), (1, H, W), (D, H, W), (1, D, H, W), (N, H, W), (N, 1, H, W), (N, 1, D, H, W)
    b = rng.random((6, 7)) > 0.5
    expected = _per_class(b[None], kind, 2)
    check(distance_maps(conv(b), "binary", kind=kind), expected)
    check(distance_maps(conv(b[None]), "binary", kind=kind), expected)
    v = rng.random((4, 6, 7)) > 0.5
    check(distance_maps(conv(v), "binary", kind=kind), _per_class(v[None], kind, 3))
    check(distance_maps(conv(v[None]), "binary", kind=kind), _per_class(v[None], kind, 3))
    check(distance_maps(conv(v), "binary", kind=kind, batched=True), _per_class(v[:, None], kind, 2))
    check(distance_maps(conv(v[:, None]), "binary", kind=kind, batched=True), _per_class(v[:, None], kind, 2))
    check(distance_maps(conv(v[None, None]), "binary", kind=kind, batched=True), _per_class(v[None, None], kind, 3))
    check(distance_maps(conv(v[:1]), "binary", kind=kind, ndim=3), _per_class(v[None, :1], kind, 3))  # depth 1
    # spacing is passed through
    check(distance_maps(conv(b), "binary", kind=kind, spacing=(2.0, 0.5)),
          (signed_distance if kind == "signed" else boundary_distance)(b[None], ndim=2,
                                                                        spacing=(2.0, 0.5)).astype(np.float32))


def test_distance_maps_hand_computed():
    t = np.array([[0, 0, 1, 1, 2]])
    np.testing.assert_array_equal(distance_maps(t, "multiclass", num_classes=3)[:, 0],
                                  [[-1, 0, 1, 2, 3], [2, 1, 0, 0, 1], [4, 3, 2, 1, 0]])
    np.testing.assert_array_equal(distance_maps(torch.from_numpy(t), "multiclass", num_classes=4)[3], 0)  # absent


def test_errors():
    m = np.zeros((2, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match=r"`backend` must be one of \('auto', 'torch', 'scipy'\); got 'cuda'"):
        edt(m, backend="cuda")
    with pytest.raises(ValueError, match=r"`ndim` must be 1, 2 or 3; got 4"):
        edt(m, ndim=4)
    with pytest.raises(ValueError, match=r"`ndim` must be at most the rank of `mask` \(1\); got 3"):
        edt(m[0, 0], ndim=3)
    with pytest.raises(TypeError, match=r"`ndim` must be an int"):
        edt(m, ndim=2.0)
    with pytest.raises(ValueError, match=r"`ndim` could not be inferred.*rank 6"):
        edt(np.zeros((1,) * 6, dtype=bool))
    with pytest.raises(ValueError, match=r"`spacing` must hold one value per spatial axis \(3\); got 2 values"):
        edt(m, spacing=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"`spacing\[1\]` must be > 0.0; got -2.0"):
        edt(m, ndim=2, spacing=(1.0, -2.0))
    with pytest.raises(ValueError, match=r"`spacing` must be > 0.0; got 0.0"):
        edt(m, spacing=0)
    with pytest.raises(ValueError, match=r"`spacing` must be a finite number; got inf"):
        edt(m, spacing=math.inf)
    with pytest.raises(TypeError, match=r"`mask` must be a bool or integer mask; got dtype torch.float32"):
        edt(torch.zeros(3, 3))
    with pytest.raises(TypeError, match=r"`mask` must be a torch.Tensor or np.ndarray; got list"):
        signed_distance([[0, 1]])
    with pytest.raises(TypeError, match=r"`dtype` must be a floating torch.dtype"):
        edt(torch.zeros(3, 3, dtype=torch.bool), dtype=np.float32)
    with pytest.raises(TypeError, match=r"`dtype` must be a NumPy floating dtype"):
        boundary_distance(m, dtype=np.int32)

    t = np.zeros((2, 4, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"`mode` must be one of .*got 'softmax'"):
        distance_maps(t, "softmax")
    with pytest.raises(ValueError, match=r"`kind` must be one of \('signed', 'unsigned'\); got 'sdf'"):
        distance_maps(t, "binary", kind="sdf")
    with pytest.raises(ValueError, match=r"`num_classes` is required for mode='multiclass'"):
        distance_maps(t, "multiclass")
    with pytest.raises(TypeError, match=r"`target` must hold integer class indices.*float32"):
        distance_maps(t.astype(np.float32), "multiclass", num_classes=3)
    with pytest.raises(ValueError, match=r"`target` must have shape \(N, \*spatial\) for mode='multiclass' with "
                                         r"batched=True; got \(2, 1, 1, 4, 4\)"):
        distance_maps(t[:, None, None], "multiclass", num_classes=3, batched=True)
    with pytest.raises(ValueError, match=r"`target` must have shape \(C, \*spatial\) for mode='multilabel'"):
        distance_maps(t, "multilabel", ndim=3)
    with pytest.raises(ValueError, match=r"`target` must have shape \(\*spatial\) or \(1, \*spatial\) for "
                                         r"mode='binary'.*got \(2, 2, 4, 4\)"):
        distance_maps(np.zeros((2, 2, 4, 4)), "binary")
    with pytest.raises(ValueError, match=r"`num_classes` must be the number of channels .*\(2\); got 3"):
        distance_maps(t, "multilabel", num_classes=3)
    with pytest.raises(TypeError, match=r"`batched` must be a bool; got int"):
        distance_maps(t, "binary", batched=1)
    with pytest.raises(TypeError, match=r"`ignore_index` must be an int or None; got float"):
        distance_maps(t, "binary", ignore_index=255.0)
    with pytest.raises(TypeError, match=r"`target` must be a torch.Tensor or np.ndarray; got list"):
        distance_maps([0, 1], "binary")
    with pytest.raises(ValueError, match=r"`num_classes` must be >= 1; got 0"):
        distance_maps(t, "multiclass", num_classes=0)

