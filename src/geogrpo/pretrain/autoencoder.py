"""``geogrpo pretrain autoencoder``: the embedded frame autoencoder, trained to reconstruct
random crops of the world's frames, then given per-channel latent statistics."""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.eval.metrics import psnr
from geogrpo.models.autoencoder import FrameAutoencoder, frame_reconstruction_loss
from geogrpo.pretrain.common import (
    load_videos,
    to_signed,
    write_manifest,
)
from geogrpo.pretrain.config import AutoencoderPretrainConfig
from geogrpo.train.checkpoint import TRAIN_STATE, resume_train_state, save_train_state
from geogrpo.train.logging import RunLogger
from geogrpo.utils.video import model_to_frames
from geogrpo.world.datasets import check_training_split


def evaluate_autoencoder(model: FrameAutoencoder, videos_u8: Tensor, batch: int = 4) -> float:
    """Mean PSNR (dB) of full clips through ``encode`` -> ``decode`` (clamped), over batches of
    ``batch`` clips, each batch's PSNR that of its mean squared error (as the shipped
    autoencoder's manifest reports it)."""

    def frames(video: Tensor) -> Tensor:  # a batch as one long video [B F, H, W, 3]
        return model_to_frames(video).flatten(0, 1)

    model.eval()
    scores = []
    with torch.no_grad():
        for i in range(0, len(videos_u8), batch):
            x = to_signed(videos_u8[i : i + batch])
            scores.append(psnr(frames(model.decode(model.encode(x))), frames(x)))
    model.train()
    return sum(scores) / len(scores)


def latent_statistics(model: FrameAutoencoder, videos_u8: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of raw (folded) latents, for normalisation."""
    model.latents_mean.zero_()
    model.latents_std.fill_(1.0)
    with torch.no_grad():
        z = torch.cat(
            [model.encode(to_signed(videos_u8[i : i + 8])) for i in range(0, len(videos_u8), 8)]
        )
    dims = (0, 2, 3, 4)
    return z.mean(dim=dims), z.std(dim=dims).clamp_min(1e-4)


def pretrain_autoencoder(cfg: AutoencoderPretrainConfig) -> dict[str, Any]:
    check_training_split("train")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    out = Path(cfg.out)
    train = load_videos("t2v", "train", cfg.n_train, cfg.data_dir, "video", cfg.frames, cfg.size)
    val = load_videos("t2v", "val", cfg.n_val, cfg.data_dir, "video", cfg.frames, cfg.size)
    frames = train.transpose(1, 2).reshape(-1, *train.shape[1:2], *train.shape[3:])  # [N*F,3,H,W]
    model = FrameAutoencoder(cfg.frame_channels, tuple(cfg.widths))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    size = frames.shape[-1]
    state_path = out / "latest" / TRAIN_STATE
    parts = {"autoencoder": model, "optimizer": opt, "scheduler": sched, "generator": gen}
    done, wall_before = (
        resume_train_state(state_path, asdict(cfg), parts) if cfg.resume else (0, 0.0)
    )
    start = time.perf_counter()
    with RunLogger(out / "logs", resume_after=done) as logger:
        bar = tqdm(
            range(done + 1, cfg.steps + 1),
            desc="pretrain autoencoder",
            initial=done,
            total=cfg.steps,
        )
        for step in bar:
            idx = torch.randint(len(frames), (cfg.batch_frames,), generator=gen)
            y0, x0 = torch.randint(size - cfg.crop + 1, (2,), generator=gen).tolist()
            x = to_signed(frames[idx, :, y0 : y0 + cfg.crop, x0 : x0 + cfg.crop])
            z = model.encode_frames(x)
            z = z + cfg.latent_noise * z.detach().std() * torch.randn(z.shape, generator=gen)
            loss = frame_reconstruction_loss(model.decode_frames(z), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            row = {"loss": float(loss.detach()), "lr": sched.get_last_lr()[0]}
            evaluate = step % cfg.eval_every == 0 or step == cfg.steps
            if evaluate:
                row["val_psnr_db"] = evaluate_autoencoder(model, val)
                bar.set_postfix(val_psnr=f"{row['val_psnr_db']:.2f}")
            logger.log(step, row)
            if evaluate and step < cfg.steps:
                wall_s = wall_before + time.perf_counter() - start
                save_train_state(state_path, asdict(cfg), step, wall_s, parts)
        mean, std = latent_statistics(model, train[: cfg.stats_clips])
        model.latents_mean.copy_(mean)
        model.latents_std.copy_(std)
        metrics = {
            "val_psnr_db": evaluate_autoencoder(model, val),
            "train_psnr_db": evaluate_autoencoder(model, train[: cfg.n_val]),
            "params": sum(p.numel() for p in model.parameters()),
            "steps": cfg.steps,
        }
        logger.log(cfg.steps, {"final_val_psnr_db": metrics["val_psnr_db"]})
    wall = wall_before + time.perf_counter() - start
    model.save_pretrained(out)
    shutil.rmtree(out / "latest", ignore_errors=True)  # superseded by the final model
    write_manifest(out, cfg, metrics, wall)
    return metrics
