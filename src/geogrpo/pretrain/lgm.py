"""``geogrpo pretrain lgm``: the Latent Geometry Model, tinygeo read from VAE latents, stitched
to tinygeo in VGGRPO's two stages (feature alignment of the connector, then prediction alignment
of connector and downstream layers against the frozen RGB model)."""

from __future__ import annotations

import time
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
