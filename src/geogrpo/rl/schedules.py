"""Which denoising steps are stochastic and trained: step schedules as :class:`StepPlan` objects.

A plan is the time grid actually stepped plus, per step, whether it is an SDE step (sampled with
noise, so it has a log-probability) and whether that log-probability enters the loss. Plans are
pure values computed from the iteration number (and a generator where a method draws at random),
so a resumed run rebuilds exactly the plan it would have used.

Step ``i`` goes from ``timesteps[i]`` to ``timesteps[i + 1]``; ``timesteps[0] = 1`` (noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from geogrpo.utils.checks import (
    check_choice,
    check_finite,
    check_int_range,
    check_ndim,
    check_positive,
)


def flow_matching_timesteps(
    num_steps: int, shift: float = 1.0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Grid ``[num_steps + 1]`` from 1 to 0 with the SD3/Wan time shift.

    ``t = shift * u / (1 + (shift - 1) * u)`` for ``u`` uniform on ``[1, 0]`` (Esser et al. 2024,
    eq. 23); Wan2.1 uses ``shift = 5`` at 480p. ``shift > 1`` spends more steps at high noise.
    """
    check_int_range("num_steps", num_steps, 1)
    s = check_positive("shift", shift)
    u = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    return (s * u / (1.0 + (s - 1.0) * u)).to(dtype)


@dataclass(frozen=True)
class StepPlan:
    """A time grid and, per step, its kind (SDE or ODE) and whether it is trained."""

    timesteps: Tensor  # [S + 1], strictly decreasing from 1 to 0
    sde: tuple[bool, ...]  # [S]
    train: tuple[bool, ...]  # [S], a subset of sde

    def __post_init__(self) -> None:
        check_ndim("timesteps", self.timesteps, 1, "[S + 1]")
        check_finite("timesteps", self.timesteps)
        s = self.timesteps.shape[0] - 1
        if s < 1 or len(self.sde) != s or len(self.train) != s:
            raise ValueError(
                f"sde/train: need one flag per step ({s} steps), got {len(self.sde)} and "
                f"{len(self.train)}"
            )
        if not bool((self.timesteps[1:] < self.timesteps[:-1]).all()):
            raise ValueError("timesteps: must decrease strictly from noise (1) to data (0)")
        if any(tr and not sd for tr, sd in zip(self.train, self.sde, strict=True)):
            raise ValueError(
                "train: a trained step must be an SDE step (ODE steps have no density)"
            )

    @property
    def num_steps(self) -> int:
        """Number of steps S taken by the sampler."""
        return len(self.sde)

    @property
    def sde_indices(self) -> list[int]:
        """Indices of the stochastic steps."""
        return [i for i, f in enumerate(self.sde) if f]

    @property
    def train_indices(self) -> list[int]:
        """Indices of the steps whose log-probabilities enter the loss."""
        return [i for i, f in enumerate(self.train) if f]


def _check_grid(timesteps: Tensor) -> int:
    check_ndim("timesteps", timesteps, 1, "[S + 1]")
    if timesteps.shape[0] < 2:
        raise ValueError("timesteps: need at least two grid points (one step)")
    return timesteps.shape[0] - 1


def _window_flags(num_steps: int, start: int, size: int) -> tuple[bool, ...]:
    return tuple(start <= i < start + size for i in range(num_steps))


def full_sde_plan(timesteps: Tensor) -> StepPlan:
    """Every step stochastic and trained (Flow-GRPO, DanceGRPO without subsampling)."""
    n = _check_grid(timesteps)
    return StepPlan(timesteps, (True,) * n, (True,) * n)


def sliding_window_start(
    num_steps: int,
    window_size: int,
    iteration: int,
    shift_interval: int,
    stride: int,
    after_end: Literal["restart", "hold"] = "restart",
) -> int:
    """Window start of MixGRPO's "progressive" strategy at ``iteration``.

    Li et al. 2025 (MixGRPO sec. 3.2; ``GRPOStates.update_iteration`` in their code): the window
    starts at the noisiest step and moves ``stride`` steps toward the data every
    ``shift_interval`` iterations. Past the last whole window (start ``S - w``) it either goes
    back to step 0 (``"restart"``, their ``--roll_back``, on in all their training scripts) or
    stays there (``"hold"``). Their code lets the window shrink at the very end (it stops at step
    ``S - 2``); we keep it whole so every iteration trains ``w`` steps.
    """
    check_int_range("num_steps", num_steps, 1)
    check_int_range("window_size", window_size, 1, num_steps)
    check_int_range("iteration", iteration, 0)
    check_int_range("shift_interval", shift_interval, 1)
    check_int_range("stride", stride, 1)
    check_choice("after_end", after_end, ("restart", "hold"))
    last = num_steps - window_size
    moves = iteration // shift_interval
    if after_end == "hold":
        return min(moves * stride, last)
    positions = last // stride + 1  # starts 0, s, 2s, ... <= last, then back to 0
    return (moves % positions) * stride


