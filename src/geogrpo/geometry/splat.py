"""Differentiable 3D Gaussian splatting in pure torch, the reference renderer of the package.

The World-R1 reward fits 3D Gaussians to a generated video and re-renders them from the same
cameras: a video that shows one consistent 3D scene is reproduced well, one that does not is not.
That needs a renderer differentiable in every Gaussian parameter which runs without a CUDA
extension, so that the reward and its tests work on a CPU. This is that renderer, following 3D
Gaussian Splatting (3DGS, Kerbl et al., SIGGRAPH 2023), which projects each Gaussian with EWA
splatting (Zwicker et al., 2002):

1. 3D covariance ``Sigma = R S S^T R^T`` (3DGS eq. 6), ``S = diag(scales)``, ``R`` from a
   quaternion.
2. Camera point ``t = W mu + w`` and 2D covariance ``Sigma' = J W Sigma W^T J^T`` (3DGS eq. 5),
   ``J`` the Jacobian of the perspective projection at ``t`` (EWA's local affine approximation),
   plus ``DILATION_PX2 = 0.3`` px^2 on the diagonal, as in the 3DGS and gsplat code: a low-pass
   filter so that a Gaussian smaller than a pixel still covers one. A Gaussian whose exact image
   has std ``f s / z`` therefore renders with std ``sqrt((f s / z)^2 + 0.3)``.
3. At every pixel centre ``p = (u + 0.5, v + 0.5)`` (the convention of :mod:`geogrpo.camera`):
   ``alpha_i = min(o_i exp(-1/2 (p - mu'_i)^T Sigma'^-1 (p - mu'_i)), ALPHA_MAX = 0.99)``.
4. Front-to-back compositing over the Gaussians sorted by the z-depth of their means (3DGS eq. 3):
   ``C = sum_i c_i alpha_i T_i`` with ``T_i = prod_{j<i} (1 - alpha_j)``.

Gaussians whose mean has z-depth ``<= near`` are culled. Left out of the CUDA rasterizer on
purpose, because they are discontinuous or only save time: tiles, 3-sigma footprints, skipping
``alpha < 1/255``, stopping at ``T < 1e-4``, clamping ``J`` for off-screen Gaussians. Every
Gaussian is evaluated at every pixel (``[H*W, N]`` tensors), which suits a few hundred Gaussians
at 64x64; ``backend="gsplat"`` renders large scenes on a GPU with the same model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import roma
import torch
from torch import Tensor

from geogrpo.camera.se3 import check_intrinsics, check_pose
from geogrpo.geometry.projection import pixel_centers
from geogrpo.utils.checks import check_choice, check_finite, check_int_range, check_positive

DILATION_PX2 = 0.3  # px^2 added to the diagonal of every 2D covariance (3DGS, gsplat eps2d)
ALPHA_MAX = 0.99  # per-Gaussian alpha clamp (3DGS), keeps 1 - alpha >= 0.01
# Squared Mahalanobis distances are clamped here before the exp: beyond it alpha < 3e-33, far
# below anything visible, and exp of larger values underflows into subnormals, which made the
# exp 5x slower on a CPU (measured: 50 ms vs 9 ms for a [2304, 800] tensor, one thread).
MAHALANOBIS_MAX = 150.0
NEAR = 0.01  # default near plane: Gaussians with mean z-depth <= near are culled
BACKENDS = ("auto", "torch", "gsplat")
Backend = Literal["auto", "torch", "gsplat"]


def _check_field(
    name: str, value: Tensor, shape: tuple[int, ...], layout: str, like: Tensor
) -> None:
    """Require a finite tensor of ``shape`` with ``like``'s dtype and device."""
    check_finite(name, value)
    if tuple(value.shape) != shape:
        raise ValueError(
            f"{name}: expected shape {layout} with N = {shape[0]} (from means), "
            f"got {tuple(value.shape)}"
        )
    if value.dtype != like.dtype or value.device != like.device:
        raise ValueError(
            f"{name}: expected {like.dtype} on {like.device} like means, "
            f"got {value.dtype} on {value.device}"
        )


