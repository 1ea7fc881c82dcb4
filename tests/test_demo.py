"""`seglosses demo` end to end (tiny runs), determinism, resume after SIGTERM, --data, metrics, plots."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from seglosses.demo.metrics import confusion, mean, scores

TINY = ["--size", "32", "--train-images", "32", "--val-images", "8", "--batch-size", "8", "--epochs", "1",
        "--width", "8", "--overlays", "2", "--no-progress", "--seeds", "1"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "seglosses.demo", *args], capture_output=True, text=True, env=env,
                          timeout=300, **kw)


def _metrics(out):
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    keys = ("seed", "per_class", "history", "confusion", "predictions")
    return {k: [{kk: r[kk] for kk in keys} for r in v["per_seed"]] for k, v in m["losses"].items()}


def test_cli_writes_every_artifact(tmp_path):
    out = tmp_path / "run"
    r = _run([*TINY, "--losses", "ce,0.5*dice+focal", "--out", str(out)])
    assert r.returncode == 0, r.stderr
    for name in ("report.md", "metrics.json", "learning_curves.png", "predictions.png"):
        assert (out / name).stat().st_size > 0, name
    for png in ("learning_curves.png", "predictions.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| ce |" in report and "| 0.5*dice+focal |" in report and "![predictions](predictions.png)" in report
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["losses"]) == {"ce", "0.5*dice+focal"}
    r0 = m["losses"]["ce"]
    assert set(r0["per_class"]) == {"dice", "iou", "sensitivity", "specificity", "precision"}
    assert len(r0["per_class"]["dice"]) == 4 and len(r0["per_seed"]) == 1 and len(r0["per_seed"][0]["history"]) == 1
    assert "| ce |" in r.stdout  # the table is printed too


def test_identical_seeds_give_identical_results(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run([*TINY, "--losses", "dice", "--epochs", "2", "--out", str(a)]).returncode == 0
    assert _run([*TINY, "--losses", "dice", "--epochs", "2", "--out", str(b)]).returncode == 0
    assert _metrics(a) == _metrics(b)
    c = tmp_path / "c"
    assert _run([*TINY, "--losses", "dice", "--epochs", "2", "--seed", "1", "--out", str(c)]).returncode == 0
    assert _metrics(c) != _metrics(a)


@pytest.mark.slow
def test_resume_after_sigterm_gives_the_same_final_metrics(tmp_path):
    args = ["--size", "32", "--train-images", "128", "--val-images", "8", "--batch-size", "8", "--epochs", "4",
            "--width", "8", "--overlays", "2", "--no-progress", "--losses", "ce,dice", "--seeds", "1"]
    ref = tmp_path / "ref"
    assert _run([*args, "--out", str(ref)]).returncode == 0
    out = tmp_path / "resumed"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "seglosses.demo", *args, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = out / "checkpoints" / "ce" / "seed0.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert ckpt.exists(), "no checkpoint written"
    proc.send_signal(signal.SIGTERM)  # during the second epoch of the first loss
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command" in err
    assert not (out / "results" / "ce" / "seed0.json").exists() and not (out / "metrics.json").exists()
    state = torch.load(ckpt, weights_only=False)
    assert 1 <= state["epoch"] < 4
    r = _run([*args, "--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert _metrics(out) == _metrics(ref)


def test_data_folder(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for sub in ("images", "masks"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for i in range(10):
        mask = torch.zeros(32, 32, dtype=torch.uint8)
        r, c = torch.randint(4, 24, (2,), generator=g).tolist()
        mask[r:r + 5, c:c + 5] = 1 + i % 2
        img = (torch.rand(32, 32, generator=g) * 60 + mask.float() * 80).to(torch.uint8)
        Image.fromarray(img.numpy(), mode="L").save(tmp_path / "data" / "images" / f"{i:02d}.png")
        Image.fromarray(mask.numpy(), mode="L").save(tmp_path / "data" / "masks" / f"{i:02d}.png")
    out = tmp_path / "run"
    r = _run([*TINY, "--losses", "dice", "--data", str(tmp_path / "data"), "--out", str(out)])
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert len(m["losses"]["dice"]["per_class"]["dice"]) == 3  # labels 0, 1, 2
    (tmp_path / "data" / "masks" / "03.png").unlink()
    r = _run([*TINY, "--losses", "dice", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "bad")])
    assert r.returncode != 0 and "03" in r.stderr


def test_bad_arguments_are_refused():
    r = _run([*TINY, "--losses", "dicee"])
    assert r.returncode == 2 and "unknown loss 'dicee'" in r.stderr
    r = _run([*TINY, "--size", "30"])
    assert r.returncode == 2 and "--size must be divisible by 4" in r.stderr


def test_loss_names_are_the_registry():
    import seglosses
    from seglosses import _registry
    from seglosses.demo import losses

    classes = losses.available()
    assert list(classes) == [row.name for row in _registry.LOSSES]
    assert all(classes[row.name] is getattr(seglosses, row.cls) for row in _registry.LOSSES)
    assert set(losses.ALIASES.values()) <= set(classes) and not set(losses.ALIASES) & set(classes)
    for spec in losses.DEFAULT:
        losses.build(spec)  # every default spec names known losses
    import torch

    x, t = torch.randn(1, 3, 4, 4), torch.randint(0, 3, (1, 4, 4))
    for spec in losses.DEFAULT:  # and runs for several processes (Lovasz refuses dist_sync: not given it)
        losses.build(spec, dist_sync=True)(x, t)


def test_metrics_against_hand_computed_values():
    # target / prediction over 3 classes, one pixel ignored:
    #   target 0 0 0 1 1 2 255 ; pred 0 0 1 1 2 2 0
    t = torch.tensor([0, 0, 0, 1, 1, 2, 255])
    p = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    m = confusion(p, t, 3)
    assert m.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    s = scores(m)
    # class 0: tp 2, fn 1, fp 0, tn 3 -> Dice 4/5, IoU 2/3, sens 2/3, spec 1, prec 1
    # class 1: tp 1, fn 1, fp 1, tn 3 -> Dice 1/2, IoU 1/3, sens 1/2, spec 3/4, prec 1/2
    # class 2: tp 1, fn 0, fp 1, tn 4 -> Dice 2/3, IoU 1/2, sens 1, spec 4/5, prec 1/2
    expected = {"dice": [4 / 5, 1 / 2, 2 / 3], "iou": [2 / 3, 1 / 3, 1 / 2], "sensitivity": [2 / 3, 1 / 2, 1.0],
                "specificity": [1.0, 3 / 4, 4 / 5], "precision": [1.0, 1 / 2, 1 / 2]}
    for k, v in expected.items():
        assert s[k] == pytest.approx(v), k
    assert mean(s["dice"], skip=0) == pytest.approx((1 / 2 + 2 / 3) / 2)
    never = scores(torch.tensor([[3, 0], [2, 0]]))  # class 1 never predicted: precision 0/0
    assert never["precision"][1] != never["precision"][1] and never["sensitivity"][1] == 0.0


@pytest.mark.parametrize("which", ["focal", "tversky"])
def test_plots(tmp_path, which):
    from seglosses.cli import main

    path = tmp_path / f"{which}.png"
    assert main(["plot", which, "--out", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_focal_curves_are_the_papers_formula():
    from seglosses.demo.plots import focal_curves

    p, curves = focal_curves()
    for g, loss in curves.items():
        torch.testing.assert_close(loss, -(1 - p) ** g * torch.log(p))


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    # DistributedDataParallel on gloo, each rank half of every batch, Dice statistics all-reduced (dist_sync)
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "seglosses.demo",
                        *TINY, "--losses", "dice,ce", "--seeds", "2", "--out", str(out)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and "dist_sync=True" in m["losses"]["dice"]["module"]
    assert m["seeds"] == [0, 1] and [r["seed"] for r in m["losses"]["dice"]["per_seed"]] == [0, 1]
    assert set(m["losses"]["ce"]["vs_first"]) >= {"baseline", "dice"}
    assert r.stdout.count("wall time") == 1  # only rank 0 reports
