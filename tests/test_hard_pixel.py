"""TopK and OHEM cross-entropy, and Poly-1, against their peers' formulas (re-derived here from nnU-Net's, mmseg's and
the Poly-1 authors' code) and their selection rules: ignored pixels, rounding, ties, empty images, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

import seglosses as S
from _losses import torch_case


def _mc(n=2, c=4, hw=(6, 5), seed=0, ignore=False):
    return torch_case("multiclass", n=n, c=c, hw=hw, seed=seed, ignore=ignore)


# ------------------------------------------------------------------------------------------------- nnU-Net ---
def _nnunet_topk(x, t, k, weight=None, label_smoothing=0.0):
    """nnU-Net's TopKLoss (nnunetv2/training/loss/robust_ce_loss.py: TopKLoss.forward): CE with reduction "none"
    (RobustCrossEntropyLoss(weight, ignore_index, reduce=False)), topk of int(numel * k / 100) over the flattened
    map, mean."""
    res = F.cross_entropy(x, t, weight=weight, reduction="none", label_smoothing=label_smoothing)
    num_voxels = res.numel()
    res, _ = torch.topk(res.view((-1,)), int(num_voxels * k / 100), sorted=False)
    return res.mean()


@pytest.mark.parametrize("k,opts", [(10.0, {}), (20.0, {"weight": [0.5, 1.0, 2.0, 3.0]}), (50.0, {}),
                                    (100.0, {"label_smoothing": 0.1})])
def test_topk_equals_nnunet_without_ignored_voxels(k, opts):
    x, t = _mc()  # 60 voxels: k% of them is whole for every k here
    w = torch.tensor(opts["weight"], dtype=x.dtype) if "weight" in opts else None
    ref = _nnunet_topk(x, t, k, weight=w, label_smoothing=opts.get("label_smoothing", 0.0))
    got = S.topk_cross_entropy_loss(x, t, "multiclass", k=k, **opts)
    torch.testing.assert_close(got, ref)
    assert not torch.allclose(got, S.cross_entropy_loss(x, t, "multiclass", **opts)) or k == 100


def test_topk_with_ignored_voxels_is_nnunets_over_the_valid_ones_only():
    # nnU-Net counts ignored voxels (zero loss) in k% of the map, which dilutes the mean; ours takes k% of the valid
    x, t = _mc(hw=(10, 10))
    t[0, :5] = 255  # 50 of 200 ignored: 150 valid, 15 kept at k = 10
    ours = S.topk_cross_entropy_loss(x, t, "multiclass", k=10.0, ignore_index=255)
    valid = t != 255
    xv = x.permute(0, 2, 3, 1)[valid]  # (150, C): the valid pixels only (a test, not the loss: indexing is fine)
    torch.testing.assert_close(ours, _nnunet_topk(xv, t[valid], 10.0))
    res = F.cross_entropy(x, t, ignore_index=255, reduction="none")
    nnunet = torch.topk(res.view(-1), int(res.numel() * 10 / 100)).values.mean()  # 20 of 200, ignored included
    assert not torch.allclose(ours, nnunet)


def test_topk_rounds_the_count_up_and_ties_do_not_matter():
    x = torch.zeros(1, 1, 7, dtype=torch.float64)
    t = torch.tensor([[[1.0, 0, 1, 0, 1, 0, 255]]], dtype=torch.float64)
    # 6 valid pixels, all with CE ln 2 (ties), k = 10: ceil(0.6) = 1 pixel (nnU-Net's int() would keep none: NaN)
    got = S.topk_cross_entropy_loss(x, t, "binary", k=10.0, ignore_index=255)
    torch.testing.assert_close(got, torch.tensor(math.log(2), dtype=torch.float64))
    x = torch.tensor([[[3.0, -1.0, 2.0, 0.5, -2.0, 1.0, float("nan")]]], dtype=torch.float64, requires_grad=True)
    got = S.topk_cross_entropy_loss(x, t, "binary", k=34.0, ignore_index=255)  # ceil(2.04) = 3 of 6
    ce = F.binary_cross_entropy_with_logits(x.detach()[..., :6], t[..., :6], reduction="none").flatten()
    torch.testing.assert_close(got, ce.sort(descending=True).values[:3].mean())
    got.backward()
    hard = ce.argsort(descending=True)[:3]
    assert torch.isfinite(x.grad).all() and x.grad[0, 0, 6] == 0  # the ignored NaN logit: zero gradient
    assert (x.grad[0, 0, :6] != 0).sum() == 3 and (x.grad[0, 0, hard] != 0).all()  # only the selected ones


def test_per_image_skips_images_without_valid_pixels():
    x, t = _mc(n=3)
    t[1] = 255
    x = x.clone().requires_grad_(True)
    for fn, kw in ((S.topk_cross_entropy_loss, {"k": 25.0}), (S.ohem_cross_entropy_loss, {"min_kept": 5})):
        rows = fn(x, t, "multiclass", ignore_index=255, per_image=True, reduction="none", **kw)
        assert rows.shape == (3,) and rows[1] == 0
        mean = fn(x, t, "multiclass", ignore_index=255, per_image=True, **kw)
        torch.testing.assert_close(mean, (rows[0] + rows[2]) / 2)
        (g,) = torch.autograd.grad(mean, x)
        assert torch.isfinite(g).all() and (g[1] == 0).all()
    everything_ignored = torch.full_like(t, 255)
    for fn in (S.topk_cross_entropy_loss, S.ohem_cross_entropy_loss):
        loss = fn(x, everything_ignored, "multiclass", ignore_index=255)
        (g,) = torch.autograd.grad(loss, x)
        assert loss == 0 and (g == 0).all()


# --------------------------------------------------------------------------------------------------- mmseg ---
def _mmseg_ohem(seg_logit, seg_label, thresh, min_kept, ignore_index, class_weight=None, avg_non_ignore=False):
    """mmseg's OHEMPixelSampler.sample with ``thresh`` (mmseg/models/sampler/ohem_pixel_sampler.py) and the
    cross_entropy + weight_reduce_loss of mmseg/models/losses/cross_entropy_loss.py (reduction "mean")."""
    with torch.no_grad():
        batch_kept = min_kept * seg_label.size(0)
        valid_mask = seg_label != ignore_index
        seg_weight = seg_logit.new_zeros(size=seg_label.size())
        valid_seg_weight = seg_weight[valid_mask]
        seg_prob = F.softmax(seg_logit, dim=1)
        tmp_seg_label = seg_label.clone().unsqueeze(1)
        tmp_seg_label[tmp_seg_label == ignore_index] = 0
        seg_prob = seg_prob.gather(1, tmp_seg_label).squeeze(1)
        sort_prob, _ = seg_prob[valid_mask].sort()
        min_threshold = sort_prob[min(batch_kept, sort_prob.numel() - 1)] if sort_prob.numel() > 0 else 0.0
        threshold = max(min_threshold, thresh)
        valid_seg_weight[seg_prob[valid_mask] < threshold] = 1.0
        seg_weight[valid_mask] = valid_seg_weight
    loss = F.cross_entropy(seg_logit, seg_label, weight=class_weight, reduction="none", ignore_index=ignore_index)
    avg_factor = valid_mask.sum() if avg_non_ignore else seg_label.numel()
    return (loss * seg_weight).sum() / avg_factor, seg_weight


@pytest.mark.parametrize("thresh,min_kept", [(0.7, 3), (0.7, 20), (0.3, 10), (0.95, 1), (0.0, 8)])
@pytest.mark.parametrize("avg_non_ignore", [False, True])
def test_ohem_equals_mmseg_up_to_its_normaliser(thresh, min_kept, avg_non_ignore):
    x, t = _mc(n=2, c=4, hw=(8, 8), seed=1, ignore=True)  # ~90 valid pixels, distinct probabilities
    w = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=x.dtype)
    ref, kept = _mmseg_ohem(x, t, thresh, min_kept, 255, class_weight=w, avg_non_ignore=avg_non_ignore)
    assert 0 < kept.sum() < (t != 255).sum()  # a real selection
    ours = S.ohem_cross_entropy_loss(x, t, "multiclass", threshold=thresh, min_kept=min_kept, weight=w,
                                     ignore_index=255)
    den = (t != 255).sum() if avg_non_ignore else t.numel()
    torch.testing.assert_close(ours * kept.sum() / den, ref)  # ours: the mean over the kept pixels


def test_ohem_keeps_every_pixel_when_min_kept_covers_them_where_mmseg_drops_the_easiest():
    x, t = _mc(n=1, c=3, hw=(4, 4), seed=2)
    ref, kept = _mmseg_ohem(x, t, 0.1, 100, -100)
    assert kept.sum() == t.numel() - 1  # mmseg: p_t < max(largest p_t, thresh) leaves the easiest pixel out
    ours = S.ohem_cross_entropy_loss(x, t, "multiclass", threshold=0.1, min_kept=100)
    torch.testing.assert_close(ours, S.cross_entropy_loss(x, t, "multiclass"))


def test_ohem_min_kept_counts_per_image_and_selection_has_no_gradient_elsewhere():
    x, t = _mc(n=2, c=3, hw=(5, 5), seed=3)
    x = x.clone().requires_grad_(True)
    loss = S.ohem_cross_entropy_loss(x, t, "multiclass", threshold=0.0, min_kept=4)  # the 8 hardest of 50
    pt = F.softmax(x.detach(), 1).gather(1, t.unsqueeze(1)).flatten()
    ce = F.cross_entropy(x.detach(), t, reduction="none").flatten()
    hard = pt.argsort()[:8]
    torch.testing.assert_close(loss, ce[hard].mean())
    (g,) = torch.autograd.grad(loss, x)
    touched = (g != 0).any(1).flatten()
    assert touched.sum() == 8 and touched[hard].all()
    per_image = S.ohem_cross_entropy_loss(x, t, "multiclass", threshold=0.0, min_kept=4, per_image=True,
                                          reduction="none")
    for i in range(2):
        pi = F.softmax(x.detach()[i:i + 1], 1).gather(1, t[i:i + 1].unsqueeze(1)).flatten()
        ci = F.cross_entropy(x.detach()[i:i + 1], t[i:i + 1], reduction="none").flatten()
        torch.testing.assert_close(per_image[i], ci[pi.argsort()[:4]].mean())


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_sigmoid_modes_select_elements(mode):
    x, t = torch_case(mode, n=2, c=3, hw=(4, 5), ignore=False)
    bce = F.binary_cross_entropy_with_logits(x, t, reduction="none").flatten()
    m = math.ceil(bce.numel() * 0.15)
    torch.testing.assert_close(S.topk_cross_entropy_loss(x, t, mode, k=15.0),
                               bce.sort(descending=True).values[:m].mean())
    p = torch.sigmoid(x)
    pt = (p * t + (1 - p) * (1 - t)).flatten()
    keep = (pt < 0.6) | (pt <= pt.sort().values[5 * 2 - 1])
    torch.testing.assert_close(S.ohem_cross_entropy_loss(x, t, mode, threshold=0.6, min_kept=5), bce[keep].mean())


# ------------------------------------------------------------------------------------------------- Poly-1 ---
def _poly1_cross_entropy(logits, labels, epsilon):
    """The authors' reference code (Leng et al. 2022, appendix), in torch over a class axis 1:
    pt = reduce_sum(labels * softmax(logits)); CE = softmax_cross_entropy_with_logits(labels, logits);
    Poly1 = CE + epsilon * (1 - pt)."""
    pt = (labels * F.softmax(logits, 1)).sum(1)
    ce = -(labels * F.log_softmax(logits, 1)).sum(1)
    return ce + epsilon * (1 - pt)


def _poly1_focal_loss(logits, labels, epsilon, gamma, alpha):
    """The authors' sigmoid Poly-1 focal snippet: FL = alpha_t (1 - pt)^gamma CE (alpha < 0: no alpha_t);
    Poly1 = FL + epsilon (1 - pt)^(gamma + 1)."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    pt = labels * p + (1 - labels) * (1 - p)
    fl = ce * (1 - pt) ** gamma
    if alpha >= 0:
        fl = (alpha * labels + (1 - alpha) * (1 - labels)) * fl
    return fl + epsilon * (1 - pt) ** (gamma + 1), pt


