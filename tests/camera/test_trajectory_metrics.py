"""Speed rescaling, Umeyama alignment, RotErr/TransErr/CamMC/ATE/RPE and the Geo-Align error."""

import math

import pytest
import torch
from hypothesis import given, settings

from geogrpo.camera.metrics import (
    align_trajectory,
    ate,
    cam_mc,
    rot_err,
    rpe,
    trans_err,
    umeyama,
    weighted_trajectory_error,
)
from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import axis_rotation, c2w_to_w2c, camera_centers, make_pose, so3_exp
from geogrpo.camera.trajectory import (
    SpeedPrior,
    rescale_trajectory_speeds,
    sample_speed_rescaled,
    sample_truncated_normal,
    trajectory_increments,
    trajectory_speeds,
)
from tests.camera.strategies import rotvecs, trajectories

FAST = settings(max_examples=25, deadline=None)


def _wiggly(frames=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    rot = so3_exp(torch.randn(frames, 3, generator=g, dtype=torch.float64) * 0.3)
    return c2w_to_w2c(
        make_pose(rot, torch.cumsum(torch.randn(frames, 3, generator=g, dtype=torch.float64), 0))
    )


def test_rescaled_path_hits_the_maxima_and_keeps_its_shape():
    w2c = _wiggly()
    out = rescale_trajectory_speeds(w2c, 0.05, math.radians(2))
    trans, rot = trajectory_speeds(out)
    assert float(trans.max()) == pytest.approx(0.05)
    assert float(rot.max()) == pytest.approx(math.radians(2))
    r0, s0 = trajectory_increments(w2c)
    r1, s1 = trajectory_increments(out)
    cos = torch.nn.functional.cosine_similarity
    torch.testing.assert_close(
        cos(s0, s1, dim=-1), torch.ones(11, dtype=torch.float64)
    )  # directions
    torch.testing.assert_close(cos(r0, r1, dim=-1), torch.ones(11, dtype=torch.float64))  # axes
    torch.testing.assert_close(out[0], w2c[0])


@FAST
@given(trajectories(min_frames=3, max_frames=8))
def test_rescaling_never_exceeds_the_sampled_maxima(traj):
    gen = torch.Generator().manual_seed(0)
    prior_t = SpeedPrior(mean=0.1, std=0.05, low=0.02, high=0.2)
    prior_r = SpeedPrior(mean=0.03, std=0.02, low=0.005, high=0.08)
    out, v_t, v_r = sample_speed_rescaled(traj, prior_t, prior_r, gen)
    trans, rot = trajectory_speeds(out)
    assert float(trans.max()) <= v_t + 1e-9 and float(rot.max()) <= v_r + 1e-9
    assert 0.02 <= v_t <= 0.2 and 0.005 <= v_r <= 0.08


def test_truncated_normal_respects_bounds_and_shape():
    x = sample_truncated_normal(0.0, 1.0, -0.5, 2.0, torch.Generator().manual_seed(0), 20_000)
    assert float(x.min()) >= -0.5 and float(x.max()) <= 2.0
    # Closed-form mean of N(0,1) truncated to [a, b]: (phi(a) - phi(b)) / (Phi(b) - Phi(a)).
    n = torch.distributions.Normal(0.0, 1.0)
    a, b = torch.tensor(-0.5), torch.tensor(2.0)
    pdf = lambda z: torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)  # noqa: E731
    expected = (pdf(a) - pdf(b)) / (n.cdf(b) - n.cdf(a))
    assert float(x.mean()) == pytest.approx(float(expected), abs=0.02)


@FAST
@given(rotvecs(), st_scale := __import__("hypothesis").strategies.floats(0.2, 5.0))
def test_umeyama_recovers_a_random_similarity(rv, scale):
    g = torch.Generator().manual_seed(1)
    src = torch.randn(10, 3, generator=g, dtype=torch.float64)
    r, t = so3_exp(rv), torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    dst = scale * src @ r.T + t
    sim = umeyama(src, dst)
    assert float(sim.scale) == pytest.approx(scale, rel=1e-9)
    torch.testing.assert_close(sim.rotation, r, atol=1e-9, rtol=0)
    torch.testing.assert_close(sim.apply(src), dst)


def test_errors_are_zero_for_identical_trajectories():
    w2c = _wiggly()
    for metric in (rot_err, trans_err, cam_mc, ate):
        assert float(metric(w2c, w2c)) == pytest.approx(0.0, abs=1e-6)
    t, r = rpe(w2c, w2c)
    assert float(t) == pytest.approx(0.0, abs=1e-9) and float(r) == pytest.approx(0.0, abs=1e-6)


