"""GRPO checkpoints: one folder per step, written whole or not at all.

``checkpoints/step_000010/`` holds ``trainable.safetensors`` (the trainable weights or adapters
by name), ``state.pt`` (optimizer, scheduler, random state, step, evaluation history) and
``config.json`` (the resolved config). It is written into a temporary folder that is renamed
into place, so a checkpoint on disk is always complete; a failure leaves the earlier ones as
they were.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from geogrpo.train.config import flatten

PREFIX = "step_"
FILES = ("trainable.safetensors", "state.pt", "config.json")


def save_checkpoint(
    folder: Path,
    step: int,
    weights: dict[str, Tensor],
    state: dict[str, Any],
    config: dict[str, Any],
    keep_last: int = 2,
) -> Path:
    """Write ``folder/step_<step>`` atomically, then delete all but the ``keep_last`` newest."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_", dir=folder))
    try:
        save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp / FILES[0]))
        torch.save(state, tmp / FILES[1])
        (tmp / FILES[2]).write_text(json.dumps(config, indent=1), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(folder)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders of interrupted saves are skipped)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def find_checkpoint(folder: Path, resume: str) -> Path | None:
    """``"auto"``: the newest checkpoint in ``folder`` (None when there is none); else a path."""
    if resume == "auto":
        found = list_checkpoints(folder)
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume: no checkpoint folder {path}")
    return path


def load_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """``(weights, state, config)``; a missing, truncated or corrupt file is named."""
    for name in FILES:
        if not (path / name).is_file():
            raise ValueError(f"{path / name}: missing; the checkpoint is incomplete")
    try:
        weights = load_file(str(path / FILES[0]))
    except Exception as err:
        raise ValueError(f"{path / FILES[0]}: not a readable safetensors file ({err})") from None
    try:
        state = torch.load(path / FILES[1], weights_only=False)
    except Exception as err:
        raise ValueError(f"{path / FILES[1]}: corrupt or truncated ({err})") from None
    try:
        config = json.loads((path / FILES[2]).read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path / FILES[2]}: not valid JSON ({err})") from None
    return weights, state, config


def check_same_settings(
    saved: dict[str, Any], current: dict[str, Any], free: tuple[str, ...], path: Path
) -> None:
    """Refuse to resume with changed settings, naming them (``free`` prefixes may change)."""
    a, b = flatten(saved), flatten(current)
    changed = sorted(
        k
        for k in set(a) | set(b)
        if a.get(k) != b.get(k) and not any(k == f or k.startswith(f) for f in free)
    )
    if changed:
        listed = ", ".join(f"{k} ({a.get(k)!r} -> {b.get(k)!r})" for k in changed)
        raise ValueError(
            f"--resume: {path} was trained with other settings: {listed}; resume with the same "
            "settings or start a new run in another folder"
        )
