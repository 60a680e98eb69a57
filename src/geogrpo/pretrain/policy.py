"""``geogrpo pretrain policy`` and ``export``: one tiny DiT (+ text encoder) per conditioning,
trained by flow matching on latents of the frozen autoencoder, and its re-save for shipping.

Dataset items are encoded once and cached (:class:`LatentSet`, :func:`cached_latents`); a run
draws its batches, times and noise on the CPU from its seed, so it is the same on every device.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import WanTransformer3DModel
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.models.autoencoder import load_autoencoder
from geogrpo.models.conditioning import (
    Condition,
    Conditioning,
    latent_mask,
    make_conditioning,
    reproject_source,
)
from geogrpo.models.policy import (
    PRETRAINED_DIR,
    SAMPLE_PREDICTION_T_MIN,
    VideoPolicy,
    policy_dir,
    tiny_transformer_config,
)
from geogrpo.models.text import GrammarTextEncoder
from geogrpo.pretrain.common import (
    invocation,
    shipped_folder,
    write_manifest,
)
from geogrpo.pretrain.config import PolicyExportConfig, PolicyPretrainConfig
from geogrpo.train.checkpoint import TRAIN_STATE, resume_train_state, save_train_state
from geogrpo.train.logging import RunLogger
from geogrpo.utils.integrity import load_json_object, weight_digests
from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json, state_dict_sha256
from geogrpo.world.datasets import (
    MultiViewPairs,
    TextToVideoClips,
    build_missing,
    check_training_split,
)

# modules --init-from may add to a saved policy: zero-initialised, so they start as a no-op
ZERO_INITIALISED_ADDITIONS = ("camera_ray_encoder", "camera_attention_out")


_LATENT_FIELDS = ("target", "source", "cameras", "reproj", "reproj_mask")


@dataclass
class LatentSet:
    """Pre-encoded training items for one conditioning (the autoencoder is frozen)."""

    prompts: list[str]
    target: Tensor  # [N, C, F_lat, h, w]
    source: Tensor | None = None  # [N, C, F_lat, h, w] camera_v2v
    cameras: Tensor | None = None  # [N, F, 4, 4] camera_v2v: target relative to source
    reproj: Tensor | None = None  # [N, C, F_lat, h, w] reproj_v2v
    reproj_mask: Tensor | None = None  # [N, 4, F_lat, h, w] reproj_v2v

    @staticmethod
    def concat(sets: list[LatentSet]) -> LatentSet:
        def cat(key: str) -> Tensor | None:
            parts = [getattr(s, key) for s in sets]
            return None if parts[0] is None else torch.cat(parts)

        return LatentSet(
            [p for s in sets for p in s.prompts],
            *(cat(k) for k in _LATENT_FIELDS),
        )

    def head(self, n: int) -> LatentSet:
        """The first ``n`` items."""

        def cut(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[:n]

        return LatentSet(
            self.prompts[:n],
            *(cut(getattr(self, k)) for k in _LATENT_FIELDS),
        )

    def condition(self, idx: Tensor, text: Tensor | None) -> Condition:
        def pick(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[idx]

        return Condition(
            prompts=[self.prompts[i] for i in idx.tolist()],
            text=text,
            cameras=pick(self.cameras),
            source_latents=pick(self.source),
            reproj_latents=pick(self.reproj),
            reproj_mask=pick(self.reproj_mask),
        )

    def save(self, path: Path, key: str) -> None:
        tensors = {k: getattr(self, k) for k in _LATENT_FIELDS if getattr(self, k) is not None}
        meta = {"prompts": json.dumps(self.prompts), "key": key}
        atomic_save_safetensors(path, tensors, metadata=meta)

    @staticmethod
    def load(path: Path, key: str) -> LatentSet | None:
        """The cached set at ``path`` if it was encoded under ``key``, else None."""
        if not path.is_file():
            return None
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("key") != key:
            return None
        tensors = load_file(str(path))
        return LatentSet(json.loads(meta["prompts"]), **tensors)


def cached_latents(
    folder: Path,
    prefix: str,
    suffix: str,
    n: int,
    autoencoder_digest: str,
    encode: Callable[[list[int]], LatentSet],
    before_encoding: Callable[[list[int]], object] | None = None,
) -> LatentSet:
    """Items ``0..n-1`` encoded, cached in ``folder/{prefix}_{n}_{suffix}.safetensors``.

    Dataset items are a pure function of their index and the autoencoder is frozen, so any
    cached set of ``m`` items under the same autoencoder is the first ``m`` of ours: growing the
    data set encodes only the new items. Encoding runs in chunks (raw items do not all fit);
    ``before_encoding`` gets every index about to be encoded first (to render them in parallel).
    """

    def key(m: int) -> str:
        return f"{prefix}_{m}_{suffix}/{autoencoder_digest}"

    held: dict[int, Path] = {}
    for path in folder.glob(f"{prefix}_*_{suffix}.safetensors"):
        m = path.name[len(prefix) + 1 : -len(f"_{suffix}.safetensors")]
        if m.isdigit():
            held[int(m)] = path

    def first_loadable(sizes: list[int]) -> LatentSet | None:
        return next((c for m in sizes if (c := LatentSet.load(held[m], key(m))) is not None), None)

    larger = first_loadable(sorted(m for m in held if m >= n))
    if larger is not None:
        return larger.head(n)
    prefix_set = first_loadable(sorted((m for m in held if m < n), reverse=True))
    chunks = [] if prefix_set is None else [prefix_set]
    start = 0 if prefix_set is None else len(prefix_set.prompts)
    if before_encoding is not None and start < n:
        before_encoding(list(range(start, n)))
    for chunk in tqdm(torch.arange(start, n).split(64), desc=f"encode {prefix}", leave=False):
        chunks.append(encode(chunk.tolist()))
    encoded = LatentSet.concat(chunks)
    encoded.save(folder / f"{prefix}_{n}_{suffix}.safetensors", key(n))
    return encoded


def encode_items(
    conditioning: Conditioning, autoencoder: torch.nn.Module, items: list[dict[str, Any]]
) -> LatentSet:
    """Turn dataset items into latents for ``conditioning`` (batched through the autoencoder)."""

    def enc(videos: list[Tensor]) -> Tensor:
        with torch.no_grad():
            return torch.cat(
                [
                    autoencoder.encode(torch.stack(videos[i : i + 8]) * 2 - 1)
                    for i in range(0, len(videos), 8)
                ]
            )

    def vid(item: dict[str, Any], key: str) -> Tensor:
        return item[key].permute(3, 0, 1, 2).float()  # [F, H, W, 3] -> [3, F, H, W]

    if conditioning.name in ("t2v", "warped_noise_t2v"):
        return LatentSet([it["caption"] for it in items], enc([vid(it, "video") for it in items]))
    prompts = [it["caption"] for it in items]
    target = enc([vid(it, "target_video") for it in items])
    cameras = torch.stack([it["relative_w2c"].float() for it in items])
    if conditioning.name == "camera_v2v":
        source = enc([vid(it, "source_video") for it in items])
        return LatentSet(prompts, target, source=source, cameras=cameras)
    renders, masks = [], []
    for it in items:
        render, holes = reproject_source(
            vid(it, "source_video")[None] * 2 - 1,
            it["source_depth"][None].float(),
            it["source_w2c"][None].float(),
            it["relative_w2c"][None].float(),
            it["intrinsics"][None].float(),
        )
        renders.append((render[0] + 1) / 2)
        masks.append(latent_mask(holes))
    return LatentSet(
        prompts, target, cameras=cameras, reproj=enc(renders), reproj_mask=torch.cat(masks)
    )


def drop_prompts(prompts: list[str], share: float, gen: torch.Generator) -> list[str]:
    """Each prompt replaced by ``""`` with probability ``share`` (no draw when ``share`` is 0,
    so runs without dropout keep their random stream)."""
    if share == 0.0:
        return prompts
    keep = torch.rand(len(prompts), generator=gen) >= share
    return [p if k else "" for p, k in zip(prompts, keep.tolist(), strict=True)]


def training_times(n: int, shift: float, gen: torch.Generator) -> Tensor:
    """``n`` times ``s u / (1 + (s - 1) u)`` of logit-normal ``u`` (median ``s / (1 + s)``): the
    timestep shift of SD3/Wan applied to SD3's training distribution."""
    u = torch.sigmoid(torch.randn(n, generator=gen))
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_loss(
    policy: VideoPolicy,
    x0: Tensor,
    condition: Condition,
    gen: torch.Generator,
    loss: str = "velocity",
    time_shift: float = 1.0,
) -> Tensor:
    """Flow-matching MSE at shifted logit-normal times (SD3): of the velocity ``eps - x0``, or,
    with ``loss="sample"``, of the implied ``x0`` (the same error weighted by ``max(t, t_min)^2``,
    exact where ``t >= t_min``)."""
    t = training_times(x0.shape[0], time_shift, gen).to(x0.device)
    eps = torch.randn(x0.shape, generator=gen).to(x0.device)
    tt = t.view(-1, 1, 1, 1, 1)
    v = policy.velocity((1 - tt) * x0 + tt * eps, t, condition)
    err = (v - (eps - x0)) ** 2
    if loss == "sample":
        err = err * tt.clamp_min(SAMPLE_PREDICTION_T_MIN) ** 2
    return err.mean()


