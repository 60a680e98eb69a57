"""flow_pnp: metric cameras from dense flow between frames, tinygeo's depth, and PnP.

Why: tinygeo's depth is learned (val AbsRel about 0.35) but its camera head barely is (val
RotErr 13.4 degrees against 16.4 for a static guess, translations uninformative). The world's
ground-truth evaluator registers a frame against a true render with true depth; this estimator
does the same between two frames *of the clip itself*, with tinygeo's estimated depth of the
reference frame in place of the true one. It reads nothing of the world (no true depth, no true
render), so it can sit behind a reward.

Per clip (``video [F, H, W, 3]``):

1. **Depth and confidence**: one tinygeo pass over the clip (metric, the world's 60 degree field
   of view unless intrinsics are given). A reference pixel is used where tinygeo's confidence
   (its probability of a static surface) is at least ``min_confidence``, to drop sky and moving
   objects. (The shipped tinygeo's confidence is 0.89-1.0 on every pixel of the world's clips
   and no lower on moving objects, about 2 % of the pixels, so in practice RANSAC rejects those
   as outliers.) The estimate's depth and confidence are tinygeo's.
2. **Registration** of frame ``i`` against a reference frame ``r`` with
   :func:`geogrpo.geometry.registration.register_frame` (the evaluator's code: DIS flow r -> i,
   texture mask, NCC check, forward-backward consistency, ``solvePnPRansac`` + LM refinement);
   the reference's pixels are back-projected with tinygeo's depth of frame ``r``, so PnP returns
   the metric pose of ``i`` relative to ``r``: ``w2c_i = pose @ w2c_r``. A registration is
   accepted when PnP succeeds with an inlier ratio of at least ``min_inlier_ratio``.
3. **Frame pairs (keyframes)**: frame 0 is the first keyframe. Each frame registers against the
   current keyframe; when that fails or its inlier ratio falls under ``keyframe_ratio`` (the
   shared view is shrinking), the previous frame becomes the keyframe and the frame registers
   against it instead. Small motions are thus measured against a fixed reference (no drift) and
   large ones (orbits of 60-100 degrees, where frame 0 leaves the view) by a chain of keyframes.
   The alternatives are options (``pairs``): ``"first"`` registers every frame against frame 0
   (no drift, but a third of the world's frames share too little with it), ``"consecutive"``
   chains frame i - 1 -> i (always registers, drifts a little more); measured side by side in
   ``bench/RESULTS.md``.
4. **Fallback**: a frame that registers against neither gets tinygeo's own relative motion from
   the previous frame (its camera head), composed onto the previous frame's pose.

A sample is invalid (``valid = False`` with a reason) when its video has non-finite values, or
when fewer than ``min_registered`` of its frames 1..F-1 registered (e.g. a blank or scrambled
clip); ``min_registered = 0`` scores every finite clip, with fallbacks.

Cost: a tinygeo pass plus 16-30 registrations of 96x96 frames (two DIS flows and one RANSAC
each), a few tenths of a second per 17-frame clip on one core.

Cheaper settings (issue 25; ``bench/camera_reward.py``, ``bench/RESULTS.md``): on a policy's
blurry samples few matches fit within 1 px, so RANSAC runs its whole budget of 1,000 EPnP
hypotheses (35 ms a call) and keyframes move often (about 31 registrations a clip).
``ransac_iterations=100`` with ``pairs="consecutive"`` makes Geo-Align's trajectory reward 3.9x
cheaper and ranks a group against the truth as before (the geo_align recipe uses it).
``solver="guided"`` drops RANSAC for LM from a constant-velocity guess (4.4x with consecutive
pairs, no worse ranking, but 20 % larger rotation errors on decoded frames). The evaluator
keeps its own settings. (OpenCV's ``solvePnPRansac`` draws from a fixed internal seed, so either
solver returns the same cameras for the same clip.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from torch import Tensor

from geogrpo.geometry.projection import unproject_depth
from geogrpo.geometry.registration import (
    SOLVERS,
    RegistrationOptions,
    Solver,
    make_dis,
    register_frame,
)
from geogrpo.perception.base import GeometryEstimate, check_video
from geogrpo.perception.tinygeo import TinyGeo, TinyGeoEstimator
from geogrpo.utils.checks import check_choice, check_fraction, check_int_range
from geogrpo.utils.video import to_uint8

Pairs = Literal["keyframe", "consecutive", "first"]
PAIRS = ("keyframe", "consecutive", "first")


def register_clip(
    video: Tensor,  # [F, H, W, 3] in [0, 1], finite
    depth: Tensor,  # [F, H, W] metric z-depth (estimated)
    surface: Tensor,  # [F, H, W] bool, pixels whose depth may be used
    intrinsics: Tensor,  # [3, 3] our pixel convention
    fallback_w2c: Tensor,  # [F, 4, 4] cameras used for frames that cannot be registered
    *,
    pairs: Pairs = "keyframe",
    keyframe_ratio: float = 0.7,
    min_inlier_ratio: float = 0.15,
    options: RegistrationOptions | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Cameras ``[F, 4, 4]`` (float64, relative to frame 0) of one clip by registration against
    the frames ``pairs`` chooses (steps 2-4 of the module docstring), whether each frame
    registered ``[F]`` bool (frame 0: True), and the inlier ratio of the registration that was
    kept ``[F]`` (0 for fallbacks)."""
    check_choice("pairs", pairs, PAIRS)
    f = video.shape[0]
    options = options or RegistrationOptions()
    k = intrinsics.detach().to("cpu", torch.float64)
    d = depth.detach().to("cpu", torch.float64)
    use = surface.cpu() & torch.isfinite(d) & (d > 0)
    points = unproject_depth(torch.where(use, d, torch.ones_like(d)), k).numpy()
    use_np, k_np = use.numpy(), k.numpy()
    fallback = fallback_w2c.detach().to("cpu", torch.float64).numpy()
    grays = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in to_uint8(video)]
    dis = make_dis()

    def register(ref: int, i: int) -> tuple[np.ndarray | None, float]:
        # constant velocity from the last two poses: the guess solver="guided" starts from
        moved = w2c[i - 1] @ np.linalg.inv(w2c[i - 2]) @ w2c[i - 1] if i >= 2 else w2c[0]
        guess = moved @ np.linalg.inv(w2c[ref])
        pose, ratio = register_frame(
            dis, grays[ref], grays[i], use_np[ref], points[ref], k_np, options, guess
        )
        ok = bool(np.isfinite(pose).all()) and ratio >= min_inlier_ratio
        return (pose if ok else None), ratio

    w2c = np.tile(np.eye(4), (f, 1, 1))
    registered = np.zeros(f, dtype=bool)
    registered[0] = True
    ratios = np.zeros(f)
    ratios[0] = 1.0
    key = 0
    for i in range(1, f):
        if pairs == "consecutive":
            key = i - 1
        pose, ratio = register(key, i)
        base = key
        may_move_key = pairs == "keyframe" and key != i - 1
        if may_move_key and (pose is None or ratio < keyframe_ratio):
            key = i - 1  # the shared view with the keyframe is shrinking: move it up
            pose_prev, ratio_prev = register(key, i)
            if pose_prev is not None:
                pose, ratio, base = pose_prev, ratio_prev, key
        if pose is not None:
            w2c[i] = pose @ w2c[base]
            registered[i], ratios[i] = True, ratio
        else:  # the fallback's own motion from the previous frame
            step = fallback[i] @ np.linalg.inv(fallback[i - 1])
            w2c[i] = step @ w2c[i - 1]
    return torch.from_numpy(w2c), torch.from_numpy(registered), torch.from_numpy(ratios)


