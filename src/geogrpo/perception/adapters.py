"""Adapters for the papers' full-size geometry models, behind :class:`GeometryEstimator`.

Each loads weights from a **local** directory and imports its package lazily, so the library
works without them and fails with an install hint when one is asked for. What they share is
:func:`estimate_from_predictions`, the conversion at the edge: the model's cameras, intrinsics,
depth and confidence at its own processing resolution become a
:class:`~geogrpo.perception.base.GeometryEstimate` at the video's resolution, with OpenCV
world-to-camera cameras relative to the first frame.

* ``da3``: Depth Anything 3 (World-R1), package ``depth-anything-3``.
* ``vggt``: VGGT (VGGRPO's geometry model), package ``vggt`` (installed from its repository).
* ``mapanything``: MapAnything (Geo-Align's evaluator), package ``mapanything`` (from its
  repository).

None of these packages installs beside this project's pins (DA3 needs numpy < 2, torchvision and
xformers; VGGT and MapAnything are not on PyPI), so only the conversion and the error paths are
tested here; the model calls follow each package's documented API.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from geogrpo.camera.se3 import c2w_to_w2c, relative_to_first, scale_intrinsics
from geogrpo.perception.base import SCALES, GeometryEstimate, Scale, check_video, sanitize_video
from geogrpo.utils.checks import check_choice
from geogrpo.utils.video import to_uint8


def import_optional(module: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"this adapter needs the {module!r} package: {install}") from err


def require_local_dir(model_dir: str | Path, what: str) -> Path:
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(
            f"model_dir: {path} is not a directory; download the {what} weights to a local "
            "directory (e.g. `huggingface-cli download <repo> --local-dir <dir>`) and pass it"
        )
    return path


def normalise_confidence(conf: Tensor) -> Tensor:
    """Map a model's unbounded confidence ``[F, H, W]`` (VGGT, DA3, MapAnything: >= 1, larger is
    surer) into [0, 1) per clip as ``c / (c + median c)``: 0.5 at the clip's median, so the
    rewards' default threshold of 0.5 keeps the surer half of the pixels."""
    med = conf.flatten().median().clamp_min(1e-6)
    return conf / (conf + med)


def estimate_from_predictions(
    w2c: Tensor | np.ndarray,  # [F, 3, 4] or [F, 4, 4] OpenCV world-to-camera
    intrinsics: Tensor | np.ndarray,  # [F, 3, 3] pixels of the processed frames
    depth: Tensor | np.ndarray,  # [F, h, w] z-depth at the processed resolution
    confidence: Tensor | np.ndarray | None,  # [F, h, w] >= 0, or None (all trusted)
    size: tuple[int, int],  # (H, W) of the video
    scale: Scale,
    drop: Tensor | np.ndarray | None = None,  # [F, h, w] bool, pixels to drop (e.g. sky)
) -> GeometryEstimate:
    """One clip's predictions as a single-sample estimate at the video's resolution.

    Depth and confidence are resized with nearest neighbours (no mixing across depth edges),
    intrinsics rescaled with the pixel-edge convention, cameras completed to 4x4 and made
    relative to the first frame."""
    check_choice("scale", scale, SCALES)
    w2c, k, d = (
        torch.as_tensor(np.asarray(x), dtype=torch.float64) for x in (w2c, intrinsics, depth)
    )
    f = w2c.shape[0]
    if w2c.shape[1:] == (3, 4):
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(f, 1, 4)
        w2c = torch.cat([w2c, bottom], dim=1)
    if w2c.shape != (f, 4, 4) or k.shape != (f, 3, 3) or d.ndim != 3 or d.shape[0] != f:
        raise ValueError(
            f"predictions: expected cameras [F, 3|4, 4], intrinsics [F, 3, 3] and depth "
            f"[F, h, w] with one F, got {tuple(w2c.shape)}, {tuple(k.shape)}, {tuple(d.shape)}"
        )
    h, w = size
    ph, pw = d.shape[1:]
    conf = (
        torch.ones_like(d)
        if confidence is None
        else normalise_confidence(torch.as_tensor(np.asarray(confidence), dtype=torch.float64))
    )

    def resize(x: Tensor) -> Tensor:
        return F.interpolate(x[:, None], size=(h, w), mode="nearest")[:, 0]

    depth_out = resize(d).float()
    finite = torch.isfinite(depth_out) & (depth_out > 0)
    if drop is not None:
        dropped = torch.as_tensor(np.asarray(drop), dtype=torch.float64)
        finite &= resize(dropped) < 0.5
    return GeometryEstimate(
        w2c=relative_to_first(w2c)[None],
        intrinsics=scale_intrinsics(k, w / pw, h / ph)[None],
        depth=torch.where(finite, depth_out, 0.0)[None],
        confidence=torch.where(finite, resize(conf).float(), 0.0)[None],
        scale=scale,
        valid=torch.ones(1, dtype=torch.bool),
    )


