"""Evaluation suites run by ``geogrpo eval --suite S``: a thin shell that builds the policy, the
held-out conditions and the rewards from a recipe, runs a measurement, and writes per-sample
JSONL, a summary JSON and a Markdown table into ``--out``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from geogrpo.utils.io import (
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    state_dict_sha256,
)


@dataclass
class RewardFidelitySettings:
    """What ``geogrpo eval --suite reward-fidelity`` measures; None = the recipe's value."""

    policy: str | None = None  # shipped name, saved folder or GRPO run folder
    rewards: list[dict[str, Any]] = field(default_factory=list)  # RewardSpec-like dicts
    split: str = "val"
    conditions: int = 6
    group_size: int | None = None
    noise_level: float | None = None
    sde_kind: str | None = None
    num_inference_steps: int | None = None
    plan: str | None = None  # "full" or "window:START[:SIZE]"
    seed: int = 0
    full_truth: bool = True
    progress: bool = True


def parse_reward(text: str) -> dict[str, Any]:
    """``name`` or ``name:{json options}`` -> a RewardSpec-like dict with a ``label``."""
    name, _, options = text.partition(":")
    try:
        opts = json.loads(options) if options else {}
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--reward: {text!r}: the options after ':' must be a JSON object, e.g. "
            f"'view_fidelity:{{\"weights\": [1, 1, 0, 0]}}' ({err.msg})"
        ) from None
    if not isinstance(opts, dict):
        raise ValueError(f"--reward: {text!r}: the options after ':' must be a JSON object")
    label = name if not opts else f"{name}{json.dumps(opts, separators=(',', ':'))}"
    return {"name": name, "weight": 1.0, "options": opts, "label": label}


def parse_plan(text: str, num_steps: int, default_window: int, shift: float = 3.0):
    """``full`` (every step stochastic) or ``window:START[:SIZE]`` (SDE on steps START ..
    START + SIZE - 1, ODE elsewhere: MixGRPO's window at one position) on a grid of
    ``num_steps``."""
    from geogrpo.rl.schedules import StepPlan, flow_matching_timesteps

    grid = flow_matching_timesteps(num_steps, shift)
    if text == "full":
        return StepPlan(grid, (True,) * num_steps, (True,) * num_steps)
    kind, _, rest = text.partition(":")
    parts = rest.split(":") if rest else []
    if kind != "window" or not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
        raise ValueError(
            f"--plan: {text!r} is not 'full' or 'window:START[:SIZE]' (e.g. window:0:3)"
        )
    start = int(parts[0])
    size = int(parts[1]) if len(parts) == 2 else default_window
    if size < 1 or start + size > num_steps:
        raise ValueError(
            f"--plan: window {start}..{start + size - 1} does not fit {num_steps} steps"
        )
    flags = tuple(start <= i < start + size for i in range(num_steps))
    return StepPlan(grid, flags, flags)


def default_plan(config) -> str:
    """The recipe's plan at its first iteration, as :func:`parse_plan` text."""
    s = config.sampling
    if s.schedule in ("sliding_window", "flow_grpo_fast"):
        return f"window:0:{s.window_size}"
    return "full"


