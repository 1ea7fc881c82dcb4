"""The topology losses and their skeletons: hand-derived skeletons, the authors' and MONAI's code re-derived or run
on inputs where the definitions agree, the precomputed-skeleton path, ignored pixels, errors.

The generic sweeps (oracle, fuzz, stability, gradcheck, compile, Keras parity) cover both losses from the registry;
what is here is specific to skeletons.
"""

import numpy as np
import pytest
import torch

import seglosses as S
from seglosses.skeleton import hard_skeleton

def _bool(shape, *where):
    m = torch.zeros(shape, dtype=torch.bool)
    for w in where:
        m[w] = True
    return m


# --------------------------------------------------------------------------------- skeletons derived by hand ---
def test_hard_skeleton_of_a_line_is_the_line():
    line = _bool((7, 9), (3, slice(1, 8)))
    assert torch.equal(hard_skeleton(line, 2), line)
    diagonal = torch.eye(6, dtype=torch.bool)
    assert torch.equal(hard_skeleton(diagonal, 2), diagonal)


def test_hard_skeleton_of_a_rectangle_is_its_middle_row_without_its_ends():
    # 3 x 7 rectangle: one erosion leaves row 2, cols 2..6, whose opening is the rectangle (no pixel kept); a second
    # erosion leaves nothing, so the skeleton is row 2, cols 2..6
    rect = _bool((5, 9), (slice(1, 4), slice(1, 8)))
    assert torch.equal(hard_skeleton(rect, 2), _bool((5, 9), (2, slice(2, 7))))


def test_hard_skeleton_of_a_tube_is_its_center_line_without_its_ends():
    tube = _bool((7, 5, 5), (slice(None), slice(1, 4), slice(1, 4)))
    assert torch.equal(hard_skeleton(tube, 3), _bool((7, 5, 5), (slice(1, 6), 2, 2)))


def test_hard_skeleton_1d_is_the_middle():
    assert hard_skeleton(_bool((10,), slice(2, 7)), 1).nonzero().flatten().tolist() == [4]
    assert hard_skeleton(_bool((10,), slice(2, 6)), 1).nonzero().flatten().tolist() == [3, 4]


def test_skeleton_maps_tube_is_the_skeleton_dilated_twice_by_the_cross_inside_the_mask():
    t = torch.zeros(9, 9, dtype=torch.long)
    t[1:8, 4] = 1                                 # a vertical line (its own skeleton), class 1
    t[1:8, 3] = 2                                 # a class beside it: not in class 1's mask
    s = S.skeleton_maps(t, "multiclass", num_classes=3)
    assert s.dtype == torch.float32 and s.shape == (3, 9, 9)
    assert torch.equal(s[1].bool(), t == 1)       # the tube is cut to the mask
    t[1:8, 5] = 1                                 # now 2 wide (cols 4, 5): the tube covers it
    s = S.skeleton_maps(t, "multiclass", num_classes=3)
    assert torch.equal(s[1].bool() & (t == 1), s[1].bool()) and s[1].sum() > 0


def test_skeleton_maps_ignored_pixels_are_background_and_numpy_stays_numpy():
    t = np.zeros((1, 5, 9), dtype=np.float32)
    t[0, 1:4, 1:8] = 1
    t[0, 1:4, 6:8] = 255                          # ignored: the rectangle ends at col 5
    s = S.skeleton_maps(t, "binary", ignore_index=255)
    assert isinstance(s, np.ndarray) and s.shape == (1, 5, 9)
    assert s[0, :, 6:].sum() == 0
    crop = S.skeleton_maps(np.where(t == 255, 0, t), "binary")
    np.testing.assert_array_equal(s, crop)


def test_soft_skeleton_of_a_hard_mask_with_the_outside_neutral():
    # the authors' pools ignore the image's outside: a band touching the left and right borders keeps its full
    # middle row; the same band inside the image loses the two end pixels (as hard_skeleton)
    band = torch.zeros(1, 1, 5, 7)
    band[..., 1:4, :] = 1
    assert torch.equal(S.soft_skeleton(band)[0, 0] > 0, _bool((5, 7), (2, slice(None))))
    inner = torch.zeros(1, 1, 5, 9)
    inner[..., 1:4, 1:8] = 1
    assert torch.equal(S.soft_skeleton(inner)[0, 0] > 0, _bool((5, 9), (2, slice(2, 7))))


