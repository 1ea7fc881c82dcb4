"""The demo's seeds (`--seeds K`): statistics over seeds against hand-computed values, the report's tables, a K=2 run
end to end and resuming per (loss, seed)."""

import json
import math
import os
import statistics
import subprocess
import sys

import pytest

from seglosses.demo import stats
from seglosses.demo.report import tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"size": 32, "train_images": 16, "val_images": 8, "batch_size": 8, "width": 8, "overlays": 2, "progress": False}
METRICS = ("dice", "iou", "sensitivity", "specificity", "precision")


# --- statistics -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("wins", "losses", "p"), [
    (5, 0, 2 / 32),                       # the smallest p of 5 pairs: 2 * (1/2)^5
    (0, 5, 2 / 32),
    (6, 0, 2 / 64),
    (3, 0, 2 / 8),                        # 3 seeds can never give less than 0.25
    (4, 1, 2 * (1 + 5) / 32),             # 2 * (C(5,0) + C(5,1)) / 2^5 = 0.375
    (8, 2, 2 * (1 + 10 + 45) / 1024),     # 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10 = 0.109375
    (2, 2, 1.0),                          # 2 * (1 + 4 + 6) / 16 > 1: capped
    (1, 0, 1.0),
    (0, 0, 1.0),                          # no pair (all ties): no evidence
])
def test_sign_test_hand_values(wins, losses, p):
    assert stats.sign_test(wins, losses) == pytest.approx(p, rel=1e-12)


def test_sign_test_equals_scipys_binomial_test():
    scipy_stats = pytest.importorskip("scipy.stats")
    for n in range(1, 13):
        for w in range(n + 1):
            expected = scipy_stats.binomtest(w, n, 0.5, alternative="two-sided").pvalue
            assert stats.sign_test(w, n - w) == pytest.approx(expected, rel=1e-9), (w, n)


@pytest.mark.parametrize("bad", [-1, 1.0, True, None])
def test_sign_test_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="`wins` must be an int >= 0"):
        stats.sign_test(bad, 1)


def test_mean_and_sample_std_against_hand_values():
    # 0.80, 0.84, 0.86: mean 2.5 / 3; deviations -1/30, 1/150, 4/150; sum of squares 0.0018667; / (3 - 1); sqrt
    m, s = stats.mean_std([0.80, 0.84, 0.86])
    assert m == pytest.approx(2.5 / 3, rel=1e-12)
    assert s == pytest.approx(math.sqrt(((1 / 30) ** 2 + (1 / 150) ** 2 + (4 / 150) ** 2) / 2), rel=1e-12)
    assert s == pytest.approx(statistics.stdev([0.80, 0.84, 0.86]), rel=1e-12)  # the standard library's ddof=1
    assert s == pytest.approx(0.030551, abs=1e-6)
    assert stats.mean_std([0.3, 0.5])[1] == pytest.approx(0.2 / math.sqrt(2))  # two values: |a - b| / sqrt(2)
    m, s = stats.mean_std([0.4, math.nan, 0.6])  # NaN (an undefined metric) left out
    assert m == pytest.approx(0.5) and s == pytest.approx(0.2 / math.sqrt(2))
    m, s = stats.mean_std([0.7])
    assert m == 0.7 and math.isnan(s)  # one seed: no spread
    assert all(math.isnan(v) for v in stats.mean_std([math.nan]))


def _fake(loss, seed, dice, *, precision=0.5, history=(0.1, 0.2)):
    """A per-seed result as train_one writes it, with a chosen foreground mean Dice (classes: bg, a, b)."""
    per_class = {m: [1.0, dice - 0.05, dice + 0.05] for m in METRICS}
    per_class["precision"] = [1.0, precision, math.nan]  # class b never predicted
    return {"loss": loss, "seed": seed, "module": f"{loss}()", "per_class": per_class,
            "mean": {**{m: dice for m in METRICS}, "precision": precision}, "train_time_s": 2.0 + seed,
            "history": [{"epoch": e + 1, "train_loss": 1.0 / (e + 1 + seed), "val_mean_dice": d + dice,
                         "val_mean_iou": d} for e, d in enumerate(history)],
            "predictions": [[[seed]]]}


