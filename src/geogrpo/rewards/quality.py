"""The looks reward: a quality scorer per frame, averaged over the clip."""

from __future__ import annotations

from typing import Any

import torch

from geogrpo.perception.base import check_video, sanitize_video
from geogrpo.rewards.base import RewardBatch, RewardOutput, all_masked, finalize, register_reward


@register_reward("quality")
class QualityReward:
    """Mean per-frame score of a quality scorer, in [0, 1] (the papers' HPSv3 / VideoAlign
    term; the embedded default is the stand-in ``TinyQualityScorer``, "tiny-quality").
    ``every`` scores every n-th frame only, to save time."""

    name = "quality"
    diagnostics = ("min_frame_score",)

    def __init__(self, scorer: Any | None = None, every: int = 1) -> None:
        if scorer is None:
            from geogrpo.perception.quality import TinyQualityScorer

            scorer = TinyQualityScorer.from_pretrained()
        self.scorer, self.every = scorer, every

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        b, problem = batch.size()
        if problem or batch.video is None:
            return all_masked(b, problem or "video: the quality reward needs the decoded video")
        check_video("video", batch.video)
        video, reasons = sanitize_video(batch.video[:, :: self.every])
        n, f = video.shape[:2]
        scores = self.scorer.score(video.reshape(n * f, *video.shape[2:])).reshape(n, f)
        valid = torch.tensor([not r for r in reasons])
        return finalize(scores.mean(dim=1), valid, reasons, {"min_frame_score": scores.amin(dim=1)})
