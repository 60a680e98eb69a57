"""Input checks shared by the pure-function layers.

Every check raises ``ValueError`` whose message starts with the argument's name, says what was
wrong and what was expected, so a bad call fails at the entry of the function that received it
instead of as a broadcasting error three layers down.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_tensor(name: str, value: object) -> Tensor:
    """Reject anything that is not a tensor."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def check_finite(name: str, value: Tensor) -> Tensor:
    """Reject NaN and infinity, reporting how many entries are bad."""
    check_tensor(name, value)
    if value.is_floating_point() or value.is_complex():
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            raise ValueError(
                f"{name}: {int(bad.sum())} of {value.numel()} entries are NaN or infinite; "
                "check the model output or the reward that produced it"
            )
    return value


def check_ndim(name: str, value: Tensor, ndim: int, layout: str) -> Tensor:
    """Require an exact number of dimensions; ``layout`` names them, e.g. ``"[N, G]"``."""
    check_tensor(name, value)
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected shape {layout}, got {tuple(value.shape)}")
    return value


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Require two tensors of identical shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b}: shape {tuple(b.shape)} does not match {name_a} shape {tuple(a.shape)}"
        )


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Require a finite number > 0 (or >= 0)."""
    v = float(value)
    ok = v >= 0 if allow_zero else v > 0
    if not ok or v != v or v in (float("inf"), float("-inf")):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return v


def check_fraction(name: str, value: float) -> float:
    """Require a finite number in [0, 1] (a share, a ratio, a probability)."""
    v = check_positive(name, value, allow_zero=True)
    if v > 1:
        raise ValueError(f"{name}: expected a value in [0, 1], got {value}")
    return v


def check_int_range(name: str, value: int, low: int, high: int | None = None) -> int:
    """Require an integer in ``[low, high]`` (``high`` inclusive; ``None`` means unbounded)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        raise ValueError(f"{name}: expected an integer >= {low}{upper}, got {value}")
    return value


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Require one of a fixed set of names, listing them on failure."""
    if value not in choices:
        raise ValueError(f"{name}: unknown value {value!r}; choose one of {', '.join(choices)}")
    return value


def check_device(name: str, device: str) -> torch.device:
    """A torch device this machine has: a CUDA device asked for without CUDA fails here, before
    any work, instead of deep inside the first ``.to()``."""
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"{name}: {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)"
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}: {device!r} asked for, but torch sees no CUDA device")
    return parsed
