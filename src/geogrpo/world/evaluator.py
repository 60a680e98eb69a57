"""Ground-truth-anchored camera evaluator: where was each frame of a video really taken?

Why: every reward model we train against (MapAnything-style pose regressors, epipolar and warp
rewards) is itself an estimator with its own failure modes; a benchmark scored by one of them
can be gamed by it. Our procedural world renders the true view at any camera with exact metric
depth, so a frame can be registered against the truth directly: dense optical flow from the
ground-truth render at the requested camera to the generated frame gives 2D-3D correspondences
(render pixel -> its exact 3D point, observed at ``p + flow(p)`` in the frame), and PnP with
known intrinsics gives the frame's actual world-to-camera pose. The result is in the scene's
metric units with no scale ambiguity and no alignment fitted, and it depends on no reward model.

Per frame (the defaults below are keyword arguments of :func:`evaluate_cameras`; steps 1-6 are
:func:`geogrpo.geometry.registration.register_frame`, shared with the flow-based estimator
:mod:`geogrpo.perception.flow_pnp`, which registers frames against other frames instead):

1. **Flow**: OpenCV DIS, ``PRESET_MEDIUM`` with the finest scale set to 0 (full resolution: at
   the small sizes we evaluate, the preset's half-resolution flow more than doubles the pose
   error to save about 4 ms a frame), on grayscale uint8, render -> frame, and frame -> render
   for the check in 4.
2. **Candidates**: render pixels on a grid of ``stride`` = 2 pixels where the render has a
   surface (finite depth > 0), ``valid_mask`` is true (the caller masks sky and dynamic objects)
   and the render is textured enough to track (local standard deviation of the gray level over a
   7x7 window >= ``min_texture`` = 0.01, intensities in [0, 1]).
3. **Photometric check**: the frame pulled back onto the render through the flow must correlate
   with the render, local zero-mean NCC over 7x7 >= ``min_ncc`` = 0.5. NCC ignores exposure
   drift but rejects flow that matched nothing; without it a blank frame, on which DIS returns
   zero flow, would register as a perfect hit at the requested camera.
4. **Forward-backward consistency** (Sundaram et al. 2010, ``consistency_check``): a
   correspondence is kept when ``|f + b|^2 < 0.01 (|f|^2 + |b|^2) + 0.5`` px^2, with ``f`` the
   forward flow at ``p`` and ``b`` the backward flow at ``p + f``; this drops occluded and
   mistracked pixels. Targets outside the frame are dropped too.
5. **PnP**: ``cv2.solvePnPRansac`` (EPnP minimal samples, ``ransac_iterations`` = 1000,
   ``ransac_threshold_px`` = 1.0 px reprojection error, confidence 0.999, ``cv2.setRNGSeed(seed)``
   before every frame), then ``cv2.solvePnPRefineLM`` on the inliers; inliers are recounted under
   the refined pose. Points are expressed in the requested camera's frame (better conditioned
   than world coordinates far from the origin), so PnP returns the correction ``delta`` and
   ``actual_w2c = delta @ requested_w2c``.
6. **Confidence** = inlier ratio = inliers / candidates of step 2: the fraction of the render's
   trackable surface that the frame confirms, so pixels lost to steps 3-4 or leaving the view
   count against the frame like RANSAC outliers. A frame is **matched** when PnP succeeds (at
   least 12 consistent correspondences and RANSAC inliers) and its inlier ratio is at least
   ``min_inlier_ratio`` = 0.3.

Reach: DIS registers frames whose image moves up to about 15 px from the request at 96x96 (10
degrees of rotation at a 60 degree field of view, measured); a frame further off is reported
unmatched rather than given a large error, so read the errors together with the matched fraction.

Unmatched frames get NaN poses and NaN errors, never zero. Clip-level numbers are computed over
the matched frames only: ``rot_err``/``trans_err`` are ``geogrpo.camera.metrics.rot_err`` /
``trans_err(normalization="metric")`` on the matched subsequence of (actual, requested) cameras,
made relative to the first *matched* frame; ``num_unmatched`` is reported next to them because a
sum over fewer frames is smaller. With no matched frame they are NaN.

Pixel conventions: our pixel centres are at ``(u + 0.5, v + 0.5)`` and OpenCV's at integers. DIS
flow at array index ``(v, u)`` is the flow of our pixel centre ``(u + 0.5, v + 0.5)``; image
points are handed to OpenCV in its convention (``- 0.5``) with intrinsics shifted to match
(``cx - 0.5``, ``cy - 0.5``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from geogrpo.camera.metrics import rot_err, trans_err
from geogrpo.camera.se3 import (
    camera_centers,
    check_intrinsics,
    check_pose,
    make_pose,
    rotation_angle,
    so3_exp,
)
from geogrpo.geometry.projection import unproject_depth
from geogrpo.geometry.registration import RegistrationOptions, make_dis, register_frame
from geogrpo.utils.checks import (
    check_finite,
    check_fraction,
    check_int_range,
    check_ndim,
    check_positive,
    check_same_shape,
    check_tensor,
)
from geogrpo.utils.video import to_uint8

# Tolerance on the [0, 1] range of input frames (decoders overshoot by rounding).
RANGE_TOL = 1e-3


def perturb_cameras(
    w2c: Tensor,  # [F, 4, 4]
    generator: torch.Generator,
    degrees: tuple[float, float] = (1.0, 3.0),
    distance: tuple[float, float] = (0.05, 0.2),
) -> Tensor:
    """Controlled camera errors: each frame turned by a random angle in ``degrees`` about a random
    axis and moved by a random ``distance`` in a random direction (left-multiplied, camera frame).

    The evaluator's accuracy is measured by rendering at these cameras and recovering them.
    """
    check_pose("w2c", w2c)
    f = w2c.shape[0]
    normal = torch.nn.functional.normalize
    axis = normal(torch.randn(f, 3, generator=generator, dtype=torch.float64), dim=-1)
    angle = torch.deg2rad(
        degrees[0]
        + (degrees[1] - degrees[0]) * torch.rand(f, generator=generator, dtype=torch.float64)
    )
    direction = normal(torch.randn(f, 3, generator=generator, dtype=torch.float64), dim=-1)
    length = distance[0] + (distance[1] - distance[0]) * torch.rand(
        f, generator=generator, dtype=torch.float64
    )
    delta = make_pose(so3_exp(axis * angle[:, None]), direction * length[:, None])
    return delta @ w2c.to(torch.float64)


@dataclass(frozen=True)
class CameraEvaluation:
    """Actual cameras of a clip and their errors against the requested ones (NaN = unmatched)."""

    actual_w2c: Tensor  # [F, 4, 4] float64, NaN for unmatched frames
    rotation_error_deg: Tensor  # [F] geodesic angle actual vs requested, NaN if unmatched
    translation_error: Tensor  # [F] camera-centre distance in scene units, NaN if unmatched
    inlier_ratio: Tensor  # [F] PnP inliers / candidate pixels (0 when PnP failed)
    matched: Tensor  # [F] bool
    rot_err: float  # metrics.rot_err over matched frames, radians (NaN if none matched)
    trans_err: float  # metrics.trans_err(metric) over matched frames, scene units
    num_unmatched: int

    def summary(self) -> dict[str, float]:
        """Clip numbers: median / p90 rotation error (degrees) and median translation error over
        the matched frames, matched fraction, unmatched count, clip sums (NaN if none matched)."""
        rot = self.rotation_error_deg[self.matched]
        trans = self.translation_error[self.matched]
        nan = float("nan")
        return {
            "median_rotation_error_deg": float(rot.median()) if rot.numel() else nan,
            "p90_rotation_error_deg": float(rot.quantile(0.9)) if rot.numel() else nan,
            "median_translation_error": float(trans.median()) if trans.numel() else nan,
            "matched_fraction": float(self.matched.double().mean()),
            "num_unmatched": float(self.num_unmatched),
            "rot_err_deg": math.degrees(self.rot_err),
            "trans_err": self.trans_err,
        }


def evaluate_cameras(
    frames: Tensor,  # [F, H, W, 3] in [0, 1]
    reference_frames: Tensor,  # [F, H, W, 3] ground-truth renders at the requested cameras
    reference_depth: Tensor,  # [F, H, W] metric z-depth; <= 0 or non-finite = no surface
    intrinsics: Tensor,  # [3, 3] or [F, 3, 3], our pixel convention
    requested_w2c: Tensor,  # [F, 4, 4]
    valid_mask: Tensor | None = None,  # [F, H, W] bool, False = ignore (sky, dynamic objects)
    *,
    min_inlier_ratio: float = 0.3,
    stride: int = 2,
    min_texture: float = 0.01,
    min_ncc: float = 0.5,
    consistency_check: bool = True,
    ransac_threshold_px: float = 1.0,
    ransac_iterations: int = 1000,
    seed: int = 0,
) -> CameraEvaluation:
    """Register every frame against the ground-truth render at its requested camera.

    See the module docstring for the method, every option, and the policy for unmatched frames.
    """
    f = _check_inputs(frames, reference_frames, reference_depth, requested_w2c, valid_mask)
    check_intrinsics("intrinsics", intrinsics)
    if intrinsics.shape not in ((3, 3), (f, 3, 3)):
        raise ValueError(
            f"intrinsics: expected shape [3, 3] or [{f}, 3, 3], got {tuple(intrinsics.shape)}"
        )
    check_fraction("min_inlier_ratio", min_inlier_ratio)
    check_int_range("stride", stride, 1)
    check_positive("min_texture", min_texture, allow_zero=True)
    if not -1 <= min_ncc <= 1:
        raise ValueError(f"min_ncc: expected a correlation in [-1, 1], got {min_ncc}")
    check_positive("ransac_threshold_px", ransac_threshold_px)
    check_int_range("ransac_iterations", ransac_iterations, 1)
    check_int_range("seed", seed, 0)

    # All torch work happens before and after the OpenCV loop: interleaving the two thread pools
    # on few cores makes every small torch op wait for spinning OpenCV workers.
    k_all = intrinsics.detach().to("cpu", torch.float64).expand(f, 3, 3)
    requested = requested_w2c.detach().to("cpu", torch.float64)
    depth = reference_depth.detach().to("cpu", torch.float64)
    surface = torch.isfinite(depth) & (depth > 0)
    if valid_mask is not None:
        surface &= valid_mask.cpu()
    # Camera-frame points of every pixel centre; depth 1 where there is no surface (unused).
    points = unproject_depth(torch.where(surface, depth, torch.ones_like(depth)), k_all)
    renders, videos = to_uint8(reference_frames), to_uint8(frames)  # [F, H, W, 3]
    dis = make_dis()
    options = RegistrationOptions(
        stride,
        min_texture,
        min_ncc,
        consistency_check,
        ransac_threshold_px,
        ransac_iterations,
        seed,
    )
    corrections = np.full((f, 4, 4), np.nan)  # requested camera -> actual camera
    ratio = np.zeros(f)
    for i in range(f):
        corrections[i], ratio[i] = register_frame(
            dis,
            cv2.cvtColor(renders[i], cv2.COLOR_RGB2GRAY),
            cv2.cvtColor(videos[i], cv2.COLOR_RGB2GRAY),
            surface[i].numpy(),
            points[i].numpy(),
            k_all[i].numpy(),
            options,
        )
    actual = torch.from_numpy(corrections) @ requested
    ratios = torch.from_numpy(ratio)
    matched = torch.isfinite(actual).all(dim=(-1, -2)) & (ratios >= min_inlier_ratio)
    actual[~matched] = float("nan")
    return _errors(actual, requested, ratios, matched)


def _check_inputs(
    frames: Tensor,
    reference_frames: Tensor,
    reference_depth: Tensor,
    requested_w2c: Tensor,
    valid_mask: Tensor | None,
) -> int:
    """Shapes, ranges and dtypes of the clip; returns the number of frames."""
    check_ndim("frames", frames, 4, "[F, H, W, 3]")
    f, h, w, c = frames.shape
    if c != 3 or f == 0 or h < 8 or w < 8:
        raise ValueError(
            f"frames: expected shape [F, H, W, 3] with F >= 1 and H, W >= 8, got "
            f"{tuple(frames.shape)}"
        )
    for name, video in (("frames", frames), ("reference_frames", reference_frames)):
        check_tensor(name, video)
        check_same_shape("frames", frames, name, video)
        check_finite(name, video)
        if not video.is_floating_point() or float(video.min()) < -RANGE_TOL:
            raise ValueError(f"{name}: expected floating-point colours in [0, 1]")
        if float(video.max()) > 1 + RANGE_TOL:
            raise ValueError(f"{name}: expected colours in [0, 1], got a maximum {video.max()}")
    check_ndim("reference_depth", reference_depth, 3, "[F, H, W]")
    if reference_depth.shape != (f, h, w):
        raise ValueError(
            f"reference_depth: expected shape {(f, h, w)}, got {tuple(reference_depth.shape)}"
        )
    if not reference_depth.is_floating_point():
        raise ValueError(f"reference_depth: expected floating point, got {reference_depth.dtype}")
    check_pose("requested_w2c", requested_w2c)
    if requested_w2c.shape != (f, 4, 4):
        raise ValueError(
            f"requested_w2c: expected shape {(f, 4, 4)}, got {tuple(requested_w2c.shape)}"
        )
    if valid_mask is not None:
        check_tensor("valid_mask", valid_mask)
        if valid_mask.dtype != torch.bool or valid_mask.shape != (f, h, w):
            raise ValueError(
                f"valid_mask: expected a bool tensor of shape {(f, h, w)}, got "
                f"{valid_mask.dtype} {tuple(valid_mask.shape)}"
            )
    return f


def _errors(actual: Tensor, requested: Tensor, ratio: Tensor, matched: Tensor) -> CameraEvaluation:
    """Per-frame and clip-level errors, NaN for unmatched frames (see the module docstring)."""
    f = actual.shape[0]
    rot_deg = torch.full((f,), float("nan"), dtype=torch.float64)
    trans = torch.full((f,), float("nan"), dtype=torch.float64)
    clip_rot = clip_trans = float("nan")
    if bool(matched.any()):
        act, req = actual[matched], requested[matched]
        rot_deg[matched] = torch.rad2deg(rotation_angle(act[:, :3, :3], req[:, :3, :3]))
        trans[matched] = (camera_centers(act) - camera_centers(req)).norm(dim=-1)
        clip_rot = float(rot_err(act, req))
        clip_trans = float(trans_err(act, req, normalization="metric"))
    return CameraEvaluation(
        actual_w2c=actual,
        rotation_error_deg=rot_deg,
        translation_error=trans,
        inlier_ratio=ratio,
        matched=matched,
        rot_err=clip_rot,
        trans_err=clip_trans,
        num_unmatched=int((~matched).sum()),
    )
