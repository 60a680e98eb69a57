"""Geometry rewards: trajectory following (Geo-Align), camera smoothness and reprojection
consistency (VGGRPO). Pure functions on cameras and depth, and thin reward shells that get the
geometry from an estimator (cached on the batch) and mask what they cannot score.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

from geogrpo.camera.metrics import align_trajectory, weighted_trajectory_error
from geogrpo.camera.se3 import camera_centers, relative_to_first, so3_log
from geogrpo.geometry.projection import unproject_depth
from geogrpo.perception.base import GeometryEstimate, GeometryEstimator
from geogrpo.rewards.base import (
    RewardBatch,
    RewardOutput,
    all_masked,
    estimate_geometry,
    finalize,
)
from geogrpo.utils.checks import check_choice, check_int_range, check_ndim, check_positive

# --- pure functions ---------------------------------------------------------------------------


def smoothness_errors(
    w2c: Tensor, eps_translation: float = 1e-2, eps_rotation: float = math.radians(0.1)
) -> tuple[Tensor, Tensor]:
    """VGGRPO's scale-normalised accelerations of a trajectory ``[..., F, 4, 4]`` (F >= 3).

    ``e_trans = mean_t |a_t| / (mean_t |v_t| + eps)`` with ``v``, ``a`` the first and second
    differences of the camera centres, and the same for rotation with angular velocities
    ``omega_t = log(R_{t+1} R_t^T)``. Dividing by the mean speed makes a slow and a fast constant
    motion equally smooth; the ``eps`` floors (world units / radians per frame) keep an almost
    static camera's estimator noise from dividing by zero. Returns ``([...], [...])``.
    """
    if w2c.shape[-3] < 3:
        raise ValueError(f"w2c: smoothness needs at least 3 frames, got {w2c.shape[-3]}")
    c = camera_centers(w2c)  # [..., F, 3]
    v = c[..., 1:, :] - c[..., :-1, :]
    a = v[..., 1:, :] - v[..., :-1, :]
    e_trans = a.norm(dim=-1).mean(dim=-1) / (v.norm(dim=-1).mean(dim=-1) + eps_translation)
    rot = w2c[..., :3, :3]
    omega = so3_log(rot[..., 1:, :, :] @ rot[..., :-1, :, :].transpose(-1, -2))  # [..., F-1, 3]
    alpha = omega[..., 1:, :] - omega[..., :-1, :]
    e_rot = alpha.norm(dim=-1).mean(dim=-1) / (omega.norm(dim=-1).mean(dim=-1) + eps_rotation)
    return e_trans, e_rot


def smoothness_score(
    w2c: Tensor, eps_translation: float = 1e-2, eps_rotation: float = math.radians(0.1)
) -> Tensor:
    """``(exp(-e_trans) + exp(-e_rot)) / 2`` in (0, 1] of :func:`smoothness_errors`, ``[...]``;
    differentiable in ``w2c`` (the latent guidance ascends it)."""
    e_t, e_r = smoothness_errors(w2c, eps_translation, eps_rotation)
    return 0.5 * (torch.exp(-e_t) + torch.exp(-e_r))


def reprojection_errors(
    depth: Tensor,  # [F, H, W], 0 where unknown
    confidence: Tensor,  # [F, H, W] in [0, 1]
    w2c: Tensor,  # [F, 4, 4]
    intrinsics: Tensor,  # [F, 3, 3]
    threshold: float = 0.5,
    stride: int = 1,
) -> Tensor:
    """Per-view depth reprojection error ``[F]`` of one clip (VGGRPO's geometry consistency).

    The static points of every *other* frame (confidence >= ``threshold``, every ``stride``-th
    pixel) are splatted into view ``j`` with a z-buffer, and the rendered depth is compared with
    view ``j``'s own depth: mean of ``min(|D_hat - D| / D, 1)`` over pixels that received a point
    and are static in ``j``. Leaving view ``j``'s own points out makes the error measure whether
    the other views agree with it (with them in, every view trivially reproduces itself). NaN
    for a view with no comparable pixel.

    The splat is a depth-only z-buffer (what :func:`~geogrpo.geometry.warp.splat_points`
    computes, without colours or winners), one view at a time so that a view's ``N``
    projections stay in cache: own points masked, off-view points sent to a spare cell.
    """
    f, h, w = depth.shape
    keep = (confidence >= threshold) & (depth > 0)
    safe = torch.where(keep, depth, torch.ones_like(depth)).double()
    w2c, k = w2c.double(), intrinsics.double()
    points = unproject_depth(safe, k, w2c)  # [F, H, W, 3]
    sub = (slice(None), slice(None, None, stride), slice(None, None, stride))
    pts, mask = points[sub].reshape(f, -1, 3), keep[sub].reshape(f, -1)
    pts_t = pts[mask].T.contiguous()  # [3, N], frame by frame
    if pts_t.shape[1] == 0:
        return torch.full((f,), float("nan"), dtype=torch.float64, device=depth.device)
    ends = mask.sum(dim=1).cumsum(0).tolist()  # frame i's points are [ends[i-1], ends[i])
    proj = k @ w2c[:, :3, :]  # [F, 3, 4], K [R | t]
    zbuf = torch.full((f, h * w + 1), torch.inf, dtype=torch.float64, device=depth.device)
    for j in range(f):
        uvz = torch.addmm(proj[j, :, 3:], proj[j, :, :3], pts_t)  # [3, N]
        z = uvz[2]
        uv = uvz[:2].div_(z).floor_()  # pixel column, row (garbage where z <= 0: masked)
        valid = (z > 0) & (uv[0] >= 0) & (uv[0] < w) & (uv[1] >= 0) & (uv[1] < h)
        valid[ends[j - 1] if j else 0 : ends[j]] = False  # view j's own points
        cell = torch.where(valid, uv[1].mul_(w).add_(uv[0]), float(h * w)).long()
        zbuf[j].scatter_reduce_(0, cell, z, reduce="amin")
    zbuf = zbuf[:, :-1].view(f, h, w)  # nearest depth drawn at each pixel, inf where none
    compare = torch.isfinite(zbuf) & keep
    rel = ((zbuf - depth.double()).abs() / safe).clamp(max=1.0)
    total = torch.where(compare, rel, 0.0).sum(dim=(-1, -2))
    count = compare.sum(dim=(-1, -2))
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def worst_views_error(errors: Tensor, k: int = 3) -> Tensor:
    """Mean of the ``k`` largest finite per-view errors ``[F]`` (VGGRPO's 3 worst views)."""
    finite = errors[torch.isfinite(errors)]
    if finite.numel() == 0:
        return errors.new_tensor(float("nan"))
    return finite.topk(min(k, finite.numel())).values.mean()


# --- reward shells ----------------------------------------------------------------------------


def _estimator(estimator: Any, source: str = "rgb") -> Any:
    """The estimator object a reward uses; names are resolved once, at the edge."""
    check_choice("source", source, ("rgb", "latent"))
    if isinstance(estimator, str):
        raise ValueError(
            f"estimator: pass an estimator object, not the name {estimator!r}; build it once with "
            "geogrpo.recipes.build.build_estimator so that every reward of a batch shares it"
        )
    if source == "latent" and not hasattr(estimator, "estimate_latents"):
        raise ValueError(
            f"estimator: source='latent' needs a latent estimator (estimate_latents), "
            f"got {type(estimator).__name__}"
        )
    return estimator


def _geometry(
    batch: RewardBatch,
    estimator: Any,
    min_frames: int,
    diagnostics: tuple[str, ...],
    source: str = "rgb",
) -> tuple[GeometryEstimate | None, RewardOutput | None]:
    """The batch's geometry, or an all-masked output saying why there is none."""
    b, problem = batch.size()
    if problem:
        return None, all_masked(b, problem, diagnostics)
    if source == "latent":
        if batch.latents is None:
            return None, all_masked(b, "latents: a latent reward needs batch.latents", diagnostics)
        return estimate_latent_geometry(batch, estimator), None
    video = batch.video
    if video is not None and video.ndim == 5 and video.shape[1] < min_frames:
        return None, all_masked(
            b, f"video has {video.shape[1]} frames; this reward needs >= {min_frames}", diagnostics
        )
    return estimate_geometry(batch, estimator), None


def estimate_latent_geometry(batch: RewardBatch, estimator: Any) -> GeometryEstimate:
    """Like :func:`~geogrpo.rewards.base.estimate_geometry`, from ``batch.latents`` (no decode)."""
    key = f"latent_geometry/{estimator.name}/{id(estimator)}"
    if key not in batch.cache:
        estimate = estimator.estimate_latents(batch.latents)
        batch.cache[key] = (estimator, estimate.to(batch.latents.device))
    return batch.cache[key][1]


class TrajectoryReward:
    """Geo-Align's verifiable geometry reward (eqs. 3-4): how closely the generated video's
    estimated cameras follow the requested ones.

    Error = weighted translation distance + ``rotation_weight`` x weighted rotation angle
    (radians), weights growing with the frame index (late frames drift most). ``align``:
    ``"first_frame"`` keeps metric scale and fits nothing (Geo-Align's metric evaluator: a
    shape-preserving but too slow trajectory is penalised); ``"sim3"`` fits scale, rotation and
    translation first (for up-to-scale estimators). Score = ``exp(-error / temperature)``.
    """

    name = "trajectory"
    diagnostics = ("translation_error", "rotation_error_deg", "error")

    def __init__(
        self,
        estimator: GeometryEstimator,
        align: Literal["first_frame", "sim3"] = "first_frame",
        rotation_weight: float = 1.0,
        weights: Literal["linear", "uniform"] = "linear",
        temperature: float = 1.0,
    ) -> None:
        self.estimator = _estimator(estimator)
        self.align = check_choice("align", align, ("first_frame", "sim3"))
        if align == "first_frame" and self.estimator.scale != "metric":
            raise ValueError(
                f"align: 'first_frame' compares metric translations, but {self.estimator.name} "
                "estimates up to scale; use align='sim3' or a metric estimator"
            )
        self.rotation_weight = check_positive("rotation_weight", rotation_weight, allow_zero=True)
        self.weights = weights
        self.temperature = check_positive("temperature", temperature)

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        b, _ = batch.size()
        if batch.target_w2c is None:
            return all_masked(b, "target_w2c: the trajectory reward needs the requested cameras")
        check_ndim("target_w2c", batch.target_w2c, 4, "[B, F, 4, 4]")
        if batch.target_w2c.shape[-2:] != (4, 4):
            raise ValueError(
                f"target_w2c: expected [B, F, 4, 4] cameras, got {tuple(batch.target_w2c.shape)}"
            )
        geo, masked = _geometry(batch, self.estimator, 2, self.diagnostics)
        if masked is not None:
            return masked
        assert geo is not None
        # a sample asked for non-finite cameras is masked, not the batch (the reward contract)
        target = batch.target_w2c.to(geo.w2c.device, torch.float64)
        bad_target = ~torch.isfinite(target.flatten(1)).all(dim=1)
        eye = torch.eye(4, dtype=target.dtype, device=target.device)
        target = torch.where(bad_target[:, None, None, None], eye, target)
        if target.shape[1] != geo.w2c.shape[1]:
            return all_masked(
                b,
                f"target_w2c has {target.shape[1]} cameras for {geo.w2c.shape[1]} frames; "
                "give one camera per frame",
                self.diagnostics,
            )
        target = relative_to_first(target)
        est = relative_to_first(geo.w2c.double())
        valid, reasons = geo.valid.clone(), list(geo.reasons)
        for i in torch.nonzero(bad_target).flatten().tolist():
            valid[i] = False
            reasons[i] = reasons[i] or "target_w2c has NaN or infinite entries in this sample"
        if self.align == "sim3":  # per sample: a degenerate fit masks that sample only
            aligned = []
            for i in range(b):
                try:
                    aligned.append(align_trajectory(est[i], target[i], "sim3"))
                except ValueError as err:
                    aligned.append(est[i])
                    valid[i] = False
                    reasons[i] = reasons[i] or f"sim3 alignment: {err}"
            est = torch.stack(aligned)
        err = weighted_trajectory_error(
            est, target, self.rotation_weight, self.weights, normalization="metric"
        )
        return finalize(
            torch.exp(-err.total / self.temperature),
            valid,
            reasons,
            {
                "translation_error": err.translation,
                "rotation_error_deg": torch.rad2deg(err.rotation),
                "error": err.total,
            },
        )


class SmoothnessReward:
    """VGGRPO's camera-motion smoothness reward: ``(exp(-e_trans) + exp(-e_rot)) / 2`` in (0, 1]
    from :func:`smoothness_errors` of the estimated trajectory (1 for constant-velocity motion,
    towards 0 with jitter). The paper maps each error into (0, 1]; the exponential is our choice
    of that map. ``source="latent"`` estimates from ``batch.latents`` through the Latent
    Geometry Model (VGGRPO's latent reward, no VAE decode)."""

    name = "smoothness"
    diagnostics = ("translation_jerk", "rotation_jerk")

    def __init__(
        self,
        estimator: GeometryEstimator,
        eps_translation: float = 1e-2,
        eps_rotation_deg: float = 0.1,
        source: Literal["rgb", "latent"] = "rgb",
    ) -> None:
        self.source = source
        self.estimator = _estimator(estimator, source)
        self.eps_translation = check_positive("eps_translation", eps_translation)
        self.eps_rotation = math.radians(check_positive("eps_rotation_deg", eps_rotation_deg))

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        geo, masked = _geometry(batch, self.estimator, 3, self.diagnostics, self.source)
        if masked is not None:
            return masked
        assert geo is not None
        e_t, e_r = smoothness_errors(geo.w2c.double(), self.eps_translation, self.eps_rotation)
        score = 0.5 * (torch.exp(-e_t) + torch.exp(-e_r))
        return finalize(
            score, geo.valid, geo.reasons, {"translation_jerk": e_t, "rotation_jerk": e_r}
        )


class ReprojectionReward:
    """VGGRPO's geometry reprojection consistency: the mean depth reprojection error of the
    ``worst_k`` = 3 worst views (:func:`reprojection_errors`), static points only (the
    estimator's confidence, which tinygeo trains to be "static surface"; moving objects and sky
    drop out). Score = ``exp(-error / temperature)``, in (0, 1]. ``source="latent"``: from
    ``batch.latents`` through the Latent Geometry Model."""

    name = "reprojection"
    diagnostics = ("worst_views_error", "mean_view_error")

    def __init__(
        self,
        estimator: GeometryEstimator,
        worst_k: int = 3,
        threshold: float = 0.5,
        stride: int = 1,
        temperature: float = 0.1,
        source: Literal["rgb", "latent"] = "rgb",
    ) -> None:
        self.source = source
        self.estimator = _estimator(estimator, source)
        self.worst_k = check_int_range("worst_k", worst_k, 1)
        self.threshold = threshold
        self.stride = check_int_range("stride", stride, 1)
        self.temperature = check_positive("temperature", temperature)

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        geo, masked = _geometry(batch, self.estimator, 2, self.diagnostics, self.source)
        if masked is not None:
            return masked
        assert geo is not None
        worst, mean = [], []
        for i in range(geo.batch_size):
            errors = reprojection_errors(
                geo.depth[i],
                geo.confidence[i],
                geo.w2c[i],
                geo.intrinsics[i],
                self.threshold,
                self.stride,
            )
            worst.append(worst_views_error(errors, self.worst_k))
            finite = torch.isfinite(errors)
            mean.append(errors[finite].mean() if finite.any() else errors.new_tensor(float("nan")))
        worst_t, mean_t = torch.stack(worst), torch.stack(mean)
        reasons, valid = list(geo.reasons), geo.valid.clone()
        for i in torch.nonzero(valid & ~torch.isfinite(worst_t).cpu()).flatten().tolist():
            valid[i] = False
            reasons[i] = "no static pixel is seen by two views (confidence below threshold)"
        return finalize(
            torch.exp(-worst_t / self.temperature),
            valid,
            reasons,
            {"worst_views_error": worst_t, "mean_view_error": mean_t},
        )
