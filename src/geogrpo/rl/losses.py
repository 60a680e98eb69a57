"""Per-step GRPO losses on the Gaussian step distributions of :mod:`geogrpo.rl.sde`.

All per-sample quantities are ``[B]`` with ``B = N * G`` rollouts in group order; one call handles
one denoising step, and the trainer sums the calls over the trained steps of a rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from geogrpo.rl.sde import Reduce, SDEKind, flow_grpo_sigma
from geogrpo.utils.checks import (
    check_choice,
    check_finite,
    check_ndim,
    check_positive,
    check_same_shape,
)


@dataclass(frozen=True)
class PolicyLoss:
    """Per-sample clipped surrogate loss and the diagnostics worth logging."""

    loss: Tensor  # [B]
    ratio: Tensor  # [B]
    clipped: Tensor  # [B] bool: the clipped branch was taken (its gradient is zero)


def clipped_policy_loss(
    log_prob: Tensor,  # [B], under the policy being trained
    old_log_prob: Tensor,  # [B], stored at rollout time
    advantages: Tensor,  # [B]
    clip_range: float,
) -> PolicyLoss:
    """PPO clipped surrogate for one step: ``max(-A r, -A clip(r, 1 - e, 1 + e))``.

    ``r = exp(log_prob - old_log_prob)`` is the per-step importance ratio (Schulman et al. 2017,
    eq. 7; Flow-GRPO eq. 6; DanceGRPO eq. 5). Where the ratio has already moved ``e`` in the
    direction the advantage asks for, the loss is flat: no further push that step.
    """
    for name, value in (
        ("log_prob", log_prob),
        ("old_log_prob", old_log_prob),
        ("advantages", advantages),
    ):
        check_ndim(name, value, 1, "[B]")
        check_finite(name, value)
    check_same_shape("log_prob", log_prob, "old_log_prob", old_log_prob)
    check_same_shape("log_prob", log_prob, "advantages", advantages)
    eps = check_positive("clip_range", clip_range)
    ratio = torch.exp(log_prob - old_log_prob.detach())
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - eps, 1.0 + eps)
    loss = torch.maximum(unclipped, clipped)
    took_clip = (clipped > unclipped).detach()
    return PolicyLoss(loss=loss, ratio=ratio.detach(), clipped=took_clip)


def gaussian_kl(
    mean_p: Tensor,  # [B, ...]
    std_p: Tensor,  # broadcastable to mean_p
    mean_q: Tensor,  # [B, ...]
    std_q: Tensor,  # broadcastable to mean_q
    reduce: Reduce = "mean",
) -> Tensor:
    """Exact ``KL(N(mean_p, std_p^2) || N(mean_q, std_q^2))`` per sample, ``[B]``.

    Per element ``log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2``; with equal stds this
    is ``(m_p - m_q)^2 / (2 s^2)`` (VGGRPO appendix A.5; Flow-GRPO eq. 7). ``reduce`` must match the
    one used for the log-probabilities so that ``beta`` means the same thing in both.
    """
    check_choice("reduce", reduce, ("mean", "sum"))
    check_same_shape("mean_p", mean_p, "mean_q", mean_q)
    for name, value in (("mean_p", mean_p), ("mean_q", mean_q), ("std_p", std_p), ("std_q", std_q)):
        check_finite(name, value)
    if bool((std_p <= 0).any()) or bool((std_q <= 0).any()):
        raise ValueError("std_p: KL needs strictly positive stds; deterministic steps have no KL")
    var_p, var_q = std_p.square(), std_q.square()
    elementwise = (
        torch.log(std_q / std_p) + (var_p + (mean_p - mean_q).square()) / (2.0 * var_q) - 0.5
    ).expand_as(mean_p)
    dims = tuple(range(1, elementwise.ndim))
    if not dims:
        return elementwise
    return elementwise.mean(dim=dims) if reduce == "mean" else elementwise.sum(dim=dims)


def velocity_sensitivity(
    t: Tensor, t_next: Tensor, noise_level: float, kind: SDEKind = "flow_grpo"
) -> tuple[Tensor, Tensor]:
    """``(c_t, s_t)`` with ``d mean / d v = c_t`` and step std ``s_t``, per step ``[S]``.

    The gradient of a step's log-probability with respect to the velocity scales as
    ``|c_t| / s_t`` and that of the KL term as ``c_t^2 / s_t^2``; these vary by orders of magnitude
    along the trajectory, which is what timestep-aware weights undo.
    """
    check_choice("kind", kind, ("flow_grpo", "dance_grpo", "cps"))
    a = check_positive("noise_level", noise_level)
    t = torch.as_tensor(t, dtype=torch.float64)
    t_next = torch.as_tensor(t_next, dtype=torch.float64)
    dt = t_next - t
    if kind == "cps":
        s = t_next * torch.sin(torch.tensor(a * torch.pi / 2.0, dtype=torch.float64))
        k = torch.sqrt(torch.clamp(t_next.square() - s.square(), min=0.0))
        return -(1.0 - t_next) * t + k * (1.0 - t), s
    sigma = flow_grpo_sigma(t, t_next, a) if kind == "flow_grpo" else torch.full_like(t, a)
    c = dt * (1.0 + sigma.square() * (1.0 - t) / (2.0 * t))
    return c, sigma * torch.sqrt(-dt)


def timestep_loss_weights(
    timesteps: Tensor,  # [S + 1], decreasing from 1 to 0
    noise_level: float,
    kind: SDEKind = "flow_grpo",
    trained: tuple[bool, ...] | None = None,  # [S], the plan's trained steps
) -> tuple[Tensor, Tensor]:
    """Timestep-aware weights ``(policy [S], kl [S])`` that equalise gradient scales across steps.

    Geo-Align (eq. 7) uses "a timestep-aware policy loss weight ... as in LongCat-Video". The
    expected gradient of a step's log-prob with respect to the velocity scales as ``|c_t| / s_t``
    and the KL's as its square (:func:`velocity_sensitivity`); we weight by the inverses,
    ``w_t = s_t / |c_t|`` and ``w_t^2``. With Flow-GRPO noise ``a = 1`` this is exactly
    LongCat-Video's ``lambda_policy = sqrt(t / (dt (1 - t)))`` and ``lambda_KL = t / (dt (1 - t))``
    (LongCat-Video report, sec. 3.3.1 and app. A.1) up to a constant factor; for other ``a`` and
    samplers it is the same principle applied to their ``c_t, s_t``. Both are normalised to mean 1
    over the trained steps (``trained``; all steps with noise when not given), so the loss of a
    window has the same scale wherever the window sits (the constant goes into the learning
    rate); noiseless steps get 0.
    """
    check_ndim("timesteps", timesteps, 1, "[S + 1]")
    check_finite("timesteps", timesteps)
    c, s = velocity_sensitivity(timesteps[:-1], timesteps[1:], noise_level, kind)
    usable = (s > 0) & (c.abs() > 0)
    w = torch.where(usable, s / c.abs().clamp_min(1e-300), torch.zeros_like(s))
    w_kl = w.square()
    if trained is not None:
        if len(trained) != usable.shape[0]:
            raise ValueError(f"trained: {len(trained)} flags for {usable.shape[0]} steps")
        usable = usable & torch.tensor(trained, dtype=torch.bool)
    if not bool(usable.any()):
        raise ValueError("timesteps: no trained step of this grid has noise, nothing to weight")
    w = w / w[usable].mean()
    w_kl = w_kl / w_kl[usable].mean()
    return w.to(timesteps.dtype), w_kl.to(timesteps.dtype)


@dataclass(frozen=True)
class StepLoss:
    """The scalar loss of one denoising step and its parts, for logging."""

    loss: Tensor  # [] differentiable
    policy_loss: Tensor  # [] detached
    kl: Tensor  # [] detached, mean KL over the valid samples (0 when beta is 0)
    ratio_mean: Tensor  # []
    clip_fraction: Tensor  # []


def grpo_step_loss(
    log_prob: Tensor,  # [B]
    old_log_prob: Tensor,  # [B]
    advantages: Tensor,  # [B]
    clip_range: float,
    *,
    weight: float | Tensor = 1.0,
    kl: Tensor | None = None,  # [B], from gaussian_kl(policy, reference)
    kl_beta: float = 0.0,
    kl_weight: float | Tensor | None = None,
    mask: Tensor | None = None,  # [B] bool, False for samples of zero-variance groups
) -> StepLoss:
    """One step's GRPO objective: ``mean_b[w_t * policy_b + beta * w_kl_t * KL_b]`` over ``mask``.

    The full loss of an iteration is the sum of this over the trained steps (Flow-GRPO eq. 6 with
    Geo-Align's timestep weights, eq. 7); ``kl_weight`` defaults to ``weight``.
    """
    policy = clipped_policy_loss(log_prob, old_log_prob, advantages, clip_range)
    beta = check_positive("kl_beta", kl_beta, allow_zero=True)
    if mask is None:
        mask = torch.ones_like(log_prob, dtype=torch.bool)
    check_same_shape("log_prob", log_prob, "mask", mask)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask: expected a bool tensor, got {mask.dtype}")
    weight = torch.as_tensor(weight, dtype=log_prob.dtype, device=log_prob.device)
    check_finite("weight", weight)
    kl_w = weight if kl_weight is None else torch.as_tensor(kl_weight, dtype=log_prob.dtype)
    per_sample = weight * policy.loss
    if beta > 0:
        if kl is None:
            raise ValueError("kl: kl_beta > 0 needs the per-sample KL to the reference policy")
        check_same_shape("log_prob", log_prob, "kl", kl)
        check_finite("kl", kl)
        per_sample = per_sample + beta * kl_w * kl
    count = mask.sum().clamp_min(1)
    m = mask.to(per_sample.dtype)
    kl_mean = (kl.detach() * m).sum() / count if (kl is not None and beta > 0) else torch.zeros(())
    return StepLoss(
        loss=(per_sample * m).sum() / count,
        policy_loss=(policy.loss.detach() * m).sum() / count,
        kl=kl_mean,
        ratio_mean=(policy.ratio * m).sum() / count,
        clip_fraction=(policy.clipped.to(m.dtype) * m).sum() / count,
    )