@pytest.mark.parametrize("epsilon,smoothing", [(1.0, 0.0), (-1.0, 0.0), (2.0, 0.1)])
def test_poly_cross_entropy_equals_the_authors_code(epsilon, smoothing):
    x, t = _mc(c=5)
    labels = F.one_hot(t, 5).movedim(-1, 1).to(x.dtype) * (1 - smoothing) + smoothing / 5
    ref = _poly1_cross_entropy(x, labels, epsilon)
    got = S.poly_loss(x, t, "multiclass", epsilon=epsilon, label_smoothing=smoothing, reduction="none")
    torch.testing.assert_close(got, ref)
    soft = F.softmax(torch.randn_like(x), 1)  # class probabilities: p_t = sum_c g_c p_c, as the authors' pt
    torch.testing.assert_close(S.poly_loss(x, soft, "multiclass", epsilon=epsilon, reduction="none"),
                               _poly1_cross_entropy(x, soft, epsilon))


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_poly_focal_equals_the_authors_code_and_weighs_the_polynomial_by_alpha(mode):
    x, t = torch_case(mode, n=2, c=3, ignore=False)
    ref, pt = _poly1_focal_loss(x, t, -1.0, 2.0, alpha=-1.0)
    torch.testing.assert_close(S.poly_loss(x, t, mode, epsilon=-1.0, gamma=2.0, reduction="none"), ref)
    # with alpha, ours weighs the polynomial term by alpha_t too (the expansion of alpha_t FL); the snippet does not
    ref, pt = _poly1_focal_loss(x, t, -1.0, 2.0, alpha=0.25)
    alpha_t = 0.25 * t + 0.75 * (1 - t)
    got = S.poly_loss(x, t, mode, epsilon=-1.0, gamma=2.0, alpha=0.25, reduction="none")
    torch.testing.assert_close(got, ref + -1.0 * (alpha_t - 1) * (1 - pt) ** 3)


def test_poly_is_finite_with_exact_gradient_at_saturated_logits():
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 30.0]], dtype=torch.float64).T.unsqueeze(0)  # (1, 3, 2)
    x = x.clone().requires_grad_(True)
    t = torch.tensor([[0, 0]])
    loss = S.poly_loss(x, t, "multiclass", epsilon=1.0, gamma=0.5)
    (g,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(loss) and torch.isfinite(g).all()
    # pixel 0 right (p_t = 1: no loss, no gradient), pixel 1 wrong by 2e4: FL + eps = 2e4 + 1 per pixel, mean / 2
    torch.testing.assert_close(loss, torch.tensor((2e4 + 1) / 2, dtype=torch.float64))
