"""Vectorised ray casting of a :class:`Scene`: RGB, exact z-depth, object ids, dynamic mask.

Rays leave pixel centres with camera-frame direction ``K^-1 [u, v, 1]``, whose z component is 1,
so the ray parameter at a hit *is* the z-depth: depth is exact, not estimated. Colour is
supersampled (``ss x ss`` rays per pixel, box filter) for anti-aliasing; depth, ids and masks come
from the pixel-centre ray, so they stay exact and consistent with :mod:`geogrpo.geometry`.
Shading is Lambert with ambient light; there are no shadows or reflections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from geogrpo.camera.se3 import (
    axis_rotation,
    check_intrinsics,
    check_pose,
    intrinsics_from_fov,
    w2c_to_c2w,
)
from geogrpo.utils.checks import check_finite, check_int_range
from geogrpo.world.scene import FPS, Primitive, Scene
from geogrpo.world.textures import evaluate_texture

DEFAULT_FOV_DEG = 60.0
_EPS = 1e-4


@dataclass(frozen=True)
class Render:
    """A rendered clip with everything known about it."""

    rgb: Tensor  # [F, H, W, 3] float32 in [0, 1]
    depth: Tensor  # [F, H, W] float32 z-depth, 0 where the ray hit the sky
    object_id: Tensor  # [F, H, W] int16 index into scene.primitives, -1 for sky
    dynamic: Tensor  # [F, H, W] bool, pixels showing a moving primitive
    intrinsics: Tensor  # [3, 3] float64
    w2c: Tensor  # [F, 4, 4] float64
    times: Tensor  # [F] float64 seconds

    @property
    def static_surface(self) -> Tensor:
        """``[F, H, W]`` bool: pixels with a surface that does not move (sky excluded)."""
        return (self.object_id >= 0) & ~self.dynamic


def _safe(x: Tensor) -> Tensor:
    return torch.where(x.abs() < 1e-12, torch.full_like(x, 1e-12), x)


def _plane_basis(n: Tensor) -> tuple[Tensor, Tensor]:
    helper = (
        torch.tensor([0.0, 0.0, 1.0]) if abs(float(n[2])) < 0.9 else torch.tensor([1.0, 0.0, 0.0])
    )
    u = torch.linalg.cross(n, helper)
    u = u / u.norm()
    return u, torch.linalg.cross(n, u)


def _hit(prim: Primitive, o: Tensor, d: Tensor, c: Tensor) -> Tensor:
    """Ray parameter ``[R]`` of the first hit in front of the camera (inf on a miss).

    ``o`` ``[3]`` ray origin, ``d`` ``[R, 3]`` directions, ``c`` ``[3]`` current centre.
    """
    inf = torch.full(d.shape[:1], torch.inf)
    if prim.kind == "plane":
        n = torch.tensor(prim.normal)
        s = ((c - o) @ n) / _safe(d @ n)
        return torch.where(s > _EPS, s, inf)
    if prim.kind == "sphere":
        r = prim.size[0]
        oc = o - c
        a, b, cc = (d * d).sum(-1), 2 * (d @ oc), float(oc @ oc) - r * r
        disc = b * b - 4 * a * cc
        root = torch.sqrt(disc.clamp_min(0))
        near, far = (-b - root) / (2 * a), (-b + root) / (2 * a)
        s = torch.where(near > _EPS, near, far)
        return torch.where((disc >= 0) & (s > _EPS), s, inf)
    if prim.kind == "box":
        rot = axis_rotation("y", math.radians(prim.yaw_deg), torch.float32)
        half = torch.tensor(prim.size)
        ol, dl = (o - c) @ rot, _safe(d @ rot)
        t1, t2 = (-half - ol) / dl, (half - ol) / dl
        tmin = torch.minimum(t1, t2).amax(-1)
        tmax = torch.maximum(t1, t2).amin(-1)
        s = torch.where(tmin > _EPS, tmin, tmax)
        return torch.where((tmax >= tmin) & (s > _EPS), s, inf)
    r, h = prim.size[0], prim.size[1]
    oc = o - c
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = 2 * (oc[0] * d[:, 0] + oc[2] * d[:, 2])
    cc = float(oc[0] ** 2 + oc[2] ** 2) - r * r
    disc = b * b - 4 * a * cc
    root = torch.sqrt(disc.clamp_min(0))
    best = inf
    for s in ((-b - root) / (2 * _safe(a)), (-b + root) / (2 * _safe(a))):
        y = oc[1] + s * d[:, 1]
        ok = (disc >= 0) & (s > _EPS) & (y.abs() <= h)
        best = torch.where(ok & (s < best), s, best)
    for cap in (-h, h):
        s = (cap - oc[1]) / _safe(d[:, 1])
        x, z = oc[0] + s * d[:, 0], oc[2] + s * d[:, 2]
        ok = (s > _EPS) & (x * x + z * z <= r * r)
        best = torch.where(ok & (s < best), s, best)
    return best


def _surface(prim: Primitive, x: Tensor, d: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Unit normals facing the ray ``[R, 3]`` and texture coordinates ``[R, 2]`` at hits ``x``."""
    q = x - c
    if prim.kind == "plane":
        n = torch.tensor(prim.normal)
        n = n / n.norm()
        u, v = _plane_basis(n)
        normal = n.expand_as(x)
        uv = torch.stack([q @ u, q @ v], dim=-1)
    elif prim.kind == "sphere":
        normal = q / prim.size[0]
        uv = torch.stack([torch.atan2(q[:, 0], q[:, 2]) * prim.size[0], q[:, 1]], dim=-1)
    elif prim.kind == "box":
        rot = axis_rotation("y", math.radians(prim.yaw_deg), torch.float32)
        ql = q @ rot
        rel = ql / torch.tensor(prim.size)
        axis = rel.abs().argmax(-1)
        local_n = torch.nn.functional.one_hot(axis, 3).float() * torch.sign(rel)
        normal = local_n @ rot.T
        other = torch.tensor([[1, 2], [0, 2], [0, 1]])[axis]
        uv = torch.gather(ql, 1, other)
    else:
        r, h = prim.size[0], prim.size[1]
        on_cap = q[:, 1].abs() >= h - 1e-4
        side_n = torch.stack([q[:, 0], 0 * q[:, 1], q[:, 2]], -1) / r
        cap_n = torch.stack([0 * q[:, 0], torch.sign(q[:, 1]), 0 * q[:, 2]], -1)
        normal = torch.where(on_cap[:, None], cap_n, side_n)
        side_uv = torch.stack([torch.atan2(q[:, 0], q[:, 2]) * r, q[:, 1]], -1)
        uv = torch.where(on_cap[:, None], q[:, [0, 2]], side_uv)
    facing = torch.where(((normal * d).sum(-1) > 0)[:, None], -normal, normal)
    return facing, uv


