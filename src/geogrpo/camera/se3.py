"""Rigid transforms, extrinsics and intrinsics as batched tensors (see the package docstring).

Rotation maths (log/exp maps, geodesic angles, quaternions) goes through ``roma``; this module
adds the camera conventions, the shape checks and the few SE(3) operations roma does not name.
"""

from __future__ import annotations

import math

import roma
import torch
from torch import Tensor

from geogrpo.utils.checks import check_finite, check_tensor

# OpenCV <-> OpenGL/Blender camera axes: flip y and z. The same matrix converts both ways.
OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def check_pose(name: str, pose: Tensor, *, rigid_tol: float = 1e-3) -> Tensor:
    """Require finite ``[..., 4, 4]`` rigid transforms (rotation with det +1, last row 0001)."""
    check_tensor(name, pose)
    if pose.ndim < 2 or pose.shape[-2:] != (4, 4):
        raise ValueError(f"{name}: expected shape [..., 4, 4], got {tuple(pose.shape)}")
    check_finite(name, pose)
    bottom = pose[..., 3, :]
    expected = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=pose.dtype, device=pose.device)
    if bool(((bottom - expected).abs() > rigid_tol).any()):
        raise ValueError(f"{name}: the last row of every pose must be [0, 0, 0, 1]")
    r = pose[..., :3, :3]
    eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
    ortho_err = (r.transpose(-1, -2) @ r - eye).abs().amax(dim=(-1, -2))
    det = torch.linalg.det(r)
    if bool((ortho_err > rigid_tol).any()) or bool(((det - 1.0).abs() > rigid_tol).any()):
        raise ValueError(
            f"{name}: rotation blocks must be orthonormal with determinant +1 (worst |R^T R - I| "
            f"= {float(ortho_err.max()):.2e}); a scaled or singular pose is not a camera pose"
        )
    return pose


def check_intrinsics(name: str, k: Tensor) -> Tensor:
    """Require finite ``[..., 3, 3]`` pinhole intrinsics with positive focal lengths."""
    check_tensor(name, k)
    if k.ndim < 2 or k.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: expected shape [..., 3, 3], got {tuple(k.shape)}")
    check_finite(name, k)
    if bool((k[..., 0, 0] <= 0).any()) or bool((k[..., 1, 1] <= 0).any()):
        raise ValueError(f"{name}: focal lengths fx, fy (K[0,0], K[1,1]) must be positive")
    return k


def make_pose(rotation: Tensor, translation: Tensor) -> Tensor:
    """``[..., 4, 4]`` from rotation ``[..., 3, 3]`` and translation ``[..., 3]``."""
    if rotation.shape[-2:] != (3, 3):
        raise ValueError(f"rotation: expected shape [..., 3, 3], got {tuple(rotation.shape)}")
    if translation.shape[-1:] != (3,) or translation.shape[:-1] != rotation.shape[:-2]:
        raise ValueError(
            f"translation: expected shape {(*rotation.shape[:-2], 3)}, "
            f"got {tuple(translation.shape)}"
        )
    pose = torch.zeros(*rotation.shape[:-2], 4, 4, dtype=rotation.dtype, device=rotation.device)
    pose[..., :3, :3] = rotation
    pose[..., :3, 3] = translation
    pose[..., 3, 3] = 1.0
    return pose


def invert_pose(pose: Tensor) -> Tensor:
    """Inverse of rigid transforms ``[..., 4, 4]``: ``[R^T, -R^T t]`` (exact, no matrix inverse)."""
    check_pose("pose", pose)
    r_t = pose[..., :3, :3].transpose(-1, -2)
    return make_pose(r_t, -(r_t @ pose[..., :3, 3:]).squeeze(-1))


def c2w_to_w2c(c2w: Tensor) -> Tensor:
    """Camera-to-world poses ``[..., 4, 4]`` -> world-to-camera extrinsics (our convention)."""
    return invert_pose(c2w)


def w2c_to_c2w(w2c: Tensor) -> Tensor:
    """World-to-camera extrinsics ``[..., 4, 4]`` -> camera-to-world poses."""
    return invert_pose(w2c)


def opengl_c2w_to_opencv_c2w(c2w_gl: Tensor) -> Tensor:
    """OpenGL/Blender camera axes (x right, y up, z backward) -> OpenCV axes; works both ways."""
    check_pose("c2w_gl", c2w_gl)
    return c2w_gl @ OPENGL_TO_OPENCV.to(c2w_gl)


