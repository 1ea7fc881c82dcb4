"""The demo's data module: the synthetic set (shape, determinism, class balance), the folder loader and the split."""

import numpy as np
import pytest
import torch

from seglosses.demo import data
from seglosses.demo.data import CLASS_NAMES, load_folder, split, synthetic

Image = pytest.importorskip("PIL.Image")


# ---------------------------------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def synth():
    return synthetic(256, size=64, seed=0)


def test_synthetic_shapes_dtypes_labels(synth):
    images, masks = synth
    assert images.shape == (256, 1, 64, 64) and images.dtype == torch.float32
    assert masks.shape == (256, 64, 64) and masks.dtype == torch.int64
    assert images.is_contiguous() and masks.is_contiguous()
    assert torch.isfinite(images).all()
    assert set(masks.unique().tolist()) == set(range(len(CLASS_NAMES)))
    assert abs(images.mean().item()) < 0.2 and 0.7 < images.std().item() < 1.3


def test_synthetic_class_shares(synth):
    _, masks = synth
    shares = torch.bincount(masks.flatten(), minlength=4).double() / masks.numel()
    assert 0.01 <= 1 - shares[0] <= 0.03, shares
    for c in (1, 2, 3):
        assert 0.001 <= shares[c] <= 0.03, (CLASS_NAMES[c], shares[c])
        present = (masks == c).flatten(1).any(1).double().mean()
        assert present >= 0.8, (CLASS_NAMES[c], present)


def test_synthetic_objects_stand_out(synth):
    # every foreground class differs from the background by contrast: the mean |intensity - local background|
    # over an object's pixels exceeds the background's (a learnable signal), though not for every object
    images, masks = synth
    x = images[:, 0]
    local = torch.nn.functional.avg_pool2d(x[:, None], 9, stride=1, padding=4, count_include_pad=False)[:, 0]
    dev = (x - local).abs()
    bg = dev[masks == 0].mean()
    for c in (1, 2, 3):
        assert dev[masks == c].mean() > 1.5 * bg, CLASS_NAMES[c]


def test_synthetic_deterministic():
    images, masks = synthetic(64, size=48, seed=0)
    again = synthetic(64, size=48, seed=0)
    assert torch.equal(images, again[0]) and torch.equal(masks, again[1])
    other = synthetic(64, size=48, seed=1)
    assert not torch.equal(other[0], images) and not torch.equal(other[1], masks)


def test_synthetic_independent_of_thread_count():
    # synthetic() runs on one intra-op thread (and restores the setting); the generator itself gives the same
    # bits on any number of threads
    threads = torch.get_num_threads()
    ref = synthetic(96, size=80, seed=3)
    assert torch.get_num_threads() == threads
    try:
        for t in (1, max(2, threads)):
            torch.set_num_threads(t)
            out = data._synthetic(96, 80, 3)
            assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1]), t
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("size", [16, 32, 96])
def test_synthetic_other_sizes(size):
    images, masks = synthetic(32, size=size, seed=2)
    assert images.shape == (32, 1, size, size) and masks.shape == (32, size, size)
    assert masks.min() >= 0 and masks.max() <= 3 and torch.isfinite(images).all()
    if size >= 32:
        fg = (masks > 0).double().mean()
        assert 0.005 < fg < 0.05
        for c in (1, 2, 3):
            assert (masks == c).flatten(1).any(1).double().mean() >= 0.8


def test_synthetic_empty_and_errors():
    images, masks = synthetic(0)
    assert images.shape == (0, 1, 64, 64) and masks.shape == (0, 64, 64)
    with pytest.raises(ValueError, match=r"`size` must be >= 16; got 8"):
        synthetic(2, size=8)
    with pytest.raises(ValueError, match=r"`n` must be >= 0; got -1"):
        synthetic(-1)
    with pytest.raises(TypeError, match=r"`size` must be an int; got float"):
        synthetic(2, size=64.0)


# ---------------------------------------------------------------------------------------------------- load_folder


