"""Geometry rewards on world clips whose geometry is known: closed forms and controlled cases."""

import itertools
import math

import pytest
import torch

from geogrpo.camera.se3 import make_pose, so3_exp
from geogrpo.geometry.projection import unproject_depth
from geogrpo.geometry.warp import splat_points
from geogrpo.perception.base import GeometryEstimate, KnownGeometry, estimate_from_truth
from geogrpo.recipes.build import build_reward
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.geometry import (
    ReprojectionReward,
    SmoothnessReward,
    TrajectoryReward,
    reprojection_errors,
    smoothness_errors,
    worst_views_error,
)
from tests.rewards.conftest import jitter_rotations


def truth(clip, confidence=None):
    est = estimate_from_truth(
        clip.w2c[None], clip.intrinsics, clip.depth[None], clip.static_surface[None]
    )
    if confidence is not None:
        est.confidence = confidence.float()
    return est


def with_cameras(est: GeometryEstimate, w2c: torch.Tensor) -> KnownGeometry:
    return KnownGeometry(
        GeometryEstimate(w2c, est.intrinsics, est.depth, est.confidence, est.scale, est.valid)
    )


def test_trajectory_is_one_for_the_true_path_and_falls_monotonically(dynamic_clip):
    est = truth(dynamic_clip)
    batch = RewardBatch(video=dynamic_clip.rgb[None], target_w2c=dynamic_clip.w2c[None])
    assert float(TrajectoryReward(KnownGeometry(est))(batch).scores) == pytest.approx(1.0)
    scores = []
    for amp in (0.0, 0.02, 0.05, 0.1, 0.2):
        # the generated video's cameras drift from the request, more and more
        drift = so3_exp(
            torch.tensor([0.0, amp, 0.0], dtype=torch.float64) * torch.linspace(0, 1, 17)[:, None]
        )
        moved = make_pose(drift, torch.zeros(17, 3, dtype=torch.float64)) @ est.w2c[0]
        scores.append(float(TrajectoryReward(with_cameras(est, moved[None]))(batch).scores))
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_trajectory_weights_late_frames_more(dynamic_clip):
    """The same error on the last frame costs more than on the second (Geo-Align's weights)."""
    est = truth(dynamic_clip)
    batch = RewardBatch(video=dynamic_clip.rgb[None], target_w2c=dynamic_clip.w2c[None])
    early, late = est.w2c.clone(), est.w2c.clone()
    early[0, 1, :3, 3] += 0.5
    late[0, -1, :3, 3] += 0.5
    r = TrajectoryReward(align="first_frame", estimator=KnownGeometry(est))
    assert float(r.__class__(with_cameras(est, late))(batch).scores) < float(
        r.__class__(with_cameras(est, early))(batch).scores
    )


def test_metric_alignment_penalises_a_slow_trajectory_sim3_does_not(dynamic_clip):
    """Geo-Align's reason for a metric evaluator: half-speed motion looks right up to scale."""
    est = truth(dynamic_clip)
    slow = est.w2c.clone()
    slow[..., :3, 3] *= 0.5
    batch = RewardBatch(video=dynamic_clip.rgb[None], target_w2c=dynamic_clip.w2c[None])
    metric = TrajectoryReward(with_cameras(est, slow), align="first_frame")(batch)
    sim3 = TrajectoryReward(with_cameras(est, slow), align="sim3")(batch)
    assert float(metric.diagnostics["translation_error"]) > 0.05
    assert float(sim3.diagnostics["translation_error"]) < 1e-6


def test_sim3_on_a_straight_path_masks_that_sample_only(dynamic_clip):
    """A dolly's camera centres are collinear: a Sim(3) fit has no unique rotation. The reward
    masks that sample with the reason and scores the others (the reward contract)."""
    est = truth(dynamic_clip)
    f = est.w2c.shape[1]
    line = make_pose(
        torch.eye(3, dtype=torch.float64).expand(f, 3, 3),
        torch.linspace(0, -1.5, f, dtype=torch.float64)[:, None] * torch.tensor([0, 0, 1.0]),
    )
    targets = torch.stack([dynamic_clip.w2c, line])
    two = GeometryEstimate(
        torch.cat([est.w2c, line[None]]),
        est.intrinsics.expand(2, -1, -1, -1),
        est.depth.expand(2, -1, -1, -1),
        est.confidence.expand(2, -1, -1, -1),
        est.scale,
        torch.ones(2, dtype=torch.bool),
    )
    batch = RewardBatch(video=dynamic_clip.rgb[None].expand(2, -1, -1, -1, -1), target_w2c=targets)
    out = TrajectoryReward(KnownGeometry(two), align="sim3")(batch)
    assert out.valid.tolist() == [True, False]
    assert "sim3" in out.reasons[1] and float(out.scores[0]) == pytest.approx(1.0)


