"""Evaluation suites run by ``geogrpo eval --suite S``: a thin shell that builds the policy, the
held-out conditions and the rewards from a recipe, runs a measurement, and writes per-sample
JSONL, a summary JSON and a Markdown table into ``--out``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from geogrpo.utils.io import atomic_write_json, atomic_write_text


@dataclass
class RewardFidelitySettings:
    """What ``geogrpo eval --suite reward-fidelity`` measures; None = the recipe's value."""

    policy: str | None = None  # shipped name, saved folder or GRPO run folder
    rewards: list[dict[str, Any]] = field(default_factory=list)  # RewardSpec-like dicts
    split: str = "val"
    conditions: int = 6
    group_size: int | None = None
    noise_level: float | None = None
    sde_kind: str | None = None
    num_inference_steps: int | None = None
    plan: str | None = None  # "full" or "window:START[:SIZE]"
    seed: int = 0
    full_truth: bool = True
    progress: bool = True


def parse_reward(text: str) -> dict[str, Any]:
    """``name`` or ``name:{json options}`` -> a RewardSpec-like dict with a ``label``."""
    name, _, options = text.partition(":")
    try:
        opts = json.loads(options) if options else {}
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--reward: {text!r}: the options after ':' must be a JSON object, e.g. "
            f"'view_fidelity:{{\"weights\": [1, 1, 0, 0]}}' ({err.msg})"
        ) from None
    if not isinstance(opts, dict):
        raise ValueError(f"--reward: {text!r}: the options after ':' must be a JSON object")
    label = name if not opts else f"{name}{json.dumps(opts, separators=(',', ':'))}"
    return {"name": name, "weight": 1.0, "options": opts, "label": label}


def parse_plan(text: str, num_steps: int, default_window: int, shift: float = 3.0):
    """``full`` (every step stochastic) or ``window:START[:SIZE]`` (SDE on steps START ..
    START + SIZE - 1, ODE elsewhere: MixGRPO's window at one position) on a grid of
    ``num_steps``."""
    from geogrpo.rl.schedules import StepPlan, flow_matching_timesteps

    grid = flow_matching_timesteps(num_steps, shift)
    if text == "full":
        return StepPlan(grid, (True,) * num_steps, (True,) * num_steps)
    kind, _, rest = text.partition(":")
    parts = rest.split(":") if rest else []
    if kind != "window" or not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"--plan: {text!r} is not 'full' or 'window:START[:SIZE]' (e.g. window:0:3)"
        )
    start = int(parts[0])
    size = int(parts[1]) if len(parts) == 2 else default_window
    if size < 1 or start + size > num_steps:
        raise ValueError(
            f"--plan: window {start}..{start + size - 1} does not fit {num_steps} steps"
        )
    flags = tuple(start <= i < start + size for i in range(num_steps))
    return StepPlan(grid, flags, flags)


def default_plan(config) -> str:
    """The recipe's plan at its first iteration, as :func:`parse_plan` text."""
    s = config.sampling
    if s.schedule in ("sliding_window", "flow_grpo_fast"):
        return f"window:0:{s.window_size}"
    return "full"


