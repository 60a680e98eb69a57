"""ADEVIS plans: increments compose to the target, strategies pick the right references."""

import pytest
import torch

from geogrpo.camera.adevis import STRATEGIES, accumulation_plan, sample_group_plans
from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import invert_pose, rotation_angle

DELTA = preset_trajectory("arc_right", 6, scale=1.0)  # source -> target camera per frame


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_last_stage_reaches_the_target_and_reprojections_chain(strategy):
    stages = accumulation_plan(DELTA, strategy, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(stages[-1].target_delta, DELTA, atol=1e-12, rtol=0)
    if strategy == "rfa":
        # Every stage reprojects the source straight to its cumulative camera.
        for s in stages:
            torch.testing.assert_close(s.reproject_delta, s.target_delta)
    else:
        # Chained increments: composing every stage's warp gives the full motion.
        total = torch.eye(4, dtype=torch.float64).expand_as(DELTA)
        for s in stages:
            total = s.reproject_delta @ total
        torch.testing.assert_close(total, DELTA, atol=1e-12, rtol=0)


def test_references_and_fusion_per_strategy():
    kinds = {
        s: [(st.reference, st.fusion) for st in accumulation_plan(DELTA, s, 3)] for s in STRATEGIES
    }
    assert kinds["rfa"] == [("source", "none")] * 3
    assert kinds["rva"] == [("source", "none"), ("previous", "none"), ("previous", "none")]
    assert kinds["ora_dt"][1:] == [("previous", "depth_threshold")] * 2
    assert kinds["ora_cc"][1:] == [("previous", "connected_components")] * 2


def test_equal_increments_without_generator():
    stages = accumulation_plan(DELTA, "rva", 4)
    full = float(rotation_angle(DELTA[-1, :3, :3], torch.eye(3, dtype=torch.float64)))
    for s in stages:
        step = s.reproject_delta[-1, :3, :3]
        assert float(rotation_angle(step, torch.eye(3, dtype=torch.float64))) == pytest.approx(
            full / 4
        )


def test_bullet_time_ramp_runs_from_previous_to_new_view_at_frame_zero():
    delta = preset_trajectory("pan_left", 4)[-1:].expand(4, 4, 4)  # constant 20 deg offset
    stages = accumulation_plan(delta, "bta", 2, bullet_time_frames=5)
    first, second = stages
    assert first.bullet_time_delta.shape == (5, 4, 4)
    torch.testing.assert_close(first.bullet_time_delta[-1], first.target_delta[0])
    torch.testing.assert_close(second.bullet_time_delta[-1], delta[0], atol=1e-12, rtol=0)
    angles = rotation_angle(second.bullet_time_delta[:, :3, :3], torch.eye(3, dtype=torch.float64))
    assert bool((angles[1:] > angles[:-1]).all())  # consecutively increasing changes
    assert float(angles[0]) > float(
        rotation_angle(first.target_delta[0, :3, :3], torch.eye(3, dtype=torch.float64))
    )
    assert accumulation_plan(delta, "rva", 2)[0].bullet_time_delta is None


def test_group_plans_vary_and_reproduce_from_the_seed():
    plans = sample_group_plans(DELTA, "rva", 8, seed=3, min_steps=1, max_steps=4)
    again = sample_group_plans(DELTA, "rva", 8, seed=3, min_steps=1, max_steps=4)
    counts = [len(p) for p in plans]
    assert counts == [len(p) for p in again]
    assert len(set(counts)) > 1 and min(counts) >= 1 and max(counts) <= 4
    for p, q in zip(plans, again, strict=True):
        for a, b in zip(p, q, strict=True):
            assert torch.equal(a.target_delta, b.target_delta)
    # Unequal random increments, each at least min_fraction of the motion.
    multi = next(p for p in plans if len(p) >= 3)
    full = float(rotation_angle(DELTA[-1, :3, :3], torch.eye(3, dtype=torch.float64)))
    fracs = [
        float(rotation_angle(s.reproject_delta[-1, :3, :3], torch.eye(3, dtype=torch.float64)))
        / full
        for s in multi
    ]
    assert min(fracs) >= 0.1 - 1e-9 and max(fracs) - min(fracs) > 1e-3
    assert sum(fracs) == pytest.approx(1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="^strategy: unknown value 'xyz'"):
        accumulation_plan(DELTA, "xyz", 2)
    with pytest.raises(ValueError, match="^delta: expected a trajectory"):
        accumulation_plan(DELTA[0], "rva", 2)
    with pytest.raises(ValueError, match="^max_steps"):
        sample_group_plans(DELTA, "rva", 2, seed=0, min_steps=3, max_steps=2)
    with pytest.raises(ValueError, match="^delta"):
        accumulation_plan(invert_pose(DELTA) * 2, "rva", 2)