def test_aggregate_against_hand_values():
    agg = stats.aggregate([_fake("ce", 0, 0.80), _fake("ce", 1, 0.84, precision=math.nan), _fake("ce", 2, 0.86)])
    assert agg["seeds"] == [0, 1, 2] and agg["loss"] == "ce" and agg["predictions"] == [[[0]]]
    assert agg["mean"]["dice"] == pytest.approx(2.5 / 3) and agg["std"]["dice"] == pytest.approx(0.0305505, abs=1e-7)
    assert agg["count"]["dice"] == 3
    assert agg["mean"]["precision"] == 0.5 and agg["std"]["precision"] == 0.0 and agg["count"]["precision"] == 2
    assert agg["per_class"]["dice"] == pytest.approx([1.0, 2.5 / 3 - 0.05, 2.5 / 3 + 0.05])
    assert agg["per_class_std"]["dice"][0] == 0.0
    assert agg["per_class_count"]["precision"] == [3, 2, 0] and math.isnan(agg["per_class"]["precision"][2])
    assert agg["train_time_s"] == pytest.approx(3.0)  # (2 + 3 + 4) / 3
    c = agg["curves"]
    assert c["val_mean_dice"]["epoch"] == [1, 2]
    assert c["val_mean_dice"]["mean"] == pytest.approx([0.1 + 2.5 / 3, 0.2 + 2.5 / 3])
    assert c["val_mean_dice"]["min"] == pytest.approx([0.9, 1.0]) and c["val_mean_dice"]["max"] == pytest.approx(
        [0.96, 1.06])
    # training loss relative to each seed's first epoch: seed s has 1/(1+s), 1/(2+s) -> (1+s)/(2+s)
    assert c["train_loss_rel"]["mean"] == pytest.approx([1.0, (1 / 2 + 2 / 3 + 3 / 4) / 3])
    assert c["train_loss_rel"]["min"] == pytest.approx([1.0, 0.5]) and c["train_loss_rel"]["max"][1] == 0.75
    with pytest.raises(ValueError, match="at least one result"):
        stats.aggregate([])


def test_paired_comparison_against_the_first_loss():
    first = [0.5, 0.6, 0.7, 0.4]
    other = [0.6, 0.6, 0.9, 0.3]  # +0.1, tie, +0.2, -0.1
    r = stats.paired(first, other)
    assert r["wins"] == 2 and r["losses"] == 1 and r["ties"] == 1
    assert r["mean_diff"] == pytest.approx(0.05)
    assert r["p"] == 1.0  # 2 * (C(3,0) + C(3,1)) / 2^3 = 1
    assert stats.paired([0.1, math.nan], [0.2, 0.3])["wins"] == 1  # the NaN pair dropped
    with pytest.raises(ValueError, match="one value per seed"):
        stats.paired([0.1], [0.2, 0.3])
    losses = {"ce": stats.aggregate([_fake("ce", s, d) for s, d in enumerate((0.2, 0.3, 0.25, 0.1, 0.4))]),
              "dice": stats.aggregate([_fake("dice", s, d) for s, d in enumerate((0.8, 0.7, 0.9, 0.85, 0.8))])}
    stats.compare(losses)
    assert "vs_first" not in losses["ce"]
    v = losses["dice"]["vs_first"]
    assert v["baseline"] == "ce" and v["dice"]["wins"] == 5 and v["dice"]["p"] == pytest.approx(0.0625)
    assert v["dice"]["mean_diff"] == pytest.approx((0.6 + 0.4 + 0.65 + 0.75 + 0.4) / 5)


def _metrics(losses, seeds):
    agg = {spec: stats.aggregate([_fake(spec, s, d) for s, d in zip(seeds, dices)]) for spec, dices in losses.items()}
    stats.compare(agg)
    return {"config": {"class_names": ["bg", "a", "b"], "seed": seeds[0]}, "seeds": list(seeds), "losses": agg}


def test_report_tables_show_mean_std_k_and_the_sign_test():
    text = tables(_metrics({"ce": (0.80, 0.84, 0.86), "dice": (0.90, 0.84, 0.96)}, [0, 1, 2]))
    assert "over K = 3 seeds (0, 1, 2)" in text
    assert "| ce | 0.833 ± 0.031 | 0.833 ± 0.031 | 0.833 ± 0.031 | 0.833 ± 0.031 | 0.500 ± 0.000 | 3.0 |" in text
    # dice - ce per seed: +0.10, 0, +0.10 -> mean +0.067, 2 better, 1 tie, p = sign_test(2, 0) = 0.5
    assert "| loss | Dice − ce | better / worse / tied | sign test p |" in text
    assert "| dice | +0.067 | 2 / 0 / 1 | 0.5 |" in text
    assert "2/2^3 = 0.25" in text and "fewer than 6 seeds" in text
    assert "| b | 0.883 ± 0.031 | 0.883 ± 0.031 | 0.883 ± 0.031 | 0.883 ± 0.031 | n/a |" in text  # per class
    one = tables(_metrics({"ce": (0.8,), "dice": (0.9,)}, [4]))
    assert "one seed (4)" in one and "| ce | 0.800 | 0.800 | 0.800 | 0.800 | 0.500 | 6.0 |" in one
    assert "±" not in one and "sign test" not in one