@dataclass(frozen=True)
class GaussianSplats:
    """``N`` 3D Gaussians in world coordinates; every field is checked on construction.

    ``rotations`` are quaternions in roma's **xyzw** order mapping the Gaussian's local axes to
    world axes; they are normalised inside (as 3DGS does), so raw optimiser parameters can be
    passed. ``None`` means the identity: axis-aligned Gaussians, isotropic when the three scales
    are equal.
    """

    means: Tensor  # [N, 3] world
    scales: Tensor  # [N, 3] positive std along the local axes, in world units
    rotations: Tensor | None  # [N, 4] quaternions xyzw, any non-zero norm; None = identity
    colors: Tensor  # [N, C] any number of channels
    opacities: Tensor  # [N] in [0, 1]

    def __post_init__(self) -> None:
        check_finite("means", self.means)
        if self.means.ndim != 2 or self.means.shape[1] != 3 or not self.means.is_floating_point():
            raise ValueError(
                f"means: expected a float tensor of shape [N, 3], got {self.means.dtype} "
                f"of shape {tuple(self.means.shape)}"
            )
        n = self.means.shape[0]
        _check_field("scales", self.scales, (n, 3), "[N, 3]", self.means)
        if bool((self.scales <= 0).any()):
            raise ValueError("scales: standard deviations must be positive")
        if self.rotations is not None:
            _check_field("rotations", self.rotations, (n, 4), "[N, 4] (xyzw)", self.means)
            if bool((self.rotations.norm(dim=-1) < 1e-12).any()):
                raise ValueError("rotations: quaternions must have a non-zero norm")
        if self.colors.ndim != 2:
            raise ValueError(f"colors: expected shape [N, C], got {tuple(self.colors.shape)}")
        _check_field("colors", self.colors, (n, self.colors.shape[1]), "[N, C]", self.means)
        _check_field("opacities", self.opacities, (n,), "[N]", self.means)
        if bool(((self.opacities < 0) | (self.opacities > 1)).any()):
            raise ValueError("opacities: expected values in [0, 1] (e.g. a sigmoid of logits)")

    def rotation_matrices(self) -> Tensor:
        """Local-to-world rotations ``[N, 3, 3]`` of the normalised quaternions."""
        if self.rotations is None:
            eye = torch.eye(3, dtype=self.means.dtype, device=self.means.device)
            return eye.expand(self.means.shape[0], 3, 3)
        return roma.unitquat_to_rotmat(self.rotations / self.rotations.norm(dim=-1, keepdim=True))


@dataclass(frozen=True)
class RenderOutput:
    """A rendered view of Gaussian splats."""

    image: Tensor  # [H, W, C], composited over the background
    alpha: Tensor  # [H, W] accumulated opacity 1 - prod_i (1 - alpha_i)
    depth: Tensor  # [H, W] expected z-depth sum_i z_i w_i / alpha; 0 where alpha = 0


