"""Training-free geometry from OpenCV correspondences, for footage without ground truth.

Per clip, with known intrinsics (the world's 60 degree field of view when none are given):

1. Dense DIS optical flow from frame 0 to every frame, kept where forward-backward consistent
   (the ground-truth evaluator's check), sampled on a 2-pixel grid where the frame is textured
   (local std >= 0.01; DIS returns zero flow on a blank frame, which would look consistent).
2. Every frame's pose relative to frame 0 from its own essential matrix (``cv2.findEssentialMat``
   with RANSAC, ``cv2.recoverPose``): rotations are not chained, so they do not drift. A frame
   whose rotation-compensated parallax is under ``min_parallax_px`` is treated as a pure
   rotation (its essential matrix is degenerate): rotation from the homography, no translation.
3. Scale: the frame with the most parallax is the reference; its triangulated frame-0 depths are
   normalised to median 1, and every other frame's unit translation is scaled so that its own
   triangulation of the same points agrees (median ratio). Output is **up to scale**.
4. Depth of frame ``i``: frame 0's reference points moved into frame ``i`` and splatted at their
   tracked pixels; confidence 1 there, 0 elsewhere (sparse).

A sample fails (``valid = False`` with a reason) when a frame keeps fewer than ``min_matches``
consistent correspondences. Accuracy is reported honestly in ``bench/RESULTS.md``: at 96 px it is
noisy; prefer the world's ground-truth-anchored evaluator wherever ground truth exists.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from geogrpo.camera.se3 import intrinsics_from_fov
from geogrpo.perception.base import GeometryEstimate, check_video, sanitize_video

WORLD_FOV_DEG = 60.0


def _gray(frame: Tensor) -> np.ndarray:
    rgb = (frame.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _consistent_tracks(
    dis: cv2.DISOpticalFlow, g0: np.ndarray, gi: np.ndarray, stride: int, min_texture: float
) -> tuple[np.ndarray, np.ndarray]:
    """Grid points of frame 0 and where they are in frame i (OpenCV pixel convention)."""
    fwd = dis.calc(g0, gi, None)
    bwd = dis.calc(gi, g0, None)
    h, w = g0.shape
    v, u = np.mgrid[0:h:stride, 0:w:stride].astype(np.float32)
    f = fwd[v.astype(int), u.astype(int)]
    tu, tv = u + f[..., 0], v + f[..., 1]
    inside = (tu >= 0) & (tu <= w - 1) & (tv >= 0) & (tv <= h - 1)
    b = cv2.remap(bwd, tu, tv, cv2.INTER_LINEAR)
    err = np.square(f + b).sum(-1)
    ok = inside & (err < 0.01 * (np.square(f).sum(-1) + np.square(b).sum(-1)) + 0.5)
    g = g0.astype(np.float32) / 255
    mean = cv2.blur(g, (7, 7))
    texture = np.sqrt(np.maximum(cv2.blur(g * g, (7, 7)) - mean * mean, 0))
    ok &= texture[v.astype(int), u.astype(int)] >= min_texture  # flat regions track nothing
    p0 = np.stack([u[ok], v[ok]], -1)
    pi = np.stack([tu[ok], tv[ok]], -1)
    return p0.astype(np.float64), pi.astype(np.float64)


def _triangulate_depth(k: np.ndarray, r: np.ndarray, t: np.ndarray, p0, pi) -> np.ndarray:
    """Frame-0 z-depths of tracks for the pose (r, t) of frame i (w2c relative to frame 0)."""
    p_0 = k @ np.hstack([np.eye(3), np.zeros((3, 1))])
    p_i = k @ np.hstack([r, t.reshape(3, 1)])
    x = cv2.triangulatePoints(p_0, p_i, p0.T, pi.T)
    return x[2] / x[3]


class ClassicalEstimator:
    """:class:`~geogrpo.perception.base.GeometryEstimator` from flow + essential matrices."""

    name = "classical"
    scale = "up_to_scale"

    def __init__(
        self,
        stride: int = 2,
        min_matches: int = 30,
        min_parallax_px: float = 1.0,
        ransac_threshold_px: float = 1.0,
        min_texture: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.min_texture = min_texture
        self.stride, self.min_matches = stride, min_matches
        self.min_parallax_px, self.threshold, self.seed = (
            min_parallax_px,
            ransac_threshold_px,
            seed,
        )

    def estimate(self, video: Tensor, intrinsics: Tensor | None = None) -> GeometryEstimate:
        check_video("video", video, min_frames=2)
        clean, reasons = sanitize_video(video.float())
        b, f, h, w, _ = clean.shape
        k_all = (
            intrinsics_from_fov(WORLD_FOV_DEG, h, w).expand(b, 3, 3)
            if intrinsics is None
            else intrinsics.double()
        )
        w2c = torch.eye(4, dtype=torch.float64).repeat(b, f, 1, 1)
        depth = torch.zeros(b, f, h, w)
        conf = torch.zeros(b, f, h, w)
        valid = torch.tensor([not r for r in reasons])
        for i in range(b):
            if not valid[i]:
                continue
            try:
                poses, d, c = self._clip(clean[i], k_all[i].numpy())
            except _Failure as err:
                valid[i], reasons[i] = False, str(err)
                continue
            w2c[i], depth[i], conf[i] = poses, d, c
        k = k_all[:, None].expand(b, f, 3, 3).clone()
        est = GeometryEstimate(w2c, k, depth, conf, "up_to_scale", valid, reasons)
        for i in range(b):
            if not valid[i]:
                est.invalidate(i, reasons[i])
        return est

    def _clip(self, clip: Tensor, k: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        cv2.setRNGSeed(self.seed)
        f, h, w, _ = clip.shape
        # OpenCV pixel centres are integers, ours are at +0.5
        k_cv = k.copy()
        k_cv[0, 2] -= 0.5
        k_cv[1, 2] -= 0.5
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
        grays = [_gray(frame) for frame in clip]
        tracks, poses, parallax = [None], [(np.eye(3), np.zeros(3))], [0.0]
        k_inv = np.linalg.inv(k_cv)
        for j in range(1, f):
            p0, pj = _consistent_tracks(dis, grays[0], grays[j], self.stride, self.min_texture)
            if len(p0) < self.min_matches:
                raise _Failure(f"frame {j}: only {len(p0)} consistent correspondences")
            hmat, _ = cv2.findHomography(p0, pj, cv2.RANSAC, self.threshold)
            r_h = np.eye(3) if hmat is None else _rotation_from_homography(hmat, k_cv, k_inv)
            rotated = _apply_homography(k_cv @ r_h @ k_inv, p0)
            par = float(np.median(np.linalg.norm(rotated - pj, axis=1)))
            r, t = r_h, np.zeros(3)
            if par >= self.min_parallax_px:
                e, mask = cv2.findEssentialMat(p0, pj, k_cv, cv2.RANSAC, 0.999, self.threshold)
                if e is not None and e.shape == (3, 3):
                    _, r, t, _ = cv2.recoverPose(e, p0, pj, k_cv, mask=mask)
                    t = t.reshape(3)
                else:
                    par = 0.0
            tracks.append((p0, pj))
            poses.append((r, t))
            parallax.append(par)
        ref = int(np.argmax(parallax))
        rotations = torch.tensor(np.stack([p[0] for p in poses]))
        translations = torch.tensor(np.stack([p[1] for p in poses]), dtype=torch.float64)
        depth = torch.zeros(f, h, w)
        conf = torch.zeros(f, h, w)
        if parallax[ref] >= self.min_parallax_px:
            p0_ref, pr = tracks[ref]
            z_ref = _triangulate_depth(k_cv, *poses[ref], p0_ref, pr)
            good = z_ref > 0
            unit = float(np.median(z_ref[good])) if good.any() else 1.0
            translations[ref] /= unit
            z_ref = z_ref / unit
            lookup = {tuple(p): z for p, z in zip(map(tuple, p0_ref), z_ref, strict=True)}
            for j in range(1, f):
                if j == ref or parallax[j] < self.min_parallax_px:
                    continue
                p0, pj = tracks[j]
                z_j = _triangulate_depth(k_cv, poses[j][0], poses[j][1], p0, pj)
                ratios = [
                    lookup[tuple(p)] / z
                    for p, z in zip(map(tuple, p0), z_j, strict=True)
                    if tuple(p) in lookup and z > 0 and lookup[tuple(p)] > 0
                ]
                translations[j] *= float(np.median(ratios)) if ratios else 0.0
            x0 = (k_inv @ np.vstack([p0_ref.T, np.ones(len(p0_ref))])) * z_ref  # [3, N]
            keep = z_ref > 0
            for j in range(f):
                r, t = rotations[j].numpy(), translations[j].numpy()
                xj = r @ x0[:, keep] + t[:, None]
                pix = k_cv @ xj
                u = np.round(pix[0] / pix[2]).astype(int)
                v = np.round(pix[1] / pix[2]).astype(int)
                inside = (xj[2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
                depth[j, v[inside], u[inside]] = torch.tensor(xj[2, inside], dtype=torch.float32)
                conf[j, v[inside], u[inside]] = 1.0
        w2c = torch.eye(4, dtype=torch.float64).repeat(f, 1, 1)
        w2c[:, :3, :3] = rotations
        w2c[:, :3, 3] = translations
        return w2c, depth, conf


class _Failure(Exception):
    pass


def _apply_homography(hmat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    x = np.hstack([pts, np.ones((len(pts), 1))]) @ hmat.T
    return x[:, :2] / x[:, 2:]


def _rotation_from_homography(hmat: np.ndarray, k: np.ndarray, k_inv: np.ndarray) -> np.ndarray:
    """The rotation closest to ``K^-1 H K`` (exact for a purely rotating camera)."""
    m = k_inv @ hmat @ k
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    return r if np.linalg.det(r) > 0 else -r