def stack_estimates(parts: list[GeometryEstimate], reasons: list[str]) -> GeometryEstimate:
    """Per-clip estimates as one batch; samples with a reason are invalidated."""
    est = GeometryEstimate(
        w2c=torch.cat([p.w2c for p in parts]),
        intrinsics=torch.cat([p.intrinsics for p in parts]),
        depth=torch.cat([p.depth for p in parts]),
        confidence=torch.cat([p.confidence for p in parts]),
        scale=parts[0].scale,
        valid=torch.ones(len(parts), dtype=torch.bool),
    )
    for i, reason in enumerate(reasons):
        if reason:
            est.invalidate(i, reason)
    return est


class _ClipEstimator(ABC):
    """Shared shell: sanitise the batch, run one clip at a time, convert, stack."""

    name: str
    scale: Scale

    @abstractmethod
    def estimate_clip(self, frames: np.ndarray, intrinsics: Tensor | None) -> GeometryEstimate:
        """One clip ``[F, H, W, 3]`` uint8 (and its ``[3, 3]`` intrinsics when known) -> a
        single-sample estimate."""

    def estimate(self, video: Tensor, intrinsics: Tensor | None = None) -> GeometryEstimate:
        check_video("video", video, min_frames=2)
        clean, reasons = sanitize_video(video)
        parts = [
            self.estimate_clip(to_uint8(clip), None if intrinsics is None else intrinsics[i])
            for i, clip in enumerate(clean)
        ]
        return stack_estimates(parts, reasons)


class DepthAnything3Estimator(_ClipEstimator):
    """Depth Anything 3 (any-view: cameras + depth + confidence) from a local checkpoint.

    Up to scale, except the metric checkpoints (``scale="metric"``). DA3's cameras are OpenCV
    world-to-camera (``Prediction.extrinsics``), its depth and intrinsics are at the processing
    resolution (``process_res`` on the long side)."""

    name = "da3"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cuda",
        process_res: int = 504,
        scale: Scale = "up_to_scale",
    ) -> None:
        api = import_optional(
            "depth_anything_3.api",
            "pip install depth-anything-3 (in an environment with numpy<2, torchvision, xformers)",
        )
        path = require_local_dir(model_dir, "Depth Anything 3 (e.g. depth-anything/DA3-LARGE)")
        self.model = api.DepthAnything3.from_pretrained(str(path)).to(device).eval()
        self.process_res = process_res
        self.scale = check_choice("scale", scale, SCALES)

    def estimate_clip(self, frames: np.ndarray, intrinsics: Tensor | None) -> GeometryEstimate:
        pred = self.model.inference(list(frames), process_res=self.process_res)
        return estimate_from_predictions(
            pred.extrinsics,
            pred.intrinsics,
            pred.depth,
            pred.conf,
            frames.shape[1:3],
            self.scale,
            drop=pred.sky,
        )


