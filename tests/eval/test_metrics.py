"""PSNR and SSIM (whole frames and masked) against closed forms, the source-visibility mask
against hand-computed warps, and the refusals of bad input."""

import itertools
import math

import pytest
import torch

from geogrpo.camera.se3 import axis_rotation, intrinsics_from_fov, make_pose
from geogrpo.eval.metrics import (
    masked_psnr,
    masked_ssim,
    psnr,
    psnr_per_sample,
    ssim,
    ssim_per_sample,
    visible_from_source_mask,
)


def video(seed: int = 0, frames: int = 3, size: int = 16) -> torch.Tensor:
    """A textured ``[F, H, W, 3]`` clip in [0.2, 0.8] (room for offsets and noise)."""
    return 0.2 + 0.6 * torch.rand(
        frames, size, size, 3, generator=torch.Generator().manual_seed(seed)
    )


def test_psnr_of_a_constant_offset():
    a = video()
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert psnr(a * 2, a * 2 + 0.2, data_range=2.0) == pytest.approx(20.0, abs=1e-4)  # same, x2
    batch_a = torch.stack([a, a])
    batch_b = torch.stack([a + 0.1, a + 0.01])
    # the offsets are added in float32: exact to about 1e-4 dB
    assert psnr_per_sample(batch_a, batch_b).tolist() == pytest.approx([20.0, 40.0], abs=1e-4)


def test_identical_videos_score_the_floor_not_infinity():
    a = video()
    assert psnr(a, a) == pytest.approx(120.0)  # 10 log10(1 / 1e-12)
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim_per_sample(a[None], a[None]).tolist() == pytest.approx([1.0])


def test_ssim_of_constant_frames_is_the_luminance_term():
    # no variance: SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), C1 = (0.01 * range)^2
    a, b = torch.full((2, 16, 16, 3), 0.5), torch.full((2, 16, 16, 3), 0.6)
    c1 = 0.01**2
    assert ssim(a, b) == pytest.approx((2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1), rel=1e-5)


def test_ssim_falls_as_noise_grows():
    a = video()
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(a.shape, generator=gen)
    scores = [ssim(a, (a + s * noise).clamp(0, 1)) for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(x > y for x, y in itertools.pairwise(scores)), scores
    batch = torch.stack([(a + s * noise).clamp(0, 1) for s in (0.01, 0.3)])
    per_sample = ssim_per_sample(torch.stack([a, a]), batch)
    assert per_sample.tolist() == pytest.approx([scores[0], scores[-1]])


def test_psnr_is_the_mean_squared_error_over_every_frame():
    a, b = video(0), video(1)
    mse = float(((a.double() - b.double()) ** 2).mean())
    assert psnr(a, b) == pytest.approx(-10 * math.log10(mse))
    assert psnr_per_sample(a[None], b[None]).item() == pytest.approx(psnr(a, b))


def test_bad_input_is_refused_with_the_argument_named():
    a = video()
    with pytest.raises(ValueError, match=r"b: shape \(2, 16, 16, 3\) does not match a shape"):
        psnr(a, a[:2])
    with pytest.raises(ValueError, match=r"a: expected shape \[F, H, W, 3\] \(channels last\)"):
        ssim(a.permute(3, 0, 1, 2), a.permute(3, 0, 1, 2))
    with pytest.raises(ValueError, match=r"a: expected shape \[B, F, H, W, 3\]"):
        psnr_per_sample(a, a)
    bad = a.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="b: 1 of .* NaN or infinite"):
        ssim(a, bad)
    signed = a.clone()
    signed[0, 0, 0, 0] = -1.0  # a pixel of a [-1, 1] video
    with pytest.raises(ValueError, match=r"a: values span \[-1, .*outside \[0, 1\]"):
        psnr(signed, a)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        ssim_per_sample(a[None], 2 * a[None])  # SSIM is for [0, 1] only
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, data_range=0.0)
    with pytest.raises(ValueError, match="smaller than SSIM's 7x7 window"):
        ssim(a[:, :5, :5], a[:, :5, :5])


# --- masked PSNR / SSIM -----------------------------------------------------------------------