def run_reward_fidelity(config, settings: RewardFidelitySettings, out: str | Path) -> dict:
    """Sample groups on held-out conditions with the recipe's training sampler, score them with
    the rewards and the ground truth, and write ``samples.jsonl``, ``summary.json`` and
    ``table.md`` into ``out``. Returns the summary."""
    from geogrpo.eval.reward_fidelity import format_table, sample_groups, score_groups
    from geogrpo.recipes.build import Shared, build_rewards
    from geogrpo.train.conditions import estimate_source_geometry, from_items, load_items
    from geogrpo.train.config import RewardSpec
    from geogrpo.train.trainer import load_policy
    from geogrpo.world.datasets import SPLITS

    held_out = [name for name, spec in SPLITS.items() if not spec.trainable]
    if settings.split not in held_out:
        raise ValueError(
            f"--split: {settings.split!r} is not a held-out split; use one of {', '.join(held_out)}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.model.torch_threads)
    s = config.sampling
    name = settings.policy or config.model.policy
    policy = load_policy(name).requires_grad_(False)
    conditioning = policy.conditioning.name
    specs = settings.rewards or [
        {"name": r.name, "weight": r.weight, "options": dict(r.options), "label": r.name}
        for r in config.rewards.rewards
    ]
    shared = Shared(config.rewards.estimator, dict(config.rewards.estimator_options))
    built = build_rewards(
        [RewardSpec(sp["name"], sp["weight"], sp["options"]) for sp in specs], shared
    )
    rewards = [(sp["label"], reward) for sp, (_, _, reward) in zip(specs, built, strict=True)]
    kind = config.data.kind
    if (kind == "clips") != (conditioning in ("t2v", "warped_noise_t2v")):
        kind = "clips" if conditioning in ("t2v", "warped_noise_t2v") else "pairs"
    items = load_items(config.data, settings.split, settings.conditions, kind)
    reference = config.rewards.reference_geometry if kind != "clips" else "world"
    if reference == "estimated":
        items = estimate_source_geometry(items, shared.estimator())
    conditions = from_items(items, conditioning, reference)
    steps = settings.num_inference_steps or s.num_inference_steps
    plan_text = settings.plan or default_plan(config)
    plan = parse_plan(plan_text, steps, s.window_size, s.shift)
    group = settings.group_size or s.group_size
    noise_level = settings.noise_level if settings.noise_level is not None else s.noise_level
    sde_kind = settings.sde_kind or s.sde_kind
    videos, latents = sample_groups(
        policy,
        conditions,
        group,
        plan,
        noise_level,
        sde_kind,
        seed=settings.seed,
        micro_batch=s.micro_batch_size,
        guidance_scale=s.guidance_scale,
        progress=settings.progress,
    )
    scores = score_groups(
        videos,
        latents,
        conditions,
        rewards,
        conditioning,
        full_truth=settings.full_truth,
        progress=settings.progress,
    )
    table = scores.table(seed=settings.seed)
    summary = {
        "suite": "reward-fidelity",
        "recipe": config.recipe,
        "policy": name,
        "estimator": config.rewards.estimator,
        "reference_geometry": reference,
        "split": settings.split,
        "conditions": settings.conditions,
        "group_size": group,
        "noise_level": noise_level,
        "sde_kind": sde_kind,
        "num_inference_steps": steps,
        "plan": plan_text,
        "seed": settings.seed,
        "truth_spread": {metric: _spread(values) for metric, values in scores.truth.items()},
        "table": table,
    }
    lines = [json.dumps(row) for row in scores.samples()]
    atomic_write_text(out / "samples.jsonl", "\n".join(lines) + "\n")
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "table.md", _markdown(summary, format_table(table)))
    return summary


def _spread(values: torch.Tensor) -> dict[str, float]:
    from geogrpo.eval.reward_fidelity import spread

    within, across = spread(values)
    return {"within_group_std": within, "across_condition_std": across}


def _markdown(summary: dict, table: str) -> str:
    head = (
        f"reward fidelity: {summary['policy']} ({summary['recipe']} recipe, estimator "
        f"{summary['estimator']}), {summary['conditions']} {summary['split']} conditions x "
        f"G = {summary['group_size']}, {summary['num_inference_steps']} steps, plan "
        f"{summary['plan']}, {summary['sde_kind']} noise level {summary['noise_level']}, "
        f"seed {summary['seed']}"
    )
    spreads = ", ".join(
        f"{m} {v['within_group_std']:.3g} / {v['across_condition_std']:.3g}"
        for m, v in summary["truth_spread"].items()
        if math.isfinite(v["within_group_std"])
    )
    return f"{head}\n\ntruth within-group / across-condition std: {spreads}\n\n{table}\n"


# -- the benchmark suites ------------------------------------------------------------------------

HELD_OUT_SPLITS = ("val", "heldout_shapes", "heldout_photo")
V2V_CONDITIONINGS = ("camera_v2v", "reproj_v2v")
T2V_CONDITIONINGS = ("t2v", "warped_noise_t2v")

