"""Video files through PyAV (H.264 in MP4), written atomically; and contact sheets as PNG."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor

from geogrpo.utils.checks import (
    USER_INPUT,
    check_finite,
    check_int_range,
    check_positive,
    check_range,
    check_tensor,
)
from geogrpo.utils.io import atomic_path


def to_uint8(frames: Tensor) -> np.ndarray:
    """``[F, H, W, 3]`` floats in [0, 1] -> uint8 array. 0-255 or [-1, 1] frames are an error
    (clamping them made a white or washed-out video); a tiny overshoot is clamped."""
    check_tensor("frames", frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[:3]) < 1:
        raise ValueError(
            f"frames: expected [F, H, W, 3] floats in [0, 1] with F, H, W >= 1, got "
            f"{tuple(frames.shape)}"
        )
    frames = check_range("frames", frames, 0.0, 1.0)
    check_finite("frames", frames, USER_INPUT)
    return (frames.detach().cpu().float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def write_video(path: str | Path, frames: Tensor, fps: float = 16.0, crf: int = 18) -> Path:
    """Encode ``[F, H, W, 3]`` frames in [0, 1] as H.264 MP4 (odd sizes are padded by one pixel)."""
    check_positive("fps", fps)
    check_int_range("crf", crf, 0, 51)
    data = to_uint8(frames)
    pad_h, pad_w = data.shape[1] % 2, data.shape[2] % 2
    if pad_h or pad_w:
        data = np.pad(data, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = data.shape[2], data.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in data:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return Path(path)


def read_video(path: str | Path) -> Tensor:
    """Decode a video file to ``[F, H, W, 3]`` float32 in [0, 1]."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"path: no video file at {p}")
    try:
        with av.open(str(p)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as err:
        raise ValueError(f"path: {p} is not a readable video ({err})") from err
    if not frames:
        raise ValueError(f"path: {p} contains no video frames")
    return torch.from_numpy(np.stack(frames)).float() / 255.0


def frames_to_model(frames: Tensor) -> Tensor:
    """Frames ``[B, F, H, W, 3]`` in [0, 1] -> the models' ``[B, 3, F, H, W]`` in [-1, 1]."""
    if frames.ndim != 5 or frames.shape[-1] != 3 or min(frames.shape) < 1:
        raise ValueError(
            f"frames: expected [B, F, H, W, 3] in [0, 1], none of them 0, got {tuple(frames.shape)}"
        )
    frames = check_range("frames", frames, 0.0, 1.0)
    return frames.float().permute(0, 4, 1, 2, 3) * 2 - 1


def model_to_frames(video: Tensor) -> Tensor:
    """``[B, 3, F, H, W]`` in [-1, 1] -> frames ``[B, F, H, W, 3]`` in [0, 1], clamped."""
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"video: expected [B, 3, F, H, W] in [-1, 1], got {tuple(video.shape)}")
    return ((video.float().permute(0, 2, 3, 4, 1) + 1) / 2).clamp(0, 1)


def resize_frames(frames: Tensor, height: int, mode: str = "area") -> Tensor:
    """Frames ``[F, H, W, C]`` -> ``[F, height, round(height W / H), C]`` (aspect kept); ``area``
    for images, ``nearest`` for depth and masks (no blending across edges)."""
    h, w = frames.shape[1:3]
    size = (height, round(height * w / h))
    out = torch.nn.functional.interpolate(frames.permute(0, 3, 1, 2), size=size, mode=mode)
    return out.permute(0, 2, 3, 1)
