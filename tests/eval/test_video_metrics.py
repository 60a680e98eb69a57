"""No-reference video metrics against closed forms and against clips the world renders, where
the true cameras are known."""

import itertools
import math

import cv2
import numpy as np
import pytest
import torch

from geogrpo.camera.se3 import axis_rotation, make_pose, so3_exp
from geogrpo.eval.video_metrics import (
    camera_path_smoothness,
    camera_path_smoothness_parts,
    frame_pairs,
    motion_smoothness,
    sampson_epipolar_error,
    sampson_epipolar_error_per_sample,
    sampson_error_true_cameras,
    sampson_error_true_cameras_per_sample,
    temporal_flicker,
)
from geogrpo.world.paths import make_path
from geogrpo.world.render import render
from geogrpo.world.scene import generate_scene


@pytest.fixture(scope="module")
def clip():
    """A static procedural scene along a 30-degree arc, 9 frames of 64x64 (seed 5 has the most
    SIFT matches at this size, 25-28 per consecutive pair)."""
    return render(generate_scene(5, "procedural"), make_path("arc_left", 9), 64, 64)


def texture(width: int = 200, size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random ``[size, width, 3]`` texture in [0, 1]."""
    noise = np.random.default_rng(seed).random((size, width, 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 2)
    return (blurred - blurred.min()) / (blurred.max() - blurred.min())


def sliding(speed: int, frames: int = 9) -> torch.Tensor:
    """``[F, 64, 64, 3]``: a window moving ``speed`` px per frame across :func:`texture`."""
    tex = texture()
    return torch.from_numpy(np.stack([tex[:, speed * t : speed * t + 64] for t in range(frames)]))


# --- VBench-style proxies ---------------------------------------------------------------------


def test_flicker_is_one_minus_the_mean_consecutive_difference():
    levels = torch.tensor([0.2, 0.3, 0.5]).view(3, 1, 1, 1).expand(3, 4, 4, 3)
    constant = torch.full((3, 4, 4, 3), 0.7)
    alternating = torch.tensor([0.0, 1.0, 0.0, 1.0]).view(4, 1, 1, 1).expand(4, 4, 4, 3)
    # differences 0.1 and 0.2 -> MAE 0.15 of the range -> (255 - 38.25) / 255 = 0.85
    assert temporal_flicker(torch.stack([levels, constant])).tolist() == pytest.approx(
        [0.85, 1.0], abs=1e-6
    )
    assert temporal_flicker(alternating[None]).tolist() == pytest.approx([0.0])


def test_motion_smoothness_of_constant_and_linearly_fading_videos():
    constant = torch.full((1, 5, 32, 32, 3), 0.4)
    for mode in ("flow", "blend"):
        assert motion_smoothness(constant, mode).tolist() == pytest.approx([1.0])
    tex = torch.from_numpy(texture(width=64))
    fading = torch.stack([tex * (0.5 + 0.05 * t) for t in range(9)])[None]
    assert motion_smoothness(fading, "blend").item() == pytest.approx(1.0, abs=1e-6)
    assert motion_smoothness(fading, "flow").item() == pytest.approx(1.0, abs=1e-3)
    # odd frames 1 (0.5, re-created as (0 + 0.2) / 2) and 3 (0.2, from 0.2 and 0.2); frame 5
    # has no right neighbour: MAE (0.4 + 0) / 2
    levels = torch.tensor([0.0, 0.5, 0.2, 0.2, 0.2, 0.9]).view(6, 1, 1, 1).expand(6, 4, 4, 3)
    assert motion_smoothness(levels[None], "blend").item() == pytest.approx(0.8, abs=1e-6)


def test_flow_interpolation_follows_motion_that_blending_ghosts():
    video = sliding(speed=3)[None]
    flow, blend = motion_smoothness(video, "flow").item(), motion_smoothness(video, "blend").item()
    assert flow > 0.99 and blend < 0.95
    shuffled = video[:, [0, 5, 2, 7, 4, 1, 6, 3, 8]]
    assert motion_smoothness(shuffled).item() < flow - 0.05
    batch = motion_smoothness(torch.cat([video, shuffled]))
    assert batch.tolist() == pytest.approx([flow, motion_smoothness(shuffled).item()])


def test_quality_proxies_refuse_bad_input():
    video = torch.full((1, 5, 32, 32, 3), 0.5)
    with pytest.raises(ValueError, match=r"video: expected shape \[B, F, H, W, 3\]"):
        temporal_flicker(video[0])
    with pytest.raises(ValueError, match="flicker needs at least 2 frames"):
        temporal_flicker(video[:, :1])
    with pytest.raises(ValueError, match="needs at least 3 frames"):
        motion_smoothness(video[:, :2])
    with pytest.raises(ValueError, match=r"too small for DIS flow .* interpolation='blend'"):
        motion_smoothness(video[:, :, :8, :8])
    with pytest.raises(ValueError, match="interpolation: unknown value 'amt'"):
        motion_smoothness(video, "amt")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        temporal_flicker(video + 0.6)


# --- Sampson epipolar error -------------------------------------------------------------------


def test_frame_pairs():
    assert frame_pairs(4) == [(0, 1), (1, 2), (2, 3)]
    assert frame_pairs(4, "first") == [(0, 1), (0, 2), (0, 3)]
    assert frame_pairs(3, "all") == [(0, 1), (0, 2), (1, 2)]
    with pytest.raises(ValueError, match="pairs: unknown value"):
        frame_pairs(4, "random")


def test_true_camera_error_is_small_on_a_rendered_clip_and_grows_with_camera_error(clip):
    clean = sampson_error_true_cameras(clip.rgb, clip.w2c, clip.intrinsics)
    assert clean < 0.2  # sub-pixel: SIFT localisation on 64x64 frames
    axes = torch.randn(9, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    axes = axes / axes.norm(dim=-1, keepdim=True)
    errors = [clean]
    for degrees in (0.5, 1, 2, 4, 8):
        w2c = clip.w2c.clone()
        w2c[:, :3, :3] = so3_exp(math.radians(degrees) * axes) @ w2c[:, :3, :3]
        errors.append(sampson_error_true_cameras(clip.rgb, w2c, clip.intrinsics))
    assert all(b > a for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] > 10 * clean


def test_true_camera_error_grows_when_alternate_frames_are_warped(clip):
    gen = torch.Generator().manual_seed(0)
    corners = np.float32([[0, 0], [64, 0], [64, 64], [0, 64]])
    errors = [sampson_error_true_cameras(clip.rgb, clip.w2c, clip.intrinsics)]
    for amplitude in (1, 2, 4):
        frames = clip.rgb.numpy().copy()
        for f in range(1, 9, 2):
            jitter = amplitude * torch.randn(4, 2, generator=gen).numpy().astype(np.float32)
            h = cv2.getPerspectiveTransform(corners, corners + jitter)
            frames[f] = cv2.warpPerspective(frames[f], h, (64, 64), borderMode=cv2.BORDER_REFLECT)
        warped = torch.from_numpy(frames).clamp(0, 1)
        errors.append(sampson_error_true_cameras(warped, clip.w2c, clip.intrinsics))
    assert all(b > a for a, b in itertools.pairwise(errors)), errors


def test_a_frozen_video_fits_itself_but_not_the_turning_cameras():
    # the game path turns and moves (an arc or an orbit keeps the content near the pivot still)
    moving = render(generate_scene(0, "procedural"), make_path("game", 9), 64, 64)
    frozen = moving.rgb[:1].expand(9, -1, -1, -1)
    assert sampson_epipolar_error(frozen) < 1e-6  # identical points: any F fits
    true_error = sampson_error_true_cameras(moving.rgb, moving.w2c, moving.intrinsics)
    assert true_error < 0.3
    assert sampson_error_true_cameras(frozen, moving.w2c, moving.intrinsics) > 5 * true_error


@pytest.mark.parametrize("matcher", ["sift", "flow"])
def test_fitted_error_is_small_on_the_rendered_clip_and_large_on_a_deformed_one(clip, matcher):
    clean = sampson_epipolar_error(clip.rgb, matcher=matcher)
    assert clean < 0.5
    # each frame deformed independently by a smooth random field (5x5 control points, 2 px)
    gen = torch.Generator().manual_seed(1)
    rows, cols = np.mgrid[0:64, 0:64].astype(np.float32)
    frames = []
    for frame in clip.rgb.numpy():
        field = 2 * torch.randn(2, 1, 5, 5, generator=gen)
        d = torch.nn.functional.interpolate(
            field, size=(64, 64), mode="bicubic", align_corners=True
        ).numpy()
        reflect = cv2.BORDER_REFLECT
        frames.append(
            cv2.remap(frame, cols + d[0, 0], rows + d[1, 0], cv2.INTER_LINEAR, borderMode=reflect)
        )
    deformed = torch.from_numpy(np.stack(frames)).clamp(0, 1)
    assert sampson_epipolar_error(deformed, matcher=matcher) > 3 * clean
    if matcher == "sift":
        batch = sampson_epipolar_error_per_sample(torch.stack([clip.rgb, deformed]))
        assert batch.tolist() == pytest.approx([clean, sampson_epipolar_error(deformed)])


def test_flow_correspondences_score_the_true_cameras_like_sift(clip):
    sift = sampson_error_true_cameras(clip.rgb, clip.w2c, clip.intrinsics)
    flow = sampson_error_true_cameras(clip.rgb, clip.w2c, clip.intrinsics, matcher="flow")
    assert flow < 0.3 and sift < 0.3
    axes = torch.randn(9, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tilted = clip.w2c.clone()
    turn = so3_exp(math.radians(4) * axes / axes.norm(dim=-1, keepdim=True))
    tilted[:, :3, :3] = turn @ tilted[:, :3, :3]
    assert sampson_error_true_cameras(clip.rgb, tilted, clip.intrinsics, matcher="flow") > 5 * flow


def test_sampson_errors_are_nan_when_nothing_can_be_scored(clip):
    blank = torch.full((4, 64, 64, 3), 0.5)  # no features, no matches
    assert math.isnan(sampson_epipolar_error(blank))
    assert math.isnan(sampson_error_true_cameras(blank, clip.w2c[:4], clip.intrinsics))
    pan = make_path("pan_left", 9)  # one centre: F is undefined for every pair
    assert math.isnan(sampson_error_true_cameras(clip.rgb, pan, clip.intrinsics))
    batch = sampson_error_true_cameras_per_sample(
        torch.stack([clip.rgb, clip.rgb]), torch.stack([clip.w2c, pan]), clip.intrinsics
    )
    assert batch[0].item() == pytest.approx(
        sampson_error_true_cameras(clip.rgb, clip.w2c, clip.intrinsics)
    )
    assert math.isnan(batch[1].item())


def test_sampson_errors_refuse_bad_input(clip):
    with pytest.raises(ValueError, match=r"video: expected shape \[F, H, W, 3\]"):
        sampson_epipolar_error(clip.rgb[None])
    with pytest.raises(ValueError, match="video: an epipolar error needs at least 2 frames"):
        sampson_error_true_cameras(clip.rgb[:1], clip.w2c[:1], clip.intrinsics)
    with pytest.raises(ValueError, match="min_matches: expected an integer >= 9"):
        sampson_epipolar_error(clip.rgb, min_matches=8)
    with pytest.raises(ValueError, match=r"w2c: expected one camera per frame, shape \(9, 4, 4\)"):
        sampson_error_true_cameras(clip.rgb, clip.w2c[:4], clip.intrinsics)
    with pytest.raises(ValueError, match=r"intrinsics: expected shape \[3, 3\]"):
        sampson_error_true_cameras(clip.rgb, clip.w2c, clip.intrinsics[None])
    with pytest.raises(ValueError, match=r"w2c: expected shape \[B, F, 4, 4\]"):
        sampson_error_true_cameras_per_sample(clip.rgb[None], clip.w2c, clip.intrinsics)


# --- camera-path smoothness -------------------------------------------------------------------


def path(centers: list[list[float]], yaws: list[float]) -> torch.Tensor:
    """World-to-camera ``[F, 4, 4]`` with camera-to-world rotations ``Ry(yaw)`` at ``centers``."""
    c = torch.tensor(centers, dtype=torch.float64)
    r = axis_rotation("y", torch.tensor(yaws, dtype=torch.float64)).transpose(-1, -2)  # w2c
    return make_pose(r, -(r @ c[..., None])[..., 0])


def test_constant_velocity_scores_zero():
    w2c = path([[t, 0.5 * t, 0] for t in range(5)], [0.1 * t for t in range(5)])
    assert camera_path_smoothness_parts(w2c) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert camera_path_smoothness(w2c) == pytest.approx(0.0, abs=1e-12)


def test_a_kink_raises_smoothness_by_the_computed_amount():
    eps_t, eps_r = 1e-2, math.radians(0.1)
    # centres: speeds 1, 1, sqrt 2; accelerations 0, (0, 1, 0)
    kinked = path([[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 1, 0]], [0.0] * 4)
    e_trans = 0.5 / ((2 + math.sqrt(2)) / 3 + eps_t)
    assert camera_path_smoothness_parts(kinked) == pytest.approx((e_trans, 0.0), abs=1e-12)
    assert camera_path_smoothness(kinked) == pytest.approx(e_trans / 2, abs=1e-12)
    # yaw steps 0.1, 0.1, 0.3: mean |alpha| = (0 + 0.2) / 2, mean |omega| = 0.5 / 3
    turned = path([[t, 0, 0] for t in range(4)], [0.0, 0.1, 0.2, 0.5])
    e_rot = 0.1 / (0.5 / 3 + eps_r)
    assert camera_path_smoothness_parts(turned) == pytest.approx((0.0, e_rot), abs=1e-12)


def test_camera_path_smoothness_refuses_short_paths():
    with pytest.raises(ValueError, match=r"w2c: expected a path \[F, 4, 4\] of at least 3"):
        camera_path_smoothness(path([[0, 0, 0], [1, 0, 0]], [0.0, 0.0]))
    with pytest.raises(ValueError, match="eps_rotation"):
        camera_path_smoothness(path([[t, 0, 0] for t in range(3)], [0.0] * 3), eps_rotation=0)