def load_initial_weights(transformer: torch.nn.Module, state: dict[str, Tensor]) -> None:
    """Load ``state`` into ``transformer``; only modules it adds on top (zero-initialised ray
    encoders and camera-attention outputs) may be missing from ``state``, so the start is the
    saved model's exact function."""
    try:
        missing, unexpected = transformer.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches are raised even when not strict
        raise ValueError(
            f"init_from: weights do not fit this model; sizes and conditioning must match the "
            f"saved policy's ({str(err).splitlines()[-1].strip()})"
        ) from err
    extra = [k for k in missing if not any(m in k for m in ZERO_INITIALISED_ADDITIONS)]
    if extra or unexpected:
        raise ValueError(
            f"init_from: weights do not fit this model (missing {extra[:3]}, unexpected "
            f"{unexpected[:3]}); sizes and conditioning must match the saved policy's"
        )


def pretrain_policy(cfg: PolicyPretrainConfig) -> dict[str, Any]:
    check_training_split("train")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    out = Path(cfg.out)
    options = {
        k: True for k, on in (("rays", cfg.camera_rays), ("attention", cfg.camera_attention)) if on
    }
    conditioning = make_conditioning(cfg.conditioning, **options)
    ae_dir = PRETRAINED_DIR / cfg.autoencoder
    autoencoder = load_autoencoder(ae_dir if ae_dir.is_dir() else cfg.autoencoder)
    kind, folder = ("t2v", "t2v") if "t2v" in cfg.conditioning else ("pairs", "pairs")
    cls = TextToVideoClips if kind == "t2v" else MultiViewPairs

    ae_digest = state_dict_sha256(autoencoder)  # keys the cached latents
    family = "t2v" if kind == "t2v" else conditioning.name

    def latents(split: str, n: int) -> LatentSet:
        ds = cls(split, n, cfg.frames, cfg.size, cache_dir=Path(cfg.data_dir) / folder / split)
        return cached_latents(
            Path(cfg.data_dir) / "latents",
            f"{family}_{split}",
            f"{cfg.frames}x{cfg.size}",
            n,
            ae_digest,
            lambda idx: encode_items(conditioning, autoencoder, [ds[i] for i in idx]),
            before_encoding=lambda idx: build_missing(ds, idx, cfg.workers),
        )

    train, val = latents("train", cfg.n_train), latents("val", cfg.n_val)
    text_encoder = GrammarTextEncoder(dim=cfg.text_dim)
    transformer = WanTransformer3DModel(
        **tiny_transformer_config(
            autoencoder.latent_channels,
            conditioning,
            cfg.text_dim,
            cfg.layers,
            cfg.heads,
            cfg.head_dim,
            cfg.ffn_dim,
        )
    )
    conditioning.attach(transformer)
    if cfg.init_from:
        initial = VideoPolicy.from_pretrained(cfg.init_from)
        if initial.conditioning.name != conditioning.name:
            raise ValueError(
                f"init_from: {cfg.init_from} is a {initial.conditioning.name} policy, "
                f"not {conditioning.name}"
            )
        load_initial_weights(transformer, initial.transformer.state_dict())
        text_encoder.load_state_dict(initial.text_encoder.state_dict())
        # read it now: ``out`` may be the folder it lives in
        init_manifest_path = policy_dir(cfg.init_from) / "manifest.json"
        init_manifest = (
            json.loads(init_manifest_path.read_text(encoding="utf-8"))
            if init_manifest_path.is_file()
            else {"note": f"{cfg.init_from} has no manifest.json"}
        )
    else:
        init_manifest = None
    policy = VideoPolicy(
        transformer, autoencoder, text_encoder, conditioning, prediction=cfg.prediction
    ).to(cfg.device)
    text_encoder.requires_grad_(True).train()
    params = [*transformer.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.05)
    state_path = out / "latest" / TRAIN_STATE
    parts = {
        "transformer": transformer,
        "text_encoder": text_encoder,
        "optimizer": opt,
        "scheduler": sched,
        "generator": gen,
    }
    done, wall_before = (
        resume_train_state(state_path, asdict(cfg), parts) if cfg.resume else (0, 0.0)
    )
    val_gen_seed = cfg.seed + 1
    start = time.perf_counter()

    def val_loss() -> float:
        g = torch.Generator().manual_seed(val_gen_seed)  # same times and noise every evaluation
        losses = []
        with torch.no_grad():
            for idx in torch.arange(len(val.prompts)).split(cfg.batch):
                cond = val.condition(idx, text_encoder(val.condition(idx, None).prompts))
                losses.append(
                    float(
                        flow_matching_loss(
                            policy,
                            val.target[idx].to(cfg.device),
                            cond,
                            g,
                            cfg.loss,
                            cfg.time_shift,
                        )
                    )
                )
        return sum(losses) / len(losses)

    with RunLogger(out / "logs", resume_after=done) as logger:
        bar = tqdm(
            range(done + 1, cfg.steps + 1),
            desc=f"pretrain {cfg.conditioning}",
            initial=done,
            total=cfg.steps,
        )
        for step in bar:
            idx = torch.randint(len(train.prompts), (cfg.batch,), generator=gen)
            prompts = drop_prompts(
                [train.prompts[i] for i in idx.tolist()], cfg.prompt_dropout, gen
            )
            cond = train.condition(idx, text_encoder(prompts))
            loss = flow_matching_loss(
                policy, train.target[idx].to(cfg.device), cond, gen, cfg.loss, cfg.time_shift
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            row = {
                "loss": float(loss.detach()),
                "grad_norm": float(grad_norm),
                "lr": sched.get_last_lr()[0],
            }
            evaluate = step % cfg.eval_every == 0 or step == cfg.steps
            if evaluate:
                text_encoder.eval()
                row["val_loss"] = val_loss()
                text_encoder.train()
                bar.set_postfix(val_loss=f"{row['val_loss']:.4f}")
            logger.log(step, row)
            if evaluate and step < cfg.steps:  # a usable policy mid-run, and where to resume
                policy.save_pretrained(out / "latest")
                wall_s = wall_before + time.perf_counter() - start
                save_train_state(state_path, asdict(cfg), step, wall_s, parts)
    wall = wall_before + time.perf_counter() - start
    text_encoder.requires_grad_(False).eval()
    policy.save_pretrained(out)
    shutil.rmtree(out / "latest", ignore_errors=True)  # superseded by the final policy
    metrics = {
        "val_loss": row["val_loss"],
        "transformer_params": sum(p.numel() for p in transformer.parameters()),
        "text_encoder_params": sum(p.numel() for p in text_encoder.parameters()),
        "steps": cfg.steps,
    }
    write_manifest(out, cfg, metrics, wall, init_manifest)
    return metrics


def export_policy(cfg: PolicyExportConfig) -> dict[str, Any]:
    """Re-save the policy at ``source`` with its transformer weights in ``dtype``; the manifest
    keeps the training run's (command, seed, data, wall time, metrics) and embeds it whole, so
    what ships is traceable to the run that made it."""
    source, out = Path(cfg.source), Path(cfg.out)
    shipped = shipped_folder(out)
    if shipped is not None and not cfg.overwrite_shipped:
        raise ValueError(
            f"out: {out} is inside the package's shipped models ({shipped}); export elsewhere "
            "(--out runs/export/NAME), or pass --overwrite-shipped to replace a shipped policy"
        )
    run_manifest_path = source / "manifest.json"
    if not run_manifest_path.is_file():
        raise FileNotFoundError(
            f"source: no manifest.json in {source}; export a folder written by "
            "`geogrpo pretrain policy`"
        )
    run = load_json_object(run_manifest_path, "training run's manifest")
    policy = VideoPolicy.from_pretrained(source)
    start = time.perf_counter()
    policy.save_pretrained(out, dtype=getattr(torch, cfg.dtype))
    manifest = {
        **{k: run[k] for k in ("config", "seed", "data", "wall_time_s", "threads", "metrics")},
        "command": run["command"],
        "export_command": invocation(),
        "export": asdict(cfg),
        "exported_from": run,
        "sha256": weight_digests(out),
    }
    atomic_write_json(out / "manifest.json", manifest)
    return {"out": str(out), "dtype": cfg.dtype, "export_s": round(time.perf_counter() - start, 2)}
