"""Train state on disk, so that an interrupted run continues exactly where it stopped.

Pretraining: one file holds everything a run needs after a step: the states of its parts
(modules, optimizers, learning-rate schedules, random generators), the step, the time spent so
far and the settings it ran under. It is written atomically, so the weights and the optimizer
state in it always belong to the same step. Every pretraining keeps one in ``out/latest/``.

GRPO: one folder per step, ``checkpoints/step_000010/`` with ``trainable.safetensors`` (the
trainable weights or adapters by name, whole, loadable without pickle), ``sharded/`` (the
optimizer state through ``torch.distributed.checkpoint``: each rank writes its shard, and a run
on another number of ranks, one included, reads it resharded), ``state.pt`` (scheduler, random
state, step, evaluation history), ``config.json`` (the resolved config) and ``manifest.json``
(the sha256 of ``trainable.safetensors`` and ``state.pt``, checked on resume and on
:func:`load_checkpoint`: a changed or damaged file is named). It is written into a
temporary folder that rank 0 renames into place once every rank has written its part, so a
checkpoint on disk is always complete; a failure leaves the earlier ones as they were.

Both refuse to resume under changed settings and name them (:func:`changed_settings`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from geogrpo.train.distributed import DistributedContext
from geogrpo.utils.integrity import (
    SKIP_HINT,
    cached_sha256,
    load_json_object,
    verification_enabled,
)
from geogrpo.utils.io import atomic_path, file_sha256

TRAIN_STATE = "train_state.pt"
# Settings that may change between an interrupted run and its resumption: they change where and
# how fast it runs, or how often it is saved, not what it computes.
RESUME_FREE = ("resume", "workers", "device", "eval_every", "save_every")


class Stateful(Protocol):
    """What ``state_dict`` / ``load_state_dict`` round-trips: modules, optimizers, schedules."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any], /) -> Any: ...


Part = Stateful | torch.Generator


def save_train_state(
    path: Path, settings: Mapping[str, Any], step: int, wall_s: float, parts: Mapping[str, Part]
) -> None:
    """Write ``parts``' states after ``step`` (``wall_s`` seconds in, under ``settings``) to
    ``path`` in one atomic file."""
    state = {
        "step": step,
        "wall_s": wall_s,
        "settings": dict(settings),
        "parts": {name: _state(part) for name, part in parts.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def resume_train_state(
    path: Path,
    settings: Mapping[str, Any],
    parts: Mapping[str, Part],
    free: Sequence[str] = RESUME_FREE,
) -> tuple[int, float]:
    """Load what :func:`save_train_state` wrote into ``parts``, after checking that it was
    written under the same ``settings`` (only those named in ``free`` may differ); returns the
    ``(step, wall_s)`` of the saved point."""
    if not path.is_file():
        raise FileNotFoundError(
            f"resume: no {path}; a run writes it at each save (every --eval-every or --save-every "
            "steps), so this one stopped before its first, or finished; start it without --resume"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved, now = state["settings"], dict(settings)
    changed = changed_settings(saved, now, free)
    if changed:
        raise ValueError(
            f"resume: {path} was written with other settings ({', '.join(changed)}: "
            f"{[saved.get(k) for k in changed]} there, {[now.get(k) for k in changed]} now); "
            f"only {', '.join(free)} may change on resume"
        )
    missing = sorted(parts.keys() - state["parts"].keys())
    if missing:
        raise ValueError(
            f"resume: {path} holds no state for {', '.join(missing)}; it was written by another "
            "kind of run"
        )
    for name, part in parts.items():
        if isinstance(part, torch.Generator):
            part.set_state(state["parts"][name])
        else:
            part.load_state_dict(state["parts"][name])
    return state["step"], state["wall_s"]


def _state(part: Part) -> Any:
    return part.get_state() if isinstance(part, torch.Generator) else part.state_dict()


def changed_settings(
    saved: Mapping[str, Any], now: Mapping[str, Any], free: Sequence[str]
) -> list[str]:
    """Names of the flat settings that differ; a ``free`` entry ending in ``.`` frees a prefix."""
    return sorted(
        k
        for k in saved.keys() | now.keys()
        if saved.get(k) != now.get(k)
        and not any(k == f or (f.endswith(".") and k.startswith(f)) for f in free)
    )


# -- GRPO checkpoints: a folder per step ----------------------------------------------------------

PREFIX = "step_"
FILES = ("trainable.safetensors", "state.pt", "config.json")
DIGESTED = FILES[:2]  # the files whose sha256 the checkpoint's manifest.json records
MANIFEST = "manifest.json"
SHARDED = "sharded"


def save_checkpoint(
    folder: Path,
    step: int,
    weights: dict[str, Tensor],
    state: dict[str, Any],
    config: dict[str, Any],
    keep_last: int = 2,
    sharded: dict[str, Any] | None = None,
    ctx: DistributedContext | None = None,
) -> Path:
    """Write ``folder/step_<step>`` atomically, then delete all but the ``keep_last`` newest.

    Every rank calls this: each writes its part of ``sharded`` (a ``torch.distributed.checkpoint``
    state dict); rank 0 writes ``weights``, ``state`` and ``config`` and renames the folder into
    place after all ranks are done."""
    ctx = ctx or DistributedContext()
    final = folder / f"{PREFIX}{step:06d}"
    tmp = folder / f".tmp_{final.name}"
    if ctx.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while saving
        tmp.mkdir()
    ctx.barrier()
    try:
        if sharded is not None:
            import torch.distributed.checkpoint as dcp

            with _single_process_is_intended():
                dcp.save(sharded, checkpoint_id=str(tmp / SHARDED), no_dist=not _initialized())
        ctx.barrier()
        if ctx.is_main:
            save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp / FILES[0]))
            torch.save(state, tmp / FILES[1])
            (tmp / FILES[2]).write_text(json.dumps(config, indent=1), encoding="utf-8")
            digests = {name: file_sha256(tmp / name) for name in DIGESTED}
            (tmp / MANIFEST).write_text(json.dumps({"sha256": digests}, indent=1), "utf-8")
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
    except BaseException as err:
        if ctx.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        cause = _os_error(err)
        if cause is not None:
            raise _write_failed(cause, final) from err
        raise
    if ctx.is_main:
        for old in list_checkpoints(folder)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    ctx.barrier()
    return final


class RunStopped(RuntimeError):
    """A run stopped on a fault it must not go past; the message says which, and what to do
    before continuing from the checkpoint on disk with ``--resume auto``."""


WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
}


