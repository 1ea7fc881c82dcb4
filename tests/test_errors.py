"""Bad arguments raise ValueError/TypeError naming the argument, with what was expected and what came."""

import pytest
import torch

import seglosses as S
from _losses import CLASSES, COMPOUND, LOSSES, MODULES, PER_IMAGE, WEIGHTED
from seglosses import _registry

X = torch.zeros(2, 3, 4, 4)
T = torch.zeros(2, 4, 4, dtype=torch.long)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_common_errors(name):
    fn = LOSSES[name]
    with pytest.raises(ValueError, match=r"`mode` must be one of .*got 'softmax'"):
        fn(X, T, "softmax")
    with pytest.raises(ValueError, match=r"`reduction` must be one of .*got 'avg'"):
        fn(X, T, "multiclass", reduction="avg")
    with pytest.raises(ValueError, match=r"`target` must have shape \(N, \*\) = \(2, 4, 4\).*got \(2, 1, 4, 4\)"):
        fn(X, T.unsqueeze(1), "multiclass")
    with pytest.raises(ValueError, match=r"C >= 2.*got C = 1"):
        fn(X[:, :1], T, "multiclass")
    with pytest.raises(ValueError, match=r"`target` must have shape \(N, C, \*\) = \(2, 3, 4, 4\).*multilabel"):
        fn(X, T, "multilabel")
    with pytest.raises(ValueError, match=r"`target` must have the shape of `logits`"):
        fn(X[:, :1], T[:, :2], "binary")
    if name in WEIGHTED:
        with pytest.raises(ValueError, match=r"`weight` must have shape \(3,\).*got \(2,\)"):
            fn(X, T, "multiclass", weight=[1.0, 2.0])
        with pytest.raises(ValueError, match=r"`weight\[\d+\]` must be >= 0"):
            fn(X, T, "multiclass", weight=[1.0, -2.0, 1.0])
    if name in COMPOUND:
        with pytest.raises(ValueError, match=r"`reduction` must be 'mean' or 'sum' for a compound loss.*got 'none'"):
            fn(X, T, "multiclass", reduction="none")
    with pytest.raises(TypeError, match=r"`logits` must be a floating-point tensor; got dtype torch.int64"):
        fn(T.unsqueeze(1).expand(2, 3, 4, 4), T, "multiclass")
    with pytest.raises(TypeError, match=r"`logits` must be a torch.Tensor; got list"):
        fn([0.0], T, "multiclass")
    with pytest.raises(TypeError, match=r"`target` of shape \(N, \*\).*integer class indices.*torch.float32"):
        fn(X, T.float(), "multiclass")
    with pytest.raises(TypeError, match=r"`ignore_index` must be an int or None; got float"):
        fn(X, T, "multiclass", ignore_index=255.0)
    with pytest.raises(ValueError, match=r"`ignore_index` needs class-index targets"):
        fn(X, torch.softmax(X, 1), "multiclass", ignore_index=0)
    if name in CLASSES:
        with pytest.raises(ValueError, match=r"`classes` must hold indices in \[0, 3\); got 3"):
            fn(X, T, "multiclass", classes=[0, 3])
    if name in PER_IMAGE:
        with pytest.raises(TypeError, match=r"`per_image` must be a bool"):
            fn(X, T, "multiclass", per_image="yes")


@pytest.mark.parametrize("name", sorted(n for n in LOSSES if "smooth" in _registry.options(n)))
def test_smooth_errors(name):
    with pytest.raises(ValueError, match=r"`smooth` must be >= 0.0; got -1.0"):
        LOSSES[name](X, T, "multiclass", smooth=-1)


