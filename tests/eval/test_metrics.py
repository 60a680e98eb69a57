"""PSNR and SSIM against closed forms, and the refusals of bad input."""

import itertools
import math

import pytest
import torch

from geogrpo.eval.metrics import psnr, psnr_per_sample, ssim, ssim_per_sample


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
