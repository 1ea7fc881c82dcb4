"""GPU correctness check (run on a CUDA machine; not part of CI): every loss on CUDA equals the CPU float64 result,
stays finite at saturated logits and in half precision, and compiles with inductor (fullgraph).

    python benchmarks/gpu_check.py
"""

import sys
import time

import torch

import seglosses as S

LOSSES = {"focal": S.focal_loss, "dice": S.dice_loss, "jaccard": S.jaccard_loss, "tversky": S.tversky_loss,
          "focal_tversky": S.focal_tversky_loss, "generalized_dice": S.generalized_dice_loss,
          "lovasz": S.lovasz_loss}


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


def main():
    assert torch.cuda.is_available(), "needs CUDA"
    print(torch.__version__, torch.cuda.get_device_name())
    failures = 0
    for name, fn in LOSSES.items():
        for mode in ("binary", "multiclass", "multilabel"):
            x, t = case(mode)
            ref_x = x.clone().requires_grad_(True)
            ref = fn(ref_x, t, mode, ignore_index=255)
            ref.backward()
            for dtype, tol in ((torch.float32, 1e-5), (torch.float16, 3e-3), (torch.bfloat16, 2e-2)):
                xc = x.to("cuda", dtype).requires_grad_(True)
                out = fn(xc, t.cuda(), mode, ignore_index=255)
                out.backward()
                err_v = abs(out.item() - ref.item())
                err_g = (xc.grad.double().cpu() - ref_x.grad).abs().max().item() / ref_x.grad.abs().max().item()
                # Lovasz: a half-precision input reorders the sort, so the (sub)gradient legitimately differs there.
                gtol = 1e-3 if name == "lovasz" else 10 * tol
                ok = err_v < tol * max(1.0, abs(ref.item())) and torch.isfinite(xc.grad).all() and (
                    err_g < gtol or (name == "lovasz" and dtype != torch.float32))
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {name:17s} {mode:10s} {str(dtype):15s} value err {err_v:.2e} "
                      f"grad rel err {err_g:.2e}")
            sat = (torch.sign(x) * 1e4).to("cuda", torch.float32).requires_grad_(True)
            out = fn(sat, t.cuda(), mode, ignore_index=255, **({"gamma": 0.3} if "focal" in name else {}))
            out.backward()
            ok = bool(torch.isfinite(out) and torch.isfinite(sat.grad).all())
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name:17s} {mode:10s} saturated +-1e4 finite")
    for name in ("focal", "dice", "lovasz"):
        torch._dynamo.reset()
        x, t = case("multiclass")
        xc = x.to("cuda", torch.float32).requires_grad_(True)
        f = torch.compile(lambda z, y: LOSSES[name](z, y, "multiclass", ignore_index=255), fullgraph=True)
        t0 = time.perf_counter()
        out = f(xc, t.cuda())
        out.backward()
        torch.cuda.synchronize()
        g = xc.grad.clone()
        xc.grad = None
        ref = LOSSES[name](xc, t.cuda(), "multiclass", ignore_index=255)
        ref.backward()
        ok = torch.allclose(out, ref, rtol=1e-4, atol=1e-5) and torch.allclose(g, xc.grad, rtol=1e-3, atol=1e-6)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} inductor fullgraph {name} ({time.perf_counter() - t0:.1f} s to compile+run)")
    print(f"{failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
