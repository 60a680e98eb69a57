"""``geogrpo pretrain quality``: the stand-in quality scorer, trained to rank clean frames above
the same frames degraded the ways generated video is (blur, noise, colour, autoencoder), and, with
generated negatives (``--policies``), preferences the world's truth labels on real samples:

* a true target frame above a policy's frame of the same condition and frame index;
* of two samples of one condition (any of the policies, so a GRPO-trained policy's drift is
  ranked against the base policy's samples) at one frame index, the one closer to the true
  target (PSNR gap of at least ``rank_margin_db`` and an SSIM gap of the same sign) above the
  other, as HPSv3 learns from human preferences.

Samples are drawn with the training sampler (:func:`geogrpo.eval.reward_fidelity.sample_groups`)
on train-split conditions only, once per policy, and cached in ``out/negatives/`` so that a
resumed or repeated run reuses them.
"""

from __future__ import annotations

import json
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
from geogrpo.utils.io import atomic_path, file_sha256
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
NEGATIVES = "negatives"  # out/negatives/: one cached file of samples per policy


def _load_policy(name: str) -> tuple[Any, dict[str, Any]]:
    """A shipped policy, a GRPO run folder (its newest checkpoint) or a checkpoint folder, and
    where its weights came from (path and sha256)."""
    from geogrpo.train.checkpoint import list_checkpoints
    from geogrpo.train.trainer import is_run_or_checkpoint, load_policy

    path = Path(name)
    if not is_run_or_checkpoint(path):
        return load_policy(name), {"shipped": name}
    found = list_checkpoints(path / "checkpoints")
    folder = found[-1] if found else path
    source = {"checkpoint": str(folder), "sha256": file_sha256(folder / "trainable.safetensors")}
    return load_policy(name), source


def _frame_metrics(video: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame true-target PSNR and SSIM of ``video [G, F, H, W, 3]`` -> two ``[G, F]``."""
    from geogrpo.eval.metrics import psnr_per_sample, ssim_per_sample

    g, f = video.shape[:2]
    a = video.reshape(g * f, 1, *video.shape[2:])
    b = truth[None].expand_as(video).reshape_as(a)
    return psnr_per_sample(a, b).reshape(g, f).float(), ssim_per_sample(a, b).reshape(g, f).float()


def negative_settings(cfg: QualityPretrainConfig, policy: str) -> dict[str, Any]:
    """What a cached file of one policy's samples depends on."""
    return {
        "policy": policy,
        "data_dir": str(cfg.data_dir),
        "gen_data": cfg.gen_data,
        "conditions": cfg.gen_conditions,
        "group": cfg.gen_group,
        "steps": cfg.gen_steps,
        "plan": cfg.gen_plan,
        "noise_level": cfg.gen_noise_level,
        "frames": cfg.frames,
        "size": cfg.size,
        "seed": cfg.seed,
    }


def generated_negatives(cfg: QualityPretrainConfig, out: Path) -> dict[str, Any] | None:
    """Every policy's samples on the first ``gen_conditions`` train-split conditions:
    ``videos`` uint8 ``[N, P * G, F, H, W, 3]`` (policy-major), ``truth`` uint8
    ``[N, F, H, W, 3]``, per-frame ``psnr`` / ``ssim`` ``[N, P * G, F]`` (of the float frames
    against the float truth), ``sources``; None without policies or conditions. Each policy's
    samples are read from ``out/negatives/`` when cached with the same settings."""
    if cfg.gen_conditions == 0:
        return None
    from geogrpo.eval.reward_fidelity import sample_groups
    from geogrpo.eval.suites import parse_plan
    from geogrpo.train.conditions import from_items, load_items
    from geogrpo.train.config import DataConfig

    plan = parse_plan(cfg.gen_plan, cfg.gen_steps, 3)
    data = DataConfig(
        kind=cfg.gen_data, data_dir=cfg.data_dir, frames=cfg.frames, size=cfg.size, workers=1
    )
    items = None
    parts = []
    for index, name in enumerate(cfg.policies):
        settings = negative_settings(cfg, name)
        path = out / NEGATIVES / f"policy_{index}.pt"
        if path.is_file():
            part = torch.load(path, weights_only=True)
            if json.loads(part["settings"]) != settings:
                raise ValueError(
                    f"{path}: cached with other settings ({part['settings']}) than this run "
                    f"({json.dumps(settings)}); delete out/{NEGATIVES}/ or use another --out"
                )
            parts.append(part)
            continue
        if items is None:
            items = load_items(data, "train", cfg.gen_conditions)  # never val or held out
        policy, source = _load_policy(name)
        policy.eval().requires_grad_(False)
        conditioning = policy.conditioning.name
        if conditioning not in ("camera_v2v", "reproj_v2v"):
            raise ValueError(
                f"policies: {name} is a {conditioning} policy; generated negatives need a v2v "
                "policy (its conditions have a true target video)"
            )
        cond = from_items(items, conditioning)
        videos, _ = sample_groups(
            policy,
            cond,
            cfg.gen_group,
            plan,
            cfg.gen_noise_level,
            "flow_grpo",
            seed=cfg.seed,
            keep_latents=False,
            progress=True,
        )
        metrics = [_frame_metrics(v, cond.truth[n]) for n, v in enumerate(videos)]
        part = {
            "settings": json.dumps(settings),
            "source": json.dumps(source),
            "videos": torch.stack([_to_u8(v) for v in videos]),
            "truth": _to_u8(cond.truth),
            "psnr": torch.stack([m[0] for m in metrics]),
            "ssim": torch.stack([m[1] for m in metrics]),
        }
        with atomic_path(path) as tmp:
            torch.save(part, tmp)
        parts.append(part)
        del policy
    if any(not torch.equal(p["truth"], parts[0]["truth"]) for p in parts):
        raise ValueError(f"out/{NEGATIVES}: the cached policies were sampled on other conditions")
    return {
        "videos": torch.cat([p["videos"] for p in parts], dim=1),
        "truth": parts[0]["truth"],
        "psnr": torch.cat([p["psnr"] for p in parts], dim=1),
        "ssim": torch.cat([p["ssim"] for p in parts], dim=1),
        "sources": [json.loads(p["source"]) for p in parts],
    }


def _to_u8(frames: Tensor) -> Tensor:
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8)