def _write(root, images=None, masks=None, image_ext=".png"):
    (root / "images").mkdir(exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for stem, a in (images or {}).items():
        Image.fromarray(a).save(root / "images" / f"{stem}{image_ext}")
    for stem, a in (masks or {}).items():
        Image.fromarray(a).save(root / "masks" / f"{stem}.png")


def _set(rng, stems, shape=(12, 10), rgb=False, labels=3):
    images = {s: rng.integers(0, 256, (*shape, 3) if rgb else shape, dtype=np.uint8) for s in stems}
    masks = {s: rng.integers(0, labels, shape, dtype=np.uint8) for s in stems}
    return images, masks


@pytest.mark.parametrize("rgb", [False, True])
def test_load_folder_round_trip(tmp_path, rgb):
    rng = np.random.default_rng(0)
    images, masks = _set(rng, ["b", "a", "c"], rgb=rgb, labels=3)
    masks["a"][0, :4] = 255  # ignored pixels
    _write(tmp_path, images, masks)
    x, y, names = load_folder(tmp_path)
    ch = 3 if rgb else 1
    assert x.shape == (3, ch, 12, 10) and x.dtype == torch.float32
    assert y.shape == (3, 12, 10) and y.dtype == torch.int64
    assert names == ("class 0", "class 1", "class 2")
    for i, stem in enumerate(["a", "b", "c"]):  # sorted by stem
        assert np.array_equal(y[i].numpy(), masks[stem].astype(np.int64))
    assert (y[0, 0, :4] == 255).all()
    # standardised per channel over the set, and an affine image of the files' values
    x64 = x.double()
    assert torch.allclose(x64.mean((0, 2, 3)), torch.zeros(ch, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(x64.std((0, 2, 3), correction=0), torch.ones(ch, dtype=torch.float64), atol=1e-4)
    raw = np.stack([images[s] for s in "abc"]).astype(np.float64).reshape(3, 12, 10, ch).transpose(0, 3, 1, 2)
    ref = (raw - raw.mean((0, 2, 3), keepdims=True)) / raw.std((0, 2, 3), keepdims=True)
    np.testing.assert_allclose(x.numpy(), ref, atol=1e-5)


def test_load_folder_modes_and_classes(tmp_path):
    rng = np.random.default_rng(1)
    gray, masks = _set(rng, ["g"], labels=2)
    _write(tmp_path, gray, masks)
    rgba = rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "images" / "r.png")  # RGBA: alpha dropped; mixed set -> 3 channels
    pal = Image.fromarray(masks["g"]).convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    pal.save(tmp_path / "masks" / "r.png")  # palette mask: its indices are the labels
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / "images" / "j.jpg")
    Image.fromarray(masks["g"]).save(tmp_path / "masks" / "j.png")
    (tmp_path / "classes.txt").write_text("sky\nroad\ncar\n")
    x, y, names = load_folder(tmp_path)
    assert names == ("sky", "road", "car")
    assert x.shape == (3, 3, 12, 10)
    for c in (1, 2):  # the grayscale image g is repeated over the 3 channels (each then standardised)
        assert torch.corrcoef(torch.stack([x[0, 0].flatten(), x[0, c].flatten()]))[0, 1] > 0.9999
    for i in range(3):
        assert np.array_equal(y[i].numpy(), masks["g"])
    x, y, names = load_folder(tmp_path, num_classes=3)
    assert names == ("sky", "road", "car")
    (tmp_path / "classes.txt").unlink()
    x, y, names = load_folder(tmp_path, num_classes=5)
    assert names == tuple(f"class {i}" for i in range(5))
    x, y, names = load_folder(tmp_path)
    assert names == ("class 0", "class 1")


def test_load_folder_at_least_two_classes(tmp_path):
    _write(tmp_path, {"a": np.zeros((4, 4), np.uint8)}, {"a": np.full((4, 4), 255, np.uint8)})
    _, y, names = load_folder(tmp_path)
    assert names == ("class 0", "class 1") and (y == 255).all()


def test_load_folder_errors(tmp_path):
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match=r"`path` .*nowhere is not an existing folder"):
        load_folder(tmp_path / "nowhere")
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match=r"has no masks/ subfolder"):
        load_folder(tmp_path)
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match=r"images holds no images"):
        load_folder(tmp_path)

    images, masks = _set(rng, [f"s{i}" for i in range(7)])
    _write(tmp_path, images, {k: v for k, v in masks.items() if k in ("s0",)})
    with pytest.raises(ValueError, match=r"6 image\(s\) in .*images have no mask .*: s1, s2, s3, s4, s5 and 1 more"):
        load_folder(tmp_path)
    for stem in list(images)[1:]:
        (tmp_path / "images" / f"{stem}.png").unlink()
    _write(tmp_path, masks={"x": masks["s1"]})
    with pytest.raises(ValueError, match=r"1 mask\(s\) in .*masks have no image .*: x"):
        load_folder(tmp_path)
    (tmp_path / "masks" / "x.png").unlink()
    Image.fromarray(masks["s0"]).save(tmp_path / "masks" / "t.tif")
    _write(tmp_path, {"t": images["s0"]})
    with pytest.raises(ValueError, match=r"have no mask .*: t; masks must be .png files"):
        load_folder(tmp_path)
    (tmp_path / "masks" / "t.tif").unlink()

    # an image whose mask has another size
    _write(tmp_path, masks={"t": masks["s0"][:6]})
    with pytest.raises(ValueError, match=r"image .*t\.png has size \(H, W\) = \(12, 10\) but its mask .*t\.png has "
                                         r"\(6, 10\)"):
        load_folder(tmp_path)
    # images of different sizes
    _write(tmp_path, {"t": images["s0"][:6]}, {"t": masks["s0"][:6]})
    with pytest.raises(ValueError, match=r"image .*t\.png has size \(H, W\) = \(6, 10\) but .*s0\.png has \(12, 10\)"):
        load_folder(tmp_path)
    _write(tmp_path, {"t": images["s0"]}, {"t": masks["s0"]})
    load_folder(tmp_path)

    # labels out of range
    bad = masks["s0"].copy()
    bad[3, 3] = 7
    _write(tmp_path, masks={"t": bad})
    with pytest.raises(ValueError, match=r"mask .*t\.png holds label 7; expected labels in \[0, 3\) or "
                                         r"ignore_index=255"):
        load_folder(tmp_path, num_classes=3)
    assert load_folder(tmp_path)[2][-1] == "class 7"
    assert load_folder(tmp_path, num_classes=3, ignore_index=7)[1].max() == 7  # 7 is ignored, kept as is
    _write(tmp_path, masks={"t": masks["s0"]})

    # RGB mask, unreadable files
    Image.fromarray(np.stack([masks["s0"]] * 3, -1)).save(tmp_path / "masks" / "t.png")
    with pytest.raises(ValueError, match=r"mask .*t\.png has mode 'RGB'; expected a single-channel .*class index"):
        load_folder(tmp_path)
    _write(tmp_path, masks={"t": masks["s0"]})
    (tmp_path / "images" / "t.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"cannot read .*images.t\.png"):
        load_folder(tmp_path)
    _write(tmp_path, {"t": images["s0"]})

    # classes.txt that does not match
    (tmp_path / "classes.txt").write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"classes\.txt lists 2 class names but num_classes=3"):
        load_folder(tmp_path, num_classes=3)
    with pytest.raises(ValueError, match=r"mask .*s0\.png holds label 2; expected labels in \[0, 2\)"):
        load_folder(tmp_path)
    with pytest.raises(ValueError, match=r"`num_classes` must be >= 2; got 1"):
        load_folder(tmp_path, num_classes=1)
    with pytest.raises(TypeError, match=r"`ignore_index` must be an int; got float"):
        load_folder(tmp_path, ignore_index=255.0)