# metric -> (higher is better, what it is); each suite reports a subset
METRICS: dict[str, tuple[bool, str]] = {
    "psnr": (True, "PSNR (dB) against the true target video"),
    "ssim": (True, "SSIM against the true target video"),
    "perceptual_distance": (False, "embedded perceptual distance to the true target (LPIPS-like)"),
    "psnr_nocc": (True, "PSNR (dB) against the truth on pixels visible in the source (Nocc)"),
    "ssim_nocc": (True, "SSIM against the truth on pixels visible in the source (Nocc)"),
    "confirmed_share": (True, "share of frames the world evaluator registers against the truth"),
    "rot_err_deg": (False, "world evaluator: RotErr over registered frames (degrees, summed)"),
    "trans_err": (False, "world evaluator: TransErr over registered frames (scene units, summed)"),
    "cam_mc": (False, "world evaluator: CamMC over registered frames (metric, summed)"),
    "est_rot_err": (False, "second-opinion estimator: RotErr vs the requested path (rad, summed)"),
    "est_trans_err": (False, "second-opinion estimator: TransErr (max-norm normalised, summed)"),
    "est_cam_mc": (False, "second-opinion estimator: CamMC (max-norm normalised, summed)"),
    "sampson": (False, "Sampson epipolar error (px) of flow matches under a RANSAC F"),
    "sampson_true": (False, "Sampson epipolar error (px) of flow matches under the true F"),
    "reprojection": (False, "depth reprojection error between views, estimated geometry"),
    "reprojection_true": (False, "depth reprojection error, estimated depth + true cameras"),
    "camera_smoothness": (False, "VGGRPO's scale-normalised camera acceleration (estimated)"),
    "camera_words": (True, "cosine of the image motion with the true render's (caption words)"),
    "traj_rot_err": (False, "estimated camera vs the caption's parsed path: RotErr (rad)"),
    "traj_trans_err": (False, "estimated camera vs the parsed path: TransErr (max-norm)"),
    "recon_psnr": (True, "splats fitted on even frames, PSNR (dB) on the odd generated frames"),
    "recon_psnr_truth": (True, "the same splats' odd views against the true render (dB)"),
    "flicker": (True, "temporal flicker proxy, VBench 'temporal flickering' (1 = steady)"),
    "motion_smoothness": (True, "frame-interpolation proxy of VBench 'motion smoothness'"),
    "quality": (True, "tiny-quality scorer (stand-in for VBench aesthetic/imaging quality)"),
}
PROXIES = ("flicker", "motion_smoothness", "quality")
# --policy truth scores the world's true outputs: PSNR's ceiling, the estimators' own error
TRUTH = "truth"


@dataclass(frozen=True)
class Suite:
    conditionings: tuple[str, ...]
    metrics: tuple[str, ...]
    what: str


SUITES: dict[str, Suite] = {
    "camera_v2v": Suite(
        V2V_CONDITIONINGS,
        (
            "psnr",
            "ssim",
            "perceptual_distance",
            "psnr_nocc",
            "ssim_nocc",
            "confirmed_share",
            "rot_err_deg",
            "trans_err",
            "cam_mc",
            "est_rot_err",
            "est_trans_err",
            "est_cam_mc",
            *PROXIES,
        ),
        "Geo-Align: held-out scenes x the ten presets (+ --trajectories)",
    ),
    "extreme_view": Suite(
        V2V_CONDITIONINGS,
        ("psnr", "ssim", "perceptual_distance", "psnr_nocc", "ssim_nocc", *PROXIES),
        "DEVIS-GRPO: 60 and 90 degree orbits and bullet-time orbits of held-out scenes",
    ),
    "world_consistency": Suite(
        T2V_CONDITIONINGS,
        (
            "sampson",
            "sampson_true",
            "reprojection",
            "reprojection_true",
            "camera_smoothness",
            "camera_words",
            *PROXIES,
        ),
        "VGGRPO: epipolar and reprojection consistency of held-out captions' clips, beside the "
        "truth of their camera motion (a static clip is consistent and wrong)",
    ),
    "t2v_camera": Suite(
        T2V_CONDITIONINGS,
        (
            "camera_words",
            "traj_rot_err",
            "traj_trans_err",
            "recon_psnr",
            "recon_psnr_truth",
            *PROXIES,
        ),
        "World-R1: camera words, the parsed path and reconstruction of held-out views",
    ),
}


