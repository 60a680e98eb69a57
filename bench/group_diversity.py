"""How the sampler's settings change a group: within-group spread of the truth and of the
rewards, and the rewards' within-group Spearman against the truth.

    python bench/group_diversity.py [--recipe geo_align] [--n 6] [--group 8]
        [--reward trajectory --reward quality ...]

Varies one setting at a time around the recipe's own (noise level, SDE kind, number of
stochastic steps, window position), on the same val conditions and noise seeds, and prints one
Markdown row per setting. Used to set each recipe's sampling defaults.
"""

from __future__ import annotations

import argparse
import time

import torch

BASE_REWARDS = ("trajectory", "quality", 'view_fidelity:{"weights": [1, 1, 0, 0]}')


def variants(config) -> list[tuple[str, dict]]:
    s = config.sampling
    steps, w = s.num_inference_steps, s.window_size
    base = {"plan": f"window:0:{w}" if s.schedule != "full" else "full"}
    out = [("recipe", {})]
    out += [(f"noise_level {a}", {"noise_level": a}) for a in (0.4, 1.0, 1.4) if a != s.noise_level]
    out += [(f"sde_kind {k}", {"sde_kind": k}) for k in ("dance_grpo", "cps") if k != s.sde_kind]
    out += [
        ("plan full", {"plan": "full"}),
        (f"plan window:0:{2 * w}", {"plan": f"window:0:{2 * w}"}),
    ]
    out += [("plan window:0:1", {"plan": "window:0:1"})]
    for start in (w, steps - w):
        out.append((f"plan window:{start}:{w}", {"plan": f"window:{start}:{w}"}))
    return [(name, {**base, **v}) for name, v in out]


def main() -> None:
    from geogrpo.eval.reward_fidelity import fidelity_stats, sample_groups, score_groups, spread
    from geogrpo.eval.suites import parse_plan, parse_reward
    from geogrpo.models.policy import VideoPolicy
    from geogrpo.recipes.build import Shared, build_rewards
    from geogrpo.train.conditions import estimate_source_geometry, from_items, load_items
    from geogrpo.train.config import RewardSpec, load_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="geo_align")
    p.add_argument("--n", type=int, default=6)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--reward", action="append", default=None)
    p.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    torch.set_num_threads(1)
    config = load_config(args.recipe, overrides=args.set)
    s = config.sampling
    policy = VideoPolicy.from_pretrained(config.model.policy).eval().requires_grad_(False)
    conditioning = policy.conditioning.name
    specs = [parse_reward(r) for r in (args.reward or BASE_REWARDS)]
    shared = Shared(config.rewards.estimator, dict(config.rewards.estimator_options))
    built = build_rewards([RewardSpec(x["name"], 1.0, x["options"]) for x in specs], shared)
    rewards = [(x["label"], r) for x, (_, _, r) in zip(specs, built, strict=True)]
    kind = "clips" if config.data.kind == "clips" else config.data.kind
    items = load_items(config.data, "val", args.n, kind)
    reference = config.rewards.reference_geometry if kind != "clips" else "world"
    if reference == "estimated":
        items = estimate_source_geometry(items, shared.estimator())
    cond = from_items(items, conditioning, reference)
    truth_name = "camera_words" if kind == "clips" else "psnr"
    head = f"| setting | truth {truth_name} std in group / across |"
    head += "".join(f" {label}: std in group, Spearman vs {truth_name} |" for label, _ in rewards)
    print(
        f"{args.recipe}: {config.model.policy}, {args.n} val conditions x G = {args.group}, "
        f"{s.num_inference_steps} steps, estimator {config.rewards.estimator}\n"
    )
    print(head + " s |")
    print("|---" * (len(rewards) + 3) + "|")
    for name, v in variants(config):
        t0 = time.perf_counter()
        plan = parse_plan(v.get("plan", "full"), s.num_inference_steps, s.window_size, s.shift)
        videos, latents = sample_groups(
            policy,
            cond,
            args.group,
            plan,
            v.get("noise_level", s.noise_level),
            v.get("sde_kind", s.sde_kind),
            micro_batch=s.micro_batch_size,
        )
        scores = score_groups(videos, latents, cond, rewards, conditioning, full_truth=False)
        truth = scores.truth[truth_name]
        within, across = spread(truth)
        row = f"| {name} | {within:.3g} / {across:.3g} |"
        for label, _ in rewards:
            st = fidelity_stats(scores.rewards[label], truth, scores.reward_valid[label])
            row += (
                f" {st['within_group_std']:.3g}, {st['spearman']:+.2f} "
                f"[{st['spearman_low']:+.2f}, {st['spearman_high']:+.2f}] |"
            )
        print(f"{row} {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
