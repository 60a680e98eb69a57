"""Camera paths through the procedural world, as world-to-camera ``[F, 4, 4]`` from a seed.

All paths start at the origin looking down +z (the world frame is the first camera's), so they
compose with :mod:`geogrpo.camera` presets and with relative target paths.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from geogrpo.camera.presets import PRESETS, look_at_c2w, preset_trajectory
from geogrpo.camera.se3 import c2w_to_w2c, make_pose, so3_exp
from geogrpo.utils.checks import check_int_range
from geogrpo.world.scene import uniform

PATH_KINDS = ("walking", "game", "orbit", *PRESETS)


def walking_path(num_frames: int, rng: torch.Generator, speed: float = 1.2) -> Tensor:
    """City-walk footage: forward at ``speed`` units/s (16 fps) with gentle yaw and head bob."""
    check_int_range("num_frames", num_frames, 2)
    t = torch.arange(num_frames, dtype=torch.float64) / 16.0
    yaw_rate = uniform(rng, -0.25, 0.25)  # rad/s
    sway = uniform(rng, 0.02, 0.06)
    yaw = yaw_rate * t + sway * torch.sin(2 * math.pi * 0.5 * t)
    forward = speed * uniform(rng, 0.7, 1.1)
    heading = torch.stack([torch.sin(yaw), 0 * yaw, torch.cos(yaw)], dim=-1)
    step = forward / 16.0
    centers = torch.cumsum(step * heading, dim=0) - step * heading[0]
    centers[:, 1] = 0.03 * torch.sin(2 * math.pi * 1.8 * t)  # footsteps
    pitch = 0.02 * torch.sin(2 * math.pi * 1.8 * t + 0.5)
    rot = so3_exp(torch.stack([pitch, yaw, 0 * yaw], dim=-1))
    return c2w_to_w2c(make_pose(rot, centers))


def game_path(num_frames: int, rng: torch.Generator) -> Tensor:
    """Game-style smooth random motion: low-frequency sums of sines in position and yaw/pitch."""
    check_int_range("num_frames", num_frames, 2)
    s = torch.linspace(0, 1, num_frames, dtype=torch.float64)

    def smooth(amplitude: float) -> Tensor:
        out = torch.zeros_like(s)
        for k in (1, 2):
            a, phase = uniform(rng, -amplitude, amplitude) / k, uniform(rng, 0, 2 * math.pi)
            out = out + a * (torch.sin(math.pi * k * s + phase) - math.sin(phase))
        return out

    centers = torch.stack([smooth(1.0), smooth(0.2), smooth(1.5)], dim=-1)
    angles = torch.stack([smooth(0.15), smooth(0.5), smooth(0.05)], dim=-1)
    return c2w_to_w2c(make_pose(so3_exp(angles), centers))


def orbit_path(num_frames: int, degrees: float, center_depth: float = 6.0) -> Tensor:
    """Extreme orbit of ``degrees`` about the point ``center_depth`` ahead (DEVIS-style views)."""
    check_int_range("num_frames", num_frames, 2)
    phi = torch.linspace(0, math.radians(degrees), num_frames, dtype=torch.float64)
    center = torch.stack(
        [-center_depth * torch.sin(phi), 0 * phi, center_depth * (1 - torch.cos(phi))], dim=-1
    )
    target = torch.tensor([0.0, 0.0, center_depth], dtype=torch.float64).expand_as(center)
    return c2w_to_w2c(look_at_c2w(center, target))


def make_path(kind: str, num_frames: int, seed: int = 0, scale: float = 1.0) -> Tensor:
    """Any path by name: ``walking``, ``game``, ``orbit`` or one of the ten presets."""
    if kind not in PATH_KINDS:
        raise ValueError(f"kind: unknown path {kind!r}; choose one of {', '.join(PATH_KINDS)}")
    rng = torch.Generator().manual_seed(seed)
    if kind == "walking":
        return walking_path(num_frames, rng)
    if kind == "game":
        return game_path(num_frames, rng)
    if kind == "orbit":
        return orbit_path(num_frames, uniform(rng, -90.0, 90.0))
    return preset_trajectory(kind, num_frames, scale)
