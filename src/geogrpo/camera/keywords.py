"""Camera-keyword parser (World-R1): words like "pans left while dollying forward" -> a trajectory.

Grammar. A description is split into *segments* by ``then`` (and ``after that``, ``followed by``,
``finally``); segments play one after another and share the frames equally. Inside a segment,
``while``, ``and``, ``as``, ``with`` join *motions* that happen together. A motion is a verb with
a direction, optionally with a speed word (``slowly`` x0.5, ``quickly`` x2, ...). Filler words
(``the``, ``camera``, ``it``, ...) are ignored; any other word is an error that lists the
vocabulary, so a typo never silently becomes a static camera.

Each motion is a constant body-frame twist (angular velocity, linear velocity) integrated
exactly over its segment, so simultaneous motions compose the way a real rig moves: an orbit is
"truck left while panning right" about a point ``PIVOT`` units ahead. Magnitudes at normal speed
match the presets in :mod:`geogrpo.camera.presets` (pan 20 deg, tilt 10 deg, dolly 2, ...).
"""

from __future__ import annotations

import math
import re
from itertools import pairwise

import torch
from torch import Tensor

from geogrpo.camera.presets import ARC_DEG, DOLLY, LIFT, PAN_DEG, PIVOT, TILT_DEG
from geogrpo.camera.se3 import c2w_to_w2c, make_pose, skew, so3_exp
from geogrpo.utils.checks import check_int_range, check_positive

ROLL_DEG = 15.0
# verb -> {direction: (angular velocity [3] in rad, linear velocity [3]) at normal speed}.
_PAN = math.radians(PAN_DEG)
_TILT = math.radians(TILT_DEG)
_ARC = math.radians(ARC_DEG)
_ROLL = math.radians(ROLL_DEG)
_MOTIONS: dict[str, dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]] = {
    "pan": {"left": ((0, -_PAN, 0), (0, 0, 0)), "right": ((0, _PAN, 0), (0, 0, 0))},
    "tilt": {"up": ((_TILT, 0, 0), (0, 0, 0)), "down": ((-_TILT, 0, 0), (0, 0, 0))},
    "dolly": {"in": ((0, 0, 0), (0, 0, DOLLY)), "out": ((0, 0, 0), (0, 0, -DOLLY))},
    "truck": {"left": ((0, 0, 0), (-LIFT, 0, 0)), "right": ((0, 0, 0), (LIFT, 0, 0))},
    "pedestal": {"up": ((0, 0, 0), (0, -LIFT, 0)), "down": ((0, 0, 0), (0, LIFT, 0))},
    "orbit": {
        "left": ((0, _ARC, 0), (-_ARC * PIVOT, 0, 0)),
        "right": ((0, -_ARC, 0), (_ARC * PIVOT, 0, 0)),
    },
    "roll": {"left": ((0, 0, -_ROLL), (0, 0, 0)), "right": ((0, 0, _ROLL), (0, 0, 0))},
}
VERBS = {
    "pan": "pan",
    "pans": "pan",
    "panning": "pan",
    "tilt": "tilt",
    "tilts": "tilt",
    "tilting": "tilt",
    "dolly": "dolly",
    "dollies": "dolly",
    "dollying": "dolly",
    "push": "dolly",
    "pushes": "dolly",
    "pushing": "dolly",
    "pull": "dolly",
    "pulls": "dolly",
    "pulling": "dolly",
    "zoom": "dolly",
    "zooms": "dolly",
    "zooming": "dolly",
    "move": "move",
    "moves": "move",
    "moving": "move",
    "track": "move",
    "tracks": "move",
    "tracking": "move",
    "truck": "truck",
    "trucks": "truck",
    "trucking": "truck",
    "pedestal": "pedestal",
    "pedestals": "pedestal",
    "rise": "pedestal",
    "rises": "pedestal",
    "rising": "pedestal",
    "descend": "pedestal",
    "descends": "pedestal",
    "descending": "pedestal",
    "orbit": "orbit",
    "orbits": "orbit",
    "orbiting": "orbit",
    "arc": "orbit",
    "arcs": "orbit",
    "arcing": "orbit",
    "circle": "orbit",
    "circles": "orbit",
    "circling": "orbit",
    "roll": "roll",
    "rolls": "roll",
    "rolling": "roll",
}
DIRECTIONS = {
    "left": "left",
    "leftward": "left",
    "leftwards": "left",
    "right": "right",
    "rightward": "right",
    "rightwards": "right",
    "up": "up",
    "upward": "up",
    "upwards": "up",
    "down": "down",
    "downward": "down",
    "downwards": "down",
    "in": "in",
    "forward": "in",
    "forwards": "in",
    "closer": "in",
    "out": "out",
    "back": "out",
    "backward": "out",
    "backwards": "out",
    "away": "out",
}
# Verbs that imply a direction when none is given.
_DEFAULT_DIRECTION = {
    "push": "in",
    "pushes": "in",
    "pushing": "in",
    "pull": "out",
    "pulls": "out",
    "pulling": "out",
    "rise": "up",
    "rises": "up",
    "rising": "up",
    "descend": "down",
    "descends": "down",
    "descending": "down",
}
SPEEDS = {
    "slowly": 0.5,
    "slow": 0.5,
    "gently": 0.5,
    "slightly": 0.5,
    "gradually": 0.5,
    "quickly": 2.0,
    "fast": 2.0,
    "rapidly": 2.0,
    "swiftly": 2.0,
}
STATIC = {"static", "still", "stationary", "fixed", "stays", "remains", "holds"}
FILLERS = {
    "the",
    "camera",
    "a",
    "it",
    "then",
    "to",
    "toward",
    "towards",
    "of",
    "shot",
    "view",
    "steadily",
    "smoothly",
    "continuously",
    "is",
    "its",
    "at",
    "speed",
    "normal",
}
_SEQUENCE = re.compile(r"\b(?:then|after that|followed by|finally)\b|[;.]")
_TOGETHER = re.compile(r"\b(?:while|and|as|with)\b|,")