def test_metrics_hand_computed_for_a_fixed_pair():
    # Reference: pan right 10 deg per frame. Estimate: pans 0.1 rad per frame, dollies 1 per frame.
    ref = preset_trajectory("pan_right", 3)
    est_c2w = make_pose(
        axis_rotation("y", torch.tensor([0.0, 0.1, 0.2])),
        torch.tensor([[0.0, 0, 0], [0, 0, 1], [0, 0, 2]], dtype=torch.float64),
    )
    est = c2w_to_w2c(est_c2w)
    step = math.radians(10)
    assert float(rot_err(est, ref)) == pytest.approx((step - 0.1) + (2 * step - 0.2))
    # Reference centres are all 0, estimate centres (0, 1, 2): metric TransErr = 0 + 1 + 2.
    assert float(trans_err(est, ref, "metric")) == pytest.approx(3.0)
    # max_norm: estimate scaled by 1/2 -> 0 + 0.5 + 1; the static reference stays 0.
    assert float(trans_err(est, ref, "max_norm")) == pytest.approx(1.5)


def test_trans_err_options_differ_only_by_their_normalisation():
    ref = preset_trajectory("arc_left", 9)
    est = ref.clone()
    est[:, :3, 3] *= 3.0  # same path, three times larger (up-to-scale estimate)
    assert float(trans_err(est, ref, "metric")) > 1.0
    assert float(trans_err(est, ref, "max_norm")) == pytest.approx(0.0, abs=1e-9)
    assert float(trans_err(est, ref, "sim3")) == pytest.approx(0.0, abs=1e-6)


def test_ate_and_alignment_undo_a_world_similarity():
    ref = _wiggly(seed=3)
    r = so3_exp(torch.tensor([0.2, -0.4, 0.9], dtype=torch.float64))
    c2w = torch.linalg.inv(ref)
    moved = make_pose(r @ c2w[:, :3, :3], 2.5 * camera_centers(ref) @ r.T + 1.0)
    est = c2w_to_w2c(moved)
    assert float(ate(est, ref)) == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(align_trajectory(est, ref, "sim3"), ref, atol=1e-6, rtol=0)


def test_weighted_error_weights_late_frames_more():
    ref = preset_trajectory("zoom_in", 5)
    early = ref.clone()
    early[1, 2, 3] -= 0.5  # a 0.5 error at frame 1
    late = ref.clone()
    late[4, 2, 3] -= 0.5  # the same error at frame 4
    e_early = weighted_trajectory_error(early, ref).total
    e_late = weighted_trajectory_error(late, ref).total
    assert float(e_early) == pytest.approx(0.5 * 2 / 15)
    assert float(e_late) == pytest.approx(0.5 * 5 / 15)


def test_metric_bad_input():
    with pytest.raises(ValueError, match="^w2c_ref: expected trajectories of equal shape"):
        rot_err(preset_trajectory("pan_left", 4), preset_trajectory("pan_left", 5))
    with pytest.raises(ValueError, match="^normalization"):
        trans_err(preset_trajectory("pan_left", 4), preset_trajectory("pan_left", 4), "unit")
    with pytest.raises(ValueError, match="^max_rotation"):
        rescale_trajectory_speeds(_wiggly(), 0.1, 4.0)


def test_sim3_normalisation_handles_collinear_and_static_paths():
    # A dolly is collinear: Umeyama's rotation is not unique, so only a scale is fitted and the
    # orientations are untouched (an arbitrary 180 deg turn used to give CamMC 22.6 here).
    zoom, zoom_twice = preset_trajectory("zoom_in", 8), preset_trajectory("zoom_in", 8, scale=2.0)
    assert float(cam_mc(zoom, zoom_twice, "sim3")) == pytest.approx(0.0, abs=1e-9)
    assert float(trans_err(zoom, zoom_twice, "sim3")) == pytest.approx(0.0, abs=1e-9)
    # Static centres (pans): finite, and the rotation error is still measured.
    pan_r, pan_l = preset_trajectory("pan_right", 8), preset_trajectory("pan_left", 8)
    assert float(trans_err(pan_r, pan_l, "sim3")) == 0.0
    assert float(cam_mc(pan_r, pan_l, "sim3")) > 1.0
    # Opposite dollies are the same up to a Sim(3) (a half turn): sim3 cannot tell them apart,
    # max_norm can.
    zoom_out = preset_trajectory("zoom_out", 8)
    assert float(trans_err(zoom, zoom_out, "sim3")) == pytest.approx(0.0, abs=1e-9)
    assert float(trans_err(zoom, zoom_out, "max_norm")) > 1.0


def test_umeyama_refuses_collinear_points():
    line = torch.stack([torch.zeros(5), torch.zeros(5), torch.arange(5.0)], dim=-1).double()
    with pytest.raises(ValueError, match="^src: the points are collinear"):
        umeyama(line, 2 * line)
