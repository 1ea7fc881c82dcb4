"""seglosses.class_counts / class_weights: counts and weights of tiny datasets computed by hand, the item forms
(tensor, tuple, dict, Dataset, NumPy), uint8 targets, ignore_index, absent classes and bad input."""

import math

import numpy as np
import pytest
import torch

import seglosses
from seglosses import class_counts, class_weights

# two batches of two 2x3 images, 3 classes, 255 ignored:
#   image a: 0 0 0 / 0 1 1     image b: 0 0 0 / 0 0 255
#   image c: 2 2 0 / 0 0 1     image d: 255 255 255 / 255 255 255
A = [[0, 0, 0], [0, 1, 1]]
B = [[0, 0, 0], [0, 0, 255]]
C = [[2, 2, 0], [0, 0, 1]]
D = [[255] * 3] * 2
BATCHES = [torch.tensor([A, B], dtype=torch.uint8), torch.tensor([C, D], dtype=torch.uint8)]
# counts: class 0: 4 + 5 + 3 = 12, class 1: 2 + 1 = 3, class 2: 2; N = 17 valid pixels
COUNTS = [12, 3, 2]
# images where each class is present (valid pixels): 0 -> a, b, c (6 + 5 + 6 = 17); 1 -> a, c (12); 2 -> c (6)
PRESENT_PIXELS = [17, 12, 6]


def _w(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_counts_are_exact_int64():
    n = class_counts(BATCHES, 3, ignore_index=255)
    assert n.dtype == torch.int64 and n.tolist() == COUNTS


@pytest.mark.parametrize("form", ["tensor", "tuple", "list", "dict-target", "dict-mask", "dict-label", "numpy"])
def test_item_forms(form):
    wrap = {"tensor": lambda t: t, "tuple": lambda t: (torch.zeros(2, 3, 2, 3), t), "list": lambda t: [None, t],
            "dict-target": lambda t: {"image": 0, "target": t}, "dict-mask": lambda t: {"mask": t},
            "dict-label": lambda t: {"label": t}, "numpy": lambda t: t.numpy()}[form]
    assert class_counts([wrap(b) for b in BATCHES], 3, ignore_index=255).tolist() == COUNTS


def test_dataset_items_are_samples_and_a_dataloader_works():
    images = [torch.tensor(x) for x in (A, B, C, D)]

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.zeros(3, 2, 3), images[i]

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(images)

    ds = Samples()
    assert class_counts(ds, 3, ignore_index=255).tolist() == COUNTS
    assert class_counts(Stream(), 3, ignore_index=255).tolist() == COUNTS
    loader = torch.utils.data.DataLoader(ds, batch_size=3)  # batches of 3 and 1 images
    assert class_counts(loader, 3, ignore_index=255).tolist() == COUNTS
    # median frequency needs images: the same from the samples and the batches
    torch.testing.assert_close(class_weights(ds, 3, "median", ignore_index=255),
                               class_weights(loader, 3, "median", ignore_index=255))


def test_weights_against_hand_values():
    kw = {"ignore_index": 255}
    n, total = COUNTS, sum(COUNTS)
    torch.testing.assert_close(class_weights(BATCHES, 3, **kw), _w(*(total / (3 * c) for c in n)))
    f = [c / p for c, p in zip(n, PRESENT_PIXELS)]  # 12/17, 3/12, 2/6: median 1/3
    torch.testing.assert_close(class_weights(BATCHES, 3, "median", **kw), _w(*((1 / 3) / x for x in f)))
    torch.testing.assert_close(class_weights(BATCHES, 3, "enet", **kw),
                               _w(*(1 / math.log(1.02 + c / total) for c in n)))
    torch.testing.assert_close(class_weights(BATCHES, 3, "enet", c=1.5, **kw),
                               _w(*(1 / math.log(1.5 + c / total) for c in n)))
    for beta in (0.9, 0.5):
        raw = [(1 - beta) / (1 - beta ** c) for c in n]
        torch.testing.assert_close(class_weights(BATCHES, 3, "effective", beta=beta, **kw),
                                   _w(*(3 * r / sum(raw) for r in raw)))
    # beta = 0: every class weighs the same
    torch.testing.assert_close(class_weights(BATCHES, 3, "effective", beta=0.0, **kw), _w(1.0, 1.0, 1.0))


def test_median_of_an_even_count_is_the_mean_of_the_middle_values():
    # one image of 4 classes with 1, 2, 3, 4 pixels: f = n / 10, median (0.2 + 0.3) / 2 = 0.25
    t = torch.tensor([[0, 1, 1, 2, 2, 2, 3, 3, 3, 3]])
    torch.testing.assert_close(class_weights([t], 4, "median"), _w(2.5, 1.25, 0.25 / 0.3, 0.625))


def test_a_weight_is_ready_for_a_loss():
    w = class_weights(BATCHES, 3, ignore_index=255)
    x, t = torch.randn(2, 3, 2, 3), BATCHES[0].long()
    assert torch.isfinite(seglosses.cross_entropy_loss(x, t, "multiclass", weight=w, ignore_index=255))


def test_absent_class_weighs_zero_with_a_warning():
    for method in ("inverse", "median", "enet", "effective"):
        with pytest.warns(UserWarning, match=r"classes \[3\]"):
            w = class_weights(BATCHES, 4, method, ignore_index=255)
        assert w[3] == 0 and bool((w[:3] > 0).all())
    with pytest.warns(UserWarning):
        w = class_weights(BATCHES, 4, "effective", beta=0.9, ignore_index=255)
    assert float(w.sum()) == pytest.approx(4.0)


def test_errors():
    with pytest.raises(ValueError, match="label 255"):  # not ignored
        class_counts(BATCHES, 3)
    with pytest.raises(ValueError, match="label 2"):
        class_counts(BATCHES, 2, ignore_index=255)
    with pytest.raises(ValueError, match="label -1"):
        class_counts([torch.tensor([[0, -1]])], 2)
    with pytest.raises(TypeError, match="integer class indices"):
        class_counts([torch.zeros(2, 3)], 2)
    with pytest.raises(ValueError, match="keys"):
        class_counts([{"image": torch.zeros(2)}], 2)
    with pytest.raises(TypeError, match="iterable of batches"):
        class_counts(BATCHES[0], 3)
    with pytest.raises(TypeError, match="num_classes"):
        class_counts(BATCHES, 3.0)
    with pytest.raises(ValueError, match="method"):
        class_weights(BATCHES, 3, "log")
    with pytest.raises(ValueError, match="beta"):
        class_weights(BATCHES, 3, "effective", beta=1.0)
    with pytest.raises(ValueError, match="`c`"):
        class_weights(BATCHES, 3, "enet", c=1.0)
    with pytest.raises(ValueError, match="no valid pixel"):
        class_weights([torch.full((2, 2), 255)], 3, ignore_index=255)
    with pytest.raises(TypeError, match="progress"):
        class_counts(BATCHES, 3, ignore_index=255, progress="yes")


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    assert class_counts(BATCHES, 3, ignore_index=255, progress=True).tolist() == COUNTS
    assert "class counts" in capsys.readouterr().err
    class_counts(BATCHES, 3, ignore_index=255)  # auto: 2 batches, no bar
    assert capsys.readouterr().err == ""


def test_numpy_uint8_and_int32_targets_count_alike():
    a = [b.numpy() for b in BATCHES]
    b = [x.astype(np.int32) for x in a]
    assert class_counts(a, 3, ignore_index=255).tolist() == class_counts(b, 3, ignore_index=255).tolist() == COUNTS
