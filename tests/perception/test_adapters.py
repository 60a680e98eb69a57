"""Adapters for external geometry and quality models: the conversion at the edge (closed forms on
a world clip) and the errors when a package or checkpoint is missing. The packages themselves do
not install beside this project's pins, so their model calls are not exercised here."""

import numpy as np
import pytest
import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import relative_to_first, scale_intrinsics
from geogrpo.perception.adapters import (
    estimate_from_predictions,
    normalise_confidence,
    vggt_input_size,
)
from geogrpo.perception.base import KnownGeometry
from geogrpo.perception.quality import HPSv3Scorer, VideoAlignScorer
from geogrpo.recipes.build import build_estimator
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.geometry import ReprojectionReward
from geogrpo.rewards.quality import QualityReward
from geogrpo.world.datasets import scene_for
from geogrpo.world.render import render


@pytest.fixture(scope="module")
def clip():
    return render(scene_for("val", 1, dynamic=False), preset_trajectory("arc_left", 5), 64, 64)


def half_res_predictions(clip):
    """What a model running at 32x32 would return for the clip, exactly (w2c as [F, 3, 4])."""
    depth = clip.depth[:, ::2, ::2]  # nearest: the top-left pixel of every 2x2 block
    k = scale_intrinsics(clip.intrinsics, 0.5, 0.5).expand(5, 3, 3)
    return clip.w2c[:, :3, :].numpy(), k.numpy(), depth.numpy()


def test_conversion_restores_the_video_resolution_and_first_frame_cameras(clip):
    w2c, k, depth = half_res_predictions(clip)
    est = estimate_from_predictions(w2c, k, depth, None, (64, 64), "metric")
    torch.testing.assert_close(est.intrinsics[0], clip.intrinsics.expand(5, 3, 3))
    torch.testing.assert_close(est.w2c[0], relative_to_first(clip.w2c))
    torch.testing.assert_close(est.w2c[0, 0], torch.eye(4, dtype=torch.float64))
    assert est.depth.shape == (1, 5, 64, 64)
    torch.testing.assert_close(est.depth[0, :, ::2, ::2], clip.depth[:, ::2, ::2])
    sky = clip.depth[:, ::2, ::2] == 0
    assert bool((est.confidence[0, :, ::2, ::2][sky] == 0).all())


def test_converted_true_geometry_is_reprojection_consistent(clip):
    """Exact cameras at half resolution: the reprojection reward stays near its maximum."""
    w2c, k, depth = half_res_predictions(clip)
    est = estimate_from_predictions(w2c, k, depth, None, (64, 64), "metric")
    out = ReprojectionReward(KnownGeometry(est))(RewardBatch(video=clip.rgb[None]))
    assert float(out.diagnostics["worst_views_error"][0]) < 0.05


def test_drop_mask_and_confidence_normalisation(clip):
    w2c, k, depth = half_res_predictions(clip)
    drop = np.zeros_like(depth, dtype=bool)
    drop[:, :8] = True  # the top quarter, e.g. what a sky head flags
    conf = np.full_like(depth, 3.0)
    est = estimate_from_predictions(w2c, k, depth, conf, (64, 64), "up_to_scale", drop=drop)
    assert bool((est.depth[0, :, :16] == 0).all()) and bool((est.confidence[0, :, :16] == 0).all())
    surface = est.depth[0] > 0
    torch.testing.assert_close(
        est.confidence[0][surface], torch.full_like(est.depth[0][surface], 0.5)
    )
    c = torch.tensor([1.0, 2.0, 3.0, 4.0, 100.0])
    torch.testing.assert_close(normalise_confidence(c), c / (c + 3.0))
    assert est.scale == "up_to_scale"


def test_conversion_rejects_mismatched_predictions(clip):
    w2c, k, depth = half_res_predictions(clip)
    with pytest.raises(ValueError, match=r"expected cameras \[F, 3\|4, 4\]"):
        estimate_from_predictions(w2c[:4], k, depth, None, (64, 64), "metric")


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("da3", "pip install depth-anything-3"),
        ("vggt", "facebookresearch/vggt"),
        ("mapanything", "facebookresearch/map-anything"),
    ],
)
def test_missing_packages_say_how_to_install(name, hint, tmp_path):
    with pytest.raises(ImportError, match=hint):
        build_estimator(name, model_dir=tmp_path)


def test_vggt_input_size_follows_its_crop_preprocessing():
    assert vggt_input_size(96, 96) == (518, 518)
    assert vggt_input_size(480, 832) == (294, 518)  # 518 * 480 / 832 = 298.8 -> 21 patches


def test_quality_adapters_fail_clearly(tmp_path):
    with pytest.raises(ImportError, match="pip install hpsv3"):
        HPSv3Scorer(tmp_path / "HPSv3.safetensors")
    with pytest.raises(FileNotFoundError, match="git clone KwaiVGI/VideoAlign"):
        VideoAlignScorer(tmp_path / "VideoAlign", tmp_path / "VideoReward")


class PromptScorer:
    """A frame scorer that reads prompts: 1 where the prompt says "bright", else 0."""

    name, uses_prompts = "prompted", True

    def score(self, frames, prompts):
        assert len(prompts) == frames.shape[0]
        return torch.tensor([float("bright" in p) for p in prompts])


class ClipScorer:
    """A whole-video scorer: the mean brightness of each clip."""

    name, uses_prompts = "clip", False

    def score_videos(self, videos, prompts):
        assert prompts is None
        return videos.mean(dim=(1, 2, 3, 4))


def test_quality_reward_passes_prompts_per_frame_and_whole_videos():
    video = torch.rand(2, 3, 8, 8, 3, generator=torch.Generator().manual_seed(0))
    batch = RewardBatch(video=video, prompts=["a bright room", "a dark room"])
    torch.testing.assert_close(
        QualityReward(PromptScorer())(batch).scores, torch.tensor([1.0, 0.0])
    )
    torch.testing.assert_close(
        QualityReward(ClipScorer())(batch).scores, video.mean(dim=(1, 2, 3, 4))
    )
