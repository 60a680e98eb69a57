"""Where a GRPO iteration's time goes, and what each method's saving buys, measured side by side.

``phases``: one training iteration of every embedded recipe, split into the trainer's phases
(rollout, decode, rewards, ground-truth diagnostic, update), median over repeats.

``plans``: one recipe under the step plans the methods propose, on the same work (same
conditions, group size and rewards): every step an SDE step and trained (Flow-GRPO / DanceGRPO's
full plan), MixGRPO's sliding window (with and without MixGRPO-Flash's thinned ODE tail),
Flow-GRPO-Fast's short window, and VGGRPO's denoising reduction (half the rollout steps). The
variants' trainers are built once and their iterations interleaved (A B C D A B C D ...), so
that a machine slowing down hits every variant alike; the table prints medians and each one's
ratio to the full plan.

``scaling``: how an iteration grows with the group size, the frame count and the resolution,
one at a time around a small base (camera_fidelity, N = 1, G = 4, 4 denoising steps, 17 frames
at 96x96), all variants interleaved; the exponent ``b`` of ``seconds ~ x^b`` is fitted by
least squares in log-log per phase (1 = linear; resolution is counted in pixels a frame, so
attention's quadratic share shows as ``b > 1``).

    python bench/iteration.py phases [--repeats 3]
    python bench/iteration.py plans [--recipe geo_align] [--repeats 3]
    python bench/iteration.py scaling [--repeats 2]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Sequence

import torch

from geogrpo.train.config import load_config
from geogrpo.train.trainer import GRPOTrainer

PHASES = ("rollout", "decode", "reward", "truth", "update")
RECIPES = ("geo_align", "devis_grpo", "vggrpo", "world_r1", "camera_fidelity")
# Quiet, no evaluation, no checkpoint: only the iteration is timed.
TIMING = (
    "eval.every=0",
    "eval.train_conditions=0",
    "eval.val_conditions=0",
    "checkpoint.every=0",
    "logging.tensorboard=false",
    "logging.progress=false",
    "data.workers=1",
    "data.train_items=4",  # the pool's size does not change an iteration, only the set-up
)


def plan_variants(recipe: str) -> dict[str, tuple[str, ...]]:
    """The step plans compared, as overrides of ``recipe`` (its grid of denoising steps kept)."""
    steps = load_config(recipe).sampling.num_inference_steps
    return {
        "full SDE (Flow-GRPO)": ("sampling.schedule=full",),
        "sliding window (MixGRPO)": (
            "sampling.schedule=sliding_window",
            f"sampling.window_size={max(1, round(steps * 4 / 25))}",  # MixGRPO: 4 of 25
        ),
        "sliding window, ODE tail thinned (MixGRPO-Flash)": (
            "sampling.schedule=sliding_window",
            f"sampling.window_size={max(1, round(steps * 4 / 25))}",
            "sampling.ode_tail_ratio=0.4",
        ),
        "Flow-GRPO-Fast": ("sampling.schedule=flow_grpo_fast", "sampling.window_size=2"),
        "denoising reduction (VGGRPO)": (
            "sampling.schedule=full",
            f"sampling.num_inference_steps={max(2, steps // 2)}",
        ),
    }


def build(recipe: str, overrides: Sequence[str], data_dir: str | None) -> GRPOTrainer:
    more = [f"data.data_dir={data_dir}"] if data_dir else []
    config = load_config(recipe, overrides=[*TIMING, *more, *overrides])
    return GRPOTrainer(config, tempfile.mkdtemp(prefix="bench_iteration_"))


# Around this base, one quantity varied at a time (scaling).
SCALING_RECIPE = "camera_fidelity"
SCALING_BASE = (
    "sampling.conditions_per_step=1",
    "sampling.group_size=4",
    "sampling.micro_batch_size=4",
    "sampling.num_inference_steps=4",
    "data.frames=17",
    "data.size=96",
)
SCALING = {
    "group size": ("sampling.group_size", "sampling.micro_batch_size", (2, 4, 8)),
    "frames": ("data.frames", None, (9, 17, 33)),
    "pixels a frame": ("data.size", None, (64, 96, 128)),
}


def timed_step(trainer: GRPOTrainer, step: int) -> dict[str, float]:
    start = time.perf_counter()
    row = trainer.train_step(step)
    out = {p: row[f"time/{p}"] for p in PHASES}
    out["total"] = time.perf_counter() - start
    # the samples' true quality beside the time: a plan that is faster but worse is no saving;
    # nor is one whose samples the rewards cannot score (it trains on nothing)
    out.update({k: v for k, v in row.items() if k.startswith("truth/")})
    out["valid samples"] = row["valid_samples"]
    return out


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y on log x: the exponent b of y ~ x^b."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    covariance = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    return covariance / sum((a - mx) ** 2 for a in lx)


def scaling(repeats: int, data_dir: str | None) -> str:
    """Every variant's trainer built first, their iterations interleaved; exponents per phase."""
    variants: dict[tuple[str, int], tuple[str, ...]] = {}
    for quantity, (key, twin, values) in SCALING.items():
        for v in values:
            extra = (f"{key}={v}",) + ((f"{twin}={v}",) if twin else ())
            variants[(quantity, v)] = (*SCALING_BASE, *extra)
    root = data_dir or "data/bench_scaling"  # a cache per frame count and size
    trainers = {
        f"{q} = {v}": build(SCALING_RECIPE, o, f"{root}/{q.replace(' ', '_')}_{v}")
        for (q, v), o in variants.items()
    }
    medians = interleaved(trainers, repeats)
    lines = [
        f"{SCALING_RECIPE}, base N x G = 1 x 4, 4 steps, 17 frames, 96x96; "
        f"median of {repeats} interleaved iterations (seconds), exponent b of seconds ~ x^b",
        "",
        "| quantity | values | "
        + " | ".join(f"{p} s" for p in PHASES)
        + " | total s | "
        + " | ".join(f"b {p}" for p in PHASES)
        + " | b total |",
        "|" + "---|" * (2 * len(PHASES) + 4),
    ]
    for quantity, (_, _, values) in SCALING.items():
        rows = [medians[f"{quantity} = {v}"] for v in values]
        xs = [v * v if quantity == "pixels a frame" else v for v in values]
        cells = " | ".join("/".join(f"{r[p]:.2f}" for r in rows) for p in (*PHASES, "total"))
        slopes = " | ".join(
            f"{loglog_slope(xs, [r[p] for r in rows]):.2f}" for p in (*PHASES, "total")
        )
        shown = "/".join(f"{v}x{v}" if quantity == "pixels a frame" else str(v) for v in values)
        lines.append(f"| {quantity} | {shown} | {cells} | {slopes} |")
    return "\n".join(lines)