@dataclass
class SuiteSettings:
    """What ``geogrpo eval --suite S`` evaluates; None = the recipe's value."""

    suite: str
    policy: str | None = None
    splits: tuple[str, ...] = HELD_OUT_SPLITS
    scenes: int = 2  # v2v: scenes per split (x the suite's paths); t2v: captions per split
    trajectories: str | None = None  # camera_v2v: a JSON file of named relative paths
    paths: tuple[str, ...] = ()  # v2v suites: evaluate only these of their paths (() = all)
    num_inference_steps: int | None = None
    seed: int = 0
    videos: int = 2  # per split: conditions whose clip and cameras are written
    second_opinion: str | None = None  # estimator the training rewards do not use
    batch: int = 8
    progress: bool = True

    def __post_init__(self) -> None:
        from geogrpo.world.datasets import SPLITS

        if self.suite not in SUITES:
            raise ValueError(
                f"--suite: unknown suite {self.suite!r}; choose one of "
                f"{', '.join([*SUITES, 'reward-fidelity'])}"
            )
        if not self.splits:
            raise ValueError("--split: name at least one held-out split")
        for split in self.splits:
            if split not in SPLITS or SPLITS[split].trainable:
                raise ValueError(
                    f"--split: {split!r} is not a held-out split; use {', '.join(HELD_OUT_SPLITS)}"
                )
        if self.scenes < 1:
            raise ValueError(f"--n: need at least one scene per split, got {self.scenes}")
        if self.trajectories and self.suite != "camera_v2v":
            raise ValueError("--trajectories: user paths are evaluated by --suite camera_v2v")
        if self.paths and self.suite not in ("camera_v2v", "extreme_view"):
            raise ValueError("--paths: only the v2v suites (camera_v2v, extreme_view) have paths")
        if self.batch < 1 or self.videos < 0:
            raise ValueError("batch/videos: batch >= 1 and videos >= 0")


def check_suite_policy(suite: str, conditioning: str, policy: str) -> None:
    """A clear error for a policy that cannot be conditioned the way ``suite`` conditions."""
    accepted = SUITES[suite].conditionings
    if conditioning not in accepted:
        others = [name for name, s in SUITES.items() if conditioning in s.conditionings]
        raise ValueError(
            f"--policy: {policy} is a {conditioning} policy; --suite {suite} conditions "
            f"{' or '.join(accepted)} policies. Evaluate it with --suite "
            f"{' or '.join(others)} instead"
        )


def second_opinion_estimator(config, suite: str, name: str | None) -> str:
    """An estimator the recipe's rewards do not read: ``classical`` (OpenCV, no learned model)
    for camera paths of v2v suites, ``flow_pnp`` (metric depth + cameras) for t2v suites."""
    if name:
        return name
    used = config.rewards.estimator
    if suite in ("camera_v2v", "extreme_view"):
        return "classical" if used != "classical" else "tinygeo"
    return "flow_pnp" if used != "flow_pnp" else "tinygeo"


def _stable_seed(seed: int, cid: str) -> int:
    import hashlib

    digest = hashlib.sha256(f"{seed}/{cid}".encode()).digest()
    return int.from_bytes(digest[:6], "little")


def _sample(policy, batch, ids: list[str], steps: int, shift: float, seed: int, guidance: float):
    """ODE samples ``[B, F, H, W, 3]`` in [0, 1]; each condition's noise from its own id, so a
    sample does not depend on the batch it was drawn in."""
    from geogrpo.rl.rollout import denoise
    from geogrpo.rl.schedules import flow_matching_timesteps, ode_plan
    from geogrpo.train.rollout import policy_velocity
    from geogrpo.utils.video import model_to_frames

    f, (h, w) = batch.inputs.num_frames, batch.inputs.image_size
    noise = []
    for i, cid in enumerate(ids):
        one = batch.select([i])
        condition = policy.prepare(one.prompts, one.inputs, guidance_scale=guidance)
        gen = torch.Generator().manual_seed(_stable_seed(seed, cid))
        noise.append(policy.initial_noise(condition, f, h, w, gen))
    condition = policy.prepare(batch.prompts, batch.inputs, guidance_scale=guidance)
    plan = ode_plan(flow_matching_timesteps(steps, shift))
    path = denoise(policy_velocity(policy, condition), torch.cat(noise), plan, keep="none")
    return model_to_frames(policy.decode(path.latents)).clamp(0, 1).cpu()


