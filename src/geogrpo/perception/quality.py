"""Quality scorers: per-frame "does this look like a clean frame" scores in [0, 1].

:class:`TinyQualityScorer` is the **embedded stand-in for HPSv3 / VideoAlign**: a small conv net
trained (``geogrpo pretrain quality``) with a Bradley-Terry ranking loss to score clean renders of
the procedural world above the same frames degraded the ways generated video goes wrong (blur,
noise, colour shift, autoencoder round trips with heavy latent noise as a proxy for badly
generated frames). It knows nothing of human preference; it only guards the geometry rewards
against winning by degrading the picture. Adapters for the real scorers are not written yet.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from geogrpo.perception.tinygeo import load_model_files, save_model


class TinyQualityScorer(nn.Module):
    """``frames [N, H, W, 3]`` in [0, 1] -> logits ``[N]``; :meth:`score` maps them to (0, 1)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.config = {"width": width}
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * w, 1),
        )

    def forward(self, frames: Tensor) -> Tensor:
        return self.net(frames.permute(0, 3, 1, 2) * 2 - 1).squeeze(-1)

    def score(self, frames: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.sigmoid(self(frames.float()))

    def save_pretrained(self, directory: str | Path) -> None:
        save_model(self, directory)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "tiny-quality") -> TinyQualityScorer:
        config, state = load_model_files(name_or_path)
        model = cls(**config)
        model.load_state_dict(state)
        return model.eval().requires_grad_(False)
