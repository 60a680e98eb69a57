"""The quality reward and the shipped stand-in scorer: clean frames above degraded ones."""

import json

import pytest
import torch

from geogrpo.camera.presets import preset_trajectory
from geogrpo.perception.judge import make_judge
from geogrpo.perception.quality import TinyQualityScorer, log_detail
from geogrpo.perception.tinygeo import PRETRAINED_DIR
from geogrpo.pretrain.quality import degrade
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.quality import QualityReward
from geogrpo.utils.io import file_sha256
from geogrpo.world.datasets import scene_for
from geogrpo.world.render import render


@pytest.fixture(scope="module")
def clean_96():
    """Held-out-scene val renders at the scorer's training size."""
    w2c = preset_trajectory("arc_right", 5)
    return torch.cat(
        [render(scene_for("val", 30 + i, dynamic=False), w2c, 96, 96).rgb for i in range(4)]
    )


def test_shipped_scorer_matches_its_manifest():
    folder = PRETRAINED_DIR / "tiny-quality"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] == {"model.safetensors": file_sha256(folder / "model.safetensors")}
    assert manifest["command"].startswith("geogrpo pretrain quality")


@pytest.mark.parametrize("kind", ["blur", "noise", "colour", "generated"])
def test_shipped_scorer_ranks_clean_frames_above_each_degradation(clean_96, kind):
    from geogrpo.models.autoencoder import load_autoencoder
    from geogrpo.models.policy import PRETRAINED_DIR as POLICIES

    ae = load_autoencoder(POLICIES / "tiny-autoencoder").eval() if kind == "generated" else None
    reward = QualityReward()  # the shipped "tiny-quality"
    clean = reward(RewardBatch(video=clean_96[None])).scores
    bad = degrade(clean_96, kind, 1.0, torch.Generator().manual_seed(0), ae)
    worse = reward(RewardBatch(video=bad[None])).scores
    assert float(clean) > float(worse) + 0.1


def test_blur_scores_fall_monotonically_with_strength(clean_96):
    scorer = TinyQualityScorer.from_pretrained()
    scores = [
        float(scorer.score(degrade(clean_96, "blur", s, torch.Generator(), None)).mean())
        for s in (0.2, 0.5, 1.0)
    ]
    assert float(scorer.score(clean_96).mean()) > scores[0] > scores[1] > scores[2]


def test_log_detail_moves_equally_for_halved_and_doubled_detail():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    base, half, double = (
        log_detail(0.5 + 0.1 * x),
        log_detail(0.5 + 0.05 * x),
        log_detail(0.5 + 0.2 * x),
    )
    # away from the eps floor, log|Lap| shifts by log 2 / 4 either way
    strong = log_detail(0.5 + 0.05 * x) > -0.3
    torch.testing.assert_close(
        (base - half)[strong].median(), (double - base)[strong].median(), atol=0.02, rtol=0
    )


def test_make_judge_tiny_quality_is_the_shipped_scorer():
    assert make_judge("tiny-quality").name == "tiny-quality"


def test_scores_are_per_frame_means_and_nan_clips_are_masked(static_clip):
    torch.manual_seed(0)
    scorer = TinyQualityScorer(width=8).eval()
    video = torch.stack([static_clip.rgb, static_clip.rgb.clone()])
    video[1, 0, 0, 0, 0] = float("nan")
    out = QualityReward(scorer)(RewardBatch(video=video))
    assert out.valid.tolist() == [True, False] and torch.isfinite(out.scores).all()
    assert float(out.scores[0]) == pytest.approx(float(scorer.score(static_clip.rgb).mean()))


def test_missing_scorer_says_how_to_train_one():
    with pytest.raises(FileNotFoundError, match="pretrain"):
        QualityReward(TinyQualityScorer.from_pretrained("no-such-scorer"))


def test_degradations_change_frames_more_at_higher_strength(static_clip):
    frames = static_clip.rgb[:4]
    for kind in ("blur", "noise", "colour"):
        weak = degrade(frames, kind, 0.2, torch.Generator().manual_seed(0), None)
        strong = degrade(frames, kind, 1.0, torch.Generator().manual_seed(0), None)
        assert (weak - frames).abs().mean() < (strong - frames).abs().mean()