def interleaved(trainers: dict[str, GRPOTrainer], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per phase of each trainer, iterations interleaved after one warm-up each."""
    for trainer in trainers.values():
        trainer.train_step(0)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in trainers}
    for step in range(1, repeats + 1):
        for name, trainer in trainers.items():
            samples[name].append(timed_step(trainer, step))
    return {
        name: {key: statistics.median(s[key] for s in rows) for key in rows[0]}
        for name, rows in samples.items()
    }


def table(medians: dict[str, dict[str, float]], reference: str | None = None) -> str:
    """Seconds per phase, the policy's share, each run's ground truth on its training
    rollouts (the recipe's truth metrics, mean over the samples), the share of samples every
    reward could score, and the ratio to ``reference``."""
    truths = sorted({k for m in medians.values() for k in m if k.startswith("truth/")})
    truths.append("valid samples")
    head = "| variant | " + " | ".join(PHASES) + " | total s | share in rollout + update |"
    head += "".join(f" {k} |" for k in truths)
    lines = [head, "|" + "---|" * (len(PHASES) + 3 + len(truths))]
    if reference:
        lines[0] += " vs " + reference.split(" (")[0] + " |"
        lines[1] += "---|"
    for name, m in medians.items():
        cells = " | ".join(f"{m[p]:.2f}" for p in PHASES)
        policy = (m["rollout"] + m["update"]) / m["total"]
        line = f"| {name} | {cells} | {m['total']:.2f} | {policy:.0%} |"
        line += "".join(f" {m.get(k, math.nan):.3f} |" for k in truths)
        if reference:
            line += f" {m['total'] / medians[reference]['total']:.2f}x |"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("phases", "plans", "scaling"))
    parser.add_argument("--recipe", default="geo_align", help="plans: the recipe compared")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None, help="rendered items (default: the recipe's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.what == "scaling":
        print(scaling(args.repeats, args.data_dir))
        return
    if args.what == "phases":
        trainers = {r: build(r, (), args.data_dir) for r in RECIPES}
        print(table(interleaved(trainers, args.repeats)))
        return
    variants = plan_variants(args.recipe)
    trainers = {name: build(args.recipe, o, args.data_dir) for name, o in variants.items()}
    medians = interleaved(trainers, args.repeats)
    print(f"{args.recipe}: median of {args.repeats} interleaved iterations")
    print(table(medians, reference=next(iter(variants))))


if __name__ == "__main__":
    main()