# ------------------------------------------------------------------------------- scikit-image's thinning ---
def test_torch_skeleton_differs_from_scikit_image_thinning_only_at_the_ends_on_thin_shapes():
    from skimage.morphology import skeletonize

    rect = _bool((5, 9), (slice(1, 4), slice(1, 8)))
    ours = hard_skeleton(rect, 2).numpy()
    zhang = skeletonize(rect.numpy())
    # Zhang-Suen keeps row 2 from col 1 and bends into a corner at the right end; ours is row 2, cols 2..6
    assert (ours & ~zhang).sum() <= 1 and ours[2, 2:6].all() and zhang[2, 2:6].all()
    tube = _bool((7, 5, 5), (slice(None), slice(1, 4), slice(1, 4)))
    lee = skeletonize(tube.numpy())
    assert lee[:, 2, 2].all() and lee.sum() == 7           # Lee: the whole center line
    assert hard_skeleton(tube, 3).sum() == 5                # ours: without its two end voxels
    line = _bool((7, 9), (3, slice(1, 8)))
    np.testing.assert_array_equal(skeletonize(line.numpy()), hard_skeleton(line, 2).numpy())


def _authors_transform(seg):
    """MIC-DKFZ/Skeleton-Recall, nnunetv2/training/data_augmentation/custom_transforms/skeletonization.py,
    SkeletonTransform.apply (do_tube=True), re-derived: skeletonize the foreground, dilate twice, label by class."""
    from skimage.morphology import dilation, skeletonize

    bin_seg = seg > 0
    out = np.zeros_like(seg, dtype=np.int16)
    if bin_seg.sum():
        skel = (skeletonize(bin_seg) > 0).astype(np.int16)
        skel = dilation(dilation(skel))
        out = skel * seg.astype(np.int16)
    return out


def _two_vessels(shape3d=False):
    rng = np.random.default_rng(3)
    if shape3d:
        seg = np.zeros((12, 10, 10), dtype=np.int64)
        seg[1:11, 1:4, 1:4] = 1
        seg[2:10, 6:9, 5:8] = 2
    else:
        seg = np.zeros((16, 20), dtype=np.int64)
        seg[2:5, 1:18] = 1
        seg[8:15, 9:12] = 2
        seg[9:14, 14] = 2
    return seg, rng


@pytest.mark.parametrize("volume", [False, True])
def test_skeleton_maps_skimage_is_the_authors_map_where_classes_do_not_touch(volume):
    seg, _ = _two_vessels(volume)
    authors = _authors_transform(seg)
    maps = S.skeleton_maps(seg, "multiclass", num_classes=3, backend="skimage")
    for c in (1, 2):
        np.testing.assert_array_equal(maps[c].astype(bool), authors == c)


def _authors_recall(x, skel, smooth, batch_dice):
    """MIC-DKFZ/Skeleton-Recall, nnunetv2/training/loss/dice.py, SoftSkeletonRecallLoss.forward (softmax, no
    background, label-map skeleton, no loss mask), re-derived; it returns -recall."""
    x = torch.softmax(x, 1)[:, 1:]
    axes = list(range(2, x.ndim))
    y = torch.zeros(x.shape[0], x.shape[1] + 1, *x.shape[2:], dtype=x.dtype)
    y.scatter_(1, skel.unsqueeze(1).long(), 1)
    y = y[:, 1:]
    sum_gt = y.sum(axes)
    inter = (x * y).sum(axes)
    if batch_dice:
        inter, sum_gt = inter.sum(0), sum_gt.sum(0)
    rec = (inter + smooth) / torch.clip(sum_gt + smooth, 1e-8)
    return -rec.mean()


@pytest.mark.parametrize("volume", [False, True])
@pytest.mark.parametrize("batch_dice", [False, True])
def test_skeleton_recall_equals_the_authors_loss(volume, batch_dice):
    seg, rng = _two_vessels(volume)
    seg = np.stack([seg, np.flip(seg, -1).copy()])
    x = torch.from_numpy(rng.normal(0, 2, (2, 3, *seg.shape[1:])))
    skel = torch.from_numpy(np.stack([_authors_transform(s) for s in seg]))
    expected = 1 + _authors_recall(x, skel, 1e-5, batch_dice)
    maps = torch.from_numpy(S.skeleton_maps(seg, "multiclass", num_classes=3, batched=True, backend="skimage"))
    got = S.skeleton_recall_loss(x, torch.from_numpy(seg), "multiclass", classes=[1, 2], skeletons=maps,
                                 per_image=not batch_dice)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------- MONAI ---
