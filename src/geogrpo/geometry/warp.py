"""Forward warping with a z-buffer, and point-cloud rendering along a trajectory.

Each source pixel is lifted to 3D with its depth and splatted to the nearest target pixel; where
several land on one pixel the nearest surface wins. Target pixels that receive nothing are holes
(disocclusions, or cracks where the surface is magnified). This is the reprojection that
TrajectoryCrafter conditions on and DEVIS-GRPO scores against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from geogrpo.camera.se3 import check_intrinsics, check_pose
from geogrpo.geometry.projection import project_points, unproject_depth
from geogrpo.utils.checks import check_finite


@dataclass(frozen=True)
class WarpOutput:
    """A rendered view: colours, depth, and which pixels received a surface."""

    image: Tensor  # [..., H, W, C], background where no point landed
    depth: Tensor  # [..., H, W], 0 at holes
    visible: Tensor  # [..., H, W] bool, a point landed here

    @property
    def holes(self) -> Tensor:
        """``[..., H, W]`` bool, the pixels to inpaint."""
        return ~self.visible


def splat_points(
    points: Tensor,  # [B, N, 3] world
    colors: Tensor,  # [B, N, C]
    intrinsics: Tensor,  # [B, 3, 3] or [3, 3]
    w2c: Tensor,  # [B, 4, 4]
    height: int,
    width: int,
    background: float = 0.0,
) -> WarpOutput:
    """Nearest-pixel splatting of coloured points with a z-buffer (nearest surface wins)."""
    check_finite("points", points)
    check_finite("colors", colors)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"points: expected shape [B, N, 3], got {tuple(points.shape)}")
    if colors.shape[:2] != points.shape[:2]:
        raise ValueError(
            f"colors: expected shape [B, N, C] with B, N = {tuple(points.shape[:2])}, "
            f"got {tuple(colors.shape)}"
        )
    check_intrinsics("intrinsics", intrinsics)
    check_pose("w2c", w2c)
    b, n, _ = points.shape
    device = points.device
    pix, z = project_points(points, intrinsics if intrinsics.ndim == 3 else intrinsics[None], w2c)
    cols = torch.floor(pix[..., 0]).long()
    rows = torch.floor(pix[..., 1]).long()
    valid = (z > 0) & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    first = torch.arange(b, device=device)[:, None] * (height * width)  # [B, 1]
    target = (first + rows * width + cols)[valid]  # [M]
    z_valid = z[valid]
    zbuf = torch.full((b * height * width,), torch.inf, dtype=z.dtype, device=device)
    zbuf = zbuf.scatter_reduce(0, target, z_valid, reduce="amin")
    source = torch.arange(b * n, device=device).view(b, n)[valid]
    front = z_valid == zbuf[target]
    winner = torch.full((b * height * width,), -1, dtype=torch.long, device=device)
    winner = winner.scatter_reduce(0, target[front], source[front], reduce="amax")
    visible = winner >= 0
    flat_colors = colors.reshape(b * n, -1)
    image = torch.full(
        (b * height * width, colors.shape[-1]), background, dtype=colors.dtype, device=device
    )
    image[visible] = flat_colors[winner[visible]]
    depth = torch.where(visible, zbuf, torch.zeros_like(zbuf))
    return WarpOutput(
        image=image.view(b, height, width, -1),
        depth=depth.view(b, height, width),
        visible=visible.view(b, height, width),
    )


def forward_warp(
    image: Tensor,  # [..., H, W, C]
    depth: Tensor,  # [..., H, W]
    intrinsics_src: Tensor,  # [..., 3, 3]
    w2c_src: Tensor,  # [..., 4, 4]
    intrinsics_dst: Tensor,  # [..., 3, 3]
    w2c_dst: Tensor,  # [..., 4, 4]
    out_size: tuple[int, int] | None = None,
    background: float = 0.0,
) -> WarpOutput:
    """Warp images (or video frames, batched over leading dims) into new cameras.

    With identical cameras the output equals the input and every pixel is visible.
    """
    check_finite("image", image)
    if image.ndim < 3 or image.shape[:-1] != depth.shape:
        raise ValueError(
            f"depth: expected shape {tuple(image.shape[:-1])} to match image [..., H, W, C], "
            f"got {tuple(depth.shape)}"
        )
    lead = image.shape[:-3]
    h, w, c = image.shape[-3:]
    oh, ow = out_size or (h, w)
    points = unproject_depth(depth, intrinsics_src, w2c_src)  # [..., H, W, 3]

    def flat(x: Tensor, tail: int) -> Tensor:
        return x.expand(*lead, *x.shape[-tail:]).reshape(-1, *x.shape[-tail:])

    out = splat_points(
        points.reshape(-1, h * w, 3),
        image.reshape(-1, h * w, c),
        flat(intrinsics_dst, 2),
        flat(w2c_dst, 2),
        oh,
        ow,
        background,
    )
    return WarpOutput(
        image=out.image.view(*lead, oh, ow, c),
        depth=out.depth.view(*lead, oh, ow),
        visible=out.visible.view(*lead, oh, ow),
    )


def render_point_cloud(
    points: Tensor,  # [N, 3] world
    colors: Tensor,  # [N, C]
    intrinsics: Tensor,  # [3, 3] or [F, 3, 3]
    w2c: Tensor,  # [F, 4, 4]
    height: int,
    width: int,
    background: float = 0.0,
) -> WarpOutput:
    """Render one coloured point cloud from every camera of a trajectory: ``[F, H, W, C]``."""
    check_pose("w2c", w2c)
    if w2c.ndim != 3:
        raise ValueError(f"w2c: expected a trajectory [F, 4, 4], got {tuple(w2c.shape)}")
    f = w2c.shape[0]
    k = intrinsics.expand(f, 3, 3)
    return splat_points(
        points.expand(f, *points.shape),
        colors.expand(f, *colors.shape),
        k,
        w2c,
        height,
        width,
        background,
    )
