"""Rewards end to end through the shipped tinygeo, on freshly rendered val clips: each reward
must rank videos by a perturbation that the estimator has to see in the pixels."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import axis_rotation, make_pose, so3_exp
from geogrpo.perception.tinygeo import PRETRAINED_DIR, TinyGeoEstimator
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.geometry import ReprojectionReward, SmoothnessReward, TrajectoryReward
from geogrpo.utils.io import file_sha256
from geogrpo.world.datasets import scene_for
from geogrpo.world.render import render


@pytest.fixture(scope="module")
def estimator():
    return TinyGeoEstimator()


@pytest.mark.parametrize("name", ["tinygeo", "tinygeo-lgm"])
def test_shipped_perception_models_match_their_manifests(name):
    import json

    folder = PRETRAINED_DIR / name
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] == {"model.safetensors": file_sha256(folder / "model.safetensors")}
    command = "geogrpo pretrain " + ("lgm" if name.endswith("lgm") else "tinygeo")
    assert manifest["command"].startswith(command)


def test_trajectory_reward_falls_as_the_rendered_path_drifts(estimator):
    """The requested path is a dolly; the videos are rendered along it with a growing yaw drift."""
    target = preset_trajectory("zoom_in", 17)
    scene = scene_for("val", 11)
    videos = []
    for degrees in (0, 10, 20):
        yaw = torch.linspace(0, math.radians(degrees), 17, dtype=torch.float64)
        drift = make_pose(axis_rotation("y", yaw), torch.zeros(17, 3, dtype=torch.float64))
        videos.append(render(scene, drift @ target, 96, 96).rgb)
    batch = RewardBatch(video=torch.stack(videos), target_w2c=target.expand(3, -1, -1, -1))
    scores = TrajectoryReward(estimator)(batch).scores.tolist()
    assert all(a > b for a, b in itertools.pairwise(scores)), scores


def test_smoothness_reward_falls_with_rendered_camera_jitter(estimator):
    base = preset_trajectory("pan_left", 17)
    scene = scene_for("val", 12)
    videos = []
    for degrees in (0, 2, 5):
        g = torch.Generator().manual_seed(0)
        noise = so3_exp(
            math.radians(degrees) * torch.randn(17, 3, generator=g, dtype=torch.float64)
        )
        noise[0] = torch.eye(3, dtype=torch.float64)
        jitter = make_pose(noise, torch.zeros(17, 3, dtype=torch.float64))
        videos.append(render(scene, jitter @ base, 96, 96).rgb)
    scores = SmoothnessReward(estimator)(RewardBatch(video=torch.stack(videos))).scores.tolist()
    assert all(a > b for a, b in itertools.pairwise(scores)), scores


def wobble(video, amplitude_px, seed=0):
    """Per-frame non-rigid sinusoidal warps (no camera can explain them) of ``[F, H, W, 3]``."""
    g = torch.Generator().manual_seed(seed)
    f, h, w, _ = video.shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    frames = []
    for i in range(f):
        phase = float(torch.rand(1, generator=g)) * 2 * math.pi
        a = amplitude_px * 2 / w
        grid = torch.stack(
            [xx + a * torch.sin(3 * yy + phase), yy + a * torch.sin(3 * xx + phase)], -1
        )
        img = video[i].permute(2, 0, 1)[None]
        frames.append(F.grid_sample(img, grid[None], align_corners=True, padding_mode="border")[0])
    return torch.stack(frames).permute(0, 2, 3, 1)


def test_reprojection_reward_falls_with_per_frame_wobble(estimator):
    clip = render(scene_for("val", 11), preset_trajectory("zoom_in", 17), 96, 96).rgb
    videos = torch.stack([wobble(clip, a) for a in (0, 2, 4)])
    scores = ReprojectionReward(estimator)(RewardBatch(video=videos)).scores.tolist()
    assert all(a > b for a, b in itertools.pairwise(scores)), scores
