"""World-R1's 3D-aware reward, ``R_3D = S_recon + S_meta + S_traj`` (analysis by synthesis).

The estimated cameras and depth lift the video into Gaussian splats
(:mod:`geogrpo.geometry.splat_fit`); the splats are fitted to every ``fit_every``-th frame and
re-rendered:

* ``S_recon = 1 - d(render, frame)``, ``d`` a perceptual distance (World-R1: LPIPS; embedded
  default: :class:`~geogrpo.perception.perceptual.EncoderPerceptualDistance`), clamped to
  [0, 1]. Measured on the frames that were **not** fitted when ``fit_every > 1`` (our choice: on
  the fitted frames a flexible enough fit reproduces even inconsistent frames, on the others
  only a consistent scene does).
* ``S_meta``: renders from orbited, off-trajectory cameras scored by a view judge (World-R1:
  Qwen3-VL asked whether the structure is reliable; here any ``judge.score(images) -> [N]`` in
  [0, 1]: :class:`~geogrpo.perception.judge.QwenVLViewJudge`, or the quality scorer).
* ``S_traj``: the trajectory reward of the same estimate against ``batch.target_w2c``; it keeps a
  static video from winning the reconstruction terms.

The reward is the weighted mean of the terms with positive weight (World-R1 sums three equally
weighted terms; the mean keeps the score in [0, 1]).

Devices: a clip is lifted, fitted and rendered on the batch's device; the splats' pixels are drawn
from a CPU generator (the same splats on every device); the models it builds itself (the
embedded perceptual distance, a judge named by a string) are put on ``device`` (None: the CPU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from geogrpo.camera.se3 import scale_intrinsics
from geogrpo.geometry.splat_fit import fit_splats, orbit_views, render_views, splats_from_depth
from geogrpo.perception.base import GeometryEstimator
from geogrpo.rewards.base import (
    RewardBatch,
    RewardOutput,
    finalize,
)
from geogrpo.rewards.fidelity import masked_psnr
from geogrpo.rewards.geometry import TrajectoryReward, _estimator, _geometry
from geogrpo.utils.checks import check_int_range, check_positive
from geogrpo.utils.video import resize_frames


class ReconstructionReward:
    """World-R1's R_3D (Sec. 3.2): reconstruction fidelity, meta-view judgement, trajectory."""

    name = "reconstruction"
    diagnostics = ("recon", "meta", "traj", "recon_psnr", "fit_l1")

    def __init__(
        self,
        estimator: GeometryEstimator,
        perceptual: Any | None = None,
        judge: Any | str | None = "tiny-quality",
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        fit_every: int = 4,
        fit_size: int = 32,
        eval_size: int = 48,
        max_splats: int = 400,
        steps: int = 10,
        lr: float = 0.05,
        meta_angle_deg: float = 15.0,
        confidence_threshold: float = 0.5,
        trajectory: dict[str, Any] | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
    ) -> None:
        self.estimator = _estimator(estimator)
        if len(weights) != 3 or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f"weights: expected three non-negative weights (recon, meta, traj) with a "
                f"positive sum, got {weights}"
            )
        self.weights = tuple(float(w) for w in weights)
        if perceptual is None and self.weights[0] > 0:
            from geogrpo.perception.perceptual import EncoderPerceptualDistance

            perceptual = EncoderPerceptualDistance(device=device)
        self.perceptual = perceptual
        if isinstance(judge, str) and self.weights[1] > 0:
            from geogrpo.perception.judge import make_judge

            judge = make_judge(judge, device)
        if self.weights[1] > 0 and judge is None:
            raise ValueError("judge: S_meta has weight > 0 but no judge; pass one or weight 0")
        self.judge = judge
        self.trajectory = (
            TrajectoryReward(self.estimator, **(trajectory or {})) if self.weights[2] > 0 else None
        )
        self.fit_every = check_int_range("fit_every", fit_every, 1)
        self.fit_size = check_int_range("fit_size", fit_size, 4)
        self.eval_size = check_int_range("eval_size", eval_size, 4)
        self.max_splats = check_int_range("max_splats", max_splats, 1)
        self.steps = check_int_range("steps", steps, 0)
        self.lr = check_positive("lr", lr)
        self.meta_angle_deg = check_positive("meta_angle_deg", meta_angle_deg)
        self.confidence_threshold = confidence_threshold
        self.seed = seed

    def score_clip(
        self,
        frames: Tensor,  # [F, H, W, 3]
        depth: Tensor,  # [F, H, W]
        confidence: Tensor,  # [F, H, W]
        w2c: Tensor,  # [F, 4, 4]
        intrinsics: Tensor,  # [F, 3, 3]
    ) -> dict[str, Tensor]:
        """S_recon, S_meta and diagnostics of one clip (no trajectory term: that is batched)."""
        f, h, w = frames.shape[:3]
        device = frames.device
        fit_idx = torch.arange(0, f, self.fit_every, device=device)
        held = torch.tensor(
            [i for i in range(f) if i % self.fit_every], dtype=torch.long, device=device
        )
        eval_idx = held if held.numel() else fit_idx
        pose = w2c.float()

        def at(size: int, idx: Tensor) -> tuple[Tensor, Tensor]:
            small = resize_frames(frames[idx].float(), size, "area")
            sh, sw = small.shape[1:3]
            return small, scale_intrinsics(intrinsics[idx].double(), sw / w, sh / h).float()

        small, k_small = at(self.fit_size, fit_idx)
        d_small = resize_frames(depth[fit_idx, ..., None].float(), self.fit_size, "nearest")[..., 0]
        c_small = resize_frames(confidence[fit_idx, ..., None].float(), self.fit_size, "nearest")[
            ..., 0
        ]
        static = (c_small >= self.confidence_threshold).float()
        gen = torch.Generator().manual_seed(self.seed)
        init = splats_from_depth(
            small, d_small, pose[fit_idx], k_small, self.max_splats, static, gen
        )
        fit = fit_splats(init, small, pose[fit_idx], k_small, self.steps, self.lr)
        out: dict[str, Tensor] = {"fit_l1": fit.losses[-1]}
        with torch.no_grad():
            if self.weights[0] > 0:
                truth, k_eval = at(self.eval_size, eval_idx)
                eh, ew = truth.shape[1:3]
                renders, _ = render_views(
                    fit.splats, fit.background, pose[eval_idx], k_eval, eh, ew
                )
                out["recon"] = (1 - self.perceptual.distance(renders, truth).mean()).clamp(0, 1)
                ones = torch.ones(truth.shape[:3], dtype=torch.bool, device=device)
                out["recon_psnr"] = masked_psnr(renders[None], truth[None], ones[None])[0]
            if self.weights[1] > 0:
                anchors = torch.unique(torch.tensor([0, f // 2, f - 1], device=device))
                pivot = torch.stack(
                    [
                        d[d > 0].median() if (d > 0).any() else d.new_tensor(1.0)
                        for d in depth[anchors]
                    ]
                ).float()
                views = orbit_views(pose[anchors], pivot, self.meta_angle_deg)  # [2 A, 4, 4]
                _, k_anchor = at(self.eval_size, anchors)
                eh, ew = round(self.eval_size), round(self.eval_size * w / h)
                meta, _ = render_views(
                    fit.splats, fit.background, views, k_anchor.repeat(2, 1, 1), eh, ew
                )
                out["meta"] = self.judge.score(meta.clamp(0, 1)).float().mean().to(device)
        return out

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        geo, masked = _geometry(batch, self.estimator, 2, self.diagnostics)
        if masked is not None:
            return masked
        assert geo is not None and batch.video is not None
        b = geo.batch_size
        valid, reasons = geo.valid.clone(), list(geo.reasons)
        nan = torch.tensor(float("nan"))
        terms = {name: [nan] * b for name in self.diagnostics}
        if self.trajectory is not None:
            traj = self.trajectory(batch)
            terms["traj"] = list(torch.where(traj.valid, traj.scores, nan))
            for i in range(b):
                if valid[i] and not traj.valid[i]:
                    valid[i], reasons[i] = False, f"trajectory term: {traj.reasons[i]}"
        for i in range(b):
            if not valid[i]:
                continue
            try:
                clip = self.score_clip(
                    batch.video[i], geo.depth[i], geo.confidence[i], geo.w2c[i], geo.intrinsics[i]
                )
            except ValueError as err:  # e.g. no pixel with depth: nothing to reconstruct
                valid[i], reasons[i] = False, f"reconstruction failed: {err}"
                continue
            for name, value in clip.items():
                terms[name][i] = value.detach().float().cpu()
        stacked = {
            name: torch.stack([torch.as_tensor(v).float() for v in vals])
            for name, vals in terms.items()
        }
        used = [
            (w, stacked[n])
            for w, n in zip(self.weights, ("recon", "meta", "traj"), strict=True)
            if w > 0
        ]
        total = sum(w * s for w, s in used) / sum(w for w, _ in used)
        return finalize(total, valid, reasons, stacked)
