"""flow_pnp on clips rendered with known cameras (no data/ needed): controlled motions, val-like
paths, degraded renders (blur, the autoencoder's round trip), masking and input checks."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from geogrpo.camera.metrics import rotation_errors, translation_errors
from geogrpo.camera.presets import preset_trajectory
from geogrpo.camera.se3 import camera_centers, relative_to_first
from geogrpo.geometry.registration import RegistrationOptions, make_dis, register_frame
from geogrpo.models.autoencoder import load_autoencoder
from geogrpo.models.policy import PRETRAINED_DIR
from geogrpo.perception.base import GeometryEstimator
from geogrpo.perception.flow_pnp import FlowPnPEstimator
from geogrpo.pretrain.common import gaussian_blur
from geogrpo.recipes.build import build_estimator
from geogrpo.train.config import load_config
from geogrpo.world.datasets import scene_for
from geogrpo.world.paths import make_path
from geogrpo.world.render import render

# (path, val scene, seed): a 1.0 dolly in and out, a 20 degree pan, a 30 degree arc, then two
# of the world's random paths. 9 frames at 96x96.
CLIPS = (
    ("zoom_in", 2, 0),
    ("zoom_out", 2, 0),
    ("pan_right", 2, 0),
    ("arc_left", 4, 0),
    ("walking", 4, 1),
    ("game", 5, 2),
)
DOLLY_IN, DOLLY_OUT, PAN = 0, 1, 2
GUIDED = RegistrationOptions(solver="guided")


@pytest.fixture(scope="module")
def clips():
    renders = []
    for kind, scene, seed in CLIPS:
        if kind in ("walking", "game"):
            w2c = make_path(kind, 9, seed=seed)
        else:
            w2c = preset_trajectory(kind, 9, scale=0.5)
        renders.append(render(scene_for("val", scene), w2c, 96, 96))
    video = torch.stack([r.rgb for r in renders]).float()
    truth = relative_to_first(torch.stack([r.w2c for r in renders]))
    return video, truth


@pytest.fixture(scope="module")
def estimator():
    return FlowPnPEstimator()


@pytest.fixture(scope="module")
def clean(clips, estimator):
    return estimator.estimate(clips[0])


def errors(w2c, truth):
    """Per-clip mean rotation error (degrees) and metric translation error over frames 1..F-1."""
    rot = torch.rad2deg(rotation_errors(w2c, truth))[:, 1:].mean(1)
    trans = translation_errors(w2c, truth, "metric")[:, 1:].mean(1)
    return rot, trans


def static_errors(truth):
    return errors(torch.eye(4, dtype=truth.dtype).expand_as(truth), truth)


def test_known_dolly_and_pan_are_recovered_far_below_the_static_guess(clips, clean):
    _, truth = clips
    assert clean.valid.all() and clean.scale == "metric"
    rot, trans = errors(clean.w2c, truth)
    rot0, trans0 = static_errors(truth)
    # a pure translation of 1.0 forward / backward: metric and with the right sign (tinygeo's
    # camera head puts both near +0.2)
    for i, sign in ((DOLLY_IN, 1.0), (DOLLY_OUT, -1.0)):
        end = camera_centers(clean.w2c[i])[-1]
        assert abs(float(end[2]) - sign) < 0.25 and float(end[:2].norm()) < 0.15
        assert float(trans[i]) < 0.12 < 0.3 * float(trans0[i])
        assert float(rot[i]) < 1.0
    # a pure 20 degree yaw: under a degree, and no spurious translation
    assert float(rot[PAN]) < 1.0 < 0.1 * float(rot0[PAN])
    assert float(trans[PAN]) < 0.05


@pytest.mark.parametrize("pairs", ["first", "consecutive"])
def test_the_other_frame_pairings_recover_the_controlled_motions(clips, estimator, pairs):
    video, truth = clips
    idx = [DOLLY_IN, PAN]
    est = FlowPnPEstimator(estimator.depth_model, pairs=pairs).estimate(video[idx])
    rot, trans = errors(est.w2c, truth[idx])
    # "first" loses the pan's last frames (beyond DIS's reach from frame 0: 1.6 degrees)
    assert est.valid.all() and float(rot.max()) < 2.0 and float(trans.max()) < 0.12


def test_val_like_paths_meet_accuracy_floors(clips, clean):
    _, truth = clips
    rot, trans = errors(clean.w2c, truth)
    rot0, trans0 = static_errors(truth)
    # measured 0.26 degrees and 0.041 (static guess: 7.3 degrees and 0.39)
    assert float(rot.mean()) < 1.0 and float(rot.mean()) < 0.15 * float(rot0.mean())
    assert float(trans.mean()) < 0.1 and float(trans.mean()) < 0.3 * float(trans0.mean())
    # depth and confidence are tinygeo's
    tinygeo = FlowPnPEstimator().depth_model.estimate(clips[0])
    assert torch.equal(clean.depth, tinygeo.depth)
    assert torch.equal(clean.confidence, tinygeo.confidence)


def blurred(video, sigma=1.0):
    b, f, h, w, _ = video.shape
    x = gaussian_blur(video.reshape(b * f, h, w, 3).permute(0, 3, 1, 2), sigma, 3)
    return x.permute(0, 2, 3, 1).reshape(b, f, h, w, 3).clamp(0, 1)


def autoencoded(video):
    ae = load_autoencoder(PRETRAINED_DIR / "tiny-autoencoder").eval()
    with torch.no_grad():
        z = ae.encode(video.permute(0, 4, 1, 2, 3) * 2 - 1)
        return ae.decode(z).permute(0, 2, 3, 4, 1).add(1).div(2).clamp(0, 1)


@pytest.mark.parametrize(
    "degrade, rot_floor, trans_floor",
    [(blurred, 1.0, 0.1), (autoencoded, 1.5, 0.2)],  # measured 0.27 / 0.037 and 0.64 / 0.108
    ids=["blur", "autoencoder"],
)
def test_degraded_renders_meet_accuracy_floors(clips, estimator, degrade, rot_floor, trans_floor):
    video, truth = clips
    est = estimator.estimate(degrade(video))
    assert est.valid.all()
    rot, trans = errors(est.w2c, truth)
    rot0, trans0 = static_errors(truth)
    assert float(rot.mean()) < rot_floor < 0.25 * float(rot0.mean())
    assert float(trans.mean()) < trans_floor < 0.6 * float(trans0.mean())


@pytest.mark.parametrize(
    "options",
    [
        {"ransac_iterations": 100, "pairs": "consecutive"},  # geo_align's reward
        {"solver": "guided"},
        {"solver": "guided", "pairs": "consecutive"},
    ],
    ids=["ransac100-consecutive", "guided", "guided-consecutive"],
)
def test_the_reward_side_settings_recover_the_motions_deterministically(
    clips, estimator, clean, options
):
    """The cheaper settings a reward may run (issue 25) stay near the truth and the default."""
    video, truth = clips
    cheap = FlowPnPEstimator(estimator.depth_model, **options)
    expected = {k: v for k, v in options.items() if k != "pairs"}
    assert cheap.options == replace(RegistrationOptions(), **expected)
    est = cheap.estimate(video)
    rot, trans = errors(est.w2c, truth)
    rot_full, trans_full = errors(clean.w2c, truth)
    # the default's floors (measured 0.26 degrees / 0.041 there; these settings 0.24-0.28 /
    # 0.040-0.051), and within 0.5 degrees / 0.05 of the default on every clip
    assert est.valid.all()
    assert float(rot.mean()) < 1.0 and float(trans.mean()) < 0.1
    assert float((rot - rot_full).abs().max()) < 0.5
    assert float((trans - trans_full).abs().max()) < 0.05
    # the same clips give the same cameras, bit for bit (seeded RANSAC, or no randomness)
    assert torch.equal(cheap.estimate(video[:2]).w2c, cheap.estimate(video[:2]).w2c)


def test_the_evaluator_keeps_its_own_ransac_budget(monkeypatch):
    """A reward's cheaper settings must never reach the ground truth it is judged against."""
    import geogrpo.world.evaluator as evaluator

    FlowPnPEstimator(ransac_iterations=100)  # must not touch any shared default
    seen = []
    real = evaluator.register_frame

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(evaluator, "register_frame", spy)
    r = render(scene_for("val", 2), preset_trajectory("pan_right", 3, scale=0.5), 96, 96)
    evaluator.evaluate_cameras(r.rgb, r.rgb, r.depth, r.intrinsics, r.w2c)
    assert len(seen) == 3
    assert all(o == RegistrationOptions() and o.ransac_iterations == 1000 for o in seen)


