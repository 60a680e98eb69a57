"""Plane-induced homographies and the 2D flow they give: camera motion -> pixel motion.

World-R1 turns a camera trajectory into a dense 2D flow between consecutive frames by assuming
the scene is a plane in front of the camera; the flow then drives the noise warping of
:mod:`geogrpo.geometry.noise_warp`. A homography needs no depth map and is exact for a planar
scene (and for any scene under pure rotation), which is all a noise prior needs.

Conventions (see :mod:`geogrpo.camera`): world-to-camera extrinsics, OpenCV axes, pixel
``(u, v)`` centred at ``(u + 0.5, v + 0.5)``. A homography maps homogeneous source pixels
``x_src`` to destination pixels ``x_dst ~ H x_src``; a flow ``[..., H, W, 2]`` holds
``(du, dv) = x_dst - x_src`` in pixels for every source pixel centre.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from geogrpo.camera.se3 import check_intrinsics, check_pose, invert_pose
from geogrpo.geometry.projection import pixel_centers
from geogrpo.utils.checks import check_finite, check_int_range


def _relative_pose(w2c_src: Tensor, w2c_dst: Tensor) -> tuple[Tensor, Tensor]:
    """``(R [..., 3, 3], t [..., 3, 1])`` with ``X_dst = R X_src + t`` (camera frames)."""
    check_pose("w2c_src", w2c_src)
    check_pose("w2c_dst", w2c_dst)
    rel = w2c_dst @ invert_pose(w2c_src)  # [..., 4, 4]
    return rel[..., :3, :3], rel[..., :3, 3:]


def plane_homography(
    K_src: Tensor,
    K_dst: Tensor,
    w2c_src: Tensor,
    w2c_dst: Tensor,
    plane_normal: Tensor,
    plane_distance: Tensor | float,
) -> Tensor:
    """Homography ``[..., 3, 3]`` from source to destination pixels induced by a 3D plane.

    The plane is ``{X : n^T X + d = 0}`` with ``X`` in the SOURCE camera frame, ``n =
    plane_normal [..., 3]`` (any non-zero length) and ``d = plane_distance`` (scalar or ``[...]``,
    non-zero: the plane may not pass through the source centre). With ``(R, t)`` the relative
    pose, ``X_dst = R X_src + t`` (``[R | t] = w2c_dst @ inv(w2c_src)``), a plane point has
    ``-n^T X / d = 1``, so ``X_dst = (R - t n^T / d) X_src`` and (Hartley & Zisserman eq. 13.2)

        ``H = K_dst (R - t n^T / d) K_src^-1``,    ``x_dst ~ H x_src``.

    Example: the fronto-parallel plane ``z = Z`` in front of the source is ``n = (0, 0, 1)``,
    ``d = -Z``. All inputs broadcast over leading dims.
    """
    check_intrinsics("K_src", K_src)
    check_intrinsics("K_dst", K_dst)
    r, t = _relative_pose(w2c_src, w2c_dst)
    check_finite("plane_normal", plane_normal)
    if plane_normal.shape[-1:] != (3,):
        raise ValueError(f"plane_normal: expected shape [..., 3], got {tuple(plane_normal.shape)}")
    if bool((plane_normal.norm(dim=-1) == 0).any()):
        raise ValueError("plane_normal: must be non-zero (it is the plane's normal direction)")
    d = torch.as_tensor(plane_distance, dtype=r.dtype, device=r.device)
    check_finite("plane_distance", d)
    if bool((d == 0).any()):
        raise ValueError(
            "plane_distance: must be non-zero; d = 0 puts the plane through the source camera "
            "centre, where it projects to a line and induces no homography"
        )
    n = plane_normal.to(r)[..., None, :]  # [..., 1, 3]
    euclidean = r - t @ n / d[..., None, None]  # [..., 3, 3]
    return K_dst.to(r) @ euclidean @ torch.linalg.inv(K_src.to(r))


def _fronto_parallel(
    k_src: Tensor, k_dst: Tensor, w2c_src: Tensor, w2c_dst: Tensor, depth: Tensor | float
) -> Tensor:
    depth_t = torch.as_tensor(depth, dtype=w2c_src.dtype, device=w2c_src.device)
    check_finite("depth", depth_t)
    if bool((depth_t <= 0).any()):
        raise ValueError("depth: the plane must be in front of the source camera (depth > 0)")
    normal = torch.tensor([0.0, 0.0, 1.0], dtype=w2c_src.dtype, device=w2c_src.device)
    return plane_homography(k_src, k_dst, w2c_src, w2c_dst, normal, -depth_t)


def fronto_parallel_homography(
    K: Tensor, w2c_src: Tensor, w2c_dst: Tensor, depth: Tensor | float
) -> Tensor:
    """Homography ``[..., 3, 3]`` of the plane ``z = depth`` (> 0) in the source camera frame.

    ``n = (0, 0, 1)``, ``d = -depth`` in :func:`plane_homography`:
    ``H = K (R + t e_3^T / depth) K^-1``. For ``R = I`` and ``t = (t_x, 0, 0)`` (w2c-relative
    translation, i.e. the camera CENTRE moves by ``-t_x``) every pixel moves by
    ``du = +f_x t_x / depth``: moving the camera right makes the scene move left.
    """
    return _fronto_parallel(K, K, w2c_src, w2c_dst, depth)


def homography_flow(H: Tensor, height: int, width: int) -> Tensor:
    """Flow ``[..., height, width, 2]`` of every pixel centre ``p`` under ``H`` ``[..., 3, 3]``.

    ``flow(p) = pi(H p~) - p`` with ``p~ = (u + 0.5, v + 0.5, 1)`` and ``pi`` the dehomogenisation.
    Where the third coordinate of ``H p~`` is ``<= 0`` the plane point lies behind the
    destination camera and that pixel's flow is meaningless (it does not happen for the small
    inter-frame motions of a camera trajectory).
    """
    check_finite("H", H)
    if H.ndim < 2 or H.shape[-2:] != (3, 3):
        raise ValueError(f"H: expected shape [..., 3, 3], got {tuple(H.shape)}")
    check_int_range("height", height, 1)
    check_int_range("width", width, 1)
    dtype = H.dtype if H.is_floating_point() else torch.float32
    p = pixel_centers(height, width, dtype, H.device)  # [h, w, 2]
    p_h = torch.cat([p, torch.ones_like(p[..., :1])], dim=-1)  # [h, w, 3]
    q = p_h @ H.to(dtype)[..., None, :, :].transpose(-1, -2)  # [..., h, w, 3]
    return q[..., :2] / q[..., 2:] - p


def trajectory_homography_flow(
    K: Tensor, w2c: Tensor, depth: Tensor | float, height: int, width: int
) -> Tensor:
    """Flows ``[F-1, height, width, 2]`` from frame ``f`` to ``f+1`` of a trajectory ``[F, 4, 4]``.

    World-R1's camera-motion-to-2D-flow step: each step uses the fronto-parallel plane at
    ``depth`` in front of frame ``f`` (:func:`fronto_parallel_homography`). ``K`` is ``[3, 3]``
    or per-frame ``[F, 3, 3]`` for images of ``height x width`` pixels.
    """
    check_pose("w2c", w2c)
    if w2c.ndim != 3 or w2c.shape[0] < 2:
        raise ValueError(f"w2c: expected a trajectory [F >= 2, 4, 4], got {tuple(w2c.shape)}")
    check_intrinsics("K", K)
    if K.ndim == 3:
        if K.shape[0] != w2c.shape[0]:
            raise ValueError(f"K: expected [3, 3] or [{w2c.shape[0]}, 3, 3], got {tuple(K.shape)}")
        k_src, k_dst = K[:-1], K[1:]
    elif K.ndim == 2:
        k_src = k_dst = K
    else:
        raise ValueError(f"K: expected [3, 3] or [F, 3, 3], got {tuple(K.shape)}")
    h = _fronto_parallel(k_src, k_dst, w2c[:-1], w2c[1:], depth)  # [F-1, 3, 3]
    return homography_flow(h, height, width)


def scale_flow_to(flow: Tensor, height: int, width: int) -> Tensor:
    """Resample a flow ``[..., H, W, 2]`` to ``[..., height, width, 2]`` (e.g. to latent size).

    Pixel-edge convention, as :func:`geogrpo.camera.se3.scale_intrinsics`: a continuous position
    ``x`` becomes ``x * width / W``, so the flow is bilinearly sampled at each new pixel centre
    (``align_corners=False``) and ``du`` is scaled by ``width / W``, ``dv`` by ``height / H``.
    Exact for affine flows (e.g. translation and forward motion facing a fronto-parallel plane).
    """
    check_finite("flow", flow)
    if flow.ndim < 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow: expected shape [..., H, W, 2], got {tuple(flow.shape)}")
    check_int_range("height", height, 1)
    check_int_range("width", width, 1)
    lead, (h_in, w_in) = flow.shape[:-3], flow.shape[-3:-1]
    x = flow.reshape(-1, h_in, w_in, 2).permute(0, 3, 1, 2)  # [B, 2, H, W]
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    scale = torch.tensor([width / w_in, height / h_in], dtype=flow.dtype, device=flow.device)
    return x.permute(0, 2, 3, 1).reshape(*lead, height, width, 2) * scale