def test_load_folder_duplicate_stems(tmp_path):
    rng = np.random.default_rng(3)
    images, masks = _set(rng, ["a"])
    _write(tmp_path, images, masks)
    Image.fromarray(images["a"]).save(tmp_path / "images" / "a.jpg")
    with pytest.raises(ValueError, match=r"images holds two files with the stem 'a': a\.jpg and a\.png"):
        load_folder(tmp_path)


# ---------------------------------------------------------------------------------------------------- split


def test_split_deterministic_and_sizes():
    x = torch.arange(50.0)[:, None]
    y = torch.arange(50)
    (tx, ty), (vx, vy) = split(x, y, val_fraction=0.2, seed=4)
    assert len(tx) == len(ty) == 40 and len(vx) == len(vy) == 10
    assert torch.equal(tx[:, 0].long(), ty) and torch.equal(vx[:, 0].long(), vy)
    assert sorted(ty.tolist() + vy.tolist()) == list(range(50))
    (tx2, ty2), (vx2, vy2) = split(x, y, val_fraction=0.2, seed=4)
    assert torch.equal(ty, ty2) and torch.equal(vy, vy2)
    assert not torch.equal(vy, split(x, y, val_fraction=0.2, seed=5)[1][1])
    assert len(split(x[:3], y[:3], val_fraction=0.01)[1][0]) == 1
    assert len(split(x[:3], y[:3], val_fraction=0.99)[0][0]) == 1


def test_split_errors():
    x, y = torch.zeros(4, 2), torch.zeros(4)
    with pytest.raises(ValueError, match=r"`val_fraction` must be in \(0, 1\); got 1.5"):
        split(x, y, val_fraction=1.5)
    with pytest.raises(ValueError, match=r"same number of samples; got 4 and 3"):
        split(x, y[:3])
    with pytest.raises(ValueError, match=r"at least 2 samples to split; got 1"):
        split(x[:1], y[:1])
    with pytest.raises(TypeError, match=r"`masks` must be a torch.Tensor; got list"):
        split(x, [0, 1, 2, 3])
