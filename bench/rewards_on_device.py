"""Rewards on the policy's device (issue 25): the reward phase on the CPU and on ``--device``
side by side, and the rewards' share of a whole iteration against the 30 % target.

Per embedded recipe, one trainer is built on ``--device`` (its reward models go there with the
policy) and one rollout is drawn and decoded; that batch is then scored by the recipe's active
rewards built for the CPU and by the trainer's own, alternately (CPU, device, CPU, device ...),
each time on a fresh copy (no cached estimate), and the medians are compared. Then the
trainer's iterations are timed (``bench/iteration.py``'s ``interleaved``: one warm-up, then
``--repeats``), and the rewards' share is ``time/reward / total``.

    python bench/rewards_on_device.py --device cuda [--repeats 5] [--recipes geo_align world_r1]
    python bench/rewards_on_device.py --device cpu --repeats 1 --small   # smoke run, no GPU

``--small`` shrinks a step (1 condition, G = 2, 4 denoising steps, an SDE window of 2) to prove
the script runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from iteration import PHASES, RECIPES, build, interleaved  # bench/, beside this script

from geogrpo.recipes.build import Shared, build_rewards
from geogrpo.rewards.base import RewardBatch
from geogrpo.train.trainer import GRPOTrainer

TARGET_SHARE = 0.30
SMALL = (
    "sampling.conditions_per_step=1",
    "sampling.group_size=2",
    "sampling.micro_batch_size=2",
    "sampling.num_inference_steps=4",
    "sampling.window_size=2",
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reward_batch(trainer: GRPOTrainer, step: int) -> tuple[RewardBatch, list[int]]:
    """One rollout's batch as the trainer's reward phase sees it (on the CPU) and the active
    rewards' indices."""
    roll = trainer.rollout(step)
    active = trainer.active_rewards(step)
    video = trainer.decode(roll) if trainer.needs_video(step, active) else None
    latents = roll.path.latents[: roll.shard.real].cpu()
    return trainer._real(roll).reward_batch(video, latents), active


def score_seconds(rewards: list, batch: RewardBatch, device: torch.device) -> float:
    """Seconds to move a fresh copy of ``batch`` to ``device`` and score it with ``rewards``."""
    sync(device)
    start = time.perf_counter()
    moved = RewardBatch(**{**vars(batch), "cache": {}}).to(device)
    for reward in rewards:
        reward(moved)  # scores come back on the CPU: this waits for the device
    sync(device)
    return time.perf_counter() - start


def reward_phase(trainer: GRPOTrainer, repeats: int) -> tuple[float, float]:
    """Median seconds of the recipe's reward phase on the CPU and on the trainer's device."""
    config = trainer.config
    batch, active = reward_batch(trainer, 1)
    on_cpu = build_rewards(
        config.rewards.rewards,
        Shared(config.rewards.estimator, dict(config.rewards.estimator_options), "cpu"),
    )
    cpu = [on_cpu[k][2] for k in active]
    device = [trainer.rewards[k][2] for k in active]
    cpu_device = torch.device("cpu")
    score_seconds(cpu, batch, cpu_device)  # warm-up: first calls, caches, kernels
    score_seconds(device, batch, trainer.device)
    times: dict[str, list[float]] = {"cpu": [], "device": []}
    for _ in range(repeats):
        times["cpu"].append(score_seconds(cpu, batch, cpu_device))
        times["device"].append(score_seconds(device, batch, trainer.device))
    return statistics.median(times["cpu"]), statistics.median(times["device"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="the policy's and rewards' device")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="a smaller step (smoke runs)")
    parser.add_argument("--data-dir", default=None, help="rendered items (default: the recipe's)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("error: --repeats must be at least 1")
    overrides = (f"model.device={args.device}", *(SMALL if args.small else ()))
    trainers = {r: build(r, overrides, args.data_dir) for r in args.recipes}
    phase = {r: reward_phase(t, args.repeats) for r, t in trainers.items()}
    medians = interleaved(trainers, args.repeats)
    dev = args.device
    print(
        f"rewards on {dev}: median of {args.repeats} (reward phase: same batch, CPU and {dev} "
        f"alternately; iteration: interleaved trainers on {dev}); "
        f"torch threads {torch.get_num_threads()}"
    )
    print()
    print(
        f"| recipe | rewards CPU s | rewards {dev} s | speed-up | "
        + " | ".join(f"{p} s" for p in PHASES)
        + f" | iteration s | rewards' share | <= {TARGET_SHARE:.0%} |"
    )
    print("|" + "---|" * (len(PHASES) + 7))
    for recipe, (cpu_s, dev_s) in phase.items():
        m = medians[recipe]
        share = m["reward"] / m["total"]
        cells = " | ".join(f"{m[p]:.2f}" for p in PHASES)
        ok = "yes" if share <= TARGET_SHARE else "no"
        print(
            f"| {recipe} | {cpu_s:.3f} | {dev_s:.3f} | {cpu_s / dev_s:.1f}x | {cells} | "
            f"{m['total']:.2f} | {share:.0%} | {ok} |"
        )


if __name__ == "__main__":
    main()
