"""Gaussian splatting: a per-pixel brute-force reference, closed forms, gradients, fitting."""

from __future__ import annotations

import math

import pytest
import torch

from geogrpo.camera.se3 import axis_rotation, make_intrinsics, make_pose
from geogrpo.geometry.splat import (
    ALPHA_MAX,
    DILATION_PX2,
    GaussianSplats,
    project_gaussians,
    render_splats,
)

D = torch.float64
EYE = torch.eye(4, dtype=D)


def random_splats(n: int, seed: int, *, channels: int = 3, isotropic: bool = False):
    """``n`` Gaussians 2.5-4.5 in front of the origin, spread over a ~70 degree view."""
    g = torch.Generator().manual_seed(seed)
    z = 2.5 + 2.0 * torch.rand(n, generator=g, dtype=D)
    xy = (torch.rand(n, 2, generator=g, dtype=D) - 0.5) * 1.4 * z[:, None]
    scales = 0.1 + 0.3 * torch.rand(n, 3, generator=g, dtype=D)
    return GaussianSplats(
        means=torch.cat([xy, z[:, None]], dim=1),
        scales=scales[:, :1].expand(n, 3).clone() if isotropic else scales,
        rotations=None if isotropic else torch.randn(n, 4, generator=g, dtype=D),
        colors=torch.rand(n, channels, generator=g, dtype=D),
        opacities=0.2 + 0.75 * torch.rand(n, generator=g, dtype=D),
    )


def brute_force_render(splats, w2c, k, height, width, background, near=0.01):
    """The same model written plainly: Python floats, one pixel and one Gaussian at a time."""
    m = w2c.tolist()
    (fx, s, cx), (_, fy, cy), _ = k.tolist()
    projected = []
    for i in range(splats.means.shape[0]):
        px, py, pz = splats.means[i].tolist()
        cam = [m[r][0] * px + m[r][1] * py + m[r][2] * pz + m[r][3] for r in range(3)]
        x, y, z = cam
        if z <= near:
            continue
        if splats.rotations is None:
            rot = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        else:
            qx, qy, qz, qw = splats.rotations[i].tolist()
            norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw)
            qx, qy, qz, qw = qx / norm, qy / norm, qz / norm, qw / norm
            rot = [
                [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)],
                [2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)],
                [2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)],
            ]
        sc = splats.scales[i].tolist()
        # Sigma_world[a][b] = sum_k R[a][k] s_k^2 R[b][k]; then Sigma_cam = W Sigma_world W^T.
        sig_w = [
            [sum(rot[a][q] * sc[q] ** 2 * rot[b][q] for q in range(3)) for b in range(3)]
            for a in range(3)
        ]
        sig_c = [
            [
                sum(m[a][p] * sig_w[p][q] * m[b][q] for p in range(3) for q in range(3))
                for b in range(3)
            ]
            for a in range(3)
        ]
        # u = fx x/z + s y/z + cx, v = fy y/z + cy; J = d(u, v)/d(x, y, z).
        jac = [[fx / z, s / z, -(fx * x + s * y) / z**2], [0.0, fy / z, -fy * y / z**2]]
        cov = [
            [
                sum(jac[a][p] * sig_c[p][q] * jac[b][q] for p in range(3) for q in range(3))
                for b in range(2)
            ]
            for a in range(2)
        ]
        cov[0][0] += DILATION_PX2
        cov[1][1] += DILATION_PX2
        u0, v0 = (fx * x + s * y) / z + cx, fy * y / z + cy
        projected.append((z, u0, v0, cov, splats.colors[i].tolist(), splats.opacities[i].item()))
    projected.sort(key=lambda p: p[0])
    channels = splats.colors.shape[1]
    bg = [0.0] * channels if background is None else background.tolist()
    image = torch.zeros(height, width, channels, dtype=D)
    alpha = torch.zeros(height, width, dtype=D)
    depth = torch.zeros(height, width, dtype=D)
    for v in range(height):
        for u in range(width):
            rgb, t, zsum = [0.0] * channels, 1.0, 0.0
            for z, u0, v0, cov, color, opacity in projected:
                (a, b), (_, c) = cov
                du, dv = u + 0.5 - u0, v + 0.5 - v0
                q = (c * du * du - 2 * b * du * dv + a * dv * dv) / (a * c - b * b)
                al = min(opacity * math.exp(-0.5 * q), ALPHA_MAX)
                rgb = [rgb[ch] + color[ch] * al * t for ch in range(channels)]
                zsum += z * al * t
                t *= 1 - al
            image[v, u] = torch.tensor([rgb[ch] + t * bg[ch] for ch in range(channels)], dtype=D)
            alpha[v, u] = 1 - t
            depth[v, u] = zsum / max(1 - t, 1e-10)
    return image, alpha, depth


