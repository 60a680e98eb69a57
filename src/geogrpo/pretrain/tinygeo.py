"""``geogrpo pretrain tinygeo``: the embedded geometry estimator, supervised on the procedural
world.

Clips are both views of the world's multi-view pairs (train split), so camera paths cover
walking, game paths, the ten presets and extreme orbits. Augmentations mimic generated video:
blur, noise, colour shift, a round trip through the shipped autoencoder with latent noise (the
softness of decoded samples), and temporal jitter (random stride, offset, repeated frames, with
the labels following the frames).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.camera.metrics import rotation_errors, translation_errors
from geogrpo.camera.se3 import relative_to_first
from geogrpo.models.autoencoder import load_autoencoder
from geogrpo.models.policy import PRETRAINED_DIR as POLICY_PRETRAINED_DIR
from geogrpo.perception.base import GeometryEstimate, GeometryEstimator
from geogrpo.perception.tinygeo import (
    TinyGeo,
    TinyGeoEstimator,
    geometry_loss,
    load_model_files,
)
from geogrpo.pretrain.common import (
    gaussian_blur,
    load_clips,
    write_manifest,
)
from geogrpo.pretrain.config import TinyGeoPretrainConfig
from geogrpo.train.checkpoint import TRAIN_STATE, resume_train_state, save_train_state
from geogrpo.train.logging import RunLogger
from geogrpo.world.datasets import check_training_split


def temporal_jitter(num_frames: int, clip_frames: int, gen: torch.Generator) -> Tensor:
    """Frame indices: random stride (1-2) and offset, and one frame repeated half the time."""
    stride = (
        2 if (clip_frames - 1) * 2 < num_frames and float(torch.rand(1, generator=gen)) < 0.5 else 1
    )
    start = int(torch.randint(num_frames - (clip_frames - 1) * stride, (1,), generator=gen))
    idx = start + stride * torch.arange(clip_frames)
    if float(torch.rand(1, generator=gen)) < 0.5:
        k = int(torch.randint(1, clip_frames, (1,), generator=gen))
        idx[k:] = torch.cat([idx[k - 1 : k], idx[k:-1]])
    return idx


def augment(video: Tensor, gen: torch.Generator, autoencoder: Any | None) -> Tensor:
    """``[B, F, H, W, 3]`` in [0, 1] -> the same clips degraded the ways generated video is."""
    b = video.shape[0]
    out = []
    for clip in video:
        x = clip.permute(0, 3, 1, 2)  # [F, 3, H, W]
        if autoencoder is not None and float(torch.rand(1, generator=gen)) < 0.3:
            with torch.no_grad():
                z = autoencoder.encode_frames(x * 2 - 1)
                z = z + 0.3 * float(torch.rand(1, generator=gen)) * z.std() * torch.randn(
                    z.shape, generator=gen
                )
                x = (autoencoder.decode_frames(z).clamp(-1, 1) + 1) / 2
        if float(torch.rand(1, generator=gen)) < 0.5:
            x = gaussian_blur(x, 0.3 + 1.2 * float(torch.rand(1, generator=gen)), 3)
        if float(torch.rand(1, generator=gen)) < 0.5:
            gain = 0.8 + 0.4 * torch.rand(1, 3, 1, 1, generator=gen)
            bias = 0.2 * torch.rand(1, 3, 1, 1, generator=gen) - 0.1
            x = x * gain + bias
        if float(torch.rand(1, generator=gen)) < 0.5:
            x = x + 0.05 * float(torch.rand(1, generator=gen)) * torch.randn(x.shape, generator=gen)
        out.append(x.clamp(0, 1).permute(0, 2, 3, 1))
    return torch.stack(out) if b else video


def evaluate_geometry(estimator: GeometryEstimator, clips: dict[str, Tensor]) -> dict[str, float]:
    """Pose and depth accuracy of an estimator on clips with ground truth (valid samples only).

    ``rot_err_deg``: mean angle between estimated and true rotations relative to the first frame
    (frames 1..F-1); ``trans_err``: mean distance of camera centres in world units, with no
    alignment for metric estimators and after ``max_norm`` normalisation (both trajectories
    scaled to unit largest centre distance) for up-to-scale ones; ``depth_abs_rel``: mean
    |d - d*| / d* over surface pixels with confidence > 0, after a per-clip median scale for
    up-to-scale estimators; ``valid``: the fraction of clips the estimator scored.
    """
    return geometry_accuracy(estimator.estimate(clips["video"].float() / 255), clips)


def geometry_accuracy(est: GeometryEstimate, clips: dict[str, Tensor]) -> dict[str, float]:
    """The numbers of :func:`evaluate_geometry` for an estimate already made."""
    ok = est.valid
    if not ok.any():
        return {
            "rot_err_deg": float("nan"),
            "trans_err": float("nan"),
            "depth_abs_rel": float("nan"),
            "valid": 0.0,
        }
    truth_w2c = clips["rel_w2c"][ok]
    norm = "metric" if est.scale == "metric" else "max_norm"
    rot = rotation_errors(est.w2c[ok], truth_w2c)[:, 1:]
    trans = translation_errors(est.w2c[ok], truth_w2c, norm)[:, 1:]
    rels = []
    for d_est, d_true, c in zip(
        est.depth[ok], clips["depth"][ok].float(), est.confidence[ok], strict=True
    ):
        m = (d_true > 0) & (c > 0) & (d_est > 0)
        if not m.any():
            continue
        s = 1.0 if est.scale == "metric" else float((d_true[m] / d_est[m]).median())
        rels.append(((d_est[m] * s - d_true[m]).abs() / d_true[m]).mean())
    return {
        "rot_err_deg": float(torch.rad2deg(rot).mean()),
        "trans_err": float(trans.mean()),
        "depth_abs_rel": float(torch.stack(rels).mean()) if rels else float("nan"),
        "valid": float(ok.float().mean()),
    }


def pretrain_tinygeo(cfg: TinyGeoPretrainConfig) -> dict[str, Any]:
    check_training_split("train")
    torch.manual_seed(cfg.seed)
    shape = {k: getattr(cfg, k) for k in ("dim", "heads", "layers", "size", "stitch_layer")}
    init_state = None
    if cfg.init_from:  # checked before any data is rendered
        init_config, init_state = load_model_files(cfg.init_from)
        if init_config != shape:
            raise ValueError(
                f"init_from: {cfg.init_from} was built with {init_config}, this run asks for "
                f"{shape}; pass matching --dim/--heads/--layers/--size/--stitch-layer"
            )
    gen = torch.Generator().manual_seed(cfg.seed)
    out = Path(cfg.out)
    train = load_clips("train", cfg.n_train, cfg.frames, cfg.size, cfg.data_dir)
    evals = {
        "val": load_clips("val", cfg.n_val, cfg.frames, cfg.size, cfg.data_dir),
        "heldout_shapes": load_clips(
            "heldout_shapes", cfg.n_heldout, cfg.frames, cfg.size, cfg.data_dir
        ),
        "heldout_photo": load_clips(
            "heldout_photo", cfg.n_heldout, cfg.frames, cfg.size, cfg.data_dir
        ),
    }
    autoencoder = load_autoencoder(POLICY_PRETRAINED_DIR / "tiny-autoencoder").eval()
    model = TinyGeo(**shape)
    if init_state is not None:
        model.load_state_dict(init_state)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    n = train["video"].shape[0]
    state_path = out / "latest" / TRAIN_STATE
    parts = {"tinygeo": model, "optimizer": opt, "scheduler": sched, "generator": gen}
    done, wall_before = (
        resume_train_state(state_path, asdict(cfg), parts) if cfg.resume else (0, 0.0)
    )
    start = time.perf_counter()
    metrics: dict[str, Any] = {}
    with RunLogger(out / "logs", resume_after=done) as logger:
        bar = tqdm(
            range(done + 1, cfg.steps + 1), desc="pretrain tinygeo", initial=done, total=cfg.steps
        )
        for step in bar:
            model.train()
            idx = torch.randint(n, (cfg.batch,), generator=gen)
            frames = temporal_jitter(cfg.frames, cfg.clip_frames, gen)
            video = augment(train["video"][idx][:, frames].float() / 255, gen, autoencoder)
            rel = train["rel_w2c"][idx][:, frames]
            rel = relative_to_first(rel)
            losses = geometry_loss(
                model(video),
                rel,
                train["depth"][idx][:, frames].float(),
                train["static"][idx][:, frames],
                cfg.rotation_weight,
            )
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            row = {k: float(v.detach()) for k, v in losses.items()}
            row.update(grad_norm=float(grad_norm), lr=sched.get_last_lr()[0])
            evaluate = step % cfg.eval_every == 0 or step == cfg.steps
            if evaluate:
                model.eval()
                estimator = TinyGeoEstimator(model)
                for split, clips in evals.items():
                    for key, value in evaluate_geometry(estimator, clips).items():
                        row[f"{split}/{key}"] = value
                model.requires_grad_(True)
                bar.set_postfix(
                    rot=f"{row['val/rot_err_deg']:.2f}", absrel=f"{row['val/depth_abs_rel']:.3f}"
                )
                metrics = {k: v for k, v in row.items() if "/" in k}
            logger.log(step, row)
            if evaluate and step < cfg.steps:
                wall_s = wall_before + time.perf_counter() - start
                save_train_state(state_path, asdict(cfg), step, wall_s, parts)
    wall = wall_before + time.perf_counter() - start
    model.save_pretrained(out)
    shutil.rmtree(out / "latest", ignore_errors=True)  # superseded by the final model
    metrics["params"] = sum(p.numel() for p in model.parameters())
    metrics["steps"] = cfg.steps
    write_manifest(out, cfg, metrics, wall)
    return metrics
