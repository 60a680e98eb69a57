"""Input checks shared by the pure-function layers.

Every check raises ``ValueError`` whose message starts with the argument's name, says what was
wrong and what was expected, so a bad call fails at the entry of the function that received it
instead of as a broadcasting error three layers down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def check_tensor(name: str, value: object) -> Tensor:
    """Reject anything that is not a tensor."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


# What to check when a NaN turns up: a computed tensor's producer, or the caller's own input.
COMPUTED = "check the model output or the reward that produced it"
USER_INPUT = "the input itself is bad: fix or drop it before calling"


def check_finite(name: str, value: Tensor, hint: str = COMPUTED) -> Tensor:
    """Reject NaN and infinity, saying how many entries are bad and where the first is;
    ``hint`` says whose fault it is (:data:`COMPUTED` or :data:`USER_INPUT`)."""
    check_tensor(name, value)
    if value.is_floating_point() or value.is_complex():
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            first = tuple(torch.nonzero(bad)[0].tolist())
            raise ValueError(
                f"{name}: {int(bad.sum())} of {value.numel()} entries are NaN or infinite "
                f"(the first at index {first}); {hint}"
            )
    return value


# A video may overshoot its range by this much (a decoder's or a resize's rounding); such values
# are clamped, anything further out is an error.
RANGE_TOLERANCE = 1e-3


def check_range(name: str, video: Tensor, low: float, high: float) -> Tensor:
    """Require a float tensor in ``[low, high]`` (``[0, 1]`` frames or ``[-1, 1]`` model
    videos); returns it clamped when it overshoots by at most :data:`RANGE_TOLERANCE` (the
    documented repair). NaN and infinity are left to the finiteness checks (rewards mask those
    samples). One ``aminmax`` over the tensor; a second, finite-only one when that sees NaN."""
    check_tensor(name, video)
    convert = "x.float() / 255" if low == 0 else "x.float() / 127.5 - 1"
    if not video.is_floating_point():
        raise ValueError(
            f"{name}: dtype {video.dtype}; expected floats in [{low:g}, {high:g}] (convert "
            f"uint8 pixels with {convert})"
        )
    if video.numel() == 0:
        return video
    lo, hi = (float(x) for x in torch.aminmax(video.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = video.detach()[torch.isfinite(video.detach())]
        if finite.numel() == 0:
            return video
        lo, hi = (float(x) for x in torch.aminmax(finite))
    if lo >= low and hi <= high:
        return video
    if lo >= low - RANGE_TOLERANCE and hi <= high + RANGE_TOLERANCE:
        return video.clamp(low, high)
    if hi > 2 * high + 1:
        seen = f"this looks like 0-255 pixels: use {convert}"
    elif low == 0 and lo >= -1 - RANGE_TOLERANCE:
        seen = "this looks like a [-1, 1] model video: use (x + 1) / 2"
    else:
        seen = f"rescale it into [{low:g}, {high:g}]"
    raise ValueError(
        f"{name}: values span [{lo:.4g}, {hi:.4g}], expected [{low:g}, {high:g}]; {seen}"
    )


def check_prompts(name: str, prompts: object) -> list[str]:
    """A list of prompts: a single string is one prompt (never split into characters); any
    other element, or an empty list, is an error."""
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, Sequence):
        raise ValueError(f"{name}: expected a list of strings, got {type(prompts).__name__}")
    if len(prompts) == 0:
        raise ValueError(f"{name}: got an empty list; give at least one prompt")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"{name}: entry {i} is a {type(p).__name__} ({p!r}), not a string")
    return list(prompts)


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
