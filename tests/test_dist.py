"""dist_sync: region statistics all-reduced across torch.distributed ranks (gloo, spawned CPU processes)."""

import pytest
import torch

import seglosses as S
import _dist_worker as W


@pytest.mark.parametrize("world,sizes,empty_rank", [(2, [2, 3], None), (4, [1, 2, 1, 2], 2)],
                         ids=["2-ranks-uneven", "4-ranks-one-all-background"])
def test_every_rank_computes_the_global_loss_and_gradient(world, sizes, empty_rank, tmp_path):
    W.run(W.check_losses, world, str(tmp_path), sizes, empty_rank)


def test_ddp_training_equals_single_process(tmp_path):
    W.run(W.check_ddp, 2, str(tmp_path))


@pytest.mark.parametrize("name", sorted(W.REGION))
def test_without_process_group_it_is_the_local_loss(name):
    x, t, _ = W.batch("multiclass", [3], None)
    for opts in ({}, {"per_image": True}):
        torch.testing.assert_close(W.REGION[name](x, t, "multiclass", dist_sync=True, **opts),
                                   W.REGION[name](x, t, "multiclass", **opts))


def test_lovasz_rejects_dist_sync():
    x, t, _ = W.batch("multiclass", [2], None)
    with pytest.raises(ValueError, match="dist_sync"):
        S.lovasz_loss(x, t, "multiclass", dist_sync=True)


def test_dist_sync_must_be_bool():
    x, t, _ = W.batch("multiclass", [2], None)
    with pytest.raises(TypeError, match="dist_sync"):
        S.dice_loss(x, t, "multiclass", dist_sync="yes")
