"""A full-scale recipe for a few GRPO steps on random weights of the real Wan2.1 architecture
(``model.policy: random:<architecture>``), beside what ``geogrpo plan`` predicts for the same
config: peak memory, seconds per step and the share of each phase. It checks the memory and
time model (issue 24's target: within 10 %) and finds what breaks at full size before the
real weights are downloaded.

The rewards are the recipe's only if their models are on the machine; by default the run
scores with the tiny quality reward alone (``--rewards quality``), which is valid on the noise
random weights make, so every step has an update. Sizes default to the recipe's 480x832x81.

    python bench/full_scale_dry_run.py --recipe geo_align            # one GPU
    torchrun --nproc-per-node 8 bench/full_scale_dry_run.py --recipe world_r1
    python bench/full_scale_dry_run.py --recipe geo_align --device cpu --frames 5 \\
        --height 32 --width 48 --group-size 2 --inference-steps 2      # a CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from geogrpo.train.config import GRPOConfig, load_config
from geogrpo.train.logging import read_jsonl
from geogrpo.train.plan import GIB, plan_run
from geogrpo.train.trainer import GRPOTrainer

# the trainer's phases (time/<phase>) and the plan's name for each
PHASES = {
    "rollout": "rollouts",
    "decode": "VAE decode",
    "reward": "reward models",
    "truth": None,
    "update": "update",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="geo_align")
    parser.add_argument("--architecture", default=None, help="default: the recipe's")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=3, help="the first is a warm-up")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--conditions", type=int, default=1, help="conditions per step")
    parser.add_argument("--inference-steps", type=int, default=4)
    parser.add_argument("--rewards", default="quality", help="'recipe' keeps the recipe's")
    parser.add_argument("--set", action="append", default=[], help="more config overrides")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    return parser.parse_args(argv)


def dry_run_config(args: argparse.Namespace) -> GRPOConfig:
    recipe = load_config(args.recipe, "full")
    architecture = args.architecture or recipe.model.architecture
    steps = args.inference_steps
    overrides = [
        f"model.policy=random:{architecture}",
        f"model.architecture={architecture}",
        f"model.device={args.device}",
        f"steps={args.steps}",
        f"sampling.group_size={args.group_size}",
        f"sampling.conditions_per_step={args.conditions}",
        f"sampling.num_inference_steps={steps}",
        f"sampling.eval_num_inference_steps={steps}",
        f"sampling.window_size={min(recipe.sampling.window_size, steps)}",
        f"sampling.num_train_steps={min(recipe.sampling.num_train_steps, steps)}",
        "data.train_items=1",
        "data.decoupled_every=0",
        "eval.every=0",
        "eval.train_conditions=0",
        "eval.val_conditions=0",
        "checkpoint.every=0",
        "checkpoint.keep_last=1",
        "logging.tensorboard=false",
    ]
    for key, value in (("frames", args.frames), ("size", args.height), ("width", args.width)):
        if value is not None:
            overrides.append(f"data.{key}={value}")
    if args.rewards != "recipe":
        specs = [{"name": name, "weight": 1.0} for name in args.rewards.split(",")]
        overrides += ["rewards.rewards=" + json.dumps(specs), "rl.per_reward=false"]
    return load_config(args.recipe, "full", overrides=[*overrides, *args.set])


def main() -> None:
    args = parse_args()
    config = dry_run_config(args)
    out = Path(args.out or tempfile.mkdtemp(prefix="dry_run_"))
    start = time.perf_counter()
    trainer = GRPOTrainer(config, out)
    built_s = time.perf_counter() - start
    trainer.train()
    if not trainer.ctx.is_main:
        return
    rows = [r for r in read_jsonl(out / "metrics.jsonl") if "time/update" in r]
    measured = rows[1:] or rows  # the first step warms kernels and allocators up
    seconds = {p: sum(r[f"time/{p}"] for r in measured) / len(measured) for p in PHASES}
    total = sum(seconds.values())
    key = "memory/peak_cuda_gib" if "memory/peak_cuda_gib" in rows[-1] else "memory/peak_rss_gib"
    peak = max(r[key] for r in rows)
    plan = plan_run(config, trainer.ctx.world_size)
    predicted = plan.total_bytes / GIB
    world = trainer.ctx.world_size
    device = torch.cuda.get_device_name() if config.model.device.startswith("cuda") else "CPU"
    print(
        f"\n{args.recipe} on random {config.model.architecture}, {config.data.size}x"
        f"{config.data.width or config.data.size}x{config.data.frames}, G = "
        f"{config.sampling.group_size} x {config.sampling.conditions_per_step} conditions, "
        f"{config.sampling.num_inference_steps} steps, {world} rank(s) on {device}; built in "
        f"{built_s:.0f} s; {len(measured)} step(s) measured\n"
    )
    print("| phase | measured s | share | plan s |")
    print("|---|---|---|---|")
    for phase, name in PHASES.items():
        guess = plan.seconds.get(name) if name else None
        guess_text = f"{guess:.2f}" if guess is not None else "-"
        print(f"| {phase} | {seconds[phase]:.2f} | {seconds[phase] / total:.0%} | {guess_text} |")
    plan_total = plan.seconds["total"]
    print(f"| step | {total:.2f} | 100% | {plan_total:.2f} ({plan_total / total - 1:+.0%}) |")
    print(
        f"\npeak memory ({key.split('/')[1]}): measured {peak:.1f} GiB, plan {predicted:.1f} GiB "
        f"({predicted / peak - 1:+.0%}); plan parts: "
        + ", ".join(f"{k} {v / GIB:.1f}" for k, v in plan.memory.items())
    )


if __name__ == "__main__":
    main()