def sliding_window_plan(
    timesteps: Tensor,
    window_size: int,
    iteration: int,
    *,
    shift_interval: int = 1,
    stride: int = 1,
    after_end: Literal["restart", "hold"] = "restart",
    ode_tail_ratio: float = 1.0,
) -> StepPlan:
    """MixGRPO mixed ODE-SDE plan: SDE and training inside the window, ODE elsewhere.

    ``ode_tail_ratio < 1`` compresses the ODE part after the window (MixGRPO-Flash,
    ``dpm_post_compress_ratio``): of the ``S - L`` grid points after the window's last step
    ``L``, ``max(int((S - L) * ratio), 2)`` evenly spaced ones are kept (both ends included),
    so the deterministic tail costs fewer model calls. MixGRPO-Flash solves that tail with
    DPM-Solver++; our plan only sets the grid, and the sampler steps it with
    :func:`geogrpo.rl.sde.ode_step`. Steps before the window are kept: they decide the state
    the window starts from.
    """
    n = _check_grid(timesteps)
    ratio = check_positive("ode_tail_ratio", ode_tail_ratio)
    if ratio > 1:
        raise ValueError(f"ode_tail_ratio: must be in (0, 1], got {ode_tail_ratio}")
    start = sliding_window_start(n, window_size, iteration, shift_interval, stride, after_end)
    end = start + window_size  # first grid index after the window
    if end < n:
        count = max(int((n - end + 1) * ratio), 2)  # grid points kept, both ends included
        tail = torch.linspace(end, n, count, dtype=torch.float64).round().long().unique().tolist()
    else:
        tail = [n]
    keep = list(range(end)) + tail
    grid = timesteps[keep]
    flags = _window_flags(len(keep) - 1, start, window_size)
    return StepPlan(grid, flags, flags)


def flow_grpo_fast_plan(
    timesteps: Tensor, window_size: int, max_start_fraction: float, generator: torch.Generator
) -> StepPlan:
    """Flow-GRPO-Fast: SDE (and training) on a random window early in the trajectory, ODE elsewhere.

    The window start is drawn uniformly from ``0 .. floor(max_start_fraction * S) - w`` (at least
    0), so the stochastic steps fall inside the first ``max_start_fraction`` of the steps, where
    the layout of a sample is decided (Liu et al. 2025, Flow-GRPO-Fast; World-R1 sec. 3.4).
    """
    n = _check_grid(timesteps)
    check_int_range("window_size", window_size, 1, n)
    frac = check_positive("max_start_fraction", max_start_fraction)
    if frac > 1:
        raise ValueError(f"max_start_fraction: must be in (0, 1], got {max_start_fraction}")
    last_start = max(int(frac * n) - window_size, 0)
    start = int(torch.randint(last_start + 1, (1,), generator=generator))
    flags = _window_flags(n, start, window_size)
    return StepPlan(timesteps, flags, flags)


def random_subset_plan(
    timesteps: Tensor, num_train_steps: int, generator: torch.Generator
) -> StepPlan:
    """DanceGRPO: every step is SDE; the loss uses a random subset of ``num_train_steps`` steps.

    Xue et al. 2025 (DanceGRPO, "timestep selection", ``timestep_fraction``): training on a
    fraction of the steps costs proportionally less with little loss in reward.
    """
    n = _check_grid(timesteps)
    check_int_range("num_train_steps", num_train_steps, 1, n)
    chosen = set(torch.randperm(n, generator=generator)[:num_train_steps].tolist())
    return StepPlan(timesteps, (True,) * n, tuple(i in chosen for i in range(n)))


def denoising_reduction_timesteps(
    num_inference_steps: int, num_train_steps: int, shift: float = 1.0
) -> tuple[Tensor, Tensor]:
    """``(train grid, inference grid)``: sample with fewer steps while training than at test time.

    Flow-GRPO's denoising reduction, used by VGGRPO (appendix A.6): rollouts use ``num_train_steps``
    (e.g. 10) on the same shifted schedule as the ``num_inference_steps`` (e.g. 40) used for
    evaluation; the rewards still rank samples correctly and rollouts get ``T/T'`` times cheaper.
    """
    check_int_range("num_inference_steps", num_inference_steps, 1)
    check_int_range("num_train_steps", num_train_steps, 1, num_inference_steps)
    return (
        flow_matching_timesteps(num_train_steps, shift),
        flow_matching_timesteps(num_inference_steps, shift),
    )


def ode_plan(timesteps: Tensor) -> StepPlan:
    """Deterministic sampling: every step an ODE step, nothing trained."""
    n = _check_grid(timesteps)
    return StepPlan(timesteps, (False,) * n, (False,) * n)
