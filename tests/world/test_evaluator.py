"""Ground-truth camera evaluator on an exactly rendered synthetic room (no world renderer needed).

The room is a textured back wall at z = 6 and a ground plane at y = 1.5 (OpenCV axes: y down),
ray cast analytically from pixel centres with 3x3 supersampling, so images and metric depth are
exact at any camera.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F_nn

from geogrpo.camera.metrics import rot_err, trans_err
from geogrpo.camera.se3 import (
    camera_centers,
    intrinsics_from_fov,
    invert_pose,
    make_pose,
    rotation_angle,
    so3_exp,
)
from geogrpo.geometry.projection import pixel_centers
from geogrpo.world.evaluator import CameraEvaluation, evaluate_cameras

D = torch.float64
SIZE = 96
K = intrinsics_from_fov(60.0, SIZE, SIZE)
SKY = 0.5
CELL = 0.4  # value-noise cell in scene units: >= 5 px on the wall at 96x96
# Planes: (normal axis, offset, in-plane axes, extents of the in-plane axes).
WALL = (2, 6.0, (0, 1), ((-6.0, 6.0), (-2.5, 1.5)))
GROUND = (1, 1.5, (0, 2), ((-6.0, 6.0), (-1.0, 6.0)))


def value_noise(extent: tuple[tuple[float, float], ...], seed: int) -> torch.Tensor:
    """``[1, 3, h, w]`` smooth RGB texture: a coarse random grid upsampled bicubically."""
    g = torch.Generator().manual_seed(seed)
    cells = [math.ceil((hi - lo) / CELL) + 1 for lo, hi in extent]
    coarse = torch.rand(1, 3, cells[1], cells[0], generator=g, dtype=D)
    fine = F_nn.interpolate(coarse, scale_factor=8, mode="bicubic", align_corners=True)
    return fine.clamp(0, 1)


def make_room(seed: int = 0) -> list[tuple[tuple, torch.Tensor]]:
    return [(WALL, value_noise(WALL[3], seed)), (GROUND, value_noise(GROUND[3], seed + 1))]


def render(room, w2c: torch.Tensor, ss: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``[H, W, 3]`` (float32) and z-depth ``[H, W]`` (inf = sky) of ``room`` at ``w2c``."""
    offsets = (torch.arange(ss, dtype=D) + 0.5) / ss - 0.5
    dv, du = torch.meshgrid(offsets, offsets, indexing="ij")
    uv = pixel_centers(SIZE, SIZE, D)[:, :, None, :] + torch.stack([du, dv], -1).reshape(-1, 2)
    rays = torch.cat([uv, torch.ones_like(uv[..., :1])], -1) @ torch.linalg.inv(K).T  # z = 1
    c2w = invert_pose(w2c)
    dirs = rays @ c2w[:3, :3].T  # [H, W, S, 3] world
    origin = c2w[:3, 3]
    depth = torch.full(dirs.shape[:-1], math.inf, dtype=D)
    color = torch.full((*dirs.shape[:-1], 3), SKY, dtype=D)
    for (axis, offset, (a, b), ((a0, a1), (b0, b1))), texture in room:
        t = (offset - origin[axis]) / dirs[..., axis]
        hit = origin + t[..., None] * dirs
        ok = (t > 0) & (hit[..., a] >= a0) & (hit[..., a] <= a1)
        ok &= (hit[..., b] >= b0) & (hit[..., b] <= b1) & (t < depth)
        grid = torch.stack(
            [2 * (hit[..., a] - a0) / (a1 - a0) - 1, 2 * (hit[..., b] - b0) / (b1 - b0) - 1], -1
        )
        sampled = F_nn.grid_sample(
            texture, grid.reshape(1, SIZE, -1, 2).nan_to_num(), align_corners=True
        )
        sampled = sampled[0].permute(1, 2, 0).reshape(color.shape)
        depth = torch.where(ok, t, depth)  # rays have camera z = 1, so t is the z-depth
        color = torch.where(ok[..., None], sampled, color)
    centre = ss * ss // 2
    return color.mean(-2).float(), depth[..., centre]


def render_clip(room, w2c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = [render(room, p) for p in w2c]
    return torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out])


def requested_path(num_frames: int) -> torch.Tensor:
    """A gentle dolly-and-pan: centres from (-0.5, 0, 0) to (0.5, -0.2, 1), yaw -5 to 5 deg."""
    s = torch.linspace(0, 1, num_frames, dtype=D)
    yaw = torch.deg2rad(-5 + 10 * s)
    rot = so3_exp(torch.stack([torch.zeros_like(s), yaw, torch.zeros_like(s)], -1))
    centres = torch.stack([s - 0.5, -0.2 * s, s], -1)
    return make_pose(rot, -(rot @ centres[..., None])[..., 0])


