"""Perception accuracy, reward time per clip, and latent vs RGB reward cost, side by side.

    python bench/perception_rewards.py [--n 16]

Prints (1) static-camera / tinygeo / LGM / classical / flow_pnp accuracy on val and held-out
splits, on clean renders and on renders degraded the way a policy's are (the tiny autoencoder's
round trip, a Gaussian blur of sigma 1 px), with seconds per clip, (2) seconds per clip
of every reward, (3) VGGRPO's comparison: smoothness + reprojection from latents through the
Latent Geometry Model vs decode-then-tinygeo, time and peak memory (``bench/latent_vs_rgb.py``,
run from here), and (4) World-R1's reconstruction reward on consistent val clips against clips
whose frames come from three different scenes, through tinygeo.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch


class StaticCamera:
    """The trivial baseline: every camera at frame 0's pose, no depth."""

    name = "static"
    scale = "metric"

    def estimate(self, video, intrinsics=None):
        from geogrpo.perception.base import GeometryEstimate

        b, f, h, w, _ = video.shape
        return GeometryEstimate(
            w2c=torch.eye(4, dtype=torch.float64).repeat(b, f, 1, 1),
            intrinsics=torch.eye(3, dtype=torch.float64).repeat(b, f, 1, 1),
            depth=torch.zeros(b, f, h, w),
            confidence=torch.zeros(b, f, h, w),
            scale="metric",
            valid=torch.ones(b, dtype=torch.bool),
        )


def degraded_inputs(video_u8: torch.Tensor, autoencoder) -> dict[str, torch.Tensor]:
    """What a reward sees from a policy: clean renders, the tiny autoencoder's round trip, and a
    Gaussian blur (sigma 1 px, radius 3), each ``[N, F, H, W, 3]`` floats in [0, 1]."""
    from geogrpo.pretrain.common import gaussian_blur
    from geogrpo.pretrain.lgm import encode_clips

    video = video_u8.float() / 255
    n, f, h, w, _ = video.shape
    with torch.no_grad():
        latents = encode_clips(autoencoder, video_u8)
        decoded = torch.cat(
            [
                autoencoder.decode(z).permute(0, 2, 3, 4, 1).add(1).div(2).clamp(0, 1)
                for z in latents.split(8)
            ]
        )
    blurred = gaussian_blur(video.reshape(n * f, h, w, 3).permute(0, 3, 1, 2), 1.0, 3)
    blurred = blurred.permute(0, 2, 3, 1).reshape(n, f, h, w, 3).clamp(0, 1)
    return {"clean": video, "autoencoder": decoded, "blur": blurred}


def accuracy(n: int) -> None:
    from geogrpo.models.autoencoder import load_autoencoder
    from geogrpo.models.policy import PRETRAINED_DIR
    from geogrpo.perception.classical import ClassicalEstimator
    from geogrpo.perception.flow_pnp import FlowPnPEstimator
    from geogrpo.perception.latent import LatentGeometryEstimator
    from geogrpo.perception.tinygeo import TinyGeoEstimator
    from geogrpo.pretrain.common import load_clips
    from geogrpo.pretrain.lgm import encode_clips
    from geogrpo.pretrain.tinygeo import geometry_accuracy

    ae = load_autoencoder(PRETRAINED_DIR / "tiny-autoencoder").eval()
    lgm = LatentGeometryEstimator()
    tinygeo = TinyGeoEstimator()
    main = {
        "static camera": StaticCamera(),
        "tinygeo": tinygeo,
        "flow_pnp": FlowPnPEstimator(tinygeo),
    }
    clean_only = {
        "flow_pnp, pairs=consecutive": FlowPnPEstimator(tinygeo, pairs="consecutive"),
        "flow_pnp, pairs=first": FlowPnPEstimator(tinygeo, pairs="first"),
        "classical (up to scale)": ClassicalEstimator(),
    }
    print(
        "| estimator | split | input | clips scored | RotErr deg | TransErr | depth AbsRel "
        "| s per clip |"
    )
    print("|---|---|---|---|---|---|---|---|")

    def row(name: str, split: str, kind: str, m: dict[str, float], seconds: float) -> None:
        absrel = "-" if m["depth_abs_rel"] != m["depth_abs_rel"] else f"{m['depth_abs_rel']:.3f}"
        print(
            f"| {name} | {split} | {kind} | {m['valid']:.2f} | {m['rot_err_deg']:.2f} | "
            f"{m['trans_err']:.3f} | {absrel} | {seconds:.3f} |",
            flush=True,
        )

    for split in ("val", "heldout_shapes", "heldout_photo"):
        clips = load_clips(split, n, 17, 96, "data")
        b = clips["video"].shape[0]
        for kind, video in degraded_inputs(clips["video"], ae).items():
            rows = dict(main)
            if kind == "clean":
                rows.update(clean_only)
            for name, estimator in rows.items():
                t = time.perf_counter()
                est = estimator.estimate(video)
                row(name, split, kind, geometry_accuracy(est, clips), (time.perf_counter() - t) / b)
            if kind == "clean":
                t = time.perf_counter()
                est = lgm.estimate_latents(encode_clips(ae, clips["video"]))
                seconds = (time.perf_counter() - t) / b
                row("tinygeo-lgm (latents)", split, kind, geometry_accuracy(est, clips), seconds)


