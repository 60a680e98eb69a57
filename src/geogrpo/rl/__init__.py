"""Sampling and learning math of flow-matching GRPO, as pure functions on tensors."""

from geogrpo.rl.advantages import (
    GroupAdvantages,
    clip_advantages,
    group_advantages,
    multi_reward_advantages,
)
from geogrpo.rl.guidance import GuidanceOutput, guidance_step_indices, reward_guidance_step
from geogrpo.rl.losses import (
    PolicyLoss,
    StepLoss,
    clipped_policy_loss,
    gaussian_kl,
    grpo_step_loss,
    timestep_loss_weights,
    velocity_sensitivity,
)
from geogrpo.rl.schedules import (
    StepPlan,
    denoising_reduction_timesteps,
    flow_grpo_fast_plan,
    flow_matching_timesteps,
    full_sde_plan,
    random_subset_plan,
    sliding_window_plan,
    sliding_window_start,
)
from geogrpo.rl.sde import (
    SDE_STEPS,
    GaussianStep,
    SDEStepOutput,
    cps_step,
    dance_grpo_step,
    flow_grpo_sigma,
    flow_grpo_step,
    ode_step,
    sde_step,
)

__all__ = [
    "SDE_STEPS",
    "GaussianStep",
    "GroupAdvantages",
    "GuidanceOutput",
    "PolicyLoss",
    "SDEStepOutput",
    "StepLoss",
    "StepPlan",
    "clip_advantages",
    "clipped_policy_loss",
    "cps_step",
    "dance_grpo_step",
    "denoising_reduction_timesteps",
    "flow_grpo_fast_plan",
    "flow_grpo_sigma",
    "flow_grpo_step",
    "flow_matching_timesteps",
    "full_sde_plan",
    "gaussian_kl",
    "group_advantages",
    "grpo_step_loss",
    "guidance_step_indices",
    "multi_reward_advantages",
    "ode_step",
    "random_subset_plan",
    "reward_guidance_step",
    "sde_step",
    "sliding_window_plan",
    "sliding_window_start",
    "timestep_loss_weights",
    "velocity_sensitivity",
]
