"""Test-time reward guidance (VGGRPO sec. 4.3 and appendix B.2, eqs. 30-31).

A differentiable reward of the latent (VGGRPO: the Latent Geometry Model's smoothness and
reprojection rewards, no VAE decode) gives a gradient with which the latent is nudged uphill at
selected denoising steps (VGGRPO: every 20 of 50). No training is involved: it improves a fixed
model at the cost of one reward backward pass per guided step.

VGGRPO scores the clean-latent prediction of the current noisy latent; pass
``reward_fn = lambda x: reward(x - t * v.detach())`` (``x0 = x_t - t v`` in our convention) to
guide the same way. The paper's eq. 31 is not legible in our copy; we implement the standard
gradient-ascent form it describes ("compute the gradient of this reward with respect to the
current latent and use it to modify the sampling trajectory").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from geogrpo.utils.checks import check_finite, check_int_range, check_positive


@dataclass(frozen=True)
class GuidanceOutput:
    """The nudged latent and the reward measured before the nudge."""

    x: Tensor  # [B, ...]
    reward: Tensor  # [B]


def reward_guidance_step(
    x: Tensor,  # [B, ...]
    reward_fn: Callable[[Tensor], Tensor],  # [B, ...] -> [B]
    step_size: float,
    *,
    normalize: bool = False,
) -> GuidanceOutput:
    """Gradient ascent on the reward: ``x + step_size * g`` with ``g = d reward / d x``.

    With ``normalize=True`` each sample's gradient is rescaled to unit RMS first, so
    ``step_size`` is the per-element move whatever the reward's scale.
    """
    check_finite("x", x)
    eta = check_positive("step_size", step_size, allow_zero=True)
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        reward = reward_fn(xg)
        if reward.shape != (x.shape[0],):
            raise ValueError(
                f"reward_fn: must return one reward per sample [{x.shape[0]}], got "
                f"{tuple(reward.shape)}"
            )
        check_finite("reward_fn output", reward)
        (grad,) = torch.autograd.grad(reward.sum(), xg)
    check_finite("reward gradient", grad)
    if normalize:
        rms = grad.flatten(1).square().mean(dim=1).sqrt().clamp_min(1e-12)
        grad = grad / rms.view(-1, *([1] * (x.ndim - 1)))
    return GuidanceOutput(x=(x + eta * grad).detach(), reward=reward.detach())


def guidance_step_indices(num_steps: int, every: int, first: int = 0) -> list[int]:
    """Denoising steps after which guidance is applied: ``first, first + every, ...``."""
    check_int_range("num_steps", num_steps, 1)
    check_int_range("every", every, 1)
    check_int_range("first", first, 0, num_steps - 1)
    return list(range(first, num_steps, every))
