"""What every pretraining shares: the world's clips as tensors, and the ``manifest.json`` that
records how a checkpoint was made."""

from __future__ import annotations

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
from geogrpo.utils.integrity import weight_digests
from geogrpo.utils.io import atomic_write_json
from geogrpo.world.datasets import MultiViewPairs, TextToVideoClips


def load_videos(
    kind: str, split: str, n: int, data_dir: str | Path, key: str, frames: int = 17, size: int = 96
) -> Tensor:
    """``n`` clips as ``uint8 [n, 3, F, H, W]`` from (or into) the dataset root ``data_dir``
    (``data_dir/t2v/<split>`` or ``data_dir/pairs/<split>``, as every command lays it out)."""
    cls = TextToVideoClips if kind == "t2v" else MultiViewPairs
    folder = "t2v" if kind == "t2v" else "pairs"
    ds = cls(split, n, frames, size, cache_dir=Path(data_dir) / folder / split)
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


def invocation() -> str:
    """The command line that is running, as ``geogrpo ...`` when started through the CLI."""
    if Path(sys.argv[0]).name == "geogrpo":
        return " ".join(shlex.quote(a) for a in ["geogrpo", *sys.argv[1:]])
    return " ".join(shlex.quote(a) for a in sys.argv)


def shipped_folder(path: str | Path) -> Path | None:
    """The package's shipped-models folder (``models/pretrained`` or ``perception/pretrained``)
    that ``path`` lies in, or None."""
    import geogrpo

    package = Path(geogrpo.__file__).resolve().parent
    target = Path(path).resolve()
    for root in (package / "models" / "pretrained", package / "perception" / "pretrained"):
        if target == root or root in target.parents:
            return root
    return None


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
