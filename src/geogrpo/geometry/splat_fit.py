"""Fitting Gaussian splats to a clip: the analysis-by-synthesis half of World-R1's reward.

World-R1 lifts a generated video into 3D Gaussians with the cameras and depth a 3D foundation
model estimates, re-renders them, and asks how well the re-rendering reproduces the video. Two
steps, both differentiable-renderer work on top of :mod:`geogrpo.geometry.splat`:

1. :func:`splats_from_depth`: one isotropic Gaussian per sampled pixel, at the pixel's unprojected
   depth, with its colour, and a size that covers the gap to its neighbours (the usual 3DGS
   initialisation from a point cloud, here from estimated depth instead of SfM points).
2. :func:`fit_splats`: Adam on means, log-scales, colour and opacity logits and a background
   colour, minimising the mean L1 photometric error over the fit views (3DGS's L1 term; its
   D-SSIM term and densification are left out: a reward fits a few hundred Gaussians for a few
   dozen steps, not a scene for thousands).

A clip that shows one rigid scene under the given cameras is reproduced well, also at views that
were not fitted; frames from inconsistent scenes are not, however long one optimises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from geogrpo.camera.presets import look_at_c2w
from geogrpo.camera.se3 import c2w_to_w2c, check_intrinsics, check_pose, invert_pose
from geogrpo.geometry.projection import unproject_depth
from geogrpo.geometry.splat import GaussianSplats, render_splats
from geogrpo.utils.checks import check_finite, check_int_range, check_positive

FOOTPRINT = 0.7  # Gaussian std as a fraction of the initial spacing between neighbouring splats


def _check_clip(frames: Tensor, depth: Tensor, w2c: Tensor, intrinsics: Tensor) -> None:
    check_finite("frames", frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected shape [F, H, W, 3], got {tuple(frames.shape)}")
    f, h, w = frames.shape[:3]
    for name, value, shape in (
        ("depth", depth, (f, h, w)),
        ("w2c", w2c, (f, 4, 4)),
        ("intrinsics", intrinsics, (f, 3, 3)),
    ):
        check_finite(name, value)
        if tuple(value.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape} for {f} frames, got {value.shape}")
    check_pose("w2c", w2c)
    check_intrinsics("intrinsics", intrinsics)


def splats_from_depth(
    frames: Tensor,  # [F, H, W, 3] in [0, 1]
    depth: Tensor,  # [F, H, W], <= 0 where unknown (sky, masked)
    w2c: Tensor,  # [F, 4, 4]
    intrinsics: Tensor,  # [F, 3, 3]
    max_splats: int = 800,
    weights: Tensor | None = None,  # [F, H, W] >= 0: sampling weight of each pixel
    generator: torch.Generator | None = None,
) -> GaussianSplats:
    """Isotropic Gaussians at up to ``max_splats`` pixels drawn (by ``weights``) from the clip.

    Each gets the pixel's colour, opacity 0.9 and a world-space std ``FOOTPRINT * s * z / f``,
    ``s = sqrt(H W / n)`` being the pixel spacing of ``n`` splats spread over one view (every view
    sees about all of them when the clip shows one scene). Raises when no pixel has depth.
    The pixels are drawn on ``generator``'s device (a CPU generator picks the same pixels
    whatever device the clip is on); the splats are on the clip's device.
    """
    _check_clip(frames, depth, w2c, intrinsics)
    check_int_range("max_splats", max_splats, 1)
    known = depth > 0
    p = known.double() if weights is None else weights.double() * known
    if not bool((p > 0).any()):
        raise ValueError("depth: no pixel has a positive depth (or a positive weight) to lift")
    n = min(max_splats, int((p > 0).sum()))
    draw_on = p.device if generator is None else generator.device
    flat = torch.multinomial(p.flatten().to(draw_on), n, replacement=False, generator=generator)
    flat = flat.to(p.device)  # [n]
    h, w = depth.shape[1:]
    fi, rest = flat // (h * w), flat % (h * w)
    vi, ui = rest // w, rest % w
    safe = torch.where(known, depth, torch.ones_like(depth))
    points = unproject_depth(safe, intrinsics, w2c)  # [F, H, W, 3]
    means = points[fi, vi, ui]  # [n, 3]
    focal = intrinsics[fi, 0, 0]  # [n]
    spacing = math.sqrt(h * w / n)
    std = (FOOTPRINT * spacing * depth[fi, vi, ui] / focal).clamp_min(1e-4)  # [n]
    return GaussianSplats(
        means=means,
        scales=std[:, None].expand(n, 3).contiguous(),
        rotations=None,
        colors=frames[fi, vi, ui].to(means),
        opacities=torch.full((n,), 0.9, dtype=means.dtype, device=means.device),
    )


@dataclass(frozen=True)
class SplatFit:
    """Fitted splats, the background colour they are composited over, and the loss curve."""

    splats: GaussianSplats
    background: Tensor  # [3]
    losses: Tensor  # [steps + 1], mean L1 over the fit views before each step and at the end


def render_views(
    splats: GaussianSplats,
    background: Tensor,  # [3]
    w2c: Tensor,  # [V, 4, 4]
    intrinsics: Tensor,  # [V, 3, 3]
    height: int,
    width: int,
) -> tuple[Tensor, Tensor]:
    """Images ``[V, H, W, 3]`` and alphas ``[V, H, W]`` of splats from ``V`` cameras."""
    images, alphas = [], []
    for cam, k in zip(w2c, intrinsics, strict=True):
        out = render_splats(splats, cam, k, height, width, background)
        images.append(out.image)
        alphas.append(out.alpha)
    return torch.stack(images), torch.stack(alphas)


def fit_splats(
    init: GaussianSplats,
    frames: Tensor,  # [V, H, W, 3] the views to fit, in [0, 1]
    w2c: Tensor,  # [V, 4, 4]
    intrinsics: Tensor,  # [V, 3, 3]
    steps: int = 30,
    lr: float = 0.05,
) -> SplatFit:
    """Adam on all splat parameters so that the renders match ``frames`` (mean L1). The splats
    stay isotropic (as :func:`splats_from_depth` makes them): ``init``'s first scale is each
    splat's std.

    Means move by ``lr x`` their own size per step at most (Adam's step is about ``lr`` in the
    parameter's units, and means are parametrised in units of each splat's initial std), so the
    cloud refines the estimated geometry without flying apart. The fit builds its own gradients,
    so it works inside a caller's ``torch.no_grad()`` (rewards are scored there).
    """
    with torch.enable_grad():
        return _fit_splats(init, frames, w2c, intrinsics, steps, lr)


def _fit_splats(
    init: GaussianSplats, frames: Tensor, w2c: Tensor, intrinsics: Tensor, steps: int, lr: float
) -> SplatFit:
    check_int_range("steps", steps, 0)
    check_positive("lr", lr)
    check_finite("frames", frames)
    h, w = frames.shape[1:3]
    dtype = init.means.dtype
    target = frames.to(dtype)
    unit = init.scales[:, :1].detach()  # [N, 1]
    offset = torch.zeros_like(init.means, requires_grad=True)
    log_scale = init.scales[:, :1].detach().log().clone().requires_grad_(True)
    color_logit = torch.logit(init.colors.detach(), eps=1e-3).requires_grad_(True)
    opacity_logit = torch.logit(init.opacities.detach(), eps=1e-3).requires_grad_(True)
    background_logit = torch.logit(target.mean(dim=(0, 1, 2)), eps=1e-3).requires_grad_(True)
    params = [offset, log_scale, color_logit, opacity_logit, background_logit]
    opt = torch.optim.Adam(params, lr=lr)

    def current() -> tuple[GaussianSplats, Tensor]:
        splats = GaussianSplats(
            means=init.means.detach() + offset * unit,
            scales=log_scale.exp().expand(-1, 3),
            rotations=None,
            colors=torch.sigmoid(color_logit),
            opacities=torch.sigmoid(opacity_logit),
        )
        return splats, torch.sigmoid(background_logit)

    losses = []
    for _ in range(steps + 1):
        splats, background = current()
        images, _ = render_views(splats, background, w2c.to(dtype), intrinsics.to(dtype), h, w)
        loss = (images - target).abs().mean()
        losses.append(loss.detach())
        if len(losses) > steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    splats, background = current()
    detached = GaussianSplats(
        means=splats.means.detach(),
        scales=splats.scales.detach(),
        rotations=None,
        colors=splats.colors.detach(),
        opacities=splats.opacities.detach(),
    )
    return SplatFit(detached, background.detach(), torch.stack(losses))


def orbit_views(
    w2c: Tensor,  # [V, 4, 4]
    pivot_depth: Tensor,  # [V] distance along each optical axis to orbit around
    angle_deg: float,
) -> Tensor:
    """Off-trajectory cameras ``[2 V, 4, 4]``: each camera orbited ``-angle`` and ``+angle``
    about the point ``pivot_depth`` ahead of it, keeping that point centred and the world up
    (World-R1's "offset perspective", from which hidden structural defects show)."""
    check_positive("angle_deg", angle_deg)
    c2w = invert_pose(w2c)
    centers, forward = c2w[:, :3, 3], c2w[:, :3, 2]
    right = c2w[:, :3, 0]
    pivot = centers + pivot_depth[:, None] * forward  # [V, 3]
    views = []
    for sign in (-1.0, 1.0):
        a = math.radians(sign * angle_deg)
        # rotate the centre about the pivot in the plane of the camera's right and forward axes
        rel = centers - pivot
        new_center = pivot + math.cos(a) * rel + math.sin(a) * pivot_depth[:, None] * right
        views.append(c2w_to_w2c(look_at_c2w(new_center, pivot)))
    return torch.cat(views)
