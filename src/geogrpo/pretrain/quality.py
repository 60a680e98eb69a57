"""``geogrpo pretrain quality``: the stand-in quality scorer, trained to rank clean frames above
the same frames degraded the ways generated video is (blur, noise, colour, autoencoder)."""

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
from geogrpo.perception.quality import TinyQualityScorer
from geogrpo.pretrain.common import gaussian_blur, load_clips, write_manifest
from geogrpo.pretrain.config import QualityPretrainConfig
from geogrpo.train.checkpoint import TRAIN_STATE, resume_train_state, save_train_state
from geogrpo.train.logging import RunLogger
from geogrpo.world.datasets import check_training_split


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
    state_path = out / "latest" / TRAIN_STATE
    parts = {"quality": model, "optimizer": opt, "scheduler": sched, "generator": gen}
    done, wall_before = (
        resume_train_state(state_path, asdict(cfg), parts) if cfg.resume else (0, 0.0)
    )
    start = time.perf_counter()
    with RunLogger(out / "logs", resume_after=done) as logger:
        steps = range(done + 1, cfg.steps + 1)
        for step in tqdm(steps, desc="pretrain quality", initial=done, total=cfg.steps):
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
            if step % cfg.save_every == 0 and step < cfg.steps:
                wall_s = wall_before + time.perf_counter() - start
                save_train_state(state_path, asdict(cfg), step, wall_s, parts)
    wall = wall_before + time.perf_counter() - start
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
    shutil.rmtree(out / "latest", ignore_errors=True)  # superseded by the final model
    metrics["params"] = sum(p.numel() for p in model.parameters())
    write_manifest(out, cfg, metrics, wall)
    return metrics