def _os_error(err: BaseException) -> OSError | None:
    """The file-system error behind a failed save: ``err`` itself, or the first one
    ``torch.distributed.checkpoint`` wrapped in its ``CheckpointException`` (rank -> error)."""
    if isinstance(err, OSError):
        return err
    for failure in getattr(err, "failures", {}).values():
        if isinstance(failure[0], OSError):
            return failure[0]
    return None


def _write_failed(err: OSError, final: Path) -> RunStopped:
    why = WRITE_ERRORS.get(err.errno or 0, err.strerror or type(err).__name__)
    earlier = list_checkpoints(final.parent)
    kept = (
        f"the previous checkpoint {earlier[-1]} is intact"
        if earlier
        else "there is no earlier checkpoint"
    )
    return RunStopped(
        f"checkpoint: could not write {final}: {why} ({err}). The partial folder was removed and "
        f"{kept}; free space in {final.parent} or make it writable, then continue with "
        "--resume auto"
    )


def remove_interrupted(folder: Path) -> list[Path]:
    """Delete the temporary folders of saves a killed run left (never read; the next save of
    that step replaces its own anyway); returns them."""
    left = sorted(folder.glob(f".tmp_{PREFIX}*")) if folder.is_dir() else []
    for path in left:
        shutil.rmtree(path, ignore_errors=True)
    return left


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@contextlib.contextmanager
def _single_process_is_intended() -> Iterator[None]:
    """torch.distributed.checkpoint warns on every call without a process group, even when told
    ``no_dist``; a single-process run is a normal run here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def load_sharded(path: Path, template: dict[str, Any]) -> dict[str, Any]:
    """Fill ``template`` (the state dict of this run's objects, on this run's ranks) from a
    checkpoint's ``sharded/`` folder, whatever number of ranks wrote it."""
    import torch.distributed.checkpoint as dcp

    folder = path / SHARDED
    if not folder.is_dir():
        raise ValueError(f"{folder}: missing; the checkpoint is incomplete")
    try:
        with _single_process_is_intended():
            dcp.load(template, checkpoint_id=str(folder), no_dist=not _initialized())
    except Exception as err:
        raise ValueError(f"{folder}: not a readable sharded checkpoint ({err})") from None
    return template


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


def load_checkpoint(
    path: Path, *, verify: bool | None = None
) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """``(weights, state, config)``; a missing, truncated or corrupt file is named. The weights
    and state must match the sha256 in the checkpoint's ``manifest.json`` (``verify=False``
    skips that). The state is loaded with ``weights_only``: a checkpoint from elsewhere cannot
    run code."""
    for name in FILES:
        if not (path / name).is_file():
            raise ValueError(f"{path / name}: missing; the checkpoint is incomplete")
    if verification_enabled(verify):
        verify_checkpoint(path)
    try:
        weights = load_file(str(path / FILES[0]))
    except Exception as err:
        raise ValueError(f"{path / FILES[0]}: not a readable safetensors file ({err})") from None
    try:
        state = torch.load(path / FILES[1], map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path / FILES[1]}: corrupt or truncated ({err})") from None
    try:
        config = json.loads((path / FILES[2]).read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path / FILES[2]}: not valid JSON ({err})") from None
    return weights, state, config


def verify_checkpoint(path: Path) -> None:
    """Check ``trainable.safetensors`` and ``state.pt`` against the checkpoint's manifest."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        raise ValueError(
            f"{manifest}: missing, so the checkpoint's files cannot be checked (it was written "
            f"before checkpoints recorded their sha256, or copied in part); {SKIP_HINT}"
        )
    table = load_json_object(manifest, "checkpoint manifest").get("sha256")
    if not isinstance(table, dict) or set(table) != set(DIGESTED):
        raise ValueError(f"{manifest}: its 'sha256' table must list {', '.join(DIGESTED)}")
    for name in DIGESTED:
        actual = cached_sha256(path / name)
        if actual != table[name]:
            raise ValueError(
                f"{path / name}: corrupt or truncated: its sha256 {actual[:12]}... differs from "
                f"{str(table[name])[:12]}... recorded in {manifest}; resume from an earlier "
                f"checkpoint (--resume {path.parent}/step_...), or {SKIP_HINT}"
            )


def check_same_settings(
    saved: Mapping[str, Any], now: Mapping[str, Any], free: Sequence[str], path: Path
) -> None:
    """Refuse to resume a GRPO run under changed flat settings, naming each change."""
    changed = changed_settings(saved, now, free)
    if changed:
        listed = ", ".join(f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" for k in changed)
        raise ValueError(
            f"--resume: {path} was trained with other settings: {listed}; resume with the same "
            "settings or start a new run in another folder"
        )
