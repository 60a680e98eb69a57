"""Trajectory alignment and camera-accuracy metrics, with every choice named.

"How is RotErr computed?" is answered here once. Both trajectories are world-to-camera
``[..., F, 4, 4]``; an *estimated* one (from a generated video) is compared with a *reference*
(the requested path). Unless an option says otherwise:

* both are first made relative to their first frame (:func:`relative_to_first`), so the world
  frame of the estimator does not matter;
* **RotErr** = ``sum_f angle(R_est_f, R_ref_f)`` in radians, the geodesic angle between the
  relative rotations (CameraCtrl, He et al. 2024, sec. 4.1; CamI2V);
* **TransErr** = ``sum_f |c_est_f - c_ref_f|`` over camera centres after the translation
  normalisation ``normalization`` (default ``"max_norm"``: each trajectory's centres divided by
  its largest centre distance from the first camera, CamI2V's choice, which makes up-to-scale
  estimators comparable);
* **CamMC** = ``sum_f |[R|c]_est_f - [R|c]_ref_f|_F`` over camera-to-world 3x4 blocks under the
  same normalisation (CamI2V);
* **ATE** = RMSE of camera centres after Umeyama alignment (Sim(3) by default); **RPE** = RMSE of
  relative translations and mean relative-rotation angle over a frame gap.

Normalisations: ``"metric"`` (no scaling: for metric estimators such as MapAnything or our
ground-truth-anchored evaluator), ``"max_norm"``, ``"sim3"`` (Umeyama-align the estimated centres
onto the reference before measuring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import roma
import torch
from torch import Tensor

from geogrpo.camera.se3 import (
    camera_centers,
    check_pose,
    make_pose,
    relative_to_first,
    rotation_angle,
    w2c_to_c2w,
)
from geogrpo.utils.checks import check_choice, check_finite, check_positive

Normalization = Literal["metric", "max_norm", "sim3"]
NORMALIZATIONS = ("metric", "max_norm", "sim3")


@dataclass(frozen=True)
class Sim3:
    """Similarity ``x -> scale * R x + t`` (``R`` ``[..., 3, 3]``, ``t`` ``[..., 3]``)."""

    scale: Tensor  # [...]
    rotation: Tensor  # [..., 3, 3]
    translation: Tensor  # [..., 3]

    def apply(self, points: Tensor) -> Tensor:
        """Transform points ``[..., N, 3]``."""
        return (
            self.scale[..., None, None] * points @ self.rotation.transpose(-1, -2)
            + (self.translation[..., None, :])
        )


def umeyama(src: Tensor, dst: Tensor, with_scale: bool = True) -> Sim3:
    """Least-squares similarity (or rigid, ``with_scale=False``) aligning ``src`` onto ``dst``.

    Points ``[..., N, 3]``; Umeyama 1991 through ``roma.rigid_points_registration``.
    """
    if src.shape != dst.shape or src.shape[-1:] != (3,) or src.ndim < 2:
        raise ValueError(
            f"dst: expected two point sets of equal shape [..., N, 3], got {tuple(src.shape)} "
            f"and {tuple(dst.shape)}"
        )
    if src.shape[-2] < 3:
        raise ValueError(f"src: Umeyama needs at least 3 points, got {src.shape[-2]}")
    check_finite("src", src)
    check_finite("dst", dst)
    if not bool(_spans_a_plane(src).all()) or not bool(_spans_a_plane(dst).all()):
        raise ValueError(
            "src: the points are collinear or coincide, so the rotation of a Sim(3)/SE(3) fit is "
            "not unique (e.g. a dolly or a pan); compare such paths with normalization "
            "'max_norm' or 'metric'"
        )
    if with_scale:
        r, t, s = roma.rigid_points_registration(src, dst, compute_scaling=True)
    else:
        r, t = roma.rigid_points_registration(src, dst)
        s = torch.ones(r.shape[:-2], dtype=r.dtype, device=r.device)
    return Sim3(scale=s, rotation=r, translation=t)


def _spans_a_plane(points: Tensor, rel_tol: float = 1e-6) -> Tensor:
    """``[...]`` bool: the centred points ``[..., N, 3]`` span at least two directions."""
    centred = points - points.mean(dim=-2, keepdim=True)
    sv = torch.linalg.svdvals(centred)  # [..., 3], descending
    return sv[..., 1] > rel_tol * sv[..., 0].clamp_min(1e-300)


def apply_sim3_to_w2c(w2c: Tensor, sim: Sim3) -> Tensor:
    """Move cameras ``[..., F, 4, 4]``: centres ``sRc + t``, rotations ``R R_c``."""
    c2w = w2c_to_c2w(w2c)
    rot = sim.rotation[..., None, :, :] @ c2w[..., :3, :3]
    centers = sim.apply(c2w[..., :3, 3])
    return w2c_to_c2w(make_pose(rot, centers))


def align_trajectory(
    w2c_est: Tensor, w2c_ref: Tensor, mode: Literal["sim3", "se3", "first_frame"] = "sim3"
) -> Tensor:
    """Estimated trajectory moved onto the reference's frame.

    ``"sim3"`` / ``"se3"``: Umeyama on camera centres (with / without scale); ``"first_frame"``:
    make the first cameras coincide (the metric, no-fit alignment Geo-Align's reward uses).
    """
    _check_pair(w2c_est, w2c_ref)
    check_choice("mode", mode, ("sim3", "se3", "first_frame"))
    if mode == "first_frame":
        return relative_to_first(w2c_est) @ w2c_ref[..., :1, :, :]
    sim = umeyama(camera_centers(w2c_est), camera_centers(w2c_ref), with_scale=mode == "sim3")
    return apply_sim3_to_w2c(w2c_est, sim)


def _check_pair(w2c_est: Tensor, w2c_ref: Tensor) -> None:
    check_pose("w2c_est", w2c_est)
    check_pose("w2c_ref", w2c_ref)
    if w2c_est.shape != w2c_ref.shape or w2c_est.ndim < 3:
        raise ValueError(
            f"w2c_ref: expected trajectories of equal shape [..., F, 4, 4], got "
            f"{tuple(w2c_est.shape)} and {tuple(w2c_ref.shape)}"
        )


def _normalized_c2w(w2c_est: Tensor, w2c_ref: Tensor, normalization: str) -> tuple[Tensor, Tensor]:
    """First-frame-relative camera-to-world pair with the translation normalisation applied."""
    check_choice("normalization", normalization, NORMALIZATIONS)
    est = w2c_to_c2w(relative_to_first(w2c_est))
    ref = w2c_to_c2w(relative_to_first(w2c_ref))
    if normalization == "max_norm":
        for c2w in (est, ref):
            norm = c2w[..., :3, 3].norm(dim=-1).amax(dim=-1)[..., None, None]
            c2w[..., :3, 3] = c2w[..., :3, 3] / torch.where(norm > 0, norm, torch.ones_like(norm))
    elif normalization == "sim3":
        est[..., :3, 3] = _sim3_aligned_centers(est[..., :3, 3], ref[..., :3, 3])
    return est, ref


def _sim3_aligned_centers(est: Tensor, ref: Tensor) -> Tensor:
    """Estimated centres ``[..., F, 3]`` moved onto the reference's by the best similarity.

    Both paths start at the origin (first-frame relative). Where both span a plane, Umeyama's
    Sim(3) is unique and used; where either is collinear or static (dolly, pan) its rotation is
    not, and only a scale about the shared origin is fitted,
    ``s = sum c_est . c_ref / sum |c_est|^2``. Orientations are left alone: the fitted rotation
    describes the centres and would otherwise turn every camera of a degenerate path. A static
    reference lets the fitted scale reach 0 (Sim(3) alignment cannot see scale there); use
    ``max_norm`` or ``metric`` for such paths.
    """
    lead = est.shape[:-2]
    flat_est, flat_ref = est.reshape(-1, *est.shape[-2:]), ref.reshape(-1, *ref.shape[-2:])
    out = []
    for e, r in zip(flat_est, flat_ref, strict=True):  # [F, 3] each
        if bool(_spans_a_plane(e)) and bool(_spans_a_plane(r)):
            out.append(umeyama(e, r).apply(e))
        else:
            den = e.square().sum()
            scale = (e * r).sum() / den if float(den) > 0 else e.new_zeros(())
            out.append(scale * e)
    return torch.stack(out).reshape(*lead, *est.shape[-2:])


def rotation_errors(w2c_est: Tensor, w2c_ref: Tensor) -> Tensor:
    """Per-frame geodesic angles ``[..., F]`` (radians) between first-frame-relative rotations."""
    _check_pair(w2c_est, w2c_ref)
    est, ref = relative_to_first(w2c_est), relative_to_first(w2c_ref)
    return rotation_angle(est[..., :3, :3], ref[..., :3, :3])


def translation_errors(
    w2c_est: Tensor, w2c_ref: Tensor, normalization: Normalization = "max_norm"
) -> Tensor:
    """Per-frame camera-centre distances ``[..., F]`` after ``normalization``."""
    _check_pair(w2c_est, w2c_ref)
    est, ref = _normalized_c2w(w2c_est, w2c_ref, normalization)
    return (est[..., :3, 3] - ref[..., :3, 3]).norm(dim=-1)


def rot_err(w2c_est: Tensor, w2c_ref: Tensor) -> Tensor:
    """RotErr ``[...]``: sum over frames of the relative-rotation geodesic angle, radians."""
    return rotation_errors(w2c_est, w2c_ref).sum(dim=-1)


def trans_err(
    w2c_est: Tensor, w2c_ref: Tensor, normalization: Normalization = "max_norm"
) -> Tensor:
    """TransErr ``[...]``: sum over frames of camera-centre distances after ``normalization``."""
    return translation_errors(w2c_est, w2c_ref, normalization).sum(dim=-1)


def cam_mc(w2c_est: Tensor, w2c_ref: Tensor, normalization: Normalization = "max_norm") -> Tensor:
    """CamMC ``[...]``: sum over frames of the Frobenius distance of camera-to-world 3x4 blocks."""
    _check_pair(w2c_est, w2c_ref)
    est, ref = _normalized_c2w(w2c_est, w2c_ref, normalization)
    return (est[..., :3, :] - ref[..., :3, :]).flatten(-2).norm(dim=-1).sum(dim=-1)


def ate(w2c_est: Tensor, w2c_ref: Tensor, align: Literal["sim3", "se3"] = "sim3") -> Tensor:
    """Absolute trajectory error ``[...]``: RMSE of camera centres after Umeyama alignment."""
    aligned = align_trajectory(w2c_est, w2c_ref, align)
    diff = camera_centers(aligned) - camera_centers(w2c_ref)
    return diff.square().sum(dim=-1).mean(dim=-1).sqrt()


def rpe(w2c_est: Tensor, w2c_ref: Tensor, delta: int = 1) -> tuple[Tensor, Tensor]:
    """Relative pose error over a gap of ``delta`` frames: ``(translation RMSE, mean angle)``.

    ``E_f = (P_ref_f^-1 P_ref_{f+d})^-1 (P_est_f^-1 P_est_{f+d})`` on camera-to-world poses;
    no scale alignment (use ``align_trajectory`` first for up-to-scale estimates).
    """
    _check_pair(w2c_est, w2c_ref)
    if delta < 1 or delta >= w2c_est.shape[-3]:
        raise ValueError(f"delta: must be in [1, F-1] for F = {w2c_est.shape[-3]}, got {delta}")
    est, ref = w2c_to_c2w(w2c_est), w2c_to_c2w(w2c_ref)
    rel_est = torch.linalg.solve(est[..., :-delta, :, :], est[..., delta:, :, :])
    rel_ref = torch.linalg.solve(ref[..., :-delta, :, :], ref[..., delta:, :, :])
    err = torch.linalg.solve(rel_ref, rel_est)
    trans = err[..., :3, 3].square().sum(dim=-1).mean(dim=-1).sqrt()
    eye = torch.eye(3, dtype=err.dtype, device=err.device).expand_as(err[..., :3, :3])
    return trans, rotation_angle(err[..., :3, :3], eye).mean(dim=-1)


def temporal_weights(num_frames: int, kind: Literal["linear", "uniform"] = "linear") -> Tensor:
    """Per-frame weights ``[F]`` summing to 1; ``"linear"`` grows as ``f + 1`` (Geo-Align eq. 3)."""
    check_choice("kind", kind, ("linear", "uniform"))
    w = torch.arange(1, num_frames + 1, dtype=torch.float64)
    if kind == "uniform":
        w = torch.ones_like(w)
    return w / w.sum()


@dataclass(frozen=True)
class WeightedTrajectoryError:
    """Geo-Align's trajectory discrepancy, its two parts, and the per-frame errors."""

    translation: Tensor  # [...], weighted mean centre distance
    rotation: Tensor  # [...], weighted mean angle (radians)
    total: Tensor  # [...], translation + rotation_weight * rotation
    per_frame_translation: Tensor  # [..., F]
    per_frame_rotation: Tensor  # [..., F]


def weighted_trajectory_error(
    w2c_est: Tensor,
    w2c_ref: Tensor,
    rotation_weight: float = 1.0,
    weights: Literal["linear", "uniform"] = "linear",
    normalization: Normalization = "metric",
) -> WeightedTrajectoryError:
    """Geo-Align eqs. 3-4: ``sum_f w_f |t_est - t_ref|`` and ``sum_f w_f angle(R_est, R_ref)``.

    Weights grow with the frame index because generators follow the path early and drift late;
    the default ``"metric"`` normalisation keeps metric scale (Geo-Align's MapAnything evaluator).
    """
    check_positive("rotation_weight", rotation_weight, allow_zero=True)
    trans = translation_errors(w2c_est, w2c_ref, normalization)
    rot = rotation_errors(w2c_est, w2c_ref)
    w = temporal_weights(trans.shape[-1], weights).to(trans)
    t_err, r_err = (trans * w).sum(dim=-1), (rot * w).sum(dim=-1)
    return WeightedTrajectoryError(t_err, r_err, t_err + rotation_weight * r_err, trans, rot)
