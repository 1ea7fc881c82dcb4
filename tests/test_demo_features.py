"""The demo's weighted(...) and deep(...) losses: the grammar, the border weight maps against a brute-force NumPy
computation, weight maps read from DIR/weights, the U-Net's deep-supervision heads, and short training runs."""

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses.demo import losses as names
from seglosses.demo.train import Config, run
from seglosses.demo.unet import UNet
from seglosses.demo.weights import boundary_weights, load_weight_folder

TINY = {"size": 32, "train_images": 16, "val_images": 8, "batch_size": 8, "width": 8, "overlays": 2, "progress": False,
        "epochs": 1, "seeds": 1}


@pytest.mark.parametrize(("spec", "expected"), [
    ("dice", ("dice", False, False)),
    ("deep(dice+ce)", ("dice+ce", True, False)),
    ("weighted(0.5*dice)", ("0.5*dice", False, True)),
    ("deep(weighted(dice+ramp(0,1,epochs)*ce))", ("dice+ramp(0,1,epochs)*ce", True, True)),
    ("Weighted( Deep(dice) )", ("dice", True, True)),
    ("weighted(dice)+ce", ("weighted(dice)+ce", False, False)),  # not a wrapper of the whole spec: build refuses it
])
def test_wrappers(spec, expected):
    assert names.wrappers(spec) == expected


def test_build_wraps_deep_specs_and_refuses_bad_wrappers():
    loss = names.build("deep(dice+ramp(0,1,4)*ce)", epochs=4)
    assert isinstance(loss, seglosses.DeepSupervision) and loss.weights == "nnunet"
    loss.step(2)  # the schedule inside is stepped through the wrapper
    assert loss.loss.coefficients()["CrossEntropyLoss"] == pytest.approx(0.5)
    assert isinstance(names.build("weighted(dice)"), seglosses.DiceLoss)
    with pytest.raises(ValueError, match="given twice"):
        names.wrappers("deep(deep(dice))")
    with pytest.raises(ValueError, match="empty"):
        names.wrappers("weighted()")
    with pytest.raises(ValueError, match="cannot read"):
        names.build("weighted(dice)+ce")


def _brute_border_weights(m, w0, sigma, ignore):
    n, h, w = m.shape
    out = np.zeros((n, h, w))
    for k in range(n):
        border = np.zeros((h, w), bool)
        for i in range(h):
            for j in range(w):
                for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    a, b = i + di, j + dj
                    if 0 <= a < h and 0 <= b < w and m[k, i, j] != ignore and m[k, a, b] != ignore \
                            and m[k, a, b] != m[k, i, j]:
                        border[i, j] = True
        pts = np.argwhere(border)
        for i in range(h):
            for j in range(w):
                d = np.sqrt(((pts - [i, j]) ** 2).sum(1)).min() if len(pts) else math.inf
                out[k, i, j] = 0.0 if m[k, i, j] == ignore else 1 + w0 * math.exp(-d * d / (2 * sigma * sigma))
    return out


def test_border_weights_equal_a_brute_force_computation():
    g = torch.Generator().manual_seed(0)
    m = torch.randint(0, 3, (3, 9, 11), generator=g)
    m[0] = 1  # no border: weight 1 everywhere
    m[1, :, :4] = 255
    got = boundary_weights(m, w0=5.0, sigma=2.0, ignore_index=255)
    np.testing.assert_allclose(got.numpy(), _brute_border_weights(m.numpy(), 5.0, 2.0, 255), rtol=1e-6)
    assert got.dtype == torch.float32 and torch.equal(got[0], torch.ones(9, 11))
    with pytest.raises(ValueError, match="`masks`"):
        boundary_weights(m.float())
    with pytest.raises(ValueError, match="`sigma`"):
        boundary_weights(m, sigma=0.0)


def test_unet_heads_in_training_only():
    net = UNet(1, 3, width=4, deep_supervision=True)
    outs = net(torch.zeros(2, 1, 16, 16))
    assert [tuple(o.shape) for o in outs] == [(2, 3, 16, 16), (2, 3, 8, 8), (2, 3, 4, 4)]
    assert net.eval()(torch.zeros(2, 1, 16, 16)).shape == (2, 3, 16, 16)


def _folder(tmp_path, weights):
    Image = pytest.importorskip("PIL.Image")
    g = torch.Generator().manual_seed(1)
    for sub in ("images", "masks", "weights"):
        (tmp_path / sub).mkdir(parents=True)
    for i in range(12):
        img = torch.randint(0, 256, (16, 16), generator=g, dtype=torch.uint8)
        mask = (img > 128).to(torch.uint8) + (img > 200).to(torch.uint8)
        Image.fromarray(img.numpy(), mode="L").save(tmp_path / "images" / f"{i:02d}.png")
        Image.fromarray(mask.numpy(), mode="L").save(tmp_path / "masks" / f"{i:02d}.png")
        Image.fromarray(np.full((16, 16), weights(i), np.uint8), mode="L").save(tmp_path / "weights" / f"{i:02d}.png")
    return tmp_path


def test_weight_folder_is_read_in_stem_order_and_checked(tmp_path):
    root = _folder(tmp_path, lambda i: i)
    w = load_weight_folder(root)
    assert w.shape == (12, 16, 16) and w.dtype == torch.float32
    assert w[:, 0, 0].tolist() == [float(i) for i in range(12)]  # the PNG value is the weight
    (root / "weights" / "03.png").unlink()
    with pytest.raises(ValueError, match="03"):
        load_weight_folder(root)


def test_weights_of_one_train_like_no_weights_and_deep_supervision_trains(tmp_path):
    root = _folder(tmp_path / "data", lambda i: 1)
    base = {**TINY, "data": str(root), "batch_size": 4, "weight_map": "folder"}
    out = run(Config(losses=("dice", "weighted(dice)", "deep(weighted(dice+ce))"), out=str(tmp_path / "o"), **base))
    plain, weighted = (out["losses"][s]["per_seed"][0] for s in ("dice", "weighted(dice)"))
    # weight 1 everywhere: the same training (the weighted passes' float32 sums can differ in the last bits)
    for a, b in zip(plain["history"], weighted["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    deep = out["losses"]["deep(weighted(dice+ce))"]["per_seed"][0]
    assert deep["module"].startswith("DeepSupervision(") and math.isfinite(deep["history"][-1]["train_loss"])
    assert deep["run"]["weight_map"] == "folder" and "weight_map" not in plain["run"]


def test_border_weights_change_the_training(tmp_path):
    out = run(Config(losses=("dice", "weighted(dice)"), out=str(tmp_path / "o"), **TINY))
    plain, weighted = (out["losses"][s]["per_seed"][0]["history"][0]["train_loss"] for s in ("dice", "weighted(dice)"))
    assert plain != pytest.approx(weighted, rel=1e-3)
    with pytest.raises(ValueError, match="needs --data"):
        run(Config(losses=("weighted(dice)",), out=str(tmp_path / "p"), weight_map="folder", **TINY))