def reward_times(n: int) -> None:
    from geogrpo.perception.tinygeo import TinyGeoEstimator
    from geogrpo.pretrain.common import load_clips
    from geogrpo.rewards.base import RewardBatch
    from geogrpo.rewards.fidelity import ViewFidelityReward
    from geogrpo.rewards.geometry import ReprojectionReward, SmoothnessReward, TrajectoryReward
    from geogrpo.rewards.quality import QualityReward
    from geogrpo.rewards.reconstruction import ReconstructionReward

    clips = load_clips("val", n // 2, 17, 96, "data")
    video = clips["video"].float() / 255
    b = video.shape[0]
    est = TinyGeoEstimator()
    vis = torch.ones(video.shape[:4], dtype=torch.bool)
    print(f"\nreward seconds per clip ({b} clips of 17x96x96, {torch.get_num_threads()} threads)")
    t = time.perf_counter()
    est.estimate(video)
    print(f"  tinygeo estimate alone: {(time.perf_counter() - t) / b:.4f}")
    for name, reward in (
        ("trajectory", TrajectoryReward(est)),
        ("smoothness", SmoothnessReward(est)),
        ("reprojection", ReprojectionReward(est)),
        ("view_fidelity", ViewFidelityReward()),
        ("quality", QualityReward()),
        ("reconstruction", ReconstructionReward(est)),
    ):
        batch = RewardBatch(
            video=video,
            target_w2c=clips["rel_w2c"],
            reference_video=video,
            visible=vis,
            source_video=video,
        )
        t = time.perf_counter()
        reward(batch)
        print(f"  {name} (incl. estimate): {(time.perf_counter() - t) / b:.4f}")


def latent_vs_rgb() -> None:
    """Part (3): the interleaved comparison in its own script, on the vggrpo recipe's batch."""
    print(flush=True)
    subprocess.run(
        [sys.executable, str(Path(__file__).with_name("latent_vs_rgb.py")), "--repeats", "3"],
        check=True,
    )


def reconstruction_ranking(n: int) -> None:
    from geogrpo.perception.tinygeo import TinyGeoEstimator
    from geogrpo.pretrain.common import load_clips
    from geogrpo.rewards.base import RewardBatch
    from geogrpo.rewards.reconstruction import ReconstructionReward

    clips = load_clips("val", n, 17, 96, "data")
    video = clips["video"].float() / 255  # [2 n, F, H, W, 3], two views per pair
    f = video.shape[1]
    # frame t of clip i comes from clip (i + t) mod 3 of its group of three: same frame
    # index, so the camera motion is alike, but three different scenes
    groups = video.shape[0] // 3 * 3
    mixed = torch.stack(
        [
            torch.stack([video[(i // 3) * 3 + (i + t) % 3, t] for t in range(f)])
            for i in range(groups)
        ]
    )
    reward = ReconstructionReward(TinyGeoEstimator())
    true_out = reward(RewardBatch(video=video[:groups], target_w2c=clips["rel_w2c"][:groups]))
    mixed_out = reward(RewardBatch(video=mixed, target_w2c=clips["rel_w2c"][:groups]))
    print(f"\nreconstruction reward, {groups} consistent val clips vs {groups} mixed-scene clips")
    for term in ("recon", "meta", "traj", "recon_psnr"):
        a, b = true_out.diagnostics[term], mixed_out.diagnostics[term]
        print(f"  {term:10s} consistent {a.nanmean():.3f}  mixed {b.nanmean():.3f}")
    wins = (true_out.scores > mixed_out.scores).float().mean()
    print(
        f"  total: consistent {true_out.scores.mean():.3f}, mixed {mixed_out.scores.mean():.3f}, "
        f"consistent ranked higher in {wins:.0%} of pairs"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16)
    p.add_argument(
        "--only", choices=("accuracy", "times", "reconstruction"), help="run one part only"
    )
    args = p.parse_args()
    if args.only:
        parts = {"accuracy": accuracy, "times": reward_times}
        parts["reconstruction"] = reconstruction_ranking
        parts[args.only](args.n)
        return
    accuracy(args.n)
    reward_times(args.n)
    latent_vs_rgb()
    reconstruction_ranking(args.n)


if __name__ == "__main__":
    main()
