"""The sampling loop, as a pure function of a velocity function.

Steps flagged ``sde`` in the plan draw from the SDE and record the drawn latent and its log-prob
(what the trainer re-scores); the others are deterministic ODE steps. Policies, the 2D toy and
the trainer all sample through :func:`denoise`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.rl.schedules import StepPlan
from geogrpo.rl.sde import Generators, SDEKind, ode_step, sde_step

# velocity(x_t [B, ...], t) -> v [B, ...]
VelocityFn = Callable[[Tensor, float], Tensor]
# guide(step index, x_next [B, ...], v [B, ...], t_next) -> nudged x_next (reward guidance)
GuideFn = Callable[[int, Tensor, Tensor, float], Tensor]


@dataclass
class DenoisingPath:
    """What one walk along a plan produced: the final latents and, per step, the states and
    the log-probs of the stochastic steps."""

    latents: Tensor  # [B, ...] at t = 0
    states: dict[int, Tensor]  # grid index -> x_t [B, ...]; kept where asked (see denoise)
    log_probs: dict[int, Tensor]  # step index -> [B], SDE steps only


@torch.no_grad()
def denoise(
    velocity: VelocityFn,
    noise: Tensor,  # [B, ...]
    plan: StepPlan,
    noise_level: float = 0.7,
    kind: SDEKind = "flow_grpo",
    generator: Generators = None,
    *,
    keep: str = "trained",
    progress: bool = False,
    guide: GuideFn | None = None,
) -> DenoisingPath:
    """Walk ``plan.timesteps`` from noise to data.

    ``keep`` says which states to return: ``"trained"`` the state before and after each trained
    step (what the GRPO loss re-scores), ``"all"`` every grid point, ``"none"`` only the result.
    ``guide`` may nudge the latent after each step (test-time reward guidance,
    :mod:`geogrpo.rl.guidance`); it is for sampling, not for rollouts whose log-probs are trained.
    """
    if keep not in ("trained", "all", "none"):
        raise ValueError(f"keep: expected 'trained', 'all' or 'none', got {keep!r}")
    wanted = {
        "all": set(range(plan.num_steps + 1)),
        "trained": {j for i in plan.train_indices for j in (i, i + 1)},
        "none": set(),
    }[keep]
    x = noise
    states = {0: x} if 0 in wanted else {}
    log_probs: dict[int, Tensor] = {}
    grid = plan.timesteps.tolist()
    for i in tqdm(range(plan.num_steps), desc="denoise", leave=False, disable=not progress):
        t, t_next = grid[i], grid[i + 1]
        v = velocity(x, t)
        if plan.sde[i]:
            out = sde_step(x, v, t, t_next, noise_level, kind, generator=generator)
            x, log_probs[i] = out.x_next, out.log_prob
        else:
            x = ode_step(x, v, t, t_next)
        if guide is not None:
            x = guide(i, x, v, t_next)
        if i + 1 in wanted:
            states[i + 1] = x
    return DenoisingPath(latents=x, states=states, log_probs=log_probs)
