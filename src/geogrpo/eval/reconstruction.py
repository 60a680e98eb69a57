"""Reconstruction of held-out views: World-R1's 3D check as an evaluation metric.

Splats are fitted to the even frames of a clip (their depth from an estimator, their cameras the
path the clip should follow) and rendered at the odd frames' cameras. ``recon_psnr`` compares the
renders with the clip's own odd frames (the paper's re-render PSNR: is the clip one consistent
3D scene along its path?); ``recon_psnr_truth`` with the world's true render at those cameras
(is it the *right* scene?). A static clip reconstructs well but not truthfully.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from geogrpo.camera.se3 import scale_intrinsics
from geogrpo.geometry.splat_fit import fit_splats, render_views, splats_from_depth
from geogrpo.utils.checks import check_int_range
from geogrpo.utils.video import resize_frames


def _psnr(a: Tensor, b: Tensor) -> float:
    mse = float((a.double() - b.double()).square().mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def heldout_view_psnr(
    frames: Tensor,  # [F, H, W, 3] in [0, 1], the generated clip
    depth: Tensor,  # [F, H, W] estimated depth of the clip, <= 0 where unknown
    w2c: Tensor,  # [F, 4, 4] the cameras the clip should have been taken from
    intrinsics: Tensor,  # [3, 3] pixels at H x W
    truth: Tensor | None = None,  # [F, H, W, 3] the true render along w2c
    size: int = 48,
    max_splats: int = 800,
    steps: int = 30,
    seed: int = 0,
) -> tuple[float, float]:
    """``(PSNR of odd-frame renders vs the clip, vs the truth)`` in dB at ``size`` pixels high
    (NaN for the truth without ``truth``, and for both when no pixel has depth)."""
    f, h, w = frames.shape[:3]
    check_int_range("frames", f, 2)
    fit_idx, held_idx = torch.arange(0, f, 2), torch.arange(1, f, 2)
    small = resize_frames(frames.float(), size, "area")
    sh, sw = small.shape[1:3]
    k = scale_intrinsics(intrinsics.double(), sw / w, sh / h).float().expand(f, 3, 3)
    d_small = resize_frames(depth[..., None].float(), size, "nearest")[..., 0]
    pose = w2c.float()
    gen = torch.Generator().manual_seed(seed)
    try:
        init = splats_from_depth(
            small[fit_idx], d_small[fit_idx], pose[fit_idx], k[fit_idx], max_splats, None, gen
        )
    except ValueError:  # no pixel with depth: nothing to reconstruct
        return math.nan, math.nan
    fit = fit_splats(init, small[fit_idx], pose[fit_idx], k[fit_idx], steps)
    with torch.no_grad():
        renders, _ = render_views(fit.splats, fit.background, pose[held_idx], k[held_idx], sh, sw)
    recon = _psnr(renders, small[held_idx])
    if truth is None:
        return recon, math.nan
    return recon, _psnr(renders, resize_frames(truth.float(), size, "area")[held_idx])
