"""The ``seglosses-bench`` command line (also ``python -m seglosses.bench`` and ``seglosses bench``): arguments,
the run over settings and cases, and the JSON, Markdown and PNG outputs."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import traceback
import warnings
from typing import Any, Optional

import torch

from .cases import build_cases, floor_case
from .data import make_inputs
from .memory import MMAP_THRESHOLD, WORKER_FLAG, mem_worker
from .peers import PEER_MODULES, Peers, load_ours
from .report import (LEGEND, draw_chart, finish_rows, markdown_preamble, render_text, setting_header,
                     setting_markdown)
from .runner import measure_memory_rows, run_case
from .settings import FULL_SHAPES, NOISY, QUICK_SHAPES, RTOL, SETTING_MODE, SETTINGS, WARMUP
from .timing import copy_bandwidth, min_bytes

#: The summary line of ``--help``.
DESCRIPTION = ("Benchmark of seglosses' core losses against peer libraries: forward + backward time and extra peak "
               "memory.")


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _loadavg() -> Optional[float]:
    """The 1-minute load average, None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def build_parser(prog: Optional[str] = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    p.add_argument("--quick", action="store_true", help="tiny shapes (smoke run)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per implementation (default 7)")
    p.add_argument("--only", default=None, help="comma-separated substrings; run the cases whose name contains one "
                   "(names: <setting>/<loss>, e.g. binary/focal, multiclass3d/dice)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results as JSON")
    p.add_argument("--markdown", default=None, metavar="PATH", help="write the tables as Markdown")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--skip-memory", action="store_true", help="do not measure the extra peak memory")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated subset of {', '.join(SETTINGS)}")
    p.add_argument("--png", default=None, metavar="PATH", help="draw the ratios to the fastest peer (matplotlib)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="cuda: time replays of each forward+backward captured in a CUDA graph (the GPU work alone)")
    p.add_argument("--batch-scale", type=int, default=1, metavar="K",
                   help="multiply every setting's batch size by K (GPU: sizes where memory, not launches, bounds)")
    p.add_argument("--shape", action="append", default=[], metavar="SETTING=NxCxHxW",
                   help="another logits shape for a setting, e.g. multiclass3d=2x4x64x64x64 (repeatable)")
    p.add_argument("--cpu-kernels", default="inductor", choices=["inductor", "eager", "auto"],
                   help="cpu: seglosses.set_cpu_kernels for ours (default inductor: what a training loop runs from "
                   "its third step on; eager: the blocked torch passes)")
    p.add_argument(WORKER_FLAG, dest="mem_worker", default=None, help=argparse.SUPPRESS)
    return p


def _shapes(p: argparse.ArgumentParser, args) -> dict[str, tuple[int, ...]]:
    """Each setting's logits shape: the full or quick one, or the one ``--shape`` gives."""
    shapes = dict(QUICK_SHAPES if args.quick else FULL_SHAPES)
    for spec in args.shape:
        name, _, dims = spec.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if name not in shapes or len(shape) != len(shapes[name]) or min(shape, default=0) < 1:
            p.error(f"--shape: expected SETTING=NxCx... with a setting of {', '.join(shapes)} and as many positive "
                    f"sizes as its shape {tuple(shapes.get(name, ()))}; got {spec!r}")
        shapes[name] = shape
    return shapes


def _meta(args, device: torch.device, ours: Any, ours_err: Optional[str], peers: Peers) -> dict[str, Any]:
    """The run's environment and options, as the JSON's ``meta``."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "device": args.device,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": WARMUP,
        "quick": args.quick,
        "batch_scale": args.batch_scale,
        "cuda_graph": args.cuda_graph,
        "only": args.only,
        "rtol": RTOL,
        "seglosses": None if ours is None else getattr(ours, "__version__", "importable"),
        "seglosses_error": ours_err,
        "peers": {name: (Peers.version(name) if peers.available(name) else None) for name in PEER_MODULES},
        "memory_method": None
        if args.skip_memory
        else (
            "cuda max_memory_allocated - memory_allocated before"
            if device.type == "cuda"
            else "VmHWM delta in a fresh subprocess (malloc_trim + clear_refs reset before; "
            f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', MMAP_THRESHOLD)})"
        ),
    }


def _run_setting(setting: str, cases: list, shape: tuple[int, ...], args, device: torch.device,
                 copy_gbps: Optional[float], log) -> tuple[dict[str, Any], str, bool]:
    """Every case of a setting: timings, then memory, then the table. Returns the JSON entry, the Markdown section
    and whether every case ran (an implementation's own error is a row, not a failure)."""
    ok = True
    inp = make_inputs(setting, shape, device)
    logits_mib = inp.logits.numel() * inp.logits.element_size() / 2**20
    header = setting_header(setting, shape, device, args, logits_mib)
    log("\n" + "=" * len(header) + "\n" + header + "\n" + "=" * len(header))
    rows: list[dict] = []
    pending: list = []
    fcase = floor_case(setting)
    for case in [fcase] + cases:
        log(f"[{case.name}]")
        try:
            rows += run_case(case, inp, args, device, log, pending, None if case is fcase else fcase.impls[0])
        except Exception:  # a bug here must not lose the other settings
            ok = False
            log(f"  ERROR [{case.name}] case failed:\n{traceback.format_exc()}")
    if not args.skip_memory and pending:
        log(f"[{setting}: extra peak memory, "
            + ("fresh subprocess per implementation]" if device.type == "cpu" else "in process]"))
        measure_memory_rows(pending, inp, args, device, log)
    finish_rows(rows, logits_mib, min_bytes(inp) if copy_gbps else None, copy_gbps)
    table = render_text(rows)
    load_end = _loadavg()
    log("\n" + header + "\n" + table)
    skipped = [f"{c.name}: {s}" for c in cases for s in c.skipped]
    differs = [r for r in rows if r.get("status") == "differs"]
    errors = [r for r in rows if r.get("status") == "error"]
    for r in differs:
        log(f"  differs: {r['case']} {r['impl']} (rel {r['rel_diff']:.2e})")
    noisy = [r for r in rows if r.get("noisy")]
    if noisy and device.type == "cpu":
        log(f"  NOTE: {len(noisy)} of {len(rows)} timings are disturbed (median > {NOISY:g} x min, marked '!'); "
            "other processes were probably competing for the CPUs: rerun on a quiet machine, or with --threads 1")
    for r in errors:
        log(f"  error: {r['case']} {r['impl']}: {r.get('error')}")
    result = {
        "shape": list(shape),
        "mode": SETTING_MODE[setting],
        "logits_mib": logits_mib,
        "rows": rows,
        "skipped": skipped,
        "loadavg_1min_at_end": load_end,
    }
    del inp
    gc.collect()
    return result, setting_markdown(setting, header, rows, skipped), ok


def main(argv=None, prog: Optional[str] = None) -> int:
    """Run the benchmark with the command-line arguments ``argv`` (default ``sys.argv[1:]``); 0 when every case ran."""
    p = build_parser(prog)
    args = p.parse_args(argv)

    if args.mem_worker is not None:
        mem_worker(json.loads(args.mem_worker))
        return 0

    if args.repeats < 1 or args.threads < 1 or args.batch_scale < 1:
        p.error("--repeats, --threads and --batch-scale must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    if args.cuda_graph and args.device != "cuda":
        p.error("--cuda-graph needs --device cuda")
    chosen = [s.strip() for s in args.settings.split(",") if s.strip()]
    bad = [s for s in chosen if s not in SETTINGS]
    if bad:
        p.error(f"--settings: unknown {bad}; choose from {SETTINGS}")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)

    def log(msg: str) -> None:
        print(msg, flush=True)

    ours, ours_err = load_ours()
    if ours is not None:
        ours.set_cpu_kernels(args.cpu_kernels)
    peers = Peers()
    shapes = _shapes(p, args)
    filters = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None

    meta = _meta(args, device, ours, ours_err, peers)
    log(f"torch {torch.__version__}, device {args.device}, threads {args.threads}, repeats {args.repeats}"
        + (" (quick)" if args.quick else "") + (f", batch x{args.batch_scale}" if args.batch_scale > 1 else "")
        + (", CUDA graph replays" if args.cuda_graph else ""))
    copy_gbps = None
    if device.type == "cuda":
        copy_gbps = copy_bandwidth(device)
        meta["copy_gbps"] = copy_gbps
        log(f"{meta['device_name']}: 1 GiB device-to-device copy {copy_gbps:.0f} GB/s (read + written)")
    load1 = _loadavg()
    meta["loadavg_1min_at_start"] = load1
    if load1 is not None and device.type == "cpu" and load1 > 0.5:
        log(f"NOTE: 1-min load average {load1:.2f} on {os.cpu_count()} CPUs before starting: other processes compete "
            "for the CPUs, timings may be noisy (see times_ms in the JSON)")
    if ours is None:
        log(f"NOTE: ours (seglosses) is missing: {ours_err}. Running the peers and floors only.")
    else:
        log(f"seglosses: {ours.__file__}")
    for name in PEER_MODULES:
        if peers.available(name):
            log(f"peer {name}: {Peers.version(name)}")
        else:
            log(f"NOTE: peer {name} skipped: {peers.errors.get(name)}")

    results: dict[str, Any] = {"meta": meta, "settings": {}}
    md_parts = [markdown_preamble(meta, args, copy_gbps, ours_err)]
    all_ok = True
    for setting in [s for s in SETTINGS if s in chosen]:
        cases = build_cases(setting, ours, peers)
        if filters is not None:
            cases = [c for c in cases if any(f in c.name for f in filters)]
        if not cases:
            continue
        shape = (shapes[setting][0] * args.batch_scale, *shapes[setting][1:])
        results["settings"][setting], md, ok = _run_setting(setting, cases, shape, args, device, copy_gbps, log)
        md_parts.append(md)
        all_ok = all_ok and ok

    if not results["settings"]:
        log(f"no case matches --only {args.only!r}")
    log("\n" + LEGEND)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
        log(f"JSON written to {args.json}")
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as fh:
            fh.write("\n".join(md_parts))
        log(f"Markdown written to {args.markdown}")
    if args.png:
        log(draw_chart(results, args.png))
    return 0 if all_ok else 1
