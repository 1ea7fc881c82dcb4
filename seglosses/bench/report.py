"""The report: ratios of every row, the text and Markdown tables, the legend and the chart of the ratios."""

from __future__ import annotations

import os
from typing import Optional

import torch

from .settings import NOISY, RTOL, SETTING_MODE, WARMUP
from .timing import GraphRun


def finish_rows(rows: list[dict], logits_mib: float, moved: Optional[int] = None,
                copy_gbps: Optional[float] = None) -> None:
    """Ratios of every row; with ``moved`` (bytes, :func:`min_bytes`) and ``copy_gbps`` (GPU runs) also the
    bandwidth the row's time implies for those bytes and its share of the copy bandwidth."""
    floor_ms = next((r.get("ms") for r in rows if r["kind"] == "floor" and r.get("ms")), None)
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    for case_rows in by_case.values():
        def fastest_of(group):
            """Fastest agreeing peer timed at ``group``'s options (None: any group), and whether it is approximate."""
            same = [r for r in case_rows
                    if r["kind"] == "peer" and r.get("ms") and (group is None or r["group"] == group)]
            ok = [r["ms"] for r in same if r.get("status") == "ok"]
            if ok:
                return min(ok), False
            return (min(r["ms"] for r in same), True) if same else (None, False)

        for r in case_rows:
            ms = r.get("ms")
            fastest, approx = fastest_of(r["group"])
            if fastest is None:  # no peer at these options: every peer, flagged
                fastest, _ = fastest_of(None)
                approx = fastest is not None
            r["x_fastest_peer"] = ms / fastest if ms and fastest and r["kind"] != "floor" else None
            r["fastest_peer_approx"] = approx
            floor_ref = r.get("floor_ms_same_rounds") or floor_ms
            r["x_floor"] = ms / floor_ref if ms and floor_ref else None
            mib = r.get("extra_mib")
            r["x_logits_mib"] = mib / logits_mib if mib is not None else None
            if moved is not None and copy_gbps and ms:
                r["gbps"] = moved / (ms * 1e-3) / 1e9
                r["x_copy_bw"] = r["gbps"] / copy_gbps


def _fmt(v, spec: str, none: str = "-") -> str:
    return none if v is None else format(v, spec)


def _status_cell(r: dict) -> str:
    st = r.get("status", "?")
    if st in ("ok", "differs") and r.get("rel_diff") is not None:
        return f"{st} {r['rel_diff']:.0e}"
    return st


TABLE_HEAD = ["case", "implementation", "check", "ms", "x fastest peer", "x floor", "extra MiB", "MiB / logits MiB"]
BW_HEAD = ["GB/s", "of copy BW"]


def _head(rows: list[dict]) -> tuple[bool, list[str]]:
    """Whether the rows carry bandwidth figures (GPU runs), and the table's header."""
    bw = any(r.get("gbps") is not None for r in rows)
    return bw, TABLE_HEAD + (BW_HEAD if bw else [])


def table_cells(r: dict, bw: bool = False) -> list[str]:
    xp = _fmt(r.get("x_fastest_peer"), ".2f")
    if r.get("x_fastest_peer") is not None and r.get("fastest_peer_approx"):
        xp += "~"
    return [
        r["loss"],
        r["impl"],
        _status_cell(r),
        _fmt(r.get("ms"), ".3f" if (r.get("ms") or 1) < 1 else ".2f") + ("!" if r.get("noisy") else ""),
        xp,
        _fmt(r.get("x_floor"), ".2f"),
        _fmt(r.get("extra_mib"), ".1f"),
        _fmt(r.get("x_logits_mib"), ".2f"),
    ] + ([_fmt(r.get("gbps"), ".0f"), _fmt(None if r.get("x_copy_bw") is None else 100 * r["x_copy_bw"], ".0f", "-")
          + ("%" if r.get("x_copy_bw") is not None else "")] if bw else [])


def render_text(rows: list[dict]) -> str:
    bw, head = _head(rows)
    body = [head] + [table_cells(r, bw) for r in rows]
    widths = [max(len(row[i]) for row in body) for i in range(len(head))]
    right = set(range(3, len(head)))
    lines = []
    prev_case = None
    for k, row in enumerate(body):
        if k > 1 and rows[k - 1]["case"] != prev_case:
            lines.append("")
        if k >= 1:
            prev_case = rows[k - 1]["case"]
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: list[dict]) -> str:
    bw, head = _head(rows)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in table_cells(r, bw)) + " |")
    return "\n".join(out)