# --- the demo with seeds ----------------------------------------------------------------------------------------

def test_two_seeds_end_to_end(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    args = ["--size", "32", "--train-images", "16", "--val-images", "8", "--batch-size", "8", "--epochs", "1",
            "--width", "8", "--overlays", "2", "--no-progress", "--losses", "ce,dice", "--seeds", "2", "--seed", "3"]
    r = subprocess.run([sys.executable, "-m", "seglosses.demo", *args, "--out", str(out)], check=False,
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    for spec in ("ce", "dice"):
        for seed in (3, 4):
            assert (out / "results" / spec / f"seed{seed}.json").exists()
            assert (out / "checkpoints" / spec / f"seed{seed}.pt").exists()
    m = json.loads((out / "metrics.json").read_text())
    assert m["seeds"] == [3, 4] and m["config"]["seeds"] == 2
    for spec, agg in m["losses"].items():
        a, b = (s["mean"]["dice"] for s in agg["per_seed"])
        assert [s["seed"] for s in agg["per_seed"]] == [3, 4]
        assert agg["per_seed"][0]["per_class"] != agg["per_seed"][1]["per_class"]  # another init and order
        assert agg["mean"]["dice"] == pytest.approx((a + b) / 2)
        assert agg["std"]["dice"] == pytest.approx(abs(a - b) / math.sqrt(2))
    assert m["losses"]["dice"]["vs_first"]["baseline"] == "ce"
    report = (out / "report.md").read_text()
    assert "over K = 2 seeds (3, 4)" in report and "| dice | " in report and "2/2^2 = 0.5" in report
    assert "over K = 2 seeds" in r.stdout and "sign test p" in r.stdout
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _config(out, **kw):
    from seglosses.demo.train import Config

    return Config(**{**TINY, "losses": ("ce",), "epochs": 2, "seeds": 2, "out": str(out), **kw})


def _per_seed(metrics):
    """Each (loss, seed)'s results as JSON text (NaN == NaN there, as it is not between floats)."""
    keys = ("seed", "per_class", "history", "confusion", "predictions")
    return {k: [json.dumps({kk: r[kk] for kk in keys}, sort_keys=True) for r in v["per_seed"]]
            for k, v in metrics["losses"].items()}


def test_interrupted_seed_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    from seglosses.demo import train

    ref = train.run(_config(tmp_path / "ref"))
    saved = []
    real = train.atomic_save

    def interrupt(obj, path, **kw):  # Ctrl-C right after the first epoch's checkpoint of seed 1
        real(obj, path, **kw)
        saved.append(path)
        if path.endswith("seed1.pt") and obj["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "atomic_save", interrupt)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train.run(_config(out))
    assert (out / "results" / "ce" / "seed0.json").exists() and not (out / "results" / "ce" / "seed1.json").exists()
    done = (out / "results" / "ce" / "seed0.json").stat().st_mtime_ns
    saved.clear()
    resumed = train.run(_config(out))
    assert _per_seed(resumed) == _per_seed(ref)
    assert (out / "results" / "ce" / "seed0.json").stat().st_mtime_ns == done  # seed 0 not trained again
    assert sum(p.endswith("seed1.pt") for p in saved) == 1  # seed 1: only its second epoch
    # a third seed added later trains that seed alone
    saved.clear()
    more = train.run(_config(out, seeds=3))
    assert _per_seed(more)["ce"][:2] == _per_seed(ref)["ce"]
    assert [os.path.basename(p) for p in saved if p.endswith(".pt")] == ["seed2.pt", "seed2.pt"]


def test_results_made_with_other_settings_are_refused(tmp_path):
    from seglosses.demo import train

    train.run(_config(tmp_path, epochs=1, seeds=1))
    with pytest.raises(ValueError, match=r"seed0.json was made with other settings: epochs=1 \(now 2\)"):
        train.run(_config(tmp_path, epochs=2, seeds=1))
    # --seed 0 --seeds 2 stored seed 1 trained on the data of seed 0; --seed 1 in the same folder must not reuse it
    out = tmp_path / "overlap"
    train.run(_config(out, epochs=1, seeds=2))
    with pytest.raises(ValueError, match=r"seed1.json was made with other settings: seed=0 \(now 1\).*draws the data"):
        train.run(_config(out, epochs=1, seeds=1, seed=1))
