"""PSNR and SSIM of videos against references, as evaluations and benchmarks report them, over
whole frames or over a mask such as the region visible in the source video (Nocc).

Independent of ``rewards``: a reward measures what training needs (visible pixels only, values
clamped into a score), and a change there must not move the numbers a report compares across
runs. These are the plain definitions, SSIM by scikit-image. Cameras: OpenCV axes, world-to-camera
``w2c`` ``[F, 4, 4]``, pixel intrinsics ``[3, 3]`` (see :mod:`geogrpo.camera`).
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity
from torch import Tensor

from geogrpo.camera.se3 import check_intrinsics, check_pose, invert_pose
from geogrpo.geometry.warp import splat_points
from geogrpo.utils.checks import (
    check_finite,
    check_int_range,
    check_ndim,
    check_positive,
    check_same_shape,
    check_tensor,
)

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


def visible_from_source_mask(
    source_depth: Tensor,  # [F, H, W] z-depth; 0, negative or non-finite = no surface (sky)
    source_w2c: Tensor,  # [F, 4, 4]
    target_w2c: Tensor,  # [F, 4, 4]
    intrinsics: Tensor,  # [3, 3], shared by both cameras
    supersample: int = 2,
) -> Tensor:  # [F, H, W] bool
    """Target pixels that a surface of the same source frame lands on: the region a
    re-rendering at ``target_w2c`` can be scored on against the truth (Nocc); the rest is
    occluded or new content, which the source cannot determine.

    Each source pixel's true depth is forward-warped, z-buffered (nearest surface wins), as
    ``supersample x supersample`` sub-pixel samples at the pixel's depth, so that a surface
    magnified up to ``supersample`` times by the view change leaves no cracks. Source pixels
    without a finite positive depth land nowhere.
    """
    check_tensor("source_depth", source_depth)
    check_ndim("source_depth", source_depth, 3, "[F, H, W]")
    frames, height, width = source_depth.shape
    for name, w2c in (("source_w2c", source_w2c), ("target_w2c", target_w2c)):
        check_pose(name, w2c)
        if w2c.shape != (frames, 4, 4):
            raise ValueError(
                f"{name}: expected one camera per depth frame, shape {(frames, 4, 4)}, "
                f"got {tuple(w2c.shape)}"
            )
    check_intrinsics("intrinsics", intrinsics)
    check_ndim("intrinsics", intrinsics, 2, "[3, 3]")
    check_int_range("supersample", supersample, 1, 8)
    k = intrinsics.double()
    offsets = (torch.arange(supersample, dtype=torch.float64) + 0.5) / supersample  # [s]
    u = (torch.arange(width, dtype=torch.float64)[:, None] + offsets).flatten()  # [W s]
    v = (torch.arange(height, dtype=torch.float64)[:, None] + offsets).flatten()  # [H s]
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    rays = torch.stack([uu, vv, torch.ones_like(uu)], dim=-1) @ torch.linalg.inv(k).T  # [Hs, Ws, 3]
    depth = source_depth.double()
    depth = depth.repeat_interleave(supersample, -1).repeat_interleave(supersample, -2)
    valid = torch.isfinite(depth) & (depth > 0)  # [F, Hs, Ws]
    c2w = invert_pose(source_w2c.double())
    masks = []
    for f in range(frames):
        cam = rays[valid[f]] * depth[f][valid[f]][:, None]  # [N, 3] in source camera f
        world = cam @ c2w[f, :3, :3].T + c2w[f, :3, 3]
        out = splat_points(
            world[None],
            torch.ones(1, len(world), 1, dtype=torch.float64),
            k[None],
            target_w2c[f : f + 1].double(),
            height,
            width,
        )
        masks.append(out.visible[0])
    return torch.stack(masks)


def masked_psnr(
    a: Tensor,  # [B, F, H, W, 3]
    b: Tensor,  # [B, F, H, W, 3]
    mask: Tensor,  # [B, F, H, W] bool
    data_range: float = 1.0,
) -> Tensor:  # [B] float64
    """PSNR of each pair over the masked pixels only (the MSE pools every masked pixel of every
    frame, three channels each); NaN where a sample's mask is empty."""
    _check_videos(a, b, "[B, F, H, W, 3]", data_range)
    _check_mask(mask, a)
    sq = (a.detach().double() - b.detach().double()).square().sum(-1)  # [B, F, H, W]
    count = mask.flatten(1).sum(1)  # [B]
    mse = (sq * mask).flatten(1).sum(1) / (3 * count)
    psnr_db = 10 * torch.log10(data_range**2 / mse.clamp_min(MSE_FLOOR))
    return torch.where(count > 0, psnr_db, torch.full_like(psnr_db, torch.nan))


