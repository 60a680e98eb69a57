"""The renderer's geometry is exact, deterministic, and agrees with geogrpo.geometry."""

import math

import pytest
import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import axis_rotation, make_pose
from geogrpo.geometry.projection import project_points, unproject_depth
from geogrpo.geometry.warp import forward_warp
from geogrpo.world.render import render
from geogrpo.world.scene import Motion, Primitive, Scene, generate_scene
from geogrpo.world.textures import Texture

NOISE = Texture("noise", ((0.8, 0.3, 0.2), (0.2, 0.6, 0.8), (0.9, 0.9, 0.4)), scale=1.5, seed=4)
EYE = torch.eye(4, dtype=torch.float64)[None]


def _room(*objects):
    return Scene(
        (
            Primitive("plane", (0, 1.5, 0), NOISE, normal=(0, -1, 0)),
            Primitive("plane", (0, 0, 5.0), Texture("checker", scale=0.8), normal=(0, 0, -1)),
            *objects,
        )
    )


def test_plane_depths_equal_their_analytic_values():
    r = render(_room(), EYE, 48, 64)
    k = r.intrinsics
    wall = r.object_id[0] == 1
    assert int(wall.sum()) > 500
    torch.testing.assert_close(
        r.depth[0][wall], torch.full_like(r.depth[0][wall], 5.0), rtol=1e-6, atol=1e-5
    )
    ground = r.object_id[0] == 0
    rows = torch.arange(48, dtype=torch.float64)[:, None].expand(48, 64)[ground]
    expected = 1.5 * float(k[1, 1]) / (rows + 0.5 - float(k[1, 2]))  # y = 1.5 on the ground
    torch.testing.assert_close(r.depth[0][ground].double(), expected, rtol=1e-5, atol=1e-5)


def test_known_point_projects_onto_the_pixel_the_renderer_hit():
    sphere = Primitive("sphere", (0.7, 0.2, 3.0), NOISE, size=(0.5, 0.5, 0.5))
    w2c = make_pose(
        axis_rotation("y", 0.1) @ axis_rotation("x", -0.05),
        torch.tensor([0.1, -0.1, 0.2], dtype=torch.float64),
    )[None]
    r = render(_room(sphere), w2c, 64, 64)
    # The point of the sphere nearest the camera projects onto a sphere pixel ...
    center = torch.tensor([[0.7, 0.2, 3.0]], dtype=torch.float64)
    pix, _ = project_points(center, r.intrinsics, w2c[0])
    u, v = (int(x) for x in pix[0].floor())
    assert int(r.object_id[0, v, u]) == 2
    # ... and every sphere pixel unprojects onto the sphere's surface.
    pts = unproject_depth(r.depth[0].double().clamp_min(1e-3), r.intrinsics, w2c[0])
    on = r.object_id[0] == 2
    radius = (pts[on] - center).norm(dim=-1)
    torch.testing.assert_close(radius, torch.full_like(radius, 0.5), atol=2e-4, rtol=0)


def _psnr(a, b):
    return float(10 * torch.log10(1.0 / (a - b).square().mean()))


def test_forward_warp_of_a_render_matches_the_render_of_the_new_view():
    scene = generate_scene(7)
    w2c = preset_trajectory("arc_left", 2, scale=0.4)  # a 30 deg orbit step about 1.6 ahead
    w2c = torch.stack([w2c[0], preset_trajectory("pan_right", 5)[1] @ w2c[0]])
    r = render(scene, w2c, 96, 96)
    warped = forward_warp(
        r.rgb[0].double(), r.depth[0].double(), r.intrinsics, w2c[0], r.intrinsics, w2c[1]
    )
    region = warped.visible & r.static_surface[1]  # measured: 87 % of the image, 35.7 dB
    assert float(region.float().mean()) > 0.6
    psnr = _psnr(warped.image[region].float(), r.rgb[1][region])
    assert psnr > 30.0, psnr


def test_same_seed_same_bytes_different_seed_different_scene():
    w2c = preset_trajectory("pan_left", 3)
    a = render(generate_scene(11), w2c, 32, 32)
    b = render(generate_scene(11), w2c, 32, 32)
    c = render(generate_scene(12), w2c, 32, 32)
    assert generate_scene(11).to_json() == generate_scene(11).to_json()
    assert torch.equal(a.rgb, b.rgb) and torch.equal(a.depth, b.depth)
    assert not torch.equal(a.rgb, c.rgb)


def test_dynamic_objects_move_as_specified_and_are_masked():
    ball = Primitive(
        "sphere",
        (-1.0, 0.5, 4.0),
        NOISE,
        size=(0.4, 0.4, 0.4),
        motion=Motion("linear", (1.0, 0.0, 0.0)),
    )
    times = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    r = render(_room(ball), EYE.expand(3, 4, 4), 64, 64, times=times)
    for i, t in enumerate(times.tolist()):
        center = torch.tensor([[-1.0 + t, 0.5, 4.0]], dtype=torch.float64)
        pix, _ = project_points(center, r.intrinsics, EYE[0])
        u, v = (int(x) for x in pix[0].floor())
        assert int(r.object_id[i, v, u]) == 2 and bool(r.dynamic[i, v, u])
    assert torch.equal(r.dynamic, r.object_id == 2)
    assert not bool(r.static_surface[r.dynamic].any())
    # Circular motion returns to the start after one period.
    spin = Primitive(
        "box",
        (0.0, 0.5, 4.0),
        NOISE,
        size=(0.3, 0.3, 0.3),
        motion=Motion("circular", radius=0.5, angular_speed=math.pi),
    )
    loop = render(_room(spin), EYE.expand(2, 4, 4), 32, 32, times=torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(loop.rgb[0], loop.rgb[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render(_room(), torch.full((1, 4, 4), float("nan")), 8, 8), "^w2c"),
        (
            lambda: render(_room(), torch.zeros(0, 4, 4), 8, 8),
            r"^w2c: expected a trajectory \[F >= 1",
        ),
        (lambda: render(_room(), EYE, 8, 8, supersample=2), "^supersample"),
        (lambda: Scene.from_json("{not json"), "^scene: not valid JSON"),
        (lambda: Scene.from_json('{"primitives": [{"kind": "cone"}]}'), "^scene: malformed"),
        (lambda: Primitive("sphere", (0, 0, float("nan")), NOISE), "^center"),
        (lambda: Primitive("box", (0, 0, 1), NOISE, size=(1, 0, 1)), "^size"),
        (lambda: Texture("marble"), "^kind"),
        (lambda: generate_scene(0, "mars"), "^domain"),
    ],
)
def test_bad_input_gives_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_camera_inside_an_object_is_fine():
    box = Primitive("box", (0.0, 0.0, 0.0), NOISE, size=(1.0, 1.0, 1.0))
    r = render(_room(box), EYE, 16, 16)
    assert bool((r.object_id == 2).all())  # we see the inside of the box
    torch.testing.assert_close(r.depth[0], torch.ones(16, 16), atol=1e-5, rtol=0)


def test_scene_json_round_trip():
    scene = generate_scene(3, "heldout_photo", dynamic=True)
    assert Scene.from_json(scene.to_json()) == scene
