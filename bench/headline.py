"""The headline experiment: for each recipe, the shipped base, an SFT baseline given the same
extra compute on true target videos, and GRPO, over several training seeds, evaluated on the
held-out splits by the recipe's suite against the ground truth.

    python bench/headline.py grpo  --recipes geo_align --seeds 0 1 2 --steps 12
    python bench/headline.py sft   --recipes geo_align --seeds 0 1 2 --steps 12
    python bench/headline.py eval  --recipes geo_align --seeds 0 1 2 --scenes 2
    python bench/headline.py table --recipes geo_align --seeds 0 1 2

Compute is counted in policy forward passes of one sample at one denoising step, a backward
pass as two (a training step is about three forwards). A GRPO step costs the rollout (N G
samples x the sampling steps, plus the earlier ADEVIS stages) and the update (N G samples x the
trained steps x 3 x inner epochs, plus one reference forward per trained step with a KL term);
an SFT step costs batch x 3. The SFT baseline runs ``geogrpo pretrain policy --init-from BASE``
(flow matching on the true target videos of the train split, the data set the base was
pretrained on, one-cycle learning rate peaking at ``--sft-lr``) for as many steps as that
matches. Everything runs one torch thread per process; results land in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

from geogrpo.cli import SUITE_RECIPES

SUITE = {recipe: suite for suite, recipe in SUITE_RECIPES.items()}  # each method's benchmark
# what each paper claims, read on the pooled held-out conditions: (metric, kind, threshold)
# kind "diff" = B - A at least threshold; "rel" = relative change at most -threshold (errors)
TARGETS = {
    "geo_align": [
        ("psnr", "diff", 1.0),
        ("ssim", "diff", 0.0),
        ("confirmed_share", "diff", 0.0),
        ("est_rot_err", "rel", 0.25),
        ("est_trans_err", "rel", 0.25),
    ],
    "devis_grpo": [("psnr", "diff", 1.0), ("perceptual_distance", "diff_down", 0.0)],
    "vggrpo": [
        ("sampson", "rel", 0.20),
        ("camera_smoothness", "diff_down", 0.0),
        ("quality", "diff", 0.0),
        ("flicker", "diff", 0.0),
        ("sampson_true", "diff_down", 0.0),  # the truth beside the consistency rewards
        ("camera_words", "diff", 0.0),
    ],
    "world_r1": [
        ("recon_psnr", "diff", 2.0),
        ("recon_psnr_truth", "diff", 0.0),  # the same splats against the true views
        ("camera_words", "diff", 0.0),
    ],
}
# scenes (v2v: x the suite's 10 or 6 paths) or captions per held-out split, sized so that one
# policy's evaluation takes a few CPU minutes
SCENES = {"geo_align": 1, "devis_grpo": 2, "vggrpo": 8, "world_r1": 6}
GEOGRPO = [sys.executable, "-m", "geogrpo"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def grpo_forward_equivalents(config) -> float:
    """Policy forward-equivalents of one GRPO step of ``config`` (see the module docstring)."""
    s, d, rl = config.sampling, config.data, config.rl
    samples = s.conditions_per_step * s.group_size
    rollout = samples * s.num_inference_steps
    if d.adevis_strategies:  # earlier stages: on average half of the extra ones, ODE
        rollout += samples * (d.adevis_max_steps - 1) / 2 * d.adevis_stage_steps
    trained = {
        "sliding_window": s.window_size,
        "flow_grpo_fast": s.window_size,
        "random_subset": s.num_train_steps,
    }.get(s.schedule, s.num_inference_steps)
    update = samples * trained * (3 * rl.inner_epochs + (1 if rl.kl_beta > 0 else 0))
    return rollout + update


def sft_steps(config, grpo_steps: int, batch: int) -> int:
    return max(1, round(grpo_steps * grpo_forward_equivalents(config) / (3 * batch)))


def _run(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    print(" ".join(cmd), flush=True)
    with open(log, "w") as handle:
        subprocess.run(cmd, check=True, env=ENV, stdout=handle, stderr=subprocess.STDOUT)


def grpo(args) -> None:
    for recipe in args.recipes:
        for seed in args.seeds:
            out = args.out / recipe / f"grpo_s{seed}"
            if (out / "summary.json").is_file():
                continue
            cmd = [*GEOGRPO, "train", "--recipe", recipe, "--out", str(out), "--resume", "auto"]
            for kv in (
                f"seed={seed}",
                f"steps={args.steps}",
                "eval.every=0",
                "eval.val_conditions=0",
                "eval.train_conditions=0",
                "checkpoint.every=0",
            ):
                cmd += ["--set", kv]
            _run(cmd, args.out / f"{recipe}.grpo_s{seed}.log")


def sft(args) -> None:
    from geogrpo.models.policy import policy_dir
    from geogrpo.train.config import load_config

    for recipe in args.recipes:
        config = load_config(recipe)
        steps = sft_steps(config, args.steps, args.sft_batch)
        base = config.model.policy
        manifest = json.loads((policy_dir(base) / "manifest.json").read_text(encoding="utf-8"))
        arch = manifest["config"]
        for seed in args.seeds:
            out = args.out / recipe / f"sft_s{seed}"
            if (out / "policy.json").is_file():
                continue
            conditioning = (
                "warped_noise_t2v" if base == "tiny-warped-noise-t2v" else arch["conditioning"]
            )
            cmd = [
                *GEOGRPO,
                "pretrain",
                "policy",
                "--conditioning",
                conditioning,
                "--init-from",
                base,
                "--out",
                str(out),
                "--n-train",
                str(args.sft_items),
                "--n-val",
                "4",
                "--steps",
                str(steps),
                "--batch",
                str(args.sft_batch),
                "--lr",
                str(args.sft_lr),
                "--seed",
                str(seed),
                "--eval-every",
                str(steps),
            ]
            for key in ("layers", "heads", "head_dim", "ffn_dim", "text_dim", "time_shift"):
                cmd += [f"--{key.replace('_', '-')}", str(arch[key])]
            for key in ("prediction", "loss", "autoencoder"):
                cmd += [f"--{key}", str(arch[key])]
            for key in ("camera_rays", "camera_attention"):
                if arch.get(key):
                    cmd.append(f"--{key.replace('_', '-')}")
            print(
                f"{recipe}: SFT {steps} steps x batch {args.sft_batch} = "
                f"{args.steps} GRPO steps x {grpo_forward_equivalents(config):.0f} "
                "forward-equivalents"
            )
            _run(cmd, args.out / f"{recipe}.sft_s{seed}.log")


def _policies(args, recipe: str) -> dict[str, str]:
    from geogrpo.train.config import load_config

    found = {"base": load_config(recipe).model.policy, "truth": "truth"}
    for seed in args.seeds:  # finished runs only
        for kind, marker in (("grpo", "summary.json"), ("sft", "policy.json")):
            folder = args.out / recipe / f"{kind}_s{seed}"
            if (folder / marker).is_file():
                found[f"{kind}_s{seed}"] = str(folder)
    return found


def evaluate(args) -> None:
    for recipe in args.recipes:
        evals = args.out / recipe / "eval"
        for name, policy in _policies(args, recipe).items():
            cmd = [
                *GEOGRPO,
                "eval",
                "--suite",
                SUITE[recipe],
                "--recipe",
                recipe,
                "--policy",
                policy,
                "--n",
                str(args.scenes or SCENES[recipe]),
                "--out",
                str(evals / name),
            ]
            _run(cmd, args.out / f"{recipe}.eval_{name}.log")
            if name not in ("base", "truth"):
                cmd = [
                    *GEOGRPO,
                    "eval",
                    "--compare",
                    str(evals / "base"),
                    str(evals / name),
                    "--out",
                    str(args.out / recipe / "compare" / name),
                ]
                _run(cmd, args.out / f"{recipe}.compare_{name}.log")


def _met(kind: str, threshold: float, c: dict) -> bool:
    if kind == "diff":
        return c["diff"] >= threshold and c["ci95_low"] > 0
    if kind == "diff_down":
        return c["diff"] < 0 and c["ci95_high"] < 0
    rel = c["diff"] / abs(c["mean_a"]) if c["mean_a"] else math.nan
    return rel <= -threshold and c["ci95_high"] < 0


def _pooled_truth(args, recipe: str, metric: str) -> float:
    """The metric of the world's own outputs (``--policy truth``), pooled over the splits."""
    path = args.out / recipe / "eval" / "truth" / "summary.json"
    if not path.is_file():
        return math.nan
    stats = [s[metric] for s in json.loads(path.read_text())["metrics"].values() if metric in s]
    n = sum(c["n"] for c in stats)
    return sum(c["mean"] * c["n"] for c in stats if c["n"]) / n if n else math.nan


