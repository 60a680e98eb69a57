"""The classical estimator on rendered clips with known geometry."""

import pytest
import torch

from geogrpo.camera.metrics import rotation_errors
from geogrpo.camera.presets import preset_trajectory
from geogrpo.perception.classical import ClassicalEstimator
from geogrpo.world.datasets import scene_for
from geogrpo.world.render import render


@pytest.fixture(scope="module")
def clip():
    w2c = preset_trajectory("arc_left", 9, scale=0.5)
    return render(scene_for("val", 2), w2c, 96, 96)


def test_recovers_rotation_of_a_gentle_arc(clip):
    est = ClassicalEstimator().estimate(clip.rgb[None])
    assert bool(est.valid[0]) and est.scale == "up_to_scale"
    err = torch.rad2deg(rotation_errors(est.w2c, clip.w2c[None]))[0, 1:]
    assert float(err.median()) < 3.0
    # depth up to scale: after a median ratio, close to the truth where it has confidence
    d, m = est.depth[0], (est.confidence[0] > 0) & (clip.depth > 0)
    s = (clip.depth[m] / d[m]).median()
    assert float(((d[m] * s - clip.depth[m]).abs() / clip.depth[m]).median()) < 0.2


def test_blank_and_nan_clips_are_masked_with_reasons(clip):
    video = torch.stack([clip.rgb, torch.full_like(clip.rgb, 0.5), clip.rgb])
    video[2, 4, 10, 10, 1] = float("nan")
    est = ClassicalEstimator().estimate(video)
    assert est.valid.tolist() == [True, False, False]
    assert "correspondences" in est.reasons[1] and "non-finite" in est.reasons[2]
    assert torch.isfinite(est.w2c).all()