def run_reward_fidelity(config, settings: RewardFidelitySettings, out: str | Path) -> dict:
    """Sample groups on held-out conditions with the recipe's training sampler, score them with
    the rewards and the ground truth, and write ``samples.jsonl``, ``summary.json`` and
    ``table.md`` into ``out``. Returns the summary."""
    from geogrpo.eval.reward_fidelity import format_table, sample_groups, score_groups
    from geogrpo.recipes.build import Shared, build_rewards
    from geogrpo.train.conditions import estimate_source_geometry, from_items, load_items
    from geogrpo.train.config import RewardSpec
    from geogrpo.train.trainer import load_policy
    from geogrpo.world.datasets import SPLITS

    held_out = [name for name, spec in SPLITS.items() if not spec.trainable]
    if settings.split not in held_out:
        raise ValueError(
            f"--split: {settings.split!r} is not a held-out split; use one of {', '.join(held_out)}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.model.torch_threads)
    s = config.sampling
    name = settings.policy or config.model.policy
    policy = load_policy(name).requires_grad_(False)
    conditioning = policy.conditioning.name
    specs = settings.rewards or [
        {"name": r.name, "weight": r.weight, "options": dict(r.options), "label": r.name}
        for r in config.rewards.rewards
    ]
    shared = Shared(config.rewards.estimator, dict(config.rewards.estimator_options))
    built = build_rewards(
        [RewardSpec(sp["name"], sp["weight"], sp["options"]) for sp in specs], shared
    )
    rewards = [(sp["label"], reward) for sp, (_, _, reward) in zip(specs, built, strict=True)]
    kind = config.data.kind
    if (kind == "clips") != (conditioning in ("t2v", "warped_noise_t2v")):
        kind = "clips" if conditioning in ("t2v", "warped_noise_t2v") else "pairs"
    items = load_items(config.data, settings.split, settings.conditions, kind)
    reference = config.rewards.reference_geometry if kind != "clips" else "world"
    if reference == "estimated":
        items = estimate_source_geometry(items, shared.estimator())
    conditions = from_items(items, conditioning, reference)
    steps = settings.num_inference_steps or s.num_inference_steps
    plan_text = settings.plan or default_plan(config)
    plan = parse_plan(plan_text, steps, s.window_size, s.shift)
    group = settings.group_size or s.group_size
    noise_level = settings.noise_level if settings.noise_level is not None else s.noise_level
    sde_kind = settings.sde_kind or s.sde_kind
    videos, latents = sample_groups(
        policy,
        conditions,
        group,
        plan,
        noise_level,
        sde_kind,
        seed=settings.seed,
        micro_batch=s.micro_batch_size,
        guidance_scale=s.guidance_scale,
        progress=settings.progress,
    )
    scores = score_groups(
        videos,
        latents,
        conditions,
        rewards,
        conditioning,
        full_truth=settings.full_truth,
        progress=settings.progress,
    )
    table = scores.table(seed=settings.seed)
    summary = {
        "suite": "reward-fidelity",
        "recipe": config.recipe,
        "policy": name,
        "estimator": config.rewards.estimator,
        "reference_geometry": reference,
        "split": settings.split,
        "conditions": settings.conditions,
        "group_size": group,
        "noise_level": noise_level,
        "sde_kind": sde_kind,
        "num_inference_steps": steps,
        "plan": plan_text,
        "seed": settings.seed,
        "truth_spread": {metric: _spread(values) for metric, values in scores.truth.items()},
        "table": table,
    }
    lines = [json.dumps(row) for row in scores.samples()]
    atomic_write_text(out / "samples.jsonl", "\n".join(lines) + "\n")
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "table.md", _markdown(summary, format_table(table)))
    return summary


def _spread(values: torch.Tensor) -> dict[str, float]:
    from geogrpo.eval.reward_fidelity import spread

    within, across = spread(values)
    return {"within_group_std": within, "across_condition_std": across}


def _markdown(summary: dict, table: str) -> str:
    head = (
        f"reward fidelity: {summary['policy']} ({summary['recipe']} recipe, estimator "
        f"{summary['estimator']}), {summary['conditions']} {summary['split']} conditions x "
        f"G = {summary['group_size']}, {summary['num_inference_steps']} steps, plan "
        f"{summary['plan']}, {summary['sde_kind']} noise level {summary['noise_level']}, "
        f"seed {summary['seed']}"
    )
    spreads = ", ".join(
        f"{m} {v['within_group_std']:.3g} / {v['across_condition_std']:.3g}"
        for m, v in summary["truth_spread"].items()
        if math.isfinite(v["within_group_std"])
    )
    return f"{head}\n\ntruth within-group / across-condition std: {spreads}\n\n{table}\n"
