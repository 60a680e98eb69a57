"""Which way is up for a quality scorer? The base policy's samples on val conditions, pushed along
the directions a GRPO run can drift (brighter, sharpened, high-frequency noise, blurred), scored
by each scorer and by the truth (true-target PSNR, SSIM and the embedded perceptual distance of
the same frames):

    python bench/quality_drift.py --scorers runs/quality_old/tiny-quality tiny-quality

Samples are drawn as the reward-fidelity suite draws them for the geo_align recipe (window of 3
SDE steps of 10, noise level 0.7, seed 0); every 4th frame of the first ``--group`` samples of
each of ``--n`` val conditions is scored. A scorer that rises along a direction the truth calls
worse is an easy way up for GRPO.
"""

from __future__ import annotations

import argparse

import torch

from geogrpo.eval.metrics import psnr_per_sample, ssim_per_sample
from geogrpo.eval.reward_fidelity import sample_groups
from geogrpo.eval.suites import default_plan, parse_plan
from geogrpo.models.policy import VideoPolicy
from geogrpo.perception.perceptual import EncoderPerceptualDistance
from geogrpo.perception.quality import TinyQualityScorer
from geogrpo.pretrain.common import gaussian_blur
from geogrpo.train.conditions import from_items, load_items
from geogrpo.train.config import load_config


def drifts(x: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """``[N, H, W, 3]`` frames -> the same frames pushed along each direction, in [0, 1]."""
    c = x.permute(0, 3, 1, 2)
    out = {
        "brighter (+0.05)": c + 0.05,
        "sharpened (unsharp mask, sigma 1, amount 1)": c + (c - gaussian_blur(c, 1.0, 3)),
        "high-frequency noise (std 0.03)": c + 0.03 * torch.randn(c.shape, generator=gen),
        "blurred (sigma 1)": gaussian_blur(c, 1.0, 3),
    }
    return {k: v.clamp(0, 1).permute(0, 2, 3, 1) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scorers", nargs="+", default=["tiny-quality"])
    parser.add_argument("--n", type=int, default=12, help="val conditions")
    parser.add_argument("--group", type=int, default=2, help="samples per condition")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config("geo_align", overrides=[f"data.data_dir={args.data_dir}"])
    s = config.sampling
    conditions = from_items(load_items(config.data, "val", args.n, "speed_pairs"), "camera_v2v")
    policy = VideoPolicy.from_pretrained(config.model.policy).eval().requires_grad_(False)
    plan = parse_plan(default_plan(config), s.num_inference_steps, s.window_size, s.shift)
    videos, _ = sample_groups(
        policy, conditions, args.group, plan, s.noise_level, s.sde_kind, keep_latents=False
    )
    frames = torch.cat([v[:, ::4].flatten(0, 1) for v in videos])  # [N G F', H, W, 3]
    truth = torch.cat(
        [conditions.truth[n, ::4].repeat(args.group, 1, 1, 1) for n in range(len(videos))]
    )
    pushed = drifts(frames, torch.Generator().manual_seed(0))

    perceptual = EncoderPerceptualDistance()

    def truth_of(x: torch.Tensor) -> tuple[float, float, float]:
        a, b = x[:, None], truth[:, None]
        return (
            float(psnr_per_sample(a, b).mean()),
            float(ssim_per_sample(a, b).mean()),
            float(perceptual.distance(x, truth).mean()),
        )

    psnr0, ssim0, dist0 = truth_of(frames)
    scorers = {name: TinyQualityScorer.from_pretrained(name) for name in args.scorers}
    base = {name: sc.score(frames) for name, sc in scorers.items()}
    print(
        f"{policy.conditioning.name} base policy {config.model.policy}: {len(videos)} val "
        f"conditions x {args.group} samples x every 4th frame ({frames.shape[0]} frames); "
        f"truth PSNR {psnr0:.2f} dB, SSIM {ssim0:.4f}, perceptual distance {dist0:.4f}\n"
    )
    head = " | ".join(f"{name}: mean score (share below unchanged)" for name in scorers)
    print(f"| direction | truth dPSNR (dB) | truth dSSIM | truth d perceptual | {head} |")
    print("|---|---|---|---|" + "---|" * len(scorers))
    cells = " | ".join(f"{float(b.mean()):.3f}" for b in base.values())
    print(f"| unchanged | 0 | 0 | 0 | {cells} |")
    for direction, x in pushed.items():
        p, q, d = truth_of(x)
        cells = []
        for name, sc in scorers.items():
            score = sc.score(x)
            below = float((score < base[name]).float().mean())
            cells.append(f"{float(score.mean()):.3f} ({below:.2f})")
        diffs = f"{p - psnr0:+.2f} | {q - ssim0:+.4f} | {d - dist0:+.4f}"
        print(f"| {direction} | {diffs} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
