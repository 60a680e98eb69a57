"""Projection round trips, z-buffered forward warping, point-cloud rendering."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geogrpo.camera.se3 import axis_rotation, invert_pose, make_intrinsics, make_pose
from geogrpo.geometry.homography import fronto_parallel_homography
from geogrpo.geometry.projection import (
    pixel_centers,
    plucker_rays,
    project_points,
    unproject_depth,
)
from geogrpo.geometry.warp import forward_warp, render_point_cloud, splat_points
from tests.camera.strategies import poses

K = make_intrinsics(40.0, 42.0, 16.0, 12.0)
EYE = torch.eye(4, dtype=torch.float64)


@settings(max_examples=25, deadline=None)
@given(poses(), st.floats(0.5, 20.0))
def test_projection_of_unprojection_is_the_pixel(w2c, z):
    depth = torch.full((6, 8), z, dtype=torch.float64) + torch.rand(6, 8, dtype=torch.float64)
    pts = unproject_depth(depth, K, w2c)
    pix, zz = project_points(pts.reshape(-1, 3), K, w2c)
    torch.testing.assert_close(pix, pixel_centers(6, 8, torch.float64).reshape(-1, 2))
    torch.testing.assert_close(zz, depth.reshape(-1))


@settings(max_examples=25, deadline=None)
@given(poses(), st.floats(0.5, 20.0))
def test_plucker_rays_pass_through_their_cell_centres(w2c, s):
    rays = plucker_rays(invert_pose(w2c), K, (24, 32), (3, 4))  # cells of 8 x 8 pixels
    d, m = rays[..., :3], rays[..., 3:]
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(3, 4, dtype=torch.float64))
    origin = invert_pose(w2c)[:3, 3]
    pix, z = project_points((origin + s * d).reshape(-1, 3), K, w2c)
    centres = pixel_centers(3, 4, torch.float64) * 8
    torch.testing.assert_close(pix, centres.reshape(-1, 2))
    assert bool((z > 0).all())
    torch.testing.assert_close(m, torch.linalg.cross(origin.expand_as(d), d, dim=-1))
    torch.testing.assert_close((m * d).sum(-1), torch.zeros(3, 4, dtype=torch.float64))


def test_plucker_rays_of_the_identity_camera():
    rays = plucker_rays(EYE, K, (24, 32), (1, 1))[0, 0]
    torch.testing.assert_close(rays, torch.tensor([0, 0, 1, 0, 0, 0], dtype=torch.float64))
    moved = plucker_rays(
        make_pose(
            torch.eye(3, dtype=torch.float64), torch.tensor([1.0, 0, 0], dtype=torch.float64)
        ),
        K,
        (24, 32),
        (1, 1),
    )[0, 0]
    # the camera centre at x = 1 looking along z: moment o x d = (1, 0, 0) x (0, 0, 1)
    torch.testing.assert_close(moved, torch.tensor([0, 0, 1, 0, -1, 0], dtype=torch.float64))


def test_unproject_closed_form():
    depth = torch.full((24, 32), 2.0, dtype=torch.float64)
    pts = unproject_depth(depth, K)
    # Pixel (0, 0) centre (0.5, 0.5): x = (0.5 - 16) / 40 * 2, y = (0.5 - 12) / 42 * 2.
    torch.testing.assert_close(
        pts[0, 0], torch.tensor([-15.5 / 20, -11.5 / 21, 2.0], dtype=torch.float64)
    )


def _textured(h=24, w=32, seed=0):
    return torch.rand(h, w, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_identity_warp_returns_the_input():
    img = _textured()
    depth = 1.0 + torch.rand(24, 32, dtype=torch.float64)
    out = forward_warp(img, depth, K, EYE, K, EYE)
    assert torch.equal(out.image, img)
    assert bool(out.visible.all())
    torch.testing.assert_close(out.depth, depth)


def test_fronto_parallel_plane_shifts_by_f_t_over_z():
    # Camera moves +0.5 along x (w2c t = -0.5) in front of a plane at z = 5: content shifts
    # left by fx * 0.5 / 5 = 4 px exactly.
    img = _textured()
    depth = torch.full((24, 32), 5.0, dtype=torch.float64)
    w2c_dst = make_pose(
        torch.eye(3, dtype=torch.float64), torch.tensor([-0.5, 0.0, 0.0], dtype=torch.float64)
    )
    out = forward_warp(img, depth, K, EYE, K, w2c_dst)
    assert torch.equal(out.image[:, :-4], img[:, 4:])
    assert bool(out.holes[:, -4:].all()) and not bool(out.holes[:, :-4].any())


def test_warped_plane_lands_where_the_plane_homography_says():
    # A general small motion (rotation + translation) in front of a plane at z = 5: every
    # visible target pixel holds the source pixel that the homography maps into it.
    depth = torch.full((24, 32), 5.0, dtype=torch.float64)
    ids = torch.arange(24 * 32, dtype=torch.float64).view(24, 32, 1)
    w2c_dst = make_pose(
        axis_rotation("y", 0.03) @ axis_rotation("x", -0.02),
        torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64),
    )
    out = forward_warp(ids, depth, K, EYE, K, w2c_dst)
    h = fronto_parallel_homography(K, EYE, w2c_dst, 5.0)
    src = pixel_centers(24, 32, torch.float64).reshape(-1, 2)
    mapped = torch.cat([src, torch.ones(24 * 32, 1, dtype=torch.float64)], dim=1) @ h.T
    cols, rows = torch.floor(mapped[:, :2] / mapped[:, 2:]).long().unbind(-1)
    visible = out.visible.nonzero()
    assert visible.shape[0] > 24 * 32 * 0.6
    for r, c in visible.tolist():
        sid = int(out.image[r, c, 0])
        assert (int(rows[sid]), int(cols[sid])) == (r, c)


def test_nearest_surface_wins_in_the_z_buffer():
    # Two points land on the same pixel; the nearer one's colour must win, in either order.
    pts = torch.tensor([[[0.0, 0.0, 2.0], [0.0, 0.0, 4.0]]], dtype=torch.float64)
    cols = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    for order in ([0, 1], [1, 0]):
        out = splat_points(pts[:, order], cols[:, order], K, EYE[None], 24, 32)
        assert out.image[0, 12, 16].tolist() == [1.0, 0.0, 0.0]
        assert float(out.depth[0, 12, 16]) == 2.0
    assert int(out.visible.sum()) == 1


def test_batched_video_warp_matches_per_frame_warps():
    video = torch.stack([_textured(seed=s) for s in range(3)])  # [F, H, W, 3]
    depth = 2.0 + torch.rand(3, 24, 32, dtype=torch.float64)
    w2c_dst = make_pose(
        axis_rotation("y", torch.tensor([0.0, 0.05, 0.1])), torch.zeros(3, 3, dtype=torch.float64)
    )
    batched = forward_warp(video, depth, K, EYE, K, w2c_dst)
    for f in range(3):
        single = forward_warp(video[f], depth[f], K, EYE, K, w2c_dst[f])
        assert torch.equal(batched.image[f], single.image)
        assert torch.equal(batched.visible[f], single.visible)


def test_point_cloud_rendering_along_a_trajectory():
    depth = torch.full((24, 32), 3.0, dtype=torch.float64)
    pts = unproject_depth(depth, K).reshape(-1, 3)
    cols = _textured().reshape(-1, 3)
    w2c = torch.stack(
        [
            EYE,
            make_pose(
                torch.eye(3, dtype=torch.float64),
                torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
            ),
        ]
    )
    out = render_point_cloud(pts, cols, K, w2c, 24, 32)
    assert out.image.shape == (2, 24, 32, 3)
    assert torch.equal(out.image[0], cols.view(24, 32, 3))
    # Stepping back shrinks the plane: the border becomes holes, the centre stays covered.
    assert bool(out.holes[1, 0].all()) and not bool(out.holes[1, 12, 16])
    torch.testing.assert_close(
        out.depth[1][out.visible[1]], torch.full_like(out.depth[1][out.visible[1]], 4.0)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depth": torch.zeros(24, 32)}, "^depth: must be positive"),
        ({"depth": torch.ones(20, 32)}, r"^depth: expected shape \(24, 32\)"),
        ({"image": torch.full((24, 32, 3), float("nan"))}, "^image"),
        ({"w2c_dst": torch.ones(4, 4)}, "^w2c"),
        ({"intrinsics_src": torch.eye(3) * 0}, "^intrinsics"),
    ],
)
def test_bad_input_names_the_argument(kwargs, message):
    args = {
        "image": torch.rand(24, 32, 3),
        "depth": torch.ones(24, 32),
        "intrinsics_src": K.float(),
        "w2c_src": EYE.float(),
        "intrinsics_dst": K.float(),
        "w2c_dst": EYE.float(),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        forward_warp(**args)
