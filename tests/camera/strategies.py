"""Hypothesis strategies for random cameras, shared by the camera and geometry tests."""

import math

import torch
from hypothesis import strategies as st

from geogrpo.camera.se3 import make_pose, so3_exp

finite = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False)


@st.composite
def rotvecs(draw, max_angle=math.pi - 1e-3):
    """Rotation vectors with angle below ``max_angle`` (log is unique there)."""
    axis = torch.tensor([draw(finite), draw(finite), draw(finite)], dtype=torch.float64)
    if float(axis.norm()) < 1e-3:
        axis = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    angle = draw(st.floats(min_value=0.0, max_value=max_angle))
    return axis / axis.norm() * angle


@st.composite
def poses(draw):
    """Random rigid transforms ``[4, 4]`` in float64."""
    t = torch.tensor([draw(finite), draw(finite), draw(finite)], dtype=torch.float64)
    return make_pose(so3_exp(draw(rotvecs())), t)


@st.composite
def trajectories(draw, min_frames=2, max_frames=6):
    """Random world-to-camera trajectories ``[F, 4, 4]``."""
    n = draw(st.integers(min_value=min_frames, max_value=max_frames))
    return torch.stack([draw(poses()) for _ in range(n)])