def _cast(scene: Scene, o: Tensor, d: Tensor, time: float) -> tuple[Tensor, Tensor, Tensor]:
    """Colour ``[R, 3]``, ray parameter ``[R]`` (inf = sky) and primitive index ``[R]``."""
    t = torch.tensor([time], dtype=torch.float64)
    centers = [
        (torch.tensor(p.center, dtype=torch.float64) + p.motion.offset(t)[0]).float()
        for p in scene.primitives
    ]
    hits = torch.stack([_hit(p, o, d, c) for p, c in zip(scene.primitives, centers, strict=True)])
    best, index = hits.min(dim=0)
    index = torch.where(torch.isfinite(best), index, torch.full_like(index, -1))
    light = torch.tensor(scene.light_direction)
    light = light / light.norm()
    # Sky: blend horizon -> top by elevation (up is -y).
    elevation = (-d[:, 1] / d.norm(dim=-1)).clamp(0, 1)[:, None] ** 0.6
    color = (
        torch.tensor(scene.sky_horizon) * (1 - elevation) + torch.tensor(scene.sky_top) * elevation
    )
    for i, (prim, c) in enumerate(zip(scene.primitives, centers, strict=True)):
        mask = index == i
        if not bool(mask.any()):
            continue
        x = o + best[mask, None] * d[mask]
        normal, uv = _surface(prim, x, d[mask], c)
        lambert = (-(normal @ light)).clamp_min(0)[:, None]
        albedo = evaluate_texture(prim.texture, uv)
        color[mask] = albedo * (scene.ambient + (1 - scene.ambient) * lambert)
    return color.clamp(0, 1), best, index