def camera_centers(w2c: Tensor) -> Tensor:
    """Camera centres in world coordinates ``[..., 3]``: ``-R^T t``."""
    check_pose("w2c", w2c)
    r, t = w2c[..., :3, :3], w2c[..., :3, 3:]
    return -(r.transpose(-1, -2) @ t).squeeze(-1)


def relative_to_first(w2c: Tensor) -> Tensor:
    """Re-express a trajectory ``[..., F, 4, 4]`` in its first camera's frame (frame 0 = identity).

    ``w2c_rel[f] = w2c[f] @ inv(w2c[0])``: the world becomes the first camera, which removes the
    arbitrary world frame before trajectories from different sources are compared.
    """
    check_pose("w2c", w2c)
    if w2c.ndim < 3:
        raise ValueError(f"w2c: expected a trajectory [..., F, 4, 4], got {tuple(w2c.shape)}")
    return w2c @ invert_pose(w2c[..., :1, :, :])


def skew(v: Tensor) -> Tensor:
    """Cross-product matrix ``[..., 3, 3]`` of ``v`` ``[..., 3]``: ``skew(a) b = a x b``."""
    zero = torch.zeros_like(v[..., 0])
    return torch.stack(
        [
            torch.stack([zero, -v[..., 2], v[..., 1]], dim=-1),
            torch.stack([v[..., 2], zero, -v[..., 0]], dim=-1),
            torch.stack([-v[..., 1], v[..., 0], zero], dim=-1),
        ],
        dim=-2,
    )


def so3_log(rotation: Tensor) -> Tensor:
    """Rotation vectors ``[..., 3]`` (axis * angle in radians) of rotations ``[..., 3, 3]``."""
    return roma.rotmat_to_rotvec(rotation)


def so3_exp(rotvec: Tensor) -> Tensor:
    """Rotations ``[..., 3, 3]`` from rotation vectors ``[..., 3]``."""
    return roma.rotvec_to_rotmat(rotvec)


def rotation_angle(r_a: Tensor, r_b: Tensor) -> Tensor:
    """Geodesic angle in radians between rotations ``[..., 3, 3]`` -> ``[...]``."""
    return roma.rotmat_geodesic_distance(r_a, r_b)


def axis_rotation(axis: str, angle: Tensor | float, dtype: torch.dtype = torch.float64) -> Tensor:
    """Rotation ``[..., 3, 3]`` by ``angle`` radians about axis ``"x"``, ``"y"`` or ``"z"``."""
    index = {"x": 0, "y": 1, "z": 2}.get(axis)
    if index is None:
        raise ValueError(f"axis: expected 'x', 'y' or 'z', got {axis!r}")
    angle = torch.as_tensor(angle, dtype=dtype)
    rotvec = torch.zeros(*angle.shape, 3, dtype=dtype)
    rotvec[..., index] = angle
    return so3_exp(rotvec)


def make_intrinsics(
    fx: float | Tensor,
    fy: float | Tensor,
    cx: float | Tensor,
    cy: float | Tensor,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Pinhole intrinsics ``[..., 3, 3]`` in pixels from focal lengths and principal point."""
    fx, fy, cx, cy = (torch.as_tensor(v, dtype=dtype) for v in (fx, fy, cx, cy))
    fx, fy, cx, cy = torch.broadcast_tensors(fx, fy, cx, cy)
    k = torch.zeros(*fx.shape, 3, 3, dtype=dtype)
    k[..., 0, 0], k[..., 1, 1], k[..., 0, 2], k[..., 1, 2] = fx, fy, cx, cy
    k[..., 2, 2] = 1.0
    return check_intrinsics("intrinsics", k)


def intrinsics_from_fov(
    fov_x_deg: float, height: int, width: int, dtype: torch.dtype = torch.float64
) -> Tensor:
    """``[3, 3]`` intrinsics for a horizontal field of view, square pixels, centred principal pt."""
    if not 0 < fov_x_deg < 180:
        raise ValueError(
            f"fov_x_deg: expected a field of view in (0, 180) degrees, got {fov_x_deg}"
        )
    if height <= 0 or width <= 0:
        raise ValueError(f"height/width: image size must be positive, got {height}x{width}")
    f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    return make_intrinsics(f, f, width / 2.0, height / 2.0, dtype)


def scale_intrinsics(k: Tensor, sx: float, sy: float) -> Tensor:
    """Intrinsics for an image resized by ``(sx, sy)`` (pixel-edge convention: c scales too)."""
    check_intrinsics("k", k)
    s = torch.tensor(
        [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]], dtype=k.dtype, device=k.device
    )
    return s @ k