class SuiteScorer:
    """The suites' metrics for a batch of outputs; the models it reads (perceptual encoder,
    quality scorer, second-opinion estimator) are built once, on first use."""

    def __init__(self, suite: str, estimator: str, quality: str = "tiny-quality") -> None:
        self.suite, self.estimator_name, self.quality_name = suite, estimator, quality
        self._models: dict[str, Any] = {}

    def _model(self, name: str):
        if name not in self._models:
            if name == "perceptual":
                from geogrpo.perception.perceptual import EncoderPerceptualDistance

                self._models[name] = EncoderPerceptualDistance()
            elif name == "quality":
                from geogrpo.perception.quality import TinyQualityScorer

                self._models[name] = TinyQualityScorer.from_pretrained(self.quality_name)
            else:
                from geogrpo.recipes.build import build_estimator

                self._models[name] = build_estimator(self.estimator_name)
        return self._models[name]

    def __call__(
        self, video: Tensor, batch, items: list[dict[str, Any]]
    ) -> tuple[dict[str, Tensor], list[dict[str, Any]]]:
        """``({metric: [B] float64}, [per-sample cameras: requested / estimated / true])`` for
        outputs ``video`` ``[B, F, H, W, 3]`` of conditions ``batch`` (world ``items``)."""
        b = video.shape[0]
        out = {
            m: torch.full((b,), math.nan, dtype=torch.float64) for m in SUITES[self.suite].metrics
        }
        cameras: list[dict[str, Any]] = [{} for _ in range(b)]
        if self.suite in ("camera_v2v", "extreme_view"):
            self._image_metrics(video, batch, items, out)
        if self.suite == "camera_v2v":
            self._camera_metrics(video, batch, out, cameras)
        if self.suite == "world_consistency":
            self._consistency_metrics(video, batch, out, cameras)
        if self.suite == "t2v_camera":
            self._t2v_camera_metrics(video, batch, out, cameras)
        self._proxies(video, out)
        return out, cameras

    def _image_metrics(self, video, batch, items, out) -> None:
        from geogrpo.eval.metrics import (
            masked_psnr,
            masked_ssim,
            psnr_per_sample,
            ssim_per_sample,
            visible_from_source_mask,
        )
        from geogrpo.eval.truth import perceptual_distances

        out["psnr"] = psnr_per_sample(video, batch.truth)
        out["ssim"] = ssim_per_sample(video, batch.truth)
        every = torch.arange(video.shape[0])
        out["perceptual_distance"] = perceptual_distances(
            video, batch.truth, every, self._model("perceptual")
        )
        visible = torch.stack(
            [
                visible_from_source_mask(
                    it["source_depth"], it["source_w2c"], it["target_w2c"], it["intrinsics"]
                )
                for it in items
            ]
        )  # [B, F, H, W]
        out["psnr_nocc"] = masked_psnr(video, batch.truth, visible)
        out["ssim_nocc"] = masked_ssim(video, batch.truth, visible)

    def _camera_metrics(self, video, batch, out, cameras) -> None:
        from geogrpo.camera.metrics import cam_mc, rot_err, trans_err
        from geogrpo.eval.truth import camera_evaluations, evaluator_values

        requested = batch.target_w2c.double()
        evaluations = camera_evaluations(
            video,
            batch.truth,
            batch.truth_depth,
            requested,
            batch.intrinsics,
            torch.arange(video.shape[0]),
        )
        out.update(evaluator_values(evaluations, video.shape[0]))
        for i, ev in evaluations.items():
            if int(ev.matched.sum()) >= 2:
                m = ev.matched
                out["cam_mc"][i] = float(cam_mc(ev.actual_w2c[m], requested[i][m], "metric"))
            cameras[i] = {"requested": requested[i], "true": ev.actual_w2c}
        est = self._model("estimator").estimate(video)
        for i in range(video.shape[0]):
            if not bool(est.valid[i]):
                continue
            w2c = est.w2c[i].double()
            out["est_rot_err"][i] = float(rot_err(w2c, requested[i]))
            out["est_trans_err"][i] = float(trans_err(w2c, requested[i], "max_norm"))
            out["est_cam_mc"][i] = float(cam_mc(w2c, requested[i], "max_norm"))
            cameras[i]["estimated"] = _on_path(w2c, requested[i])

    def _consistency_metrics(self, video, batch, out, cameras) -> None:
        from geogrpo.camera.se3 import relative_to_first
        from geogrpo.eval.camera_words import camera_word_agreement
        from geogrpo.eval.video_metrics import (
            camera_path_smoothness,
            sampson_epipolar_error,
            sampson_error_true_cameras,
        )
        from geogrpo.rewards.geometry import reprojection_errors

        out["camera_words"] = camera_word_agreement(video, batch.truth).double()
        est = self._model("estimator").estimate(video)
        for i in range(video.shape[0]):
            true_w2c, k = batch.target_w2c[i].double(), batch.intrinsics[i].double()
            # dense flow matches: 96-pixel generated frames give SIFT a handful of keypoints
            out["sampson"][i] = sampson_epipolar_error(video[i], matcher="flow")
            out["sampson_true"][i] = sampson_error_true_cameras(
                video[i], true_w2c, k, matcher="flow"
            )
            cameras[i] = {"requested": true_w2c}
            if not bool(est.valid[i]):
                continue
            depth, conf = est.depth[i], est.confidence[i]
            w2c, ks = est.w2c[i].double(), est.intrinsics[i].double()
            out["reprojection"][i] = float(reprojection_errors(depth, conf, w2c, ks).nanmean())
            true_rel = relative_to_first(true_w2c)  # as the estimate: first camera at the origin
            out["reprojection_true"][i] = float(
                reprojection_errors(depth, conf, true_rel, ks).nanmean()
            )
            out["camera_smoothness"][i] = camera_path_smoothness(w2c)
            cameras[i]["estimated"] = _on_path(w2c, true_w2c)

    def _t2v_camera_metrics(self, video, batch, out, cameras) -> None:
        from geogrpo.camera.metrics import rot_err, trans_err
        from geogrpo.eval.camera_words import camera_word_agreement
        from geogrpo.eval.reconstruction import heldout_view_psnr

        out["camera_words"] = camera_word_agreement(video, batch.truth).double()
        est = self._model("estimator").estimate(video)
        for i in range(video.shape[0]):
            requested, k = batch.target_w2c[i].double(), batch.intrinsics[i].double()
            cameras[i] = {"requested": requested}
            if not bool(est.valid[i]):
                continue
            w2c = est.w2c[i].double()
            out["traj_rot_err"][i] = float(rot_err(w2c, requested))
            out["traj_trans_err"][i] = float(trans_err(w2c, requested, "max_norm"))
            cameras[i]["estimated"] = _on_path(w2c, requested)
            recon, recon_truth = heldout_view_psnr(
                video[i], est.depth[i], requested, k, truth=batch.truth[i]
            )
            out["recon_psnr"][i], out["recon_psnr_truth"][i] = recon, recon_truth

    def _proxies(self, video, out) -> None:
        from geogrpo.eval.video_metrics import motion_smoothness, temporal_flicker

        out["flicker"] = temporal_flicker(video).double()
        out["motion_smoothness"] = motion_smoothness(video).double()
        scorer = self._model("quality")
        out["quality"] = torch.stack([scorer.score(v).mean() for v in video]).double()


