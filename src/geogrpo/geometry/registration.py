"""Register one image against a reference image whose 3D points are known: dense flow, checks,
PnP. Shared by the world's ground-truth evaluator (reference = the true render with true depth,
:mod:`geogrpo.world.evaluator`) and the flow-based estimator (reference = another frame of the
same clip with estimated depth, :mod:`geogrpo.perception.flow_pnp`).

One registration (:func:`register_frame`; the module docstring of the evaluator explains every
step and default in detail):

1. **Flow**: OpenCV DIS (:func:`make_dis`: ``PRESET_MEDIUM`` with the finest scale set to 0, full
   resolution) on grayscale uint8, reference -> frame, and frame -> reference for step 4.
2. **Candidates**: reference pixels on a grid of ``stride`` pixels where ``surface`` is true and
   the reference is textured (local standard deviation over 7x7 >= ``min_texture``, intensities
   in [0, 1]).
3. **Photometric check**: the frame pulled back through the flow must correlate with the
   reference, local zero-mean NCC over 7x7 >= ``min_ncc`` (rejects flow that matched nothing,
   e.g. on a blank frame where DIS returns zero flow).
4. **Forward-backward consistency** (Sundaram et al. 2010): ``|f + b|^2 < 0.01 (|f|^2 + |b|^2) +
   0.5`` px^2; targets outside the frame are dropped.
5. **PnP**: ``cv2.solvePnPRansac`` (EPnP, ``cv2.setRNGSeed(seed)`` first), then
   ``cv2.solvePnPRefineLM`` on the inliers; inliers recounted under the refined pose. Or, with
   ``solver="guided"`` (a reward's cheaper choice, never the evaluator's), no RANSAC:
   :func:`solve_pnp_guided` refines a guessed pose by LM on ever tighter inlier sets.
6. **Inlier ratio** = inliers / candidates of step 2.

The returned pose maps the reference camera's frame (the frame of ``points``) to the registered
frame's camera: ``w2c_frame = pose @ w2c_reference``.

Pixel conventions: our pixel centres are at ``(u + 0.5, v + 0.5)`` and OpenCV's at integers. DIS
flow at array index ``(v, u)`` is the flow of our pixel centre ``(u + 0.5, v + 0.5)``; image
points are handed to OpenCV in its convention (``- 0.5``) with intrinsics shifted to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

# DIS preset and the one setting we change (see the evaluator's module docstring).
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
DIS_FINEST_SCALE = 0
# Forward-backward consistency (Sundaram et al. 2010): |f + b|^2 < A (|f|^2 + |b|^2) + B, px^2.
FB_RELATIVE = 0.01
FB_ABSOLUTE_PX2 = 0.5
RANSAC_CONFIDENCE = 0.999
# PnP needs a handful of points; fewer consistent ones (or RANSAC inliers) is a failed frame.
MIN_CORRESPONDENCES = 12
# Window of the local statistics (texture and NCC), pixels, and the NCC's variance floor.
PATCH = 7
NCC_EPS = 1e-12
# solver="guided": LM on the matches whose reprojection error under the current pose is below
# these multiples of the threshold, in turn (inf: all of them, to pull in a rough guess).
GUIDED_SCHEDULE = (np.inf, 4.0, 1.0)
Solver = Literal["ransac", "guided"]
SOLVERS = ("ransac", "guided")


@dataclass(frozen=True)
class RegistrationOptions:
    """The per-frame settings of :func:`register_frame` (the evaluator's defaults)."""

    stride: int = 2
    min_texture: float = 0.01
    min_ncc: float = 0.5
    consistency_check: bool = True
    ransac_threshold_px: float = 1.0
    ransac_iterations: int = 1000
    seed: int = 0
    solver: Solver = "ransac"


def make_dis() -> cv2.DISOpticalFlow:
    """The DIS flow object every registration uses (medium preset, full-resolution finest
    scale)."""
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    dis.setFinestScale(DIS_FINEST_SCALE)
    return dis


def register_frame(
    dis: cv2.DISOpticalFlow,
    reference: np.ndarray,  # [H, W] uint8 gray
    frame: np.ndarray,  # [H, W] uint8 gray
    surface: np.ndarray,  # [H, W] bool, the reference has a usable 3D point there
    points: np.ndarray,  # [H, W, 3] reference pixel centres in the reference camera's frame
    k: np.ndarray,  # [3, 3] our pixel convention
    options: RegistrationOptions,
    guess: np.ndarray | None = None,  # [4, 4] a guessed pose, needed by solver="guided"
) -> tuple[np.ndarray, float]:
    """Pose ``[4, 4]`` of ``frame`` relative to the reference camera (NaN when PnP fails) and the
    inlier ratio (0 when it fails)."""
    opt = options
    if opt.solver == "guided" and guess is None:
        raise ValueError("guess: solver='guided' refines a guessed pose; pass one")
    failed = np.full((4, 4), np.nan), 0.0
    h, w = reference.shape
    mean_r, var_r = _local_stats(reference)
    grid_v, grid_u = (np.arange(opt.stride // 2, n, opt.stride) for n in (h, w))
    textured = (surface & (var_r >= opt.min_texture**2))[np.ix_(grid_v, grid_u)]
    rows, cols = np.nonzero(textured)
    rows, cols = grid_v[rows], grid_u[cols]
    if rows.size == 0:
        return failed
    forward = dis.calc(reference, frame, None)  # [H, W, 2]
    target = np.stack([cols, rows], axis=-1) + forward[rows, cols].astype(np.float64)  # OpenCV px
    # Inside the frame: OpenCV pixel coordinates span [-0.5, size - 0.5].
    keep = (target >= -0.5).all(axis=-1) & (target < np.array([w, h]) - 0.5).all(axis=-1)
    keep &= _ncc(reference, mean_r, var_r, _warp(frame, forward))[rows, cols] >= opt.min_ncc
    if opt.consistency_check:
        backward = dis.calc(frame, reference, None)  # [H, W, 2]
        keep &= _consistent(forward[rows, cols], backward, target)
    if opt.solver == "guided":
        assert guess is not None
        pose, inliers = solve_pnp_guided(
            points[rows[keep], cols[keep]], target[keep], k, guess, opt.ransac_threshold_px
        )
    else:
        pose, inliers = solve_pnp(
            points[rows[keep], cols[keep]],
            target[keep],
            k,
            opt.ransac_threshold_px,
            opt.ransac_iterations,
            opt.seed,
        )
    return failed if pose is None else (pose, inliers / rows.size)


def _local_stats(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local mean and variance ``[H, W]`` over ``PATCH``-square windows, intensity in [0, 1]."""
    g = gray.astype(np.float64) / 255.0
    mean = cv2.blur(g, (PATCH, PATCH), borderType=cv2.BORDER_REFLECT)
    var = cv2.blur(g * g, (PATCH, PATCH), borderType=cv2.BORDER_REFLECT) - mean * mean
    return mean, np.maximum(var, 0.0)


def _warp(gray: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``gray`` sampled at ``p + flow(p)`` (bilinear): the frame pulled back onto the reference."""
    h, w = gray.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        gray, u + flow[..., 0], v + flow[..., 1], cv2.INTER_LINEAR, None, cv2.BORDER_REPLICATE
    )


def _ncc(
    reference: np.ndarray, mean_r: np.ndarray, var_r: np.ndarray, warped: np.ndarray
) -> np.ndarray:
    """Local zero-mean normalised cross-correlation ``[H, W]`` of the reference and warped frame.

    Invariant to gain and offset (generated frames drift in exposure); 0 where the warped frame
    is flat, so a blank frame, on which DIS returns zero flow, cannot pass as a perfect match.
    """
    r = reference.astype(np.float64) / 255.0
    mean_w, var_w = _local_stats(warped)
    cov = (
        cv2.blur(
            r * (warped.astype(np.float64) / 255.0), (PATCH, PATCH), borderType=cv2.BORDER_REFLECT
        )
        - mean_r * mean_w
    )
    return cov / np.sqrt(var_r * var_w + NCC_EPS)


def _consistent(forward: np.ndarray, backward: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Forward-backward check ``[N]`` for forward flows ``[N, 2]`` landing at ``target [N, 2]``."""
    # Bilinear lookup of the backward flow at the (OpenCV-convention) target positions.
    back = cv2.remap(
        backward,
        target[:, :1].astype(np.float32),
        target[:, 1:].astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )[:, 0]  # [N, 2]
    err = np.square(forward + back).sum(-1)
    scale = np.square(forward).sum(-1) + np.square(back).sum(-1)
    return err < FB_RELATIVE * scale + FB_ABSOLUTE_PX2


def solve_pnp(
    points: np.ndarray,  # [N, 3] in the reference camera's frame
    pixels: np.ndarray,  # [N, 2] OpenCV convention
    k: np.ndarray,  # [3, 3] our convention
    threshold: float,
    iterations: int,
    seed: int,
) -> tuple[np.ndarray | None, int]:
    """RANSAC PnP + LM refinement -> (4x4 pose or None, inliers under the refined pose)."""
    if len(points) < MIN_CORRESPONDENCES:
        return None, 0
    k_cv = k.copy()
    k_cv[:2, 2] -= 0.5  # principal point in OpenCV's pixel convention
    cv2.setRNGSeed(seed)
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(
        points,
        pixels,
        k_cv,
        None,
        iterationsCount=iterations,
        reprojectionError=threshold,
        confidence=RANSAC_CONFIDENCE,
        flags=cv2.SOLVEPNP_EPNP,
    )
    if not ok or inliers is None or len(inliers) < MIN_CORRESPONDENCES:
        return None, 0
    idx = inliers[:, 0]
    rvec, tvec = cv2.solvePnPRefineLM(points[idx], pixels[idx], k_cv, None, rvec, tvec)
    return _pose(rvec, tvec), int((_residuals(points, pixels, k_cv, rvec, tvec) < threshold).sum())


def solve_pnp_guided(
    points: np.ndarray,  # [N, 3] in the reference camera's frame
    pixels: np.ndarray,  # [N, 2] OpenCV convention
    k: np.ndarray,  # [3, 3] our convention
    guess: np.ndarray,  # [4, 4] guessed pose
    threshold: float,
) -> tuple[np.ndarray | None, int]:
    """LM from a guessed pose, trimmed to ``GUIDED_SCHEDULE`` x ``threshold`` in turn -> (4x4
    pose or None, inliers under it).

    Why: RANSAC's random hypotheses make the pose, and so a reward built on it, jump between
    near-identical clips; inside a GRPO group that jitter is larger than the true differences.
    Between neighbouring video frames a guess from the previous frames is close, so LM alone
    converges, deterministically and smoothly in the matches, for a fraction of RANSAC's cost.
    """
    if len(points) < MIN_CORRESPONDENCES:
        return None, 0
    k_cv = k.copy()
    k_cv[:2, 2] -= 0.5  # principal point in OpenCV's pixel convention
    rvec, _ = cv2.Rodrigues(guess[:3, :3])
    tvec = guess[:3, 3:].copy()
    for factor in GUIDED_SCHEDULE:
        keep = _residuals(points, pixels, k_cv, rvec, tvec) < factor * threshold
        if keep.sum() < MIN_CORRESPONDENCES:
            return None, 0
        rvec, tvec = cv2.solvePnPRefineLM(points[keep], pixels[keep], k_cv, None, rvec, tvec)
    return _pose(rvec, tvec), int((_residuals(points, pixels, k_cv, rvec, tvec) < threshold).sum())


def _residuals(
    points: np.ndarray, pixels: np.ndarray, k_cv: np.ndarray, rvec: np.ndarray, tvec: np.ndarray
) -> np.ndarray:
    """Reprojection errors ``[N]`` in pixels under the pose ``(rvec, tvec)``."""
    projected, _ = cv2.projectPoints(points, rvec, tvec, k_cv, None)
    return np.linalg.norm(projected[:, 0] - pixels, axis=-1)


def _pose(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3], _ = cv2.Rodrigues(rvec)
    pose[:3, 3] = tvec.reshape(3)
    return pose


def flow_correspondences(
    gray_a: np.ndarray,  # [H, W] uint8
    gray_b: np.ndarray,  # [H, W] uint8
    stride: int = 2,
    min_texture: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense correspondences ``([N, 2], [N, 2])`` (OpenCV pixel convention, float64) from DIS
    flow a -> b on a grid of ``stride`` pixels: textured pixels of ``a`` (local standard
    deviation >= ``min_texture``) whose flow passes the forward-backward check and lands inside
    ``b``. Small, soft frames give SIFT a handful of keypoints; flow gives hundreds."""
    dis = make_dis()
    forward = dis.calc(gray_a, gray_b, None)
    backward = dis.calc(gray_b, gray_a, None)
    h, w = gray_a.shape
    _, var = _local_stats(gray_a)
    v, u = np.mgrid[0:h:stride, 0:w:stride]
    keep = var[v, u] >= min_texture**2
    source = np.stack([u[keep], v[keep]], axis=-1).astype(np.float64)  # [N, 2] (x, y)
    flow = forward[v[keep], u[keep]].astype(np.float64)
    target = source + flow
    inside = (target[:, 0] >= 0) & (target[:, 0] <= w - 1) & (target[:, 1] >= 0)
    inside &= target[:, 1] <= h - 1
    good = inside & _consistent(flow.astype(np.float32), backward, target)
    return source[good], target[good]
