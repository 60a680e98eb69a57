"""One denoising step of a flow-matching sampler, deterministic (ODE) or stochastic (SDE).

Convention, stated once for the whole package: ``x_t = (1 - t) * x_0 + t * eps`` with ``t = 1``
pure noise and ``t = 0`` data (rectified flow as in SD3 and Wan2.1); the model predicts the
velocity ``v = eps - x_0``; sampling walks ``t`` from 1 down to 0, so ``dt = t_next - t < 0``.

Every SDE step is a Gaussian ``N(mean, std^2)`` over the next latent. It is returned as a
:class:`GaussianStep` so that the log-probability of *any* given next latent (the one stored
during the rollout) can be evaluated under new parameters without resampling: this is what the
GRPO importance ratio needs.

Shapes: latents ``x`` are ``[B, ...]`` (any trailing layout, e.g. ``[B, C, F, H, W]``); times are
a float, a 0-d tensor or a ``[B]`` tensor (one time per sample).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from geogrpo.utils.checks import check_choice, check_finite, check_positive, check_same_shape

Reduce = Literal["mean", "sum"]
SDEKind = Literal["flow_grpo", "dance_grpo", "cps"]
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# One CPU generator for the batch, one per sample (a sequence), or None (the global one).
Generators = torch.Generator | Sequence[torch.Generator] | None


def draw_noise(shape: Sequence[int], generator: Generators, dtype: torch.dtype) -> Tensor:
    """Standard normal noise ``shape`` on the CPU; with one generator per sample, row ``i``
    comes from ``generator[i]`` alone."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(tuple(shape), generator=generator, dtype=dtype)
    if len(generator) != shape[0]:
        raise ValueError(f"generator: {len(generator)} generators for a batch of {shape[0]}")
    return torch.stack([torch.randn(tuple(shape[1:]), generator=g, dtype=dtype) for g in generator])


@dataclass(frozen=True)
class GaussianStep:
    """The distribution ``N(mean, std^2)`` of the next latent given the current one."""

    mean: Tensor  # [B, ...]
    std: Tensor  # broadcastable to mean: [] or [B, 1, ..., 1]

    def sample(self, generator: Generators = None) -> Tensor:
        """Draw ``mean + std * noise``; ``generator`` (a CPU generator) makes rollouts
        reproducible. The noise is drawn on the CPU and moved, so a seed gives the same rollout
        on every device, as the initial noise does. A list of generators, one per sample, makes
        each sample's noise independent of the batch it is drawn in (how the trainer shards a
        step over ranks)."""
        noise = draw_noise(self.mean.shape, generator, self.mean.dtype)
        return self.mean + self.std * noise.to(self.mean.device)

    def log_prob(self, x_next: Tensor, reduce: Reduce = "mean") -> Tensor:
        """Exact Gaussian log-density of ``x_next`` per sample, ``[B]``.

        ``reduce="mean"`` averages the per-element log-density over all non-batch dimensions
        (Flow-GRPO's choice: the ratio becomes a per-element geometric mean and stays O(1) for
        video-sized latents); ``reduce="sum"`` is the joint log-density. ``x_next`` is detached:
        gradients flow only through the distribution's parameters.
        """
        check_choice("reduce", reduce, ("mean", "sum"))
        check_same_shape("mean", self.mean, "x_next", x_next)
        if bool((self.std <= 0).any()):
            raise ValueError(
                "std: this step has zero noise (noise_level=0, or t_next=0 with the CPS sampler), "
                "so it is deterministic and has no density; take it as an ODE step or leave it "
                "out of the trained steps"
            )
        z = (x_next.detach() - self.mean) / self.std
        elementwise = -0.5 * z.square() - torch.log(self.std).expand_as(z) - _LOG_SQRT_2PI
        dims = tuple(range(1, elementwise.ndim))
        if not dims:
            return elementwise
        return elementwise.mean(dim=dims) if reduce == "mean" else elementwise.sum(dim=dims)