def render(
    scene: Scene,
    w2c: Tensor,  # [F, 4, 4]
    height: int,
    width: int,
    intrinsics: Tensor | None = None,  # [3, 3]; default: 60 deg horizontal field of view
    times: Tensor | None = None,  # [F] seconds; default: frame / FPS
    supersample: int = 3,
) -> Render:
    """Render a clip along a camera path."""
    check_pose("w2c", w2c)
    if w2c.ndim != 3 or w2c.shape[0] < 1:
        raise ValueError(f"w2c: expected a trajectory [F >= 1, 4, 4], got {tuple(w2c.shape)}")
    check_int_range("height", height, 1)
    check_int_range("width", width, 1)
    check_int_range("supersample", supersample, 1)
    if supersample % 2 == 0:
        raise ValueError(
            f"supersample: must be odd so one sample sits at the pixel centre, got {supersample}"
        )
    k = intrinsics_from_fov(DEFAULT_FOV_DEG, height, width) if intrinsics is None else intrinsics
    check_intrinsics("intrinsics", k)
    f = w2c.shape[0]
    times = torch.arange(f, dtype=torch.float64) / FPS if times is None else times.to(torch.float64)
    check_finite("times", times)
    if times.shape != (f,):
        raise ValueError(f"times: expected shape [{f}], got {tuple(times.shape)}")
    ss = supersample
    offsets = (torch.arange(ss, dtype=torch.float64) + 0.5) / ss
    v = (torch.arange(height, dtype=torch.float64)[:, None] + offsets[None, :]).reshape(-1)
    u = (torch.arange(width, dtype=torch.float64)[:, None] + offsets[None, :]).reshape(-1)
    vv, uu = torch.meshgrid(v, u, indexing="ij")  # [H*ss, W*ss]
    pix = torch.stack([uu, vv, torch.ones_like(uu)], dim=-1).reshape(-1, 3)
    rays_cam = pix @ torch.linalg.inv(k).T  # z component is 1: ray parameter = z-depth
    c2w = w2c_to_c2w(w2c)
    rgb, depth, ids, dyn = [], [], [], []
    centre = ss // 2
    dynamic_ids = torch.tensor([p.dynamic for p in scene.primitives])
    for i in range(f):
        d = (rays_cam @ c2w[i, :3, :3].T).float()
        o = c2w[i, :3, 3].float()
        color, s, index = _cast(scene, o, d, float(times[i]))
        color = color.view(height, ss, width, ss, 3).mean(dim=(1, 3))
        s = s.view(height, ss, width, ss)[:, centre, :, centre]
        index = index.view(height, ss, width, ss)[:, centre, :, centre]
        rgb.append(color)
        depth.append(torch.where(torch.isfinite(s), s, torch.zeros_like(s)))
        ids.append(index.to(torch.int16))
        dyn.append((index >= 0) & dynamic_ids[index.clamp_min(0)])
    return Render(
        rgb=torch.stack(rgb),
        depth=torch.stack(depth),
        object_id=torch.stack(ids),
        dynamic=torch.stack(dyn),
        intrinsics=k.to(torch.float64),
        w2c=w2c.to(torch.float64),
        times=times,
    )