def _on_path(w2c: Tensor, requested: Tensor) -> Tensor:
    """Estimated cameras ``[F, 4, 4]`` (first-frame relative, any scale) drawn in the requested
    path's frame: started at its first camera, scaled to its length (max-norm), for plots."""
    from geogrpo.camera.se3 import camera_centers, relative_to_first

    rel = relative_to_first(w2c)
    c_est = camera_centers(rel).norm(dim=-1).max()
    c_ref = camera_centers(relative_to_first(requested)).norm(dim=-1).max()
    scaled = rel.clone()
    if float(c_est) > 0:
        scaled[:, :3, 3] *= c_ref / c_est
    return scaled @ requested[0]


def _suite_items(
    config, settings: SuiteSettings, split: str, user_paths: dict[str, Tensor] | None
) -> list[tuple[str, dict]]:
    from geogrpo.eval.conditions import t2v_items, v2v_items

    if settings.suite in ("camera_v2v", "extreme_view"):
        return v2v_items(
            settings.suite, split, settings.scenes, config.data, user_paths, settings.paths
        )
    return t2v_items(split, settings.scenes, config.data)


def run_suite(config, settings: SuiteSettings, out: str | Path) -> dict:
    """Evaluate a policy on a suite's held-out conditions, ODE sampler, noise fixed per condition
    id; write ``samples.jsonl`` (every metric of every sample), ``summary.json`` (means with 95 %
    bootstrap intervals over conditions, per split), ``table.md``, clips under ``videos/`` and
    cameras under ``trajectories/``. Samples already in ``out`` under the same settings are
    kept (an interrupted evaluation continues; a finished one is read back)."""
    from tqdm.auto import tqdm

    from geogrpo.eval.conditions import file_stem
    from geogrpo.train.conditions import from_items
    from geogrpo.train.trainer import load_policy
    from geogrpo.utils.video import write_video

    out = _writable_folder(out)
    user_paths = None
    if settings.trajectories:  # checked before any model is loaded or sample drawn
        from geogrpo.camera.io import load_target_paths

        user_paths = load_target_paths(settings.trajectories, config.data.frames)
    torch.set_num_threads(config.model.torch_threads)
    name = settings.policy or config.model.policy
    if name == TRUTH:  # the world's own outputs: each metric's ceiling (or its floor)
        policy, conditioning = None, SUITES[settings.suite].conditionings[0]
    else:
        policy = load_policy(name).requires_grad_(False)
        conditioning = policy.conditioning.name
        check_suite_policy(settings.suite, conditioning, name)
    estimator = second_opinion_estimator(config, settings.suite, settings.second_opinion)
    steps = settings.num_inference_steps or config.sampling.eval_num_inference_steps
    fingerprint = {
        "suite": settings.suite,
        "policy": str(name),
        "policy_digest": state_dict_sha256(policy)[:16] if policy is not None else TRUTH,
        "trajectories": file_sha256(settings.trajectories)[:16] if settings.trajectories else None,
        "paths": list(settings.paths),
        "num_inference_steps": steps,
        "shift": config.sampling.shift,
        "guidance_scale": config.sampling.guidance_scale,
        "seed": settings.seed,
        "estimator": estimator,
        "data": {
            k: getattr(config.data, k) for k in ("frames", "size", "seed", "dynamic_fraction")
        },
    }
    rows = _cached_rows(out, fingerprint, SUITES[settings.suite].metrics)
    atomic_write_json(out / "settings.json", fingerprint)
    scorer = SuiteScorer(settings.suite, estimator)
    current: list[str] = []
    for split in settings.splits:
        items = _suite_items(config, settings, split, user_paths)
        current += [cid for cid, _ in items]
        todo = [(i, cid, item) for i, (cid, item) in enumerate(items) if cid not in rows]
        chunks = [todo[s : s + settings.batch] for s in range(0, len(todo), settings.batch)]
        for chunk in tqdm(
            chunks, desc=f"{settings.suite} {split}", disable=not settings.progress, leave=False
        ):
            ids = [cid for _, cid, _ in chunk]
            chunk_items = [item for _, _, item in chunk]
            batch = from_items(chunk_items, conditioning, "world")
            if policy is None:
                video = batch.truth.clone()
            else:
                with torch.no_grad():
                    video = _sample(
                        policy,
                        batch,
                        ids,
                        steps,
                        config.sampling.shift,
                        settings.seed,
                        config.sampling.guidance_scale,
                    )
            metrics, cameras = scorer(video, batch, chunk_items)
            for j, (index, cid, item) in enumerate(chunk):
                row = {"id": cid, "split": split, "path": item.get("relative_kind", "")}
                row["caption"] = item["caption"]
                row.update({m: _finite_or_none(v[j]) for m, v in metrics.items()})
                rows[cid] = row
                if index < settings.videos:
                    stem = file_stem(cid)
                    write_video(out / "videos" / f"{stem}.mp4", video[j])
                    write_video(out / "videos" / f"{stem}.truth.mp4", batch.truth[j])
                    source = torch.zeros_like(video[j])  # t2v: no source, a black panel
                    if batch.source_frames is not None:
                        source = batch.source_frames[j]
                        write_video(out / "videos" / f"{stem}.source.mp4", source)
                    side = torch.cat([source, video[j], batch.truth[j]], dim=2)
                    write_video(out / "videos" / f"{stem}.side_by_side.mp4", side)
                    _write_cameras(out / "trajectories" / f"{stem}.json", cameras[j])
            _write_rows(out, rows)
    if not current:
        raise ValueError(f"--suite {settings.suite}: no conditions to evaluate")
    return _summarize(out, settings, fingerprint, config, [rows[c] for c in current])


