"""Latent Geometry Model (VGGRPO section 3.2): geometry straight from video latents, no VAE decode.

A 3D-convolution connector maps VAE latents ``[B, C, k + 1, h, w]`` to the tokens tinygeo has
after its first ``stitch_layer`` blocks, for all ``4k + 1`` frames (each latent frame's output
channels unfold into its 4 frames, frame 0 alone: Wan's causal layout); tinygeo's remaining
blocks and heads then predict cameras and depth. Training (``geogrpo pretrain lgm``) follows the
paper's two stages against the frozen RGB model: (1) feature alignment, connector only, MSE to
the RGB model's tokens at the stitch point (eq. 8); (2) prediction alignment, connector and
downstream layers, to the RGB model's cameras, depth and confidence (eq. 9).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import Tensor, nn

from geogrpo.camera.se3 import intrinsics_from_fov, make_pose
from geogrpo.models.autoencoder import SPATIAL_STRIDE, TEMPORAL_STRIDE, unfold_frames
from geogrpo.perception.base import GeometryEstimate
from geogrpo.perception.tinygeo import (
    PATCH,
    WORLD_FOV_DEG,
    TinyGeo,
    load_model_files,
    outputs_to_estimate,
    save_model,
)


class LatentConnector(nn.Module):
    """``latents [B, C, k + 1, h, w]`` -> stitch-point tokens ``[B, 4k + 1, 1 + g^2, D]``."""

    def __init__(self, latent_channels: int, dim: int, hidden: int = 256) -> None:
        super().__init__()
        down = PATCH // SPATIAL_STRIDE  # latent cells per tinygeo patch side
        self.net = nn.Sequential(
            nn.Conv3d(latent_channels, hidden, 3, padding=1),
            nn.GELU(),
            nn.Conv3d(hidden, TEMPORAL_STRIDE * dim, (1, down, down), stride=(1, down, down)),
        )
        self.camera = nn.Linear(dim, dim)
        self.camera_tokens = nn.Parameter(torch.zeros(2, dim))

    def forward(self, latents: Tensor) -> Tensor:
        x = unfold_frames(self.net(latents))  # [B, D, F, g, g]
        f = x.shape[2]
        patches = x.flatten(3).permute(0, 2, 3, 1)  # [B, F, g^2, D]
        index = torch.tensor([0] + [1] * (f - 1), device=latents.device)
        kind = self.camera_tokens[index]  # [F, D]
        cams = kind + self.camera(patches.mean(dim=2))  # [B, F, D]
        return torch.cat([cams[:, :, None], patches], dim=2)


class LatentGeometryModel(nn.Module):
    """Connector + the downstream part of a tinygeo (a copy, fine-tuned in stage 2)."""

    def __init__(self, geo: TinyGeo, latent_channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.geo = copy.deepcopy(geo)
        self.config = {"geo": geo.config, "latent_channels": latent_channels, "hidden": hidden}
        self.connector = LatentConnector(latent_channels, geo.config["dim"], hidden)

    def forward(self, latents: Tensor) -> dict[str, Tensor]:
        return self.geo.heads(self.connector(latents), None)

    def save_pretrained(self, directory: str | Path) -> None:
        save_model(self, directory)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path = "tinygeo-lgm", *, verify: bool | None = None
    ) -> LatentGeometryModel:
        config, state = load_model_files(name_or_path, verify=verify)
        model = cls(TinyGeo(**config["geo"]), config["latent_channels"], config["hidden"])
        model.load_state_dict(state)
        return model.eval()


class LatentGeometryEstimator:
    """Estimates geometry from latents (``estimate_latents``); the latent rewards use this.

    The model is moved to ``device`` once, here (None: where a given model is, the CPU for a
    loaded one); latents are moved there and the estimate is returned on that device
    (``valid`` on the CPU)."""

    name = "tinygeo-lgm"
    scale = "metric"

    def __init__(
        self,
        model: LatentGeometryModel | str | Path = "tinygeo-lgm",
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(model, LatentGeometryModel):
            model = LatentGeometryModel.from_pretrained(model)
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = model.connector.camera_tokens.device

    def cameras(self, latents: Tensor) -> Tensor:
        """Differentiable w2c ``[B, F, 4, 4]`` (relative to frame 0) of latents
        ``[B, C, k + 1, h, w]``: the camera head without the estimate's bookkeeping, for
        test-time reward guidance (gradients flow to the latents, the model stays frozen)."""
        if latents.ndim != 5:
            raise ValueError(f"latents: expected [B, C, k + 1, h, w], got {tuple(latents.shape)}")
        out = self.model(latents.to(self.device, torch.float32))
        return make_pose(out["rotation"], out["translation"])

    def estimate_latents(self, latents: Tensor) -> GeometryEstimate:
        if latents.ndim != 5:
            raise ValueError(f"latents: expected [B, C, k + 1, h, w], got {tuple(latents.shape)}")
        latents = latents.to(self.device)
        bad = ~torch.isfinite(latents.flatten(1)).all(dim=1)
        reasons = ["non-finite values in the latents" if x else "" for x in bad.tolist()]
        clean = torch.where(bad[:, None, None, None, None], torch.zeros_like(latents), latents)
        with torch.no_grad():
            out = self.model(clean.float())
        h, w = out["log_depth"].shape[-2:]
        return outputs_to_estimate(out, intrinsics_from_fov(WORLD_FOV_DEG, h, w), reasons)