def _as_time(name: str, t: float | Tensor, x: Tensor) -> Tensor:
    """Convert a time to a tensor broadcastable against ``x``: ``[]`` or ``[B, 1, ..., 1]``."""
    tt = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    check_finite(name, tt)
    if tt.ndim == 1:
        if tt.shape[0] != x.shape[0]:
            raise ValueError(
                f"{name}: has {tt.shape[0]} entries but the latent batch has {x.shape[0]}; "
                "pass one time per sample or a scalar"
            )
        tt = tt.reshape(-1, *([1] * (x.ndim - 1)))
    elif tt.ndim != 0:
        raise ValueError(f"{name}: expected a scalar or a [B] tensor, got shape {tuple(tt.shape)}")
    if bool(((tt < 0) | (tt > 1)).any()):
        raise ValueError(f"{name}: flow-matching times must lie in [0, 1], got {t}")
    return tt


def _check_step(
    x: Tensor, velocity: Tensor, t: float | Tensor, t_next: float | Tensor
) -> tuple[Tensor, Tensor]:
    check_finite("x", x)
    check_finite("velocity", velocity)
    check_same_shape("x", x, "velocity", velocity)
    if x.ndim == 0:
        raise ValueError("x: expected a batch of latents [B, ...], got a scalar")
    tt = _as_time("t", t, x)
    tn = _as_time("t_next", t_next, x)
    if bool((tn >= tt).any()):
        raise ValueError(
            f"t_next: must be smaller than t (sampling runs from 1 to 0), got {t_next}"
        )
    return tt, tn


def ode_step(x: Tensor, velocity: Tensor, t: float | Tensor, t_next: float | Tensor) -> Tensor:
    """Euler step of the probability-flow ODE ``dx = v dt``: ``x + v * (t_next - t)``.

    Rectified flow (Liu et al., 2023); the deterministic sampler every method uses outside its
    SDE window.
    """
    tt, tn = _check_step(x, velocity, t, t_next)
    return x + velocity * (tn - tt)


def _reverse_sde_step(
    x: Tensor, velocity: Tensor, t: Tensor, dt: Tensor, sigma: Tensor
) -> GaussianStep:
    """Euler-Maruyama step of the marginal-preserving reverse SDE for rectified flow.

    ``dx = [v + sigma_t^2 / (2t) * (x + (1 - t) v)] dt + sigma_t dw`` (Flow-GRPO, Liu et al. 2025,
    eq. 8), where ``-(x + (1 - t) v) / t`` is the score of ``x_t``. Discretised:
    ``mean = x + [v + sigma_t^2/(2t) (x + (1-t) v)] dt``, ``std = sigma_t sqrt(|dt|)``.
    """
    if bool((t <= 0).any()):
        raise ValueError("t: an SDE step needs t > 0 (the score term divides by t)")
    drift = velocity + sigma.square() / (2.0 * t) * (x + (1.0 - t) * velocity)
    return GaussianStep(mean=x + drift * dt, std=sigma * torch.sqrt(-dt))


def flow_grpo_sigma(t: Tensor, t_next: Tensor, noise_level: float) -> Tensor:
    """Flow-GRPO diffusion coefficient ``sigma_t = a * sqrt(t / (1 - t))``.

    At ``t = 1`` the formula diverges; like the Flow-GRPO reference code we then use
    ``1 - t_next`` in the denominator (their ``sigma_max`` is the second grid point).
    """
    denom_t = torch.where(t >= 1.0, t_next, t)
    return noise_level * torch.sqrt(t / (1.0 - denom_t))


def flow_grpo_step(
    x: Tensor, velocity: Tensor, t: float | Tensor, t_next: float | Tensor, noise_level: float
) -> GaussianStep:
    """Flow-GRPO SDE step with ``sigma_t = a sqrt(t / (1 - t))`` (Liu et al. 2025, eq. 9)."""
    a = check_positive("noise_level", noise_level, allow_zero=True)
    tt, tn = _check_step(x, velocity, t, t_next)
    return _reverse_sde_step(x, velocity, tt, tn - tt, flow_grpo_sigma(tt, tn, a))