def _writable_folder(out: str | Path) -> Path:
    """``out`` created and writable, checked before any sampling work."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} is a file; name a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_check"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"--out: cannot write to {out} ({err.strerror}); choose another folder"
        ) from None
    return out


def _cached_rows(out: Path, fingerprint: dict, metrics: tuple[str, ...]) -> dict[str, dict]:
    """Rows of an earlier evaluation into ``out`` with the same settings that hold every metric
    the suite reports now; none otherwise."""
    settings, samples = out / "settings.json", out / "samples.jsonl"
    if not (settings.is_file() and samples.is_file()):
        return {}
    try:
        if json.loads(settings.read_text(encoding="utf-8")) != fingerprint:
            return {}
        rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    except json.JSONDecodeError:
        return {}  # a damaged cache is evaluated again
    return {
        row["id"]: row
        for row in rows
        if isinstance(row, dict) and "id" in row and all(m in row for m in metrics)
    }


def _finite_or_none(value: Any) -> float | None:
    x = float(value)
    return x if math.isfinite(x) else None


def _write_rows(out: Path, rows: dict[str, dict]) -> None:
    text = "".join(json.dumps(row) + "\n" for row in rows.values())
    atomic_write_text(out / "samples.jsonl", text)


def _write_cameras(path: Path, cameras: dict[str, Tensor]) -> None:
    def plain(w2c: Tensor | None):
        if w2c is None:
            return None
        return [None if not torch.isfinite(m).all() else m.tolist() for m in w2c.double()]

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {k: plain(cameras.get(k)) for k in ("requested", "estimated", "true")})


def _summarize(out: Path, settings, fingerprint: dict, config, rows: list[dict]) -> dict:
    from geogrpo.eval.stats import mean_with_interval

    metrics = SUITES[settings.suite].metrics
    table: dict[str, dict[str, dict[str, float]]] = {}
    for split in settings.splits:
        mine = [r for r in rows if r["split"] == split]
        table[split] = {
            m: mean_with_interval(
                torch.tensor(
                    [math.nan if r.get(m) is None else r[m] for r in mine], dtype=torch.float64
                ),
                seed=settings.seed,
            )
            for m in metrics
        }
    summary = {
        "suite": settings.suite,
        "what": SUITES[settings.suite].what,
        "policy": fingerprint["policy"],
        "recipe": config.recipe,
        "settings": {**fingerprint, "splits": list(settings.splits), "scenes": settings.scenes},
        "higher_is_better": {m: METRICS[m][0] for m in metrics},
        "descriptions": {m: METRICS[m][1] for m in metrics},
        "conditions": {split: sum(r["split"] == split for r in rows) for split in settings.splits},
        "metrics": table,
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "table.md", suite_table(summary))
    return summary


def suite_table(summary: dict) -> str:
    """Markdown: one row per metric, one column per split, ``mean [low, high]``."""
    splits = list(summary["metrics"])
    head = (
        f"{summary['suite']}: {summary['policy']} ({summary['what']}); conditions per split: "
        + ", ".join(f"{s} {summary['conditions'][s]}" for s in splits)
    )
    lines = [head, "", "| metric | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    for m, better in summary["higher_is_better"].items():
        cells = []
        for split in splits:
            c = summary["metrics"][split][m]
            if not c["n"]:
                cells.append("n/a")
            elif math.isnan(c["ci95_low"]):
                cells.append(f"{c['mean']:.4g} (n={c['n']})")
            else:
                cells.append(f"{c['mean']:.4g} [{c['ci95_low']:.4g}, {c['ci95_high']:.4g}]")
        arrow = "↑" if better else "↓"
        lines.append(f"| {m} {arrow} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