def ranking_pairs(psnr: Tensor, ssim: Tensor, margin_db: float, margin_ssim: float) -> Tensor:
    """``[K, 4]`` (condition, better sample, worse sample, frame) of the samples ``[N, S, F]``
    of each condition whose per-frame PSNR differs by more than ``margin_db`` with an SSIM
    difference of the same sign larger than ``margin_ssim``."""
    dp = psnr[:, :, None] - psnr[:, None]  # [N, S, S, F]: better - worse
    ds = ssim[:, :, None] - ssim[:, None]
    return ((dp > margin_db) & (ds > margin_ssim)).nonzero()


def _draw_pairs(pairs: Tensor, group: int, n: int, gen: torch.Generator) -> Tensor:
    """``n`` ranking pairs, half of them (rounded down) within one policy's group and the rest
    across policies, each half drawn uniformly (all from one kind when the other has none).
    GRPO sees only the order within a group; the pairs across policies carry a GRPO run's
    drift, and without the split they outnumber the within-group pairs about 5 to 1."""
    within = pairs[:, 1] // group == pairs[:, 2] // group
    kinds = [pairs[within], pairs[~within]]
    if not len(kinds[0]) or not len(kinds[1]):
        return pairs[torch.randint(len(pairs), (n,), generator=gen)]
    counts = (n // 2, n - n // 2)
    return torch.cat(
        [k[torch.randint(len(k), (c,), generator=gen)] for k, c in zip(kinds, counts, strict=True)]
    )


def _bradley_terry(model: TinyQualityScorer, good: Tensor, bad: Tensor) -> tuple[Tensor, Tensor]:
    """Bradley-Terry loss of ``good`` above ``bad`` and the logits (for the L2 term)."""
    scores = model(torch.cat([good, bad]))
    s_good, s_bad = scores.split([good.shape[0], bad.shape[0]])
    return F.softplus(s_bad - s_good).mean(), scores


def pretrain_quality(cfg: QualityPretrainConfig) -> dict[str, Any]:
    check_training_split("train")
    out = Path(cfg.out)
    init_state, init_manifest = None, None
    if cfg.init_from:  # checked before anything is sampled or rendered
        from geogrpo.perception.tinygeo import load_model_files, resolve_pretrained

        init_config, init_state = load_model_files(cfg.init_from)
        if init_config.get("width") != cfg.width:
            raise ValueError(
                f"init_from: {cfg.init_from} was built with width {init_config.get('width')}, "
                f"this run asks for --width {cfg.width}"
            )
        manifest_path = resolve_pretrained(cfg.init_from) / "manifest.json"
        init_manifest = (
            json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest_path.is_file()
            else {"note": f"{cfg.init_from} has no manifest.json"}
        )
    negatives = generated_negatives(cfg, out)
    pairs = None
    if negatives is not None:
        pairs = ranking_pairs(
            negatives["psnr"], negatives["ssim"], cfg.rank_margin_db, cfg.rank_margin_ssim
        )
    # seeded after the negatives: building a policy draws from the global generator, and a
    # resumed run reads them from the cache
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ae = load_autoencoder(POLICY_PRETRAINED_DIR / "tiny-autoencoder").eval()
    frames = load_clips("train", cfg.n_train, cfg.frames, cfg.size, cfg.data_dir)["video"]
    frames = frames.flatten(0, 1)  # [N F, H, W, 3] uint8
    val = load_clips("val", cfg.n_val, cfg.frames, cfg.size, cfg.data_dir)["video"][:, ::4]
    val = val.flatten(0, 1).float() / 255
    model = TinyQualityScorer(cfg.width)
    if init_state is not None:
        model.load_state_dict(init_state)
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
            synthetic, logits = _bradley_terry(model, clean, bad)
            terms = {"synthetic": synthetic}
            all_logits = [logits]
            if negatives is not None and cfg.gen_batch:
                n, s, f = negatives["psnr"].shape
                pick = torch.randint(n * s * f, (cfg.gen_batch,), generator=gen)
                ci, si, fi = pick // (s * f), pick // f % s, pick % f
                true = negatives["truth"][ci, fi].float() / 255
                fake = negatives["videos"][ci, si, fi].float() / 255
                terms["truth_above_generated"], logits = _bradley_terry(model, true, fake)
                all_logits.append(logits)
            if pairs is not None and len(pairs) and cfg.rank_batch:
                k = _draw_pairs(pairs, cfg.gen_group, cfg.rank_batch, gen)
                ci, fi = k[:, 0], k[:, 3]
                better = negatives["videos"][ci, k[:, 1], fi].float() / 255
                worse = negatives["videos"][ci, k[:, 2], fi].float() / 255
                terms["ranking"], logits = _bradley_terry(model, better, worse)
                all_logits.append(logits)
            loss = sum(terms.values()) + 1e-2 * torch.cat(all_logits).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            logger.log(
                step,
                {"loss": float(loss.detach())}
                | {f"loss/{k}": float(v.detach()) for k, v in terms.items()},
            )
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
    if negatives is not None:
        metrics.update(_negative_metrics(model, negatives, pairs))
    model.save_pretrained(out)
    shutil.rmtree(out / "latest", ignore_errors=True)  # superseded by the final model
    metrics["params"] = sum(p.numel() for p in model.parameters())
    write_manifest(out, cfg, metrics, wall, init_manifest)
    return metrics


def _negative_metrics(
    model: TinyQualityScorer, negatives: dict[str, Any], pairs: Tensor | None
) -> dict[str, Any]:
    """How the trained scorer ranks its (train-split) generated negatives: share of true frames
    above generated ones, per policy; share of ranking pairs in the truth's order; and where
    each policy's samples came from. Held-out measurements are the reward-fidelity suite's."""
    videos, truth = negatives["videos"], negatives["truth"]
    n, s, f = videos.shape[:3]
    scores = torch.stack(
        [model.score(videos[i].flatten(0, 1).float() / 255).reshape(s, f) for i in range(n)]
    )  # [N, S, F]
    truth_scores = torch.stack([model.score(truth[i].float() / 255) for i in range(n)])  # [N, F]
    metrics: dict[str, Any] = {}
    per_policy = s // len(negatives["sources"])
    for p in range(len(negatives["sources"])):
        part = scores[:, p * per_policy : (p + 1) * per_policy]
        metrics[f"train_negatives/policy_{p}/mean_score"] = float(part.mean())
        metrics[f"train_negatives/policy_{p}/truth_ranked_higher"] = float(
            (truth_scores[:, None] > part).float().mean()
        )
    if pairs is not None and len(pairs):
        good = scores[pairs[:, 0], pairs[:, 1], pairs[:, 3]]
        bad = scores[pairs[:, 0], pairs[:, 2], pairs[:, 3]]
        metrics["train_negatives/ranking_pairs"] = len(pairs)
        metrics["train_negatives/ranking_pairs_in_truth_order"] = float((good > bad).float().mean())
    metrics["train_negatives/truth_mean_score"] = float(truth_scores.mean())
    metrics["negatives_sources"] = negatives["sources"]
    return metrics