def vocabulary() -> str:
    """The accepted words, for error messages and docs."""
    return (
        f"verbs: {', '.join(sorted(VERBS))}; directions: {', '.join(sorted(DIRECTIONS))}; "
        f"speeds: {', '.join(sorted(SPEEDS))}; static: {', '.join(sorted(STATIC))}; "
        "joiners: then, after that, followed by, finally (in sequence); "
        "while, and, as, with (together)"
    )


def _parse_motion(words: list[str], phrase: str) -> tuple[Tensor, Tensor] | None:
    """One motion phrase -> (angular [3], linear [3]) per segment, or None for static."""
    verb = direction = None
    speed = 1.0
    static = False
    for w in words:
        if w in VERBS:
            if verb is not None:
                raise ValueError(f"text: {phrase!r} has two verbs; join motions with 'while'")
            verb = w
        elif w in DIRECTIONS:
            direction = DIRECTIONS[w]
        elif w in SPEEDS:
            speed *= SPEEDS[w]
        elif w in STATIC:
            static = True
        elif w not in FILLERS:
            raise ValueError(
                f"text: unknown word {w!r} in {phrase!r}; known words are {vocabulary()}"
            )
    if verb is None:
        if static or direction is None:
            return None
        raise ValueError(f"text: {phrase!r} names a direction but no motion; known: {vocabulary()}")
    kind = VERBS[verb]
    direction = direction or _DEFAULT_DIRECTION.get(verb)
    if kind == "move":  # "moves left/up/forward" -> truck, pedestal or dolly
        kind = {"left": "truck", "right": "truck", "up": "pedestal", "down": "pedestal"}.get(
            direction or "", "dolly"
        )
    options = _MOTIONS[kind]
    if direction not in options:
        raise ValueError(
            f"text: {verb!r} takes one of the directions {', '.join(options)}, got "
            f"{direction!r} in {phrase!r}"
        )
    ang, lin = options[direction]
    return torch.tensor(ang, dtype=torch.float64) * speed, torch.tensor(
        lin, dtype=torch.float64
    ) * speed


def parse_camera_motion(text: str) -> list[list[tuple[Tensor, Tensor]]]:
    """Segments of simultaneous motions ``[(angular [3], linear [3]), ...]`` in camera axes."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text: expected a non-empty camera description")
    segments = []
    for seg_text in _SEQUENCE.split(text.lower()):
        motions = []
        for part in _TOGETHER.split(seg_text):
            words = re.findall(r"[a-z]+", part)
            if not words:
                continue
            motion = _parse_motion(words, part.strip())
            if motion is not None:
                motions.append(motion)
        if re.findall(r"[a-z]+", seg_text):
            segments.append(motions)
    if not segments:
        raise ValueError(
            f"text: no camera motion found in {text!r}; known words are {vocabulary()}"
        )
    return segments


def _se3_exp(omega: Tensor, v: Tensor) -> Tensor:
    """``exp`` of a body twist ``(omega [3], v [3])`` -> ``[4, 4]`` (closed form, screw motion)."""
    theta = float(omega.norm())
    w = skew(omega)
    if theta < 1e-9:
        jac = torch.eye(3, dtype=omega.dtype) + 0.5 * w
    else:
        jac = (
            torch.eye(3, dtype=omega.dtype)
            + (1 - math.cos(theta)) / theta**2 * w
            + (theta - math.sin(theta)) / theta**3 * (w @ w)
        )
    return make_pose(so3_exp(omega), jac @ v)


def camera_keywords_to_trajectory(
    text: str, num_frames: int, scale: float = 1.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    """World-to-camera trajectory ``[F, 4, 4]`` from a camera description, starting at identity.

    Frames are shared equally between segments; inside a segment the summed twist is applied at
    a constant rate, so the path is exact (not an Euler approximation) and linear in frame index.
    Translations are multiplied by ``scale``.
    """
    check_int_range("num_frames", num_frames, 2)
    k = check_positive("scale", scale)
    segments = parse_camera_motion(text)
    steps = num_frames - 1
    bounds = [round(i * steps / len(segments)) for i in range(len(segments) + 1)]
    c2w = [torch.eye(4, dtype=torch.float64)]
    for seg, (a, b) in zip(segments, pairwise(bounds), strict=True):
        n = b - a
        if n == 0:
            continue
        omega = sum((m[0] for m in seg), torch.zeros(3, dtype=torch.float64))
        v = sum((m[1] for m in seg), torch.zeros(3, dtype=torch.float64)) * k
        step = _se3_exp(omega / n, v / n)
        for _ in range(n):
            c2w.append(c2w[-1] @ step)
    return c2w_to_w2c(torch.stack(c2w)).to(dtype)


def camera_text_from_prompt(prompt: str) -> str:
    """The sentences of a full video prompt that describe the camera (those naming "camera")."""
    sentences = [s.strip() for s in re.split(r"(?<=[.;!?])\s+", prompt) if s.strip()]
    camera = [s for s in sentences if re.search(r"\bcamera\b", s, flags=re.IGNORECASE)]
    if not camera:
        raise ValueError(
            f"prompt: no sentence mentions the camera in {prompt!r}; add e.g. "
            "'The camera pans left.'"
        )
    return " then ".join(s.rstrip(".;!?") for s in camera)
