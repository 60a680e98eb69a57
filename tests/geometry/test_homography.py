"""Plane homographies and homography flows: sign conventions, oracles, bad input."""

import math

import pytest
import torch

from geogrpo.camera.se3 import (
    axis_rotation,
    invert_pose,
    make_intrinsics,
    make_pose,
    scale_intrinsics,
    so3_exp,
)
from geogrpo.geometry.homography import (
    fronto_parallel_homography,
    homography_flow,
    plane_homography,
    scale_flow_to,
    trajectory_homography_flow,
)
from geogrpo.geometry.projection import pixel_centers, project_points

D = torch.float64
EYE3 = torch.eye(3, dtype=D)
EYE4 = torch.eye(4, dtype=D)
K = make_intrinsics(100.0, 110.0, 32.0, 24.0)  # 64 x 48 image


def _translation(x: float, y: float, z: float) -> torch.Tensor:
    return torch.tensor([x, y, z], dtype=D)


def test_fronto_parallel_translation_gives_uniform_flow_with_known_sign():
    # Camera CENTRE moves right by 0.2 -> w2c translation t_x = -0.2 -> du = f t_x / z = -10.
    depth, centre_shift = 2.0, 0.2
    w2c_dst = make_pose(EYE3, _translation(-centre_shift, 0.0, 0.0))
    flow = homography_flow(fronto_parallel_homography(K, EYE4, w2c_dst, depth), 48, 64)
    assert flow.shape == (48, 64, 2)
    expected_du = -100.0 * centre_shift / depth
    assert (flow[..., 0] - expected_du).abs().max() < 1e-9
    assert flow[..., 1].abs().max() < 1e-9
    # Camera moving down (+y centre) makes the scene move up: dv = -f_y * 0.1 / depth.
    w2c_down = make_pose(EYE3, _translation(0.0, -0.1, 0.0))
    flow_down = homography_flow(fronto_parallel_homography(K, EYE4, w2c_down, depth), 48, 64)
    assert (flow_down[..., 1] - (-110.0 * 0.1 / depth)).abs().max() < 1e-9


def test_forward_motion_zooms_in_about_the_principal_point():
    # Centre moves forward by c: x_dst = (x - c_pp) * depth / (depth - c) + c_pp.
    depth, forward = 2.0, 0.5
    w2c_dst = make_pose(EYE3, _translation(0.0, 0.0, -forward))
    flow = homography_flow(fronto_parallel_homography(K, EYE4, w2c_dst, depth), 48, 64)
    p = pixel_centers(48, 64, D)
    pp = torch.tensor([32.0, 24.0], dtype=D)
    torch.testing.assert_close(flow, (p - pp) * (depth / (depth - forward) - 1.0))


@pytest.mark.parametrize("depth", [0.5, 3.0, 1e4])
def test_pure_rotation_is_the_infinite_homography(depth):
    r = axis_rotation("y", 0.1)
    w2c_dst = make_pose(r, torch.zeros(3, dtype=D))
    h = fronto_parallel_homography(K, EYE4, w2c_dst, depth)
    torch.testing.assert_close(h, K @ r @ torch.linalg.inv(K), atol=1e-12, rtol=0)
    tilted = plane_homography(K, K, EYE4, w2c_dst, torch.tensor([0.3, -0.2, 1.0], dtype=D), depth)
    torch.testing.assert_close(tilted, h, atol=1e-12, rtol=0)
    # Sign: a positive rotation about y (x_cam = R x_world) moves the optical axis point right.
    centre = h @ torch.tensor([32.0, 24.0, 1.0], dtype=D)
    assert centre[0] / centre[2] == pytest.approx(32.0 + 100.0 * math.tan(0.1), abs=1e-9)


def test_points_on_the_plane_land_where_the_homography_maps_them():
    g = torch.Generator().manual_seed(0)
    batch, n_pts = 5, 50
    w2c_src = make_pose(
        so3_exp(0.3 * torch.randn(batch, 3, generator=g, dtype=D)),
        torch.randn(batch, 3, generator=g, dtype=D),
    )
    w2c_dst = make_pose(
        so3_exp(0.3 * torch.randn(batch, 3, generator=g, dtype=D)),
        torch.randn(batch, 3, generator=g, dtype=D),
    )
    k_src = make_intrinsics(90.0, 95.0, 30.0, 20.0)
    k_dst = make_intrinsics(120.0, 118.0, 40.0, 33.0)
    normal = torch.randn(batch, 3, generator=g, dtype=D)
    normal[:, 2] = normal[:, 2].abs() + 1.0  # plane faces the source camera
    distance = -(2.0 + torch.rand(batch, generator=g, dtype=D))  # in front: n^T X = -d > 0
    h = plane_homography(k_src, k_dst, w2c_src, w2c_dst, normal, distance)
    assert h.shape == (batch, 3, 3)
    # Source pixels -> rays -> intersection with the plane (source frame) -> world.
    pix = 60.0 * torch.rand(batch, n_pts, 2, generator=g, dtype=D)
    pix_h = torch.cat([pix, torch.ones(batch, n_pts, 1, dtype=D)], dim=-1)
    rays = pix_h @ torch.linalg.inv(k_src).T  # [B, N, 3]
    lam = -distance[:, None] / (rays @ normal[:, :, None]).squeeze(-1)
    x_src = rays * lam[..., None]
    torch.testing.assert_close(
        x_src @ normal[:, :, None], -distance[:, None, None].expand(-1, n_pts, 1)
    )
    c2w_src = invert_pose(w2c_src)
    x_world = x_src @ c2w_src[:, :3, :3].transpose(-1, -2) + c2w_src[:, None, :3, 3]
    expected, _ = project_points(x_world, k_dst, w2c_dst)
    mapped = pix_h @ h.transpose(-1, -2)
    torch.testing.assert_close(mapped[..., :2] / mapped[..., 2:], expected, atol=1e-9, rtol=0)


