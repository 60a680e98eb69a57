"""Epipolar geometry: fundamental matrices, Sampson error, feature correspondences (OpenCV).

Convention: ``x2^T F x1 = 0`` for homogeneous pixels ``x1`` in view 1 and ``x2`` in view 2, in our
pixel convention (centre of pixel ``(u, v)`` at ``(u + 0.5, v + 0.5)``). OpenCV puts pixel
centres at integers; the conversion (+-0.5) happens inside the OpenCV wrappers here.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from geogrpo.camera.se3 import check_intrinsics, check_pose, invert_pose, skew
from geogrpo.utils.checks import check_choice, check_finite, check_positive


def fundamental_from_cameras(k1: Tensor, w2c1: Tensor, k2: Tensor, w2c2: Tensor) -> Tensor:
    """``F = K2^-T [t]x R K1^-1`` with ``(R, t)`` the pose of camera 2 relative to camera 1."""
    for name, k in (("k1", k1), ("k2", k2)):
        check_intrinsics(name, k)
    check_pose("w2c1", w2c1)
    check_pose("w2c2", w2c2)
    rel = w2c2 @ invert_pose(w2c1)
    r, t = rel[..., :3, :3], rel[..., :3, 3]
    if bool((t.norm(dim=-1) < 1e-12).any()):
        raise ValueError("w2c2: the two cameras share a centre; F is undefined (pure rotation)")
    e = skew(t) @ r
    f = torch.linalg.inv(k2).transpose(-1, -2) @ e @ torch.linalg.inv(k1)
    return f / f.flatten(-2).norm(dim=-1)[..., None, None]


def _check_matches(pts1: Tensor, pts2: Tensor) -> None:
    for name, p in (("pts1", pts1), ("pts2", pts2)):
        check_finite(name, p)
        if p.ndim < 2 or p.shape[-1] != 2:
            raise ValueError(
                f"{name}: expected pixel coordinates [..., N, 2], got {tuple(p.shape)}"
            )
    if pts1.shape != pts2.shape:
        raise ValueError(f"pts2: shape {tuple(pts2.shape)} does not match pts1 {tuple(pts1.shape)}")


def sampson_error(f: Tensor, pts1: Tensor, pts2: Tensor) -> Tensor:
    """First-order geometric distance to the epipolar constraint, in pixels ``[..., N]``.

    ``sqrt((x2^T F x1)^2 / ((F x1)_1^2 + (F x1)_2^2 + (F^T x2)_1^2 + (F^T x2)_2^2))`` (Hartley &
    Zisserman eq. 11.9, square-rooted so it reads in pixels); 0 for exact correspondences.
    """
    _check_matches(pts1, pts2)
    check_finite("f", f)
    if f.shape[-2:] != (3, 3):
        raise ValueError(f"f: expected shape [..., 3, 3], got {tuple(f.shape)}")
    ones = torch.ones_like(pts1[..., :1])
    x1, x2 = torch.cat([pts1, ones], dim=-1), torch.cat([pts2, ones], dim=-1)
    fx1 = x1 @ f.transpose(-1, -2)  # [..., N, 3]
    ftx2 = x2 @ f  # [..., N, 3]
    num = (x2 * fx1).sum(dim=-1).square()
    den = fx1[..., 0] ** 2 + fx1[..., 1] ** 2 + ftx2[..., 0] ** 2 + ftx2[..., 1] ** 2
    return torch.sqrt(num / den.clamp_min(1e-30))


def fundamental_from_correspondences(
    pts1: Tensor,
    pts2: Tensor,
    threshold_px: float = 1.0,
    confidence: float = 0.999,
    method: Literal["ransac", "magsac"] = "ransac",
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Robust ``F`` ``[3, 3]`` and inlier mask ``[N]`` from matches ``[N, 2]`` via OpenCV."""
    _check_matches(pts1, pts2)
    check_choice("method", method, ("ransac", "magsac"))
    check_positive("threshold_px", threshold_px)
    if pts1.ndim != 2 or pts1.shape[0] < 8:
        raise ValueError(f"pts1: need at least 8 matches [N, 2], got {tuple(pts1.shape)}")
    flag = cv2.FM_RANSAC if method == "ransac" else cv2.USAC_MAGSAC
    cv2.setRNGSeed(seed)
    p1 = pts1.detach().cpu().double().numpy() - 0.5
    p2 = pts2.detach().cpu().double().numpy() - 0.5
    f_cv, mask = cv2.findFundamentalMat(p1, p2, flag, threshold_px, confidence)
    if f_cv is None or f_cv.shape != (3, 3):
        raise ValueError("pts1: OpenCV found no fundamental matrix (degenerate or too few inliers)")
    # Undo the pixel-centre shift: x_cv = x - 0.5, so F_ours = S^T F_cv S with S = [[1,0,-.5],...].
    shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    f = torch.from_numpy(shift.T @ f_cv @ shift).to(pts1.dtype)
    return f / f.norm(), torch.from_numpy(mask.ravel().astype(bool))


def _to_gray_u8(image: Tensor) -> np.ndarray:
    check_finite("image", image)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            f"image: expected [H, W, 3] or [H, W, 1] in [0, 1], got {tuple(image.shape)}"
        )
    arr = (image.detach().cpu().float().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY) if arr.shape[-1] == 3 else arr[..., 0]


def match_features(
    image1: Tensor,
    image2: Tensor,
    method: Literal["sift", "orb"] = "sift",
    ratio: float = 0.75,
    max_features: int = 2000,
) -> tuple[Tensor, Tensor]:
    """Correspondences ``([N, 2], [N, 2])`` between two images ``[H, W, 3]`` in [0, 1].

    Keypoints from SIFT or ORB, mutual nearest neighbours by descriptor distance filtered with
    Lowe's ratio test; coordinates in our pixel convention, float64.
    """
    check_choice("method", method, ("sift", "orb"))
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio: Lowe's ratio must be in (0, 1], got {ratio}")
    g1, g2 = _to_gray_u8(image1), _to_gray_u8(image2)
    if method == "sift":
        detector, norm = cv2.SIFT_create(nfeatures=max_features), cv2.NORM_L2
    else:
        detector, norm = cv2.ORB_create(nfeatures=max_features), cv2.NORM_HAMMING
    kp1, d1 = detector.detectAndCompute(g1, None)
    kp2, d2 = detector.detectAndCompute(g2, None)
    empty = torch.zeros(0, 2, dtype=torch.float64)
    if d1 is None or d2 is None or len(kp1) < 2 or len(kp2) < 2:
        return empty, empty.clone()
    matcher = cv2.BFMatcher(norm)
    forward = matcher.knnMatch(d1, d2, k=2)
    backward = {m.queryIdx: m.trainIdx for m in matcher.match(d2, d1)}
    good = [
        p[0]
        for p in forward
        if len(p) == 2
        and p[0].distance < ratio * p[1].distance
        and backward.get(p[0].trainIdx) == p[0].queryIdx
    ]
    if not good:
        return empty, empty.clone()
    p1 = torch.tensor([kp1[m.queryIdx].pt for m in good], dtype=torch.float64) + 0.5
    p2 = torch.tensor([kp2[m.trainIdx].pt for m in good], dtype=torch.float64) + 0.5
    return p1, p2
