"""The GRPO trainer: one loop for every method; recipes only change its config.

One step (DESIGN.md "Data through one training step"):

    conditions (N) -> G rollouts each along the step plan (SDE steps keep latents + log-probs)
      -> decode when a reward needs pixels -> rewards [N, G, K] -> advantages [N * G]
      -> for each inner epoch, minibatch, micro-batch and trained step: new log-prob, ratio,
         clipped loss (+ KL to the frozen reference) -> optimizer
      -> log (with the ground truth beside every reward), evaluate, checkpoint

Every random draw of step ``s`` comes from generators seeded by ``(seed, s)``, so a resumed run
rebuilds exactly the conditions, noise and plans it would have drawn; the checkpoint holds the
trainable weights, the optimizer and scheduler states and the step.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from geogrpo.eval.truth import truth_metrics
from geogrpo.models.conditioning import Condition
from geogrpo.models.policy import VideoPolicy
from geogrpo.models.wan import cast_frozen
from geogrpo.perception.quality import LAPLACIAN
from geogrpo.recipes.build import Shared, build_rewards, needs_pixels
from geogrpo.rewards.base import score_isolating_failures
from geogrpo.rl.advantages import clip_advantages, group_advantages, multi_reward_advantages
from geogrpo.rl.losses import gaussian_kl, grpo_step_loss, timestep_loss_weights
from geogrpo.rl.rollout import DenoisingPath, denoise
from geogrpo.rl.schedules import (
    StepPlan,
    flow_grpo_fast_plan,
    flow_matching_timesteps,
    full_sde_plan,
    ode_plan,
    random_subset_plan,
    sliding_window_plan,
)
from geogrpo.rl.sde import SDE_STEPS, sde_step
from geogrpo.train import checkpoint as ckpt
from geogrpo.train import rollout as sampling
from geogrpo.train.conditions import (
    ConditionBatch,
    adevis_stage,
    concat,
    estimate_source_geometry,
    from_items,
    load_items,
)
from geogrpo.train.config import GRPOConfig, config_to_yaml, flatten
from geogrpo.train.distributed import (
    DistributedContext,
    Shard,
    check_same_config,
    check_world_size,
    full_tensor,
    init_distributed,
    is_dtensor,
    parallelize,
    shard_rows,
)
from geogrpo.train.logging import NullLogger, RunLogger
from geogrpo.train.plots import plot_run
from geogrpo.utils.integrity import weight_verification
from geogrpo.utils.io import atomic_write_json, atomic_write_text
from geogrpo.utils.video import model_to_frames, to_uint8, write_video


def seed_for(seed: int, step: int, purpose: str) -> int:
    """A seed for one purpose of one step, the same in every process and on resume."""
    return zlib.crc32(f"{seed}/{step}/{purpose}".encode())


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two ``[G]`` vectors, ties averaged (NaN when either is
    constant)."""
    if a.numel() < 2 or float(a.std()) == 0 or float(b.std()) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(a.double().numpy(), b.double().numpy()).statistic)


def watchdog_stats(video: Tensor, group_size: int | None = None) -> dict[str, float]:
    """Statistics a hacked reward tends to move, of ``[B, F, H, W, 3]`` in [0, 1]: brightness,
    saturation, high-frequency energy and, for groups, the diversity within a group."""
    stats = {k: float(v.mean()) for k, v in watchdog_per_sample(video).items()}
    if group_size is not None:
        stats["diversity"] = float(group_diversity(video, group_size).mean())
    return stats


def watchdog_per_sample(video: Tensor) -> dict[str, Tensor]:
    """:func:`watchdog_stats`' image statistics per sample, ``[B]`` each."""
    lum = video.mean(dim=-1)  # [B, F, H, W]
    lap = torch.nn.functional.conv2d(lum.flatten(0, 1)[:, None], LAPLACIAN.to(lum)[None, None])
    return {
        "brightness": lum.flatten(1).mean(dim=1),
        "saturation": (video.amax(dim=-1) - video.amin(dim=-1)).flatten(1).mean(dim=1),
        "high_frequency": lap.abs().reshape(video.shape[0], -1).mean(dim=1),
    }


def group_diversity(video: Tensor, group_size: int) -> Tensor:
    """Per-pixel std over each group's samples, averaged: ``[B, ...]`` -> ``[B / G]``."""
    groups = video.reshape(-1, group_size, *video.shape[1:])
    return groups.std(dim=1).flatten(1).mean(dim=1)