def test_up_to_scale_estimator_refuses_metric_alignment(dynamic_clip):
    est = truth(dynamic_clip)
    est.scale = "up_to_scale"
    with pytest.raises(ValueError, match="sim3"):
        TrajectoryReward(KnownGeometry(est), align="first_frame")


def test_smoothness_closed_forms():
    f = 9
    eye = torch.eye(3, dtype=torch.float64).expand(f, 3, 3)
    line = make_pose(
        eye, torch.linspace(0, 2, f, dtype=torch.float64)[:, None] * torch.tensor([1.0, 0, 0])
    )
    e_t, e_r = smoothness_errors(line)
    assert float(e_t) == pytest.approx(0.0, abs=1e-12) and float(e_r) == pytest.approx(
        0.0, abs=1e-12
    )
    # constant rotation rate: angular acceleration 0
    spin = make_pose(
        so3_exp(
            torch.linspace(0, 0.5, f, dtype=torch.float64)[:, None] * torch.tensor([0, 1.0, 0])
        ),
        torch.zeros(f, 3, dtype=torch.float64),
    )
    assert float(smoothness_errors(spin)[1]) == pytest.approx(0.0, abs=1e-9)
    # zig-zag centres: |a| = 2 |v| everywhere, so e_trans = 2 |v| / (|v| + eps)
    zig = torch.zeros(f, 3, dtype=torch.float64)
    zig[1::2, 0] = 0.5
    w2c = make_pose(eye, -zig)
    assert float(smoothness_errors(w2c, eps_translation=1e-12)[0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="3 frames"):
        smoothness_errors(line[:2])


def test_smoothness_falls_with_camera_jitter(dynamic_clip):
    est = truth(dynamic_clip)
    batch = RewardBatch(video=dynamic_clip.rgb[None])
    scores = [
        float(SmoothnessReward(with_cameras(est, jitter_rotations(est.w2c, amp)))(batch).scores)
        for amp in (0.0, 0.005, 0.02, 0.05)
    ]
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_reprojection_of_true_geometry_is_small_and_grows_with_wobble(static_clip):
    est = truth(static_clip)
    batch = RewardBatch(video=static_clip.rgb[None])
    errors = []
    for amp in (0.0, 0.01, 0.03, 0.1):
        out = ReprojectionReward(with_cameras(est, jitter_rotations(est.w2c, amp)))(batch)
        errors.append(float(out.diagnostics["worst_views_error"]))
    assert errors[0] < 0.03  # nearest-pixel splatting of exact depth
    assert all(a < b for a, b in itertools.pairwise(errors))


def test_reprojection_ignores_moving_objects_through_confidence(dynamic_clip):
    """With the static-surface confidence the moving object drops out; counting it hurts."""
    static_only = ReprojectionReward(KnownGeometry(truth(dynamic_clip)))(
        RewardBatch(video=dynamic_clip.rgb[None])
    )
    everything = ReprojectionReward(
        KnownGeometry(truth(dynamic_clip, dynamic_clip.depth[None] > 0))
    )(RewardBatch(video=dynamic_clip.rgb[None]))
    assert bool(dynamic_clip.dynamic.any())
    assert float(static_only.diagnostics["worst_views_error"]) < float(
        everything.diagnostics["worst_views_error"]
    )
    assert float(static_only.diagnostics["worst_views_error"]) < 0.03


def test_reprojection_leaves_each_views_own_points_out():
    """Two views that disagree: with its own points in, a view would match itself exactly."""
    k = torch.tensor([[24.0, 0, 12], [0, 24, 12], [0, 0, 1]], dtype=torch.float64).expand(2, 3, 3)
    w2c = torch.eye(4, dtype=torch.float64).expand(2, 4, 4).clone()
    depth = torch.stack([torch.full((24, 24), 2.0), torch.full((24, 24), 3.0)])
    errors = reprojection_errors(depth, torch.ones_like(depth), w2c, k)
    # view 0 sees view 1's plane at 3 (|3 - 2| / 2), view 1 sees view 0's at 2 (|2 - 3| / 3)
    assert errors.tolist() == pytest.approx([0.5, 1 / 3])
    assert float(worst_views_error(errors, 1)) == pytest.approx(0.5)
    assert float(worst_views_error(torch.tensor([float("nan")] * 2))) != float(
        worst_views_error(errors)
    )


def test_reprojection_never_draws_a_views_own_points_with_float32_rotations():
    """Estimated rotations are orthonormal to float32 only, so ``invert_pose`` misplaces a
    camera's centre by ~1e-6: a view's own points parked there would land in front of it and
    draw a pixel at depth ~0 (error 1). Two identical views of one plane must agree."""
    k = torch.tensor([[24.0, 0, 12], [0, 24, 12], [0, 0, 1]], dtype=torch.float64).expand(2, 3, 3)
    w2c = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    w2c[:, :3, :3] *= 1 + 1e-6  # R R^T = (1 + 2e-6) I, as after a float32 Gram-Schmidt
    w2c[:, 2, 3] = -1.0
    depth = torch.full((2, 24, 24), 2.0)
    errors = reprojection_errors(depth, torch.ones_like(depth), w2c, k)
    assert errors.max() < 1e-4  # one leaked pixel of 576 would give 1.7e-3


def splat_reference(depth, confidence, w2c, k, threshold, stride):
    """reprojection_errors written view by view over splat_points (slow, obviously right)."""
    f, h, w = depth.shape
    keep = (confidence >= threshold) & (depth > 0)
    safe = torch.where(keep, depth, torch.ones_like(depth)).double()
    points = unproject_depth(safe, k, w2c)[:, ::stride, ::stride]  # [F, h', w', 3]
    sub = keep[:, ::stride, ::stride]
    errors = []
    for j in range(f):
        others = torch.cat([points[i][sub[i]] for i in range(f) if i != j])  # [N, 3]
        out = splat_points(others[None], others[None, :, :1], k[j], w2c[j, None], h, w)
        compare = out.visible[0] & keep[j]
        rel = ((out.depth[0] - depth[j].double()).abs() / safe[j]).clamp(max=1.0)
        errors.append((rel * compare).sum() / compare.sum() if compare.any() else math.nan)
    return torch.tensor(errors, dtype=torch.float64)


@pytest.mark.parametrize(("threshold", "stride"), [(0.5, 1), (0.8, 2)])
def test_reprojection_equals_view_by_view_splatting(threshold, stride):
    """The one-pass z-buffer against splat_points, on cameras that see parts of each other
    (points behind a camera, outside its image, hidden behind nearer ones, masked ones)."""
    g = torch.Generator().manual_seed(0)
    f, h, w = 5, 20, 24
    k = torch.tensor([[20.0, 0, 12], [0, 22, 10], [0, 0, 1]], dtype=torch.float64).expand(f, 3, 3)
    rot = so3_exp(torch.randn(f, 3, generator=g, dtype=torch.float64) * 0.4)
    w2c = make_pose(rot, torch.randn(f, 3, generator=g, dtype=torch.float64))
    depth = 1 + 3 * torch.rand(f, h, w, generator=g)
    depth[:, :3] = 0  # unknown
    confidence = torch.rand(f, h, w, generator=g)
    errors = reprojection_errors(depth, confidence, w2c, k, threshold, stride)
    expected = splat_reference(depth, confidence, w2c, k, threshold, stride)
    assert torch.isfinite(expected).sum() >= 3
    torch.testing.assert_close(errors, expected, equal_nan=True, rtol=1e-12, atol=1e-12)


def test_bad_samples_are_masked_with_reasons(dynamic_clip):
    est = truth(dynamic_clip)
    two = GeometryEstimate(
        est.w2c.expand(2, -1, -1, -1).clone(),
        est.intrinsics.expand(2, -1, -1, -1).clone(),
        est.depth.expand(2, -1, -1, -1).clone(),
        est.confidence.expand(2, -1, -1, -1).clone(),
        "metric",
        torch.ones(2, dtype=torch.bool),
    )
    two.invalidate(1, "estimator failed on this clip")
    video = dynamic_clip.rgb[None].expand(2, -1, -1, -1, -1)
    for reward in (
        TrajectoryReward(KnownGeometry(two)),
        SmoothnessReward(KnownGeometry(two)),
        ReprojectionReward(KnownGeometry(two)),
    ):
        out = reward(
            RewardBatch(video=video, target_w2c=dynamic_clip.w2c[None].expand(2, -1, -1, -1))
        )
        assert out.valid.tolist() == [True, False]
        assert torch.isfinite(out.scores).all() and float(out.scores[1]) == 0.0
        assert "estimator failed" in out.reasons[1]
    mismatched = TrajectoryReward(KnownGeometry(two))(
        RewardBatch(video=video, target_w2c=dynamic_clip.w2c[None])
    )
    assert not mismatched.valid.any() and "disagree in size" in mismatched.reasons[0]
    single = SmoothnessReward(KnownGeometry(two))(RewardBatch(video=video[:, :1]))
    assert not single.valid.any() and "needs >= 3" in single.reasons[0]


def test_recipe_table_builds_rewards_by_name_and_rewards_refuse_names(dynamic_clip):
    r = build_reward("smoothness")
    assert isinstance(r, SmoothnessReward) and r.estimator.name == "tinygeo"
    with pytest.raises(ValueError, match="known are"):
        build_reward("no-such-reward")
    with pytest.raises(ValueError, match="bad options"):
        build_reward("smoothness", no_such_option=1)
    with pytest.raises(ValueError, match="estimator object"):
        SmoothnessReward("tinygeo")
    known = SmoothnessReward(KnownGeometry(truth(dynamic_clip)))
    assert math.isfinite(float(known(RewardBatch(video=dynamic_clip.rgb[None])).scores))
