"""Running one case: the value check of every implementation against ours, then the interleaved timed rounds;
and the extra peak memory of the timed rows, measured after all timings of a setting."""

from __future__ import annotations

import json
import math
import statistics
from typing import Any, Optional

import torch

from .cases import Case, Impl
from .data import Inputs
from .memory import measure_memory_cpu, measure_memory_cuda
from .settings import NOISY, RTOL, WARMUP
from .timing import GraphRun, run_once


def short_err(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0][:160] if msg else ''}"


def _rel(a: float, b: float) -> float:
    """Relative difference of ``a`` to the reference ``b``."""
    return abs(a - b) / max(abs(b), 1e-12)


def run_case(
    case: Case, inp: Inputs, args, device: torch.device, log, pending: list, floor: Optional[Impl] = None
) -> list[dict]:
    """Value check and timing of every implementation of a case; timed rows are appended to ``pending``.

    ``floor``: timed in the same rounds as the case's implementations (not reported as a row of the case), so that
    the ratio to the floor compares runs made at the same time.
    """
    rows: list[dict] = []
    for s in case.skipped:
        log(f"  skip  [{case.name}] {s}")
    if not case.impls:
        return rows
    ref_cache: dict[str, Any] = {}

    def reference(overrides: Optional[dict]) -> Optional[float]:
        if case.ours_func is None:
            return None
        key = json.dumps(overrides or {}, sort_keys=True)
        if key not in ref_cache:
            kw = {**case.ours_kwargs, **(overrides or {})}
            try:
                with torch.no_grad():
                    ref_cache[key] = float(case.ours_func(inp.logits, inp.target, inp.mode, **kw))
            except Exception as exc:
                ref_cache[key] = exc
        return ref_cache[key]

    timed: list = []
    for impl in case.impls:
        row: dict[str, Any] = {
            "case": case.name,
            "loss": case.loss,
            "impl": impl.name,
            "kind": impl.kind,
            "note": impl.note,
            "known_diff": impl.known_diff or "",
            "ref": impl.ref,
            "group": impl.group,
        }
        rows.append(row)
        if impl.note:
            log(f"  note  [{case.name}] {impl.name}: {impl.note}")
        try:
            fn = impl.make(inp)
            with torch.no_grad():
                value = float(fn(inp.logits))
        except Exception as exc:
            row.update(status="error", error=short_err(exc))
            log(f"  ERROR [{case.name}] {impl.name}: {short_err(exc)}")
            continue
        row["value"] = value
        if not math.isfinite(value):
            row.update(status="error", error=f"non-finite loss {value}")
            log(f"  ERROR [{case.name}] {impl.name}: non-finite loss {value}")
            continue

        # value check against ours
        if impl.kind == "floor":
            row["status"] = "floor"
        elif case.ours_func is None:
            row["status"] = "unchecked"
            log(f"  check [{case.name}] {impl.name}: value {value:.6g} (unchecked: ours missing)")
        else:
            ref = reference(impl.ref)
            if isinstance(ref, Exception):
                row.update(status="unchecked", ref_error=short_err(ref))
                log(f"  check [{case.name}] {impl.name}: ours reference failed: {short_err(ref)}")
            else:
                rel = _rel(value, ref)
                row.update(ref_value=ref, rel_diff=rel)
                against = ("ours" if not impl.ref
                           else "ours(" + ", ".join(f"{k}={v!r}" for k, v in impl.ref.items()) + ")")
                if impl.primary and impl.ref is None:
                    row["status"] = "ref"
                elif rel < RTOL:
                    row["status"] = "ok"
                else:
                    row["status"] = "differs"
                if row["status"] == "differs":
                    why = impl.known_diff or "definitions differ (no known reason recorded)"
                    log(
                        f"  NOTE  [{case.name}] {impl.name} DIFFERS from {against}: {value:.6g} vs {ref:.6g} "
                        f"(rel {rel:.2e} >= {RTOL:g}); {why}. Timed anyway, reported as 'differs'."
                    )
                elif row["status"] == "ok":
                    log(f"  check [{case.name}] {impl.name}: {value:.6g} vs {against} {ref:.6g} (rel {rel:.1e}) ok")
                    if impl.known_diff:
                        log(f"  NOTE  [{case.name}] {impl.name} agrees on these data, but its definition differs: "
                            f"{impl.known_diff}")
                else:
                    log(f"  check [{case.name}] {impl.name}: {value:.6g} (the reference)")

        timed.append((impl, row, fn))

    floor_row: dict[str, Any] = {"impl": "floor (same rounds)", "kind": "floor-companion"}
    if floor is not None and timed:
        try:
            timed.append((floor, floor_row, floor.make(inp)))
        except Exception as exc:
            log(f"  ERROR [{case.name}] floor companion: {short_err(exc)}")

    # Time: warm-up of each implementation, then the timed runs interleaved (one run of each implementation per
    # round), so that a transient disturbance (another process, frequency changes) is spread over the whole group
    # instead of falling on one implementation.
    for impl, row, fn in timed:
        try:
            for _ in range(WARMUP):
                run_once(fn, inp.logits, device)
            if args.cuda_graph:
                row["graph"] = GraphRun(fn, inp.logits)
                for _ in range(WARMUP):
                    row["graph"]()
            row["times_ms"] = []
        except Exception as exc:
            row.update(status="error", error=short_err(exc))
            log(f"  ERROR [{case.name}] {impl.name} (forward+backward): {short_err(exc)}")
    timed = [t for t in timed if t[1].get("status") != "error"]
    for _ in range(args.repeats):
        for impl, row, fn in timed:
            if row.get("status") == "error":
                continue
            try:
                run = row.get("graph") or (lambda fn=fn: run_once(fn, inp.logits, device))
                row["times_ms"].append(run() * 1e3)
            except Exception as exc:
                row.update(status="error", error=short_err(exc))
                log(f"  ERROR [{case.name}] {impl.name} (forward+backward): {short_err(exc)}")
    floor_ms = statistics.median(floor_row["times_ms"]) if floor_row.get("times_ms") else None
    for impl, row, fn in timed:
        row.pop("graph", None)
        if row.get("status") == "error":
            row.pop("times_ms", None)
            continue
        if row is floor_row:
            continue
        if floor_ms is not None:
            row["floor_ms_same_rounds"] = floor_ms
        times = row["times_ms"]
        row["ms"] = statistics.median(times)
        row["min_ms"] = min(times)
        row["noisy"] = row["ms"] > NOISY * row["min_ms"]
        pending.append((case, impl, row))
        log(f"  time  [{case.name}] {impl.name}: {row['ms']:.3f} ms (min {row['min_ms']:.3f})")
    return rows


def measure_memory_rows(pending: list, inp: Inputs, args, device: torch.device, log) -> None:
    """Extra peak memory of every timed implementation, after all timings of the setting (so that the worker
    processes cannot disturb them)."""
    for case, impl, row in pending:
        if device.type == "cuda":
            try:
                row["extra_mib"] = measure_memory_cuda(impl.make(inp), inp.logits, device)
            except Exception as exc:
                row["mem_error"] = short_err(exc)
        else:
            mib, err = measure_memory_cpu(case.setting, case, impl, tuple(inp.logits.shape), args.threads,
                                           args.cpu_kernels)
            row["extra_mib"] = mib
            if err:
                row["mem_error"] = err
        if row.get("extra_mib") is not None:
            log(f"  mem   [{case.name}] {impl.name}: {row['extra_mib']:.1f} MiB"
                + (f" ({row['mem_error']})" if row.get("mem_error") else ""))
        else:
            log(f"  mem   [{case.name}] {impl.name}: failed: {row.get('mem_error')}")