def test_identity_has_zero_flow():
    assert homography_flow(EYE3, 7, 9).abs().max() == 0
    same = plane_homography(K, K, EYE4, EYE4, torch.tensor([0.0, 0.0, 1.0], dtype=D), -1.0)
    assert homography_flow(same, 48, 64).abs().max() < 1e-12


def test_trajectory_flow_matches_pairwise_homographies():
    centres = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.2], [0.2, -0.05, 0.5]], dtype=D)
    r = axis_rotation("y", torch.tensor([0.0, 0.02, 0.05], dtype=D))
    w2c = make_pose(r, -(r @ centres[..., None]).squeeze(-1))  # centres -R^T t = centres
    flows = trajectory_homography_flow(K, w2c, 3.0, 48, 64)
    assert flows.shape == (2, 48, 64, 2)
    for f in range(2):
        h = fronto_parallel_homography(K, w2c[f], w2c[f + 1], 3.0)
        torch.testing.assert_close(flows[f], homography_flow(h, 48, 64))
    per_frame_k = K.expand(3, 3, 3)
    torch.testing.assert_close(trajectory_homography_flow(per_frame_k, w2c, 3.0, 48, 64), flows)


def test_scale_flow_to_latent_matches_flow_from_scaled_intrinsics():
    # Translation + forward motion facing a fronto-parallel plane is affine: resampling is exact.
    k_full = make_intrinsics(80.0, 80.0, 64.0, 48.0)  # 128 x 96
    w2c = torch.stack([EYE4, make_pose(EYE3, _translation(-0.1, 0.05, -0.3))])
    full = trajectory_homography_flow(k_full, w2c, 2.0, 96, 128)
    latent = scale_flow_to(full, 12, 16)
    assert latent.shape == (1, 12, 16, 2)
    k_latent = scale_intrinsics(k_full, 1 / 8, 1 / 8)
    expected = trajectory_homography_flow(k_latent, w2c, 2.0, 12, 16)
    torch.testing.assert_close(latent, expected, atol=1e-9, rtol=0)


def test_bad_input_raises_value_error_naming_the_argument():
    normal = torch.tensor([0.0, 0.0, 1.0], dtype=D)
    with pytest.raises(ValueError, match="^K_src"):
        plane_homography(torch.eye(3, 4, dtype=D), K, EYE4, EYE4, normal, -1.0)
    with pytest.raises(ValueError, match="^K_dst"):
        plane_homography(K, K * float("nan"), EYE4, EYE4, normal, -1.0)
    bad_pose = EYE4.clone()
    bad_pose[0, 3] = float("inf")
    with pytest.raises(ValueError, match="^w2c_src"):
        plane_homography(K, K, bad_pose, EYE4, normal, -1.0)
    with pytest.raises(ValueError, match="^w2c_dst"):
        plane_homography(K, K, EYE4, torch.eye(3, dtype=D), normal, -1.0)
    with pytest.raises(ValueError, match="^plane_normal"):
        plane_homography(K, K, EYE4, EYE4, normal[:2], -1.0)
    with pytest.raises(ValueError, match="^plane_normal"):
        plane_homography(K, K, EYE4, EYE4, torch.zeros(3, dtype=D), -1.0)
    with pytest.raises(ValueError, match="^plane_distance"):
        plane_homography(K, K, EYE4, EYE4, normal, 0.0)
    with pytest.raises(ValueError, match="^plane_distance"):
        plane_homography(K, K, EYE4, EYE4, normal, float("nan"))
    with pytest.raises(ValueError, match="^depth"):
        fronto_parallel_homography(K, EYE4, EYE4, -2.0)
    with pytest.raises(ValueError, match="^H"):
        homography_flow(torch.eye(4, dtype=D), 4, 4)
    with pytest.raises(ValueError, match="^H"):
        homography_flow(EYE3 * float("nan"), 4, 4)
    with pytest.raises(ValueError, match="^height"):
        homography_flow(EYE3, 0, 4)
    with pytest.raises(ValueError, match="^w2c"):
        trajectory_homography_flow(K, EYE4[None], 1.0, 4, 4)
    with pytest.raises(ValueError, match="^K"):
        trajectory_homography_flow(K.expand(5, 3, 3), EYE4.expand(3, 4, 4), 1.0, 4, 4)
    with pytest.raises(ValueError, match="^flow"):
        scale_flow_to(torch.zeros(4, 4, 3), 2, 2)
    with pytest.raises(ValueError, match="^width"):
        scale_flow_to(torch.zeros(4, 4, 2), 2, 0)
