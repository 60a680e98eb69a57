"""Perceptual distance between frames.

The embedded default is **not LPIPS**: LPIPS needs ImageNet-trained backbone weights we cannot
download here. :class:`EncoderPerceptualDistance` follows LPIPS's recipe (unit-normalise each
layer's features over channels, squared difference, spatial mean, mean over layers; no learned
per-channel weights) on the encoder of our own autoencoder, trained on the procedural world.
:class:`LPIPSDistance` loads the real thing from the ``lpips`` package when the user has it and
its backbone weights locally.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from geogrpo.models.autoencoder import FrameAutoencoder, _ResBlock, load_autoencoder
from geogrpo.models.policy import PRETRAINED_DIR


class EncoderPerceptualDistance:
    """LPIPS-style distance on the shipped autoencoder's encoder features (embedded stand-in).

    ``distance(a, b)``: frames ``[N, H, W, 3]`` in [0, 1] -> ``[N]``, 0 for identical frames,
    computed on ``device`` (the encoder is moved there once, the frames at each call; None:
    where a given autoencoder is, the CPU for a loaded one).
    """

    name = "encoder_perceptual"

    def __init__(
        self,
        autoencoder: FrameAutoencoder | str | Path = "tiny-autoencoder",
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(autoencoder, nn.Module):
            shipped = PRETRAINED_DIR / str(autoencoder)
            autoencoder = load_autoencoder(shipped if shipped.is_dir() else autoencoder)
        if not isinstance(autoencoder, FrameAutoencoder):
            raise ValueError("autoencoder: the embedded distance needs a FrameAutoencoder")
        self.encoder = autoencoder.encoder.to(device).eval().requires_grad_(False)
        self.device = next(self.encoder.parameters()).device

    def features(self, frames: Tensor) -> list[Tensor]:
        x = frames.permute(0, 3, 1, 2).to(self.device, torch.float32) * 2 - 1
        taps = []
        for layer in self.encoder:
            x = layer(x)
            if isinstance(layer, _ResBlock):
                taps.append(x / (x.norm(dim=1, keepdim=True) + 1e-8))
        return taps

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        if a.shape != b.shape:
            raise ValueError(f"b: shape {tuple(b.shape)} does not match a {tuple(a.shape)}")
        with torch.no_grad():
            fa, fb = self.features(a), self.features(b)
        per_layer = [
            (x - y).square().sum(dim=1).mean(dim=(-1, -2)) for x, y in zip(fa, fb, strict=True)
        ]
        return torch.stack(per_layer).mean(dim=0)


class LPIPSDistance:
    """LPIPS (Zhang et al. 2018) through the ``lpips`` package; weights must be local."""

    name = "lpips"

    def __init__(self, net: str = "alex") -> None:
        try:
            import lpips
        except ImportError as err:
            raise ImportError(
                "LPIPSDistance needs the 'lpips' package (pip install lpips) and its backbone "
                "weights in the torch hub cache; the embedded default is "
                "EncoderPerceptualDistance"
            ) from err
        self.model = lpips.LPIPS(net=net, verbose=False).eval()

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        with torch.no_grad():
            d = self.model(a.permute(0, 3, 1, 2) * 2 - 1, b.permute(0, 3, 1, 2) * 2 - 1)
        return d.flatten()
