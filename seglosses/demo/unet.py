"""A small U-Net (Ronneberger et al. 2015) for the demo: a few hundred thousand parameters, any input size divisible
by 4."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Two down-sampling stages, a bottleneck and two up-sampling stages with skip connections.

    Args:
        in_channels: channels of the input images.
        num_classes: channels of the output logits.
        width: channels of the first stage (doubled at each down-sampling); 24 gives about 260k parameters.
        deep_supervision: add 1x1 heads on the half-resolution decoder stage and the bottleneck; in training mode
            ``forward`` then returns ``[full, half, quarter]`` logits (highest resolution first, as
            :class:`seglosses.DeepSupervision` takes them), in eval mode the full-resolution logits only.

    Example:
        >>> net = UNet(1, 4)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 4, 32, 32])
        >>> sum(p.numel() for p in net.parameters())
        262852
        >>> [o.shape[-1] for o in UNet(1, 4, deep_supervision=True)(torch.zeros(2, 1, 32, 32))]
        [32, 16, 8]

    References:
        Ronneberger, Fischer, Brox. U-Net: Convolutional Networks for Biomedical Image Segmentation. MICCAI 2015.
        arXiv 1505.04597.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 24, deep_supervision: bool = False):
        super().__init__()
        w = width
        self.enc1 = _block(in_channels, w)
        self.enc2 = _block(w, 2 * w)
        self.mid = _block(2 * w, 4 * w)
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec2 = _block(4 * w, 2 * w)
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec1 = _block(2 * w, w)
        self.head = nn.Conv2d(w, num_classes, 1)
        self.pool = nn.MaxPool2d(2)
        self.aux = nn.ModuleList([nn.Conv2d(2 * w, num_classes, 1), nn.Conv2d(4 * w, num_classes, 1)]
                                 if deep_supervision else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        out = self.head(d1)
        if self.aux and self.training:
            return [out, self.aux[0](d2), self.aux[1](m)]
        return out
