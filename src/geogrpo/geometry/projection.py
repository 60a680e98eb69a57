"""Pinhole projection and unprojection with metric z-depth.

Pixel ``(u, v)`` (column, row) has its centre at ``(u + 0.5, v + 0.5)``: with ``cx = W / 2`` the
principal point sits in the middle of the image, and resizing scales intrinsics exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from geogrpo.camera.se3 import check_intrinsics, check_pose, invert_pose
from geogrpo.utils.checks import check_finite


def pixel_centers(
    height: int,
    width: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Continuous pixel-centre coordinates ``[H, W, 2]`` as ``(u + 0.5, v + 0.5)``."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device) + 0.5,
        torch.arange(width, dtype=dtype, device=device) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def unproject_depth(depth: Tensor, intrinsics: Tensor, w2c: Tensor | None = None) -> Tensor:
    """3D points ``[..., H, W, 3]`` of every pixel centre at its z-depth ``[..., H, W]``.

    Camera frame when ``w2c`` is None, else world frame. ``intrinsics`` ``[..., 3, 3]`` and
    ``w2c`` ``[..., 4, 4]`` broadcast against the leading dims of ``depth``.
    """
    check_finite("depth", depth)
    if depth.ndim < 2:
        raise ValueError(f"depth: expected shape [..., H, W], got {tuple(depth.shape)}")
    if bool((depth <= 0).any()):
        raise ValueError("depth: must be positive everywhere (z-depth in front of the camera)")
    check_intrinsics("intrinsics", intrinsics)
    h, w = depth.shape[-2:]
    ones = torch.ones(h, w, 1, dtype=depth.dtype, device=depth.device)
    uv1 = torch.cat([pixel_centers(h, w, depth.dtype, depth.device), ones], dim=-1)  # [H, W, 3]
    rays = uv1 @ torch.linalg.inv(intrinsics).transpose(-1, -2)[..., None, :, :]  # [..., H, W, 3]
    points = rays * depth[..., None]
    if w2c is None:
        return points
    c2w = invert_pose(w2c)
    return points @ c2w[..., None, :3, :3].transpose(-1, -2) + c2w[..., None, None, :3, 3]


def project_points(
    points: Tensor, intrinsics: Tensor, w2c: Tensor | None = None, eps: float = 1e-8
) -> tuple[Tensor, Tensor]:
    """Pixel coordinates ``[..., N, 2]`` and z-depth ``[..., N]`` of points ``[..., N, 3]``.

    Points behind the camera get depth <= 0; callers mask them (their pixel is meaningless).
    """
    check_finite("points", points)
    if points.shape[-1:] != (3,):
        raise ValueError(f"points: expected shape [..., N, 3], got {tuple(points.shape)}")
    check_intrinsics("intrinsics", intrinsics)
    if w2c is not None:
        check_pose("w2c", w2c)
        points = points @ w2c[..., :3, :3].transpose(-1, -2) + w2c[..., None, :3, 3]
    z = points[..., 2]
    safe_z = torch.where(z.abs() < eps, torch.full_like(z, eps), z)
    pix = (points @ intrinsics.transpose(-1, -2))[..., :2]
    return pix / safe_z[..., None], z


def plucker_rays(
    c2w: Tensor, intrinsics: Tensor, image_size: tuple[int, int], grid: tuple[int, int]
) -> Tensor:
    """Plücker coordinates ``[..., gh, gw, 6]`` (unit direction ``d``, moment ``o x d``) of the
    rays through the centres of a ``gh x gw`` grid of cells over an ``H x W`` image.

    ``c2w`` ``[..., 4, 4]`` places the camera in the frame the rays are expressed in (``o`` is its
    centre); ``intrinsics`` ``[..., 3, 3]`` are in pixels of the ``H x W`` image. The cell grid
    is the DiT's token grid, so each token gets the ray it sees (CameraCtrl-style conditioning).
    """
    check_pose("c2w", c2w)
    check_intrinsics("intrinsics", intrinsics)
    (height, width), (gh, gw) = image_size, grid
    dtype, device = c2w.dtype, c2w.device
    cell = torch.tensor([width / gw, height / gh], dtype=dtype, device=device)
    uv = pixel_centers(gh, gw, dtype, device) * cell
    uv1 = torch.cat([uv, torch.ones(gh, gw, 1, dtype=dtype, device=device)], dim=-1)  # [gh, gw, 3]
    k_inv = torch.linalg.inv(intrinsics.to(dtype))
    d_cam = uv1 @ k_inv.transpose(-1, -2)[..., None, :, :]  # [..., gh, gw, 3]
    d = d_cam @ c2w[..., None, :3, :3].transpose(-1, -2)
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[..., None, None, :3, 3].expand_as(d)
    return torch.cat([d, torch.linalg.cross(o, d, dim=-1)], dim=-1)
