"""DEVIS-GRPO's view-fidelity reward: agree with the reprojected source where it is visible, stay
perceptually close to the source, and look good."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from geogrpo.perception.base import check_video, sanitize_video
from geogrpo.perception.perceptual import EncoderPerceptualDistance
from geogrpo.rewards.base import RewardBatch, RewardOutput, all_masked, finalize
from geogrpo.utils.checks import check_positive


def masked_psnr(x: Tensor, y: Tensor, mask: Tensor, data_range: float = 1.0) -> Tensor:
    """PSNR (dB) per clip over masked pixels: ``x, y [B, F, H, W, 3]``, ``mask [B, F, H, W]``.

    NaN for a clip with no masked pixel; capped at 100 dB for identical pixels."""
    m = mask[..., None].float()
    count = m.sum(dim=(1, 2, 3, 4)) * x.shape[-1]
    mse = ((x - y).square() * m).sum(dim=(1, 2, 3, 4)) / count.clamp_min(1)
    psnr = 10 * torch.log10(data_range**2 / mse.clamp_min(1e-10))
    return torch.where(count > 0, psnr, torch.full_like(psnr, float("nan")))


def _gaussian_window(
    size: int = 11, sigma: float = 1.5, device: torch.device | str | None = None
) -> Tensor:
    r = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim_map(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-pixel SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5), averaged over channels:
    ``[N, H, W, 3]`` -> ``[N, H, W]`` (reflect padding keeps the map the image's size)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    a, b = x.permute(0, 3, 1, 2).float(), y.permute(0, 3, 1, 2).float()
    ch = a.shape[1]
    win = _gaussian_window(device=a.device).expand(ch, 1, 11, 11)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.pad(t, (5, 5, 5, 5), mode="reflect"), win, groups=ch)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.square()
    var_b = blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2)
    )
    return s.mean(dim=1)


def masked_ssim(x: Tensor, y: Tensor, mask: Tensor) -> Tensor:
    """Mean SSIM per clip over masked pixels (NaN without any)."""
    b, f, h, w, c = x.shape
    s = ssim_map(x.reshape(b * f, h, w, c), y.reshape(b * f, h, w, c)).reshape(b, f, h, w)
    m = mask.float()
    count = m.sum(dim=(1, 2, 3))
    mean = (s * m).sum(dim=(1, 2, 3)) / count.clamp_min(1)
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan")))


class ViewFidelityReward:
    """DEVIS-GRPO's consistency-quality reward: a weighted mean of

    * PSNR of the output vs the reprojected source in its visible region, as
      ``min(PSNR / psnr_ceiling, 1)``;
    * SSIM there (clamped to [0, 1]);
    * ``1 - min(d, 1)`` with ``d`` the perceptual distance of the output to the source clip
      (LPIPS in the paper; the embedded default is :class:`EncoderPerceptualDistance`);
    * an image-quality score in [0, 1] per frame, averaged (weight 0 unless a scorer is given).

    The paper weights these terms with a vector it does not print; ``weights`` defaults to equal.
    A term of weight 0 is not computed; its diagnostic is NaN. The terms are computed on the
    batch's device; the perceptual and quality models' scores join them there. ``device``: where
    the embedded perceptual distance goes when ``perceptual`` is not given (None: the CPU).
    """

    name = "view_fidelity"
    diagnostics = ("psnr_visible", "ssim_visible", "perceptual_distance", "quality")

    def __init__(
        self,
        weights: Sequence[float] = (1.0, 1.0, 1.0, 0.0),
        psnr_ceiling: float = 40.0,
        perceptual: Any | None = None,
        quality: Any | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if len(weights) != 4 or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f"weights: need 4 non-negative weights (psnr, ssim, perceptual, quality) with a "
                f"positive sum, got {tuple(weights)}"
            )
        if weights[3] > 0 and quality is None:
            raise ValueError("weights: a quality weight needs a quality scorer (quality=...)")
        self.weights = torch.tensor(weights, dtype=torch.float32)
        self.psnr_ceiling = check_positive("psnr_ceiling", psnr_ceiling)
        self.perceptual = perceptual or EncoderPerceptualDistance(device=device)
        self.quality = quality

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        b, problem = batch.size()
        if problem:
            return all_masked(b, problem, self.diagnostics)
        missing = [
            n
            for n in ("video", "reference_video", "visible", "source_video")
            if getattr(batch, n) is None
        ]
        if missing:
            return all_masked(b, f"view_fidelity needs {', '.join(missing)}", self.diagnostics)
        for n in ("video", "reference_video", "source_video"):
            check_video(n, getattr(batch, n))
        if batch.reference_video.shape != batch.video.shape or (
            batch.source_video.shape != batch.video.shape
        ):
            return all_masked(
                b,
                "video, reference_video and source_video must have the same shape",
                self.diagnostics,
            )
        video, reasons = sanitize_video(batch.video)
        ref, _ = sanitize_video(batch.reference_video)
        src, _ = sanitize_video(batch.source_video)
        psnr = masked_psnr(video, ref, batch.visible)
        ssim = masked_ssim(video, ref, batch.visible)
        n, f = video.shape[:2]
        flat = video.reshape(n * f, *video.shape[2:])
        if self.weights[2] > 0:
            dist = self.perceptual.distance(flat, src.reshape(n * f, *src.shape[2:]))
            dist = dist.to(psnr.device).reshape(n, f).mean(dim=1)
        else:  # a term that does not count is not computed (it was most of the reward's time)
            dist = torch.full((n,), float("nan"), device=psnr.device)
        quality = (
            self.quality.score(flat).to(psnr.device).reshape(n, f).mean(dim=1)
            if self.quality is not None
            else torch.full((n,), float("nan"), device=psnr.device)
        )
        terms = torch.stack(
            [
                (psnr / self.psnr_ceiling).clamp(0, 1),
                ssim.clamp(0, 1),
                torch.nan_to_num(1 - dist.clamp(0, 1), nan=0.0),
                torch.nan_to_num(quality.clamp(0, 1), nan=0.0),
            ],
            dim=1,
        )
        weights = self.weights.to(terms.device)
        score = (terms * weights).sum(dim=1) / weights.sum()
        valid = torch.tensor([not r for r in reasons])
        for i in torch.nonzero(valid & ~torch.isfinite(psnr).cpu()).flatten().tolist():
            valid[i] = False
            reasons[i] = "the reprojected source has no visible pixel"
        return finalize(
            score,
            valid,
            reasons,
            {
                "psnr_visible": psnr,
                "ssim_visible": ssim,
                "perceptual_distance": dist,
                "quality": quality,
            },
        )
