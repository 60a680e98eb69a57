"""Supervised pretraining of tinygeo on the procedural world (``geogrpo pretrain tinygeo``).

Clips are both views of the world's multi-view pairs (train split), so camera paths cover
walking, game paths, the ten presets and extreme orbits. Augmentations mimic generated video:
blur, noise, colour shift, a round trip through the shipped autoencoder with latent noise (the
softness of decoded samples), and temporal jitter (random stride, offset, repeated frames, with
the labels following the frames).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
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
from geogrpo.train.logging import RunLogger
from geogrpo.train.pretrain import (
    TRAIN_STATE,
    resume_train_state,
    save_train_state,
    write_manifest,
)
from geogrpo.utils.checks import check_int_range, check_positive
from geogrpo.world.datasets import MultiViewPairs, check_training_split


@dataclass
class TinyGeoPretrainConfig:
    """Settings of ``geogrpo pretrain tinygeo``."""

    out: str = "runs/pretrain/tinygeo"
    data_dir: str = "data"
    n_train: int = 160  # multi-view pairs; each gives two clips
    n_val: int = 16
    n_heldout: int = 8
    steps: int = 1500
    batch: int = 8
    clip_frames: int = 9  # frames per training clip (temporal jitter picks them)
    lr: float = 1e-3
    dim: int = 128
    heads: int = 4
    layers: int = 4
    stitch_layer: int = 1
    size: int = 96
    frames: int = 17
    seed: int = 0
    eval_every: int = 500
    rotation_weight: float = 1.0
    init_from: str = ""  # a shipped model's name or a saved folder to continue from
    resume: bool = False  # continue from out/latest/train_state.pt exactly (pretrain policy's)

    def __post_init__(self) -> None:
        check_int_range("steps", self.steps, 1)
        check_int_range("clip_frames", self.clip_frames, 2, self.frames)
        check_positive("lr", self.lr)


def load_clips(split: str, n: int, frames: int, size: int, data_dir: str) -> dict[str, Tensor]:
    """Both views of ``n`` pairs as clips: video uint8, depth, static mask, relative cameras."""
    ds = MultiViewPairs(split, n, frames, size, cache_dir=Path(data_dir) / "pairs" / split)
    videos, depths, statics, rels = [], [], [], []
    for i in tqdm(range(n), desc=f"clips {split}", leave=False):
        item = ds[i]
        for view in ("source", "target"):
            depth = item[f"{view}_depth"]
            videos.append((item[f"{view}_video"] * 255).round().to(torch.uint8))
            depths.append(depth.half())
            statics.append((depth > 0) & ~item[f"{view}_dynamic"])
            w2c = item[f"{view}_w2c"]
            rels.append(relative_to_first(w2c))
    return {
        "video": torch.stack(videos),  # [N, F, H, W, 3] uint8
        "depth": torch.stack(depths),  # [N, F, H, W] float16, 0 at sky
        "static": torch.stack(statics),  # [N, F, H, W] bool
        "rel_w2c": torch.stack(rels),  # [N, F, 4, 4] float64
    }


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


def gaussian_blur(x: Tensor, sigma: float, radius: int) -> Tensor:
    """Separable Gaussian blur of ``[N, 3, H, W]`` with replicate padding."""
    r = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (r / sigma) ** 2)
    k = k / k.sum()
    n = 2 * radius + 1
    x = F.conv2d(
        F.pad(x, (radius, radius, 0, 0), mode="replicate"),
        k.view(1, 1, 1, n).expand(3, 1, 1, n),
        groups=3,
    )
    return F.conv2d(
        F.pad(x, (0, 0, radius, radius), mode="replicate"),
        k.view(1, 1, n, 1).expand(3, 1, n, 1),
        groups=3,
    )


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
    trained = {"tinygeo": model}
    done, wall_before = (
        resume_train_state(state_path, cfg, trained, opt, sched, gen) if cfg.resume else (0, 0.0)
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
                save_train_state(state_path, cfg, step, wall_s, trained, opt, sched, gen)
    wall = wall_before + time.perf_counter() - start
    model.save_pretrained(out)
    shutil.rmtree(out / "latest", ignore_errors=True)  # superseded by the final model
    metrics["params"] = sum(p.numel() for p in model.parameters())
    metrics["steps"] = cfg.steps
    write_manifest(out, cfg, metrics, wall)
    return metrics


@dataclass
class LGMPretrainConfig:
    """Settings of ``geogrpo pretrain lgm`` (VGGRPO's two-stage stitching against tinygeo)."""

    out: str = "runs/pretrain/tinygeo-lgm"
    geo: str = "tinygeo"  # the RGB geometry model to stitch to (name or folder)
    autoencoder: str = "tiny-autoencoder"
    data_dir: str = "data"
    n_train: int = 160
    n_val: int = 16
    feature_steps: int = 300  # stage 1: connector only, feature alignment
    prediction_steps: int = 300  # stage 2: connector + downstream layers, prediction alignment
    batch: int = 4
    lr: float = 1e-3
    hidden: int = 256
    frames: int = 17
    size: int = 96
    seed: int = 0

    def __post_init__(self) -> None:
        check_int_range("feature_steps", self.feature_steps, 0)
        check_int_range("prediction_steps", self.prediction_steps, 0)
        check_positive("lr", self.lr)


def prediction_alignment_loss(student: dict[str, Tensor], teacher: dict[str, Tensor]) -> Tensor:
    """VGGRPO eq. 9 on tinygeo's modalities: rotation (Frobenius), translation (smooth L1),
    log-depth (L1) and confidence (BCE to the teacher's probabilities), equal weights."""
    rot = (student["rotation"] - teacher["rotation"]).square().sum((-1, -2)).mean()
    trans = F.smooth_l1_loss(student["translation"], teacher["translation"], beta=0.1)
    depth = (student["log_depth"] - teacher["log_depth"]).abs().mean()
    conf = F.binary_cross_entropy_with_logits(
        student["confidence_logit"], torch.sigmoid(teacher["confidence_logit"])
    )
    return rot + trans + depth + conf


def encode_clips(autoencoder: Any, video_u8: Tensor, batch: int = 8) -> Tensor:
    """``[N, F, H, W, 3]`` uint8 -> normalised latents ``[N, C, k + 1, h, w]``."""
    with torch.no_grad():
        return torch.cat(
            [
                autoencoder.encode(chunk.float().div(255).mul(2).sub(1).permute(0, 4, 1, 2, 3))
                for chunk in video_u8.split(batch)
            ]
        )


def pretrain_lgm(cfg: LGMPretrainConfig) -> dict[str, Any]:
    from geogrpo.perception.latent import LatentGeometryEstimator, LatentGeometryModel

    check_training_split("train")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    out = Path(cfg.out)
    ae_dir = POLICY_PRETRAINED_DIR / cfg.autoencoder
    autoencoder = load_autoencoder(ae_dir if ae_dir.is_dir() else cfg.autoencoder).eval()
    teacher = TinyGeo.from_pretrained(cfg.geo).requires_grad_(False)
    train = load_clips("train", cfg.n_train, cfg.frames, cfg.size, cfg.data_dir)
    val = load_clips("val", cfg.n_val, cfg.frames, cfg.size, cfg.data_dir)
    latents = encode_clips(autoencoder, train["video"])
    val_latents = encode_clips(autoencoder, val["video"])
    lgm = LatentGeometryModel(teacher, latents.shape[1], cfg.hidden)
    n = latents.shape[0]
    start = time.perf_counter()
    with RunLogger(out / "logs") as logger:
        for stage, steps in (("feature", cfg.feature_steps), ("prediction", cfg.prediction_steps)):
            params = list(lgm.connector.parameters() if stage == "feature" else lgm.parameters())
            lgm.geo.requires_grad_(stage == "prediction")
            opt = torch.optim.AdamW(params, lr=cfg.lr if stage == "feature" else cfg.lr / 3)
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, opt.param_groups[0]["lr"], total_steps=max(steps, 1), pct_start=0.1
            )
            for step in tqdm(range(1, steps + 1), desc=f"lgm {stage} alignment"):
                idx = torch.randint(n, (cfg.batch,), generator=gen)
                video = train["video"][idx].float() / 255
                with torch.no_grad():
                    target_features = teacher.features(video)
                    target = teacher(video) if stage == "prediction" else None
                if stage == "feature":
                    loss = (lgm.connector(latents[idx]) - target_features).square().mean()
                else:
                    loss = prediction_alignment_loss(lgm(latents[idx]), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                offset = 0 if stage == "feature" else cfg.feature_steps
                logger.log(offset + step, {f"{stage}_loss": float(loss.detach())})
    wall = time.perf_counter() - start
    lgm.eval()
    latent_est = LatentGeometryEstimator(lgm)
    rgb_est = TinyGeoEstimator(teacher)
    metrics: dict[str, Any] = {}
    for name, est in (
        ("lgm", latent_est.estimate_latents(val_latents)),
        ("rgb", rgb_est.estimate(val["video"].float() / 255)),
    ):
        metrics.update({f"val/{name}/{k}": v for k, v in geometry_accuracy(est, val).items()})
    lgm.save_pretrained(out)
    metrics["params_connector"] = sum(p.numel() for p in lgm.connector.parameters())
    write_manifest(out, cfg, metrics, wall)
    return metrics


@dataclass
class QualityPretrainConfig:
    """Settings of ``geogrpo pretrain quality`` (the stand-in quality scorer)."""

    out: str = "runs/pretrain/tiny-quality"
    data_dir: str = "data"
    n_train: int = 160
    steps: int = 600
    batch: int = 32
    lr: float = 2e-3
    width: int = 32
    frames: int = 17
    size: int = 96
    seed: int = 0
    n_val: int = 16

    def __post_init__(self) -> None:
        check_int_range("steps", self.steps, 1)
        check_positive("lr", self.lr)


def degrade(frames: Tensor, kind: str, strength: float, gen: torch.Generator, ae: Any) -> Tensor:
    """One degradation of frames ``[N, H, W, 3]`` at ``strength`` in (0, 1]."""
    x = frames.permute(0, 3, 1, 2)
    if kind == "blur":
        x = gaussian_blur(x, 0.5 + 2.5 * strength, 5)
    elif kind == "noise":
        x = x + 0.15 * strength * torch.randn(x.shape, generator=gen)
    elif kind == "colour":
        gain = 1 + strength * (0.8 * torch.rand(x.shape[0], 3, 1, 1, generator=gen) - 0.4)
        x = x * gain + strength * (0.3 * torch.rand(x.shape[0], 3, 1, 1, generator=gen) - 0.15)
    elif kind == "generated":
        with torch.no_grad():
            z = ae.encode_frames(x * 2 - 1)
            z = z + (0.3 + 1.2 * strength) * z.std() * torch.randn(z.shape, generator=gen)
            x = (ae.decode_frames(z).clamp(-1, 1) + 1) / 2
    else:
        raise ValueError(f"kind: unknown degradation {kind!r}")
    return x.clamp(0, 1).permute(0, 2, 3, 1)


DEGRADATIONS = ("blur", "noise", "colour", "generated")


def pretrain_quality(cfg: QualityPretrainConfig) -> dict[str, Any]:
    from geogrpo.perception.quality import TinyQualityScorer

    check_training_split("train")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    out = Path(cfg.out)
    ae = load_autoencoder(POLICY_PRETRAINED_DIR / "tiny-autoencoder").eval()
    frames = load_clips("train", cfg.n_train, cfg.frames, cfg.size, cfg.data_dir)["video"]
    frames = frames.flatten(0, 1)  # [N F, H, W, 3] uint8
    val = load_clips("val", cfg.n_val, cfg.frames, cfg.size, cfg.data_dir)["video"][:, ::4]
    val = val.flatten(0, 1).float() / 255
    model = TinyQualityScorer(cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    start = time.perf_counter()
    with RunLogger(out / "logs") as logger:
        for step in tqdm(range(1, cfg.steps + 1), desc="pretrain quality"):
            # every step sees every degradation: with one kind per step the scorer settled on
            # "high frequency is bad" (noise and noisy generations outvoted blur), ranking
            # blurred frames above clean ones
            per_kind = max(1, cfg.batch // len(DEGRADATIONS))
            idx = torch.randint(frames.shape[0], (per_kind * len(DEGRADATIONS),), generator=gen)
            clean = frames[idx].float() / 255
            strength = 0.1 + 0.9 * float(torch.rand(1, generator=gen))
            bad = torch.cat(
                [
                    degrade(part, kind, strength, gen, ae)
                    for part, kind in zip(clean.split(per_kind), DEGRADATIONS, strict=True)
                ]
            )
            # Bradley-Terry: P(clean preferred) = sigmoid(s_clean - s_bad); the small L2 on the
            # logits keeps them from drifting apart without bound (scores would saturate at 0/1)
            s_clean, s_bad = model(clean), model(bad)
            loss = F.softplus(s_bad - s_clean).mean() + 1e-2 * (s_clean**2 + s_bad**2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            logger.log(step, {"loss": float(loss.detach())})
    wall = time.perf_counter() - start
    model.eval()
    metrics: dict[str, Any] = {}
    clean_scores = model.score(val)
    for kind in DEGRADATIONS:
        for strength in (0.2, 1.0):
            bad = model.score(degrade(val, kind, strength, torch.Generator().manual_seed(1), ae))
            metrics[f"val/{kind}@{strength}/mean_score"] = float(bad.mean())
            metrics[f"val/{kind}@{strength}/clean_ranked_higher"] = float(
                (clean_scores > bad).float().mean()
            )
    metrics["val/clean_mean_score"] = float(clean_scores.mean())
    model.save_pretrained(out)
    metrics["params"] = sum(p.numel() for p in model.parameters())
    write_manifest(out, cfg, metrics, wall)
    return metrics
