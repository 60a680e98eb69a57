"""Ground-truth metrics of generated clips, per sample: what the world knows and no reward sees.

v2v (the true target video and its depth exist): PSNR, SSIM and the embedded perceptual distance
against the true target, and the world evaluator's registration of every frame against the
truth (confirmed share = matched fraction of frames; RotErr / TransErr over matched frames).
t2v (only the true render of the caption exists): agreement of the image motion with it.

``HIGHER_IS_BETTER`` states each metric's direction once; statistics that rank samples by the
truth (:mod:`geogrpo.eval.reward_fidelity`) read it from there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from geogrpo.eval.metrics import psnr_per_sample, ssim_per_sample

HIGHER_IS_BETTER = {
    "psnr": True,
    "ssim": True,
    "perceptual_distance": False,
    "confirmed_share": True,
    "rot_err_deg": False,
    "trans_err": False,
    "camera_words": True,
}
V2V_FAST = ("psnr", "ssim")
V2V_ALL = ("psnr", "ssim", "perceptual_distance", "confirmed_share", "rot_err_deg", "trans_err")
T2V_ALL = ("camera_words",)


def truth_metrics(
    video: Tensor,  # [B, F, H, W, 3] in [0, 1]
    truth: Tensor,  # [B, F, H, W, 3] in [0, 1], the true output
    conditioning: str,
    *,
    full: bool = False,
    truth_depth: Tensor | None = None,  # [B, F, H, W], for the evaluator (full, v2v)
    target_w2c: Tensor | None = None,  # [B, F, 4, 4], for the evaluator (full, v2v)
    intrinsics: Tensor | None = None,  # [B, 3, 3], for the evaluator (full, v2v)
    perceptual=None,  # an object with distance(a, b) over frames; built when None (full, v2v)
) -> dict[str, Tensor]:
    """``{metric: [B] float64}``, NaN for samples with non-finite pixels. ``full`` adds the
    perceptual distance and the evaluator (slower: DIS flow and PnP on every frame)."""
    finite = torch.isfinite(video.flatten(1)).all(dim=1)
    rows = finite.nonzero().flatten()
    b = video.shape[0]
    if conditioning in ("camera_v2v", "reproj_v2v"):
        names = V2V_ALL if full else V2V_FAST
    else:
        names = T2V_ALL
    out = {name: torch.full((b,), math.nan, dtype=torch.float64) for name in names}
    if rows.numel() == 0:
        return out
    v, t = video[rows], truth[rows]
    if "camera_words" in out:
        from geogrpo.eval.camera_words import camera_word_agreement

        out["camera_words"][rows] = camera_word_agreement(v, t).double()
        return out
    out["psnr"][rows] = psnr_per_sample(v, t)
    out["ssim"][rows] = ssim_per_sample(v, t)
    if not full:
        return out
    out["perceptual_distance"] = perceptual_distances(video, truth, rows, perceptual)
    if truth_depth is None or target_w2c is None or intrinsics is None:
        raise ValueError(
            "truth_depth/target_w2c/intrinsics: the evaluator's metrics (full=True) need the "
            "true depth, the requested cameras and the intrinsics"
        )
    evaluations = camera_evaluations(video, truth, truth_depth, target_w2c, intrinsics, rows)
    out.update(evaluator_values(evaluations, b))
    return out


def perceptual_distances(
    video: Tensor,  # [B, F, H, W, 3]
    truth: Tensor,  # [B, F, H, W, 3]
    rows: Tensor,  # [R] samples to score (the others stay NaN)
    perceptual=None,  # an object with distance(a, b) over frames; built when None
) -> Tensor:
    """``[B]`` float64: the mean over frames of the perceptual distance to the truth."""
    if perceptual is None:
        from geogrpo.perception.perceptual import EncoderPerceptualDistance

        perceptual = EncoderPerceptualDistance()
    out = torch.full((video.shape[0],), math.nan, dtype=torch.float64)
    for i in rows.tolist():
        out[i] = float(perceptual.distance(video[i], truth[i]).mean())
    return out


def camera_evaluations(
    video: Tensor,  # [B, F, H, W, 3]
    truth: Tensor,  # [B, F, H, W, 3]
    truth_depth: Tensor,  # [B, F, H, W]
    target_w2c: Tensor,  # [B, F, 4, 4]
    intrinsics: Tensor,  # [B, 3, 3]
    rows: Tensor,  # [R] samples to evaluate
) -> dict:
    """``{sample: CameraEvaluation}``: the world evaluator's registration of every frame."""
    from geogrpo.world.evaluator import evaluate_cameras

    return {
        i: evaluate_cameras(
            video[i].clamp(0, 1), truth[i], truth_depth[i], intrinsics[i], target_w2c[i]
        )
        for i in rows.tolist()
    }


def evaluator_values(evaluations: dict, batch_size: int) -> dict[str, Tensor]:
    """Confirmed share (matched fraction of frames), RotErr (degrees) and TransErr ``[B]`` of
    :func:`camera_evaluations` (NaN for samples not evaluated)."""
    out = {
        k: torch.full((batch_size,), math.nan, dtype=torch.float64)
        for k in ("confirmed_share", "rot_err_deg", "trans_err")
    }
    for i, evaluation in evaluations.items():
        summary = evaluation.summary()
        out["confirmed_share"][i] = summary["matched_fraction"]
        out["rot_err_deg"][i] = summary["rot_err_deg"]
        out["trans_err"][i] = summary["trans_err"]
    return out
