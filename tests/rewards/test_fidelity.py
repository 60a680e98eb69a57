"""View fidelity (DEVIS-GRPO) on a world clip: closed forms, and falls with blur and shifts."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from geogrpo.perception.perceptual import EncoderPerceptualDistance, LPIPSDistance
from geogrpo.rewards.base import RewardBatch
from geogrpo.rewards.fidelity import ViewFidelityReward, masked_psnr, masked_ssim


@pytest.fixture(scope="module")
def reward():
    return ViewFidelityReward()


def blur(video, sigma):
    r = torch.arange(-4, 5, dtype=torch.float32)
    k = torch.exp(-0.5 * (r / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 9)
    b, f, h, w, c = video.shape
    x = video.permute(0, 1, 4, 2, 3).reshape(-1, 1, h, w)
    x = F.conv2d(F.pad(x, (4, 4, 0, 0), mode="replicate"), k.view(1, 1, 1, 9))
    x = F.conv2d(F.pad(x, (0, 0, 4, 4), mode="replicate"), k.view(1, 1, 9, 1))
    return x.reshape(b, f, c, h, w).permute(0, 1, 3, 4, 2)


def batch_of(clip, output, visible=None):
    video = clip.rgb[None]
    vis = visible if visible is not None else torch.ones(video.shape[:4], dtype=torch.bool)
    return RewardBatch(video=output, reference_video=video, visible=vis, source_video=video)


def test_psnr_and_ssim_closed_forms():
    x = torch.rand(1, 2, 16, 16, 3)
    mask = torch.ones(1, 2, 16, 16, dtype=torch.bool)
    y = (x + 0.1).clamp(0, 1)
    mse = (x - y).square().mean()
    assert float(masked_psnr(x, y, mask)) == pytest.approx(float(-10 * torch.log10(mse)), rel=1e-5)
    assert float(masked_ssim(x, x, mask)) == pytest.approx(1.0, abs=1e-5)
    # pixels outside the mask do not count
    z = x.clone()
    z[:, :, :8] = 1 - z[:, :, :8]
    half = mask.clone()
    half[:, :, :8] = False
    assert float(masked_psnr(x, z, half)) == pytest.approx(100.0)
    assert torch.isnan(masked_psnr(x, z, torch.zeros_like(mask))).all()


def test_identical_output_scores_highest_and_blur_lowers_it(static_clip, reward):
    video = static_clip.rgb[None]
    scores = [
        float(reward(batch_of(static_clip, blur(video, s) if s else video)).scores)
        for s in (0, 0.7, 1.5, 3.0)
    ]
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_shifted_content_lowers_it(static_clip, reward):
    video = static_clip.rgb[None]
    scores = [
        float(reward(batch_of(static_clip, torch.roll(video, k, dims=3))).scores)
        for k in (0, 1, 3, 6)
    ]
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_a_term_of_weight_zero_is_not_computed_and_the_score_is_unchanged(static_clip):
    class Refuses:
        def distance(self, *args):
            raise AssertionError("the perceptual term has weight 0 and must not run")

    batch = batch_of(static_clip, blur(static_clip.rgb[None], 1.0))
    out = ViewFidelityReward((1.0, 1.0, 0.0, 0.0), perceptual=Refuses())(batch)
    psnr, ssim = out.diagnostics["psnr_visible"], out.diagnostics["ssim_visible"]
    expected = ((psnr / 40.0).clamp(0, 1) + ssim.clamp(0, 1)) / 2
    torch.testing.assert_close(out.scores, expected)
    assert torch.isnan(out.diagnostics["perceptual_distance"]).all()
    with pytest.raises(AssertionError, match="must not run"):  # a weight > 0 does run it
        ViewFidelityReward((1.0, 1.0, 0.5, 0.0), perceptual=Refuses())(batch)


def test_embedded_perceptual_distance_is_zero_on_identity_and_grows_with_blur(static_clip):
    d = EncoderPerceptualDistance()
    frames = static_clip.rgb
    assert float(d.distance(frames, frames).abs().max()) == 0.0
    dist = [float(d.distance(frames, blur(frames[None], s)[0]).mean()) for s in (0.7, 1.5, 3.0)]
    assert dist[0] < dist[1] < dist[2]


def test_lpips_adapter_says_what_is_missing():
    try:
        import lpips  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install lpips"):
            LPIPSDistance()
    else:
        pytest.skip("lpips is installed here")


def test_bad_inputs_are_masked(static_clip, reward):
    video = static_clip.rgb[None].expand(2, -1, -1, -1, -1).clone()
    video[1, 3, 5, 5, 0] = float("nan")
    out = reward(batch_of(static_clip, video))
    assert "disagree in size" in out.reasons[0]  # reference has 1 clip, output 2
    ref = video.clone()
    ref[1] = static_clip.rgb
    vis = torch.ones(video.shape[:4], dtype=torch.bool)
    out = reward(RewardBatch(video=video, reference_video=ref, visible=vis, source_video=ref))
    assert out.valid.tolist() == [True, False] and "non-finite" in out.reasons[1]
    assert torch.isfinite(out.scores).all()
    vis[0] = False
    out = reward(RewardBatch(video=video, reference_video=ref, visible=vis, source_video=ref))
    assert not out.valid[0] and "no visible pixel" in out.reasons[0]
    with pytest.raises(ValueError, match="quality"):
        ViewFidelityReward(weights=(1, 1, 1, 1))
