"""Noise transport keeps every frame i.i.d. N(0, 1) and follows the flow; bilinear warping does not.

Tolerances come from the sample size ``N = C * H * W`` of one frame: five standard errors of
the mean (``1 / sqrt(N)``), of the variance (``sqrt(2 / N)``), of a lag-1 correlation
(``1 / sqrt(N)``, about 0.016 at 16 x 60 x 104) and of the fraction inside one sigma.
"""

import math

import pytest
import torch

from geogrpo.camera.se3 import axis_rotation, intrinsics_from_fov, make_pose
from geogrpo.geometry.homography import fronto_parallel_homography, homography_flow
from geogrpo.geometry.noise_warp import bilinear_warp_noise, warp_noise, warp_noise_video

C, H, W = 16, 60, 104  # Wan latent of a 480 x 832 video
D = torch.float64
ONE_SIGMA = math.erf(1 / math.sqrt(2))  # P(|x| < 1) = 0.6827 for N(0, 1)


def _camera_flow(w2c_dst: torch.Tensor, height: int = H, width: int = W) -> torch.Tensor:
    k = intrinsics_from_fov(60.0, height, width)
    h = fronto_parallel_homography(k, torch.eye(4, dtype=D), w2c_dst, 1.0)
    return homography_flow(h, height, width).float()  # [H, W, 2]


# Zoom-in: camera moves 0.1 towards a plane at depth 1 (flow up to 5.7 px at the borders).
ZOOM_IN = make_pose(torch.eye(3, dtype=D), torch.tensor([0.0, 0.0, -0.1], dtype=D))
# Zoom-out (contraction: several sources per target) and a 3 degree roll about the optical axis.
ZOOM_OUT = make_pose(torch.eye(3, dtype=D), torch.tensor([0.0, 0.0, 0.1], dtype=D))
ROLL = make_pose(axis_rotation("z", math.radians(3.0)), torch.zeros(3, dtype=D))


def _iid_violations(x: torch.Tensor) -> list[str]:
    """Names of the N(0, 1) / independence checks that one frame ``[C, H, W]`` fails."""
    x = x.double()
    n = x.numel()
    centred = x - x.mean()
    var = float(x.var())
    rho_h = float((centred[..., :, 1:] * centred[..., :, :-1]).mean()) / var
    rho_v = float((centred[..., 1:, :] * centred[..., :-1, :]).mean()) / var
    inside = float((x.abs() < 1).double().mean())
    checks = {
        "mean": abs(float(x.mean())) < 5 / math.sqrt(n),
        "variance": abs(var - 1) < 5 * math.sqrt(2 / n),
        "rho_horizontal": abs(rho_h) < 5 / math.sqrt(n),
        "rho_vertical": abs(rho_v) < 5 / math.sqrt(n),
        "one_sigma_mass": abs(inside - ONE_SIGMA) < 5 * math.sqrt(ONE_SIGMA * (1 - ONE_SIGMA) / n),
    }
    return [name for name, ok in checks.items() if not ok]


@pytest.mark.parametrize("subdivisions", [1, 2])
@pytest.mark.parametrize("pose", [ZOOM_IN, ZOOM_OUT, ROLL], ids=["zoom_in", "zoom_out", "roll"])
def test_every_warped_frame_is_iid_standard_normal(pose, subdivisions):
    flows = _camera_flow(pose).expand(6, H, W, 2)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        video = warp_noise_video(
            torch.randn(C, H, W, generator=g), flows, g, subdivisions=subdivisions
        )
        assert video.shape == (7, C, H, W)
        for f, frame in enumerate(video):
            assert _iid_violations(frame) == [], f"seed {seed} frame {f}"


def test_full_resolution_frame_is_iid_standard_normal():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(3, 480, 832, generator=g)
    warped = warp_noise(noise, _camera_flow(ZOOM_IN, 480, 832), g)
    assert _iid_violations(warped) == []


def test_bilinear_warping_fails_the_same_statistics():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(C, H, W, generator=g)
    half_pixel = torch.tensor([0.5, 0.5]).expand(H, W, 2)
    for flow in (half_pixel, _camera_flow(ZOOM_IN)):
        naive = bilinear_warp_noise(noise, flow)
        failed = _iid_violations(naive)
        assert {"variance", "rho_horizontal", "rho_vertical"} <= set(failed)
        assert float(naive.var()) < 0.6  # 0.25 at the half-pixel shift, about 0.44 for the zoom
        centred = naive - naive.mean()
        rho_h = float((centred[..., 1:] * centred[..., :-1]).mean() / naive.var())
        assert rho_h > 0.25  # 0.5 at the half-pixel shift, about 0.35 for the zoom
        assert _iid_violations(warp_noise(noise, flow, g)) == []


