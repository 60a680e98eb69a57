"""World-R1's reconstruction reward on world clips: a consistent clip against one whose frames
come from different scenes, the meta-view wiring, and masking."""

import pytest
import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.perception.base import KnownGeometry, estimate_from_truth
from geogrpo.recipes.build import build_estimator, build_reward
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.reconstruction import ReconstructionReward
from geogrpo.world.datasets import scene_for
from geogrpo.world.paths import make_path
from geogrpo.world.render import render

FRAMES = 9


def make_pair(size: int):
    """A true multi-view clip and one whose frame t comes from scene t % 3 (same cameras)."""
    w2c = preset_trajectory("arc_left", FRAMES) @ make_path("walking", FRAMES, 5)
    clips = [render(scene_for("val", 20 + i, dynamic=False), w2c, size, size) for i in range(3)]
    mixed = {
        name: torch.stack([getattr(clips[t % 3], name)[t] for t in range(FRAMES)])
        for name in ("rgb", "depth", "static_surface")
    }
    video = torch.stack([clips[0].rgb, mixed["rgb"]])
    truth = estimate_from_truth(
        torch.stack([w2c, w2c]),
        clips[0].intrinsics,
        torch.stack([clips[0].depth, mixed["depth"]]),
        torch.stack([clips[0].static_surface, mixed["static_surface"]]),
    )
    batch = RewardBatch(
        video=video,
        target_w2c=torch.stack([w2c, w2c]),
        intrinsics=clips[0].intrinsics.expand(2, 3, 3),
    )
    return batch, truth


@pytest.fixture(scope="module")
def pair():
    return make_pair(48)


@pytest.fixture(scope="module")
def pair96():
    """At tinygeo's input size."""
    return make_pair(96)


def fresh(batch: RewardBatch) -> RewardBatch:
    return RewardBatch(video=batch.video, target_w2c=batch.target_w2c, intrinsics=batch.intrinsics)


class SpyJudge:
    """Scores every image 0.5 and keeps what it was shown."""

    name = "spy"

    def __init__(self):
        self.seen = []

    def score(self, images):
        self.seen.append(images)
        return torch.full((images.shape[0],), 0.5)


def test_consistent_clip_reconstructs_better_than_inconsistent_scenes_true_geometry(pair):
    batch, truth = pair
    reward = ReconstructionReward(KnownGeometry(truth), judge=None, weights=(1, 0, 1), fit_every=2)
    out = reward(fresh(batch))
    assert out.valid.all()
    recon, psnr = out.diagnostics["recon"], out.diagnostics["recon_psnr"]
    assert float(recon[0]) > float(recon[1]) + 0.3
    assert float(psnr[0]) > float(psnr[1]) + 3
    # the trajectory term is exact for both (true cameras), so the ranking comes from the fit
    torch.testing.assert_close(out.diagnostics["traj"], torch.ones(2))
    assert float(out.scores[0]) > float(out.scores[1])


def test_consistent_clip_wins_through_the_shipped_tinygeo(pair96):
    batch, _ = pair96
    tinygeo = build_estimator("tinygeo")
    out = ReconstructionReward(tinygeo, judge=None, weights=(1, 0, 0), fit_every=2)(fresh(batch))
    assert out.valid.all()
    assert float(out.scores[0]) > float(out.scores[1]) + 0.2


def test_meta_views_are_orbited_renders_scored_by_the_judge(pair):
    batch, truth = pair
    judge = SpyJudge()
    reward = ReconstructionReward(
        KnownGeometry(truth), judge=judge, weights=(0, 1, 0), eval_size=40, meta_angle_deg=1e-3
    )
    out = reward(fresh(batch))
    torch.testing.assert_close(out.scores, torch.full((2,), 0.5))
    # frames 0, F/2 and F-1, each orbited both ways, rendered at eval_size
    assert [tuple(x.shape) for x in judge.seen] == [(6, 40, 40, 3)] * 2
    # at a vanishing angle the meta views are the anchors' own views: the fitted frame 0
    # re-renders close to the clip's first frame
    first = torch.nn.functional.interpolate(
        batch.video[0, :1].permute(0, 3, 1, 2), size=(40, 40), mode="area"
    ).permute(0, 2, 3, 1)
    err = (judge.seen[0][0] - first[0]).abs().mean()
    assert float(err) < 0.06


def test_masking_missing_target_blank_depth_and_bad_weights(pair):
    batch, truth = pair
    no_target = RewardBatch(video=batch.video)
    out = ReconstructionReward(KnownGeometry(truth), judge=None, weights=(1, 0, 1))(no_target)
    assert not out.valid.any()
    assert "trajectory term: target_w2c" in out.reasons[0]
    blank = estimate_from_truth(
        batch.target_w2c, truth.intrinsics, torch.zeros_like(truth.depth), truth.confidence > 0
    )
    out = ReconstructionReward(KnownGeometry(blank), judge=None, weights=(1, 0, 0))(fresh(batch))
    assert not out.valid.any() and torch.equal(out.scores, torch.zeros(2))
    assert "reconstruction failed: depth: no pixel has a positive depth" in out.reasons[1]
    with pytest.raises(ValueError, match="three non-negative weights"):
        ReconstructionReward(KnownGeometry(truth), judge=None, weights=(1, -1, 0))
    with pytest.raises(ValueError, match="S_meta has weight > 0 but no judge"):
        ReconstructionReward(KnownGeometry(truth), judge=None)


def test_nan_frames_are_masked_with_a_reason_and_the_others_scored(pair96):
    batch, _ = pair96
    video = batch.video.clone()
    video[1, 3] = float("nan")
    out = build_reward("reconstruction", judge=None, weights=(1, 0, 0))(RewardBatch(video=video))
    assert out.valid.tolist() == [True, False]
    assert "non-finite" in out.reasons[1]
    assert torch.isfinite(out.scores).all()
