"""Smoke tests of the benchmark (seglosses.bench): its case table, one tiny run end to end, one memory worker.

Nothing here looks at times. The runs go through subprocesses, as the benchmark sets process-wide state (threads,
the CPU-kernel policy, warning filters, KERAS_BACKEND) that must not leak into the other tests.
"""

import json
import os
import subprocess
import sys

import pytest

import seglosses
from seglosses.bench.cases import build_cases, find_impl, floor_case
from seglosses.bench.memory import measure_memory_cpu
from seglosses.bench.peers import Peers
from seglosses.bench.settings import QUICK_SHAPES, SETTINGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION = ["dice", "jaccard", "tversky", "focal_tversky", "generalized_dice"]
CONTOUR = ["distance_penalized_cross_entropy", "shape_aware", "boundary_dou"]
HARD_PIXEL = ["topk_cross_entropy", "ohem_cross_entropy", "poly"]


def _python(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("setting", SETTINGS)
def test_case_table(setting):
    """Every setting's cases in the table's order, each with ours as the primary implementation, and the
    implementation a memory worker looks up by name is found again."""
    peers = Peers(eager=False)  # looks the peers up, imports none
    cases = build_cases(setting, seglosses, peers)
    expected = {
        "binary": ["focal", *REGION, "lovasz", "mcc", *HARD_PIXEL],
        "multiclass": ["focal", *REGION, "lovasz", "mcc", "generalized_wasserstein_dice", *HARD_PIXEL],
        "manyclass": ["focal", *REGION, "mcc"],
        "multiclass3d": ["focal", *REGION, "mcc", "generalized_wasserstein_dice", *HARD_PIXEL],
        "distance2d": ["hausdorff_dt", "boundary", *CONTOUR, "ssim"],
        "distance3d": ["hausdorff_dt", "boundary", *CONTOUR, "ssim"],
        "topology2d": ["cldice", "skeleton_recall"],
        "topology3d": ["cldice", "skeleton_recall"],
    }[setting]
    assert [c.loss for c in cases] == expected
    for case in cases:
        assert case.name == f"{setting}/{case.loss}"
        primary = [i for i in case.impls if i.primary]
        assert len(primary) == 1 and primary[0].kind == "ours", case.name
        assert case.ours_func is getattr(seglosses, primary[0].name[len("ours "):])
        assert find_impl(setting, case.loss, primary[0].name, seglosses, peers) is not None
    assert floor_case(setting).impls[0].kind == "floor"


def test_help_summary_is_the_package_summary():
    from seglosses import bench
    from seglosses.bench.cli import DESCRIPTION

    assert bench.__doc__.startswith(DESCRIPTION + "\n")


def test_runtime_package_never_imports_the_bench():
    code = ("import sys, seglosses, seglosses.losses.focal; "
            "assert not any(m.startswith('seglosses.bench') for m in sys.modules), sorted(sys.modules)")
    r = _python("-c", code)
    assert r.returncode == 0, r.stderr


def test_quick_run_writes_the_tables(tmp_path):
    """``python -m seglosses.bench`` on the tiny shapes: value checks pass, JSON and Markdown are written."""
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    r = _python("-m", "seglosses.bench", "--quick", "--settings", "binary,multiclass", "--only", "dice",
                "--skip-memory", "--repeats", "1", "--threads", "1", "--cpu-kernels", "eager",
                "--json", str(out_json), "--markdown", str(out_md))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out_json.read_text())
    assert list(res["settings"]) == ["binary", "multiclass"]
    assert res["meta"]["quick"] and res["meta"]["memory_method"] is None
    for setting, s in res["settings"].items():
        assert s["shape"] == list(QUICK_SHAPES[setting])
        assert [r["case"] for r in s["rows"]][:2] == [f"{setting}/floor", f"{setting}/dice"]
        ours = next(row for row in s["rows"] if row["impl"] == "ours dice_loss")
        assert ours["status"] == "ref" and ours["ms"] > 0 and ours["x_floor"] > 0
        assert all(row["status"] in ("floor", "ref", "ok") for row in s["rows"]), s["rows"]
    md = out_md.read_text()
    assert md.startswith("# seglosses core benchmark") and "## binary" in md and "## multiclass" in md
    assert "| dice | ours dice_loss | ref |" in md
    assert "ours dice_loss" in r.stdout and "JSON written to" in r.stdout


def test_bad_arguments_exit_with_usage():
    r = _python("-m", "seglosses.bench", "--settings", "nope")
    assert r.returncode == 2 and "--settings: unknown ['nope']" in r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the memory worker reads /proc/self/status")
def test_memory_worker():
    """The worker process (``python -m seglosses.bench --_mem-worker SPEC``) measures one implementation."""
    case = floor_case("binary")
    mib, err = measure_memory_cpu("binary", case, case.impls[0], QUICK_SHAPES["binary"], threads=1,
                                  cpu_kernels="eager")
    assert mib is not None and mib >= 0, err


def test_contour_cases_run_at_a_tiny_size():
    """The contour cases at the quick 2-D and 3-D sizes: ours, precomputed maps and the official Boundary DoU formula
    agree with ours (the baselines are other losses)."""
    r = _python("-m", "seglosses.bench", "--quick", "--settings", "distance2d,distance3d", "--only",
                ",".join(CONTOUR), "--skip-memory", "--repeats", "1", "--threads", "1", "--cpu-kernels", "eager",
                "--json", os.devnull, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "DIFFERS" not in r.stdout.replace("(baseline) DIFFERS", ""), r.stdout[-3000:]
    assert "official BoundaryDoULoss (re-implemented, CPU/any device): " in r.stdout