def test_masked_metrics_with_an_all_true_mask_are_the_plain_ones():
    a, b = torch.stack([video(0), video(2)]), torch.stack([video(1), video(3)])
    full = torch.ones(a.shape[:-1], dtype=torch.bool)
    assert masked_psnr(a, b, full).tolist() == pytest.approx(psnr_per_sample(a, b).tolist())
    assert masked_ssim(a, b, full).tolist() == pytest.approx(ssim_per_sample(a, b).tolist())


def test_masked_psnr_counts_only_the_masked_half():
    a = video(size=8)
    b = a.clone()
    b[..., :4, :] += 0.1  # the left half differs by 0.1 in every channel
    left = torch.zeros(a.shape[:-1], dtype=torch.bool)
    left[..., :4] = True
    scores = masked_psnr(torch.stack([a, a]), torch.stack([b, b]), torch.stack([~left, left]))
    # right half: MSE 0 -> the floor, 10 log10(1 / 1e-12); left half: MSE 0.01 -> 20 dB
    assert scores.tolist() == pytest.approx([120.0, 20.0], abs=1e-4)
    assert masked_psnr(a[None], b[None], left[None], data_range=2.0).item() == pytest.approx(
        20.0 + 20 * math.log10(2.0), abs=1e-4
    )


def test_masked_ssim_ignores_differences_outside_the_mask_and_its_windows():
    a = video(size=32)
    b = a.clone()
    gen = torch.Generator().manual_seed(5)
    b[..., :8, :] = (b[..., :8, :] + 0.2 * torch.randn(b[..., :8, :].shape, generator=gen)).clamp(
        0, 1
    )
    far = torch.zeros(a.shape[:-1], dtype=torch.bool)
    far[..., 16:] = True  # 7x7 windows centred here never reach columns < 8
    near = torch.zeros_like(far)
    near[..., :8] = True
    scores = masked_ssim(torch.stack([a, a]), torch.stack([b, b]), torch.stack([far, near]))
    assert scores[0].item() == pytest.approx(1.0, abs=1e-6)
    assert scores[1].item() < 0.9


def test_masked_ssim_of_constant_frames_is_the_luminance_term_anywhere():
    a, b = torch.full((1, 2, 16, 16, 3), 0.5), torch.full((1, 2, 16, 16, 3), 0.6)
    mask = torch.zeros(1, 2, 16, 16, dtype=torch.bool)
    mask[0, 1, 5:9, 6:12] = True
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)
    assert masked_ssim(a, b, mask).item() == pytest.approx(expected, rel=1e-5)


def test_an_empty_mask_gives_nan_for_that_sample_only():
    a, b = torch.stack([video(0), video(2)]), torch.stack([video(1), video(3)])
    mask = torch.ones(a.shape[:-1], dtype=torch.bool)
    mask[1] = False
    for scores in (masked_psnr(a, b, mask), masked_ssim(a, b, mask)):
        assert math.isfinite(scores[0].item()) and math.isnan(scores[1].item())
    border_only = torch.zeros_like(mask)
    border_only[:, :, :3] = True  # SSIM leaves the 3-pixel border out
    assert masked_ssim(a, b, border_only).isnan().all()
    assert masked_psnr(a, b, border_only).isfinite().all()