def test_soft_skeleton_equals_monai_and_the_authors_code():
    from monai.losses.cldice import soft_skel  # the authors' soft_skel, adapted by MONAI

    g = torch.Generator().manual_seed(0)
    for shape in ((2, 3, 11, 13), (1, 2, 6, 7, 8)):
        x = torch.rand(shape, generator=g, dtype=torch.float64)
        for k in (0, 1, 3, 10):
            torch.testing.assert_close(S.soft_skeleton(x, k), soft_skel(x, k), rtol=0, atol=1e-15)


def _vessel_case(seed, volume=False):
    g = torch.Generator().manual_seed(seed)
    shape = (2, 1, 8, 9, 10) if volume else (2, 1, 24, 20)
    t = (torch.rand(shape, generator=g, dtype=torch.float64) > 0.6).double()
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2 + (2 * t - 1)
    return x, t


@pytest.mark.parametrize("volume", [False, True])
def test_cldice_equals_monai_in_binary_mode(volume):
    # MONAI (monai/losses/cldice.py, SoftclDiceLoss) sums every channel of an image together and adds `smooth` to
    # the harmonic mean's denominator (refused at 0): one channel, a negligible smooth, and the definitions agree
    from monai.losses import SoftclDiceLoss, SoftDiceclDiceLoss

    x, t = _vessel_case(1, volume)
    monai = SoftclDiceLoss(iter_=4, smooth_nr=1.0, smooth_dr=1.0, smooth=1e-300, sigmoid=True, reduction="none")
    ours = S.cldice_loss(x, t, "binary", alpha=1.0, iterations=4, smooth=1.0, per_image=True, reduction="none")
    torch.testing.assert_close(ours[:, 0], monai(x, t), rtol=1e-12, atol=1e-14)
    both = SoftDiceclDiceLoss(iter_=4, alpha=0.3, smooth_nr=1.0, smooth_dr=1.0, smooth=1e-300, sigmoid=True)
    ours = S.cldice_loss(x, t, "binary", alpha=0.3, iterations=4, smooth=1.0, per_image=True)
    torch.testing.assert_close(ours, both(x, t), rtol=1e-12, atol=1e-14)


def test_cldice_per_class_differs_from_monai_summing_the_channels():
    from monai.losses import SoftclDiceLoss

    x, t = _vessel_case(2)
    x, t = torch.cat([x, -x], 1), torch.cat([t, 1 - t], 1)      # two channels, multilabel
    monai = SoftclDiceLoss(iter_=3, smooth=1e-300, sigmoid=True, reduction="none")(x, t)
    ours = S.cldice_loss(x, t, "multilabel", alpha=1.0, iterations=3, per_image=True, reduction="none")
    assert not torch.allclose(ours.mean(1), monai, rtol=1e-3)


# ---------------------------------------------------------------------------------------- the loss's paths ---
@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
def test_precomputed_skeletons_equal_the_skeletons_of_the_step(mode):
    g = torch.Generator().manual_seed(4)
    c = 1 if mode == "binary" else 3
    x = torch.randn(2, c, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    if mode == "multiclass":
        t = torch.randint(0, c, (2, 9, 11), generator=g)
    else:
        t = (torch.rand(2, c, 9, 11, generator=g) > 0.4).double()
    maps = S.skeleton_maps(t, mode, num_classes=c, batched=True)
    a = S.skeleton_recall_loss(x, t, mode, per_image=True, reduction="none")
    b = S.skeleton_recall_loss(x, t, mode, per_image=True, reduction="none", skeletons=maps)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    ga, = torch.autograd.grad(a.sum(), x)
    gb, = torch.autograd.grad(b.sum(), x)
    torch.testing.assert_close(ga, gb, rtol=0, atol=0)
    module = S.SkeletonRecallLoss(mode, per_image=True, reduction="none")
    torch.testing.assert_close(module(x, t, skeletons=maps), b, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["cldice", "skeleton_recall"])
def test_ignored_pixels_get_no_gradient_and_their_nan_reaches_nothing(name):
    fn = getattr(S, f"{name}_loss")
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 10, 12, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (2, 10, 12), generator=g)
    t[:, 3:5, 2:9] = 255
    x[:, :, 3:5, 2:9] = float("nan")
    x.requires_grad_(True)
    loss = fn(x, t, "multiclass", ignore_index=255)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert (x.grad[:, :, 3:5, 2:9] == 0).all() and (x.grad != 0).any()