def masked_ssim(
    a: Tensor,  # [B, F, H, W, 3] in [0, 1]
    b: Tensor,  # [B, F, H, W, 3] in [0, 1]
    mask: Tensor,  # [B, F, H, W] bool
) -> Tensor:  # [B] float64
    """SSIM of each pair over the masked pixels: the mean of scikit-image's full SSIM map (the
    three channels' maps averaged) over the masked pixels of every frame.

    Like :func:`ssim`, pixels within ``SSIM_WINDOW // 2`` of the border are left out (their
    window reaches into padding; scikit-image's own mean drops them), so an all-true mask gives
    :func:`ssim_per_sample`. NaN where a sample's mask selects no pixel away from the border.
    """
    _check_videos(a, b, "[B, F, H, W, 3]", 1.0)
    _check_mask(mask, a)
    _check_ssim_size(a)
    pad = (SSIM_WINDOW - 1) // 2
    inner = mask.clone()
    inner[..., :pad, :] = False
    inner[..., -pad:, :] = False
    inner[..., :, :pad] = False
    inner[..., :, -pad:] = False
    # float32 frames on the CPU, as in _ssim; each map is [H, W, 3], averaged over channels
    a_np, b_np = a.detach().float().cpu().numpy(), b.detach().float().cpu().numpy()
    maps = np.stack(
        [
            [
                structural_similarity(x, y, channel_axis=-1, data_range=1.0, full=True)[1].mean(-1)
                for x, y in zip(video_a, video_b, strict=True)
            ]
            for video_a, video_b in zip(a_np, b_np, strict=True)
        ]
    )  # [B, F, H, W]
    maps = torch.from_numpy(maps).double()
    count = inner.flatten(1).sum(1)
    mean = (maps * inner).flatten(1).sum(1) / count.clamp_min(1)
    return torch.where(count > 0, mean, torch.full_like(mean, torch.nan))


def _psnr(a: Tensor, b: Tensor, data_range: float) -> Tensor:
    mse = (a.detach().double() - b.detach().double()).square().flatten(1).mean(1)  # [B]
    return 10 * torch.log10(data_range**2 / mse.clamp_min(MSE_FLOOR))


def _check_ssim_size(a: Tensor) -> None:
    height, width = a.shape[-3:-1]
    if min(height, width) < SSIM_WINDOW:
        raise ValueError(
            f"a: frames of {height}x{width} are smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} "
            "window; compare frames of at least that size"
        )


def _ssim(a: Tensor, b: Tensor) -> Tensor:
    _check_ssim_size(a)
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
        _check_layout(name, video, layout)
    check_same_shape("a", a, "b", b)
    for name, video in (("a", a), ("b", b)):
        _check_range(name, video, data_range)


def check_video(name: str, video: Tensor, layout: str, data_range: float = 1.0) -> Tensor:
    """Require one video of shape ``layout`` (e.g. ``"[B, F, H, W, 3]"``), finite, with values
    in ``[0, data_range]``."""
    check_positive("data_range", data_range)
    _check_layout(name, video, layout)
    _check_range(name, video, data_range)
    return video


def _check_layout(name: str, video: Tensor, layout: str) -> None:
    check_ndim(name, video, layout.count(",") + 1, layout)
    if video.shape[-1] != 3:
        raise ValueError(
            f"{name}: expected shape {layout} (channels last), got {tuple(video.shape)}; "
            "permute [.., 3, F, H, W] videos to channels last first"
        )
    check_finite(name, video)


def _check_range(name: str, video: Tensor, data_range: float) -> None:
    low, high = float(video.min()), float(video.max())
    if low < 0 or high > data_range:
        raise ValueError(
            f"{name}: values span [{low:.4g}, {high:.4g}], outside [0, {data_range:g}]; "
            f"map videos into [0, {data_range:g}] first (from [-1, 1]: (x + 1) / 2)"
        )


def _check_mask(mask: Tensor, video: Tensor) -> None:
    check_tensor("mask", mask)
    if mask.dtype != torch.bool or mask.shape != video.shape[:-1]:
        raise ValueError(
            f"mask: expected a bool mask of shape {tuple(video.shape[:-1])} (the videos without "
            f"their channel axis), got {mask.dtype} {tuple(mask.shape)}"
        )
