"""SE(3)/SO(3) helpers: round trips (hypothesis), conventions, bad input."""

import math

import pytest
import torch
from hypothesis import given, settings

from geogrpo.camera.se3 import (
    axis_rotation,
    c2w_to_w2c,
    camera_centers,
    check_pose,
    intrinsics_from_fov,
    invert_pose,
    make_intrinsics,
    make_pose,
    opengl_c2w_to_opencv_c2w,
    relative_to_first,
    rotation_angle,
    so3_exp,
    so3_log,
    w2c_to_c2w,
)
from tests.camera.strategies import poses, rotvecs, trajectories

FAST = settings(max_examples=40, deadline=None)


@FAST
@given(rotvecs())
def test_so3_log_inverts_exp(v):
    torch.testing.assert_close(so3_log(so3_exp(v)), v, atol=1e-9, rtol=1e-9)


@FAST
@given(poses())
def test_w2c_c2w_round_trip_and_inverse(pose):
    torch.testing.assert_close(w2c_to_c2w(c2w_to_w2c(pose)), pose)
    torch.testing.assert_close(invert_pose(pose) @ pose, torch.eye(4, dtype=torch.float64))


@FAST
@given(poses())
def test_opengl_conversion_is_an_involution_and_flips_the_view_axis(pose):
    once = opengl_c2w_to_opencv_c2w(pose)
    torch.testing.assert_close(opengl_c2w_to_opencv_c2w(once), pose)
    # OpenGL cameras look along their -z; OpenCV along +z: the world view direction is shared.
    torch.testing.assert_close(once[:3, 2], -pose[:3, 2])
    torch.testing.assert_close(once[:3, 3], pose[:3, 3])


@FAST
@given(trajectories())
def test_relative_to_first_starts_at_identity_and_keeps_relative_motion(traj):
    rel = relative_to_first(traj)
    torch.testing.assert_close(rel[0], torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(rel[1] @ invert_pose(rel[0]), traj[1] @ invert_pose(traj[0]))


def test_camera_center_closed_form():
    r = axis_rotation("y", math.pi / 2)
    w2c = make_pose(r, torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64))
    # x_cam = R c + t = 0 at the centre, so c = -R^T t = -(-5, 0, 0).
    torch.testing.assert_close(
        camera_centers(w2c), torch.tensor([5.0, 0.0, 0.0], dtype=torch.float64)
    )


def test_rotation_angle_and_axis_rotation():
    a = axis_rotation("z", 0.3)
    b = axis_rotation("z", -0.2)
    assert float(rotation_angle(a, b)) == pytest.approx(0.5)


def test_intrinsics_from_fov():
    k = intrinsics_from_fov(90.0, 48, 64)
    assert float(k[0, 0]) == pytest.approx(32.0)
    assert k[:2, 2].tolist() == [32.0, 24.0]


@pytest.mark.parametrize(
    ("pose", "message"),
    [
        (torch.eye(3), r"^w2c: expected shape \[\.\.\., 4, 4\]"),
        (torch.full((4, 4), float("nan")), "^w2c: .*NaN"),
        (torch.diag(torch.tensor([2.0, 1.0, 1.0, 1.0])), "^w2c: rotation blocks"),
        (torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0])), "^w2c: rotation blocks"),
        (torch.ones(4, 4), "^w2c: the last row"),
    ],
)
def test_bad_poses_are_rejected_with_the_argument_name(pose, message):
    with pytest.raises(ValueError, match=message):
        check_pose("w2c", pose)


def test_bad_intrinsics_are_rejected():
    with pytest.raises(ValueError, match="^intrinsics: focal"):
        make_intrinsics(-1.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="^fov_x_deg"):
        intrinsics_from_fov(180.0, 4, 4)
