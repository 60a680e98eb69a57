import pytest
import torch

from geogrpo.perception.base import KnownGeometry, estimate_from_truth
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.composite import CompositeReward
from geogrpo.rewards.geometry import ReprojectionReward, SmoothnessReward, TrajectoryReward


class CountingEstimator(KnownGeometry):
    calls = 0

    def estimate(self, video, intrinsics=None):
        self.calls += 1
        return super().estimate(video, intrinsics)


def test_composite_sums_weighted_parts_and_estimates_once(dynamic_clip):
    est = estimate_from_truth(
        dynamic_clip.w2c[None],
        dynamic_clip.intrinsics,
        dynamic_clip.depth[None],
        dynamic_clip.static_surface[None],
    )
    counter = CountingEstimator(est)
    parts = {
        "smooth": SmoothnessReward(counter),
        "reproj": ReprojectionReward(counter),
        "traj": TrajectoryReward(counter),
    }
    batch = RewardBatch(video=dynamic_clip.rgb[None], target_w2c=dynamic_clip.w2c[None])
    out = CompositeReward(parts, {"smooth": 0.5, "reproj": 2.0, "traj": 0.0})(batch)
    assert counter.calls == 1
    expected = 0.5 * out.diagnostics["smooth/score"] + 2.0 * out.diagnostics["reproj/score"]
    assert float(out.scores) == pytest.approx(float(expected))
    assert "reproj/worst_views_error" in out.diagnostics


def test_composite_masks_a_sample_a_weighted_part_could_not_score(dynamic_clip):
    est = estimate_from_truth(
        dynamic_clip.w2c[None],
        dynamic_clip.intrinsics,
        dynamic_clip.depth[None],
        dynamic_clip.static_surface[None],
    )
    batch = RewardBatch(video=dynamic_clip.rgb[None])  # no target cameras
    geo = KnownGeometry(est)
    ignored = CompositeReward({"s": SmoothnessReward(geo), "t": TrajectoryReward(geo)}, {"t": 0.0})(
        batch
    )
    assert bool(ignored.valid[0])
    out = CompositeReward({"s": SmoothnessReward(geo), "t": TrajectoryReward(geo)}, {})(batch)
    assert not bool(out.valid[0]) and out.reasons[0].startswith("t: target_w2c")
    assert torch.isfinite(out.scores).all()
    with pytest.raises(ValueError, match="no part named"):
        CompositeReward({"s": SmoothnessReward(geo)}, {"x": 1.0})


def test_rewards_of_a_recipe_share_one_estimator_and_one_call_per_batch(dynamic_clip):
    """A recipe naming three geometry rewards builds its estimator once and runs it once per
    batch (before the table moved to the edge, three were built and run)."""
    from geogrpo.recipes import build
    from geogrpo.train.config import RewardSpec

    est = estimate_from_truth(
        dynamic_clip.w2c[None],
        dynamic_clip.intrinsics,
        dynamic_clip.depth[None],
        dynamic_clip.static_surface[None],
    )
    built: list[CountingEstimator] = []

    def make() -> CountingEstimator:
        built.append(CountingEstimator(est))
        return built[-1]

    build.ESTIMATORS["counting"] = make
    try:
        specs = [RewardSpec(name=n) for n in ("trajectory", "smoothness", "reprojection")]
        rewards = build.build_rewards(specs, build.Shared("counting", {}))
    finally:
        del build.ESTIMATORS["counting"]
    assert len(built) == 1
    batch = RewardBatch(video=dynamic_clip.rgb[None], target_w2c=dynamic_clip.w2c[None])
    for _, _, reward in rewards:
        assert reward(batch).valid.all()
    assert built[0].calls == 1
