"""Geo-Align's camera (trajectory) reward: cost and fidelity of flow_pnp settings, side by side.

    python bench/camera_reward.py [--n 12] [--accuracy 8] [--cache runs/camera_reward/groups.pt]
        [--variant 'old={}' --variant 'new={"ransac_iterations": 100}' ...]

Each ``--variant NAME=JSON`` is a set of ``FlowPnPEstimator`` options (plus ``"seed"``, the
RANSAC seed of the registration); the first is the baseline. Prints

(1) on N x G groups that the geo_align recipe's training sampler draws on val conditions (drawn
    once, with the world evaluator's truth, and cached in ``--cache``): per variant, seconds of
    the trajectory reward per 16 clips (each group timed with every variant in alternating
    order; medians, and the ratio to the baseline), its within-group Spearman against the
    evaluator's RotErr / TransErr and the true-target PSNR (95 % bootstrap intervals over
    groups), and its within-group Spearman against every other variant's scores (a variant
    with another ``seed`` shows how much of the ranking is RANSAC's draw);
(2) camera accuracy on ``--accuracy`` world val pairs (2 clips each), clean and through the
    tiny autoencoder's round trip: RotErr / TransErr against the true cameras, seconds per clip.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

TRUTH = (("rot_err_deg", False, "RotErr"), ("trans_err", False, "TransErr"), ("psnr", True, "PSNR"))


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, options = text.partition("=")
    if not name or not options:
        raise ValueError(f"--variant: expected NAME=JSON, got {text!r}")
    return name, json.loads(options)


def build(options: dict, depth_model):
    from geogrpo.geometry.registration import RegistrationOptions
    from geogrpo.perception.flow_pnp import FlowPnPEstimator

    options = dict(options)
    seed = options.pop("seed", 0)
    return FlowPnPEstimator(depth_model, options=RegistrationOptions(seed=seed), **options)


def sample(n: int, cache: Path) -> dict:
    """Groups of the geo_align recipe's sampler on ``n`` val conditions, with the truth."""
    if cache.exists():
        return torch.load(cache, weights_only=False)
    from geogrpo.eval.reward_fidelity import sample_groups, score_groups
    from geogrpo.eval.suites import default_plan, parse_plan
    from geogrpo.train.conditions import from_items, load_items
    from geogrpo.train.config import load_config
    from geogrpo.train.trainer import load_policy

    config = load_config("geo_align")
    s = config.sampling
    policy = load_policy(config.model.policy).requires_grad_(False)
    conditioning = policy.conditioning.name
    cond = from_items(load_items(config.data, "val", n, config.data.kind), conditioning, "world")
    plan = parse_plan(default_plan(config), s.num_inference_steps, s.window_size, s.shift)
    videos, latents = sample_groups(
        policy,
        cond,
        s.group_size,
        plan,
        s.noise_level,
        s.sde_kind,
        micro_batch=s.micro_batch_size,
        guidance_scale=s.guidance_scale,
    )
    truth = score_groups(videos, latents, cond, [], conditioning, full_truth=True).truth
    data = {
        "videos": videos,
        "truth": truth,
        "target_w2c": cond.target_w2c,
        "intrinsics": cond.intrinsics,
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, cache)
    return data