def table(args) -> str:
    lines = [
        "| recipe | metric | truth | base | GRPO: B - base per seed [95 % CI] (up/down) | "
        "SFT: B - base per seed | target | met by GRPO |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for recipe in args.recipes:
        compares = args.out / recipe / "compare"
        for metric, kind, threshold in TARGETS[recipe]:
            cells, met, base = {"grpo": [], "sft": []}, [], math.nan
            for kind_name in ("grpo", "sft"):
                for seed in args.seeds:
                    path = compares / f"{kind_name}_s{seed}" / "compare.json"
                    if not path.is_file():
                        continue
                    c = json.loads(path.read_text())["metrics"]["all"].get(metric)
                    if not c or not c["n"]:
                        continue
                    base = c["mean_a"]
                    cells[kind_name].append(
                        f"{c['diff']:+.3g} [{c['ci95_low']:+.3g}, {c['ci95_high']:+.3g}] "
                        f"({c['up']}/{c['down']})"
                    )
                    if kind_name == "grpo":
                        met.append(_met(kind, threshold, c))
            target = {"diff": f"+{threshold:g}", "diff_down": "down", "rel": f"-{threshold:.0%}"}[
                kind
            ]
            lines.append(
                f"| {recipe} | {metric} | {_pooled_truth(args, recipe, metric):.4g} | {base:.4g} | "
                f"{'<br>'.join(cells['grpo'])} | "
                f"{'<br>'.join(cells['sft'])} | {target} | {sum(met)}/{len(met)} seeds |"
            )
    lines += ["", *_training_spearman(args)]
    text = "\n".join(lines) + "\n"
    (args.out / "headline.md").write_text(text, encoding="utf-8")
    print(text)
    return text


def _training_spearman(args) -> list[str]:
    """Per recipe and reward: the within-group Spearman of the reward against each truth metric
    on the training rollouts, averaged over steps and seeds (does GRPO's signal rank like the
    truth while it trains?)."""
    lines = [
        "| recipe | reward vs truth on the training rollouts | mean within-group Spearman "
        "(steps x seeds) |",
        "|---|---|---|",
    ]
    for recipe in args.recipes:
        values: dict[str, list[float]] = {}
        for seed in args.seeds:
            path = args.out / recipe / f"grpo_s{seed}" / "metrics.jsonl"
            if not path.is_file():
                continue
            for line in path.read_text().splitlines():
                for key, value in json.loads(line).items():
                    if key.startswith("spearman/") and math.isfinite(value):
                        values.setdefault(key.removeprefix("spearman/"), []).append(value)
        for key, vals in values.items():
            lines.append(f"| {recipe} | {key} | {sum(vals) / len(vals):+.3f} (n={len(vals)}) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("grpo", "sft", "eval", "table"))
    parser.add_argument("--recipes", nargs="+", default=list(SUITE), choices=list(SUITE))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=12, help="GRPO steps per run")
    parser.add_argument("--sft-batch", type=int, default=8)
    parser.add_argument("--sft-lr", type=float, default=1e-4)
    parser.add_argument("--sft-items", type=int, default=24, help="train items (GRPO's pool)")
    parser.add_argument(
        "--scenes", type=int, default=None, help="scenes / captions per split (default: SCENES)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/headline"))
    args = parser.parse_args()
    {"grpo": grpo, "sft": sft, "eval": evaluate, "table": table}[args.stage](args)


if __name__ == "__main__":
    main()