def test_loss_specific_errors():
    with pytest.raises(ValueError, match=r"`alpha` must be <= 1.0; got 1.5"):
        S.focal_loss(X, T.unsqueeze(1).expand(2, 3, 4, 4).float(), "multilabel", alpha=1.5)
    with pytest.raises(ValueError, match=r"`alpha` must be >= 0.0; got -0.5"):
        S.focal_loss(X, T, "multiclass", alpha=-0.5)
    with pytest.raises(ValueError, match=r"`gamma` must be >= 0.0; got -2.0"):
        S.focal_loss(X, T, "multiclass", gamma=-2)
    with pytest.raises(ValueError, match=r"`label_smoothing` must be <= 1.0; got 2.0"):
        S.focal_loss(X, T, "multiclass", label_smoothing=2)
    with pytest.raises(ValueError, match=r"`alpha` \+ `beta` must be > 0.*got 0.0 \+ 0.0"):
        S.tversky_loss(X, T, "multiclass", alpha=0, beta=0)
    with pytest.raises(ValueError, match=r"`beta` must be >= 0.0; got -1.0"):
        S.focal_tversky_loss(X, T, "multiclass", beta=-1)
    with pytest.raises(ValueError, match=r"`gamma` must be >= 0.0; got -1.0"):
        S.focal_tversky_loss(X, T, "multiclass", gamma=-1)
    with pytest.raises(ValueError, match=r"`weight_type` must be one of .*got 'cubic'"):
        S.generalized_dice_loss(X, T, "multiclass", weight_type="cubic")
    with pytest.raises(ValueError, match=r"`classes` must be None, 'present' or 'all'.*got 'some'"):
        S.lovasz_loss(X, T, "multiclass", classes="some")
    with pytest.raises(ValueError, match=r"`weighting_mode` must be one of \('default', 'GDL'\); got 'gdl'"):
        S.generalized_wasserstein_dice_loss(X, T, "multiclass", weighting_mode="gdl")
    with pytest.raises(ValueError, match=r"`distance_matrix` must have shape \(3, 3\).*got \(2, 2\)"):
        S.generalized_wasserstein_dice_loss(X, T, "multiclass", distance_matrix=[[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"`distance_matrix` must be 0 on its diagonal"):
        S.generalized_wasserstein_dice_loss(X, T, "multiclass", distance_matrix=torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"`distance_matrix\[1\]\[0\]` must be >= 0.0; got -1.0"):
        S.generalized_wasserstein_dice_loss(X, T, "multiclass", distance_matrix=[[0, 1, 1], [-1, 0, 1], [1, 1, 0]])
    with pytest.raises(ValueError, match=r"`distance_matrix` must hold a positive distance"):
        S.GeneralizedWassersteinDiceLoss("multiclass", distance_matrix=torch.zeros(3, 3))(X, T)
    with pytest.raises(ValueError, match=r"`distance_matrix` needs class-index targets"):
        S.generalized_wasserstein_dice_loss(X, torch.softmax(X, 1), "multiclass", distance_matrix=1 - torch.eye(3))
    with pytest.raises(TypeError, match=r"`distance_matrix` must be a \(3, 3\) matrix"):
        S.generalized_wasserstein_dice_loss(X, T, "multiclass", distance_matrix=[0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"`alpha` must have shape \(3,\)"):
        S.focal_loss(X, T, "multiclass", alpha=[0.1, 0.2])
    with pytest.raises(TypeError, match=r"`gamma` must be a number; got str"):
        S.focal_loss(X, T, "multiclass", gamma="2")
    with pytest.raises(ValueError, match=r"Invalid Value for arg 'reduction'"):
        S.sigmoid_focal_loss(X, X, reduction="avg")
    with pytest.raises(ValueError, match=r"`targets` must have the shape of `inputs`"):
        S.sigmoid_focal_loss(X, X[0])
    with pytest.raises(ValueError, match=r"`k` must be > 0.0; got 0.0"):
        S.topk_cross_entropy_loss(X, T, "multiclass", k=0)
    with pytest.raises(ValueError, match=r"`k` must be <= 100.0; got 150.0"):
        S.topk_cross_entropy_loss(X, T, "multiclass", k=150)
    with pytest.raises(ValueError, match=r"`threshold` must be <= 1.0; got 1.5"):
        S.ohem_cross_entropy_loss(X, T, "multiclass", threshold=1.5)
    with pytest.raises(ValueError, match=r"`min_kept` must be >= 0; got -1"):
        S.ohem_cross_entropy_loss(X, T, "multiclass", min_kept=-1)
    for bad in (2.5, True, "10"):
        with pytest.raises(TypeError, match=r"`min_kept` must be an int; got"):
            S.ohem_cross_entropy_loss(X, T, "multiclass", min_kept=bad)
    with pytest.raises(TypeError, match=r"`per_image` must be a bool; got str"):
        S.topk_cross_entropy_loss(X, T, "multiclass", per_image="yes")
    with pytest.raises(ValueError, match=r"`epsilon` must be >= -1.0; got -2.0"):
        S.poly_loss(X, T, "multiclass", epsilon=-2)
    with pytest.raises(ValueError, match=r"`alpha` must be <= 1.0; got 1.5"):
        S.poly_loss(X, T.unsqueeze(1).expand(2, 3, 4, 4).float(), "multilabel", alpha=1.5)
    with pytest.raises(ValueError, match=r"`window_size` must be an odd int >= 1.*got 4"):
        S.ssim_loss(X, T, "multiclass", window_size=4)
    with pytest.raises(ValueError, match=r"`sigma` must be > 0.0; got 0.0"):
        S.ssim_loss(X, T, "multiclass", sigma=0)
    with pytest.raises(ValueError, match=r"`padding` must be one of \('same', 'valid'\); got 'reflect'"):
        S.ssim_loss(X, T, "multiclass", padding="reflect")
    with pytest.raises(ValueError, match=r"`beta` must be <= 1.0; got 1.5"):
        S.correlation_ssim_loss(X, T, "multiclass", beta=1.5)
    with pytest.raises(ValueError, match=r"`logits` must have 1 to 3 spatial axes after \(N, C\) for the SSIM loss"):
        S.ssim_loss(X[:, :, 0, 0], T[:, 0, 0], "multiclass")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_rejects_bad_mode_at_construction(name):
    with pytest.raises(ValueError, match=r"`mode` must be one of"):
        MODULES[name]("sigmoid")


def test_validate():
    x = torch.zeros(2, 3, 4)
    S.validate(x, torch.tensor([[0, 1, 2, 255]] * 2), "multiclass", ignore_index=255)  # fine
    with pytest.raises(ValueError, match=r"class indices outside \[0, 3\) \(ignore_index=None\): 2 of 8 pixels, e.g. 255"):
        S.validate(x, torch.tensor([[0, 1, 2, 255]] * 2), "multiclass")
    with pytest.raises(ValueError, match=r"class indices outside \[0, 3\).*e.g. -1"):
        S.validate(x, torch.tensor([[0, 1, 2, -1]] * 2), "multiclass", ignore_index=255)
    bad = x.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"`logits` holds 1 non-finite values"):
        S.validate(bad, torch.zeros(2, 4, dtype=torch.long), "multiclass")
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\] with from_logits=False.*e.g. 1.5"):
        S.validate(torch.full((2, 1, 4), 1.5), torch.zeros(2, 1, 4), "binary", from_logits=False)
    with pytest.raises(ValueError, match=r"values in \[0, 1\] \(or ignore_index=None\).*e.g. 2.0"):
        S.validate(torch.zeros(2, 1, 4), torch.full((2, 1, 4), 2.0), "binary")
    S.validate(torch.zeros(2, 1, 4), torch.full((2, 1, 4), 255.0), "binary", ignore_index=255)
    with pytest.raises(ValueError, match=r"must sum to 1 over the class axis: 8 pixels"):
        S.validate(x, torch.full((2, 3, 4), 0.5), "multiclass")


@pytest.mark.parametrize("name, option", [("tversky", "alpha"), ("focal_tversky", "beta"), ("hausdorff_dt", "alpha"),
                                          ("combo", "alpha")])
def test_module_refuses_a_scalar_option_given_per_class_as_the_function_does(name, option):
    # only the options the function annotates as per-class vectors become buffers; a list for a scalar option is the
    # function's error, with the function's message (it used to become a buffer, then fail with another message)
    x = torch.randn(1, 3, 4, 4)
    t = torch.randint(0, 3, (1, 4, 4))
    kw = {option: [0.1, 0.2, 0.3]}
    with pytest.raises(TypeError) as fn_error:
        LOSSES[name](x, t, "multiclass", **kw)
    module = MODULES[name]("multiclass", **kw)
    assert option not in dict(module.named_buffers())
    with pytest.raises(TypeError) as module_error:
        module(x, t)
    assert str(module_error.value) == str(fn_error.value)


def test_per_class_options_are_those_the_signature_types_as_vectors():
    got = {name: set(cls.per_class_options()) for name, cls in MODULES.items() if cls.per_class_options()}
    assert got == {"focal": {"alpha", "weight"}, "poly": {"alpha", "weight"}, "weighted_cross_entropy": {"beta"},
                   "balanced_cross_entropy": {"beta"}, "combo": {"beta"}, "exp_log": {"class_frequency"},
                   **{n: {"weight"} for n in ("dice", "jaccard", "tversky", "focal_tversky", "generalized_dice",
                                              "lovasz", "cross_entropy", "sensitivity_specificity", "log_cosh_dice",
                                              "ssim", "correlation_ssim", "cldice", "skeleton_recall", "mcc",
                                              "topk_cross_entropy", "ohem_cross_entropy")}}