def test_masked_metrics_refuse_a_bad_mask():
    a = video()[None]
    with pytest.raises(ValueError, match=r"mask: expected a bool mask of shape \(1, 3, 16, 16\)"):
        masked_psnr(a, a, torch.ones(1, 3, 16, 16))
    with pytest.raises(ValueError, match="mask: expected a bool mask"):
        masked_ssim(a, a, torch.ones(3, 16, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"a: expected shape \[B, F, H, W, 3\]"):
        masked_psnr(a[0], a[0], torch.ones(3, 16, 16, dtype=torch.bool))


# --- the region visible in the source ---------------------------------------------------------


def camera(rotation: torch.Tensor | None = None, center: tuple[float, ...] = (0, 0, 0)):
    """One world-to-camera ``[1, 4, 4]`` from a camera-to-world rotation and a centre."""
    r = torch.eye(3, dtype=torch.float64) if rotation is None else rotation
    c = torch.tensor(center, dtype=torch.float64)
    return make_pose(r.T, -(r.T @ c))[None]


def test_the_same_camera_sees_every_pixel_with_a_depth():
    gen = torch.Generator().manual_seed(0)
    depth = 2 + 3 * torch.rand(2, 12, 16, generator=gen)
    depth[0, 0, :5] = 0.0  # sky as the renderer writes it
    depth[1, 3, 4] = float("inf")
    depth[1, 7, 9] = float("nan")
    depth[1, 8, 9] = -1.0
    w2c = torch.cat([camera(), camera(axis_rotation("x", 0.3), (1.0, 2.0, -0.5))])
    k = intrinsics_from_fov(60, 12, 16)
    mask = visible_from_source_mask(depth, w2c, w2c, k)
    assert torch.equal(mask, torch.isfinite(depth) & (depth > 0))


def test_a_sideways_translation_uncovers_the_background_behind_a_square():
    # fx = 20: a 0.25 step to the right shifts depth 1 by 5 px and depth 5 by 1 px to the left
    k = torch.tensor([[20.0, 0, 16], [0, 20.0, 16], [0, 0, 1]], dtype=torch.float64)
    depth = torch.full((1, 32, 32), 5.0, dtype=torch.float64)
    depth[0, 12:20, 12:20] = 1.0
    mask = visible_from_source_mask(depth, camera(), camera(center=(0.25, 0, 0)), k)
    expected = torch.ones(32, 32, dtype=torch.bool)
    expected[12:20, 15:19] = False  # background columns 16..19 were behind the square
    expected[:, 31] = False  # background column 32 was outside the source
    assert torch.equal(mask[0], expected)


def test_turning_right_leaves_the_new_content_on_the_right_unseen():
    height = width = 32
    k = intrinsics_from_fov(60, height, width)
    turn = math.radians(10)
    target = camera(axis_rotation("y", turn))  # looks 10 degrees to the right
    depth = torch.full((1, height, width), 5.0, dtype=torch.float64)
    mask = visible_from_source_mask(depth, camera(), target, k)[0]
    # closed form: a target pixel centre is seen where its ray lands inside the source image
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64) + 0.5,
        torch.arange(width, dtype=torch.float64) + 0.5,
        indexing="ij",
    )
    rays = torch.stack([u, v, torch.ones_like(u)], -1) @ torch.linalg.inv(k).T
    in_source = (rays @ axis_rotation("y", turn).T) @ k.T
    uv = in_source[..., :2] / in_source[..., 2:]
    inside = (uv >= 0).all(-1) & (uv[..., 0] < width) & (uv[..., 1] < height)
    margin = ((uv >= 1).all(-1) & (uv[..., 0] < width - 1) & (uv[..., 1] < height - 1)) | ~(
        (uv >= -1).all(-1) & (uv[..., 0] < width + 1) & (uv[..., 1] < height + 1)
    )  # pixels more than a pixel away from the source border
    assert torch.equal(mask[margin], inside[margin])
    # the band: every column right of cx + fx tan(30 deg - 10 deg) = 26.09 is unseen
    edge = 16 + float(k[0, 0]) * math.tan(math.radians(30) - turn)
    assert not mask[:, math.ceil(edge) :].any()
    assert mask[:, : width // 2].all()  # the left half was all in view


def test_visible_mask_refuses_bad_input():
    k = intrinsics_from_fov(60, 8, 8)
    depth = torch.ones(2, 8, 8)
    w2c = torch.cat([camera(), camera()])
    with pytest.raises(ValueError, match=r"source_depth: expected shape \[F, H, W\]"):
        visible_from_source_mask(depth[0], w2c, w2c, k)
    with pytest.raises(ValueError, match=r"target_w2c: expected one camera per depth frame"):
        visible_from_source_mask(depth, w2c, w2c[:1], k)
    with pytest.raises(ValueError, match=r"intrinsics: expected shape \[3, 3\]"):
        visible_from_source_mask(depth, w2c, w2c, k[None])
    with pytest.raises(ValueError, match="supersample"):
        visible_from_source_mask(depth, w2c, w2c, k, supersample=0)
