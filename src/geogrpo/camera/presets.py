"""The ten test camera paths of ReCamMaster, as scale-free definitions with a scale argument.

Every path starts at the identity (frame 0 is the source camera) and is linear in the frame index
``s = f / (F - 1)``: angles and distances grow linearly, and where a path keeps a point in view
the rotation is whatever looking at that point requires. Camera axes are OpenCV (y down), so
"up" is world ``-y``. Distances are in units of ``scale`` (metres for metric scenes).

| name | motion at the last frame |
|---|---|
| pan_right / pan_left | yaw +-20 deg about the camera's y axis |
| tilt_up / tilt_down | pitch +-10 deg about the x axis |
| zoom_in / zoom_out | dolly +-2 along the optical axis (the camera moves; intrinsics fixed) |
| translate_up / translate_down | move +-1 vertically, tilting to keep (0, 0, 4) centred |
| arc_left / arc_right | orbit 30 deg about (0, 0, 4), keeping it centred |
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from geogrpo.camera.se3 import axis_rotation, c2w_to_w2c, make_pose
from geogrpo.utils.checks import check_int_range, check_positive

PRESETS = (
    "pan_right",
    "pan_left",
    "tilt_up",
    "tilt_down",
    "zoom_in",
    "zoom_out",
    "translate_up",
    "translate_down",
    "arc_left",
    "arc_right",
)
PAN_DEG, TILT_DEG, DOLLY, LIFT, ARC_DEG, PIVOT = 20.0, 10.0, 2.0, 1.0, 30.0, 4.0


def look_at_c2w(center: Tensor, target: Tensor) -> Tensor:
    """Camera-to-world ``[..., 4, 4]`` at ``center`` looking at ``target``, no roll (up = -y)."""
    forward = target - center
    forward = forward / forward.norm(dim=-1, keepdim=True)
    down = center.new_tensor([0.0, 1.0, 0.0]).expand_as(forward)
    right = torch.linalg.cross(down, forward)
    right = right / right.norm(dim=-1, keepdim=True)
    down = torch.linalg.cross(forward, right)
    return make_pose(torch.stack([right, down, forward], dim=-1), center)


def preset_trajectory(
    name: str, num_frames: int, scale: float = 1.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    """World-to-camera trajectory ``[F, 4, 4]`` of a named preset (see the module table)."""
    if name not in PRESETS:
        raise ValueError(f"name: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    check_int_range("num_frames", num_frames, 2)
    k = check_positive("scale", scale)
    s = torch.linspace(0.0, 1.0, num_frames, dtype=dtype)  # [F]
    zeros = torch.zeros(num_frames, 3, dtype=dtype)
    sign = 1.0 if name.endswith(("right", "up", "in")) else -1.0
    if name.startswith("pan"):
        c2w = make_pose(axis_rotation("y", sign * math.radians(PAN_DEG) * s, dtype), zeros)
    elif name.startswith("tilt"):
        # Rotating about +x turns the optical axis toward -y, which is up in OpenCV axes.
        c2w = make_pose(axis_rotation("x", sign * math.radians(TILT_DEG) * s, dtype), zeros)
    elif name.startswith("zoom"):
        center = zeros.clone()
        center[:, 2] = sign * DOLLY * k * s
        c2w = make_pose(torch.eye(3, dtype=dtype).expand(num_frames, 3, 3), center)
    elif name.startswith("translate"):
        center = zeros.clone()
        center[:, 1] = -sign * LIFT * k * s
        target = torch.tensor([0.0, 0.0, PIVOT * k], dtype=dtype).expand(num_frames, 3)
        c2w = look_at_c2w(center, target)
    else:
        # arc_left: the camera moves to its left (-x) around the pivot and turns right to face it.
        phi = math.radians(ARC_DEG) * s
        center = torch.stack(
            [sign * PIVOT * k * torch.sin(phi), 0 * phi, PIVOT * k * (1 - torch.cos(phi))], dim=-1
        )
        target = torch.tensor([0.0, 0.0, PIVOT * k], dtype=dtype).expand(num_frames, 3)
        c2w = look_at_c2w(center, target)
    return c2w_to_w2c(c2w)
