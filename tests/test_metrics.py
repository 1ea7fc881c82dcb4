"""seglosses.metrics: confusion counts and scores against hand values, the streaming accumulators (batches, per
image, modes, ignore_index, the empty-class policy, DDP), HD95 and normalised surface Dice against hand values and
MONAI's compute_hausdorff_distance / compute_surface_dice (anisotropic spacing, 2-D and 3-D)."""

import math
import warnings

import pytest
import torch

from seglosses.metrics import (
    METRICS,
    ConfusionMetrics,
    SurfaceMetrics,
    confusion_matrix,
    confusion_scores,
    hausdorff_distance,
    surface_dice,
)

NAN = math.nan

# target / prediction over 3 classes, one pixel ignored:
#   target 0 0 0 1 1 2 255 ; pred 0 0 1 1 2 2 0
T = torch.tensor([0, 0, 0, 1, 1, 2, 255])
P = torch.tensor([0, 0, 1, 1, 2, 2, 0])
# class 0: tp 2, fn 1, fp 0, tn 3; class 1: tp 1, fn 1, fp 1, tn 3; class 2: tp 1, fn 0, fp 1, tn 4
HAND = {"dice": [4 / 5, 1 / 2, 2 / 3], "iou": [2 / 3, 1 / 3, 1 / 2], "sensitivity": [2 / 3, 1 / 2, 1.0],
        "specificity": [1.0, 3 / 4, 4 / 5], "precision": [1.0, 1 / 2, 1 / 2]}


def _close(got, expected):
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), equal_nan=True)


# ---------------------------------------------------------------------------------------------------------------
# confusion matrix, scores
# ---------------------------------------------------------------------------------------------------------------


def test_confusion_matrix_and_scores_against_hand_values():
    m = confusion_matrix(P, T, 3, ignore_index=255)
    assert m.dtype == torch.int64 and m.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    s = confusion_scores(m)
    assert list(s) == list(METRICS)
    for k, v in HAND.items():
        _close(s[k], v)


def test_zero_division_is_one_by_default_and_nan_on_request():
    # class 1 never in target nor prediction: Dice, IoU, sensitivity, precision 0/0; class 2 never predicted
    m = torch.tensor([[3, 0, 0], [0, 0, 0], [2, 0, 0]])
    s, n = confusion_scores(m), confusion_scores(m, zero_division=NAN)
    _close(s["dice"], [6 / 8, 1.0, 0.0])
    _close(n["dice"], [6 / 8, NAN, 0.0])
    _close(s["precision"], [3 / 5, 1.0, 1.0])  # class 2: tp = fp = 0
    _close(n["precision"], [3 / 5, NAN, NAN])
    _close(s["specificity"], [0 / 2, 1.0, 1.0])  # class 1: tn 5, fp 0


