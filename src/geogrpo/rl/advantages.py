"""Group-relative advantages (GRPO) for one batch of rollouts.

Rewards are laid out as ``[N, G]`` (N conditions, G samples per condition) or ``[N, G, K]`` with K
reward dimensions. Standard deviations are population stds (``unbiased=False``) so that a
normalised group has exactly unit std.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from geogrpo.utils.checks import check_choice, check_finite, check_ndim, check_positive

StdMode = Literal["group", "global", "max_group"]
STD_MODES = ("group", "global", "max_group")


@dataclass(frozen=True)
class GroupAdvantages:
    """Advantages ``[N, G]`` and the mask of groups that carry a learning signal ``[N]``."""

    advantages: Tensor  # [N, G]
    valid: Tensor  # [N] bool: False where every reward in the group was equal

    def flat(self) -> tuple[Tensor, Tensor]:
        """``([N*G], [N*G])`` advantages and per-sample mask, in rollout order."""
        g = self.advantages.shape[1]
        return self.advantages.reshape(-1), self.valid.repeat_interleave(g)


def _check_rewards(rewards: Tensor, ndim: int, layout: str) -> None:
    check_ndim("rewards", rewards, ndim, layout)
    check_finite("rewards", rewards)
    if rewards.shape[0] < 1:
        raise ValueError("rewards: the batch holds no group")
    if rewards.shape[1] < 2:
        raise ValueError(
            f"rewards: group size is {rewards.shape[1]}; GRPO needs at least 2 samples per "
            "condition to form a baseline (raise the group size)"
        )


def group_advantages(
    rewards: Tensor,  # [N, G]
    std_mode: StdMode = "group",
    eps: float = 1e-8,
    min_std: float = 1e-6,
    sample_valid: Tensor | None = None,  # [N, G] bool, False where a reward could not score
) -> GroupAdvantages:
    """Normalise rewards within each condition's group: ``A = (r - mean_g) / (s + eps)``.

    ``std_mode`` picks ``s``:

    * ``"group"``: the group's own std (DeepSeekMath GRPO; Flow-GRPO; VGGRPO eq. 3).
    * ``"global"``: the std of all rewards in the batch (Flow-GRPO's global-std option).
    * ``"max_group"``: the largest group std in the batch (LongCat-Video; Geo-Align eq. 5), so
      low-variance groups are not blown up into full-size advantages by their noise.

    Groups whose std is ``<= min_std`` carry no signal: their advantages are exactly 0 and they are
    masked out in ``valid``. Samples marked invalid in ``sample_valid`` (the reward contract's
    masked samples, whose placeholder score is 0) are left out of their group's mean and std and
    get advantage 0; a group needs two valid samples to count.
    """
    check_ndim("rewards", rewards, 2, "[N, G] (conditions x samples per condition)")
    if sample_valid is None:
        sample_valid = torch.ones_like(rewards, dtype=torch.bool)
    check_ndim("sample_valid", sample_valid, 2, "[N, G]")
    if sample_valid.shape != rewards.shape or sample_valid.dtype != torch.bool:
        raise ValueError(
            f"sample_valid: expected a bool tensor shaped like rewards {tuple(rewards.shape)}, "
            f"got {sample_valid.dtype} {tuple(sample_valid.shape)}"
        )
    rewards = torch.where(sample_valid, rewards, torch.zeros_like(rewards))
    _check_rewards(rewards, 2, "[N, G] (conditions x samples per condition)")
    check_choice("std_mode", std_mode, STD_MODES)
    check_positive("eps", eps, allow_zero=True)
    check_positive("min_std", min_std, allow_zero=True)
    w = sample_valid.to(rewards.dtype)
    count = w.sum(dim=1, keepdim=True)  # [N, 1]
    mean = (rewards * w).sum(dim=1, keepdim=True) / count.clamp_min(1)
    centred = (rewards - mean) * w
    group_std = (centred.square().sum(dim=1, keepdim=True) / count.clamp_min(1)).sqrt()  # [N, 1]
    valid = (group_std.squeeze(1) > min_std) & (count.squeeze(1) >= 2)
    if std_mode == "group":
        scale = group_std
    elif std_mode == "global":
        all_valid = rewards[sample_valid]
        scale = (all_valid - all_valid.mean()).square().mean().sqrt().expand_as(group_std)
    else:
        scale = group_std[valid].max() if bool(valid.any()) else group_std.max()
        scale = scale.expand_as(group_std)
    advantages = centred / (scale + eps)
    advantages = torch.where(valid.unsqueeze(1), advantages, torch.zeros_like(advantages))
    return GroupAdvantages(advantages=advantages, valid=valid)


def multi_reward_advantages(
    rewards: Tensor,  # [N, G, K]
    weights: Tensor | None = None,  # [K]
    aggregate: Literal["sum", "mean"] = "sum",
    std_mode: StdMode = "max_group",
    eps: float = 1e-8,
    min_std: float = 1e-6,
    sample_valid: Tensor | None = None,  # [N, G, K] bool
) -> GroupAdvantages:
    """Normalise each reward dimension on its own, then combine in advantage space.

    ``A = sum_k w_k A_k`` (``aggregate="sum"``, Geo-Align eq. 6, with ``std_mode="max_group"``) or
    ``A = sum_k w_k A_k / sum_k w_k`` (``"mean"``, VGGRPO eq. 9 with ``std_mode="group"``). Mixing
    raw rewards of different scales lets the largest-scale one dominate; normalising first
    does not. A dimension with no spread in a group contributes 0 there; a group is valid if any
    dimension is. ``sample_valid`` masks samples per reward dimension (see
    :func:`group_advantages`).
    """
    _check_rewards(rewards, 3, "[N, G, K] (conditions x samples x reward dimensions)")
    check_choice("aggregate", aggregate, ("sum", "mean"))
    k = rewards.shape[2]
    if weights is None:
        weights = torch.ones(k, dtype=rewards.dtype, device=rewards.device)
    check_ndim("weights", weights, 1, "[K]")
    check_finite("weights", weights)
    if weights.shape[0] != k:
        raise ValueError(f"weights: has {weights.shape[0]} entries for {k} reward dimensions")
    if aggregate == "mean" and float(weights.sum()) <= 0:
        raise ValueError("weights: must sum to a positive number for aggregate='mean'")
    if sample_valid is not None and sample_valid.shape != rewards.shape:
        raise ValueError(
            f"sample_valid: expected shape {tuple(rewards.shape)}, got {tuple(sample_valid.shape)}"
        )
    per_reward = [
        group_advantages(
            rewards[..., i],
            std_mode,
            eps,
            min_std,
            None if sample_valid is None else sample_valid[..., i],
        )
        for i in range(k)
    ]
    stacked = torch.stack([p.advantages for p in per_reward], dim=-1)  # [N, G, K]
    combined = (stacked * weights.to(stacked)).sum(dim=-1)
    if aggregate == "mean":
        combined = combined / weights.sum()
    valid = torch.stack([p.valid for p in per_reward], dim=-1).any(dim=-1)
    return GroupAdvantages(advantages=combined, valid=valid)


def clip_advantages(advantages: Tensor, max_abs: float) -> Tensor:
    """Clamp advantages to ``[-max_abs, max_abs]`` (Flow-GRPO's ``adv_clip_max``)."""
    check_finite("advantages", advantages)
    bound = check_positive("max_abs", max_abs)
    return advantages.clamp(-bound, bound)
