"""Quality scorers: per-frame "does this look like a clean frame" scores in [0, 1].

:class:`TinyQualityScorer` is the **embedded stand-in for HPSv3 / VideoAlign**: a small conv net
trained (``geogrpo pretrain quality``) with a Bradley-Terry ranking loss to score clean renders of
the procedural world above the same frames degraded the ways generated video goes wrong (blur,
noise, colour shift, autoencoder round trips with heavy latent noise as a proxy for badly
generated frames). It knows nothing of human preference; it only guards the geometry rewards
against winning by degrading the picture. Since issue 22 it is also trained on generated
negatives (``--policies``): samples of the policies, GRPO-trained ones included, on train-split
conditions, ranked below the true target frame and, within a condition, by their distance to
the true target, so the drift a policy found against the earlier scorer (more high frequency,
brighter, less structure) is ranked by the world's truth. It stays no-reference: it sees only
the frames it scores.

Adapters for the real scorers, from local weights: :class:`HPSv3Scorer` (per frame, with the
prompt; World-R1's general reward) and :class:`VideoAlignScorer` (per video; VideoAlign's
Overall). Their packages pin other library versions than ours (HPSv3: transformers 4.45.2,
torchvision, deepspeed; VideoAlign is a repository, not a package), so they run in their own
environment and only their error paths are tested here. Both map their unbounded outputs into
(0, 1) with ``sigmoid(x / scale)``, ``scale`` stated per scorer.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from geogrpo.perception.adapters import import_optional, require_local_dir
from geogrpo.perception.tinygeo import load_model_files, save_model
from geogrpo.utils.video import to_uint8

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def log_detail(x: Tensor, eps: float = 1e-3) -> Tensor:
    """``log(eps + |Laplacian of grey|)`` ``[N, 1, H, W]``, scaled to about [-1, 1].

    The world's renders are smooth (mean |gradient| 0.016), so blur removes very little in
    absolute terms while noise adds a lot; on the raw pixels the scorer learned "less detail is
    better" and ranked blurred frames above clean ones. In log magnitude halving and doubling
    the detail move the input by the same amount."""
    grey = x.mean(dim=1, keepdim=True)
    lap = torch.nn.functional.conv2d(grey, LAPLACIAN.to(x)[None, None], padding=1)
    return torch.log(eps + lap.abs()) / 4 + 1


class TinyQualityScorer(nn.Module):
    """``frames [N, H, W, 3]`` in [0, 1] -> logits ``[N]``; :meth:`score` maps them to (0, 1).

    ``quantize`` rounds the frames to 8 bits first, as a video file holds them: training frames
    come from 8-bit caches while a reward sees the decoder's floats, and the log-detail channel
    reads rounding steps in flat regions (the first scorer, without it, scored the float frames
    of tiny-camera-v2v 0.011 higher than the same frames rounded)."""

    name = "tiny-quality"

    def __init__(self, width: int = 32, quantize: bool = True) -> None:
        super().__init__()
        self.config = {"width": width, "quantize": quantize}
        self.quantize = quantize
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3 + 1, w, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            # a hidden layer after pooling lets the score peak at clean sharpness, with blur
            # below and noise above it; a linear read-out of pooled features is monotone in
            # them and learned "less high frequency is better"
            nn.Linear(2 * w, 2 * w),
            nn.GELU(),
            nn.Linear(2 * w, 1),
        )

    def forward(self, frames: Tensor) -> Tensor:
        x = frames.permute(0, 3, 1, 2)
        if self.quantize:
            x = (x.clamp(0, 1) * 255).round() / 255
        return self.net(torch.cat([x * 2 - 1, log_detail(x)], dim=1)).squeeze(-1)

    def score(self, frames: Tensor) -> Tensor:
        """Scores ``[N]`` in (0, 1) on the scorer's device (the frames are moved there)."""
        device = self.net[0].weight.device
        with torch.no_grad():
            return torch.sigmoid(self(frames.to(device, torch.float32)))

    def save_pretrained(self, directory: str | Path) -> None:
        save_model(self, directory)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path = "tiny-quality", *, verify: bool | None = None
    ) -> TinyQualityScorer:
        config, state = load_model_files(name_or_path, verify=verify)
        config.setdefault("quantize", False)  # scorers saved before the option read floats
        model = cls(**config)
        model.load_state_dict(state)
        return model.eval().requires_grad_(False)


class HPSv3Scorer:
    """HPSv3 (Ma et al., 2025) through the ``hpsv3`` package: per-frame preference ``mu`` given
    the prompt, as ``sigmoid(mu / scale)``."""

    name = "hpsv3"
    uses_prompts = True

    def __init__(
        self,
        checkpoint_path: str | Path,
        config_path: str | Path | None = None,
        device: str = "cuda",
        scale: float = 5.0,
    ) -> None:
        hpsv3 = import_optional(
            "hpsv3",
            "pip install hpsv3 in its own environment (it pins transformers==4.45.2), with a "
            "config whose model_name_or_path is a local Qwen2-VL-7B-Instruct",
        )
        checkpoint = Path(checkpoint_path)
        if not checkpoint.is_file():
            raise FileNotFoundError(
                f"checkpoint_path: {checkpoint} is not a file; download HPSv3.safetensors "
                "(MizzenAI/HPSv3) and pass its path"
            )
        self.model = hpsv3.HPSv3RewardInferencer(
            config_path=None if config_path is None else str(config_path),
            checkpoint_path=str(checkpoint),
            device=device,
        )
        self.scale = scale

    def score(self, frames: Tensor, prompts: list[str] | None = None) -> Tensor:
        from PIL import Image

        images = [Image.fromarray(p) for p in to_uint8(frames)]
        with torch.no_grad():
            logits = self.model.reward(prompts=prompts or [""] * len(images), image_paths=images)
        return torch.sigmoid(torch.as_tensor(logits)[:, 0].float().cpu() / self.scale)


class VideoAlignScorer:
    """VideoAlign's VideoReward (Liu et al., 2025) from a clone of its repository and a local
    checkpoint directory: the normalised Overall (VQ + MQ + TA) per video, as
    ``sigmoid(overall / scale)``."""

    name = "videoalign"
    uses_prompts = True

    def __init__(
        self,
        repo_dir: str | Path,
        checkpoint_dir: str | Path,
        device: str = "cuda",
        scale: float = 3.0,
        fps: float = 16.0,
    ) -> None:
        repo = require_local_dir(repo_dir, "VideoAlign repository (git clone KwaiVGI/VideoAlign)")
        checkpoint = require_local_dir(checkpoint_dir, "VideoReward (KwaiVGI/VideoReward)")
        sys.path.insert(0, str(repo))
        inference = import_optional(
            "inference", f"VideoAlign's inference.py was not found in {repo}"
        )
        self.model = inference.VideoVLMRewardInference(str(checkpoint), device=device)
        self.scale, self.fps = scale, fps

    def score_videos(self, videos: Tensor, prompts: list[str] | None = None) -> Tensor:
        from geogrpo.utils.video import write_video

        with tempfile.TemporaryDirectory() as tmp:
            paths = [
                str(write_video(Path(tmp) / f"{i}.mp4", v, self.fps)) for i, v in enumerate(videos)
            ]
            with torch.no_grad():
                rewards = self.model.reward(paths, prompts or [""] * len(paths), use_norm=True)
        overall = torch.tensor([float(r["Overall"]) for r in rewards])
        return torch.sigmoid(overall / self.scale)