def test_matches_brute_force_reference():
    splats = random_splats(5, seed=1)
    # A camera 1 unit back, turned a little: exercises the rotation of W and a skewed K.
    w2c = make_pose(
        axis_rotation("y", 0.2) @ axis_rotation("x", -0.1), torch.tensor([0.1, 0, 1.0], dtype=D)
    )
    k = make_intrinsics(9.0, 8.0, 6.0, 5.0)
    k[0, 1] = 0.3
    background = torch.tensor([0.2, 0.5, 0.9], dtype=D)
    out = render_splats(splats, w2c, k, 10, 12, background, backend="torch")
    image, alpha, depth = brute_force_render(splats, w2c, k, 10, 12, background)
    assert float(alpha.max()) > 0.5  # the scene covers the image
    torch.testing.assert_close(out.image, image, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.alpha, alpha, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.depth, depth, atol=1e-6, rtol=0)


def test_matches_brute_force_with_culling_and_isotropic_splats():
    splats = random_splats(6, seed=2, isotropic=True, channels=2)
    w2c = make_pose(torch.eye(3, dtype=D), torch.tensor([0.0, 0.0, -3.0], dtype=D))
    k = make_intrinsics(7.0, 7.0, 4.0, 4.0)
    _, _, depths = project_gaussians(splats, w2c, k)
    assert 0 < int((depths <= 0.01).sum()) < 6  # some are behind the camera
    out = render_splats(splats, w2c, k, 8, 8, backend="torch")
    image, alpha, depth = brute_force_render(splats, w2c, k, 8, 8, None)
    torch.testing.assert_close(out.image, image, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.alpha, alpha, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.depth, depth, atol=1e-6, rtol=0)


def one_gaussian(x, y, z, scale, color, opacity):
    return (
        torch.tensor([[x, y, z]], dtype=D),
        torch.full((1, 3), scale, dtype=D),
        torch.tensor([color], dtype=D),
        torch.tensor([opacity], dtype=D),
    )


def test_isotropic_gaussian_on_axis_closed_form():
    f, s, z, size = 40.0, 0.2, 2.0, 41  # image std f s / z = 4 px; 41 px = +-5 std
    means, scales, colors, opacities = one_gaussian(0.0, 0.0, z, s, [1.0], 0.98)
    splats = GaussianSplats(means, scales, None, colors, opacities)
    k = make_intrinsics(f, f, size / 2, size / 2)  # principal point = centre of pixel (20, 20)
    alpha = render_splats(splats, EYE, k, size, size, backend="torch").alpha
    assert divmod(int(alpha.argmax()), size) == (20, 20)
    assert float(alpha.max()) == pytest.approx(0.98, abs=1e-12)  # opacity at the mean, unclamped
    centres = torch.arange(size, dtype=D) + 0.5
    mass = alpha.sum()
    for profile in (alpha.sum(dim=0), alpha.sum(dim=1)):  # marginals along u, then v
        mean = float((profile * centres).sum() / mass)
        var = float((profile * (centres - mean) ** 2).sum() / mass)
        assert mean == pytest.approx(size / 2, abs=1e-9)
        # The dilation adds DILATION_PX2 to the variance of the exact EWA image.
        assert math.sqrt(var - DILATION_PX2) == pytest.approx(f * s / z, rel=1e-4)


