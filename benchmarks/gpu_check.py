"""GPU correctness check (run on a CUDA machine; not part of CI; benchmarks/gpu_run.sh runs it).

For every loss (all 17) and mode, on CUDA:

1. value and gradient equal the CPU float64 result (float32, float16, bfloat16 inputs);
2. finite loss and gradient at +-1e4 logits;
3. no host sync in forward + backward: run under ``torch.cuda.set_sync_debug_mode("error")``, with per-class options
   given as Python lists (function form) and as Module buffers;
4. torch.compile(fullgraph=True) with inductor equals eager (focal, dice, lovasz, each mode).

Each item is caught on its own, so one failure does not hide the others; the script prints one line per check and
exits 1 if any failed.

    python benchmarks/gpu_check.py
"""

import os
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests._losses import GAMMA, LOSSES, MODULES, sweep_options  # noqa: E402

MODES = ("binary", "multiclass", "multilabel")
DEV = os.environ.get("GPU_CHECK_DEVICE", "cuda")  # "cpu": a dry run of the script itself
FAILURES = []


def report(ok, what):
    if not ok:
        FAILURES.append(what)
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)


def case(mode, n=4, c=5, hw=(64, 64), seed=0):
    g = torch.Generator().manual_seed(seed)
    c = 1 if mode == "binary" else c
    x = torch.randn(n, c, *hw, generator=g, dtype=torch.float64) * 3
    if mode == "multiclass":
        t = torch.randint(0, c, (n, *hw), generator=g, dtype=torch.uint8)
        t[torch.rand(t.shape, generator=g) < 0.1] = 255
    else:
        t = (torch.rand(n, c, *hw, generator=g) > 0.7).float()
        t[torch.rand(t.shape, generator=g) < 0.1] = 255
    return x, t


def check_values():
    for name, fn in LOSSES.items():
        for mode in MODES:
            x, t = case(mode)
            try:
                kw = sweep_options(name, mode, x.shape[1], per_class=False)
                ref_x = x.clone().requires_grad_(True)
                ref = fn(ref_x, t, mode, **kw)
                ref.backward()
                for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 3e-3), (torch.bfloat16, 2e-2)):
                    xc = x.to(DEV, dtype).requires_grad_(True)
                    out = fn(xc, t.to(DEV), mode, **kw)
                    out.backward()
                    err_v = abs(out.item() - ref.item())
                    err_g = ((xc.grad.double().cpu() - ref_x.grad).abs().max().item()
                             / max(ref_x.grad.abs().max().item(), 1e-30))
                    # Lovasz: a half-precision input reorders the sort; Hausdorff DT: it flips pixels of the
                    # thresholded prediction near p = 0.5: both (sub)gradients legitimately differ there.
                    jumps = name in ("lovasz", "hausdorff_dt")
                    gtol = 1e-3 if jumps else 10 * tol
                    ok = (err_v < tol * max(1.0, abs(ref.item())) and bool(torch.isfinite(xc.grad).all())
                          and (err_g < gtol or (jumps and dtype != torch.float32)))
                    report(ok, f"{name:24s} {mode:10s} {str(dtype):15s} value err {err_v:.2e} grad rel err {err_g:.2e}")
                kws = dict(kw, **({"gamma": 0.3} if name in GAMMA else {}))
                sat = (torch.sign(x) * 1e4).to(DEV, torch.float32).requires_grad_(True)
                out = fn(sat, t.to(DEV), mode, **kws)
                out.backward()
                report(bool(torch.isfinite(out) and torch.isfinite(sat.grad).all()),
                       f"{name:24s} {mode:10s} saturated +-1e4 finite")
            except Exception as exc:  # noqa: BLE001
                report(False, f"{name:24s} {mode:10s} raised {type(exc).__name__}: {exc}"[:400])


def check_no_sync():
    for name in LOSSES:
        for mode in MODES:
            x, t = case(mode, n=2, hw=(32, 32))
            c = x.shape[1]
            kw = sweep_options(name, mode, c)
            xc, tc = x.to(DEV, torch.float32).requires_grad_(True), t.to(DEV)
            for form in ("function", "module"):
                try:
                    call = (lambda z, y, kw=kw: LOSSES[name](z, y, mode, **kw)) if form == "function" else \
                        MODULES[name](mode, **kw).to(DEV)
                    call(xc, tc).backward()  # warm-up: lazy initialisations may sync once
                    torch.cuda.synchronize()
                    xc.grad = None
                    torch.cuda.set_sync_debug_mode("error")
                    try:
                        out = call(xc, tc)
                        out.backward()
                    finally:
                        torch.cuda.set_sync_debug_mode("default")
                    report(True, f"{name:24s} {mode:10s} {form:8s} no host sync in forward + backward")
                except Exception as exc:  # noqa: BLE001
                    torch.cuda.set_sync_debug_mode("default")
                    where = [ln for ln in traceback.format_exc().splitlines() if "seglosses/" in ln][-1:]
                    report(False, f"{name:24s} {mode:10s} {form:8s} sync: {type(exc).__name__}: {str(exc)[:160]} "
                           f"{' '.join(w.strip() for w in where)}")


def check_compile():
    for name in ("focal", "dice", "lovasz"):
        for mode in MODES:
            try:
                torch._dynamo.reset()
                x, t = case(mode)
                fn = LOSSES[name]
                xc = x.to(DEV, torch.float32).requires_grad_(True)
                f = torch.compile(lambda z, y, fn=fn, mode=mode: fn(z, y, mode, ignore_index=255), fullgraph=True)
                t0 = time.perf_counter()
                out = f(xc, t.to(DEV))
                out.backward()
                torch.cuda.synchronize()
                g = xc.grad.clone()
                xc.grad = None
                ref = fn(xc, t.to(DEV), mode, ignore_index=255)
                ref.backward()
                ev = abs(out.item() - ref.item()) / max(abs(ref.item()), 1e-30)
                eg = (g - xc.grad).abs().max().item() / max(xc.grad.abs().max().item(), 1e-30)
                report(ev < 1e-4 and eg < 1e-3, f"inductor fullgraph {name:8s} {mode:10s} vs eager: value rel err "
                       f"{ev:.1e}, grad rel err {eg:.1e} ({time.perf_counter() - t0:.1f} s to compile+run)")
            except Exception as exc:  # noqa: BLE001
                report(False, f"inductor fullgraph {name} {mode} raised {type(exc).__name__}: {str(exc)[:300]}")


def main():
    if DEV == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check.py needs CUDA")
    print(torch.__version__, torch.cuda.get_device_name() if DEV == "cuda" else DEV, flush=True)
    for part in (check_values, check_no_sync, check_compile) if DEV == "cuda" else (check_values,):
        part()
    print(f"{len(FAILURES)} failures")
    for f in FAILURES:
        print("  FAILED:", f)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
