"""The held-out conditions of the evaluation suites: which world items each suite evaluates, with
a stable id per condition, rendered once and cached under ``<data_dir>/eval``.

* ``camera_v2v`` (Geo-Align): scenes of a held-out split x the ten presets (+ a user's paths),
  the source clip exactly as the pair data set builds it, the true target along each path.
* ``extreme_view`` (DEVIS-GRPO): the same sources with large orbits (60 and 90 degrees either
  way about the point 6 units ahead) and bullet-time orbits (the target's clock frozen at the
  middle frame while the camera orbits 90 degrees: a view no training pair shows).
* ``world_consistency`` and ``t2v_camera`` (VGGRPO, World-R1): held-out captions with camera
  words, the true clip rendered along the path the words describe.

Ids are ``<split>/<scene index>/<path name>`` (v2v) or ``<split>/<index>`` (t2v): a comparison
of two evaluations pairs samples by id.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from geogrpo.camera.presets import PRESETS, preset_trajectory

EXTREME_ORBITS_DEG = (-90.0, -60.0, 60.0, 90.0)
BULLET_TIME_DEG = (-90.0, 90.0)


def condition_id(split: str, index: int, path: str | None = None) -> str:
    return f"{split}/{index:04d}" + (f"/{path}" if path else "")


def file_stem(cid: str) -> str:
    """A condition id as a file name (``val/0003/pan_left`` -> ``val__0003__pan_left``)."""
    return cid.replace("/", "__")


def _path_digest(relative: Tensor) -> str:
    return hashlib.sha256(relative.double().contiguous().numpy().tobytes()).hexdigest()[:12]


def v2v_paths(
    suite: str,
    frames: int,
    user_paths: dict[str, Tensor] | None = None,
    only: tuple[str, ...] = (),
) -> dict:
    """``{name: (relative w2c [F, 4, 4], frozen_time)}`` a v2v suite evaluates per scene (the
    ones named in ``only``, when given)."""
    paths = _all_v2v_paths(suite, frames, user_paths)
    unknown = [name for name in only if name not in paths]
    if unknown:
        raise ValueError(
            f"--paths: {unknown} are not paths of {suite}; choose from {', '.join(paths)}"
        )
    return {name: p for name, p in paths.items() if not only or name in only}


def _all_v2v_paths(suite: str, frames: int, user_paths: dict[str, Tensor] | None) -> dict:
    from geogrpo.world.paths import orbit_path

    if suite == "camera_v2v":
        paths = {name: (preset_trajectory(name, frames), False) for name in PRESETS}
        for name, rel in (user_paths or {}).items():
            paths[name] = (rel, False)
        return paths
    if suite == "extreme_view":
        paths = {f"orbit_{d:+.0f}deg": (orbit_path(frames, d), False) for d in EXTREME_ORBITS_DEG}
        for d in BULLET_TIME_DEG:
            paths[f"bullet_time_{d:+.0f}deg"] = (orbit_path(frames, d), True)
        return paths
    raise ValueError(f"suite: {suite!r} has no v2v paths")


def v2v_items(
    suite: str,
    split: str,
    scenes: int,
    data: Any,  # the recipe's DataConfig: data_dir, frames, size, seed, dynamic_fraction
    user_paths: dict[str, Tensor] | None = None,
    only: tuple[str, ...] = (),
) -> list[tuple[str, dict[str, Any]]]:
    """``[(id, pair item)]``: scenes ``0 .. scenes - 1`` of ``split`` x the suite's paths."""
    from geogrpo.world.datasets import MultiViewPairs

    pairs = MultiViewPairs(
        split, scenes, data.frames, data.size, data.seed, data.dynamic_fraction, width=data.width
    )
    wide = f"_w{data.width}" if data.width and data.width != data.size else ""  # square: as before
    settings = f"f{data.frames}_s{data.size}{wide}_seed{data.seed}_dyn{data.dynamic_fraction:g}"
    cache = Path(data.data_dir) / "eval" / f"pairs_{settings}" / split
    out = []
    for index in range(scenes):
        for name, (relative, frozen) in v2v_paths(suite, data.frames, user_paths, only).items():
            if relative.shape[0] != data.frames:
                raise ValueError(
                    f"trajectories: path {name!r} has {relative.shape[0]} frames; the policy "
                    f"makes {data.frames}"
                )
            tag = "bullet" if frozen else "path"
            file = cache / f"{index:06d}_{_safe(name)}_{tag}_{_path_digest(relative)}.safetensors"
            item = _load_or_render(
                file, lambda i=index, r=relative, n=name, f=frozen: _pair(pairs, i, r, n, f)
            )
            out.append((condition_id(split, index, name), item))
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _pair(pairs, index: int, relative: Tensor, name: str, frozen: bool) -> dict[str, Any]:
    item = pairs.pair_along(index, relative, name)
    if frozen:
        from geogrpo.world.render import render
        from geogrpo.world.scene import FPS, Scene

        f = relative.shape[0]
        times = torch.full((f,), (f // 2) / FPS, dtype=torch.float64)  # the middle frame's time
        size = item["target_video"].shape[1:3]
        r = render(Scene.from_json(item["scene"]), item["target_w2c"], *size, times=times)
        item = {**item, "target_video": r.rgb, "target_depth": r.depth, "target_dynamic": r.dynamic}
        item["relative_kind"] = f"{name} (time frozen at frame {f // 2})"
    return item


def t2v_items(split: str, n: int, data: Any) -> list[tuple[str, dict[str, Any]]]:
    """``[(id, clip item)]``: the first ``n`` captions of ``split`` with their true clips (the
    cache training and evaluation share)."""
    from geogrpo.train.conditions import load_items

    return [
        (condition_id(split, i), it) for i, it in enumerate(load_items(data, split, n, "clips"))
    ]


def _load_or_render(file: Path, make) -> dict[str, Any]:
    from geogrpo.world.datasets import load_item, save_item

    if file.exists():
        return load_item(file)
    item = make()
    file.parent.mkdir(parents=True, exist_ok=True)
    save_item(file, item)
    return item
