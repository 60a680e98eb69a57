"""Metrics of a generated video on its own: VBench-style quality proxies, epipolar (Sampson)
consistency, camera-path smoothness.

Independent of ``rewards`` (a reward change must not move these numbers); built on the pure
geometry of :mod:`geogrpo.geometry` and :mod:`geogrpo.camera`. Videos are ``[F, H, W, 3]`` or
``[B, F, H, W, 3]`` floats in [0, 1]; cameras are OpenCV world-to-camera ``w2c`` ``[F, 4, 4]``
with pixel intrinsics ``[3, 3]``; pixel centres at ``(u + 0.5, v + 0.5)``.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from geogrpo.camera.se3 import camera_centers, check_intrinsics, check_pose
from geogrpo.eval.metrics import check_video
from geogrpo.geometry.epipolar import (
    fundamental_from_cameras,
    fundamental_from_correspondences,
    match_features,
    sampson_error,
)
from geogrpo.rewards.geometry import smoothness_errors
from geogrpo.utils.checks import check_choice, check_int_range, check_positive

Matcher = Literal["sift", "flow"]
MATCHERS = ("sift", "flow")
Pairs = Literal["consecutive", "first", "all"]
PAIRS = ("consecutive", "first", "all")
FLOW_MIN_SIZE = 16  # OpenCV's DIS flow refuses smaller frames (its 8-pixel patches)


# --- VBench-style quality proxies --------------------------------------------------------------


def temporal_flicker(video: Tensor) -> Tensor:
    """VBench's "temporal flickering" ``[B]`` float64 of videos ``[B, F, H, W, 3]`` (F >= 2).

    ``(255 - MAE) / 255`` with MAE the mean absolute difference of consecutive frames over every
    pixel, channel and pair on a 0-255 scale (VBench, Huang et al. 2024): 1 for a frozen video,
    0 for frames alternating black and white; higher = steadier. VBench differences uint8
    frames; here the [0, 1] floats are used as they are.
    """
    check_video("video", video, "[B, F, H, W, 3]")
    if video.shape[1] < 2:
        raise ValueError(f"video: flicker needs at least 2 frames, got {video.shape[1]}")
    v = video.detach().double() * 255
    mae = (v[:, 1:] - v[:, :-1]).abs().flatten(1).mean(1)  # [B]
    return (255 - mae) / 255


def motion_smoothness(
    video: Tensor, interpolation: Literal["flow", "blend"] = "flow"
) -> Tensor:  # [B] float64
    """VBench's "motion smoothness" ``[B]`` float64 of videos ``[B, F, H, W, 3]`` (F >= 3).

    VBench drops the odd frames, re-creates them from their even neighbours with the AMT
    interpolation network, and reports ``(255 - MAE) / 255`` of the re-created against the real
    odd frames (0-255 scale; VBench, Huang et al. 2024). Without downloaded weights the
    midpoint is interpolated here from OpenCV DIS optical flow (``"flow"``: both neighbours warped
    half-way along the symmetric flow and averaged) or by ``"blend"`` (their mean, exact for a
    linear fade but it ghosts any motion, which the flow version does not). An odd frame without
    a right neighbour (F even) is not scored, as in VBench. Higher = smoother.
    """
    check_video("video", video, "[B, F, H, W, 3]")
    check_choice("interpolation", interpolation, ("flow", "blend"))
    frames, height, width = video.shape[1:4]
    if frames < 3:
        raise ValueError(f"video: motion smoothness needs at least 3 frames, got {frames}")
    if interpolation == "flow" and min(height, width) < FLOW_MIN_SIZE:
        raise ValueError(
            f"video: frames of {height}x{width} are too small for DIS flow (at least "
            f"{FLOW_MIN_SIZE}x{FLOW_MIN_SIZE}); upsample them or use interpolation='blend'"
        )
    v = video.detach().float().cpu().numpy()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    scores = []
    for clip in v:
        errors = []
        for f in range(1, frames - 1, 2):
            before, after = clip[f - 1], clip[f + 1]
            if interpolation == "flow":
                middle = _flow_midpoint(before, after, dis)
            else:
                middle = 0.5 * (before + after)
            errors.append(np.abs(middle.astype(np.float64) - clip[f]).mean())
        scores.append(1.0 - float(np.mean(errors)))  # (255 - 255 MAE) / 255
    return torch.tensor(scores, dtype=torch.float64)


def _flow_midpoint(before: np.ndarray, after: np.ndarray, dis: cv2.DISOpticalFlow) -> np.ndarray:
    """The frame half-way between two ``[H, W, 3]`` frames: the forward flow and the negated
    backward flow averaged, taken as the motion through each pixel of the middle frame."""
    g0, g1 = _gray_u8(before), _gray_u8(after)
    flow = 0.5 * (dis.calc(g0, g1, None) - dis.calc(g1, g0, None))  # [H, W, 2], before -> after
    rows, cols = np.mgrid[0 : before.shape[0], 0 : before.shape[1]].astype(np.float32)
    dx, dy = 0.5 * flow[..., 0], 0.5 * flow[..., 1]
    border = cv2.BORDER_REPLICATE
    from_before = cv2.remap(before, cols - dx, rows - dy, cv2.INTER_LINEAR, borderMode=border)
    from_after = cv2.remap(after, cols + dx, rows + dy, cv2.INTER_LINEAR, borderMode=border)
    return 0.5 * (from_before + from_after)


def _gray_u8(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)


# --- epipolar consistency (Sampson error) ------------------------------------------------------


def frame_pairs(num_frames: int, pairs: Pairs = "consecutive") -> list[tuple[int, int]]:
    """Frame pairs ``(i, j)``, ``i < j``: ``"consecutive"`` ``(f, f + 1)``, ``"first"``
    ``(0, f)``, ``"all"`` every pair."""
    check_choice("pairs", pairs, PAIRS)
    check_int_range("num_frames", num_frames, 2)
    if pairs == "consecutive":
        return [(f, f + 1) for f in range(num_frames - 1)]
    if pairs == "first":
        return [(0, f) for f in range(1, num_frames)]
    return [(i, j) for i in range(num_frames) for j in range(i + 1, num_frames)]


def correspondences(a: Tensor, b: Tensor, matcher: Matcher = "sift") -> tuple[Tensor, Tensor]:
    """Matched pixels ``([N, 2], [N, 2])`` (our pixel convention) of frames ``[H, W, 3]``: SIFT
    keypoints (:func:`match_features`) or forward-backward checked DIS flow on a 2-pixel grid
    (:func:`geogrpo.geometry.registration.flow_correspondences`)."""
    check_choice("matcher", matcher, MATCHERS)
    if matcher == "sift":
        return match_features(a, b)
    from geogrpo.geometry.registration import flow_correspondences
    from geogrpo.utils.video import to_uint8

    gray = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in to_uint8(torch.stack([a, b]))]
    pa, pb = flow_correspondences(gray[0], gray[1])
    # OpenCV's pixel centres are integers, ours half-integers (geogrpo.camera)
    return torch.from_numpy(pa) + 0.5, torch.from_numpy(pb) + 0.5


def sampson_epipolar_error(
    video: Tensor,  # [F, H, W, 3]
    pairs: Pairs = "consecutive",
    min_matches: int = 12,
    threshold_px: float = 1.0,
    matcher: Matcher = "sift",
) -> float:
    """Epipolar error of a clip in pixels, as VGGRPO reports it (sec. 4, "Sampson epipolar
    error", following Epipolar-DPO, Kupyn et al. 2025); lower = more consistent.

    For each frame pair of ``pairs`` (see :func:`frame_pairs`): SIFT correspondences
    (:func:`match_features`), a RANSAC fundamental matrix fitted to them (``threshold_px``), and
    the **mean Sampson distance over all correspondences**, inliers and outliers alike (a public
    Epipolar-DPO evaluator fits F to every match by the 8-point algorithm and averages every
    match too; RANSAC keeps a few mismatches from bending F, while an inlier-only mean would be
    capped by the threshold and a median would hide a minority that moves inconsistently). The
    clip's error is the mean of these per-pair means over the pairs with at least
    ``min_matches`` matches (eight determine F exactly, so a residual needs a margin above that)
    and a fitted F; NaN when no pair qualifies. Epipolar-DPO compares every 15th frame: pass
    ``video[::k]``. ``matcher="flow"`` takes dense DIS-flow correspondences instead of SIFT
    (:func:`correspondences`): 96-pixel generated frames give SIFT 2-6 matches a pair.
    Static scenes only: object motion violates the epipolar constraint by design.
    """
    _check_clip(video)
    check_int_range("min_matches", min_matches, 9)
    check_positive("threshold_px", threshold_px)
    errors = []
    for i, j in frame_pairs(video.shape[0], pairs):
        pts_i, pts_j = correspondences(video[i], video[j], matcher)
        if len(pts_i) < min_matches:
            continue
        try:
            f, _ = fundamental_from_correspondences(pts_i, pts_j, threshold_px)
        except ValueError:  # OpenCV found no F (degenerate matches): the pair is not scored
            continue
        errors.append(float(sampson_error(f, pts_i, pts_j).mean()))
    return float(np.mean(errors)) if errors else math.nan


def sampson_error_true_cameras(
    video: Tensor,  # [F, H, W, 3]
    w2c: Tensor,  # [F, 4, 4], the cameras the video was asked to follow
    intrinsics: Tensor,  # [3, 3]
    pairs: Pairs = "consecutive",
    min_matches: int = 8,
    matcher: Matcher = "sift",
) -> float:
    """Epipolar error of a clip against the true cameras, in pixels; lower = more consistent.

    The correspondences of :func:`sampson_epipolar_error`, scored against ``F`` of the given
    cameras (:func:`fundamental_from_cameras`) instead of one fitted to them: a video that is
    self-consistent but does not follow the cameras (or is frozen while they rotate) scores
    badly, where the fitted error would be small. The mean Sampson distance over all matches of
    each pair, then the mean over the pairs with at least ``min_matches`` matches whose cameras
    have distinct centres (F is undefined for a pure rotation); NaN when no pair qualifies.
    A frozen video still scores 0 under a pure translation (every point looks like one at
    infinity), and near 0 when the camera orbits the point it looks at (content at the pivot's
    depth stays put): read it beside the camera-following metrics.
    """
    _check_clip(video)
    _check_cameras(w2c, intrinsics, video.shape[0])
    check_int_range("min_matches", min_matches, 1)
    k = intrinsics.double()
    centers = camera_centers(w2c.double())  # [F, 3]
    errors = []
    for i, j in frame_pairs(video.shape[0], pairs):
        if float((centers[j] - centers[i]).norm()) < 1e-9:
            continue
        pts_i, pts_j = correspondences(video[i], video[j], matcher)
        if len(pts_i) < min_matches:
            continue
        f = fundamental_from_cameras(k, w2c[i].double(), k, w2c[j].double())
        errors.append(float(sampson_error(f, pts_i, pts_j).mean()))
    return float(np.mean(errors)) if errors else math.nan


def sampson_epipolar_error_per_sample(
    video: Tensor,  # [B, F, H, W, 3]
    pairs: Pairs = "consecutive",
    min_matches: int = 12,
    threshold_px: float = 1.0,
) -> Tensor:  # [B] float64
    """:func:`sampson_epipolar_error` of each clip."""
    check_video("video", video, "[B, F, H, W, 3]")
    return torch.tensor(
        [sampson_epipolar_error(v, pairs, min_matches, threshold_px) for v in video],
        dtype=torch.float64,
    )


def sampson_error_true_cameras_per_sample(
    video: Tensor,  # [B, F, H, W, 3]
    w2c: Tensor,  # [B, F, 4, 4]
    intrinsics: Tensor,  # [3, 3] or [B, 3, 3]
    pairs: Pairs = "consecutive",
    min_matches: int = 8,
) -> Tensor:  # [B] float64
    """:func:`sampson_error_true_cameras` of each clip."""
    check_video("video", video, "[B, F, H, W, 3]")
    batch = video.shape[0]
    check_pose("w2c", w2c)
    if w2c.shape[:2] != video.shape[:2] or w2c.ndim != 4:
        raise ValueError(
            f"w2c: expected shape [B, F, 4, 4] = {(*video.shape[:2], 4, 4)}, one camera per "
            f"frame, got {tuple(w2c.shape)}"
        )
    check_intrinsics("intrinsics", intrinsics)
    k = intrinsics.expand(batch, 3, 3) if intrinsics.ndim == 2 else intrinsics
    if k.shape != (batch, 3, 3):
        raise ValueError(f"intrinsics: expected [3, 3] or [{batch}, 3, 3], got {tuple(k.shape)}")
    return torch.tensor(
        [
            sampson_error_true_cameras(v, c, kk, pairs, min_matches)
            for v, c, kk in zip(video, w2c, k, strict=True)
        ],
        dtype=torch.float64,
    )


def _check_clip(video: Tensor) -> None:
    check_video("video", video, "[F, H, W, 3]")
    if video.shape[0] < 2:
        raise ValueError(f"video: an epipolar error needs at least 2 frames, got {video.shape[0]}")


def _check_cameras(w2c: Tensor, intrinsics: Tensor, frames: int) -> None:
    check_pose("w2c", w2c)
    if w2c.shape != (frames, 4, 4):
        raise ValueError(
            f"w2c: expected one camera per frame, shape {(frames, 4, 4)}, got {tuple(w2c.shape)}"
        )
    check_intrinsics("intrinsics", intrinsics)
    if intrinsics.shape != (3, 3):
        raise ValueError(f"intrinsics: expected shape [3, 3], got {tuple(intrinsics.shape)}")


# --- camera-path smoothness --------------------------------------------------------------------


def camera_path_smoothness_parts(
    w2c: Tensor,  # [F, 4, 4], F >= 3
    eps_translation: float = 1e-2,
    eps_rotation: float = math.radians(0.1),
) -> tuple[float, float]:
    """VGGRPO's scale-normalised accelerations ``(e_trans, e_rot)`` of a camera path (eqs. 11-12).

    ``e_trans = mean_t |a_t| / (mean_t |v_t| + eps_translation)`` with ``v_t = c_{t+1} - c_t``
    and ``a_t = v_{t+1} - v_t`` of the camera centres; ``e_rot`` the same with the angular
    velocities ``omega_t = log(R_{t+1} R_t^T)`` (rotation vectors, radians; ``R`` the
    world-to-camera rotations) and ``alpha_t = omega_{t+1} - omega_t``. 0 for constant-velocity
    motion; dividing by the mean speed makes a slow and a fast path equally smooth. The floors
    (world units and radians per frame) keep a nearly static camera from dividing by zero.
    """
    check_pose("w2c", w2c)
    if w2c.ndim != 3 or w2c.shape[0] < 3:
        raise ValueError(
            f"w2c: expected a path [F, 4, 4] of at least 3 cameras, got {tuple(w2c.shape)}"
        )
    check_positive("eps_translation", eps_translation)
    check_positive("eps_rotation", eps_rotation)
    # the same definition the smoothness reward trains on: one copy of VGGRPO's equations
    e_trans, e_rot = smoothness_errors(w2c.double(), eps_translation, eps_rotation)
    return float(e_trans), float(e_rot)


def camera_path_smoothness(
    w2c: Tensor,  # [F, 4, 4], F >= 3
    eps_translation: float = 1e-2,
    eps_rotation: float = math.radians(0.1),
) -> float:
    """Jitter of a camera path, ``(e_trans + e_rot) / 2`` of :func:`camera_path_smoothness_parts`
    (VGGRPO eqs. 11-12; its reward, eq. 13, maps each part into (0, 1] instead); 0 for
    constant-velocity motion, lower = smoother."""
    e_trans, e_rot = camera_path_smoothness_parts(w2c, eps_translation, eps_rotation)
    return 0.5 * (e_trans + e_rot)