def setting_header(setting: str, shape, device: torch.device, args, logits_mib: float) -> str:
    return (
        f"{setting}: logits {tuple(shape)} float32 ({logits_mib:.1f} MiB), mode {SETTING_MODE[setting]}, "
        f"device {device.type}, threads {args.threads}, repeats {args.repeats} (median after {WARMUP} warm-up)"
        + (f", cpu kernels {args.cpu_kernels}" if device.type == "cpu" else "")
        + (f"; time of CUDA graph replays ({GraphRun.REPLAYS} per run): the GPU work alone"
           if args.cuda_graph else "")
    )


LEGEND = (
    f"ms: median forward+backward (!: median > {NOISY:g} x the fastest of its runs, i.e. disturbed timings). "
    "x fastest peer: ms / fastest peer whose value agrees with ours at the same options (a peer that matches ours "
    "only with other options, e.g. per_image=True, is compared with 'ours fn(those options)', timed too; "
    "~: no agreeing peer at those options, fastest of all peers). x floor: ms / the floor (BCE-with-logits or "
    "cross_entropy) timed in the same interleaved rounds. "
    "extra MiB: peak memory of one forward+backward above the inputs (logits' gradient included); "
    "MiB / logits MiB: that divided by the logits' size. check: rel. difference of the loss value to ours "
    f"(ok < {RTOL:g}; 'differs' = a different definition, see notes). "
    "GPU only: GB/s = the fewest bytes a forward+backward must move (logits and target read once, gradient written "
    "once) / ms; of copy BW = that / the bandwidth of a 1 GiB device-to-device copy measured at the start."
)


def markdown_preamble(meta: dict, args, copy_gbps: Optional[float], ours_err: Optional[str]) -> str:
    """The Markdown file's title, legend and run description."""
    title = f"# seglosses core benchmark\n\n{LEGEND}\n"
    run = (f"torch {torch.__version__}, device {meta['device_name']} ({args.device}), threads {args.threads}, "
           f"repeats {args.repeats}" + (f", copy bandwidth {copy_gbps:.0f} GB/s" if copy_gbps else "")
           + (f", batch x{args.batch_scale}" if args.batch_scale > 1 else "") + "; peers: "
           + ", ".join(f"{k} {v}" for k, v in meta["peers"].items() if v) + "; seglosses: "
           + (str(meta["seglosses"]) if ours_err is None else f"missing ({ours_err})") + "\n")
    return title + "\n" + run


def setting_markdown(setting: str, header: str, rows: list[dict], skipped: list[str]) -> str:
    """A setting's Markdown section: its table, the notes on peers' arguments, the definitions that differ, the
    implementations skipped."""
    differs = [r for r in rows if r.get("status") == "differs"]
    notes = sorted({f"{r['impl']}: {r['note']}" for r in rows if r.get("note")})
    md = [f"## {setting}\n", header + "\n", render_markdown(rows) + "\n"]
    if notes:
        md.append("Notes:\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    if differs:
        md.append("Definitions that differ from ours:\n\n" + "\n".join(
            f"- {r['case']} {r['impl']}: rel {r['rel_diff']:.2e}"
            + (f" ({r['known_diff']})" if r.get("known_diff") else "") for r in differs) + "\n")
    if skipped:
        md.append("Skipped:\n\n" + "\n".join(f"- {s}" for s in skipped) + "\n")
    return "\n".join(md)


def draw_chart(results: dict, path: str) -> str:
    """A PNG of every ours row's time ratio to the fastest agreeing peer (log scale, 1 = parity)."""
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        import matplotlib.ticker  # noqa: PLC0415, F401
    except ImportError:
        return "--png: matplotlib is not installed (pip install matplotlib)"
    labels, ratios = [], []
    for setting, res in results["settings"].items():
        for r in res["rows"]:
            if r["kind"] == "ours" and r.get("x_fastest_peer"):
                labels.append(f"{setting}/{r['impl'][5:]}")
                ratios.append(r["x_fastest_peer"])
    if not ratios:
        return "--png: no ratio to draw"
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(ratios) + 1.2))
    ax.barh(range(len(ratios)), ratios, color=["#2a9d8f" if v <= 1 else "#e76f51" for v in ratios])
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_yticks(range(len(ratios)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("ours / fastest agreeing peer (forward + backward time; < 1 is faster)")
    ax.set_title(f"seglosses vs peers, {results['meta']['device_name']}, {results['meta']['threads']} threads",
                 fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"PNG written to {path}"