class FlowPnPEstimator:
    """:class:`~geogrpo.perception.base.GeometryEstimator`: tinygeo's depth, cameras from flow +
    PnP between the clip's frames (see the module docstring).

    ``options`` are the registration's settings (default: the ground-truth evaluator's);
    ``ransac_iterations`` and ``solver`` replace only those two, so a reward can run a cheaper
    estimator than the evaluator, which keeps its own (see "Cheaper settings" in the module
    docstring).

    Devices: tinygeo runs on ``device`` (None: the CPU, or where a given model is; a built
    ``depth_model`` estimator keeps its own); the registration is OpenCV, so the video, depth,
    confidence and cameras it needs are copied to the CPU once per batch, and its cameras go
    back into the estimate, which stays on tinygeo's device."""

    name = "flow_pnp"
    scale = "metric"

    def __init__(
        self,
        depth_model: TinyGeoEstimator | TinyGeo | str | Path = "tinygeo",
        *,
        pairs: Pairs = "keyframe",
        keyframe_ratio: float = 0.7,
        min_inlier_ratio: float = 0.15,
        min_confidence: float = 0.5,
        min_registered: float = 0.5,
        options: RegistrationOptions | None = None,
        ransac_iterations: int | None = None,
        solver: Solver | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        for name, value in (
            ("keyframe_ratio", keyframe_ratio),
            ("min_inlier_ratio", min_inlier_ratio),
            ("min_confidence", min_confidence),
            ("min_registered", min_registered),
        ):
            check_fraction(name, value)
        check_choice("pairs", pairs, PAIRS)
        self.pairs = pairs
        self.depth_model = (
            depth_model
            if isinstance(depth_model, TinyGeoEstimator)
            else TinyGeoEstimator(depth_model, device=device)
        )
        self.keyframe_ratio = keyframe_ratio
        self.min_inlier_ratio = min_inlier_ratio
        self.min_confidence = min_confidence
        self.min_registered = min_registered
        self.options = options or RegistrationOptions()
        if ransac_iterations is not None:
            check_int_range("ransac_iterations", ransac_iterations, 1)
            self.options = replace(self.options, ransac_iterations=ransac_iterations)
        if solver is not None:
            self.options = replace(self.options, solver=check_choice("solver", solver, SOLVERS))

    def estimate(self, video: Tensor, intrinsics: Tensor | None = None) -> GeometryEstimate:
        check_video("video", video, min_frames=2)
        size = self.depth_model.model.config["size"]
        if tuple(video.shape[2:4]) != (size, size):
            raise ValueError(
                f"video: flow_pnp takes its depth from tinygeo, built for {size}x{size} frames, "
                f"got {video.shape[2]}x{video.shape[3]}; resize the clip first"
            )
        # All torch work (tinygeo) first, then the OpenCV loop (see the evaluator's note on
        # interleaving the two thread pools on few cores).
        est = self.depth_model.estimate(video, intrinsics)
        clean = video.detach().float().cpu()
        depth, w2c_cpu = est.depth.cpu(), est.w2c.cpu()  # OpenCV registers on the CPU
        surface = (est.confidence >= self.min_confidence).cpu()
        k = est.intrinsics[:, 0].cpu()
        f = video.shape[1]
        for b in range(est.batch_size):
            if not bool(est.valid[b]):
                continue  # non-finite video: tinygeo already masked it, with its reason
            w2c, registered, _ = register_clip(
                clean[b].clamp(0, 1),
                depth[b],
                surface[b],
                k[b],
                w2c_cpu[b],
                pairs=self.pairs,
                keyframe_ratio=self.keyframe_ratio,
                min_inlier_ratio=self.min_inlier_ratio,
                options=self.options,
            )
            n_reg = int(registered[1:].sum())
            if n_reg < self.min_registered * (f - 1):
                est.invalidate(
                    b,
                    f"only {n_reg} of {f - 1} frames could be registered by flow + PnP "
                    f"(need {self.min_registered:.0%}): too little shared texture between frames",
                )
                continue
            est.w2c[b] = w2c.to(est.w2c)
        return est