def test_nearer_gaussian_occludes():
    k = make_intrinsics(20.0, 20.0, 4.5, 4.5)  # principal point at the centre of pixel (4, 4)

    def centre_pixel(z_red, z_green):
        red = one_gaussian(0.0, 0.0, z_red, 0.3, [1.0, 0.0, 0.0], 0.999)
        green = one_gaussian(0.0, 0.0, z_green, 0.3, [0.0, 1.0, 0.0], 0.999)
        both = [torch.cat([r, g]) for r, g in zip(red, green, strict=True)]
        splats = GaussianSplats(both[0], both[1], None, both[2], both[3])
        return render_splats(splats, EYE, k, 9, 9, backend="torch").image[4, 4]

    # alpha clamps at 0.99, so the far colour leaks through with weight 0.01 * 0.99.
    torch.testing.assert_close(centre_pixel(2.0, 4.0), torch.tensor([0.99, 0.0099, 0], dtype=D))
    torch.testing.assert_close(centre_pixel(4.0, 2.0), torch.tensor([0.0099, 0.99, 0], dtype=D))


def test_gradcheck():
    # Two overlapping Gaussians of ~1 px std, inside a 4x4 image, alpha well below the clamp.
    g = torch.Generator().manual_seed(3)
    inputs = tuple(
        t.requires_grad_()
        for t in (
            torch.tensor([[-0.3, 0.2, 3.0], [0.4, -0.1, 4.0]], dtype=D),
            torch.tensor([[1.0, 0.7, 0.9], [1.2, 1.5, 0.8]], dtype=D),
            torch.randn(2, 4, generator=g, dtype=D),
            torch.rand(2, 3, generator=g, dtype=D),
            torch.tensor([0.5, 0.7], dtype=D),
        )
    )
    w2c = make_pose(axis_rotation("z", 0.3), torch.tensor([0.0, 0.0, 0.5], dtype=D))
    k = make_intrinsics(4.0, 4.0, 2.0, 2.0)

    def render(means, scales, rotations, colors, opacities):
        out = render_splats(
            GaussianSplats(means, scales, rotations, colors, opacities),
            w2c,
            k,
            4,
            4,
            backend="torch",
        )
        return out.image, out.alpha, out.depth

    with torch.no_grad():
        means2d, _, _ = project_gaussians(GaussianSplats(*inputs), w2c, k)
    assert bool(((means2d > 0.5) & (means2d < 3.5)).all())  # both well inside the image
    assert torch.autograd.gradcheck(render, inputs)


def test_fitting_reduces_the_error():
    size = 32
    k = make_intrinsics(size, size, size / 2, size / 2)  # 53 degrees
    target = render_splats(random_splats(8, seed=40), EYE, k, size, size, backend="torch").image
    g = torch.Generator().manual_seed(41)
    n = 16
    init = random_splats(n, seed=42)
    means = init.means.clone().requires_grad_()
    log_scales = init.scales.log().requires_grad_()
    quats = init.rotations.clone().requires_grad_()
    color_logits = torch.randn(n, 3, generator=g, dtype=D).requires_grad_()
    opacity_logits = torch.zeros(n, dtype=D, requires_grad=True)
    params = [means, log_scales, quats, color_logits, opacity_logits]
    optimiser = torch.optim.Adam(params, lr=0.05)

    def loss() -> torch.Tensor:
        splats = GaussianSplats(
            means, log_scales.exp(), quats, color_logits.sigmoid(), opacity_logits.sigmoid()
        )
        image = render_splats(splats, EYE, k, size, size, backend="torch").image
        return ((image - target) ** 2).mean()

    with torch.no_grad():
        initial = float(loss())
    for _ in range(150):
        optimiser.zero_grad()
        loss().backward()
        optimiser.step()
    with torch.no_grad():
        final = float(loss())
    assert final < initial / 5, (initial, final)


def _splat_kwargs(**override):
    splats = random_splats(3, seed=7)
    kwargs = {
        "means": splats.means,
        "scales": splats.scales,
        "rotations": splats.rotations,
        "colors": splats.colors,
        "opacities": splats.opacities,
    }
    return {**kwargs, **override}


