"""Weighted sum of named rewards, with each part's score and diagnostics kept."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from geogrpo.rewards.base import (
    Reward,
    RewardBatch,
    RewardOutput,
    finalize,
)


class CompositeReward:
    """``sum_k w_k r_k(batch)``; a sample is valid only if every weighted part scored it, and
    its reason names the part that did not. Diagnostics are ``"<part>/<name>"`` plus each part's
    score as ``"<part>/score"``, so the trainer can normalise parts separately (Geo-Align,
    World-R1) from the same output.

    ``parts`` maps names to reward objects (recipes build them in
    :mod:`geogrpo.recipes.build`). The trainer itself keeps rewards apart as ``[N, G, K]`` so
    that each can be normalised on its own; this sum is for scoring outside training.
    """

    name = "composite"

    def __init__(self, parts: Mapping[str, Reward], weights: Mapping[str, float]):
        if not parts:
            raise ValueError("parts: a composite needs at least one reward")
        unknown = set(weights) - set(parts)
        if unknown:
            raise ValueError(f"weights: no part named {', '.join(sorted(unknown))}")
        self.parts: dict[str, Reward] = dict(parts)
        self.weights = {k: float(weights.get(k, 1.0)) for k in self.parts}

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        b, _ = batch.size()
        total = torch.zeros(b)
        valid = torch.ones(b, dtype=torch.bool)
        reasons = [""] * b
        diagnostics = {}
        for key, reward in self.parts.items():
            out = reward(batch)
            diagnostics[f"{key}/score"] = torch.where(
                out.valid, out.scores, torch.full_like(out.scores, float("nan"))
            )
            for name, value in out.diagnostics.items():
                diagnostics[f"{key}/{name}"] = value
            if self.weights[key] == 0:
                continue
            total += self.weights[key] * out.scores
            for i in range(b):
                if not out.valid[i] and valid[i]:
                    reasons[i] = f"{key}: {out.reasons[i]}"
            valid &= out.valid
        return finalize(total, valid, reasons, diagnostics)