def test_confusion_matrix_errors():
    with pytest.raises(ValueError, match="label 7"):
        confusion_matrix(P, torch.tensor([0, 0, 0, 1, 1, 2, 7]), 3)
    with pytest.raises(ValueError, match="label 255"):  # not ignored
        confusion_matrix(P, T, 3)
    with pytest.raises(ValueError, match="label -1"):
        confusion_matrix(P, torch.tensor([0, 0, 0, 1, 1, 2, -1]), 3, ignore_index=255)
    with pytest.raises(TypeError, match="integer class indices"):
        confusion_matrix(P.float(), T, 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(P[:3], T, 3)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(P, T, 1)
    with pytest.raises(ValueError, match="zero_division"):
        confusion_scores(torch.eye(2, dtype=torch.long), zero_division=2.0)


# ---------------------------------------------------------------------------------------------------------------
# ConfusionMetrics
# ---------------------------------------------------------------------------------------------------------------


def test_streaming_equals_one_matrix_and_logits_equal_labels():
    m = ConfusionMetrics(3, ignore_index=255)
    m.update(P[:4].view(1, 4), T[:4].view(1, 4))  # two batches of integer predictions
    m.update(P[4:].view(1, 3), T[4:].view(1, 3))
    assert m.confusion.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    out = m.compute()
    for k, v in HAND.items():
        _close(out[k], v)
        _close(out[f"mean_{k}"], sum(v) / 3)
    logits = torch.nn.functional.one_hot(P, 3).T.unsqueeze(0).double() * 3 - 1  # (1, 3, 7): argmax = P
    m2 = ConfusionMetrics(3, ignore_index=255)
    m2.update(logits, T.view(1, 7))
    assert torch.equal(m2.confusion, m.confusion)
    m.reset()
    assert int(m.confusion.sum()) == 0


def test_include_background_and_nan_classes_left_out_of_the_mean():
    m = ConfusionMetrics(3, ignore_index=255, include_background=False)
    m.update(P.view(1, 7), T.view(1, 7))
    _close(m.compute()["mean_dice"], (1 / 2 + 2 / 3) / 2)
    n = ConfusionMetrics(3, zero_division=NAN)
    n.update(torch.tensor([[0, 0, 1]]), torch.tensor([[0, 0, 0]]))  # class 2: 0/0 everywhere it can be
    out = n.compute()
    _close(out["dice"], [0.8, 0.0, NAN])
    _close(out["mean_dice"], 0.4)


def test_per_image_is_the_mean_of_image_scores():
    # image 0: target [0, 1, 1, 1], pred [0, 1, 0, 0] -> class 0 tp 1, fp 2: Dice 2/4; class 1 tp 1, fn 2: 2/4
    # image 1: target [0, 0, 0, 0], pred [0, 0, 0, 0] -> class 1 absent from both: 1 (or NaN); class 0 Dice 1
    t = torch.tensor([[0, 1, 1, 1], [0, 0, 0, 0]])
    p = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0]])
    one, nan, batch = (ConfusionMetrics(2, per_image=True), ConfusionMetrics(2, per_image=True, zero_division=NAN),
                       ConfusionMetrics(2))
    for m in (one, nan, batch):
        m.update(p[:1], t[:1])
        m.update(p[1:], t[1:])
    _close(one.compute()["dice"], [(1 / 2 + 1) / 2, (1 / 2 + 1) / 2])
    _close(nan.compute()["dice"], [(1 / 2 + 1) / 2, 1 / 2])
    _close(batch.compute()["dice"], [2 * 5 / (2 * 5 + 2), 2 / 4])  # summed counts: class 0 tp 5, fn 0, fp 2
    assert torch.equal(one.confusion, batch.confusion)


def test_binary_and_multilabel_against_hand_counts():
    # binary logits (N, 1, W); threshold 0.5 on the sigmoid: predicted where logit > 0; one element ignored
    x = torch.tensor([[[2.0, -1.0, 0.5, -3.0, 4.0]]])
    t = torch.tensor([[[1, 1, 0, 0, 255]]])
    m = ConfusionMetrics(None, "binary", ignore_index=255)
    m.update(x, t)
    assert m.confusion.tolist() == [[[1, 1], [1, 1]]]  # [target, pred]: tn 1, fp 1, fn 1, tp 1
    _close(m.compute()["dice"], [0.5])
    mp = ConfusionMetrics(1, "binary", from_logits=False, threshold=0.7)
    mp.update(torch.tensor([[0.8, 0.6, 0.9]]), torch.tensor([[1.0, 1.0, 0.0]]))  # (N, W), soft target > 0.5
    _close(mp.compute()["sensitivity"], [0.5])
    _close(mp.compute()["precision"], [0.5])
    ml = ConfusionMetrics(2, "multilabel")
    ml.update(torch.tensor([[[1, 1, 0], [0, 0, 0]]]), torch.tensor([[[1, 0, 0], [0, 0, 0]]]))  # integer masks
    out = ml.compute()
    _close(out["dice"], [2 / 3, 1.0])  # channel 1 empty in both: 1
    _close(out["specificity"], [1 / 2, 1.0])


