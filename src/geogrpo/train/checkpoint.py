"""Train state on disk, so that an interrupted run continues exactly where it stopped.

One file holds everything a run needs after a step: the states of its parts (modules,
optimizers, learning-rate schedules, random generators), the step, the time spent so far and the
settings it ran under. It is written atomically, so the weights and the optimizer state in it
always belong to the same step. Every pretraining keeps one in ``out/latest/``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from geogrpo.utils.io import atomic_path

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
    compared = (saved.keys() | now.keys()) - set(free)
    changed = sorted(k for k in compared if saved.get(k) != now.get(k))
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
