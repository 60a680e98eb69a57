"""Sampling a policy along a step plan: plain ODE sampling and GRPO rollouts share this loop.

Steps flagged ``sde`` in the plan draw from the SDE and record the drawn latent and its log-prob
(what the trainer re-scores); the others are deterministic ODE steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.models.conditioning import Condition
from geogrpo.models.policy import VideoPolicy
from geogrpo.rl.schedules import StepPlan, flow_matching_timesteps, ode_plan
from geogrpo.rl.sde import SDEKind, ode_step, sde_step


@dataclass
class Rollout:
    """A sampled batch: final latents and, per SDE step, the states and log-probs."""

    latents: Tensor  # [B, C, F, h, w] at t = 0
    states: list[Tensor]  # [S + 1] x [B, C, F, h, w], x_t at every grid time
    log_probs: dict[int, Tensor]  # step index -> [B], SDE steps only


@torch.no_grad()
def rollout(
    policy: VideoPolicy,
    condition: Condition,
    noise: Tensor,  # [B, C, F, h, w]
    plan: StepPlan,
    noise_level: float = 0.7,
    kind: SDEKind = "flow_grpo",
    generator: torch.Generator | None = None,
    progress: bool = False,
    keep_states: bool = True,
) -> Rollout:
    """Walk ``plan.timesteps`` from noise to data."""
    x = noise
    states = [x] if keep_states else []
    log_probs: dict[int, Tensor] = {}
    grid = plan.timesteps.tolist()
    steps = range(len(grid) - 1)
    for i in tqdm(steps, desc="denoise", leave=False, disable=not progress):
        t, t_next = grid[i], grid[i + 1]
        v = policy.velocity(x, t, condition)
        if plan.sde[i]:
            out = sde_step(x, v, t, t_next, noise_level, kind, generator=generator)
            x, log_probs[i] = out.x_next, out.log_prob
        else:
            x = ode_step(x, v, t, t_next)
        if keep_states:
            states.append(x)
    return Rollout(latents=x, states=states, log_probs=log_probs)


def generate(
    policy: VideoPolicy,
    prompts: list[str],
    num_frames: int,
    height: int,
    width: int,
    steps: int = 20,
    shift: float = 3.0,
    seed: int = 0,
    progress: bool = False,
    guidance_scale: float = 1.0,
    **inputs: Tensor,
) -> Tensor:
    """Sample videos ``[B, 3, F, H, W]`` in ``[-1, 1]`` with the deterministic ODE sampler.

    ``inputs`` are what the conditioning needs (``source_video``, ``cameras``, ...; see
    :meth:`VideoPolicy.prepare`); the seed fixes the initial noise. ``guidance_scale`` != 1
    samples with classifier-free guidance against the empty prompt.
    """
    inputs.setdefault("num_frames", num_frames)
    inputs.setdefault("image_size", (height, width))
    condition = policy.prepare(prompts, guidance_scale=guidance_scale, **inputs)
    gen = torch.Generator().manual_seed(seed)
    noise = policy.initial_noise(condition, num_frames, height, width, gen)
    plan = ode_plan(flow_matching_timesteps(steps, shift))
    out = rollout(policy, condition, noise, plan, progress=progress, keep_states=False)
    return policy.decode(out.latents)
