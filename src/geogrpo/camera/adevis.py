"""ADEVIS accumulation plans (DEVIS-GRPO): reach an extreme view in several small steps.

A target trajectory is given relative to the source cameras: ``delta[f]`` (``[F, 4, 4]``) maps
source frame ``f``'s camera to the target camera of frame ``f``. ADEVIS splits it into K increments
with fractions ``a_1..a_K`` (summing to 1; eq. 7) and generates K videos, each reprojected from
a reference and re-rendered by the policy. The strategies differ only in what is reprojected:

* ``rfa`` (eq. 8): always the source video, straight to the k-th cumulative pose.
* ``rva`` (eq. 9): the previous stage's generated video, by the k-th increment.
* ``ora_dt`` / ``ora_cc``: like ``rva``, then fused with the source reprojection in the regions
  judged reliable: near depth (below a threshold) or large 8-connected components.
* ``bta`` (eqs. 10-13): bullet time. The first source frame is repeated ``n`` times before the
  video and the increment is spread over those frames, so the model sees a smooth transition
  from the previous view to the new one; the bullet-time frames are dropped afterwards.

This module plans the *cameras* of every stage; the reprojection and fusion run in
``geogrpo.geometry`` and the trainer. Choices the paper leaves open, and ours:
cumulative poses follow the SE(3) geodesic from the identity
(:func:`interpolate_from_identity`); stochastic fractions are a Dirichlet(1) draw with a floor
``min_fraction`` so that no step is empty; the bullet-time ramp is linear in the fraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from geogrpo.camera.se3 import check_pose, invert_pose
from geogrpo.camera.trajectory import interpolate_from_identity
from geogrpo.utils.checks import check_choice, check_int_range, check_positive

Strategy = Literal["rfa", "rva", "ora_dt", "ora_cc", "bta"]
STRATEGIES = ("rfa", "rva", "ora_dt", "ora_cc", "bta")


@dataclass(frozen=True)
class AccumulationStage:
    """One ADEVIS stage: what to reproject, from which cameras, to which cameras."""

    index: int  # k, from 1
    reference: Literal["source", "previous"]  # video reprojected in this stage
    fusion: Literal["none", "depth_threshold", "connected_components"]  # fuse with source warp
    reference_delta: Tensor  # [F, 4, 4] source-camera -> reference-video camera (k-1 cumulative)
    target_delta: Tensor  # [F, 4, 4] source-camera -> this stage's camera (k cumulative)
    bullet_time_delta: Tensor | None  # [n, 4, 4] BTA ramp at frame 0, else None

    @property
    def reproject_delta(self) -> Tensor:
        """``[F, 4, 4]`` reference camera -> stage camera, the warp this stage applies."""
        return self.target_delta @ invert_pose(self.reference_delta)


def _fractions(num_steps: int, generator: torch.Generator | None, min_fraction: float) -> Tensor:
    if generator is None:
        return torch.full((num_steps,), 1.0 / num_steps, dtype=torch.float64)
    if min_fraction * num_steps > 1:
        raise ValueError(f"min_fraction: {min_fraction} x {num_steps} steps exceeds 1")
    e = -torch.log(torch.rand(num_steps, generator=generator, dtype=torch.float64).clamp_min(1e-12))
    return min_fraction + (1 - min_fraction * num_steps) * e / e.sum()


def accumulation_plan(
    delta: Tensor,  # [F, 4, 4]
    strategy: Strategy,
    num_steps: int,
    *,
    generator: torch.Generator | None = None,
    min_fraction: float = 0.1,
    bullet_time_frames: int = 8,
) -> list[AccumulationStage]:
    """Stages of one ADEVIS rollout; equal increments unless a ``generator`` randomises them."""
    check_pose("delta", delta)
    if delta.ndim != 3:
        raise ValueError(f"delta: expected a trajectory [F, 4, 4], got {tuple(delta.shape)}")
    check_choice("strategy", strategy, STRATEGIES)
    check_int_range("num_steps", num_steps, 1)
    check_positive("min_fraction", min_fraction, allow_zero=True)
    check_int_range("bullet_time_frames", bullet_time_frames, 1)
    cumulative = torch.cumsum(_fractions(num_steps, generator, min_fraction), dim=0)
    cumulative[-1] = 1.0  # exact arrival at the target
    fusion = {"ora_dt": "depth_threshold", "ora_cc": "connected_components"}.get(strategy, "none")
    identity = torch.eye(4, dtype=delta.dtype).expand_as(delta)
    stages, previous, prev_alpha = [], identity, 0.0
    for k in range(num_steps):
        alpha = float(cumulative[k])
        target = interpolate_from_identity(delta, alpha)
        reference = "source" if strategy == "rfa" or k == 0 else "previous"
        ramp = None
        if strategy == "bta":
            steps = torch.linspace(prev_alpha, alpha, bullet_time_frames + 1, dtype=delta.dtype)[1:]
            ramp = interpolate_from_identity(delta[:1].expand(bullet_time_frames, 4, 4), steps)
        stages.append(
            AccumulationStage(
                index=k + 1,
                reference=reference,
                fusion=fusion if reference == "previous" else "none",
                reference_delta=identity if reference == "source" else previous,
                target_delta=target,
                bullet_time_delta=ramp,
            )
        )
        previous, prev_alpha = target, alpha
    return stages


def sample_group_plans(
    delta: Tensor,  # [F, 4, 4]
    strategy: Strategy,
    group_size: int,
    seed: int,
    *,
    min_steps: int = 1,
    max_steps: int = 4,
    min_fraction: float = 0.1,
    bullet_time_frames: int = 8,
) -> list[list[AccumulationStage]]:
    """DEVIS-GRPO eq. 14: a group of plans for one target, each with its own random step count
    ``K ~ U{min_steps..max_steps}`` and random increments, reproducible from ``seed``."""
    check_int_range("group_size", group_size, 1)
    check_int_range("min_steps", min_steps, 1)
    check_int_range("max_steps", max_steps, min_steps)
    gen = torch.Generator().manual_seed(seed)
    plans = []
    for _ in range(group_size):
        k = int(torch.randint(min_steps, max_steps + 1, (1,), generator=gen))
        plans.append(
            accumulation_plan(
                delta,
                strategy,
                k,
                generator=gen,
                min_fraction=min_fraction,
                bullet_time_frames=bullet_time_frames,
            )
        )
    return plans