def test_nan_and_textureless_samples_are_masked_not_raised(clips, estimator):
    video = clips[0][[PAN, PAN, PAN]].clone()
    video[1, 3, 10, 10, 0] = float("nan")
    video[2] = 0.5  # a blank clip: no frame can be registered
    est = estimator.estimate(video)
    assert est.valid.tolist() == [True, False, False]
    assert est.reasons[0] == ""
    assert "non-finite" in est.reasons[1] and "registered" in est.reasons[2]
    assert torch.isfinite(est.w2c).all() and torch.isfinite(est.depth).all()
    assert torch.equal(est.w2c[1:], torch.eye(4, dtype=est.w2c.dtype).expand(2, 9, 4, 4))


def test_bad_inputs_get_clear_errors(estimator):
    with pytest.raises(ValueError, match="96x96.*resize"):
        estimator.estimate(torch.rand(1, 3, 48, 48, 3))
    with pytest.raises(ValueError, match=r"\[B, F, H, W, 3\]"):
        estimator.estimate(torch.rand(1, 3, 3, 96, 96))
    with pytest.raises(ValueError, match="at least 2 frames"):
        estimator.estimate(torch.rand(1, 1, 96, 96, 3))
    with pytest.raises(ValueError, match="keyframe_ratio"):
        FlowPnPEstimator(estimator.depth_model, keyframe_ratio=1.5)
    with pytest.raises(ValueError, match="pairs.*keyframe, consecutive, first"):
        FlowPnPEstimator(estimator.depth_model, pairs="nearest")
    with pytest.raises(ValueError, match="ransac_iterations"):
        FlowPnPEstimator(estimator.depth_model, ransac_iterations=0)
    with pytest.raises(ValueError, match="solver.*ransac, guided"):
        FlowPnPEstimator(estimator.depth_model, solver="magsac")
    gray, k = np.zeros((96, 96), np.uint8), np.eye(3)
    with pytest.raises(ValueError, match="guess"):
        register_frame(make_dis(), gray, gray, gray > 0, np.ones((96, 96, 3)), k, GUIDED)


def test_recipes_can_name_it():
    est = build_estimator("flow_pnp", min_registered=0.0)
    assert isinstance(est, FlowPnPEstimator) and isinstance(est, GeometryEstimator)
    assert est.name == "flow_pnp" and est.scale == "metric" and est.min_registered == 0.0
    recipe = load_config("geo_align").rewards
    est = build_estimator(recipe.estimator, **recipe.estimator_options)
    assert est.options.ransac_iterations == 100 and est.pairs == "consecutive"