def dance_grpo_step(
    x: Tensor, velocity: Tensor, t: float | Tensor, t_next: float | Tensor, noise_level: float
) -> GaussianStep:
    """DanceGRPO SDE step: the same reverse SDE with a constant ``sigma_t = eta``.

    Xue et al. 2025 (DanceGRPO), ``flux_step`` with ``sde_solver=True``; ``noise_level`` is eta.
    """
    eta = check_positive("noise_level", noise_level, allow_zero=True)
    tt, tn = _check_step(x, velocity, t, t_next)
    return _reverse_sde_step(x, velocity, tt, tn - tt, torch.full_like(tt, eta))


def cps_step(
    x: Tensor, velocity: Tensor, t: float | Tensor, t_next: float | Tensor, noise_level: float
) -> GaussianStep:
    """Coefficients-preserving sampling (CPS) step, Flow-GRPO's ``sde_type="cps"``.

    Predict ``x0 = x - t v`` and ``eps = x + (1 - t) v``, then re-noise to ``t_next`` so that
    the coefficients of data and noise stay exactly ``(1 - t_next, t_next)``:
    ``mean = (1 - t_next) x0 + sqrt(t_next^2 - s^2) eps``, ``std = s = t_next sin(a pi / 2)``
    (Wang & Yu 2025, "Coefficients-Preserving Sampling for RL with Flow Matching", eq. 10).
    The last step to ``t_next = 0`` has zero noise and is deterministic. Flow-GRPO's code scores
    CPS steps with ``-(x' - mean)^2`` (no ``1 / (2 std^2)``, no constants); ours is the exact
    Gaussian log-density, so ratios and ``clip_range`` are comparable across samplers.
    """
    a = check_positive("noise_level", noise_level, allow_zero=True)
    if a > 1:
        raise ValueError(f"noise_level: CPS needs a in [0, 1] (std = t_next sin(a pi/2)), got {a}")
    tt, tn = _check_step(x, velocity, t, t_next)
    x0 = x - tt * velocity
    eps = x + (1.0 - tt) * velocity
    std = tn * math.sin(a * math.pi / 2.0)
    mean = (1.0 - tn) * x0 + torch.sqrt(torch.clamp(tn.square() - std.square(), min=0.0)) * eps
    return GaussianStep(mean=mean, std=std)


SDE_STEPS: dict[str, Callable[..., GaussianStep]] = {
    "flow_grpo": flow_grpo_step,
    "dance_grpo": dance_grpo_step,
    "cps": cps_step,
}


@dataclass(frozen=True)
class SDEStepOutput:
    """A taken SDE step: the next latent, its log-probability and the step distribution."""

    x_next: Tensor  # [B, ...]
    log_prob: Tensor  # [B]
    mean: Tensor  # [B, ...]
    std: Tensor  # [] or [B, 1, ..., 1]


def sde_step(
    x: Tensor,
    velocity: Tensor,
    t: float | Tensor,
    t_next: float | Tensor,
    noise_level: float,
    kind: SDEKind = "flow_grpo",
    *,
    x_next: Tensor | None = None,
    generator: Generators = None,
    reduce: Reduce = "mean",
) -> SDEStepOutput:
    """Take (or re-score) one SDE step of the chosen ``kind``.

    With ``x_next=None`` a new latent is sampled; with a stored ``x_next`` the same Gaussian is
    rebuilt from the current velocity and the stored latent is re-scored, which is how the
    trainer gets the new-policy log-probability for the importance ratio.
    """
    check_choice("kind", kind, tuple(SDE_STEPS))
    dist = SDE_STEPS[kind](x, velocity, t, t_next, noise_level)
    if x_next is None:
        x_next = dist.sample(generator)
    else:
        check_finite("x_next", x_next)
    return SDEStepOutput(
        x_next=x_next, log_prob=dist.log_prob(x_next, reduce), mean=dist.mean, std=dist.std
    )
