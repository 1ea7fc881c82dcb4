"""The contour losses against their references' code (re-derived here), and the properties the sweeps do not see:
precomputed maps (no distance transform in the step), detached weights, the contour's definition."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt

import seglosses as S
from seglosses.losses import contour as C


# ------------------------------------------------------------------------------------------- Boundary DoU, official
def _official_boundary_dou(logits, target, n_classes):
    """sunfan-bvb/BoundaryDoULoss, TransUNet/utils.py, ``BoundaryDoULoss.forward`` and ``_adaptive_size`` re-derived
    on the CPU (the original calls ``.cuda()``): softmax, one-hot, per class over the batch: a cross-shaped 3 x 3
    convolution with zero padding, times the target; sums equal to 5 (interior) zeroed; C and S non-zero counts."""
    inputs = torch.softmax(logits, dim=1)
    onehot = torch.cat([(target == i).unsqueeze(1) for i in range(n_classes)], dim=1).float().to(logits.dtype)
    kernel = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=logits.dtype)
    loss = 0.0
    for i in range(n_classes):
        score, tgt = inputs[:, i], onehot[:, i]
        y = torch.zeros_like(tgt)
        for b in range(tgt.shape[0]):
            y[b] = torch.conv2d(tgt[b][None, None], kernel[None, None], padding=1)[0, 0]
        y = y * tgt
        y[y == 5] = 0
        c = torch.count_nonzero(y)
        s = torch.count_nonzero(tgt)
        smooth = 1e-5
        alpha = 1 - (c + smooth) / (s + smooth)
        alpha = 2 * alpha - 1
        intersect = torch.sum(score * tgt)
        y_sum = torch.sum(tgt * tgt)
        z_sum = torch.sum(score * score)
        alpha = min(alpha, 0.8)
        loss += (z_sum + y_sum - 2 * intersect + smooth) / (z_sum + y_sum - (1 + alpha) * intersect + smooth)
    return loss / n_classes


@pytest.mark.parametrize("seed", range(4))
def test_boundary_dou_equals_the_official_code_in_2d(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 9, 11, generator=g, dtype=torch.float64) * 2
    t = torch.randint(0, 4, (2, 9, 11), generator=g)
    t[:, 2:7, 3:9] = 1  # a blob with an interior, so that C < S
    t[1] = torch.where(t[1] == 3, 0, t[1])  # class 3 absent from one image
    expected = _official_boundary_dou(x, t, 4)
    got = S.boundary_dou_loss(x, t, "multiclass")
    # rtol 1e-7: the official alpha is float32 ((C + smooth) with C an int64 count gives a float32 tensor)
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-9)


def test_boundary_dou_alpha_cap_and_absent_class():
    # a large square: C / S small, alpha = 1 - 2 C / S > 0.8 is capped (the official code's recommendation)
    t = torch.zeros(1, 1, 60, 60)
    t[..., 2:58, 2:58] = 1  # C = 220, S = 3136: 1 - 2 C / S = 0.86
    x = torch.where(t > 0, 1.0, -1.0).double()
    p = torch.sigmoid(x)
    err, inter = ((p - t) ** 2).sum(), (p * t).sum()
    want = (err + 1e-5) / (err + 1e-5 + (1 - 0.8) * inter)
    torch.testing.assert_close(S.boundary_dou_loss(x, t, "binary"), want)
    # a class absent from the target: 1 and no gradient, whatever the prediction
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    loss = S.boundary_dou_loss(x, torch.zeros(1, 1, 6, 6), "binary")
    loss.backward()
    assert loss.item() == 1.0 and torch.count_nonzero(x.grad) == 0


def test_contour_is_the_official_cross_kernel_in_2d_and_face_neighbours_in_3d():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(3, 7, 8, generator=g) > 0.4
    kernel = torch.tensor([[0.0, 1, 0], [1, 1, 1], [0, 1, 0]])
    conv = F.conv2d(m.float()[:, None], kernel[None, None], padding=1)[:, 0] * m
    official = (conv > 0) & (conv != 5)
    assert torch.equal(C._contour(m.reshape(3, -1), (7, 8)).reshape(3, 7, 8), official)
    m3 = torch.rand(2, 4, 5, 6, generator=g) > 0.3
    k3 = torch.zeros(3, 3, 3)
    k3[1, 1, :] = k3[1, :, 1] = k3[:, 1, 1] = 1
    conv3 = F.conv3d(m3.float()[:, None], k3[None, None], padding=1)[:, 0] * m3
    assert torch.equal(C._contour(m3.reshape(2, -1), (4, 5, 6)).reshape(2, 4, 5, 6), (conv3 > 0) & (conv3 != 7))


# ------------------------------------------------------------------------------- distance penalty, SegLoss's map
def _segloss_weights(gt):
    """JunMa11/SegLoss (SegLossOdyssey), losses_pytorch/boundary_loss.py, ``compute_edts_forPenalizedLoss`` (+ 1, as
    its DisPenalizedCE adds it): per image, both sides of the boundary inverted (max - d) and normalised by their
    max."""
    res = np.zeros(gt.shape)
    for i in range(gt.shape[0]):
        posmask = gt[i]
        negmask = ~posmask
        pos_edt = distance_transform_edt(posmask)
        pos_edt = (np.max(pos_edt) - pos_edt) * posmask
        neg_edt = distance_transform_edt(negmask)
        neg_edt = (np.max(neg_edt) - neg_edt) * negmask
        res[i] = pos_edt / np.max(pos_edt) + neg_edt / np.max(neg_edt)
    return res + 1.0


def test_distance_penalty_equals_segloss_dispenalizedce_in_3d():
    # DisPenalizedCE: log-softmax over 2 channels, -log p_target * dist, mean over voxels
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 2, 5, 6, 7, generator=g, dtype=torch.float64)
    t = torch.zeros(2, 5, 6, 7, dtype=torch.long)
    t[0, 1:4, 1:5, 2:6] = 1
    t[1, 2:5, 0:3, 1:7] = 1
    dist = torch.from_numpy(_segloss_weights(t.numpy() > 0.5))
    logp = torch.log_softmax(x, 1).gather(1, t[:, None])[:, 0]
    expected = (-logp * dist).mean()
    torch.testing.assert_close(S.distance_penalized_cross_entropy_loss(x, t, "multiclass"), expected)
    # binary mode: the same map on both sides of the one mask
    xb = x[:, 1:] - x[:, :1]
    bce = F.binary_cross_entropy_with_logits(xb[:, 0], t.double(), weight=dist)
    torch.testing.assert_close(S.distance_penalized_cross_entropy_loss(xb, t.double(), "binary"), bce)


# ------------------------------------------------------------------------------------------- precomputed maps
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("name,kind", [("distance_penalized_cross_entropy", "penalty"), ("shape_aware", "contour")])
def test_precomputed_maps_give_the_same_loss_without_a_distance_transform(monkeypatch, mode, name, kind):
    g = torch.Generator().manual_seed(2)
    c = 1 if mode == "binary" else 3
    x = torch.randn(2, c, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (2, 6, 7), generator=g) if mode == "multiclass" else \
        (torch.rand(2, c, 6, 7, generator=g) > 0.5).double()
    t[0, ..., 0, :2] = 255
    fn = getattr(S, f"{name}_loss")
    maps = S.contour_maps(t, mode, num_classes=c, kind=kind, ignore_index=255, spacing=(1.0, 0.5))
    assert maps.shape == (2, c, 6, 7) and maps.dtype == torch.float32
    expected = fn(x, t, mode, ignore_index=255, spacing=(1.0, 0.5), reduction="none")

    def no_edt(*args, **kwargs):
        raise AssertionError("a distance transform ran although the maps were given")

    monkeypatch.setattr(C, "edt", no_edt)
    monkeypatch.setattr(C, "_two_sided", no_edt)
    got = fn(x, t, mode, ignore_index=255, dist_maps=maps.double(), reduction="none")
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)  # the maps travel as float32
    module = getattr(S, S._registry.BY_NAME[name].cls)(mode, ignore_index=255, reduction="none")
    torch.testing.assert_close(module(x, t, dist_maps=maps.double()), got)


def test_weights_are_detached():
    # the gradient is the weighted cross-entropy's with the weights held constant: (1 + phi) (p - y) for a sigmoid
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 8, 9, generator=g, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 1, 8, 9, generator=g) > 0.5).double()
    phi = S.contour_maps(t, "binary").double()
    S.distance_penalized_cross_entropy_loss(x, t, "binary", reduction="sum").backward()
    torch.testing.assert_close(x.grad, (1 + phi) * (torch.sigmoid(x) - t))
    # shape-aware: a constant factor (1 + E) per image, E from the argmax
    x.grad = None
    loss = S.shape_aware_loss(x, t, "binary", reduction="none")
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    factor = (loss / ce).detach()
    assert torch.allclose(factor, factor[:, :, :1, :1].expand_as(factor))  # one factor per image and class
    loss.sum().backward()
    torch.testing.assert_close(x.grad, factor * (torch.sigmoid(x) - t))


def test_shape_aware_empty_contours_give_the_cross_entropy():
    x = torch.randn(2, 1, 5, 5, dtype=torch.float64)
    ce = S.cross_entropy_loss(x, torch.zeros(2, 1, 5, 5), "binary")
    torch.testing.assert_close(S.shape_aware_loss(x, torch.zeros(2, 1, 5, 5), "binary"), ce)  # no target contour
    t = (torch.rand(2, 1, 5, 5) > 0.5).double()
    xn = -torch.ones(2, 1, 5, 5, dtype=torch.float64)  # nothing predicted: no predicted contour
    torch.testing.assert_close(S.shape_aware_loss(xn, t, "binary"), S.cross_entropy_loss(xn, t, "binary"))


def test_contour_maps_errors():
    t = torch.zeros(2, 5, 5, dtype=torch.long)
    with pytest.raises(ValueError, match="`kind`"):
        S.contour_maps(t, "multiclass", num_classes=2, kind="signed")
    with pytest.raises(TypeError, match="`num_classes`"):
        S.contour_maps(t, "multiclass")
    with pytest.raises(TypeError, match="`target`"):
        S.contour_maps(t.numpy(), "multiclass", num_classes=2)
    with pytest.raises(ValueError, match="spatial"):
        S.contour_maps(torch.zeros(2, 3), "multilabel")


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_zero_maps_give_the_cross_entropy(mode):
    # limit identity: phi = 0 (or d = 0, so E = 0) leaves F.cross_entropy / BCE, soft multiclass targets included
    g = torch.Generator().manual_seed(5)
    c = 1 if mode == "binary" else 3
    x = torch.randn(2, c, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    if mode == "multiclass":
        t = torch.softmax(torch.randn(2, c, 4, 5, generator=g, dtype=torch.float64), 1)
        ref = F.cross_entropy(x, t)
    else:
        t = torch.rand(2, c, 4, 5, generator=g, dtype=torch.float64)
        ref = F.binary_cross_entropy_with_logits(x, t)
    zeros = torch.zeros(2, c, 4, 5, dtype=torch.float64)
    (ref_grad,) = torch.autograd.grad(ref, x)
    for fn in (S.distance_penalized_cross_entropy_loss, S.shape_aware_loss):
        got = fn(x, t, mode, dist_maps=zeros)
        torch.testing.assert_close(got, ref)
        torch.testing.assert_close(torch.autograd.grad(got, x)[0], ref_grad)
