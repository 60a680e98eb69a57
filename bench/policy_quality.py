"""Quality floors of the shipped tiny policies on the val split, against ground-truth renders.

* autoencoder: reconstruction PSNR of val clips.
* camera_v2v / reproj_v2v: PSNR / SSIM of the generated target video vs the true target video,
  next to the baselines "copy the source video" and "reprojected source with holes" and the
  ceiling "autoencoder reconstruction of the true target", and the model's one-step prediction
  from pure noise (its posterior mean: what it knows, blurred where it is unsure; a diagnostic,
  not a sample, so not what the floors are read on); RotErr / TransErr of each video's
  cameras measured by the world's ground-truth-anchored evaluator (flow + PnP against the true
  renders; ``geogrpo.world.evaluator``), medians over clips, unmatched frames excluded and
  counted; "confirmed" is the mean share of the true view's trackable surface that the frames
  confirm (the evaluator's inlier ratio). reproj_v2v also gets the rows of a plain source video,
  whose depth tinygeo estimates (TrajectoryCrafter's set-up), next to those with the true depth.
* t2v: how often the dominant image motion of a generated clip (left / right / up / down /
  expand / contract, from DIS optical flow summed over consecutive frames) equals that of the
  true render of the same caption, against the agreement expected by chance from the two class
  frequencies.

Also writes one contact sheet per policy to ``--sheets`` (default ``docs/images``).

    python bench/policy_quality.py --n 24    # about 10 min on 2 cores
    python bench/policy_quality.py --policies tiny-camera-v2v --extra-samplers 8:8 8:3
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from geogrpo.eval.camera_words import MOTIONS, dominant_motion
from geogrpo.eval.metrics import psnr, ssim
from geogrpo.models.conditioning import reproject_source
from geogrpo.models.policy import PRETRAINED_DIR, VideoPolicy
from geogrpo.perception.tinygeo import TinyGeoEstimator
from geogrpo.train.conditions import from_pairs
from geogrpo.train.rollout import generate
from geogrpo.utils.io import atomic_path
from geogrpo.world.datasets import MultiViewPairs, TextToVideoClips
from geogrpo.world.evaluator import evaluate_cameras


def to_frames(video: torch.Tensor) -> torch.Tensor:
    """``[3, F, H, W]`` in [-1, 1] -> ``[F, H, W, 3]`` in [0, 1]."""
    return ((video.permute(1, 2, 3, 0) + 1) / 2).clamp(0, 1)


MIN_MATCHED_SHARE = 0.5  # a clip's camera errors count only if most of its frames registered


def median_camera_errors(clips: list[tuple]) -> dict[str, float]:
    """Medians over clips with at least ``MIN_MATCHED_SHARE`` of their frames matched: clip
    sums over fewer frames are smaller, so a clip matched at frame 0 alone would score 0."""
    rot, trans, ratios, unmatched, counted = [], [], [], 0, 0
    for frames, item in clips:
        ev = evaluate_cameras(
            frames,
            item["target_video"],
            item["target_depth"],
            item["intrinsics"],
            item["target_w2c"],
        )
        s = ev.summary()
        ratios.append(ev.inlier_ratio)
        unmatched += ev.num_unmatched
        frames_total = len(frames)
        if frames_total - ev.num_unmatched >= MIN_MATCHED_SHARE * frames_total:
            counted += 1
            rot.append(s["rot_err_deg"])
            trans.append(s["trans_err"])
    med = lambda x: float(np.median(x)) if x else float("nan")  # noqa: E731
    return {
        "rot_err_deg": med(rot),
        "trans_err": med(trans),
        "unmatched_frames": unmatched,
        "clips_scored": counted,
        # share of the true view's trackable surface the frames confirm (the evaluator's inlier
        # ratio, all frames): read where RotErr is n/a, it says whether content or pose failed
        "confirmed": float(torch.cat(ratios).mean()),
    }


def sampler(text: str) -> tuple[int, float]:
    """``STEPS:SHIFT`` -> ``(steps, shift)``."""
    steps, sep, shift = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(steps), float(shift)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected STEPS:SHIFT such as 8:8, got {text!r}"
        ) from None


def evaluate_v2v(
    name: str,
    n: int,
    data_dir: Path,
    steps: int,
    shift: float,
    extra_samplers: tuple[tuple[int, float], ...] = (),
) -> tuple[list[dict], list]:
    """Rows of the floor table; ``extra_samplers`` add one "generated" row per other sampler
    (same weights, noise and pairs), so sampler settings are compared side by side."""
    policy = VideoPolicy.from_pretrained(name)
    ds = MultiViewPairs("val", n, cache_dir=data_dir / "pairs" / "val")
    others = {f"generated, {k} steps shift {s:g}": (k, s) for k, s in extra_samplers}
    keys = ("generated", *others, "posterior mean (1 step)", "copy source", "reprojected", "ae")
    # reproj_v2v as TrajectoryCrafter runs it on a plain video: the source's depth estimated
    # (tinygeo here, DepthCrafter there) instead of known
    estimated = policy.conditioning.name == "reproj_v2v"
    if estimated:
        estimator = TinyGeoEstimator()
        keys += ("generated, tinygeo depth", "reprojected, tinygeo depth")
    rows: dict[str, list] = {k: [] for k in keys}
    sheet = []
    for i in range(n):
        it = ds[i]
        cond = from_pairs([it], policy.conditioning.name)
        inputs, src = cond.inputs, cond.inputs.source_video
        target = it["target_video"].float()
        gen, mean, *other = (
            to_frames(
                generate(
                    policy,
                    cond.prompts,
                    *src.shape[2:],
                    num_inference_steps=k,
                    shift=s,
                    seed=i,
                    inputs=inputs,
                )[0]
            )
            for k, s in ((steps, shift), (1, shift), *others.values())
        )
        ae = to_frames(policy.decode(policy.encode(target.permute(3, 0, 1, 2)[None] * 2 - 1))[0])
        for key, video in (
            ("generated", gen),
            ("posterior mean (1 step)", mean),
            ("copy source", it["source_video"].float()),
            ("reprojected", cond.reference_video[0]),
            ("ae", ae),
            *zip(others, other, strict=True),
        ):
            rows[key].append((video, it))
        if estimated:
            geometry = estimator.estimate(it["source_video"][None].float()).as_source_geometry()
            guessed = replace(inputs, **geometry)
            gen_est = generate(
                policy,
                cond.prompts,
                *src.shape[2:],
                num_inference_steps=steps,
                shift=shift,
                seed=i,
                inputs=guessed,
            )[0]
            render_est, _ = reproject_source(
                src,
                guessed.source_depth,
                guessed.source_w2c,
                guessed.cameras,
                guessed.intrinsics,
            )
            rows["generated, tinygeo depth"].append((to_frames(gen_est), it))
            rows["reprojected, tinygeo depth"].append((to_frames(render_est[0]), it))
        if i < 4:
            sheet.append((it["source_video"], gen, target, it["relative_kind"]))
    table = []
    for key, clips in rows.items():
        cams = median_camera_errors(clips)
        table.append(
            {
                "policy": name,
                "video": key,
                "psnr_db": float(np.mean([psnr(v, it["target_video"]) for v, it in clips])),
                "ssim": float(np.mean([ssim(v, it["target_video"].float()) for v, it in clips])),
                # frame 0 of every target is the source's frame 0 (the paths start at identity):
                # copying gets it exactly, a generator only through the autoencoder
                "ssim_first": float(
                    np.mean([ssim(v[:1], it["target_video"][:1].float()) for v, it in clips])
                ),
                "ssim_later": float(
                    np.mean([ssim(v[1:], it["target_video"][1:].float()) for v, it in clips])
                ),
                **cams,
            }
        )
    return table, sheet


def evaluate_t2v(
    name: str, n: int, data_dir: Path, steps: int, shift: float, guidance_scale: float = 1.0
) -> tuple[dict, list]:
    policy = VideoPolicy.from_pretrained(name)
    ds = TextToVideoClips("val", n, cache_dir=data_dir / "t2v" / "val")
    pairs, sheet = [], []
    for i in range(n):
        it = ds[i]
        f, h, w = it["video"].shape[:3]
        gen = generate(
            policy,
            [it["caption"]],
            f,
            h,
            w,
            num_inference_steps=steps,
            shift=shift,
            seed=i,
            guidance_scale=guidance_scale,
        )
        gen = to_frames(gen[0])
        pairs.append((dominant_motion(gen), dominant_motion(it["video"].float())))
        if i < 4:
            sheet.append((gen, it["video"], it["caption"]))
    agree = float(np.mean([g == t for g, t in pairs]))
    pg, pt = Counter(g for g, _ in pairs), Counter(t for _, t in pairs)
    chance = sum(pg[m] * pt[m] for m in MOTIONS) / len(pairs) ** 2
    row = {"policy": name, "motion_agreement": agree, "chance": chance, "n": n}
    return {**row, "guidance_scale": guidance_scale}, sheet


def save_sheet(path: Path, rows: list[tuple], titles: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = (0, 8, 16)
    cols = len(titles) * len(picks)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.1 * cols, 1.25 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        videos, label = row[:-1], row[-1]
        for v, video in enumerate(videos):
            for p, f in enumerate(picks):
                ax = axes[r][v * len(picks) + p]
                ax.imshow(video[f].clamp(0, 1).numpy())
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"{titles[v]} f{f}", fontsize=6)
        axes[r][0].set_ylabel(label[:28], fontsize=5)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.93, bottom=0.01, wspace=0.03, hspace=0.08)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def plot_pretraining_curves(runs: Path, path: Path) -> None:
    """Training loss (smoothed) and val loss / PSNR of every run under ``runs``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geogrpo.train.logging import read_jsonl

    logs = sorted(runs.glob("*/logs/metrics.jsonl"))
    if not logs:
        return
    fig, axes = plt.subplots(1, len(logs), figsize=(3.2 * len(logs), 2.6), squeeze=False)
    for ax, log in zip(axes[0], logs, strict=True):
        rows = read_jsonl(log)
        steps = np.array([r["step"] for r in rows if "loss" in r])
        loss = np.array([r["loss"] for r in rows if "loss" in r])
        k = max(1, len(loss) // 50)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, lw=1, label="train loss")
        val_key = "val_psnr_db" if any("val_psnr_db" in r for r in rows) else "val_loss"
        val = [(r["step"], r[val_key]) for r in rows if val_key in r]
        twin = ax.twinx() if val_key == "val_psnr_db" else ax
        twin.plot(*zip(*val, strict=True), "o-", ms=3, color="C1", label=val_key)
        ax.set_title(log.parent.parent.name, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
        twin.tick_params(labelsize=6)
        ax.legend(fontsize=6, loc="upper right")
        if twin is not ax:
            twin.legend(fontsize=6, loc="center right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=24, help="val items per policy")
    parser.add_argument("--steps", type=int, default=20, help="ODE sampling steps")
    parser.add_argument("--shift", type=float, default=3.0, help="sampling timestep shift")
    parser.add_argument(
        "--extra-samplers",
        type=sampler,
        nargs="*",
        default=[],
        metavar="STEPS:SHIFT",
        help="v2v: more samplers to measure on the same pairs and noise, one row each",
    )
    parser.add_argument(
        "--guidance-scale",
        type=float,
        nargs="+",
        default=[1.0],
        help="t2v: classifier-free guidance scales to measure, one row each (default: 1)",
    )
    parser.add_argument("--data-dir", default="data", help="dataset cache root")
    parser.add_argument("--sheets", default="docs/images", help="where contact sheets go")
    parser.add_argument("--runs", default="runs/pretrain", help="pretraining runs to plot")
    parser.add_argument(
        "--policies",
        nargs="+",
        default=["tiny-t2v", "tiny-warped-noise-t2v", "tiny-camera-v2v", "tiny-reproj-v2v"],
    )
    args = parser.parse_args()
    data_dir, sheets = Path(args.data_dir), Path(args.sheets)
    torch.set_grad_enabled(False)
    plot_pretraining_curves(Path(args.runs), sheets / "pretraining_curves.png")
    from geogrpo.models.autoencoder import FrameAutoencoder
    from geogrpo.pretrain.autoencoder import evaluate_autoencoder
    from geogrpo.pretrain.common import load_videos

    ae = FrameAutoencoder.from_pretrained(PRETRAINED_DIR / "tiny-autoencoder")
    val = load_videos("t2v", "val", 64, data_dir / "t2v", "video")
    print(f"autoencoder val PSNR (64 clips): {evaluate_autoencoder(ae, val):.2f} dB\n")
    for name in args.policies:
        if "v2v" in name:
            table, sheet = evaluate_v2v(
                name, args.n, data_dir, args.steps, args.shift, tuple(args.extra_samplers)
            )
            print(
                f"| {name} ({args.n} val pairs) | PSNR dB | SSIM | SSIM f0 | SSIM f1-16 "
                "| RotErr deg | TransErr "
                "| unmatched frames | clips scored | confirmed |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|")
            for r in table:
                print(
                    f"| {r['video']} | {r['psnr_db']:.2f} | {r['ssim']:.3f} | "
                    f"{r['ssim_first']:.3f} | {r['ssim_later']:.3f} | "
                    f"{r['rot_err_deg']:.2f} | {r['trans_err']:.3f} | {r['unmatched_frames']} "
                    f"| {r['clips_scored']} | {r['confirmed']:.2f} |"
                )
            save_sheet(sheets / f"{name}.png", sheet, ("source", "generated", "true target"))
        else:
            for scale in args.guidance_scale:
                row, sheet = evaluate_t2v(name, args.n, data_dir, args.steps, args.shift, scale)
                hits = round(row["motion_agreement"] * row["n"])
                expected = row["chance"] * row["n"]
                z = (hits - expected) / max(math.sqrt(expected * (1 - row["chance"])), 1e-9)
                print(
                    f"{name} (guidance {scale:g}): dominant-motion agreement with the true render "
                    f"{row['motion_agreement']:.2f} (chance {row['chance']:.2f}, "
                    f"{row['n']} val captions, {hits} hits, binomial z {z:.1f})"
                )
            save_sheet(
                sheets / f"{name}.png",
                [(g, t, c) for g, t, c in sheet],
                ("generated", "true render"),
            )
        print()


if __name__ == "__main__":
    main()