def perturbations(num_frames: int, seed: int = 0) -> torch.Tensor:
    """Camera-frame corrections ``[F, 4, 4]``: 1-3 deg about random axes, 0.05-0.2 units."""
    g = torch.Generator().manual_seed(seed)
    axes = F_nn.normalize(torch.randn(num_frames, 3, generator=g, dtype=D), dim=-1)
    angles = torch.deg2rad(1 + 2 * torch.rand(num_frames, 1, generator=g, dtype=D))
    dirs = F_nn.normalize(torch.randn(num_frames, 3, generator=g, dtype=D), dim=-1)
    lengths = 0.05 + 0.15 * torch.rand(num_frames, 1, generator=g, dtype=D)
    return make_pose(so3_exp(axes * angles), dirs * lengths)


@pytest.fixture(scope="module")
def room():
    return make_room(0)


@pytest.fixture(scope="module")
def perturbed(room):
    """Requested path, true actual cameras, the frames at them and the renders at the requests."""
    requested = requested_path(12)
    actual = perturbations(12) @ requested
    frames, _ = render_clip(room, actual)
    references, depth = render_clip(room, requested)
    return requested, actual, frames, references, depth


def pose_errors(w2c_a: torch.Tensor, w2c_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame rotation angle (degrees) and camera-centre distance between two trajectories."""
    rot = torch.rad2deg(rotation_angle(w2c_a[:, :3, :3], w2c_b[:, :3, :3]))
    return rot, (camera_centers(w2c_a) - camera_centers(w2c_b)).norm(dim=-1)


@pytest.mark.parametrize("per_frame_k", [False, True])
def test_frames_equal_to_the_renders_give_zero_error(room, per_frame_k):
    requested = requested_path(3)
    references, depth = render_clip(room, requested)
    depth[0, :5] = torch.nan  # no surface, like the sky (inf) and negative depth
    depth[1, :5] = -1.0
    k = K.expand(3, 3, 3) if per_frame_k else K
    result = evaluate_cameras(references.clone(), references, depth, k, requested)
    assert isinstance(result, CameraEvaluation)
    assert bool(result.matched.all()) and result.num_unmatched == 0
    assert float(result.rotation_error_deg.max()) < 0.05
    assert float(result.translation_error.max()) < 1e-3
    assert float(result.inlier_ratio.min()) > 0.95
    assert math.degrees(result.rot_err) < 0.1 and result.trans_err < 3e-3


def test_recovers_small_perturbations_of_the_requested_cameras(perturbed):
    requested, actual, frames, references, depth = perturbed
    result = evaluate_cameras(frames, references, depth, K, requested)
    assert bool(result.matched.all())
    rot, trans = pose_errors(result.actual_w2c, actual)
    # Measured at 96x96 over these 12 perturbations (1-3 deg, 0.05-0.2 units): rotation error
    # median 0.065 / p90 0.18 deg, translation error median 0.008 units (36 perturbations over
    # three seeds: 0.09 / 0.15 deg, 0.010 units). Bounds keep a 2-3x margin.
    assert float(rot.median()) < 0.25
    assert float(rot.quantile(0.9)) < 0.5
    assert float(trans.median()) < 0.03
    # The reported errors are the perturbations themselves.
    true_rot, true_trans = pose_errors(actual, requested)
    assert torch.allclose(result.rotation_error_deg, true_rot, atol=0.5)
    assert torch.allclose(result.translation_error, true_trans, atol=0.05)
    summary = result.summary()
    assert summary["median_rotation_error_deg"] == pytest.approx(float(true_rot.median()), abs=0.3)
    assert summary["p90_rotation_error_deg"] >= summary["median_rotation_error_deg"]
    assert summary["matched_fraction"] == 1.0 and summary["num_unmatched"] == 0
    assert result.rot_err == pytest.approx(float(rot_err(result.actual_w2c, requested)))
    metric = trans_err(result.actual_w2c, requested, normalization="metric")
    assert result.trans_err == pytest.approx(float(metric))


def test_is_deterministic(perturbed):
    requested, _, frames, references, depth = perturbed
    a = evaluate_cameras(frames[:4], references[:4], depth[:4], K, requested[:4])
    b = evaluate_cameras(frames[:4], references[:4], depth[:4], K, requested[:4])
    assert torch.equal(a.actual_w2c, b.actual_w2c)
    assert torch.equal(a.inlier_ratio, b.inlier_ratio)


def test_frames_that_do_not_show_the_scene_are_unmatched_with_nan_errors(perturbed):
    requested, actual, frames, references, depth = perturbed
    g = torch.Generator().manual_seed(3)
    frames = frames[:5].clone()
    frames[1] = torch.rand(frames[1].shape, generator=g)  # pure noise
    frames[2] = render(make_room(7), actual[2])[0]  # the same layout, a different texture
    frames[3] = 0.5  # blank: DIS returns zero flow, which must not read as "at the request"
    result = evaluate_cameras(frames, references[:5], depth[:5], K, requested[:5])
    assert result.matched.tolist() == [True, False, False, False, True]
    bad = ~result.matched
    assert bool(result.rotation_error_deg[bad].isnan().all())
    assert bool(result.translation_error[bad].isnan().all())
    assert bool(result.actual_w2c[bad].isnan().all())
    assert float(result.inlier_ratio[bad].max()) < 0.15
    # Clip-level numbers are over the matched frames only, and say how many were dropped.
    assert result.num_unmatched == 3
    keep = result.matched
    assert result.rot_err == pytest.approx(
        float(rot_err(result.actual_w2c[keep], requested[:5][keep]))
    )
    summary = result.summary()
    assert summary["matched_fraction"] == pytest.approx(0.4)
    assert math.isfinite(summary["median_rotation_error_deg"])


def test_a_clip_with_nothing_matched_reports_nan_not_zero(perturbed):
    requested, _, frames, references, depth = perturbed
    noise = torch.rand(frames[:2].shape, generator=torch.Generator().manual_seed(4))
    result = evaluate_cameras(noise, references[:2], depth[:2], K, requested[:2])
    assert not bool(result.matched.any()) and result.num_unmatched == 2
    assert math.isnan(result.rot_err) and math.isnan(result.trans_err)
    summary = result.summary()
    assert summary["matched_fraction"] == 0.0
    assert math.isnan(summary["median_rotation_error_deg"])
    assert math.isnan(summary["median_translation_error"])


def test_valid_mask_excludes_dynamic_objects(perturbed):
    requested, actual, frames, references, depth = perturbed
    frames, references = frames[:4].clone(), references[:4].clone()
    # An object glued to the screen (it moves with the camera): in both videos at one place.
    blob = torch.rand(4, 30, 40, 3, generator=torch.Generator().manual_seed(5))
    frames[:, 30:60, 20:60], references[:, 30:60, 20:60] = blob, blob
    mask = torch.ones(4, SIZE, SIZE, dtype=torch.bool)
    mask[:, 26:64, 16:64] = False
    masked = evaluate_cameras(frames, references, depth[:4], K, requested[:4], mask)
    unmasked = evaluate_cameras(frames, references, depth[:4], K, requested[:4])
    assert bool(masked.matched.all())
    rot, trans = pose_errors(masked.actual_w2c, actual[:4])
    assert float(rot.max()) < 0.5 and float(trans.max()) < 0.05
    assert bool((masked.inlier_ratio > unmasked.inlier_ratio).all())
    nothing = evaluate_cameras(
        frames, references, depth[:4], K, requested[:4], torch.zeros_like(mask)
    )
    assert not bool(nothing.matched.any())


def _bad_inputs():
    f = 2
    frames = torch.rand(f, 16, 16, 3)
    depth = torch.ones(f, 16, 16)
    w2c = torch.eye(4, dtype=D).expand(f, 4, 4).clone()
    nan_w2c = w2c.clone()
    nan_w2c[1, 0, 3] = torch.nan
    ok = {
        "frames": frames,
        "reference_frames": frames,
        "reference_depth": depth,
        "intrinsics": K,
        "requested_w2c": w2c,
    }
    cases = [
        ("frames", {"frames": frames[..., :2]}),
        ("frames", {"frames": frames * 255}),
        (
            "frames",
            {
                "frames": frames[:0],
                "reference_frames": frames[:0],
                "reference_depth": depth[:0],
                "requested_w2c": w2c[:0],
            },
        ),
        ("reference_frames", {"reference_frames": frames[:1]}),
        ("reference_depth", {"reference_depth": depth[:, :8]}),
        ("intrinsics", {"intrinsics": K.expand(3, 3, 3)}),
        ("intrinsics", {"intrinsics": K[:2]}),
        ("requested_w2c", {"requested_w2c": nan_w2c}),
        ("requested_w2c", {"requested_w2c": w2c[:1]}),
        ("valid_mask", {"valid_mask": depth}),
        ("min_inlier_ratio", {"min_inlier_ratio": 1.5}),
        ("stride", {"stride": 0}),
    ]
    return [
        pytest.param(name, {**ok, **change}, id=f"{name}-{i}")
        for i, (name, change) in enumerate(cases)
    ]


@pytest.mark.parametrize(("name", "kwargs"), _bad_inputs())
def test_bad_input_raises_value_error_naming_the_argument(name, kwargs):
    with pytest.raises(ValueError, match=f"^{name}"):
        evaluate_cameras(**kwargs)