def _to_model_input(frames: np.ndarray, height: int, width: int) -> Tensor:
    """``[F, H, W, 3]`` uint8 -> ``[F, 3, height, width]`` float in [0, 1] (bicubic)."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    return F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def vggt_input_size(height: int, width: int, target: int = 518, patch: int = 14) -> tuple[int, int]:
    """VGGT's "crop" preprocessing size: width ``target``, height keeping the aspect ratio rounded
    to a multiple of the patch size (we resize instead of cropping, so no pixel is lost)."""
    return max(patch, round(target * height / width / patch) * patch), target


class VGGTEstimator(_ClipEstimator):
    """VGGT (Wang et al., CVPR 2025): cameras, depth and confidence of all frames in one pass.
    Up to scale (VGGT normalises the scene); cameras from ``pose_encoding_to_extri_intri``,
    OpenCV world-to-camera, intrinsics in pixels of the model input."""

    name = "vggt"
    scale: Scale = "up_to_scale"

    def __init__(self, model_dir: str | Path, device: str = "cuda") -> None:
        install = "pip install git+https://github.com/facebookresearch/vggt"
        models = import_optional("vggt.models.vggt", install)
        self.pose_enc = import_optional("vggt.utils.pose_enc", install)
        path = require_local_dir(model_dir, "VGGT (facebook/VGGT-1B, model.safetensors)")
        self.model = models.VGGT.from_pretrained(str(path)).to(device).eval()
        self.device = device

    def estimate_clip(self, frames: np.ndarray, intrinsics: Tensor | None) -> GeometryEstimate:
        h, w = vggt_input_size(*frames.shape[1:3])
        images = _to_model_input(frames, h, w).to(self.device)
        amp = torch.autocast("cuda", torch.bfloat16, enabled=self.device.startswith("cuda"))
        with torch.no_grad(), amp:
            out = self.model(images)
        extri, intri = self.pose_enc.pose_encoding_to_extri_intri(out["pose_enc"], (h, w))
        return estimate_from_predictions(
            extri[0].float().cpu(),
            intri[0].float().cpu(),
            out["depth"][0, ..., 0].float().cpu(),
            out["depth_conf"][0].float().cpu(),
            frames.shape[1:3],
            self.scale,
        )


DINOV2_MEAN = (0.485, 0.456, 0.406)  # MapAnything's "dinov2" input normalisation
DINOV2_STD = (0.229, 0.224, 0.225)


class MapAnythingEstimator(_ClipEstimator):
    """MapAnything (Keetha et al., 2025), Geo-Align's metric evaluator: metric cameras and depth,
    optionally conditioned on known intrinsics. Its poses are OpenCV camera-to-world and are
    inverted here; its mask drops pixels it does not trust (edges, sky)."""

    name = "mapanything"
    scale: Scale = "metric"

    def __init__(self, model_dir: str | Path, device: str = "cuda", size: int = 518) -> None:
        install = "pip install git+https://github.com/facebookresearch/map-anything"
        models = import_optional("mapanything.models", install)
        path = require_local_dir(model_dir, "MapAnything (facebook/map-anything)")
        self.model = models.MapAnything.from_pretrained(str(path)).to(device).eval()
        self.device, self.size = device, size

    def estimate_clip(self, frames: np.ndarray, intrinsics: Tensor | None) -> GeometryEstimate:
        f, h, w = frames.shape[:3]
        s = self.size
        images = _to_model_input(frames, s, s)
        mean = torch.tensor(DINOV2_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(DINOV2_STD).view(1, 3, 1, 1)
        images = ((images - mean) / std).to(self.device)
        views = [{"img": images[i : i + 1], "data_norm_type": ["dinov2"]} for i in range(f)]
        if intrinsics is not None:  # known calibration conditions the prediction
            k = scale_intrinsics(intrinsics.double().cpu(), s / w, s / h).float()
            for view in views:
                view["intrinsics"] = k[None].to(self.device)
        with torch.no_grad():
            preds = self.model.infer(views, apply_mask=True, mask_edges=True)
        c2w = torch.cat([p["camera_poses"] for p in preds]).double().cpu()  # [F, 4, 4]
        return estimate_from_predictions(
            c2w_to_w2c(c2w),
            torch.cat([p["intrinsics"] for p in preds]).float().cpu(),
            torch.cat([p["depth_z"][..., 0] for p in preds]).float().cpu(),
            torch.cat([p["conf"] for p in preds]).float().cpu(),
            (h, w),
            self.scale,
            drop=torch.cat([p["mask"][..., 0] for p in preds]).cpu() < 0.5,
        )
