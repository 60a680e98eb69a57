"""One reward-fidelity table per recipe: every reward the recipe uses (and the alternatives it
could use) against every ground-truth metric, on held-out val conditions.

    python bench/reward_fidelity.py [--n 12] [--group 8] [--estimator tinygeo] [--out runs/rf]
        [--only geo_align,devis_grpo]

Each recipe runs ``geogrpo eval --suite reward-fidelity`` with its own sampler (plan at the first
iteration, noise level, steps); the tables go to stdout and ``<out>/<recipe>/table.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

REWARDS = {
    "geo_align": [
        "trajectory",
        "quality",
        "smoothness",
        "reprojection",
        "view_fidelity",
        'view_fidelity:{"weights": [1, 1, 0, 0]}',
    ],
    "devis_grpo": [
        'view_fidelity:{"weights": [1, 1, 0, 0]}',
        "view_fidelity",
        "trajectory",
        "quality",
    ],
    "camera_fidelity": ['view_fidelity:{"weights": [1, 1, 0, 0]}', "trajectory"],
    "vggrpo": [
        'smoothness:{"source": "latent"}',
        'reprojection:{"source": "latent"}',
        "smoothness",
        "reprojection",
        "quality",
    ],
    "world_r1": ["reconstruction", "quality", "smoothness"],
}


def main() -> None:
    from geogrpo.eval.suites import RewardFidelitySettings, parse_reward, run_reward_fidelity
    from geogrpo.train.config import load_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=12)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--estimator", default=None, help="override every recipe's estimator")
    p.add_argument("--only", default=",".join(REWARDS), help="comma-separated recipes")
    p.add_argument("--out", default="runs/reward_fidelity")
    p.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    args = p.parse_args()
    torch.set_num_threads(1)
    for recipe in args.only.split(","):
        t0 = time.perf_counter()
        overrides = list(args.set)
        if args.estimator:
            overrides.append(f"rewards.estimator={args.estimator}")
        config = load_config(recipe, overrides=overrides)
        settings = RewardFidelitySettings(
            rewards=[parse_reward(r) for r in REWARDS[recipe]],
            conditions=args.n,
            group_size=args.group,
            progress=False,
        )
        run_reward_fidelity(config, settings, f"{args.out}/{recipe}")
        text = Path(f"{args.out}/{recipe}/table.md").read_text(encoding="utf-8")
        print(f"\n### {recipe} ({time.perf_counter() - t0:.0f} s)\n\n{text}", flush=True)


if __name__ == "__main__":
    main()
