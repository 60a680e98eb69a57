"""PSNR and SSIM of videos against references, as evaluations and benchmarks report them.

Independent of ``rewards``: a reward measures what training needs (visible pixels only, values
clamped into a score), and a change there must not move the numbers a report compares across
runs. These are the plain definitions, SSIM by scikit-image.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity
from torch import Tensor

from geogrpo.utils.checks import check_finite, check_ndim, check_positive, check_same_shape

# PSNR of identical videos: 10 log10(range^2 / floor) dB (120 dB at range 1) rather than
# infinity, so that a mean over clips stays finite
MSE_FLOOR = 1e-12
SSIM_WINDOW = 7  # structural_similarity's default window (pixels a side)


def psnr(a: Tensor, b: Tensor, data_range: float = 1.0) -> float:
    """PSNR in dB, ``10 log10(data_range^2 / MSE)``, of two videos ``[F, H, W, 3]`` with values
    in ``[0, data_range]``; the MSE is over all frames and pixels."""
    _check_videos(a, b, "[F, H, W, 3]", data_range)
    return float(_psnr(a[None], b[None], data_range)[0])


def psnr_per_sample(a: Tensor, b: Tensor, data_range: float = 1.0) -> Tensor:
    """``[B, F, H, W, 3]`` pairs -> ``[B]`` float64: :func:`psnr` of each pair."""
    _check_videos(a, b, "[B, F, H, W, 3]", data_range)
    return _psnr(a, b, data_range)


def ssim(a: Tensor, b: Tensor) -> float:
    """SSIM of two videos ``[F, H, W, 3]`` in [0, 1]: the mean over frames of each frame's SSIM
    (scikit-image, 7x7 uniform window, the three channels averaged)."""
    _check_videos(a, b, "[F, H, W, 3]", 1.0)
    return float(_ssim(a[None], b[None])[0])


def ssim_per_sample(a: Tensor, b: Tensor) -> Tensor:
    """``[B, F, H, W, 3]`` pairs in [0, 1] -> ``[B]`` float64: :func:`ssim` of each pair."""
    _check_videos(a, b, "[B, F, H, W, 3]", 1.0)
    return _ssim(a, b)


def _psnr(a: Tensor, b: Tensor, data_range: float) -> Tensor:
    mse = (a.detach().double() - b.detach().double()).square().flatten(1).mean(1)  # [B]
    return 10 * torch.log10(data_range**2 / mse.clamp_min(MSE_FLOOR))


def _ssim(a: Tensor, b: Tensor) -> Tensor:
    height, width = a.shape[-3:-1]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"a: frames of {height}x{width} are smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} "
            "window; compare frames of at least that size"
        )
    # float32 frames on the CPU: scikit-image computes in the images' float type
    a_np, b_np = a.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()
    scores = [
        np.mean(
            [
                structural_similarity(x, y, channel_axis=-1, data_range=1.0)
                for x, y in zip(video_a, video_b, strict=True)
            ]
        )
        for video_a, video_b in zip(a_np, b_np, strict=True)
    ]
    return torch.tensor(scores, dtype=torch.float64)


def _check_videos(a: Tensor, b: Tensor, layout: str, data_range: float) -> None:
    """Same shape ``layout`` (last axis RGB), finite, inside ``[0, data_range]``."""
    check_positive("data_range", data_range)
    for name, video in (("a", a), ("b", b)):
        check_ndim(name, video, layout.count(",") + 1, layout)
        if video.shape[-1] != 3:
            raise ValueError(
                f"{name}: expected shape {layout} (channels last), got {tuple(video.shape)}; "
                "permute [.., 3, F, H, W] videos to channels last first"
            )
        check_finite(name, video)
    check_same_shape("a", a, "b", b)
    for name, video in (("a", a), ("b", b)):
        low, high = float(video.min()), float(video.max())
        if low < 0 or high > data_range:
            raise ValueError(
                f"{name}: values span [{low:.4g}, {high:.4g}], outside [0, {data_range:g}]; "
                f"map videos into [0, {data_range:g}] first (from [-1, 1]: (x + 1) / 2)"
            )