NAN3 = torch.tensor([[0.0, 0.0, 1.0], [float("nan"), 0.0, 1.0], [0.0, 0.0, 2.0]], dtype=D)


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ({"means": torch.zeros(3, 2, dtype=D)}, "means"),
        ({"means": NAN3}, "means"),
        ({"means": torch.zeros(3, 3, dtype=torch.int64)}, "means"),
        ({"scales": torch.zeros(3, 3, dtype=D)}, "scales"),
        ({"scales": -torch.ones(3, 3, dtype=D)}, "scales"),
        ({"scales": torch.ones(2, 3, dtype=D)}, "scales"),
        ({"scales": torch.ones(3, 3, dtype=torch.float32)}, "scales"),
        ({"rotations": torch.zeros(3, 4, dtype=D)}, "rotations"),
        ({"rotations": torch.ones(3, 3, dtype=D)}, "rotations"),
        ({"colors": torch.ones(3, dtype=D)}, "colors"),
        ({"colors": torch.full((3, 3), float("inf"), dtype=D)}, "colors"),
        ({"opacities": torch.full((3,), 1.5, dtype=D)}, "opacities"),
        ({"opacities": torch.ones(3, 1, dtype=D)}, "opacities"),
    ],
)
def test_bad_splats_raise(override, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        GaussianSplats(**_splat_kwargs(**override))


K8 = make_intrinsics(8.0, 8.0, 4.0, 4.0)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        ({"w2c": 2 * EYE}, "w2c"),
        ({"w2c": EYE[:3]}, "w2c"),
        ({"w2c": EYE.expand(2, 4, 4)}, "w2c"),
        ({"w2c": torch.full((4, 4), float("nan"), dtype=D)}, "w2c"),
        ({"intrinsics": -K8}, "intrinsics"),
        ({"intrinsics": K8[:2]}, "intrinsics"),
        ({"height": 0}, "height"),
        ({"width": 2.5}, "width"),
        ({"background": torch.zeros(4, dtype=D)}, "background"),
        ({"near": 0.0}, "near"),
        ({"backend": "cuda"}, "backend"),
        ({"backend": "gsplat"}, "backend"),  # CPU float64 tensors: never usable with gsplat
    ],
)
def test_bad_render_arguments_raise(call, name):
    kwargs = {
        "splats": random_splats(3, seed=8),
        "w2c": EYE,
        "intrinsics": K8,
        "height": 8,
        "width": 8,
        **call,
    }
    with pytest.raises(ValueError, match=f"^{name}:"):
        render_splats(**kwargs)


def test_gsplat_missing_says_how_to_install(monkeypatch):
    monkeypatch.setattr("geogrpo.geometry.splat._gsplat_rasterization", lambda: None)
    with pytest.raises(ValueError, match="^backend: .*pip install gsplat"):
        render_splats(random_splats(3, seed=9), EYE, K8, 8, 8, backend="gsplat")
    # "auto" falls back to the torch reference silently.
    out = render_splats(random_splats(3, seed=9), EYE, K8, 8, 8, backend="auto")
    assert out.image.shape == (8, 8, 3)


def _gsplat_usable() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.gpu
@pytest.mark.skipif(
    not _gsplat_usable(),
    reason="needs the gsplat package (pip install gsplat) and a CUDA device; "
    "the torch backend is the reference and is tested everywhere",
)
def test_gsplat_backend_agrees_with_torch():
    splats = random_splats(40, seed=10)
    fields = ("means", "scales", "rotations", "colors", "opacities")
    cuda = GaussianSplats(**{f: getattr(splats, f).to("cuda", torch.float32) for f in fields})
    k = make_intrinsics(32.0, 32.0, 24.0, 16.0).to("cuda", torch.float32)
    w2c = EYE.to("cuda", torch.float32)
    ref = render_splats(cuda, w2c, k, 32, 48, backend="torch")
    out = render_splats(cuda, w2c, k, 32, 48, backend="gsplat")
    # gsplat cuts footprints at 3 sigma, skips alpha < 1/255 and clamps alpha at 0.999.
    for got, want in ((out.image, ref.image), (out.alpha, ref.alpha)):
        assert float((got - want).abs().mean()) < 1e-2
        assert float((got - want).abs().max()) < 0.1