@pytest.mark.parametrize("subdivisions", [1, 3])
def test_integer_translation_moves_the_noise_exactly(subdivisions):
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(C, H, W, generator=g)
    flow = torch.tensor([3.0, -2.0]).expand(H, W, 2)  # (du, dv): right 3, up 2
    warped = warp_noise(noise, flow, g, subdivisions=subdivisions)
    moved, source = warped[:, : H - 2, 3:], noise[:, 2:, : W - 3]
    if subdivisions == 1:
        assert torch.equal(moved, source)  # bit for bit: one whole sample per target cell
    else:  # fragments re-assemble their sample up to float rounding
        torch.testing.assert_close(moved, source, atol=1e-5, rtol=0)
    # The disoccluded strips (left 3 columns, bottom 2 rows) are fresh, uncorrelated noise.
    fresh = torch.cat([warped[:, :, :3].flatten(), warped[:, H - 2 :, 3:].flatten()])
    sources = torch.cat([noise[:, :, W - 3 :].flatten(), noise[:, :2, : W - 3].flatten()])
    assert abs(float(torch.corrcoef(torch.stack([fresh, sources]))[0, 1])) < 5 / math.sqrt(
        fresh.numel()
    )


def test_zoom_warp_follows_the_flow():
    # Each target cell q should hold the sample of the source cell that maps into it; read that
    # source back through the inverse homography (nearest cell) and correlate.
    k = intrinsics_from_fov(60.0, H, W)
    h = fronto_parallel_homography(k, torch.eye(4, dtype=D), ZOOM_IN, 1.0)
    back = homography_flow(torch.linalg.inv(h), H, W)  # [H, W, 2]
    v, u = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    src_u = torch.floor(u + 0.5 + back[..., 0]).long().clamp(0, W - 1)
    src_v = torch.floor(v + 0.5 + back[..., 1]).long().clamp(0, H - 1)
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(C, H, W, generator=g)
    followed = noise[:, src_v, src_u]
    warped = warp_noise(noise, homography_flow(h, H, W).float(), g)
    unrelated = torch.randn(C, H, W, generator=g)
    corr = float(torch.corrcoef(torch.stack([warped.flatten(), followed.flatten()]))[0, 1])
    corr_0 = float(torch.corrcoef(torch.stack([unrelated.flatten(), followed.flatten()]))[0, 1])
    # 1/1.11^2 = 81% of the targets receive one whole sample; the rest are disocclusions.
    assert corr > 0.7
    assert abs(corr_0) < 5 / math.sqrt(noise.numel())


def test_default_latent_size_and_determinism():
    flows = _camera_flow(ZOOM_IN, 12, 12).expand(4, 12, 12, 2)
    init = torch.randn(4, 12, 12, generator=torch.Generator().manual_seed(3))
    a = warp_noise_video(init, flows, torch.Generator().manual_seed(4))
    b = warp_noise_video(init, flows, torch.Generator().manual_seed(4))
    assert a.shape == (5, 4, 12, 12)
    assert torch.equal(a, b)
    assert torch.equal(a[0], init)


def test_bad_input_raises_value_error_naming_the_argument():
    noise = torch.randn(4, 12, 16)
    with pytest.raises(ValueError, match="^flow"):
        warp_noise(noise, torch.zeros(12, 15, 2))
    with pytest.raises(ValueError, match="^flow"):
        warp_noise(noise, torch.zeros(16, 12, 2))
    with pytest.raises(ValueError, match="^flow"):
        warp_noise(noise, torch.full((12, 16, 2), float("nan")))
    with pytest.raises(ValueError, match="^flow"):
        bilinear_warp_noise(noise, torch.zeros(12, 16, 3))
    with pytest.raises(ValueError, match="^noise"):
        warp_noise(noise[0], torch.zeros(12, 16, 2))
    with pytest.raises(ValueError, match="^subdivisions"):
        warp_noise(noise, torch.zeros(12, 16, 2), subdivisions=0)
    with pytest.raises(ValueError, match="^flows"):
        warp_noise_video(noise, torch.zeros(3, 12, 15, 2))
    with pytest.raises(ValueError, match="^flows"):
        warp_noise_video(noise, torch.zeros(12, 16, 2))
    with pytest.raises(ValueError, match="^initial_noise"):
        warp_noise_video(noise[None], torch.zeros(3, 12, 16, 2))
