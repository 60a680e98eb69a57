"""Trajectory maths: per-frame increments, speeds, Geo-Align speed rescaling, interpolation.

Increments are measured where they mean something physical: translation as the world-frame step
of the camera centre, rotation as the body-frame relative rotation ``R_f^T R_{f+1}`` of the
camera-to-world rotations (its angle is the frame-to-frame rotation speed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from geogrpo.camera.se3 import check_pose, make_pose, so3_exp, so3_log, w2c_to_c2w
from geogrpo.utils.checks import check_finite, check_positive


def _check_trajectory(w2c: Tensor) -> Tensor:
    check_pose("w2c", w2c)
    if w2c.ndim < 3 or w2c.shape[-3] < 2:
        raise ValueError(f"w2c: expected a trajectory [..., F >= 2, 4, 4], got {tuple(w2c.shape)}")
    return w2c


def trajectory_increments(w2c: Tensor) -> tuple[Tensor, Tensor]:
    """``(rotvecs [..., F-1, 3], steps [..., F-1, 3])``: body-frame rotation and centre step."""
    c2w = w2c_to_c2w(_check_trajectory(w2c))
    r = c2w[..., :3, :3]
    rel = r[..., :-1, :, :].transpose(-1, -2) @ r[..., 1:, :, :]
    centers = c2w[..., :3, 3]
    return so3_log(rel), centers[..., 1:, :] - centers[..., :-1, :]


def trajectory_speeds(w2c: Tensor) -> tuple[Tensor, Tensor]:
    """Per-step ``(translation speed, rotation speed in radians)``, each ``[..., F-1]``."""
    rotvecs, steps = trajectory_increments(w2c)
    return steps.norm(dim=-1), rotvecs.norm(dim=-1)


def integrate_increments(start_c2w: Tensor, rotvecs: Tensor, steps: Tensor) -> Tensor:
    """Inverse of :func:`trajectory_increments`: world-to-camera ``[..., F, 4, 4]`` from a start.

    ``R_{f+1} = R_f exp(rotvec_f)`` (body frame), ``c_{f+1} = c_f + step_f`` (world frame).
    """
    check_pose("start_c2w", start_c2w)
    rots, centers = [start_c2w[..., :3, :3]], [start_c2w[..., :3, 3]]
    rel = so3_exp(rotvecs)
    for f in range(rotvecs.shape[-2]):
        rots.append(rots[-1] @ rel[..., f, :, :])
        centers.append(centers[-1] + steps[..., f, :])
    c2w = make_pose(torch.stack(rots, dim=-3), torch.stack(centers, dim=-2))
    return w2c_to_c2w(c2w)


def rescale_trajectory_speeds(
    w2c: Tensor, max_translation: float | Tensor, max_rotation: float | Tensor
) -> Tensor:
    """Scale a path so its largest per-frame steps equal the given maxima (Geo-Align eqs. 8-14).

    ``v_t = max_f |c_{f+1} - c_f|`` and ``v_r = max_f angle(R_f^T R_{f+1})`` (eqs. 8-9); every
    centre step is multiplied by ``max_translation / v_t`` and every relative rotation's log by
    ``max_rotation / v_r`` (eqs. 10-14), then the path is re-integrated from the first camera.
    Centre steps keep their world directions, so the path keeps its shape up to scale, and
    rotation increments keep their axes. A path without translation (or rotation) stays so.
    """
    rotvecs, steps = trajectory_increments(w2c)
    v_t = steps.norm(dim=-1).amax(dim=-1, keepdim=True)[..., None]  # [..., 1, 1]
    v_r = rotvecs.norm(dim=-1).amax(dim=-1, keepdim=True)[..., None]
    target_t = torch.as_tensor(max_translation, dtype=w2c.dtype)
    target_r = torch.as_tensor(max_rotation, dtype=w2c.dtype)
    for name, value in (("max_translation", target_t), ("max_rotation", target_r)):
        check_finite(name, value)
        if bool((value < 0).any()):
            raise ValueError(f"{name}: speed maxima must be >= 0, got {value}")
    if target_r.ndim:
        target_r = target_r[..., None, None]
    if target_t.ndim:
        target_t = target_t[..., None, None]
    if bool((target_r >= torch.pi).any()):
        raise ValueError("max_rotation: must be below pi radians per frame")
    k_t = torch.where(v_t > 0, target_t / v_t.clamp_min(1e-30), torch.zeros_like(v_t))
    k_r = torch.where(v_r > 0, target_r / v_r.clamp_min(1e-30), torch.zeros_like(v_r))
    start = w2c_to_c2w(w2c[..., 0, :, :])
    return integrate_increments(start, rotvecs * k_r, steps * k_t)


def sample_truncated_normal(
    mean: float, std: float, low: float, high: float, generator: torch.Generator, n: int = 1
) -> Tensor:
    """``n`` draws ``[n]`` from N(mean, std^2) truncated to [low, high], by inverse CDF."""
    check_positive("std", std)
    if not low < high:
        raise ValueError(f"low: must be below high, got low={low}, high={high}")
    dist = torch.distributions.Normal(torch.tensor(mean, dtype=torch.float64), std)
    lo, hi = (
        dist.cdf(torch.tensor(low, dtype=torch.float64)),
        dist.cdf(torch.tensor(high, dtype=torch.float64)),
    )
    u = lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
    return dist.icdf(u.clamp(1e-12, 1 - 1e-12)).clamp(low, high)


@dataclass(frozen=True)
class SpeedPrior:
    """Truncated-Gaussian prior of a per-frame speed maximum (units per frame, or radians)."""

    mean: float
    std: float
    low: float
    high: float

    def sample(self, generator: torch.Generator, n: int = 1) -> Tensor:
        """Draw ``[n]`` maxima."""
        return sample_truncated_normal(self.mean, self.std, self.low, self.high, generator, n)


def sample_speed_rescaled(
    w2c: Tensor,  # [F, 4, 4]
    translation_prior: SpeedPrior,
    rotation_prior: SpeedPrior,
    generator: torch.Generator,
) -> tuple[Tensor, float, float]:
    """Geo-Align's data step: sample target maxima, rescale; returns ``(w2c, v_t*, v_r*)``."""
    v_t = float(translation_prior.sample(generator)[0])
    v_r = float(rotation_prior.sample(generator)[0])
    return rescale_trajectory_speeds(w2c, v_t, v_r), v_t, v_r


def interpolate_from_identity(pose: Tensor, alpha: float | Tensor) -> Tensor:
    """Pose ``[..., 4, 4]`` a fraction ``alpha`` of the way from the identity along the geodesic.

    Rotation ``exp(alpha log R)``, translation ``alpha t``: the "smaller view increments" that
    ADEVIS accumulates (DEVIS-GRPO eq. 7).
    """
    check_pose("pose", pose)
    a = torch.as_tensor(alpha, dtype=pose.dtype)
    a_r = a[..., None] if a.ndim else a
    return make_pose(so3_exp(so3_log(pose[..., :3, :3]) * a_r), pose[..., :3, 3] * a_r)
