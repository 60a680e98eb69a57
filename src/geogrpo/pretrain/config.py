"""Settings of every ``geogrpo pretrain`` command, one dataclass each.

Kept apart from the training loops so that the command line can build its parser (every flag,
its default and its help) without importing torch, diffusers or the models; the checks in
``__post_init__`` import ``geogrpo.utils.checks`` (and so torch) when a config is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOSSES = ("velocity", "sample")
EXPORT_DTYPES = ("float16", "bfloat16", "float32")


def option(default: Any, help_text: str) -> Any:
    """A field with its ``--flag`` help, which ``cli.add_dataclass_arguments`` prints."""
    return field(default=default, metadata={"help": help_text})


def _check_counts(cfg: object, *names: str, low: int = 1) -> None:
    """Sizes and counts of a pretrain config: integers >= ``low``, checked before any data is
    rendered (a size of 0 or a negative count used to fail deep inside torch)."""
    from geogrpo.utils.checks import check_int_range

    for name in names:
        check_int_range(name, getattr(cfg, name), low)


@dataclass
class AutoencoderPretrainConfig:
    """Settings of ``geogrpo pretrain autoencoder``."""

    out: str = option(
        "runs/pretrain/tiny-autoencoder",
        "folder for the model (model.safetensors, config.json), manifest.json and logs/; "
        "out/latest/ holds the train state while it runs",
    )
    data_dir: str = option(
        "data",
        "dataset root: text-to-video clips are cached under DIR/t2v (geogrpo world build "
        "--out DIR writes there; clips missing are rendered and saved)",
    )
    n_train: int = option(900, "train-split clips; every frame of every clip is a training frame")
    n_val: int = option(
        64,
        "val-split clips whose reconstruction PSNR is reported at each evaluation",
    )
    frames: int = option(17, "frames per clip (4k + 1)")
    size: int = option(96, "clip height and width in pixels (a multiple of 8)")
    steps: int = option(
        3000,
        "optimizer steps (AdamW without weight decay, one-cycle learning rate)",
    )
    batch_frames: int = option(16, "frames per step, drawn at random from all training clips")
    crop: int = option(
        64,
        "side in pixels of the random square crop that every frame of a step is cut to (a "
        "multiple of 8, at most --size)",
    )
    lr: float = option(1e-3, "peak learning rate of the one-cycle schedule")
    latent_noise: float = option(
        0.05,
        "std of the Gaussian noise added to the latents in training, relative to the batch's "
        "latent std, so the decoder tolerates the imperfect latents a DiT generates",
    )
    frame_channels: int = option(
        16,
        "latent channels per frame; the latent has 4x as many (4 frame latents folded into one, "
        "Wan's temporal stride)",
    )
    widths: tuple[int, ...] = option(
        (16, 32, 64),
        "channel widths of the encoder's three stride-2 stages (the decoder mirrors them; "
        "multiples of 8)",
    )
    eval_every: int = option(
        250,
        "steps between evaluations (val PSNR); each also saves out/latest/train_state.pt for "
        "--resume",
    )
    seed: int = option(
        0,
        "seed of the initial weights, the frame and crop draws and the latent noise",
    )
    stats_clips: int = option(
        128,
        "train clips whose latents give the per-channel mean and std that normalise the latents "
        "after training",
    )
    resume: bool = option(
        False,
        "continue an interrupted run from out/latest/train_state.pt, exactly as if it had not "
        "stopped (only --eval-every may change)",
    )

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_int_range, check_positive

        check_int_range("steps", self.steps, 1)
        check_int_range("batch_frames", self.batch_frames, 1)
        check_positive("lr", self.lr)
        _check_counts(self, "n_train", "n_val", "frames", "size", "crop", "frame_channels")
        _check_counts(self, "eval_every", "stats_clips")
        check_positive("latent_noise", self.latent_noise, allow_zero=True)
        if self.crop % 8:
            raise ValueError(f"crop: {self.crop} must be a multiple of 8 (the encoder's stride)")


@dataclass
class PolicyPretrainConfig:
    """Settings of ``geogrpo pretrain policy``: one tiny DiT (+ text encoder) per conditioning."""

    conditioning: str = option(
        "t2v",
        "what the policy is conditioned on: t2v (text), warped_noise_t2v (text, sampled from "
        "camera-warped noise), camera_v2v (a source video and the target cameras) or reproj_v2v "
        "(the source rendered into the target cameras, holes masked)",
    )
    autoencoder: str = option(
        "tiny-autoencoder",
        "the frozen autoencoder whose latents the DiT learns: a shipped name or a folder written "
        "by pretrain autoencoder",
    )
    out: str = option(
        "runs/pretrain/tiny-t2v",
        "folder for the policy (policy.json, transformer/, text_encoder/, autoencoder/), "
        "manifest.json and logs/; out/latest/ holds the policy so far and the train state",
    )
    data_dir: str = option(
        "data",
        "dataset root: clips are cached under DIR/t2v or DIR/pairs (rendered when missing) and "
        "their latents under DIR/latents",
    )
    n_train: int = option(
        900,
        "train-split items: text-to-video clips for the t2v conditionings, multi-view pairs for "
        "the v2v ones",
    )
    n_val: int = option(
        32,
        "val-split items whose flow-matching loss (the same times and noise every time) is "
        "reported at each evaluation",
    )
    frames: int = option(17, "frames per clip (4k + 1)")
    size: int = option(
        96,
        "clip height and width in pixels (a multiple of 16: 8x autoencoder, 2x2 patches)",
    )
    steps: int = option(
        2000,
        "optimizer steps (AdamW with weight decay 0.01, one-cycle learning rate, gradients "
        "clipped to norm 1)",
    )
    batch: int = option(8, "items per step")
    lr: float = option(5e-4, "peak learning rate of the one-cycle schedule (DiT and text encoder)")
    layers: int = option(4, "transformer blocks of the DiT")
    heads: int = option(
        6,
        "attention heads per block; the width is heads x head-dim (6 x 32 beat 4 x 32 at equal "
        "wall time, bench/RESULTS.md)",
    )
    head_dim: int = option(32, "channels per attention head")
    ffn_dim: int = option(384, "hidden width of each block's feed-forward network")
    text_dim: int = option(
        64,
        "width of the grammar text encoder's token embeddings, the DiT's text context",
    )
    prediction: str = option(
        "sample",
        "what the transformer outputs: sample (the clean latent x0) or velocity (eps - x0); "
        "sampling converts either to a velocity",
    )
    loss: str = option(
        "velocity",
        "velocity: MSE of the velocity (SD3/Wan); sample: MSE of the implied x0, the velocity "
        "error weighted by t^2, which moves weight from nearly clean inputs to high noise, where "
        "layout, camera motion and copying from the source are learned",
    )
    time_shift: float = option(
        3.0,
        "shift s of the training times t = s u / (1 + (s - 1) u), u logit-normal; s > 1 trains "
        "more at high noise",
    )
    camera_rays: bool = option(
        False,
        "camera_v2v: add a Plücker ray embedding per token (zero-initialised: a rayless policy "
        "continued with --init-from starts from its exact function)",
    )
    camera_attention: bool = option(
        False,
        "camera_v2v: add the PRoPE camera-attention branch (zero-initialised like the rays)",
    )
    prompt_dropout: float = option(
        0.0,
        "share of training prompts replaced by the empty prompt, so that classifier-free guidance "
        "(geogrpo sample --guidance-scale) has an unconditional model; in [0, 1)",
    )
    init_from: str = option(
        "",
        "a saved policy (shipped name or folder) to start from instead of random weights; sizes "
        "and conditioning must match (rays and camera attention may be added)",
    )
    eval_every: int = option(
        500,
        "steps between evaluations (val loss); each also writes the policy so far to out/latest/ "
        "with the train state for --resume",
    )
    seed: int = option(
        0,
        "seed of the initial weights and of every random draw (batches, times, noise, prompt "
        "dropout)",
    )
    workers: int = option(
        1,
        "processes rendering the dataset items missing from --data-dir (one torch thread each)",
    )
    resume: bool = option(
        False,
        "continue an interrupted run from out/latest/train_state.pt: the same weights, optimizer, "
        "schedule and random stream as if it had not stopped (only --eval-every, --workers and "
        "--device may change)",
    )
    device: str = option(
        "cpu",
        "torch device the DiT trains on (cpu, cuda, cuda:1); data, encoding and random draws stay "
        "on the CPU, so a seed gives the same run on any device",
    )

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import (
            check_choice,
            check_device,
            check_fraction,
            check_int_range,
            check_positive,
        )

        check_int_range("steps", self.steps, 1)
        check_int_range("batch", self.batch, 1)
        check_int_range("layers", self.layers, 1)
        check_int_range("workers", self.workers, 1)
        _check_counts(self, "n_train", "n_val", "frames", "size", "heads", "head_dim", "ffn_dim")
        _check_counts(self, "text_dim", "eval_every")
        check_fraction("prompt_dropout", self.prompt_dropout)
        check_device("device", self.device)
        check_positive("lr", self.lr)
        check_positive("time_shift", self.time_shift)
        check_choice("loss", self.loss, LOSSES)
        if not 0.0 <= self.prompt_dropout < 1.0:
            raise ValueError(f"prompt_dropout: {self.prompt_dropout} must be in [0, 1)")
        if self.camera_rays and self.conditioning != "camera_v2v":
            raise ValueError(
                f"camera_rays: only camera_v2v takes per-token rays, not {self.conditioning}"
            )
        if self.camera_attention and self.conditioning != "camera_v2v":
            raise ValueError(
                f"camera_attention: only camera_v2v has camera attention, not {self.conditioning}"
            )


@dataclass
class PolicyExportConfig:
    """Settings of ``geogrpo pretrain export``: a trained policy, re-saved for shipping."""

    source: str = option(
        "runs/pretrain/tiny-t2v",
        "a folder written by geogrpo pretrain policy (with its manifest.json)",
    )
    out: str = option(
        "runs/export/tiny-t2v",
        "folder for the exported policy and its manifest (which embeds the training run's); "
        "the package's shipped folders only with --overwrite-shipped",
    )
    dtype: str = option(
        "float16",
        "dtype of the stored transformer weights (float16, bfloat16 or float32); loading casts "
        "them back to float32",
    )
    overwrite_shipped: bool = option(
        False,
        "allow --out inside the package's shipped models (src/geogrpo/*/pretrained/), to "
        "replace a shipped policy on purpose",
    )

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_choice

        check_choice("dtype", self.dtype, EXPORT_DTYPES)


@dataclass
class TinyGeoPretrainConfig:
    """Settings of ``geogrpo pretrain tinygeo``."""

    out: str = option(
        "runs/pretrain/tinygeo",
        "folder for the model (model.safetensors, config.json), manifest.json and logs/; "
        "out/latest/ holds the train state while it runs",
    )
    data_dir: str = option(
        "data",
        "dataset root: multi-view pairs are cached under DIR/pairs (rendered when missing)",
    )
    n_train: int = option(
        160,
        "train-split multi-view pairs; both views of each are training clips",
    )
    n_val: int = option(
        16,
        "val-split pairs whose camera and depth errors are reported at each evaluation",
    )
    n_heldout: int = option(
        8,
        "pairs of each held-out split (heldout_shapes, heldout_photo) also evaluated",
    )
    steps: int = option(
        1500,
        "optimizer steps (AdamW with weight decay 0.01, one-cycle learning rate, gradients "
        "clipped to norm 1)",
    )
    batch: int = option(8, "clips per step")
    clip_frames: int = option(
        9,
        "frames per training clip, picked by temporal jitter (random stride and offset, a "
        "repeated frame); 2 to --frames",
    )
    lr: float = option(1e-3, "peak learning rate of the one-cycle schedule")
    dim: int = option(128, "token width")
    heads: int = option(4, "attention heads per block")
    layers: int = option(4, "attention blocks, alternating within-frame and across-frame attention")
    stitch_layer: int = option(
        1,
        "blocks before the point where the Latent Geometry Model's connector feeds tokens in (0 "
        "to --layers)",
    )
    size: int = option(96, "clip height and width in pixels (a multiple of the 16-pixel patch)")
    frames: int = option(17, "frames per rendered clip (4k + 1)")
    seed: int = option(
        0,
        "seed of the initial weights and of every random draw (clips, frames, augmentations)",
    )
    eval_every: int = option(
        500,
        "steps between evaluations (val and held-out errors); each also saves "
        "out/latest/train_state.pt for --resume",
    )
    rotation_weight: float = option(
        1.0,
        "weight of the rotation term in the loss (next to translation, log-depth and confidence)",
    )
    init_from: str = option(
        "",
        "a saved tinygeo (shipped name or folder) to start from; its sizes must match --dim, "
        "--heads, --layers, --size and --stitch-layer",
    )
    resume: bool = option(
        False,
        "continue an interrupted run from out/latest/train_state.pt, exactly as if it had not "
        "stopped (only --eval-every may change)",
    )

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_int_range, check_positive

        check_int_range("steps", self.steps, 1)
        _check_counts(self, "n_train", "n_val", "batch", "dim", "heads", "layers", "size")
        _check_counts(self, "frames", "eval_every")
        _check_counts(self, "n_heldout", "stitch_layer", low=0)
        check_positive("rotation_weight", self.rotation_weight, allow_zero=True)
        check_int_range("clip_frames", self.clip_frames, 2, self.frames)
        check_positive("lr", self.lr)


@dataclass
class LGMPretrainConfig:
    """Settings of ``geogrpo pretrain lgm`` (VGGRPO's two-stage stitching against tinygeo)."""

    out: str = option(
        "runs/pretrain/tinygeo-lgm",
        "folder for the model (model.safetensors, config.json), manifest.json and logs/; "
        "out/latest/ holds the train state while it runs",
    )
    geo: str = option(
        "tinygeo",
        "the RGB geometry model to stitch to and imitate: a shipped tinygeo name or a folder",
    )
    autoencoder: str = option(
        "tiny-autoencoder",
        "the frozen autoencoder whose latents the model reads: a shipped name or a folder",
    )
    data_dir: str = option(
        "data",
        "dataset root: multi-view pairs are cached under DIR/pairs (rendered when missing)",
    )
    n_train: int = option(
        160,
        "train-split multi-view pairs; both views of each are training clips",
    )
    n_val: int = option(
        16,
        "val-split pairs on which the latent and the RGB model's camera and depth errors are "
        "reported",
    )
    feature_steps: int = option(
        300,
        "stage 1 steps: the connector alone learns to produce tinygeo's tokens at the stitch point",
    )
    prediction_steps: int = option(
        300,
        "stage 2 steps: connector and downstream layers learn tinygeo's predictions (cameras, "
        "depth, confidence) at a third of --lr",
    )
    batch: int = option(4, "clips per step")
    lr: float = option(
        1e-3,
        "peak learning rate of stage 1's one-cycle schedule (stage 2 peaks at a third of it)",
    )
    hidden: int = option(256, "hidden channels of the 3D-conv connector")
    frames: int = option(17, "frames per clip (4k + 1)")
    size: int = option(
        96,
        "clip height and width in pixels (a multiple of tinygeo's 16-pixel patch)",
    )
    seed: int = option(0, "seed of the connector's initial weights and of the clip draws")
    save_every: int = option(
        100,
        "steps (both stages counted) between saves of out/latest/train_state.pt for --resume",
    )
    resume: bool = option(
        False,
        "continue an interrupted run from out/latest/train_state.pt, exactly as if it had not "
        "stopped, in either stage (only --save-every may change)",
    )

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_int_range, check_positive

        check_int_range("feature_steps", self.feature_steps, 0)
        check_int_range("prediction_steps", self.prediction_steps, 0)
        check_int_range("save_every", self.save_every, 1)
        check_positive("lr", self.lr)
        _check_counts(self, "n_train", "n_val", "batch", "hidden", "frames", "size")


@dataclass
class QualityPretrainConfig:
    """Settings of ``geogrpo pretrain quality`` (the stand-in quality scorer)."""

    out: str = option(
        "runs/pretrain/tiny-quality",
        "folder for the scorer (model.safetensors, config.json), manifest.json and logs/; "
        "out/latest/ holds the train state while it runs",
    )
    data_dir: str = option(
        "data",
        "dataset root: multi-view pairs are cached under DIR/pairs (rendered when missing)",
    )
    n_train: int = option(
        160,
        "train-split multi-view pairs; every frame of both views is a clean training frame",
    )
    steps: int = option(
        600,
        "optimizer steps (AdamW with weight decay 0.01, one-cycle learning rate)",
    )
    batch: int = option(
        32,
        "clean frames per step (rounded down to a multiple of 4, at least 4), split evenly over "
        "the four degradations (blur, noise, colour, autoencoder round trip), each paired with "
        "its degraded copy",
    )
    lr: float = option(2e-3, "peak learning rate of the one-cycle schedule")
    width: int = option(
        32,
        "channels of the scorer's first two convolutions (the last two have twice as many)",
    )
    frames: int = option(17, "frames per rendered clip (4k + 1)")
    size: int = option(96, "frame height and width in pixels")
    seed: int = option(
        0,
        "seed of the initial weights and of every random draw (frames, degradation strengths, "
        "noise)",
    )
    n_val: int = option(
        16,
        "val-split pairs whose frames (every 4th) are scored clean and degraded at the end",
    )
    save_every: int = option(100, "steps between saves of out/latest/train_state.pt for --resume")
    resume: bool = option(
        False,
        "continue an interrupted run from out/latest/train_state.pt, exactly as if it had not "
        "stopped (only --save-every may change)",
    )
    policies: tuple[str, ...] = option(
        ("tiny-camera-v2v",),
        "v2v policies whose samples are generated negatives: shipped names, GRPO run folders "
        "(their newest checkpoint) or checkpoint folders; each is sampled on the same "
        "--gen-conditions train-split conditions, cached in out/negatives/",
    )
    gen_conditions: int = option(
        16,
        "train-split conditions (--gen-data items 0..n-1) each policy is sampled on; 0 = "
        "synthetic degradations only",
    )
    gen_group: int = option(8, "samples per condition and policy (a GRPO group)")
    gen_data: str = option(
        "speed_pairs",
        "kind of the generated negatives' conditions: pairs or speed_pairs (Geo-Align's)",
    )
    gen_steps: int = option(10, "denoising steps of the sampler")
    gen_plan: str = option(
        "window:0:3",
        "which steps are stochastic: full or window:START[:SIZE] (the training sampler's "
        "plan; the group's members part there)",
    )
    gen_noise_level: float = option(0.7, "SDE noise level (Flow-GRPO's a) of the sampler")
    gen_batch: int = option(
        16,
        "pairs per step of a true target frame above a generated frame of the same condition "
        "and frame index; 0 = none",
    )
    rank_batch: int = option(
        16,
        "pairs per step of two generated frames of one condition and frame index (any "
        "policies), the one closer to the true target above the other; 0 = none",
    )
    rank_margin_db: float = option(
        0.5,
        "a ranking pair needs this per-frame true-target PSNR gap (dB) and an SSIM gap of the "
        "same sign of at least --rank-margin-ssim",
    )
    rank_margin_ssim: float = option(0.0, "the SSIM gap a ranking pair needs (see above)")
    init_from: str = option(
        "",
        "a saved quality scorer (shipped name or folder) to start from instead of random "
        "weights; its --width must match, and its manifest is embedded in out/manifest.json",
    )

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_choice, check_int_range, check_positive

        check_int_range("steps", self.steps, 1)
        check_int_range("save_every", self.save_every, 1)
        check_positive("lr", self.lr)
        check_int_range("gen_conditions", self.gen_conditions, 0)
        check_int_range("gen_group", self.gen_group, 2)
        check_int_range("gen_steps", self.gen_steps, 1)
        check_int_range("gen_batch", self.gen_batch, 0)
        check_int_range("rank_batch", self.rank_batch, 0)
        _check_counts(self, "n_train", "n_val", "batch", "width", "frames", "size")
        check_choice("gen_data", self.gen_data, ("pairs", "speed_pairs"))
        check_positive("gen_noise_level", self.gen_noise_level)
        check_positive("rank_margin_db", self.rank_margin_db, allow_zero=True)
        check_positive("rank_margin_ssim", self.rank_margin_ssim, allow_zero=True)
        if self.gen_conditions and not self.policies:
            raise ValueError("policies: --gen-conditions > 0 needs at least one policy")
