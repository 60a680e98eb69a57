"""Where a tiny policy's denoiser fails: x0 error by noise level and latent frame, side by side.

For each policy, on the same val items, noise and times: the MSE of the x0 it implies at time
``t`` (``x0 = x_t - t v``), per latent frame, next to two reference predictors, "x_t itself"
(error ``t^2 E|eps - x0|^2``, about ``2 t^2``) and, for camera_v2v, "copy the source latents".
A denoiser that is no better than ``x_t`` at small ``t`` cannot remove the last noise, and its
ODE samples decode as textured noise even when its high-noise predictions (layout, copying) are
good. Then PSNR / SSIM of samples for a few sampler settings, including the one-step
prediction from pure noise (the model's conditional mean, not a sample).

    python bench/denoiser_by_time.py --policies tiny-camera-v2v runs/pretrain/some-run --n 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from policy_quality import to_frames

from geogrpo.eval.metrics import psnr, ssim
from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import VideoPolicy
from geogrpo.train.conditions import from_items
from geogrpo.train.rollout import generate
from geogrpo.utils.video import frames_to_model
from geogrpo.world.datasets import MultiViewPairs, TextToVideoClips

TIMES = (0.05, 0.2, 0.5, 0.8, 0.95)


def val_batch(
    conditioning: str, n: int, data_dir: Path
) -> tuple[list[str], torch.Tensor, ConditionInputs]:
    """Prompts, true target videos ``[n, 3, F, H, W]`` in [-1, 1] and the conditioning inputs."""
    if "t2v" in conditioning:
        ds = TextToVideoClips("val", n, cache_dir=data_dir / "t2v" / "val")
    else:
        ds = MultiViewPairs("val", n, cache_dir=data_dir / "pairs" / "val")
    cond = from_items([ds[i] for i in range(n)], conditioning)
    return cond.prompts, frames_to_model(cond.truth), cond.inputs


def per_frame_mse(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``[B, C, F, h, w]`` pair -> MSE per latent frame ``[F]``."""
    return ((a - b) ** 2).mean(dim=(0, 1, 3, 4)).numpy()


def fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:6.3f}" for v in values)


def report(name: str, n: int, data_dir: Path, samplers: list[tuple[int, float]]) -> None:
    policy = VideoPolicy.from_pretrained(name)
    prompts, target, inputs = val_batch(policy.conditioning.name, n, data_dir)
    f, h, w = target.shape[2:]
    condition = policy.prepare(prompts, inputs)
    x0 = policy.encode(target)
    print(f"## {name} ({policy.conditioning.name}, {n} val items)\n")
    print("x0 MSE per latent frame (latents have unit variance)")
    if condition.source_latents is not None:
        print(f"{'copy the source':>22}  {fmt(per_frame_mse(condition.source_latents, x0))}")
    for t in TIMES:
        gen = torch.Generator().manual_seed(1)
        eps = torch.randn(x0.shape, generator=gen)
        xt = (1 - t) * x0 + t * eps
        v = policy.velocity(xt, torch.full((n,), t), condition)
        print(f"{'t = ' + str(t) + ', model':>22}  {fmt(per_frame_mse(xt - t * v, x0))}")
        print(f"{'t = ' + str(t) + ', x_t itself':>22}  {fmt(per_frame_mse(xt, x0))}")
    print("\nsamples (ODE, seed 0) against the true video")
    for steps, shift in samplers:
        out = generate(
            policy, prompts, f, h, w, num_inference_steps=steps, shift=shift, seed=0, inputs=inputs
        )
        p = np.mean([psnr(to_frames(o), to_frames(t)) for o, t in zip(out, target, strict=True)])
        s = np.mean([ssim(to_frames(o), to_frames(t)) for o, t in zip(out, target, strict=True)])
        label = "one step (mean)" if steps == 1 else f"{steps} steps, shift {shift:g}"
        print(f"{label:>22}  PSNR {p:5.2f} dB  SSIM {s:.3f}")
    if inputs.source_video is not None:
        src = inputs.source_video
        p = np.mean([psnr(to_frames(a), to_frames(b)) for a, b in zip(src, target, strict=True)])
        s = np.mean([ssim(to_frames(a), to_frames(b)) for a, b in zip(src, target, strict=True)])
        print(f"{'copy the source':>22}  PSNR {p:5.2f} dB  SSIM {s:.3f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policies", nargs="+", default=["tiny-camera-v2v"])
    parser.add_argument("--n", type=int, default=8, help="val items")
    parser.add_argument("--data-dir", default="data", help="dataset cache root")
    parser.add_argument(
        "--samplers",
        nargs="+",
        default=["20,3", "8,8", "1,1"],
        help="steps,shift pairs (default: 20,3 8,8 1,1)",
    )
    args = parser.parse_args()
    samplers = [(int(s.split(",")[0]), float(s.split(",")[1])) for s in args.samplers]
    torch.set_grad_enabled(False)
    for name in args.policies:
        report(name, args.n, Path(args.data_dir), samplers)


if __name__ == "__main__":
    main()