def test_cldice_limits():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 9, 10, generator=g, dtype=torch.float64)
    t = torch.randint(0, 3, (2, 9, 10), generator=g)
    dice = S.dice_loss(x, t, "multiclass", smooth=0.5, reduction="none")
    torch.testing.assert_close(S.cldice_loss(x, t, "multiclass", alpha=0.0, smooth=0.5, reduction="none"), dice)
    cl = S.cldice_loss(x, t, "multiclass", alpha=1.0, smooth=0.5, reduction="none")
    mixed = S.cldice_loss(x, t, "multiclass", alpha=0.25, smooth=0.5, reduction="none")
    torch.testing.assert_close(mixed, 0.75 * dice + 0.25 * cl)
    # a perfect hard prediction: clDice 0
    p = torch.nn.functional.one_hot(t, 3).movedim(-1, 1).double()
    assert S.cldice_loss(p, t, "multiclass", alpha=1.0, from_logits=False).item() == pytest.approx(0, abs=1e-12)


# ----------------------------------------------------------------------------------------------- errors ---
def test_errors_name_the_argument():
    x, t = torch.randn(2, 1, 6, 6), (torch.rand(2, 1, 6, 6) > 0.5).float()
    with pytest.raises(ValueError, match=r"`alpha` must be <= 1.0; got 1.5"):
        S.cldice_loss(x, t, "binary", alpha=1.5)
    with pytest.raises(ValueError, match=r"`iterations` must be >= 0; got -1"):
        S.cldice_loss(x, t, "binary", iterations=-1)
    with pytest.raises(TypeError, match=r"`iterations` must be an int; got bool"):
        S.ClDiceLoss("binary", iterations=True)(x, t)
    with pytest.raises(ValueError, match=r"`skeletons` must have shape \(N, C, \*spatial\) = \(2, 1, 6, 6\)"):
        S.skeleton_recall_loss(x, t, "binary", skeletons=torch.zeros(2, 2, 6, 6))
    with pytest.raises(TypeError, match=r"`skeletons` must be a torch.Tensor"):
        S.skeleton_recall_loss(x, t, "binary", skeletons=np.zeros((2, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"1 to 3 spatial axes .* skeleton-based loss"):
        S.skeleton_recall_loss(torch.randn(4, 3), torch.randint(0, 3, (4,)), "multiclass")
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, C, \*spatial\) with 1 to 3 spatial axes"):
        S.soft_skeleton(torch.rand(2, 3))
    with pytest.raises(TypeError, match=r"`x` must be a floating-point tensor"):
        S.soft_skeleton(torch.ones(1, 1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`backend` must be one of"):
        S.skeleton_maps(t, "binary", batched=True, backend="scipy")
    with pytest.raises(ValueError, match=r"backend='skimage' needs 2 or 3 spatial axes"):
        S.skeleton_maps(np.ones((2, 5)), "binary", batched=True, backend="skimage")
    with pytest.raises(ValueError, match=r"`num_classes` is required"):
        S.skeleton_maps(torch.zeros(4, 4, dtype=torch.long), "multiclass")


@pytest.mark.parametrize("shape", [(17, 23), (9, 10, 11), (40,)])
def test_hard_skeleton_equals_the_oracle_run_until_nothing_is_left(shape):
    import oracle_topology

    g = torch.Generator().manual_seed(len(shape))
    blobs = torch.rand((3, 1, *shape), generator=g)
    pool = {1: torch.nn.functional.avg_pool1d, 2: torch.nn.functional.avg_pool2d,
            3: torch.nn.functional.avg_pool3d}[len(shape)]
    mask = pool(blobs, 5, 1, 2) > 0.5                       # smooth blobs: thick and thin parts
    ours = hard_skeleton(mask[:, 0], len(shape))
    for i in range(3):
        expected = oracle_topology.hard_skel(mask[i, 0].numpy(), tuple(range(len(shape))))
        np.testing.assert_array_equal(ours[i].numpy(), expected)
    assert ours.any()
