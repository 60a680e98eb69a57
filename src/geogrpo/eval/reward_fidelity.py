"""Reward fidelity: does a reward rank the samples of a GRPO group the way the ground truth does?

GRPO learns only the order a reward puts on a group's samples (advantages are normalised within
the group), so what matters is not how a reward correlates with the truth across conditions but
inside one group. For every reward and every ground-truth metric this reports

* ``within_group_std``: the mean over groups of the reward's spread inside a group (what GRPO
  can see), beside ``across_condition_std``, the spread of the group means (what it cannot use);
* ``spearman``: the mean over groups of the within-group Spearman correlation between reward and
  truth, oriented so that +1 means "ranks like the truth" for every metric (errors and distances
  are negated), with a percentile bootstrap 95 % interval over groups;
* ``best_above_median``: the share of groups whose best sample by the reward is better than the
  group's median by the truth (0.5 for a reward that knows nothing).

The statistics are pure functions of ``[N, G]`` tensors; :func:`sample_groups` and
:func:`score_groups` produce those tensors with the training sampler and the rewards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from geogrpo.eval.stats import bootstrap_mean_interval
from geogrpo.utils.checks import check_int_range

MIN_GROUP = 3  # valid samples a group needs for a Spearman correlation


def within_group_spearman(reward: Tensor, truth: Tensor, valid: Tensor | None = None) -> Tensor:
    """``[N, G]`` scores -> ``[N]`` Spearman correlation per group over its valid samples (ties
    averaged); NaN for a group with fewer than 3 valid samples or a constant reward or truth."""
    from scipy.stats import spearmanr

    valid = _valid(reward, truth, valid)
    out = torch.full((reward.shape[0],), math.nan, dtype=torch.float64)
    for n in range(reward.shape[0]):
        r, t = reward[n][valid[n]].double(), truth[n][valid[n]].double()
        if r.numel() < MIN_GROUP or float(r.std()) == 0 or float(t.std()) == 0:
            continue
        out[n] = float(spearmanr(r.numpy(), t.numpy()).statistic)
    return out


def best_above_median(reward: Tensor, truth: Tensor, valid: Tensor | None = None) -> Tensor:
    """``[N]`` float: 1 where the group's best sample by ``reward`` is better than the group's
    median by ``truth`` (higher is better for both), 0 where worse, 0.5 on a tie (a discrete
    truth such as a matched fraction ties often), NaN for a group with fewer than 3 valid
    samples."""
    valid = _valid(reward, truth, valid)
    out = torch.full((reward.shape[0],), math.nan, dtype=torch.float64)
    for n in range(reward.shape[0]):
        r, t = reward[n][valid[n]].double(), truth[n][valid[n]].double()
        if r.numel() < MIN_GROUP:
            continue
        pick, median = t[int(r.argmax())], t.quantile(0.5)  # even G: mean of the middle two
        out[n] = 1.0 if pick > median else 0.5 if pick == median else 0.0
    return out


def spread(reward: Tensor, valid: Tensor | None = None) -> tuple[float, float]:
    """``(within_group_std, across_condition_std)`` of ``[N, G]`` scores over valid samples:
    the mean of each group's population std, and the std of the group means."""
    valid = torch.isfinite(reward) if valid is None else valid & torch.isfinite(reward)
    stds, means = [], []
    for n in range(reward.shape[0]):
        r = reward[n][valid[n]].double()
        if r.numel() >= 2:
            stds.append(float(r.std(unbiased=False)))
        if r.numel():
            means.append(float(r.mean()))
    within = sum(stds) / len(stds) if stds else math.nan
    across = float(torch.tensor(means).std(unbiased=False)) if len(means) >= 2 else math.nan
    return within, across


