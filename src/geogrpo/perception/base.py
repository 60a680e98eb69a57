"""What every geometry estimator returns, and the checks on what it is given.

Conventions (the package's, stated once): videos are ``[B, F, H, W, 3]`` floats in ``[0, 1]``;
cameras are OpenCV world-to-camera ``[B, F, 4, 4]`` with the world frame = the first camera, so
``w2c[:, 0]`` is the identity; intrinsics are pixels ``[B, F, 3, 3]``; depth is z-depth
``[B, F, H, W]``. ``scale`` says whether translations and depths are metric (the procedural
world's units, in which the camera is 1.5 above the ground) or known only up to one factor per
clip; rewards that compare against metric targets refuse up-to-scale estimates.

An estimator never raises for one bad sample of a batch: it marks it ``valid = False`` with a
reason, fills its fields with finite placeholders, and the rewards turn that into a masked score.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

from geogrpo.camera.se3 import relative_to_first
from geogrpo.utils.checks import check_choice, check_range, check_tensor

Scale = Literal["metric", "up_to_scale"]
SCALES = ("metric", "up_to_scale")


@dataclass
class GeometryEstimate:
    """Cameras, depth and confidence of a batch of clips, with per-sample validity."""

    w2c: Tensor  # [B, F, 4, 4]
    intrinsics: Tensor  # [B, F, 3, 3]
    depth: Tensor  # [B, F, H, W]; 0 where unknown
    confidence: Tensor  # [B, F, H, W] in [0, 1]: trust in a pixel's depth as a static surface
    scale: Scale
    valid: Tensor  # [B] bool, on the CPU (bookkeeping, like reasons)
    reasons: list[str] = field(default_factory=list)  # [B], "" for valid samples

    def __post_init__(self) -> None:
        check_choice("scale", self.scale, SCALES)
        b = self.w2c.shape[0]
        if not self.reasons:
            self.reasons = [""] * b
        if len(self.reasons) != b or self.valid.shape != (b,):
            raise ValueError(
                f"valid/reasons: need one entry per sample ({b}), got {tuple(self.valid.shape)} "
                f"and {len(self.reasons)}"
            )

    @property
    def batch_size(self) -> int:
        return self.w2c.shape[0]

    def to(self, device: torch.device | str) -> GeometryEstimate:
        """The estimate's tensors on ``device`` (itself when they are there already); ``valid``
        stays on the CPU."""
        device = torch.device(device)
        if self.w2c.device == device:
            return self
        return replace(
            self,
            w2c=self.w2c.to(device),
            intrinsics=self.intrinsics.to(device),
            depth=self.depth.to(device),
            confidence=self.confidence.to(device),
            valid=self.valid.clone(),
            reasons=list(self.reasons),
        )

    def as_source_geometry(self) -> dict[str, Tensor]:
        """The estimate as the source geometry ``VideoPolicy.prepare`` takes for ``reproj_v2v``
        (TrajectoryCrafter's step of estimating the source's depth): ``source_depth [B, F, H, W]``,
        ``source_w2c [B, F, 4, 4]``, ``intrinsics [B, 3, 3]`` (the first frame's). Failed samples
        are an error: their placeholders would reproject as if the scene were empty."""
        if not bool(self.valid.all()):
            bad = [f"{i}: {r}" for i, r in enumerate(self.reasons) if r]
            raise ValueError(f"video: geometry could not be estimated for samples {bad}")
        return {
            "source_depth": self.depth.float(),
            "source_w2c": self.w2c.float(),
            "intrinsics": self.intrinsics[:, 0].float(),
        }

    def invalidate(self, index: int, reason: str) -> None:
        """Mark one sample failed and replace its fields by finite placeholders."""
        self.valid[index] = False
        self.reasons[index] = self.reasons[index] or reason
        self.w2c[index] = torch.eye(4, dtype=self.w2c.dtype, device=self.w2c.device)
        self.depth[index] = 0
        self.confidence[index] = 0


@runtime_checkable
class GeometryEstimator(Protocol):
    """Anything that maps RGB clips to cameras and depth (tinygeo, classical, adapters)."""

    name: str
    scale: Scale

    def estimate(self, video: Tensor, intrinsics: Tensor | None = None) -> GeometryEstimate:
        """``video [B, F, H, W, 3]`` in [0, 1]; ``intrinsics [B, 3, 3]`` when known."""
        ...


def check_video(name: str, video: object, min_frames: int = 1) -> Tensor:
    """Shape, dtype and range checks that concern the whole batch (per-sample NaNs are not
    errors: the sample is masked). A video in [-1, 1] or 0-255 is an error that says how to
    convert it; an overshoot of at most ``RANGE_TOLERANCE`` is returned clamped."""
    check_tensor(name, video)
    assert isinstance(video, Tensor)
    if video.ndim != 5 or video.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected [B, F, H, W, 3] RGB in [0, 1], got {tuple(video.shape)}; "
            "channels-first videos convert with video.permute(0, 2, 3, 4, 1)"
        )
    if video.shape[1] < min_frames:
        raise ValueError(f"{name}: needs at least {min_frames} frames, got {video.shape[1]}")
    if min(video.shape) < 1:
        raise ValueError(f"{name}: empty video of shape {tuple(video.shape)}")
    return check_range(name, video, 0.0, 1.0)


def nonfinite_samples(video: Tensor) -> Tensor:
    """``[B]`` bool: samples with any NaN or infinite value."""
    return ~torch.isfinite(video.flatten(1)).all(dim=1)


def sanitize_video(video: Tensor) -> tuple[Tensor, list[str]]:
    """Zero out samples with non-finite values; return the cleaned video and per-sample reasons."""
    bad = nonfinite_samples(video)
    reasons = [
        f"{int((~torch.isfinite(video[i])).sum())} non-finite values in the video" if b else ""
        for i, b in enumerate(bad.tolist())
    ]
    clean = torch.where(bad[:, None, None, None, None], torch.zeros_like(video), video)
    return clean.clamp(0, 1), reasons


def estimate_from_truth(
    w2c: Tensor,  # [B, F, 4, 4]
    intrinsics: Tensor,  # [3, 3] or [B, F, 3, 3]
    depth: Tensor,  # [B, F, H, W], 0 at sky
    static: Tensor,  # [B, F, H, W] bool
) -> GeometryEstimate:
    """The world's ground truth as an estimate (cameras relative to the first frame, metric)."""
    b, f = w2c.shape[:2]
    rel = relative_to_first(w2c.double())
    return GeometryEstimate(
        w2c=rel,
        intrinsics=intrinsics.double().expand(b, f, 3, 3).clone(),
        depth=depth.float().clone(),
        confidence=static.float().clone(),
        scale="metric",
        valid=torch.ones(b, dtype=torch.bool),
    )


class KnownGeometry:
    """An estimator that returns geometry known in advance (the world's ground truth, or geometry
    computed elsewhere), for rewards evaluated on clips whose geometry is not in question."""

    name = "known"

    def __init__(self, estimate: GeometryEstimate) -> None:
        self.known = estimate
        self.scale = estimate.scale

    def estimate(self, video: Tensor, intrinsics: Tensor | None = None) -> GeometryEstimate:
        if video.shape[0] != self.known.batch_size:
            raise ValueError(
                f"video: {video.shape[0]} clips, but the known geometry has {self.known.batch_size}"
            )
        return GeometryEstimate(
            self.known.w2c.clone(),
            self.known.intrinsics.clone(),
            self.known.depth.clone(),
            self.known.confidence.clone(),
            self.known.scale,
            self.known.valid.clone(),
            list(self.known.reasons),
        )
