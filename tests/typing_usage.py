"""A typed use of every public name of :mod:`seglosses`, checked by mypy (tests/test_typing.py; config in
pyproject.toml) and run there too, so that each call below is both well-typed and valid.

:func:`use` calls every loss function, builds every Module with typical options and calls the tools; each
``assert_type`` fails the check if a result is not typed (``Any`` included). :func:`wrong` is type-checked only, never
run: each of its calls must be refused by the hints, and ``warn_unused_ignores`` makes its ``# type: ignore[...]``
an error the day a hint stops refusing it.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from typing_extensions import assert_type

import seglosses
from seglosses.core.args import Mode
from seglosses.core.module import LossModule


def _losses(x: torch.Tensor, t: torch.Tensor, xb: torch.Tensor, tb: torch.Tensor) -> list[torch.Tensor]:
    """Every loss function once (multiclass ``x, t``; binary ``xb, tb``)."""
    mode: Mode = "multiclass"
    return [
        assert_type(seglosses.focal_loss(x, t, mode, alpha=[0.2, 0.3, 0.5], gamma=2.0, ignore_index=255), torch.Tensor),
        seglosses.focal_loss(xb, tb, "binary", alpha=0.25, weight=torch.ones(1), reduction="none"),
        seglosses.sigmoid_focal_loss(xb, tb, alpha=0.25, gamma=2, reduction="sum"),
        seglosses.dice_loss(x, t, mode, smooth=1.0, per_image=True, classes=[1, 2], weight=(1.0, 2.0, 1.0)),
        seglosses.jaccard_loss(xb, tb, "binary", log_loss=True, from_logits=True),
        seglosses.tversky_loss(x, t, mode, alpha=0.3, beta=0.7, reduction="sum", process_group=None),
        seglosses.focal_tversky_loss(x, t, mode, gamma=0.75, ignore_index=None),
        seglosses.generalized_dice_loss(x, t, mode, weight_type="simple", dist_sync=False),
        seglosses.lovasz_loss(x, t, mode, classes="present", per_image=True),
        seglosses.lovasz_loss(xb, tb, "binary", classes=[0], weight=torch.ones(1)),
        seglosses.cross_entropy_loss(x, t, mode, weight=torch.ones(3), label_smoothing=0.1),
        seglosses.weighted_cross_entropy_loss(xb, tb, "binary", beta=3.0),
        seglosses.balanced_cross_entropy_loss(xb, tb, "multilabel", beta="auto"),
        seglosses.sensitivity_specificity_loss(x, t, mode, r=0.05),
        seglosses.log_cosh_dice_loss(x, t, mode, smooth=1e-5),
        seglosses.exp_log_loss(x, t, mode, w_dice=0.8, w_cross=0.2, class_frequency=[1.0, 2.0, 3.0]),
        seglosses.combo_loss(xb, tb, "binary", alpha=0.5, beta=[0.6], reduction="sum"),
        seglosses.unified_focal_loss(x, t, mode, lam=0.5, delta=0.6, gamma=0.5, background=0),
        seglosses.boundary_loss(x, t, mode, classes=[1, 2], spacing=(1.0, 0.5)),
        seglosses.boundary_loss(xb, tb, "binary", dist_maps=seglosses.distance_maps(tb, "binary", batched=True)),
        seglosses.hausdorff_dt_loss(x, t, mode, alpha=2.0, spacing=1.0, backend="torch"),
        seglosses.mcc_loss(x, t, mode, smooth=1e-5, per_image=True, weight=[1.0, 2.0, 1.0], classes=[1, 2]),
        seglosses.generalized_wasserstein_dice_loss(x, t, mode, distance_matrix=[[0.0, 1.0, 1.0], [1.0, 0.0, 0.5],
                                                    [1.0, 0.5, 0.0]], weighting_mode="GDL", ignore_index=255),
        seglosses.distance_penalized_cross_entropy_loss(x, t, mode, spacing=(1.0, 0.5), backend="torch"),
        seglosses.distance_penalized_cross_entropy_loss(
            xb, tb, "binary", dist_maps=seglosses.contour_maps(tb, "binary", kind="penalty")),
        seglosses.shape_aware_loss(x, t, mode, ignore_index=None, reduction="sum"),
        seglosses.shape_aware_loss(x, t, mode, dist_maps=seglosses.contour_maps(t, mode, num_classes=3, kind="contour")),
        seglosses.boundary_dou_loss(x, t, mode, per_image=True, classes=[1, 2]),
        seglosses.topk_cross_entropy_loss(x, t, mode, k=10.0, per_image=True, weight=[1.0, 2.0, 3.0]),
        seglosses.ohem_cross_entropy_loss(x, t, mode, threshold=0.7, min_kept=1000, label_smoothing=0.1),
        seglosses.poly_loss(x, t, mode, epsilon=1.0, gamma=2.0, alpha=0.25),
        seglosses.ssim_loss(x, t, mode, window_size=5, sigma=1.5, padding="valid"),
        seglosses.correlation_ssim_loss(x, t, mode, beta=0.1, window_size=3, classes=[1, 2]),
        seglosses.cldice_loss(x, t, mode, alpha=0.5, iterations=3, classes=[1, 2]),
        seglosses.skeleton_recall_loss(xb, tb, "binary",
                                       skeletons=seglosses.skeleton_maps(tb, "binary", batched=True)),
    ]


def _modules() -> list[nn.Module]:
    """Every loss Module once, with the options of its function."""
    mode: Mode = "multiclass"
    modules: list[nn.Module] = [
        seglosses.FocalLoss(mode, alpha=[0.2, 0.3, 0.5], gamma=2.0),
        seglosses.DiceLoss(mode, smooth=1.0, classes=[1, 2], weight=torch.ones(3)),
        seglosses.JaccardLoss(mode=mode, per_image=True),
        seglosses.TverskyLoss(mode, alpha=0.7, beta=0.3),
        seglosses.FocalTverskyLoss(mode, gamma=0.75),
        seglosses.GeneralizedDiceLoss(mode, weight_type="uniform"),
        seglosses.LovaszLoss(mode, classes="all"),
        seglosses.CrossEntropyLoss(mode, label_smoothing=0.1, ignore_index=255),
        seglosses.WeightedCrossEntropyLoss(mode, beta=[1.0, 2.0, 3.0]),
        seglosses.BalancedCrossEntropyLoss(mode, beta=0.5),
        seglosses.SensitivitySpecificityLoss(mode, r=0.1),
        seglosses.LogCoshDiceLoss(mode, reduction="sum"),
        seglosses.ExpLogLoss(mode, gamma_dice=0.3),
        seglosses.ComboLoss(mode, alpha=0.5, beta="auto"),
        seglosses.UnifiedFocalLoss(mode, asymmetric=False),
        seglosses.BoundaryLoss(mode, classes=[1, 2]),
        seglosses.HausdorffDTLoss(mode, alpha=1.0),
        seglosses.MCCLoss(mode, classes=[1, 2]),
        seglosses.GeneralizedWassersteinDiceLoss(mode, distance_matrix=torch.ones(3, 3) - torch.eye(3)),
        seglosses.DistancePenalizedCrossEntropyLoss(mode, spacing=1.0),
        seglosses.ShapeAwareLoss(mode, backend="torch"),
        seglosses.BoundaryDoULoss(mode, per_image=True),
        seglosses.TopKCrossEntropyLoss(mode, k=5.0, ignore_index=255),
        seglosses.OHEMCrossEntropyLoss(mode, min_kept=10, per_image=True),
        seglosses.PolyLoss(mode, epsilon=-1.0, weight=[1.0, 2.0, 3.0]),
        seglosses.SSIMLoss(mode, window_size=7, padding="same"),
        seglosses.CorrelationSSIMLoss(mode, beta=0.2),
        seglosses.ClDiceLoss(mode, iterations=3, weight=[1.0, 2.0, 1.0]),
        seglosses.SkeletonRecallLoss(mode, classes=[1, 2]),
    ]
    assert_type(seglosses.DiceLoss("binary"), seglosses.DiceLoss)
    return modules


def use() -> None:
    """Runs every call (tests/test_typing.py): the typed examples are valid ones."""
    x, t = torch.randn(2, 3, 6, 6), torch.randint(0, 3, (2, 6, 6))
    xb, tb = torch.randn(2, 1, 6, 6), torch.randint(0, 2, (2, 1, 6, 6)).float()
    for value in _losses(x, t, xb, tb):
        assert isinstance(value, torch.Tensor)
    for module in _modules():
        assert isinstance(module(x, t), torch.Tensor)

    loss = 0.5 * seglosses.DiceLoss("multiclass") + seglosses.FocalLoss("multiclass")
    total = seglosses.WeightedSum([(0.5, seglosses.DiceLoss("multiclass")), (1.0, seglosses.FocalLoss("multiclass"))])
    assert_type(total.forward(x, t), torch.Tensor)  # (calling a Module is Any: torch's nn.Module.__call__)
    rebuilt = seglosses.from_config(assert_type(total.to_config(), dict[str, Any]))
    assert_type(rebuilt, nn.Module)
    assert isinstance(loss(x, t), torch.Tensor) and isinstance(rebuilt(x, t), torch.Tensor)
    assert_type(seglosses.loss_classes(), dict[str, type[LossModule]])
    deep = seglosses.DeepSupervision(loss, weights=[1.0, 0.5])
    assert_type(deep.forward([x, x[..., ::2, ::2]], t), torch.Tensor)
    assert_type(deep.level_weights(2), tuple[float, ...])

    seglosses.validate(x, t, "multiclass", ignore_index=None, from_logits=True)
    seglosses.set_cpu_kernels("eager")
    assert_type(seglosses.get_cpu_kernels(), Literal["auto", "inductor", "eager"])

    mask = torch.zeros(2, 6, 6, dtype=torch.bool)
    mask[:, 2:4, 2:4] = True
    assert_type(seglosses.edt(mask, ndim=2), torch.Tensor)
    assert_type(seglosses.signed_distance(mask, ndim=2, spacing=(1.0, 2.0), dtype=torch.float32), torch.Tensor)
    assert_type(seglosses.boundary_distance(mask, ndim=2, backend="torch"), torch.Tensor)
    array = mask.numpy()
    assert isinstance(seglosses.edt(array, dtype=np.float32), np.ndarray)
    assert isinstance(seglosses.distance_maps(t.numpy(), "multiclass", num_classes=3, batched=True, kind="unsigned"),
                      np.ndarray)
    assert_type(seglosses.distance_maps(t, "multiclass", num_classes=3, batched=True), torch.Tensor)
    assert_type(seglosses.soft_skeleton(torch.rand(2, 3, 6, 6), iterations=3), torch.Tensor)
    assert isinstance(seglosses.skeleton_maps(t.numpy(), "multiclass", num_classes=3, batched=True), np.ndarray)

    loader = [(x, t), (x, t)]
    assert_type(seglosses.class_counts(loader, 3), torch.Tensor)
    assert_type(seglosses.class_weights(loader, 3, "median", progress=False), torch.Tensor)
    metric = seglosses.ConfusionMetrics(3, "multiclass", ignore_index=255, per_image=True)
    metric.update(x, t)
    assert_type(metric.compute(), dict[str, torch.Tensor])
    assert_type(seglosses.confusion_scores(seglosses.confusion_matrix(t, t, 3), zero_division=float("nan")),
                dict[str, torch.Tensor])
    assert_type(seglosses.hausdorff_distance(mask, mask, percentile=None, spacing=(1.0, 0.5), ndim=2), torch.Tensor)
    assert_type(seglosses.surface_dice(mask, mask, 1.0, spacing=2.0), torch.Tensor)
    surface = seglosses.SurfaceMetrics(3, tolerance=1.0, spacing=(1.0, 2.0))
    surface.update(x, t)
    assert_type(surface.compute(sync=False), dict[str, torch.Tensor])


def wrong(x: torch.Tensor, t: torch.Tensor, name: str) -> None:
    """Calls the hints refuse (type-checked, never run)."""
    seglosses.dice_loss(x, t, "binay")  # type: ignore[arg-type]
    seglosses.dice_loss(x, t, name)  # type: ignore[arg-type]
    seglosses.focal_loss(x, t, "binary", reduction="avg")  # type: ignore[arg-type]
    seglosses.focal_loss(x.tolist(), t, "binary")  # type: ignore[arg-type]
    seglosses.combo_loss(x, t, "binary", reduction="none")  # type: ignore[arg-type]
    seglosses.lovasz_loss(x, t, "multiclass", classes="some")  # type: ignore[arg-type]
    seglosses.dice_loss(x, t, "binary", 1.0)  # type: ignore[call-arg]
    seglosses.DiceLoss("binary", smoth=1.0)  # type: ignore[call-arg]
    seglosses.FocalLoss("multiclass", gamma="2")  # type: ignore[arg-type]
    seglosses.BoundaryLoss("binary", dist_maps=x)  # type: ignore[call-arg]
    seglosses.SkeletonRecallLoss("binary", skeletons=x)  # type: ignore[call-arg]
    seglosses.set_cpu_kernels("fast")  # type: ignore[arg-type]
    seglosses.class_weights([t], 3, "log")  # type: ignore[arg-type]
    seglosses.ConfusionMetrics(3, "multi")  # type: ignore[arg-type]
    seglosses.distance_maps(t, "multiclass", kind="signd")  # type: ignore[arg-type]
