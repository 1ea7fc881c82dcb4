"""Ten lines of seglosses: a multiclass segmentation batch, a few losses, a composed objective, one step."""

import torch

import seglosses

logits = torch.randn(2, 4, 64, 64, requires_grad=True)         # (N, C, H, W) network output
target = torch.randint(0, 4, (2, 64, 64), dtype=torch.uint8)   # class indices, any integer dtype
target[:, :8] = 255                                            # an "ignore" band

focal = seglosses.focal_loss(logits, target, "multiclass", gamma=2.0, ignore_index=255)
dice = seglosses.DiceLoss("multiclass", classes=[1, 2, 3], ignore_index=255)(logits, target)
lovasz = seglosses.lovasz_loss(logits, target, "multiclass", ignore_index=255)
loss = focal + dice
loss.backward()
print(f"focal {focal.item():.4f}  dice {dice.item():.4f}  lovasz {lovasz.item():.4f}  "
      f"grad finite: {bool(torch.isfinite(logits.grad).all())}")
