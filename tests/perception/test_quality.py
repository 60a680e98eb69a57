"""The shipped quality scorer on what a policy generates: true renders above the base policy's
samples of the same held-out conditions; 8-bit input; saved scorers as reward options."""

import json

import pytest
import torch

from geogrpo.eval.reward_fidelity import sample_groups
from geogrpo.eval.suites import parse_plan
from geogrpo.models.policy import VideoPolicy
from geogrpo.perception.quality import TinyQualityScorer
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.quality import QualityReward
from geogrpo.train.conditions import from_items, load_items
from geogrpo.train.config import DataConfig


@pytest.fixture(scope="module")
def val_groups(tmp_path_factory):
    """Three val conditions (Geo-Align's speed pairs) and two samples of each by the base
    policy with the training sampler (window of 3 SDE steps of 10)."""
    data = DataConfig(kind="speed_pairs", data_dir=str(tmp_path_factory.mktemp("data")), workers=1)
    conditions = from_items(load_items(data, "val", 3), "camera_v2v")
    policy = VideoPolicy.from_pretrained("tiny-camera-v2v").eval().requires_grad_(False)
    videos, _ = sample_groups(
        policy,
        conditions,
        2,
        parse_plan("window:0:3", 10, 3),
        0.7,
        "flow_grpo",
        keep_latents=False,
    )
    return conditions, videos


def test_shipped_scorer_ranks_true_renders_above_base_policy_samples(val_groups):
    conditions, videos = val_groups
    reward = QualityReward()  # the shipped "tiny-quality"
    for n, video in enumerate(videos):
        truth = float(reward(RewardBatch(video=conditions.truth[n : n + 1])).scores[0])
        generated = reward(RewardBatch(video=video)).scores
        assert truth > float(generated.max()) + 0.1, n


def test_scorer_reads_frames_as_8_bit(val_groups):
    _, videos = val_groups
    frames = videos[0][0, ::4]
    rounded = (frames * 255).round() / 255
    scorer = TinyQualityScorer.from_pretrained()
    assert scorer.quantize
    torch.testing.assert_close(scorer.score(frames), scorer.score(rounded), rtol=0, atol=0)


def test_scorers_saved_before_quantize_load_as_they_were_and_load_as_reward_options(tmp_path):
    torch.manual_seed(0)
    TinyQualityScorer(width=8).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["quantize"] is True
    assert TinyQualityScorer.from_pretrained(tmp_path).quantize
    del config["quantize"]  # as the first tiny-quality's config.json
    (tmp_path / "config.json").write_text(json.dumps(config))
    old = TinyQualityScorer.from_pretrained(tmp_path)
    assert not old.quantize
    reward = QualityReward(scorer=str(tmp_path))  # --reward 'quality:{"scorer": "DIR"}'
    assert isinstance(reward.scorer, TinyQualityScorer) and not reward.scorer.quantize
    video = torch.rand(1, 2, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    assert float(reward(RewardBatch(video=video)).scores[0]) == pytest.approx(
        float(old.score(video[0]).mean())
    )
