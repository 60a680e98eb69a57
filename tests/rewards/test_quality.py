"""The quality reward's plumbing (a scorer is not shipped yet: the trained one prefers blur)."""

import pytest
import torch

from geogrpo.perception.quality import TinyQualityScorer
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.quality import QualityReward
from geogrpo.train.perception import degrade


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
        QualityReward()


def test_degradations_change_frames_more_at_higher_strength(static_clip):
    frames = static_clip.rgb[:4]
    for kind in ("blur", "noise", "colour"):
        weak = degrade(frames, kind, 0.2, torch.Generator().manual_seed(0), None)
        strong = degrade(frames, kind, 1.0, torch.Generator().manual_seed(0), None)
        assert (weak - frames).abs().mean() < (strong - frames).abs().mean()
