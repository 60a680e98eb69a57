"""The looks reward: a quality scorer per frame, averaged over the clip."""

from __future__ import annotations

from os import PathLike
from typing import Any

import torch

from geogrpo.perception.base import check_video, sanitize_video
from geogrpo.rewards.base import RewardBatch, RewardOutput, all_masked, finalize


class QualityReward:
    """Mean per-frame score of a quality scorer, in [0, 1] (the papers' HPSv3 / VideoAlign
    term; the embedded default is the stand-in ``TinyQualityScorer``, "tiny-quality").
    ``every`` scores every n-th frame only, to save time. A scorer with ``score_videos``
    (VideoAlign) scores whole clips; one with ``uses_prompts`` gets ``batch.prompts``.
    ``scorer`` may also be the name or folder of a saved ``TinyQualityScorer`` (a recipe's or
    ``--reward 'quality:{"scorer": "runs/pretrain/tiny-quality"}'``'s option), put on
    ``device`` (None: the CPU)."""

    name = "quality"
    diagnostics = ("min_frame_score",)

    def __init__(
        self,
        scorer: Any | str | None = None,
        every: int = 1,
        device: torch.device | str | None = None,
    ) -> None:
        if scorer is None or isinstance(scorer, (str, PathLike)):
            from geogrpo.perception.quality import TinyQualityScorer

            scorer = TinyQualityScorer.from_pretrained(scorer or "tiny-quality").to(device)
        self.scorer, self.every = scorer, every

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        b, problem = batch.size()
        if problem or batch.video is None:
            return all_masked(b, problem or "video: the quality reward needs the decoded video")
        check_video("video", batch.video)
        video, reasons = sanitize_video(batch.video[:, :: self.every])
        n, f = video.shape[:2]
        valid = torch.tensor([not r for r in reasons])
        prompts = batch.prompts if getattr(self.scorer, "uses_prompts", False) else None
        if hasattr(self.scorer, "score_videos"):
            clip_scores = self.scorer.score_videos(video, prompts)
            return finalize(clip_scores, valid, reasons, {"min_frame_score": clip_scores})
        frames = video.reshape(n * f, *video.shape[2:])
        if prompts is None:
            scores = self.scorer.score(frames)
        else:
            scores = self.scorer.score(frames, [p for p in prompts for _ in range(f)])
        scores = scores.reshape(n, f)
        return finalize(scores.mean(dim=1), valid, reasons, {"min_frame_score": scores.amin(dim=1)})