def fidelity_stats(
    reward: Tensor,  # [N, G], higher = preferred by the reward
    truth: Tensor,  # [N, G]
    valid: Tensor | None = None,  # [N, G] bool
    *,
    higher_is_better: bool = True,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Every number of the module docstring for one reward against one truth metric."""
    if reward.shape != truth.shape or reward.ndim != 2:
        raise ValueError(
            f"reward/truth: expected two [N, G] tensors, got {tuple(reward.shape)} and "
            f"{tuple(truth.shape)}"
        )
    good = truth if higher_is_better else -truth
    rho = within_group_spearman(reward, good, valid)
    best = best_above_median(reward, good, valid)
    lo, hi = bootstrap_mean_interval(rho, level, seed=seed)
    within, across = spread(reward, valid)
    finite = rho[torch.isfinite(rho)]
    scored = best[torch.isfinite(best)]
    return {
        "spearman": float(finite.mean()) if finite.numel() else math.nan,
        "spearman_low": lo,
        "spearman_high": hi,
        "best_above_median": float(scored.mean()) if scored.numel() else math.nan,
        "within_group_std": within,
        "across_condition_std": across,
        "groups": float(finite.numel()),
    }


def _valid(reward: Tensor, truth: Tensor, valid: Tensor | None) -> Tensor:
    ok = torch.isfinite(reward) & torch.isfinite(truth)
    return ok if valid is None else ok & valid


# --- sampling and scoring groups ----------------------------------------------------------------


@dataclass
class GroupScores:
    """What one reward-fidelity run measured: ``[N, G]`` per reward and per truth metric."""

    rewards: dict[str, Tensor]  # name -> [N, G]
    reward_valid: dict[str, Tensor]  # name -> [N, G] bool
    diagnostics: dict[str, Tensor]  # "reward/diagnostic" -> [N, G]
    truth: dict[str, Tensor]  # metric -> [N, G]

    def table(self, level: float = 0.95, seed: int = 0) -> list[dict[str, Any]]:
        """One row per (reward, truth metric) with :func:`fidelity_stats`."""
        from geogrpo.eval.truth import HIGHER_IS_BETTER

        rows = []
        for name, scores in self.rewards.items():
            for metric, values in self.truth.items():
                stats = fidelity_stats(
                    scores,
                    values,
                    self.reward_valid[name],
                    higher_is_better=HIGHER_IS_BETTER[metric],
                    level=level,
                    seed=seed,
                )
                rows.append({"reward": name, "truth": metric, **stats})
        return rows

    def samples(self) -> list[dict[str, Any]]:
        """Per-sample records (condition, member, every reward, diagnostic and truth value)."""
        first = next(iter(self.truth.values()), next(iter(self.rewards.values())))
        n, g = first.shape
        out = []
        for i in range(n):
            for j in range(g):
                row: dict[str, Any] = {"condition": i, "member": j}
                for name, scores in self.rewards.items():
                    row[f"reward/{name}"] = (
                        float(scores[i, j]) if bool(self.reward_valid[name][i, j]) else None
                    )
                for key, values in {**self.diagnostics, **self.truth}.items():
                    value = float(values[i, j])
                    row[key if key in self.diagnostics else f"truth/{key}"] = (
                        value if math.isfinite(value) else None
                    )
                out.append(row)
        return out


def score_groups(
    videos: Sequence[Tensor],  # N x [G, F, H, W, 3] in [0, 1]
    latents: Sequence[Tensor | None],  # N x [G, C, f, h, w] or None
    conditions,  # ConditionBatch of the N conditions (one row each)
    rewards: Sequence[tuple[str, Any]],
    conditioning: str,
    *,
    full_truth: bool = True,
    progress: bool = False,
) -> GroupScores:
    """Score every group with every reward and the ground truth."""
    from tqdm.auto import tqdm

    from geogrpo.eval.truth import truth_metrics

    check_int_range("groups", len(videos), 1)
    perceptual = None
    if full_truth and conditioning in ("camera_v2v", "reproj_v2v"):
        from geogrpo.perception.perceptual import EncoderPerceptualDistance

        perceptual = EncoderPerceptualDistance()
    per_reward: dict[str, list[Tensor]] = {name: [] for name, _ in rewards}
    per_valid: dict[str, list[Tensor]] = {name: [] for name, _ in rewards}
    per_diag: dict[str, list[Tensor]] = {}
    per_truth: dict[str, list[Tensor]] = {}
    for n in tqdm(range(len(videos)), desc="score groups", leave=False, disable=not progress):
        video = videos[n]
        g = video.shape[0]
        group = conditions.select([n]).repeat(g)
        batch = group.reward_batch(video, latents[n])
        for name, reward in rewards:
            out = reward(batch)
            per_reward[name].append(out.scores.double())
            per_valid[name].append(out.valid)
            for key, values in out.diagnostics.items():
                per_diag.setdefault(f"{name}/{key}", []).append(values.double())
        if group.truth is not None:
            truth = truth_metrics(
                video,
                group.truth,
                conditioning,
                full=full_truth,
                truth_depth=group.truth_depth,
                target_w2c=group.target_w2c,
                intrinsics=group.intrinsics,
                perceptual=perceptual,
            )
            for key, values in truth.items():
                per_truth.setdefault(key, []).append(values)
    stack = lambda d: {k: torch.stack(v) for k, v in d.items()}  # noqa: E731
    return GroupScores(stack(per_reward), stack(per_valid), stack(per_diag), stack(per_truth))


@torch.no_grad()
def sample_groups(
    policy,
    conditions,  # ConditionBatch, N conditions
    group_size: int,
    plan,
    noise_level: float,
    sde_kind: str,
    *,
    seed: int = 0,
    micro_batch: int = 8,
    guidance_scale: float = 1.0,
    keep_latents: bool = True,
    progress: bool = False,
) -> tuple[list[Tensor], list[Tensor | None]]:
    """G samples of each condition with the training sampler along ``plan`` (its SDE steps are
    where the group members part), noise seeded per condition so that a condition's group does
    not depend on which other conditions are drawn. Returns N videos ``[G, F, H, W, 3]`` and N
    latents (or None)."""
    from tqdm.auto import tqdm

    from geogrpo.train.rollout import rollout
    from geogrpo.utils.video import model_to_frames

    check_int_range("group_size", group_size, 2)
    videos, latents = [], []
    for n in tqdm(range(len(conditions)), desc="sample groups", leave=False, disable=not progress):
        group = conditions.select([n]).repeat(group_size)
        condition = policy.prepare(group.prompts, group.inputs, guidance_scale=guidance_scale)
        gen = torch.Generator().manual_seed(seed * 100_003 + n)
        f, (h, w) = group.inputs.num_frames, group.inputs.image_size
        noise = policy.initial_noise(condition, f, h, w, gen)
        path = rollout(
            policy,
            condition,
            noise,
            plan,
            noise_level,
            sde_kind,
            gen,
            micro_batch=micro_batch,
            keep="none",
        )
        z = path.latents
        frames = torch.cat([policy.decode(chunk) for chunk in z.split(micro_batch)])
        videos.append(model_to_frames(frames).cpu())
        latents.append(z.cpu() if keep_latents else None)
    return videos, latents


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :meth:`GroupScores.table` rows."""
    lines = [
        "| reward | truth | within-group std / across-condition std | within-group Spearman "
        "[95 % CI] | best > median | groups |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['reward']} | {r['truth']} | {r['within_group_std']:.4g} / "
            f"{r['across_condition_std']:.4g} | {r['spearman']:+.2f} "
            f"[{r['spearman_low']:+.2f}, {r['spearman_high']:+.2f}] | "
            f"{r['best_above_median']:.2f} | {int(r['groups'])} |"
        )
    return "\n".join(lines)
