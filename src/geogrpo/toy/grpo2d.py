"""Toy end-to-end GRPO on 2D points: the whole RL math of :mod:`geogrpo.rl` in seconds on a CPU.

A small flow-matching MLP is pretrained on a ring of eight Gaussians (the "support"). GRPO then
post-trains it with the Flow-GRPO SDE sampler inside a MixGRPO sliding window toward a reward
that prefers one direction of the plane. Success means: the mean reward rises, samples move to
the preferred mode, and they stay on the ring (the reward does not pay for leaving it, and the
KL term to the pretrained model holds them there).

This is a teaching and testing harness that uses the library's pure functions, not a second
trainer: the video trainer lives in :mod:`geogrpo.train`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from geogrpo.rl.advantages import group_advantages
from geogrpo.rl.losses import gaussian_kl, grpo_step_loss
from geogrpo.rl.rollout import denoise
from geogrpo.rl.schedules import flow_matching_timesteps, sliding_window_plan
from geogrpo.rl.sde import SDE_STEPS, ode_step, sde_step
from geogrpo.utils.checks import check_int_range, check_positive


@dataclass
class ToyGRPOConfig:
    """Settings of the toy run; every field maps onto a ``geogrpo toy-grpo`` flag."""

    seed: int = field(default=0, metadata={"help": "seed for init, data and sampling noise"})
    modes: int = field(default=8, metadata={"help": "Gaussians on the ring"})
    radius: float = field(default=2.0, metadata={"help": "ring radius"})
    mode_std: float = field(default=0.15, metadata={"help": "std of each Gaussian"})
    target_angle_deg: float = field(default=0.0, metadata={"help": "direction the reward prefers"})
    hidden: int = field(default=128, metadata={"help": "MLP width"})
    pretrain_steps: int = field(default=1500, metadata={"help": "flow-matching pretraining steps"})
    pretrain_batch: int = field(default=512, metadata={"help": "pretraining batch size"})
    pretrain_lr: float = field(default=2e-3, metadata={"help": "pretraining learning rate"})
    num_steps: int = field(default=10, metadata={"help": "denoising steps per sample"})
    noise_level: float = field(default=0.7, metadata={"help": "Flow-GRPO noise level a"})
    window_size: int = field(default=3, metadata={"help": "SDE window size (MixGRPO)"})
    shift_interval: int = field(default=4, metadata={"help": "iterations between window shifts"})
    window_stride: int = field(default=1, metadata={"help": "steps the window moves per shift"})
    iterations: int = field(default=30, metadata={"help": "GRPO iterations"})
    groups: int = field(default=16, metadata={"help": "conditions (groups) per iteration"})
    group_size: int = field(default=16, metadata={"help": "samples per group"})
    updates_per_iteration: int = field(default=2, metadata={"help": "optimizer steps per rollout"})
    lr: float = field(default=1e-3, metadata={"help": "GRPO learning rate"})
    clip_range: float = field(default=0.2, metadata={"help": "PPO clip range"})
    kl_beta: float = field(default=0.5, metadata={"help": "KL weight to the pretrained model"})
    eval_samples: int = field(default=2048, metadata={"help": "ODE samples for evaluation"})

    def __post_init__(self) -> None:
        for name in (
            "modes",
            "hidden",
            "pretrain_steps",
            "pretrain_batch",
            "num_steps",
            "window_size",
            "shift_interval",
            "window_stride",
            "iterations",
            "groups",
            "updates_per_iteration",
            "eval_samples",
        ):
            check_int_range(name, getattr(self, name), 1)
        check_int_range("group_size", self.group_size, 2)
        check_int_range("window_size", self.window_size, 1, self.num_steps)
        for name in ("radius", "mode_std", "pretrain_lr", "noise_level", "lr", "clip_range"):
            check_positive(name, getattr(self, name))
        check_positive("kl_beta", self.kl_beta, allow_zero=True)
        if not math.isfinite(self.target_angle_deg):
            raise ValueError(
                f"target_angle_deg: expected a finite angle in degrees, got {self.target_angle_deg}"
            )


class VelocityMLP(nn.Module):
    """``v(x, t)`` for 2D points, with sinusoidal time features."""

    def __init__(self, hidden: int = 128, time_features: int = 8) -> None:
        super().__init__()
        self.register_buffer("freqs", torch.pi * 2.0 ** torch.arange(time_features) / 2.0)
        self.net = nn.Sequential(
            nn.Linear(2 + 2 * time_features, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: Tensor, t: Tensor | float) -> Tensor:  # x: [B, 2], t: [] or [B]
        t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0])
        angles = t[:, None] * self.freqs[None, :]
        return self.net(torch.cat([x, angles.sin(), angles.cos()], dim=1))


def ring_centres(cfg: ToyGRPOConfig) -> Tensor:
    """Mode centres ``[M, 2]``; mode 0 sits at angle 0."""
    ang = torch.arange(cfg.modes, dtype=torch.float32) * (2 * math.pi / cfg.modes)
    return cfg.radius * torch.stack([ang.cos(), ang.sin()], dim=1)


def sample_ring(cfg: ToyGRPOConfig, n: int, generator: torch.Generator) -> Tensor:
    """Draw ``[n, 2]`` points from the mixture."""
    idx = torch.randint(cfg.modes, (n,), generator=generator)
    return ring_centres(cfg)[idx] + cfg.mode_std * torch.randn(n, 2, generator=generator)


def direction_reward(cfg: ToyGRPOConfig, x: Tensor) -> Tensor:
    """``cos(angle(x) - target)`` in [-1, 1]: rewards direction only, never distance."""
    target = math.radians(cfg.target_angle_deg)
    return torch.cos(torch.atan2(x[:, 1], x[:, 0]) - target)


def support_stats(cfg: ToyGRPOConfig, x: Tensor) -> dict[str, float]:
    """Share of points on the ring (within 4 stds of a mode) and at the preferred mode."""
    centres = ring_centres(cfg)
    dist = torch.cdist(x, centres)  # [n, M]
    nearest = dist.argmin(dim=1)
    target_mode = round(cfg.target_angle_deg / (360.0 / cfg.modes)) % cfg.modes
    on_support = dist.min(dim=1).values < 4 * cfg.mode_std
    return {
        "in_support": float(on_support.float().mean()),
        "at_target_mode": float(((nearest == target_mode) & on_support).float().mean()),
    }


def pretrain(cfg: ToyGRPOConfig, generator: torch.Generator) -> VelocityMLP:
    """Flow matching: regress ``v(x_t, t)`` onto ``eps - x0`` for ``x_t = (1-t) x0 + t eps``."""
    model = VelocityMLP(cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.pretrain_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.pretrain_steps)
    for _ in tqdm(range(cfg.pretrain_steps), desc="pretrain flow model", leave=False):
        x0 = sample_ring(cfg, cfg.pretrain_batch, generator)
        eps = torch.randn(x0.shape, generator=generator)
        t = torch.rand(x0.shape[0], generator=generator)
        xt = (1 - t[:, None]) * x0 + t[:, None] * eps
        loss = (model(xt, t) - (eps - x0)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model


@torch.no_grad()
def sample_ode(model: VelocityMLP, noise: Tensor, timesteps: Tensor) -> Tensor:
    """Deterministic Euler sampling from ``noise`` ``[n, 2]``."""
    x = noise
    for t, tn in pairwise(timesteps):
        x = ode_step(x, model(x, t), t, tn)
    return x


def evaluate(
    cfg: ToyGRPOConfig, model: VelocityMLP, noise: Tensor, timesteps: Tensor
) -> dict[str, float]:
    """Reward and support statistics of ODE samples from fixed noise."""
    x = sample_ode(model, noise, timesteps)
    return {"reward": float(direction_reward(cfg, x).mean()), **support_stats(cfg, x)}


@dataclass
class ToyGRPOResult:
    """Before/after metrics, the per-iteration history and the samples for plotting."""

    config: ToyGRPOConfig
    before: dict[str, float]
    after: dict[str, float]
    history: list[dict[str, float]]
    samples_before: Tensor  # [n, 2]
    samples_after: Tensor  # [n, 2]
    model: VelocityMLP
    seconds: float

    def summary(self) -> dict[str, object]:
        """JSON-serialisable summary."""
        return {
            "config": asdict(self.config),
            "before": self.before,
            "after": self.after,
            "seconds": self.seconds,
        }


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run on one CPU thread: the toy's ops are tiny, and with a second busy process on a 2-core
    machine, multi-threaded torch spins in OpenMP barriers and the run gets 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_toy_grpo(
    cfg: ToyGRPOConfig, log: Callable[[int, dict[str, float]], None] | None = None
) -> ToyGRPOResult:
    """Pretrain, then GRPO; ``log(step, metrics)`` receives one row per iteration."""
    with _one_thread():
        return _run_toy_grpo(cfg, log)


def _run_toy_grpo(
    cfg: ToyGRPOConfig, log: Callable[[int, dict[str, float]], None] | None
) -> ToyGRPOResult:
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = pretrain(cfg, gen)
    reference = copy.deepcopy(model).requires_grad_(False)
    timesteps = flow_matching_timesteps(cfg.num_steps)
    eval_noise = torch.randn(
        cfg.eval_samples, 2, generator=torch.Generator().manual_seed(cfg.seed + 1)
    )
    samples_before = sample_ode(model, eval_noise, timesteps)
    before = evaluate(cfg, model, eval_noise, timesteps)

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: list[dict[str, float]] = []
    batch = cfg.groups * cfg.group_size
    for it in tqdm(range(cfg.iterations), desc="toy GRPO"):
        plan = sliding_window_plan(
            timesteps,
            cfg.window_size,
            it,
            shift_interval=cfg.shift_interval,
            stride=cfg.window_stride,
        )
        # Rollout: ODE outside the window, SDE inside; keep what the loss needs per trained step.
        path = denoise(
            model, torch.randn(batch, 2, generator=gen), plan, cfg.noise_level, generator=gen
        )
        stored = [
            (i, path.states[i], path.states[i + 1], path.log_probs[i]) for i in plan.train_indices
        ]
        with torch.no_grad():
            rewards = direction_reward(cfg, path.latents).view(cfg.groups, cfg.group_size)
            adv, valid = group_advantages(rewards).flat()

        for _ in range(cfg.updates_per_iteration):
            opt.zero_grad()
            parts = []
            for i, x_t, x_next, old_lp in stored:
                t, tn = plan.timesteps[i], plan.timesteps[i + 1]
                new = sde_step(x_t, model(x_t, t), t, tn, cfg.noise_level, x_next=x_next)
                kl = None
                if cfg.kl_beta > 0:
                    with torch.no_grad():
                        ref = SDE_STEPS["flow_grpo"](x_t, reference(x_t, t), t, tn, cfg.noise_level)
                    kl = gaussian_kl(new.mean, new.std, ref.mean, ref.std)
                step_loss = grpo_step_loss(
                    new.log_prob,
                    old_lp,
                    adv,
                    cfg.clip_range,
                    kl=kl,
                    kl_beta=cfg.kl_beta,
                    mask=valid,
                )
                step_loss.loss.backward()
                parts.append(step_loss)
            opt.step()

        row = {
            "train/reward_mean": float(rewards.mean()),
            "train/reward_std": float(rewards.std()),
            "train/valid_groups": float(valid.float().mean()),
            "loss/policy": sum(float(p.policy_loss) for p in parts),
            "loss/kl": sum(float(p.kl) for p in parts),
            "loss/ratio_mean": sum(float(p.ratio_mean) for p in parts) / len(parts),
            "loss/clip_fraction": sum(float(p.clip_fraction) for p in parts) / len(parts),
            "window/start": float(plan.train_indices[0]),
        }
        history.append(row)
        if log is not None:
            log(it, row)

    after = evaluate(cfg, model, eval_noise, timesteps)
    return ToyGRPOResult(
        config=cfg,
        before=before,
        after=after,
        history=history,
        samples_before=samples_before,
        samples_after=sample_ode(model, eval_noise, timesteps),
        model=model,
        seconds=time.perf_counter() - start,
    )


def plot_toy_result(result: ToyGRPOResult, path: str | Path) -> Path:
    """Side-by-side picture: samples before/after on the ring, and the reward curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geogrpo.utils.io import atomic_path

    cfg = result.config
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    centres = ring_centres(cfg)
    for ax, pts, title in (
        (axes[0], result.samples_before, f"before GRPO (reward {result.before['reward']:.2f})"),
        (axes[1], result.samples_after, f"after GRPO (reward {result.after['reward']:.2f})"),
    ):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4)
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="k")
        target = math.radians(cfg.target_angle_deg)
        ax.annotate(
            "",
            xy=(1.5 * math.cos(target), 1.5 * math.sin(target)),
            xytext=(0, 0),
            arrowprops={"arrowstyle": "->", "color": "tab:red"},
        )
        lim = cfg.radius + 1.0
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title)
    axes[2].plot([h["train/reward_mean"] for h in result.history])
    axes[2].set(xlabel="iteration", ylabel="mean reward (SDE rollouts)", title="reward curve")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