def _check_camera(w2c: Tensor, intrinsics: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """One ``[4, 4]`` world-to-camera pose and ``[3, 3]`` intrinsics, cast like ``like``."""
    check_pose("w2c", w2c)
    if w2c.shape != (4, 4):
        raise ValueError(f"w2c: expected one pose of shape [4, 4], got {tuple(w2c.shape)}")
    check_intrinsics("intrinsics", intrinsics)
    if intrinsics.shape != (3, 3):
        raise ValueError(f"intrinsics: expected shape [3, 3], got {tuple(intrinsics.shape)}")
    return w2c.to(like), intrinsics.to(like)


def project_gaussians(
    splats: GaussianSplats, w2c: Tensor, intrinsics: Tensor, near: float = NEAR
) -> tuple[Tensor, Tensor, Tensor]:
    """EWA projection of 3D Gaussians to the image (3DGS eqs. 5-6).

    Returns pixel means ``[N, 2]``, 2D covariances ``[N, 2, 2]`` in px^2 (dilated by
    ``DILATION_PX2``) and z-depths ``[N]`` of the means. A Gaussian is culled iff its depth is
    ``<= near``; its mean and covariance are then computed at ``z = near`` so that they stay
    finite, and must not be used. ``w2c`` ``[4, 4]`` world-to-camera, ``intrinsics`` ``[3, 3]``.
    """
    w2c, intrinsics = _check_camera(w2c, intrinsics, splats.means)
    check_positive("near", near)
    rot = w2c[:3, :3]  # [3, 3]
    cam = splats.means @ rot.T + w2c[:3, 3]  # [N, 3]
    depths = cam[:, 2]  # [N]
    z = depths.clamp(min=near)  # [N], = depths for every Gaussian that is kept
    x, y = cam[:, 0], cam[:, 1]
    means2d = (cam[:, :2] / z[:, None]) @ intrinsics[:2, :2].T + intrinsics[:2, 2]  # [N, 2]
    zero = torch.zeros_like(z)
    # Jacobian of (x/z, y/z) with respect to the camera point, then through the intrinsics.
    d_normalised = torch.stack(
        [torch.stack([1 / z, zero, -x / z**2], -1), torch.stack([zero, 1 / z, -y / z**2], -1)],
        dim=-2,
    )  # [N, 2, 3]
    jac = intrinsics[:2, :2] @ d_normalised  # [N, 2, 3]
    # Sigma = M M^T with M = R S, so J W Sigma W^T J^T = A A^T with A = J W R S (PSD by design).
    a = jac @ rot @ (splats.rotation_matrices() * splats.scales[:, None, :])  # [N, 2, 3]
    eye2 = torch.eye(2, dtype=a.dtype, device=a.device)
    cov2d = a @ a.transpose(-1, -2) + DILATION_PX2 * eye2  # [N, 2, 2]
    return means2d, cov2d, depths


def _render_torch(
    splats: GaussianSplats,
    w2c: Tensor,
    intrinsics: Tensor,
    height: int,
    width: int,
    near: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Image ``[P, C]``, alpha ``[P]``, depth ``[P]`` over ``P = H*W`` pixels, no background."""
    means2d, cov2d, depths = project_gaussians(splats, w2c, intrinsics, near)
    order = torch.argsort(depths)  # front to back
    means2d, cov2d, depths = means2d[order], cov2d[order], depths[order]
    opacities = torch.where(depths > near, splats.opacities[order], 0.0)  # [N], culled -> 0
    colors = splats.colors[order]  # [N, C]
    # Conic [[A, B], [B, C]] = inverse of [[a, b], [b, c]] = [[c, -b], [-b, a]] / det.
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]  # [N]
    det = a * c - b * b  # [N], >= 0.09 thanks to the dilation
    con_a, con_b, con_c = c / det, -b / det, a / det
    # The quadratic form A dx^2 + 2B dx dy + C dy^2 with (dx, dy) = p - mu, expanded in the
    # monomials of p, is one [P, 6] @ [6, N] matmul instead of six [P, N] elementwise ops.
    # Coordinates are taken about the image centre to keep the expansion's cancellation small.
    centre = means2d.new_tensor([width / 2, height / 2])
    pix = pixel_centers(height, width, means2d.dtype, means2d.device).reshape(-1, 2) - centre
    mx, my = (means2d - centre).unbind(-1)  # [N]
    x, y = pix.unbind(-1)  # [P]
    monomials = torch.stack([x * x, x * y, y * y, x, y, torch.ones_like(x)], dim=-1)  # [P, 6]
    coeffs = torch.stack(
        [
            con_a,
            2 * con_b,
            con_c,
            -2 * (con_a * mx + con_b * my),
            -2 * (con_b * mx + con_c * my),
            con_a * mx * mx + 2 * con_b * mx * my + con_c * my * my,
        ]
    )  # [6, N]
    mahalanobis = (monomials @ coeffs).clamp(min=0, max=MAHALANOBIS_MAX)  # [P, N]
    alpha = (opacities * torch.exp(-0.5 * mahalanobis)).clamp(max=ALPHA_MAX)  # [P, N]
    # T_i = prod_{j<i} (1 - alpha_j): an exclusive cumulative product.
    ones = torch.ones_like(alpha[:, :1])
    trans = torch.cat([ones, torch.cumprod(1 - alpha, dim=1)], dim=1)[:, :-1]  # [P, N]
    weights = alpha * trans  # [P, N]
    acc = weights.sum(dim=1)  # [P]
    depth = (weights @ depths) / acc.clamp(min=1e-10)  # [P]
    return weights @ colors, acc, depth


@functools.cache
def _gsplat_rasterization() -> Callable[..., tuple[Tensor, Tensor, dict]] | None:
    """``gsplat.rasterization`` when the package imports, else None (looked up once)."""
    try:
        from gsplat import rasterization
    except ImportError:
        return None
    return rasterization


def _render_gsplat(
    splats: GaussianSplats,
    w2c: Tensor,
    intrinsics: Tensor,
    height: int,
    width: int,
    near: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """The same model through gsplat's CUDA rasterizer (``rasterize_mode="classic"``).

    gsplat clamps alpha at 0.999 instead of 0.99, skips ``alpha < 1/255``, cuts footprints at
    3 sigma and stops at ``T < 1e-4``, so it agrees with the torch backend to about 1e-2.
    """
    w2c, intrinsics = _check_camera(w2c, intrinsics, splats.means)
    n = splats.means.shape[0]
    if splats.rotations is None:
        quats_wxyz = splats.means.new_tensor([1.0, 0.0, 0.0, 0.0]).expand(n, 4)  # [N, 4]
    else:
        quats_wxyz = roma.quat_xyzw_to_wxyz(splats.rotations)  # [N, 4], gsplat is wxyz
    rasterization = _gsplat_rasterization()
    assert rasterization is not None  # checked by _resolve_backend
    render, alphas, _ = rasterization(
        splats.means,
        quats_wxyz,
        splats.scales,
        splats.opacities,
        splats.colors,
        viewmats=w2c[None],
        Ks=intrinsics[None],
        width=width,
        height=height,
        near_plane=near,
        eps2d=DILATION_PX2,
        packed=False,
        render_mode="RGB+ED",
        rasterize_mode="classic",
    )  # [1, H, W, C + 1], [1, H, W, 1]
    render = render[0].reshape(height * width, -1)  # [P, C + 1]
    return render[:, :-1], alphas[0].reshape(-1), render[:, -1]


def _resolve_backend(backend: str, means: Tensor) -> str:
    """``"torch"`` or ``"gsplat"``; ``"auto"`` takes gsplat only for float32 CUDA tensors."""
    check_choice("backend", backend, BACKENDS)
    if backend == "torch":
        return "torch"
    on_gpu = means.is_cuda and means.dtype == torch.float32
    if backend == "auto":
        return "gsplat" if on_gpu and _gsplat_rasterization() is not None else "torch"
    if _gsplat_rasterization() is None:
        raise ValueError(
            "backend: 'gsplat' needs the gsplat package, which does not import here; install it "
            "with `pip install gsplat` (with a CUDA build of torch), or use backend='torch'"
        )
    if not on_gpu:
        raise ValueError(
            f"backend: 'gsplat' renders float32 CUDA tensors, got {means.dtype} on "
            f"{means.device}; move the splats with .to('cuda', torch.float32) or use 'torch'"
        )
    return "gsplat"


def render_splats(
    splats: GaussianSplats,
    w2c: Tensor,
    intrinsics: Tensor,
    height: int,
    width: int,
    background: Tensor | None = None,
    *,
    near: float = NEAR,
    backend: Backend = "auto",
) -> RenderOutput:
    """Render Gaussians from one camera by front-to-back alpha compositing (3DGS eq. 3).

    ``w2c`` ``[4, 4]`` world-to-camera, ``intrinsics`` ``[3, 3]``; ``background`` ``[C]`` is
    composited behind the splats with weight ``1 - alpha`` (black when None). Differentiable with
    respect to every field of ``splats``. ``backend="torch"`` is the reference, ``"gsplat"`` the
    CUDA rasterizer of the gsplat package, ``"auto"`` gsplat when it imports and the splats are
    float32 CUDA tensors, else torch.
    """
    check_int_range("height", height, 1)
    check_int_range("width", width, 1)
    chosen = _resolve_backend(backend, splats.means)
    if background is not None:
        check_finite("background", background)
        channels = splats.colors.shape[1]
        if tuple(background.shape) != (channels,):
            raise ValueError(
                f"background: expected shape [C] with C = {channels} (from colors), "
                f"got {tuple(background.shape)}"
            )
    render = _render_gsplat if chosen == "gsplat" else _render_torch
    image, alpha, depth = render(splats, w2c, intrinsics, height, width, near)
    if background is not None:
        image = image + (1 - alpha)[:, None] * background.to(image)
    return RenderOutput(
        image=image.reshape(height, width, -1),
        alpha=alpha.reshape(height, width),
        depth=depth.reshape(height, width),
    )
