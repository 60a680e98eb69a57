"""What every pretraining shares: the world's clips as tensors, resumable train state, and the
``manifest.json`` that records how a checkpoint was made."""

from __future__ import annotations

import hashlib
import platform
import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.camera.se3 import relative_to_first
from geogrpo.utils.io import atomic_path, atomic_write_json
from geogrpo.world.datasets import MultiViewPairs, TextToVideoClips


def load_videos(
    kind: str, split: str, n: int, data_dir: str | Path, key: str, frames: int = 17, size: int = 96
) -> Tensor:
    """``n`` clips as ``uint8 [n, 3, F, H, W]`` from (or into) the dataset cache ``data_dir``."""
    cls = TextToVideoClips if kind == "t2v" else MultiViewPairs
    ds = cls(split, n, frames, size, cache_dir=Path(data_dir) / split)
    items = (ds[i][key] for i in tqdm(range(n), desc=f"load {split} {key}", leave=False))
    return torch.stack([(v * 255).round().to(torch.uint8).permute(3, 0, 1, 2) for v in items])


def to_signed(video_u8: Tensor) -> Tensor:
    return video_u8.float() / 127.5 - 1.0


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


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def invocation() -> str:
    """The command line that is running, as ``geogrpo ...`` when started through the CLI."""
    if Path(sys.argv[0]).name == "geogrpo":
        return " ".join(shlex.quote(a) for a in ["geogrpo", *sys.argv[1:]])
    return " ".join(shlex.quote(a) for a in sys.argv)


def weight_digests(out: Path) -> dict[str, str]:
    """sha256 of every ``*.safetensors`` under ``out``, by relative path."""
    return {str(p.relative_to(out)): file_sha256(p) for p in sorted(out.rglob("*.safetensors"))}


def write_manifest(
    out: Path,
    config: Any,
    metrics: dict[str, Any],
    wall_s: float,
    init_from_manifest: dict[str, Any] | None = None,
) -> Path:
    """Record how a checkpoint was made, next to it; sha256 covers every weight file. A run that
    continued from saved weights embeds their manifest, so the whole chain can be replayed."""
    manifest = {
        "command": invocation(),
        "config": asdict(config),
        "seed": config.seed,
        "data": f"procedural world: train split items 0-{config.n_train - 1}, dataset seed 0; "
        f"val split items 0-{config.n_val - 1} for metrics",
        "wall_time_s": round(wall_s, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "metrics": metrics,
        "sha256": weight_digests(out),
    }
    if init_from_manifest is not None:
        manifest["init_from_manifest"] = init_from_manifest
    return atomic_write_json(out / "manifest.json", manifest)


TRAIN_STATE = "train_state.pt"


# Settings that may change between an interrupted run and its resumption: they change where and
# how fast it runs, or how often it is saved, not what it computes.
_RESUME_FREE = ("resume", "workers", "device", "eval_every")


def _resumable(cfg: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if k not in _RESUME_FREE}


def save_train_state(
    path: Path,
    cfg: Any,
    step: int,
    wall_s: float,
    modules: dict[str, torch.nn.Module],
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    gen: torch.Generator,
) -> None:
    """Everything a run needs to continue after ``step`` exactly, in one atomic file (so the
    weights and the optimizer state always belong to the same step)."""
    state = {
        "step": step,
        "wall_s": wall_s,
        "config": _resumable(cfg),
        "modules": {name: m.state_dict() for name, m in modules.items()},
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "generator": gen.get_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def resume_train_state(
    path: Path,
    cfg: Any,
    modules: dict[str, torch.nn.Module],
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    gen: torch.Generator,
) -> tuple[int, float]:
    """Restore what :func:`save_train_state` wrote, after checking it was written under the
    same settings; returns ``(step, wall_s)`` of the saved point."""
    if not path.is_file():
        raise FileNotFoundError(
            f"resume: no {path}; a run saves it at each evaluation (every --eval-every steps), "
            "so this one stopped before its first, or finished; start it without --resume"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved, now = state["config"], _resumable(cfg)
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    if changed:
        raise ValueError(
            f"resume: {path} was written with other settings ({', '.join(changed)}: "
            f"{[saved.get(k) for k in changed]} there, {[now.get(k) for k in changed]} now); "
            f"only {', '.join(_RESUME_FREE)} may change on resume"
        )
    for name, module in modules.items():
        module.load_state_dict(state["modules"][name])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"])
    return state["step"], state["wall_s"]