def peak_memory(device: torch.device) -> dict[str, float]:
    """This process's peak memory so far in GiB: the accelerator's allocations on CUDA, and the
    resident set on the CPU (what an out-of-memory kill looks at)."""
    import resource

    peak = {"memory/peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    if device.type == "cuda":
        peak["memory/peak_cuda_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return peak


def make_deterministic() -> None:
    """Deterministic kernels for this process (``train.deterministic``): the same inputs give
    the same bits on a GPU too. cuBLAS gets a fixed workspace (read when its first handle is
    made, so this runs before the model moves to the GPU), attention runs on the math backend
    (the flash and memory-efficient backwards accumulate with atomics), and any other operation
    without a deterministic kernel raises instead of running (index_add, scatter_add and the
    like on CUDA)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_mem_efficient_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)


@dataclass
class Rollout:
    """Everything one step's groups produced, read and written by each stage of the step."""

    step: int
    conditions: ConditionBatch  # this rank's padded shard [b] of the step's B = N * G
    condition: Condition  # prepared, [b]
    plan: StepPlan
    path: DenoisingPath  # [b]
    shard: Shard  # which of the B global rows the b local rows are (real ones first)
    video: Tensor | None = None  # [b_real, F, H, W, 3] in [0, 1]
    rewards: Tensor | None = None  # [N, G, K], every rank's samples
    reward_valid: Tensor | None = None  # [N, G, K] bool
    advantages: Tensor | None = None  # [b], 0 on padding rows
    sample_mask: Tensor | None = None  # [b] bool: samples of groups with a learning signal
    global_mask: Tensor | None = None  # [B] bool, the same for every rank
    active: list[int] = field(default_factory=list)  # reward indices used this step
    diagnostics: dict[str, float] = field(default_factory=dict)
    fault: Fault | None = None  # why this step's update was skipped (from there on)


@dataclass
class Fault:
    """Why a step was skipped: ``cause`` is reward, advantage, loss or grad."""

    cause: str
    detail: str


class GRPOTrainer:
    """A GRPO run in ``out_dir``; :meth:`train` runs it to ``config.steps``."""

    def __init__(
        self,
        config: GRPOConfig,
        out_dir: str | Path,
        resume: str | None = None,
        ctx: DistributedContext | None = None,
    ) -> None:
        with self._verification(config):
            self._set_up(config, out_dir, resume, ctx)

    @staticmethod
    def _verification(config: GRPOConfig) -> contextlib.AbstractContextManager[None]:
        """``model.verify_weights: false`` loads the run's models and checkpoints unverified
        (their manifests' sha256 unchecked); true leaves the caller's setting as it is."""
        return weight_verification(None if config.model.verify_weights else False)

    def _set_up(
        self,
        config: GRPOConfig,
        out_dir: str | Path,
        resume: str | None,
        ctx: DistributedContext | None,
    ) -> None:
        from geogrpo.recipes.preflight import check_full_scale_files

        check_full_scale_files(config)  # every missing weight file named before anything loads
        self.config = config
        self.out = Path(out_dir)
        d = config.distributed
        self.ctx = ctx or init_distributed(d.backend, d.timeout_s, config.model.device)
        check_same_config(self.ctx, flatten(config.to_dict()))
        check_world_size(
            self.ctx.world_size, config.sampling.conditions_per_step, config.sampling.group_size
        )
        torch.set_num_threads(config.model.torch_threads)
        if config.train.deterministic:
            make_deterministic()
        torch.manual_seed(config.seed)
        self.device = torch.device(config.model.device)
        if self.device.type == "cuda" and self.device.index is None and self.ctx.enabled:
            self.device = torch.device("cuda", self.ctx.local_rank)
        self.policy = VideoPolicy.from_pretrained(
            config.model.policy, conditioning=config.model.conditioning or None
        ).to(self.device)
        if config.model.mixed_precision == "bf16":
            self.policy.autocast_dtype = torch.bfloat16
        self.conditioning = self.policy.conditioning.name
        self._select_trainable()
        if config.model.gradient_checkpointing:
            self.policy.enable_gradient_checkpointing()
        self.reference = self._make_reference()
        parallelize(self.policy.transformer, self.ctx, d.strategy, d.cpu_offload)
        if self.reference is not None and d.strategy == "fsdp":
            parallelize(self.reference, self.ctx, d.strategy, d.cpu_offload)
        if config.model.compile != "no":
            self.policy.compile_blocks(config.model.compile)
        self.trainable = [
            (n, p) for n, p in self.policy.transformer.named_parameters() if p.requires_grad
        ]
        self.shared = Shared(
            config.rewards.estimator, dict(config.rewards.estimator_options), self.device
        )
        self.rewards = build_rewards(config.rewards.rewards, self.shared)
        with self.ctx.main_first():  # rank 0 renders and caches the items, the others read them
            self.pool = self._training_pool()
            self.eval_sets = self._eval_sets()
        params = [p for _, p in self.trainable]
        self.optimizer = torch.optim.AdamW(
            params,
            lr=config.optim.lr,
            betas=tuple(config.optim.betas),
            weight_decay=config.optim.weight_decay,
        )
        warmup = config.optim.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup > 0 else 1.0
        )
        self.step = 0
        self.evals: dict[int, dict[str, Any]] = {}
        self.bad_steps = 0  # skipped steps in a row, up to the step reached
        self.last_fault: Fault | None = None
        if resume is not None:
            self._resume(resume)

    # -- set-up -------------------------------------------------------------------------------

    def _select_trainable(self) -> None:
        cfg = self.config.model
        for p in self.policy.parameters():
            p.requires_grad_(False)
        if cfg.trainable == "lora":
            self.policy.add_lora(cfg.lora_rank, cfg.lora_alpha or None, cfg.lora_parts)
        else:
            self.policy.select_trainable(cfg.trainable)
        if cfg.base_dtype == "bfloat16":
            cast_frozen(self.policy.transformer, torch.bfloat16)

    def _make_reference(self) -> torch.nn.Module | None:
        """The frozen policy KL and the base-tail evaluation compare with: the LoRA base with
        adapters off (no copy), else a frozen copy of the transformer, kept off the optimizer."""
        needed = self.config.rl.kl_beta > 0 or self.config.eval.base_tail_steps > 0
        if not needed or self.config.model.trainable == "lora":
            return None
        ref = copy.deepcopy(self.policy.transformer)
        return ref.requires_grad_(False).eval()

    @contextlib.contextmanager
    def reference_policy(self) -> Iterator[VideoPolicy]:
        """The policy with the reference weights in place, for one forward."""
        if self.config.model.trainable == "lora":
            with self.policy.transformer.disable_adapter():
                yield self.policy
            return
        if self.reference is None:
            raise ValueError("reference: enable rl.kl_beta or eval.base_tail_steps")
        trained = self.policy.transformer
        self.policy.transformer = self.reference
        try:
            yield self.policy
        finally:
            self.policy.transformer = trained

    def _training_pool(self) -> list[dict[str, Any]]:
        from geogrpo.world.datasets import check_training_split

        check_training_split("train")
        if (self.conditioning in ("camera_v2v", "reproj_v2v")) == (
            self.config.data.kind == "clips"
        ):
            raise ValueError(
                f"data.kind: {self.config.data.kind!r} does not condition a {self.conditioning} "
                "policy (v2v policies take pairs or speed_pairs, t2v policies clips)"
            )
        if self.config.data.adevis_strategies and self.conditioning != "reproj_v2v":
            raise ValueError(
                f"data.adevis_strategies: ADEVIS builds reproj_v2v conditions; "
                f"{self.config.model.policy} is a {self.conditioning} policy"
            )
        items = load_items(self.config.data, "train", self.config.data.train_items)
        return self._with_reference_geometry(items)

    def _with_reference_geometry(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """v2v items with the estimated source geometry when the rewards' reference needs it
        (estimated once per item, not per step)."""
        if self.reference_geometry != "estimated":
            return items
        return estimate_source_geometry(items, self.shared.estimator())

    @property
    def reference_geometry(self) -> str:
        """``world`` or ``estimated`` for v2v policies; t2v conditions have no reference."""
        if self.conditioning not in ("camera_v2v", "reproj_v2v"):
            return "world"
        return self.config.rewards.reference_geometry

    def _eval_sets(self) -> dict[str, ConditionBatch]:
        e = self.config.eval
        sets = {}
        if e.train_conditions:
            sets["train"] = from_items(
                self.pool[: e.train_conditions], self.conditioning, self.reference_geometry
            )
        if e.val_conditions:
            kind = "clips" if self.config.data.kind == "clips" else "pairs"
            items = load_items(self.config.data, "val", e.val_conditions, kind)
            items = self._with_reference_geometry(items)
            sets["val"] = from_items(items, self.conditioning, self.reference_geometry)
        return sets

    # -- one step -----------------------------------------------------------------------------

    def plan(self, step: int) -> StepPlan:
        s = self.config.sampling
        grid = flow_matching_timesteps(s.num_inference_steps, s.shift)
        gen = torch.Generator().manual_seed(seed_for(self.config.seed, step, "plan"))
        if s.schedule == "sliding_window":
            return sliding_window_plan(
                grid,
                s.window_size,
                step,
                shift_interval=s.window_shift_interval,
                stride=s.window_stride,
                ode_tail_ratio=s.ode_tail_ratio,
            )
        if s.schedule == "flow_grpo_fast":
            return flow_grpo_fast_plan(grid, s.window_size, s.fast_max_start_fraction, gen)
        if s.schedule == "random_subset":
            return random_subset_plan(grid, s.num_train_steps, gen)
        return full_sde_plan(grid)

    def is_decoupled(self, step: int) -> bool:
        """World-R1's periodic decoupled steps: dynamic scenes, general rewards only."""
        every = self.config.data.decoupled_every
        return every > 0 and (step + 1) % every == 0

    def draw_conditions(self, step: int, gen: torch.Generator) -> ConditionBatch:
        """N conditions of the pool, each repeated G times (per-sample ADEVIS stages for
        DEVIS-GRPO)."""
        s, d = self.config.sampling, self.config.data
        pool = self.pool
        if self.is_decoupled(step):
            dynamic = [it for it in pool if bool(it.get("dynamic", it.get("source_dynamic")).any())]
            pool = dynamic or pool
        picks = torch.randint(len(pool), (s.conditions_per_step,), generator=gen).tolist()
        batch = from_items([pool[i] for i in picks], self.conditioning, self.reference_geometry)
        if not d.adevis_strategies:
            return batch.repeat(s.group_size)
        groups = []
        for n in range(len(batch)):
            base = batch.select([n])
            strategy = d.adevis_strategies[
                int(torch.randint(len(d.adevis_strategies), (1,), generator=gen))
            ]
            groups.append(self._adevis_group(base, strategy, gen))
        return concat(groups)

    def _adevis_group(
        self, base: ConditionBatch, strategy: str, gen: torch.Generator
    ) -> ConditionBatch:
        """DEVIS-GRPO eq. 14: G samples of one target, each with its own random accumulation
        (stage count and increments); earlier stages are sampled with the current policy (ODE,
        no gradient) and their depth estimated by the recipe's estimator."""
        from geogrpo.camera.adevis import sample_group_plans

        d, s = self.config.data, self.config.sampling
        plans = sample_group_plans(
            base.inputs.cameras[0].double(),
            strategy,
            s.group_size,
            int(torch.randint(1 << 30, (1,), generator=gen)),
            max_steps=d.adevis_max_steps,
        )
        members = []
        for plan in plans:
            previous = depth = None
            for stage in plan[:-1]:
                cond = adevis_stage(base, stage, previous, depth)
                previous = self._sample_ode(cond, d.adevis_stage_steps, gen)
                estimate = self.shared.estimator().estimate(previous)
                depth = estimate.depth.float().cpu()  # beside the CPU frames
            members.append(adevis_stage(base, plan[-1], previous, depth))
        return concat(members)

    @torch.no_grad()
    def _sample_ode(self, cond: ConditionBatch, steps: int, gen: torch.Generator) -> Tensor:
        s = self.config.sampling
        condition = self.policy.prepare(cond.prompts, cond.inputs, guidance_scale=s.guidance_scale)
        f, (h, w) = cond.inputs.num_frames, cond.inputs.image_size
        noise = self.policy.initial_noise(condition, f, h, w, gen)
        plan = ode_plan(flow_matching_timesteps(steps, s.shift))
        path = sampling.rollout(
            self.policy, condition, noise, plan, micro_batch=s.micro_batch_size, keep="none"
        )
        return model_to_frames(self.policy.decode(path.latents)).cpu()

    def rollout(self, step: int) -> Rollout:
        """Sample this rank's shard of the step's groups along its plan.

        Every rank draws the same N conditions; sample ``i`` of the B = N x G takes its initial
        and SDE noise from generators seeded by ``(seed, step, i)``, so a sample is the same
        whichever rank, batch or micro-batch it is drawn in."""
        s = self.config.sampling
        gen = torch.Generator().manual_seed(seed_for(self.config.seed, step, "rollout"))
        everything = self.draw_conditions(step, gen)
        shard = self.ctx.shard(len(everything))
        rows = shard.rows()
        conditions = everything.select(rows)
        with torch.no_grad():
            condition = self.policy.prepare(
                conditions.prompts, conditions.inputs, guidance_scale=s.guidance_scale
            )
        f, (h, w) = conditions.inputs.num_frames, conditions.inputs.image_size
        noise_gens = [
            torch.Generator().manual_seed(seed_for(self.config.seed, step, f"noise/{i}"))
            for i in rows
        ]
        noise = torch.cat(
            [
                self.policy.initial_noise(condition.select([j]), f, h, w, g)
                for j, g in enumerate(noise_gens)
            ]
        )
        plan = self.plan(step)
        path = sampling.rollout(
            self.policy,
            condition,
            noise,
            plan,
            s.noise_level,
            s.sde_kind,
            noise_gens,  # they go on from the initial noise to the SDE steps' noise
            micro_batch=s.micro_batch_size,
        )
        return Rollout(
            conditions=conditions, condition=condition, plan=plan, path=path, shard=shard, step=step
        )

    def active_rewards(self, step: int) -> list[int]:
        if not self.is_decoupled(step):
            return list(range(len(self.rewards)))
        keep = self.config.data.decoupled_rewards
        return [k for k, (name, _, _) in enumerate(self.rewards) if name in keep]

    def needs_video(self, step: int, active: list[int]) -> bool:
        every = self.config.logging.truth_every
        if any(needs_pixels(self.rewards[k][2]) for k in active):
            return True
        return every > 0 and step % every == 0

    def decode(self, rollout: Rollout) -> Tensor:
        """This rank's real samples as frames ``[b_real, F, H, W, 3]``."""
        latents = rollout.path.latents[: rollout.shard.real]
        with torch.no_grad():
            chunks = [
                self.policy.decode(x) for x in latents.split(self.config.sampling.micro_batch_size)
            ]
        return model_to_frames(torch.cat(chunks)).cpu()

    def _real(self, rollout: Rollout) -> ConditionBatch:
        return rollout.conditions.select(list(range(rollout.shard.real)))

    def score(self, rollout: Rollout) -> None:
        """Rewards ``[N, G, K]`` (masked samples kept apart), advantages, and diagnostics."""
        s, rl = self.config.sampling, self.config.rl
        g, shard = s.group_size, rollout.shard
        # moved to the reward models' device once, for every reward (scores come back on the CPU)
        latents = rollout.path.latents[: shard.real]
        batch = self._real(rollout).reward_batch(rollout.video, latents).to(self.device)
        scores, valid, failures = [], [], []
        for k in rollout.active:
            _, _, reward = self.rewards[k]
            out, failed = score_isolating_failures(reward, batch)
            scores.append(out.scores.double())
            valid.append(out.valid)
            failures += [f"sample {shard.start + i}: {why}" for i, why in failed.items()]
        failures = [f for part in self.ctx.gather_objects(failures) for f in part]
        # every rank's samples, so that groups split over ranks normalise as one
        r = self.ctx.gather_rows(torch.stack(scores, dim=-1)).reshape(-1, g, len(scores))
        v = self.ctx.gather_rows(torch.stack(valid, dim=-1)).reshape(-1, g, len(scores))
        weights = torch.tensor([self.rewards[k][1] for k in rollout.active], dtype=torch.float64)
        if rl.per_reward:
            adv = multi_reward_advantages(r, weights, rl.aggregate, rl.std_mode, sample_valid=v)
        else:
            combined = (r * weights).sum(dim=-1)
            adv = group_advantages(combined, rl.std_mode, sample_valid=v.all(dim=-1))
        flat, group_mask = adv.flat()
        sample_ok = v.all(dim=-1).reshape(-1)
        if failures:
            rollout.diagnostics["fault/reward_masked"] = float(len(failures))
            self._warn(
                f"step {rollout.step}: masked {len(failures)} sample(s) a reward failed on: "
                + "; ".join(failures)
            )
            if not sample_ok.any():
                rollout.fault = Fault("reward", f"no sample left to learn from ({failures[0]})")
        if not torch.isfinite(flat).all():
            bad = int((~torch.isfinite(flat)).sum())
            rollout.fault = rollout.fault or Fault(
                "advantage", f"{bad} of {flat.numel()} advantages are not finite"
            )
            flat = torch.nan_to_num(flat, nan=0.0, posinf=0.0, neginf=0.0)
        rollout.rewards, rollout.reward_valid = r, v
        rollout.global_mask = group_mask & sample_ok
        every = clip_advantages(flat, rl.adv_clip_max).float()  # [B]
        local = torch.tensor(shard.rows())
        padding = torch.arange(shard.size) >= shard.real
        rollout.advantages = every[local].masked_fill(padding, 0.0)
        rollout.sample_mask = rollout.global_mask[local] & ~padding
        d = rollout.diagnostics
        d["reward_mean"] = (
            float((r * weights).sum(-1)[v.all(-1)].mean()) if v.all(-1).any() else math.nan
        )
        d["zero_variance_groups"] = float((~adv.valid).float().mean())
        d["valid_samples"] = float(sample_ok.float().mean())
        kept = every[rollout.global_mask]
        d["advantage/mean"] = float(kept.mean()) if kept.numel() else 0.0
        d["advantage/std"] = float(kept.std()) if kept.numel() > 1 else 0.0
        d["advantage/abs_max"] = float(every.abs().max())
        for j, k in enumerate(rollout.active):
            name = self.rewards[k][0]
            rk, vk = r[..., j], v[..., j]
            d[f"reward/{name}"] = float(rk[vk].mean()) if vk.any() else math.nan
            d[f"reward_std_in_group/{name}"] = float(rk.std(dim=1, unbiased=False).mean())

    def diagnose_truth(self, rollout: Rollout) -> None:
        """The ground truth beside the rewards on the training rollouts: each truth metric's mean
        and within-group std, and the within-group Spearman correlation of every reward with it
        (a reward that ranks samples against the truth is being hacked)."""
        if rollout.video is None:  # the same on every rank (needs_video)
            return
        g, d = self.config.sampling.group_size, rollout.diagnostics
        truth = {
            metric: self.ctx.gather_rows(values)
            for metric, values in self.truth_metrics(rollout.video, self._real(rollout)).items()
        }
        for j, k in enumerate(rollout.active):
            name = self.rewards[k][0]
            rk, vk = rollout.rewards[..., j], rollout.reward_valid[..., j]
            for metric, values in truth.items():
                per_group = [
                    spearman(rk[n][vk[n]], values.reshape(-1, g)[n][vk[n]])
                    for n in range(rk.shape[0])
                ]
                finite = [x for x in per_group if math.isfinite(x)]
                d[f"spearman/{name}_vs_{metric}"] = (
                    sum(finite) / len(finite) if finite else math.nan
                )
        for metric, values in truth.items():  # NaN for broken samples, left out here
            d[f"truth/{metric}"] = float(values.nanmean())
            spread = values.reshape(-1, g).std(dim=1, unbiased=False)
            d[f"truth_std_in_group/{metric}"] = float(spread.nanmean())

    def truth_metrics(self, video: Tensor, conditions: ConditionBatch) -> dict[str, Tensor]:
        """Ground-truth metrics per sample where the world knows the truth (the fast ones of
        :func:`geogrpo.eval.truth.truth_metrics`). Independent of every reward model."""
        if conditions.truth is None:
            return {}
        return truth_metrics(video, conditions.truth, self.conditioning)

    def update(self, rollout: Rollout, step: int) -> dict[str, float]:
        """Clipped-ratio updates on the trained steps: ``inner_epochs`` passes over the batch,
        ``minibatches`` optimizer steps each, micro-batches accumulated.

        Minibatches are drawn over the global batch; each rank re-scores its own members, in
        as many micro-batches as the busiest rank needs (weightless ones where it has fewer), so
        that every rank runs the same forwards and backwards. The loss is each sample's share
        of the minibatch's kept samples; DDP and FSDP average gradients over ranks, so each
        rank's loss is scaled by the world size to sum them instead."""
        s, rl = self.config.sampling, self.config.rl
        plan, path, shard = rollout.plan, rollout.path, rollout.shard
        trained = plan.train_indices
        grid = plan.timesteps.tolist()
        if rl.timestep_weights:
            w, w_kl = timestep_loss_weights(plan.timesteps, s.noise_level, s.sde_kind, plan.train)
        else:
            w = w_kl = torch.ones(plan.num_steps)
        total = rollout.global_mask.shape[0]
        gen = torch.Generator().manual_seed(seed_for(self.config.seed, step, "minibatch"))
        adv = rollout.advantages.to(self.device)
        mask = rollout.sample_mask.to(self.device)
        world = float(self.ctx.world_size)
        ratios, clips, kls, losses, norms = [], [], [], [], []
        first_ratio: list[Tensor] = []
        for epoch in range(rl.inner_epochs):
            order = torch.arange(total) if epoch == 0 else torch.randperm(total, generator=gen)
            for mb_index, mb in enumerate(order.chunk(rl.minibatches)):
                before_any_step = epoch == 0 and mb_index == 0
                self.optimizer.zero_grad(set_to_none=True)
                count = rollout.global_mask[mb].sum().to(self.device)
                if int(count) == 0 or rollout.fault is not None:
                    continue
                where = f"inner epoch {epoch}, minibatch {mb_index}"
                loss_fault = ""
                micro_batches = self._micro_batches(mb.tolist(), shard, total)
                backwards = len(micro_batches) * len(trained)
                for m, (micro, weighted) in enumerate(micro_batches):
                    cond = rollout.condition.select(micro.tolist())
                    keep = mask[micro] & weighted
                    share = keep.sum() / count
                    for j, i in enumerate(trained):
                        self._sync_gradients(m * len(trained) + j == backwards - 1)
                        x_t = path.states[i][micro]
                        x_next = path.states[i + 1][micro]
                        v = self.policy.velocity(x_t, grid[i], cond)
                        new = sde_step(
                            x_t,
                            v,
                            grid[i],
                            grid[i + 1],
                            s.noise_level,
                            s.sde_kind,
                            x_next=x_next,
                            reduce=rl.log_prob_reduce,
                        )
                        kl = None
                        if rl.kl_beta > 0:
                            with torch.no_grad(), self.reference_policy() as ref:
                                v_ref = ref.velocity(x_t, grid[i], cond)
                            dist = SDE_STEPS[s.sde_kind](
                                x_t, v_ref, grid[i], grid[i + 1], s.noise_level
                            )
                            kl = gaussian_kl(
                                new.mean, new.std, dist.mean, dist.std, rl.log_prob_reduce
                            )
                        out = grpo_step_loss(
                            new.log_prob,
                            path.log_probs[i][micro],
                            adv[micro],
                            rl.clip_range,
                            weight=float(w[i]),
                            kl=kl,
                            kl_beta=rl.kl_beta,
                            kl_weight=float(w_kl[i]),
                            mask=keep,
                        )
                        if not loss_fault and not torch.isfinite(out.loss.detach()):
                            loss_fault = f"the loss is {float(out.loss.detach())} ({where})"
                        (out.loss * share * world / len(trained)).backward()
                        if not keep.any():  # nothing to report (a weightless micro-batch)
                            continue
                        ratio = torch.exp(new.log_prob - path.log_probs[i][micro]).detach()
                        ratios.append(ratio[keep].cpu())
                        if before_any_step:
                            first_ratio.append(ratio[keep].cpu())
                        clips.append(float(out.clip_fraction))
                        kls.append(float(out.kl))
                        losses.append(float(out.loss.detach()))
                params = [p for _, p in self.trainable]
                max_norm = self.config.optim.max_grad_norm
                norm = full_tensor(
                    torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else math.inf)
                )
                rollout.fault = self._update_fault(loss_fault, norm, where)
                if rollout.fault is not None:  # the weights and the optimizer stay as they are
                    self.optimizer.zero_grad(set_to_none=True)
                    continue
                norms.append(float(norm))
                self.optimizer.step()
        self.scheduler.step()
        parts = self.ctx.gather_objects((ratios, first_ratio, clips, kls, losses))
        ratios = [r for part in parts for r in part[0]]
        first_ratio = [r for part in parts for r in part[1]]
        clips, kls, losses = ([x for part in parts for x in part[k]] for k in (2, 3, 4))
        all_ratios = torch.cat(ratios) if ratios else torch.ones(1)
        first = torch.cat(first_ratio) if first_ratio else torch.ones(1)
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        return {
            "loss": mean(losses),
            "kl": mean(kls),
            "clip_frac": mean(clips),
            "ratio_mean": float(all_ratios.mean()),
            "ratio_min": float(all_ratios.min()),
            "ratio_max": float(all_ratios.max()),
            "ratio_first_max_dev": float((first - 1).abs().max()),
            "grad_norm": mean(norms),
            "lr": float(self.scheduler.get_last_lr()[0]),
        }

    def _update_fault(self, loss_fault: str, norm: Tensor, where: str) -> Fault | None:
        """Whether an optimizer step must be skipped, decided alike on every rank (a rank's
        non-finite loss reaches the others only through the averaged gradient)."""
        if self.ctx.enabled:
            loss_fault = next((f for f in self.ctx.gather_objects(loss_fault) if f), "")
        if loss_fault:
            return Fault("loss", loss_fault)
        if not torch.isfinite(norm):
            return Fault("grad", f"the gradient norm is {float(norm)} ({where})")
        return None

    def _sync_gradients(self, sync: bool) -> None:
        """DDP: all-reduce only in a minibatch's last backward; the others accumulate locally
        (DDP's ``no_sync``), so a minibatch costs one all-reduce instead of one per micro-batch
        and trained step. FSDP keeps reduce-scattering each backward: deferring it would hold
        unsharded gradients, the memory FSDP is there to save."""
        if self.ctx.enabled and self.config.distributed.strategy == "ddp":
            self.policy.transformer.set_requires_gradient_sync(sync)

    def _micro_batches(
        self, members: list[int], shard: Shard, total: int
    ) -> list[tuple[Tensor, bool]]:
        """This rank's local rows of the minibatch ``members`` (global indices, in their order)
        as ``(rows, weighted)`` micro-batches, padded with weightless ones to the busiest rank's
        count so that every rank runs as many forwards and backwards."""
        micro = self.config.sampling.micro_batch_size

        def local_rows(sh: Shard) -> list[int]:
            return [i - sh.start for i in members if sh.start <= i < sh.stop]

        busiest = max(
            len(local_rows(shard_rows(total, r, self.ctx.world_size)))
            for r in range(self.ctx.world_size)
        )
        mine = torch.tensor(local_rows(shard), dtype=torch.long)
        chunks = [(rows, True) for rows in mine.split(micro)] if len(mine) else []
        weightless = (torch.zeros(1, dtype=torch.long), False)
        return chunks + [weightless] * (math.ceil(busiest / micro) - len(chunks))

    def train_step(self, step: int) -> dict[str, float]:
        """One full step; returns the logged row."""
        roll, times = self.collect(step)
        t0 = time.perf_counter()
        stats = self.update(roll, step)
        times["time/update"] = time.perf_counter() - t0
        row = {**roll.diagnostics, **stats, **times}
        row["decoupled"] = float(self.is_decoupled(step))
        row["window_start"] = float(roll.plan.train_indices[0])
        row.update(peak_memory(self.device))
        row.update(self._count_fault(step, roll.fault))
        if roll.video is not None:  # logged; warnings come from the fixed conditions (evaluate)
            row.update({f"watchdog/{key}": value for key, value in self._watchdog(roll).items()})
        return row

    def _count_fault(self, step: int, fault: Fault | None) -> dict[str, float]:
        """Count skipped steps in a row (a good step resets it); the fault's logged keys."""
        if fault is None:
            self.bad_steps = 0
            return {}
        self.bad_steps += 1
        self.last_fault = fault
        self._warn(
            f"step {step} skipped ({fault.cause}): {fault.detail}; {self.bad_steps} in a row, "
            f"the run stops at train.max_bad_steps = {self.config.train.max_bad_steps}"
        )
        return {
            "fault/skipped_step": 1.0,
            f"fault/{fault.cause}": 1.0,
            "fault/bad_steps_in_a_row": float(self.bad_steps),
        }

    def _warn(self, message: str) -> None:
        if self.ctx.is_main:
            tqdm.write(f"warning: {message}", file=sys.stderr)

    def collect(self, step: int) -> tuple[Rollout, dict[str, float]]:
        """A step up to its update: rollouts, decoding, rewards, advantages and the truth beside
        them; with the seconds each phase took."""
        times = {}
        t0 = time.perf_counter()
        roll = self.rollout(step)
        roll.active = self.active_rewards(step)
        times["time/rollout"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if self.needs_video(step, roll.active):
            roll.video = self.decode(roll)
        times["time/decode"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.score(roll)
        times["time/reward"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.diagnose_truth(roll)
        times["time/truth"] = time.perf_counter() - t0
        return roll, times

    def _watchdog(self, roll: Rollout) -> dict[str, float]:
        """:func:`watchdog_stats` of the whole step: per-sample statistics gathered from every
        rank; diversity over the groups whose samples all lie on one rank (every group in a
        single process)."""
        stats = {
            k: float(self.ctx.gather_rows(v).mean())
            for k, v in watchdog_per_sample(roll.video).items()
        }
        g, shard = self.config.sampling.group_size, roll.shard
        first = math.ceil(shard.start / g) * g  # this rank's first whole group
        whole = max(0, (shard.stop - first) // g)
        local = roll.video[first - shard.start : first - shard.start + whole * g]
        diversity = torch.cat(
            self.ctx.gather_objects(group_diversity(local, g) if whole else torch.zeros(0))
        )
        stats["diversity"] = float(diversity.mean()) if diversity.numel() else math.nan
        return stats

    # -- evaluation ---------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, step: int, base_tail: bool = False, sde: bool = False) -> dict[str, Any]:
        """The recipe's rewards and the ground truth on the fixed conditions, ODE sampler (or the
        training SDE with ``sde``), fixed noise per condition; side-by-side videos
        (condition | output | truth) of val ones. Ranks share the conditions out and gather
        the per-condition values."""
        s, e = self.config.sampling, self.config.eval
        metrics: dict[str, Any] = {}
        per_condition: dict[str, dict[str, list[float]]] = {}
        for split, everything in self.eval_sets.items():
            shard = self.ctx.shard(len(everything))
            videos = []
            bar = tqdm(
                shard.rows(),
                desc=f"evaluate {split}",
                leave=False,
                disable=not (self.config.logging.progress and self.ctx.is_main),
            )
            for n in bar:
                one = everything.select([n])
                condition = self.policy.prepare(
                    one.prompts, one.inputs, guidance_scale=s.guidance_scale
                )
                f, (h, w) = one.inputs.num_frames, one.inputs.image_size
                gen = torch.Generator().manual_seed(seed_for(self.config.seed, n, f"eval/{split}"))
                noise = self.policy.initial_noise(condition, f, h, w, gen)
                grid = flow_matching_timesteps(s.eval_num_inference_steps, s.shift)
                velocity = self._eval_velocity(
                    condition, grid, e.base_tail_steps if base_tail else 0
                )
                plan = full_sde_plan(grid) if sde else ode_plan(grid)
                path = denoise(velocity, noise, plan, s.noise_level, s.sde_kind, gen, keep="none")
                videos.append(
                    (model_to_frames(self.policy.decode(path.latents)).cpu(), path.latents.cpu())
                )
            video = torch.cat([v for v, _ in videos])[: shard.real]
            latents = torch.cat([z for _, z in videos])[: shard.real]
            columns: dict[str, Tensor] = {}
            if shard.real:  # a rank may own none of a small split's conditions
                cond = everything.select(list(range(shard.start, shard.stop)))
                batch = cond.reward_batch(video, latents).to(self.device)
                for name, _, reward in self.rewards:
                    out = reward(batch)
                    columns[f"reward/{name}"] = out.scores.double().masked_fill(
                        ~out.valid, math.nan
                    )
                for metric, values in self.truth_metrics(video, cond).items():
                    columns[f"truth/{metric}"] = values.double()
                for key, values in watchdog_per_sample(video).items():
                    columns[f"watchdog/{key}"] = values.double()
            gathered = [c for c in self.ctx.gather_objects(columns) if c]
            table = {k: torch.cat([c[k] for c in gathered]).tolist() for k in gathered[0]}
            for key, values in table.items():
                finite = [x for x in values if math.isfinite(x)]
                mean = sum(finite) / len(finite) if finite else math.nan
                metrics[f"eval/{split}/{key}"] = mean
            per_condition[split] = {k: v for k, v in table.items() if "watchdog/" not in k}
            if split == "val" and e.videos and not (base_tail or sde):
                # as the 8-bit frames the video file holds: a quarter of the bytes to gather
                first = [to_uint8(video[i]) for i in range(min(shard.stop, e.videos) - shard.start)]
                shown = [v for part in self.ctx.gather_objects(first) for v in part]
                if self.ctx.is_main:
                    frames = torch.stack([torch.from_numpy(v) for v in shown]).float() / 255.0
                    self._write_side_by_side(step, everything, frames)
        return {"metrics": metrics, "per_condition": per_condition}

    def _eval_velocity(self, condition: Condition, grid: Tensor, tail: int) -> Callable:
        trained = sampling.policy_velocity(
            self.policy, condition, self.config.sampling.micro_batch_size
        )
        if tail == 0:
            return trained
        switch = float(grid[len(grid) - 1 - tail])

        def velocity(x: Tensor, t: float) -> Tensor:
            if t > switch:
                return trained(x, t)
            with self.reference_policy() as ref:
                return ref.velocity(x, t, condition)

        return velocity

    def _write_side_by_side(self, step: int, cond: ConditionBatch, video: Tensor) -> None:
        folder = self.out / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for n in range(min(self.config.eval.videos, len(cond))):
            left = (
                cond.source_frames[n]
                if cond.source_frames is not None
                else torch.zeros_like(video[n])
            )
            panels = [left, video[n]]
            if cond.truth is not None:
                panels.append(cond.truth[n])
            rows.append(torch.cat(panels, dim=2))
        write_video(folder / f"step_{step:05d}.mp4", torch.cat(rows, dim=1))

    # -- the run ------------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Run to ``config.steps``: evaluate before, every ``eval.every`` steps and at the end;
        checkpoint every ``checkpoint.every`` steps and at the end. Every rank runs this; rank 0
        alone writes logs, plots and the summary."""
        with self._verification(self.config):  # estimators load on first use
            return self._train()

    def _train(self) -> dict[str, Any]:
        cfg, main = self.config, self.ctx.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.yaml", config_to_yaml(cfg))
        logger = (
            RunLogger(self.out, tensorboard=cfg.logging.tensorboard, resume_after=self.step)
            if main
            else NullLogger()
        )
        with logger as log:
            if self.step == 0 and 0 not in self.evals:
                self._log_eval(log, 0)
            bar = tqdm(
                range(self.step, cfg.steps),
                initial=self.step,
                total=cfg.steps,
                desc=f"GRPO {cfg.recipe}",
                disable=not (cfg.logging.progress and main),
            )
            for step in bar:
                row = self.train_step(step)
                self.step = step + 1
                log.log(self.step, row)
                bar.set_postfix(
                    reward=f"{row['reward_mean']:.3f}",
                    **{
                        k.split("/")[1]: f"{v:.3f}"
                        for k, v in row.items()
                        if k.startswith("truth/")
                    },
                )
                last = self.step == cfg.steps
                if last or (cfg.eval.every and self.step % cfg.eval.every == 0):
                    self._log_eval(log, self.step)
                stop = self.bad_steps >= cfg.train.max_bad_steps
                if stop or last or (cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0):
                    saved = self.save_checkpoint()
                if stop:
                    raise self._stopped(saved)
        summary = self.summary()
        if main:
            atomic_write_json(self.out / "summary.json", summary)
            plot_run(self.out, f"{cfg.recipe}: {cfg.model.policy}")
        return summary

    def _stopped(self, saved: Path) -> ckpt.RunStopped:
        fault = self.last_fault or Fault("unknown", "resumed past the limit")
        return ckpt.RunStopped(
            f"stopped after step {self.step}: {self.bad_steps} steps in a row were skipped "
            f"(train.max_bad_steps = {self.config.train.max_bad_steps}), the last because of its "
            f"{fault.cause}: {fault.detail}. The skipped updates were not applied and {saved} "
            "holds the run as it stands. Fix the cause (a failing reward is named in the warnings "
            "above; a non-finite loss or gradient asks for a lower optim.lr or rl.clip_range, "
            "which needs a new run) and continue with --resume auto (train.max_bad_steps may be "
            "raised on resume)"
        )

    def _log_eval(self, log: RunLogger | NullLogger, step: int) -> None:
        result = self.evaluate(step)
        variants = {"eval_sde/": {"sde": True}} if self.config.eval.sde else {}
        if self.config.eval.base_tail_steps and step > 0:
            variants["eval_base_tail/"] = {"base_tail": True}
        for prefix, kwargs in variants.items():
            extra = self.evaluate(step, **kwargs)
            result["metrics"].update(
                {k.replace("eval/", prefix): v for k, v in extra["metrics"].items()}
            )
        self._warn_on_drift(step, result["metrics"])
        self.evals[step] = result
        log.log(step, result["metrics"])
        if self.ctx.is_main:
            atomic_write_json(self.out / "evals.json", {str(k): v for k, v in self.evals.items()})

    def _warn_on_drift(self, step: int, metrics: dict[str, Any]) -> None:
        """Warn (and log ``.../warn_<stat>``) when a watchdog statistic of the fixed conditions'
        outputs moved more than ``logging.watchdog_tolerance`` from the base model's (step 0):
        the same conditions and noise, so only the model changed."""
        if 0 not in self.evals:
            return
        base = self.evals[0]["metrics"]
        for key in [k for k in metrics if "/watchdog/" in k and k in base]:
            drift = abs(metrics[key] - base[key]) / max(abs(base[key]), 1e-3)
            if drift > self.config.logging.watchdog_tolerance:
                head, stat = key.rsplit("/", 1)
                metrics[f"{head}/warn_{stat}"] = 1.0
                if self.ctx.is_main:
                    tqdm.write(
                        f"warning: step {step}: {stat} of the fixed {key.split('/')[1]} outputs "
                        f"moved {drift:.0%} from the base model's {base[key]:.4f} to "
                        f"{metrics[key]:.4f}; a reward may be hacked"
                    )

    def summary(self) -> dict[str, Any]:
        """Base (step 0) vs trained (last evaluation) on the fixed conditions: mean change per
        metric with a 95 % t-interval over conditions and how many went up."""
        if 0 not in self.evals or len(self.evals) < 2:
            return {"steps": self.step}
        first, last = self.evals[0]["per_condition"], self.evals[max(self.evals)]["per_condition"]
        table = {}
        for split in first:
            for key in first[split]:
                pairs = [
                    (a, b)
                    for a, b in zip(first[split][key], last[split][key], strict=True)
                    if math.isfinite(a) and math.isfinite(b)
                ]
                table[f"{split}/{key}"] = change_with_interval(pairs)
        return {
            "steps": self.step,
            "base_step": 0,
            "trained_step": max(self.evals),
            "changes": table,
        }

    # -- checkpoints --------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Every rank calls this (the weights are gathered whole, the optimizer written as
        shards)."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = {
            "step": self.step,
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "evals": self.evals,
            "bad_steps": self.bad_steps,
        }
        weights = {n: full_tensor(p.detach()).cpu() for n, p in self.trainable}
        # an optimizer that has not stepped yet has no state to save (and reading it would
        # initialise it)
        stepped = bool(self.optimizer.state)
        sharded = (
            {"optimizer": get_optimizer_state_dict(self.policy.transformer, self.optimizer)}
            if stepped
            else None
        )
        state["optimizer_saved"] = stepped
        return ckpt.save_checkpoint(
            self.out / "checkpoints",
            self.step,
            weights,
            state,
            self.config.to_dict(),
            keep_last=self.config.checkpoint.keep_last,
            sharded=sharded,
            ctx=self.ctx,
        )

    def _resume(self, resume: str) -> None:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        if self.ctx.is_main:
            ckpt.remove_interrupted(self.out / "checkpoints")
        path = ckpt.find_checkpoint(self.out / "checkpoints", resume)
        if path is None:
            return  # --resume auto with nothing saved yet: a fresh run
        weights, state, saved = ckpt.load_checkpoint(path)
        ckpt.check_same_settings(flatten(saved), flatten(self.config.to_dict()), RESUME_FREE, path)
        params = dict(self.trainable)
        missing = sorted(set(params) - set(weights))
        if missing:
            raise ValueError(f"{path}: the checkpoint lacks trainable weights {missing[:3]}")
        model = self.policy.transformer
        if any(is_dtensor(p) for p in params.values()):  # FSDP: each rank keeps its shard
            set_model_state_dict(
                model,
                {n: weights[n] for n in params},
                options=StateDictOptions(full_state_dict=True, strict=False),
            )
        else:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(weights[name].to(p))
        if state.get("optimizer_saved"):
            template = {"optimizer": get_optimizer_state_dict(model, self.optimizer)}
            loaded = ckpt.load_sharded(path, template)
            set_optimizer_state_dict(model, self.optimizer, loaded["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.evals = dict(state["evals"])
        self.bad_steps = int(state.get("bad_steps", 0))


# Settings a resumed run may change: where, how and what it logs and evaluates, not what it trains.
RESUME_FREE = (
    "steps",
    "model.device",
    "model.torch_threads",
    "distributed.",
    "logging.",
    "checkpoint.",
    "eval.",
    "train.max_bad_steps",
    "data.workers",
    "data.data_dir",
)


def change_with_interval(pairs: list[tuple[float, float]]) -> dict[str, float]:
    """Mean of ``after - before`` over conditions, its 95 % t-interval, and the count that rose."""
    if not pairs:
        return {"n": 0}
    diffs = torch.tensor([b - a for a, b in pairs], dtype=torch.float64)
    n = diffs.numel()
    mean = float(diffs.mean())
    if n > 1:
        from scipy.stats import t as student_t

        half = float(student_t.ppf(0.975, n - 1)) * float(diffs.std()) / math.sqrt(n)
    else:
        half = math.nan
    return {
        "n": n,
        "before": sum(a for a, _ in pairs) / n,
        "after": sum(b for _, b in pairs) / n,
        "change": mean,
        "ci95_low": mean - half,
        "ci95_high": mean + half,
        "rose": int((diffs > 0).sum()),
    }


def is_run_or_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a GRPO run folder (with checkpoints/) or one checkpoint folder."""
    path = Path(path)
    return (path / "checkpoints").is_dir() or (path / "trainable.safetensors").is_file()


def load_policy(name_or_path: str | Path) -> VideoPolicy:
    """A shipped policy or saved policy folder, or the trained policy of a GRPO run or
    checkpoint folder (:func:`policy_from_run`), in eval mode."""
    if is_run_or_checkpoint(name_or_path):
        return policy_from_run(name_or_path)
    return VideoPolicy.from_pretrained(name_or_path).eval()


def policy_from_run(path: str | Path) -> VideoPolicy:
    """The trained policy of a run folder (its newest checkpoint) or of one checkpoint folder."""
    from geogrpo.train.config import load_config

    path = Path(path)
    found = ckpt.list_checkpoints(path / "checkpoints") if not (path / "state.pt").exists() else []
    folder = found[-1] if found else path
    if not (folder / "trainable.safetensors").is_file():
        raise FileNotFoundError(
            f"policy: {path} is neither a run folder with checkpoints/ nor a checkpoint folder "
            "(trainable.safetensors, state.pt, config.json)"
        )
    weights, _, saved = ckpt.load_checkpoint(folder)
    config: GRPOConfig = load_config(overrides=_as_overrides(saved))
    policy = VideoPolicy.from_pretrained(
        config.model.policy, conditioning=config.model.conditioning or None
    )
    for p in policy.parameters():
        p.requires_grad_(False)
    if config.model.trainable == "lora":
        policy.add_lora(
            config.model.lora_rank, config.model.lora_alpha or None, config.model.lora_parts
        )
    params = dict(policy.transformer.named_parameters())
    unknown = sorted(set(weights) - set(params))
    if unknown:
        raise ValueError(f"{folder}: weights {unknown[:3]} do not fit {config.model.policy}")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    return policy.eval()


def _as_overrides(saved: dict[str, Any]) -> list[str]:
    import json

    from geogrpo.train.config import flatten

    return [f"{k}={json.dumps(v)}" for k, v in flatten(saved).items() if k != "rewards.rewards"] + [
        "rewards.rewards=" + json.dumps(saved["rewards"]["rewards"])
    ]
