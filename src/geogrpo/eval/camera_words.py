"""Does a text-to-video clip move the way its caption's camera words say? Measured on the image.

The dominant image motion of a clip (left / right / up / down / expand / contract) comes from
DIS optical flow summed over consecutive frames. Flow from the first straight to the last frame
fails on the world's fast paths (content leaves the view): on the first 64 val captions it gave
13 of the 37 single-motion renders a label against their own camera word, the summed flow none.
The agreement of a generated clip with the true render of its caption is the ground-truth
camera metric of the t2v recipes; it uses no reward model.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch
from torch import Tensor

from geogrpo.utils.video import to_uint8

MOTIONS = ("left", "right", "up", "down", "expand", "contract")


def motion_scores(frames: Tensor) -> Tensor:
    """``[F, H, W, 3]`` in [0, 1] -> ``[6]`` summed image motion per direction of
    :data:`MOTIONS` (pixels; content moving left has a positive "left" score)."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in to_uint8(frames)]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    h, w = gray[0].shape
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    rx, ry = xs - w / 2, ys - h / 2
    norm = np.sqrt(rx**2 + ry**2) + 1e-6
    u = v = radial = 0.0
    for a, b in itertools.pairwise(gray):
        flow = dis.calc(a, b, None)
        u += float(flow[..., 0].mean())
        v += float(flow[..., 1].mean())
        radial += float(np.mean((flow[..., 0] * rx + flow[..., 1] * ry) / norm))
    return torch.tensor([-u, u, -v, v, radial, -radial], dtype=torch.float64)


def dominant_motion(frames: Tensor) -> str:
    """The largest of :func:`motion_scores`, by name."""
    return MOTIONS[int(motion_scores(frames).argmax())]


def camera_word_agreement(video: Tensor, truth: Tensor) -> Tensor:
    """Per-sample agreement ``[B]`` in [-1, 1] of generated clips ``[B, F, H, W, 3]`` with the
    true renders of their captions: the cosine of their motion vectors (left - right,
    up - down, expand - contract). 1 moves like the truth, 0 unrelated (or static), -1 opposite.
    """
    out = []
    for gen, ref in zip(video, truth, strict=True):
        a, b = motion_scores(gen), motion_scores(ref)
        va = torch.stack([a[0] - a[1], a[2] - a[3], a[4] - a[5]])
        vb = torch.stack([b[0] - b[1], b[2] - b[3], b[4] - b[5]])
        denom = va.norm() * vb.norm()
        out.append(float(va @ vb / denom) if denom > 1e-9 else 0.0)
    return torch.tensor(out)
