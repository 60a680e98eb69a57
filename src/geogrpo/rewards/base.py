"""Reward interface: ``reward(batch) -> RewardOutput(scores [B], valid [B], diagnostics, reasons)``.

A reward never raises for one bad sample and never hands the trainer a NaN: a sample it cannot
score (non-finite frames, an estimator failure, a batch whose fields disagree in size) gets score
0, ``valid = False`` and a reason; the trainer masks invalid samples out of the group statistics.
Scores of a valid sample are finite and, for every shipped reward, in ``[0, 1]`` (higher is
better), so the masked placeholder 0 is never better than a real score.

Devices: a reward computes on its batch's device (the trainer moves the batch to the run's
device once, with :meth:`RewardBatch.to`, before its first reward); its models take inputs from
any device and their outputs join the batch's; scores, ``valid`` and diagnostics come back on
the CPU (:func:`finalize`).

Batches carry whatever the rewards of a recipe need; geometry estimated from a batch is cached on
it (``batch.cache``, keyed by the estimator object), so the trajectory, smoothness and
reprojection rewards of one recipe, built with one estimator object
(:mod:`geogrpo.recipes.build` builds each estimator once), share a single estimator call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import Tensor

from geogrpo.perception.base import GeometryEstimate, GeometryEstimator, check_video

# Tensor fields of a batch; their first dimension is the batch size.
BATCH_FIELDS = (
    "video",
    "latents",
    "intrinsics",
    "target_w2c",
    "reference_video",
    "visible",
    "source_video",
)


@dataclass
class RewardBatch:
    """What the generator produced for a batch of conditions, and what it was asked for."""

    video: Tensor | None = None  # [B, F, H, W, 3] in [0, 1], decoded output
    latents: Tensor | None = None  # [B, C, f, h, w], output before decoding
    intrinsics: Tensor | None = None  # [B, 3, 3] pixels, when known
    target_w2c: Tensor | None = None  # [B, F, 4, 4] requested cameras (OpenCV w2c)
    reference_video: Tensor | None = None  # [B, F, H, W, 3] reprojected source (DEVIS-GRPO)
    visible: Tensor | None = None  # [B, F, H, W] bool, pixels the reprojection covers
    source_video: Tensor | None = None  # [B, F, H, W, 3] the v2v source clip
    prompts: list[str] | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def size(self) -> tuple[int, str]:
        """Batch size and, when the fields disagree, why (else "")."""
        sizes = {
            name: getattr(self, name).shape[0]
            for name in BATCH_FIELDS
            if isinstance(getattr(self, name), Tensor)
        }
        if self.prompts is not None:
            sizes["prompts"] = len(self.prompts)
        if not sizes:
            return 0, "the batch holds no video, latents or conditions"
        b = max(sizes.values())
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{k}={v}" for k, v in sizes.items())
            return b, f"batch fields disagree in size ({listed}); every field needs B entries"
        return b, ""

    def select(self, rows: list[int]) -> RewardBatch:
        """The samples ``rows`` as a batch of their own, with an empty cache (an estimate of the
        whole batch is not reused)."""
        prompts = [self.prompts[i] for i in rows] if self.prompts is not None else None
        return self._map_tensors(lambda t: t[rows], prompts=prompts, cache={})

    def to(self, device: torch.device | str) -> RewardBatch:
        """The batch with its tensors on ``device``, sharing this batch's cache (moved once for
        every reward of a step, not once per reward)."""
        return self._map_tensors(lambda t: t.to(device), cache=self.cache)

    def _map_tensors(self, fn: Callable[[Tensor], Tensor], **changes: Any) -> RewardBatch:
        """A copy with ``fn`` applied to every tensor field and ``changes`` set."""
        tensors = {
            name: fn(value)
            for name in BATCH_FIELDS
            if isinstance(value := getattr(self, name), Tensor)
        }
        return replace(self, **tensors, **changes)


@dataclass
class RewardOutput:
    """Per-sample scores, which of them count, and what went into them."""

    scores: Tensor  # [B] float32, finite, 0 where invalid
    valid: Tensor  # [B] bool
    diagnostics: dict[str, Tensor] = field(default_factory=dict)  # name -> [B]
    reasons: list[str] = field(default_factory=list)  # [B], "" for valid samples


class Reward(Protocol):
    name: str

    def __call__(self, batch: RewardBatch) -> RewardOutput: ...


def finalize(
    scores: Tensor,
    valid: Tensor,
    reasons: list[str],
    diagnostics: dict[str, Tensor] | None = None,
) -> RewardOutput:
    """Mask invalid and non-finite scores to 0 with a reason; diagnostics keep NaN where unknown.
    Everything comes back on the CPU, whatever device the reward computed on."""
    scores = scores.detach().float().reshape(-1).cpu()
    valid = valid.detach().bool().reshape(-1).cpu().clone()
    reasons = list(reasons)
    bad = ~torch.isfinite(scores) & valid
    for i in torch.nonzero(bad).flatten().tolist():
        reasons[i] = "the reward computed a non-finite score"
    valid &= ~bad
    scores = torch.where(valid, scores, torch.zeros_like(scores))
    diag = {k: v.detach().float().reshape(-1).cpu() for k, v in (diagnostics or {}).items()}
    return RewardOutput(scores, valid, diag, reasons)


def all_masked(b: int, reason: str, diagnostics: tuple[str, ...] = ()) -> RewardOutput:
    """Every sample masked for one batch-level reason."""
    nan = torch.full((b,), float("nan"))
    return RewardOutput(
        torch.zeros(b),
        torch.zeros(b, dtype=torch.bool),
        {k: nan for k in diagnostics},
        [reason] * b,
    )


def score_isolating_failures(
    reward: Reward, batch: RewardBatch
) -> tuple[RewardOutput, dict[int, str]]:
    """``reward(batch)``, and the samples masked because the reward failed on them.

    When the reward raises (an exception inside a perception model), each sample is scored
    again on its own, so that only the samples it raises on are masked, with the exception as
    their reason. A non-finite score the reward calls valid breaks the contract above and is
    masked too. Returns the output and ``{sample: why}`` for each sample masked this way."""
    b, _ = batch.size()
    failed: dict[int, str] = {}
    try:
        out = reward(batch)
    except Exception as err:
        if b < 2:
            failed = dict.fromkeys(range(b), _failure(reward, err))
            out = all_masked(b, failed.get(0, ""))
        else:
            parts = []
            for i in range(b):
                try:
                    parts.append(reward(batch.select([i])))
                except Exception as one:
                    failed[i] = _failure(reward, one)
                    parts.append(all_masked(1, failed[i]))
            out = _concat(parts)
    broken = ~torch.isfinite(out.scores) & out.valid
    if broken.any():
        reasons = list(out.reasons) or [""] * b
        for i in torch.nonzero(broken).flatten().tolist():
            failed[i] = reasons[i] = (
                f"{reward.name} returned the non-finite score {float(out.scores[i])}"
            )
        valid = out.valid & ~broken
        out = replace(out, scores=torch.where(valid, out.scores, 0.0), valid=valid, reasons=reasons)
    return out, failed


def _failure(reward: Reward, err: Exception) -> str:
    return f"{reward.name} raised {type(err).__name__}: {err}"


def _concat(outs: list[RewardOutput]) -> RewardOutput:
    """One output of per-sample outputs; a diagnostic some of them lack is NaN there."""
    keys = sorted({k for o in outs for k in o.diagnostics})
    nan = torch.full((1,), float("nan"))
    return RewardOutput(
        torch.cat([o.scores.float() for o in outs]),
        torch.cat([o.valid for o in outs]),
        {k: torch.cat([o.diagnostics.get(k, nan) for o in outs]) for k in keys},
        [r for o in outs for r in (o.reasons or [""] * o.scores.numel())],
    )


def estimate_geometry(batch: RewardBatch, estimator: GeometryEstimator) -> GeometryEstimate:
    """Estimate once per batch and estimator object; later rewards reuse the cached estimate,
    on the batch's device (an estimator on another device, e.g. an OpenCV one on the CPU, has
    its estimate moved once)."""
    key = f"geometry/{estimator.name}/{id(estimator)}"  # the entry keeps the estimator alive
    if key not in batch.cache:
        if batch.video is None:
            raise ValueError(
                f"video: the {estimator.name} estimator needs the decoded video; this batch has "
                "only latents (use a latent estimator, source='latent')"
            )
        check_video("video", batch.video)
        estimate = estimator.estimate(batch.video, batch.intrinsics)
        batch.cache[key] = (estimator, estimate.to(batch.video.device))
    return batch.cache[key][1]