def test_accumulator_errors():
    with pytest.raises(ValueError, match="mode"):
        ConfusionMetrics(3, "multi")
    with pytest.raises(TypeError, match="num_classes"):
        ConfusionMetrics(None)
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMetrics(3, "binary")
    with pytest.raises(ValueError, match="threshold"):
        ConfusionMetrics(None, "binary", from_logits=False, threshold=1.5)
    m = ConfusionMetrics(3)
    with pytest.raises(ValueError, match=r"\(N, C, \*\)"):
        m.update(torch.randn(2, 4, 5), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        m.update(torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer class indices"):
        m.update(torch.randn(2, 3, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="label 3"):
        m.update(torch.randn(1, 3, 2), torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match="shape"):
        ConfusionMetrics(2, "multilabel").update(torch.randn(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(TypeError, match="sync"):
        m.compute(sync="yes")


def test_update_has_no_host_sync_on_meta_tensors():
    # meta tensors have no values: any read of one (a host sync on GPUs) raises
    for per_image in (False, True):
        m = ConfusionMetrics(3, ignore_index=255, per_image=per_image)
        m.update(torch.randn(2, 3, 8, device="meta"), torch.zeros(2, 8, dtype=torch.long, device="meta"))
        b = ConfusionMetrics(2, "multilabel", ignore_index=255, per_image=per_image)
        b.update(torch.randn(2, 2, 8, device="meta"), torch.zeros(2, 2, 8, device="meta"))
    assert m.confusion.device.type == "meta"


def test_the_accelerator_counting_path_gives_the_same_counts(monkeypatch):
    # index_add_ (used off the CPU) against bincount, on CPU tensors
    import seglosses.metrics as M

    g = torch.Generator().manual_seed(5)
    x, t = torch.randn(3, 4, 5, 6, generator=g), torch.randint(0, 4, (3, 5, 6), generator=g)
    t[0, 0] = 255
    ref = [ConfusionMetrics(4, ignore_index=255, per_image=p) for p in (False, True)]
    for m in ref:
        m.update(x, t)
    monkeypatch.setattr(M, "_BINCOUNT_DEVICES", ())
    for m in ref:
        other = ConfusionMetrics(4, ignore_index=255, per_image=m.per_image)
        other.update(x, t)
        assert torch.equal(other.confusion, m.confusion) and torch.equal(other.image_sum, m.image_sum)


def test_compute_all_reduces_over_ranks(monkeypatch):
    # a mocked two-rank all_reduce (each rank holds the same counts): the state doubles, the module's stays as is
    import torch.distributed as dist

    import seglosses.metrics as M

    calls = []

    def all_reduce(t, op=None, group=None):
        calls.append(group)
        t.mul_(2)

    monkeypatch.setattr(M, "is_active", lambda: True)
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    m = ConfusionMetrics(3, ignore_index=255)
    m.update(P.view(1, 7), T.view(1, 7))
    before = m.confusion.clone()
    out = m.compute(group="g")
    assert calls == ["g"] * 3 and torch.equal(m.confusion, before)
    _close(out["dice"], HAND["dice"])  # scores of doubled counts: the same ratios
    m.compute(sync=False)
    assert len(calls) == 3


@pytest.mark.slow
def test_two_process_gloo_reduction(tmp_path):
    import _metrics_dist_worker as W

    torch.multiprocessing.spawn(W.check, args=(2, str(tmp_path / "init")), nprocs=2, join=True)


# ---------------------------------------------------------------------------------------------------------------
# HD95 and normalised surface Dice
# ---------------------------------------------------------------------------------------------------------------


def _line(n, lo, hi):
    m = torch.zeros(n, dtype=torch.bool)
    m[lo:hi] = True
    return m


def test_distances_against_hand_values_1d():
    # pred {1, 2}, target {2..5} on a line of 8: borders {1, 2} and {2, 5};
    # pred -> target distances (1, 0), target -> pred (0, 3)
    p, t = _line(8, 1, 3), _line(8, 2, 6)
    hd = hausdorff_distance(p, t, percentile=None, spacing=2.0)
    assert hd.shape == () and float(hd) == 6.0
    # percentile 50: pred side (0, 1) -> 0.5, target side (0, 3) -> 1.5; times the spacing
    assert float(hausdorff_distance(p, t, percentile=50, spacing=2.0)) == 3.0
    assert float(surface_dice(p, t, 1.0)) == 3 / 4
    assert float(surface_dice(p, t, 3.0)) == 1.0
    assert float(surface_dice(p, t, 2.0, spacing=2.0)) == 3 / 4


def test_distances_against_hand_values_2d_anisotropic():
    # one pixel each, at (0, 0) and (1, 2), spacing (3, 1): distance sqrt(9 + 4)
    p, t = torch.zeros(1, 2, 3, dtype=torch.bool), torch.zeros(1, 2, 3, dtype=torch.bool)
    p[0, 0, 0] = t[0, 1, 2] = True
    torch.testing.assert_close(hausdorff_distance(p, t, spacing=(3.0, 1.0), ndim=2),
                               torch.tensor([math.sqrt(13)], dtype=torch.float64))
    assert surface_dice(p, t, 3.61, spacing=(3.0, 1.0), ndim=2).tolist() == [1.0]
    assert surface_dice(p, t, 3.6, spacing=(3.0, 1.0), ndim=2).tolist() == [0.0]


def test_empty_masks():
    e, m = torch.zeros(2, 5, dtype=torch.bool), torch.zeros(2, 5, dtype=torch.bool)
    m[0, 1:3] = True
    # (empty, empty) and (empty, mask) per row, ndim=1
    assert hausdorff_distance(e[:1].expand(2, 5), m, ndim=1).tolist() == [math.inf, 0.0]
    assert surface_dice(m, e, 1.0, ndim=1).tolist() == [0.0, 1.0]
    assert math.isnan(hausdorff_distance(e, e, ndim=1, empty=NAN)[0])
    assert math.isnan(surface_dice(e, e, 1.0, ndim=1, empty=NAN)[0])


def test_distance_errors():
    m = torch.zeros(4, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match="threshold it"):
        hausdorff_distance(m.float(), m)
    with pytest.raises(ValueError, match="shape"):
        surface_dice(m, m[:2], 1.0)
    with pytest.raises(ValueError, match="percentile"):
        hausdorff_distance(m, m, percentile=101)
    with pytest.raises(ValueError, match="tolerance"):
        surface_dice(m, m, -1.0)
    with pytest.raises(ValueError, match="spacing"):
        hausdorff_distance(m, m, spacing=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="ndim"):
        hausdorff_distance(m, m, ndim=3)


def _blobs(shape, seed):
    g = torch.Generator().manual_seed(seed)
    pool = torch.nn.functional.avg_pool2d if len(shape) == 4 else torch.nn.functional.avg_pool3d
    return pool(torch.rand(shape, generator=g), 3, 1, 1) > 0.5


@pytest.mark.parametrize("shape,spacing", [((2, 3, 13, 17), (0.7, 1.9)), ((2, 2, 6, 9, 7), (1.5, 0.8, 1.2))],
                         ids=["2d", "3d"])
def test_against_monai(shape, spacing):
    monai_metrics = pytest.importorskip("monai.metrics")
    p, t = _blobs(shape, 0), _blobs(shape, 1)
    p[1, 0] = t[1, 0] = False  # both empty: MONAI NaN
    p[0, 1] = False  # pred empty: MONAI inf (HD) / NaN (HD95, torch.quantile of infinities) and 0 (NSD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns about the empty masks
        for q in (95, None):
            ref = monai_metrics.compute_hausdorff_distance(p.float(), t.float(), include_background=True,
                                                           percentile=q, spacing=spacing).double()
            ours = hausdorff_distance(p, t, percentile=q, spacing=spacing, empty=NAN)
            assert ours[0, 1] == math.inf and math.isnan(ours[1, 0])
            if q is None:
                assert ref[0, 1] == math.inf
            ref[0, 1] = math.inf
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5, equal_nan=True)
        for tau in (0.5, 1.0, 2.0):
            ref = monai_metrics.compute_surface_dice(p.float(), t.float(), [tau] * shape[1], include_background=True,
                                                     spacing=spacing, use_subvoxels=False).double()
            ours = surface_dice(p, t, tau, spacing=spacing, empty=NAN)
            torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_surface_metrics_streams_per_class_means():
    # multiclass label maps (N, H, W) from integer predictions; per class, the mean over images of each image's value
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 3, (4, 7, 8), generator=g)
    p = torch.where(torch.rand(t.shape, generator=g) < 0.8, t, torch.randint(0, 3, t.shape, generator=g))
    t[0][t[0] == 2] = 0  # class 2 absent from image 0's target
    t[1, 0, 0] = 255
    m = SurfaceMetrics(3, tolerance=1.5, spacing=(1.0, 0.5), ignore_index=255)
    m.update(p[:2], t[:2])
    m.update(p[2:], t[2:])
    out = m.compute()
    valid = t != 255
    pm = torch.stack([(p == c) & valid for c in range(3)], 1)
    tm = torch.stack([(t == c) & valid for c in range(3)], 1)
    hd = hausdorff_distance(pm, tm, spacing=(1.0, 0.5))
    assert hd[0, 2] == math.inf  # predicted, absent from the target
    torch.testing.assert_close(out["hausdorff"], hd.mean(0))
    torch.testing.assert_close(out["surface_dice"], surface_dice(pm, tm, 1.5, spacing=(1.0, 0.5)).mean(0))
    assert list(out) == ["hausdorff", "surface_dice", "mean_hausdorff", "mean_surface_dice"]