def fidelity(variants: dict, data: dict, depth_model) -> None:
    from geogrpo.eval.reward_fidelity import fidelity_stats, within_group_spearman
    from geogrpo.rewards.base import RewardBatch
    from geogrpo.rewards.geometry import TrajectoryReward

    rewards = {name: TrajectoryReward(build(o, depth_model)) for name, o in variants.items()}
    names = list(rewards)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    scores: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for n, video in enumerate(data["videos"]):
        g = video.shape[0]
        batch = RewardBatch(
            video=video,
            intrinsics=data["intrinsics"][n : n + 1].expand(g, 3, 3),
            target_w2c=data["target_w2c"][n : n + 1].expand(g, -1, 4, 4),
        )
        for name in names if n % 2 == 0 else names[::-1]:
            t = time.perf_counter()
            out = rewards[name](batch)
            seconds[name].append((time.perf_counter() - t) * 16 / g)
            scores[name].append(torch.where(out.valid, out.scores.double(), torch.nan))
    stacked = {name: torch.stack(s) for name, s in scores.items()}
    base = statistics.median(seconds[names[0]])
    n, g = stacked[names[0]].shape
    print(f"\n(1) trajectory reward on {n} val conditions x G = {g} (geo_align's sampler)\n")
    head = "| variant | s per 16 clips | vs first |"
    head += "".join(f" Spearman vs {label} |" for *_, label in TRUTH)
    head += " std in group | scored |" + "".join(f" agrees with {x} |" for x in names)
    print(head + "\n" + "|---" * (head.count("|") - 1) + "|")
    for name in names:
        s = stacked[name]
        med = statistics.median(seconds[name])
        row = f"| {name} | {med:.2f} | {base / med:.2f}x |"
        for key, higher, _ in TRUTH:
            st = fidelity_stats(s, data["truth"][key], higher_is_better=higher)
            row += (
                f" {st['spearman']:+.2f} [{st['spearman_low']:+.2f}, {st['spearman_high']:+.2f}] |"
            )
        row += f" {st['within_group_std']:.4f} | {float(torch.isfinite(s).double().mean()):.2f} |"
        for other in names:
            row += f" {float(within_group_spearman(s, stacked[other]).nanmean()):+.2f} |"
        print(row, flush=True)


def accuracy(variants: dict, n: int, depth_model) -> None:
    from perception_rewards import degraded_inputs

    from geogrpo.models.autoencoder import load_autoencoder
    from geogrpo.models.policy import PRETRAINED_DIR
    from geogrpo.pretrain.common import load_clips
    from geogrpo.pretrain.tinygeo import geometry_accuracy

    estimators = {name: build(o, depth_model) for name, o in variants.items()}
    names = list(estimators)
    ae = load_autoencoder(PRETRAINED_DIR / "tiny-autoencoder").eval()
    clips = load_clips("val", n, 17, 96, "data")
    inputs = degraded_inputs(clips["video"], ae)
    print(f"\n(2) camera accuracy on {2 * n} val clips (RotErr deg / TransErr, s per clip)\n")
    print("| input | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")
    for kind in ("clean", "autoencoder"):
        video, cells = inputs[kind], {}
        for name in names if kind == "clean" else names[::-1]:
            t = time.perf_counter()
            est = estimators[name].estimate(video)
            per_clip = (time.perf_counter() - t) / video.shape[0]
            m = geometry_accuracy(est, clips)
            cells[name] = f" {m['rot_err_deg']:.2f} / {m['trans_err']:.3f}, {per_clip:.3f} s"
            cells[name] += "" if m["valid"] == 1 else f" ({m['valid']:.2f} scored)"
        print(f"| {kind} |" + "".join(cells[name] + " |" for name in names), flush=True)


def main() -> None:
    from geogrpo.perception.tinygeo import TinyGeoEstimator

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=12, help="val conditions of part (1)")
    p.add_argument("--accuracy", type=int, default=8, help="val pairs of part (2); 0 skips it")
    p.add_argument("--cache", default="runs/camera_reward/groups.pt")
    p.add_argument("--variant", action="append", default=None, help="NAME=JSON (repeatable)")
    args = p.parse_args()
    torch.set_num_threads(1)
    specs = args.variant or ["old={}", 'new={"ransac_iterations": 100}']
    variants = dict(parse_variant(v) for v in specs)
    depth_model = TinyGeoEstimator()
    if args.n:
        fidelity(variants, sample(args.n, Path(args.cache)), depth_model)
    if args.accuracy:
        accuracy(variants, args.accuracy, depth_model)


if __name__ == "__main__":
    main()
