"""Sampling a policy: the velocity function that :func:`geogrpo.rl.rollout.denoise` walks,
in micro-batches, and plain ODE generation for ``geogrpo sample`` and evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from geogrpo.models.conditioning import Condition, ConditionInputs
from geogrpo.models.policy import VideoPolicy
from geogrpo.rl.guidance import reward_guidance_step
from geogrpo.rl.rollout import DenoisingPath, VelocityFn, denoise
from geogrpo.rl.schedules import StepPlan, flow_matching_timesteps, ode_plan
from geogrpo.rl.sde import Generators, SDEKind
from geogrpo.utils.checks import check_int_range, check_positive, check_prompts


def policy_velocity(
    policy: VideoPolicy, condition: Condition, micro_batch: int | None = None
) -> VelocityFn:
    """``v(x, t)`` of ``policy`` under ``condition``, in chunks of ``micro_batch`` samples.

    The trainer re-scores stored steps in the same chunks, so the first importance ratio of a
    fresh rollout is exactly 1 (a different batch split changes float rounding).
    """
    if micro_batch is None or micro_batch >= len(condition):
        return lambda x, t: policy.velocity(x, t, condition)
    chunks = [
        (slice(i, i + micro_batch), condition.select(slice(i, i + micro_batch)))
        for i in range(0, len(condition), micro_batch)
    ]
    return lambda x, t: torch.cat([policy.velocity(x[s], t, c) for s, c in chunks])


def rollout(
    policy: VideoPolicy,
    condition: Condition,
    noise: Tensor,  # [B, C, F, h, w]
    plan: StepPlan,
    noise_level: float = 0.7,
    kind: SDEKind = "flow_grpo",
    generator: Generators = None,
    *,
    micro_batch: int | None = None,
    keep: str = "trained",
    progress: bool = False,
) -> DenoisingPath:
    """Walk ``plan`` with the policy (see :func:`geogrpo.rl.rollout.denoise`)."""
    velocity = policy_velocity(policy, condition, micro_batch)
    return denoise(
        velocity, noise, plan, noise_level, kind, generator, keep=keep, progress=progress
    )


@torch.no_grad()
def generate(
    policy: VideoPolicy,
    prompts: list[str],
    num_frames: int,
    height: int,
    width: int,
    num_inference_steps: int = 20,
    shift: float = 3.0,
    seed: int = 0,
    progress: bool = False,
    guidance_scale: float = 1.0,
    inputs: ConditionInputs | None = None,
    reward_guidance: RewardGuidance | None = None,
) -> Tensor:
    """Sample videos ``[B, 3, F, H, W]`` in ``[-1, 1]`` with the deterministic ODE sampler.

    ``prompts`` is a list of strings, one video each; a single string is one prompt. ``inputs``
    are what the conditioning needs (source video, cameras, ...); the seed fixes the initial
    noise. ``guidance_scale`` != 1 samples with classifier-free guidance against the empty
    prompt; ``reward_guidance`` nudges the latents uphill on a differentiable latent reward at
    some steps (VGGRPO's test-time guidance). Every argument is checked before any work.
    """
    prompts = check_prompts("prompts", prompts)
    policy.latent_shape(len(prompts), num_frames, height, width)
    check_int_range("num_inference_steps", num_inference_steps, 1)
    check_positive("shift", shift)
    check_int_range("seed", seed, 0, 2**63 - 1)
    if inputs is not None and not isinstance(inputs, ConditionInputs):
        raise ValueError(
            f"inputs: expected a ConditionInputs, got {type(inputs).__name__}; build one with "
            "ConditionInputs(source_video=..., cameras=...)"
        )
    if reward_guidance is not None and not isinstance(reward_guidance, RewardGuidance):
        raise ValueError(
            f"reward_guidance: expected a RewardGuidance, got {type(reward_guidance).__name__}"
        )
    inputs = replace(inputs or ConditionInputs(), num_frames=num_frames, image_size=(height, width))
    condition = policy.prepare(prompts, inputs, guidance_scale=guidance_scale)
    gen = torch.Generator().manual_seed(seed)
    noise = policy.initial_noise(condition, num_frames, height, width, gen)
    plan = ode_plan(flow_matching_timesteps(num_inference_steps, shift))
    guide = reward_guidance.guide if reward_guidance is not None else None
    velocity = policy_velocity(policy, condition)
    out = denoise(velocity, noise, plan, keep="none", progress=progress, guide=guide)
    return policy.decode(out.latents)


@dataclass
class RewardGuidance:
    """Test-time reward guidance (VGGRPO sec. 4.3): after every ``every``-th step, starting at
    ``first``, move the latent by ``step_size`` (per element, the gradient normalised to unit
    RMS) up the gradient of ``reward(x0)``, ``x0 = x_next - t_next v`` the clean prediction."""

    reward: Callable[[Tensor], Tensor]  # latents [B, C, F, h, w] -> [B], differentiable
    step_size: float = 0.05
    every: int = 5
    first: int = 0
    history: list[float] = field(default_factory=list)  # mean reward before each nudge

    def guide(self, i: int, x: Tensor, v: Tensor, t_next: float) -> Tensor:
        if t_next <= 0 or i < self.first or (i - self.first) % self.every:
            return x
        out = reward_guidance_step(
            x, lambda z: self.reward(z - t_next * v.detach()), self.step_size, normalize=True
        )
        self.history.append(float(out.reward.mean()))
        return out.x
