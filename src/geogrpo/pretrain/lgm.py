"""``geogrpo pretrain lgm``: the Latent Geometry Model, tinygeo read from VAE latents, stitched
to tinygeo in VGGRPO's two stages (feature alignment of the connector, then prediction alignment
of connector and downstream layers against the frozen RGB model)."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.models.autoencoder import load_autoencoder
from geogrpo.models.policy import PRETRAINED_DIR as POLICY_PRETRAINED_DIR
from geogrpo.perception.latent import LatentGeometryEstimator, LatentGeometryModel
from geogrpo.perception.tinygeo import TinyGeo, TinyGeoEstimator
from geogrpo.pretrain.common import load_clips, write_manifest
from geogrpo.pretrain.config import LGMPretrainConfig
from geogrpo.pretrain.tinygeo import geometry_accuracy
from geogrpo.train.checkpoint import TRAIN_STATE, resume_train_state, save_train_state
from geogrpo.train.logging import RunLogger
from geogrpo.world.datasets import check_training_split


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
    # stage: (steps, trained parameters, peak learning rate); both optimizers exist from the
    # start so that one train state holds whichever stage a run stopped in
    stages = {
        "feature": (cfg.feature_steps, list(lgm.connector.parameters()), cfg.lr),
        "prediction": (cfg.prediction_steps, list(lgm.parameters()), cfg.lr / 3),
    }
    optimizers = {k: torch.optim.AdamW(params, lr=lr) for k, (_, params, lr) in stages.items()}
    schedules = {
        k: torch.optim.lr_scheduler.OneCycleLR(
            optimizers[k], lr, total_steps=max(steps, 1), pct_start=0.1
        )
        for k, (steps, _, lr) in stages.items()
    }
    parts = {
        "lgm": lgm,
        **{f"{k}_optimizer": opt for k, opt in optimizers.items()},
        **{f"{k}_scheduler": sched for k, sched in schedules.items()},
        "generator": gen,
    }
    total = cfg.feature_steps + cfg.prediction_steps
    state_path = out / "latest" / TRAIN_STATE
    done, wall_before = (
        resume_train_state(state_path, asdict(cfg), parts) if cfg.resume else (0, 0.0)
    )
    start = time.perf_counter()
    with RunLogger(out / "logs", resume_after=done) as logger:
        offset = 0  # steps of the stages before this one
        for stage, (steps, params, _) in stages.items():
            lgm.geo.requires_grad_(stage == "prediction")
            opt, sched = optimizers[stage], schedules[stage]
            skipped = min(max(done - offset, 0), steps)
            for step in tqdm(
                range(skipped + 1, steps + 1),
                desc=f"lgm {stage} alignment",
                initial=skipped,
                total=steps,
            ):
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
                logger.log(offset + step, {f"{stage}_loss": float(loss.detach())})
                if (offset + step) % cfg.save_every == 0 and offset + step < total:
                    wall_s = wall_before + time.perf_counter() - start
                    save_train_state(state_path, asdict(cfg), offset + step, wall_s, parts)
            offset += steps
    wall = wall_before + time.perf_counter() - start
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
    shutil.rmtree(out / "latest", ignore_errors=True)  # superseded by the final model
    metrics["params_connector"] = sum(p.numel() for p in lgm.connector.parameters())
    write_manifest(out, cfg, metrics, wall)
    return metrics
