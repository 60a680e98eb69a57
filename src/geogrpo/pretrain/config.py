"""Settings of every ``geogrpo pretrain`` command, one dataclass each.

Kept apart from the training loops so that the command line can build its parser (every flag,
its default and its help) without importing torch, diffusers or the models; the checks in
``__post_init__`` import ``geogrpo.utils.checks`` (and so torch) when a config is made.
"""

from __future__ import annotations

from dataclasses import dataclass

LOSSES = ("velocity", "sample")
EXPORT_DTYPES = ("float16", "bfloat16", "float32")


@dataclass
class AutoencoderPretrainConfig:
    """Settings of ``geogrpo pretrain autoencoder``."""

    out: str = "runs/pretrain/tiny-autoencoder"
    data_dir: str = "data/t2v"
    n_train: int = 900
    n_val: int = 64
    frames: int = 17
    size: int = 96
    steps: int = 3000
    batch_frames: int = 16
    crop: int = 64
    lr: float = 1e-3
    latent_noise: float = 0.05
    frame_channels: int = 16
    widths: tuple[int, ...] = (16, 32, 64)
    eval_every: int = 250
    seed: int = 0
    stats_clips: int = 128
    resume: bool = False  # continue from out/latest/train_state.pt exactly (see the policy's)

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_int_range, check_positive

        check_int_range("steps", self.steps, 1)
        check_int_range("batch_frames", self.batch_frames, 1)
        check_positive("lr", self.lr)
        if self.crop % 8:
            raise ValueError(f"crop: {self.crop} must be a multiple of 8 (the encoder's stride)")


@dataclass
class PolicyPretrainConfig:
    """Settings of ``geogrpo pretrain policy``: one tiny DiT (+ text encoder) per conditioning."""

    conditioning: str = "t2v"
    autoencoder: str = "tiny-autoencoder"
    out: str = "runs/pretrain/tiny-t2v"
    data_dir: str = "data"
    n_train: int = 900
    n_val: int = 32
    frames: int = 17
    size: int = 96
    steps: int = 2000
    batch: int = 8
    lr: float = 5e-4
    layers: int = 4
    heads: int = 6  # width heads x head_dim = 192: beat 128 at equal wall time (bench/RESULTS.md)
    head_dim: int = 32
    ffn_dim: int = 384
    text_dim: int = 64
    prediction: str = "sample"
    # "velocity": MSE of v (SD3/Wan); "sample": MSE of x0, i.e. v-MSE weighted by t^2. With
    # x0 prediction, v-MSE puts ~1/t^2 of the weight on nearly clean inputs (fine detail) and
    # little on high noise, where layout, camera motion and copying from the source are learned.
    loss: str = "velocity"
    time_shift: float = 3.0  # t = s u / (1 + (s - 1) u), u logit-normal; s > 1 favours noise
    # camera_v2v: a Plücker ray per token (models.camera). Continuing a rayless policy with
    # --init-from adds the (zero-initialised) ray encoders and starts from its exact function.
    camera_rays: bool = False
    # camera_v2v: the PRoPE camera-attention branch (models.camera), zero-initialised like rays
    camera_attention: bool = False
    # share of training prompts replaced by the empty prompt, so that classifier-free guidance
    # (generate(..., guidance_scale=s)) has an unconditional model to push away from
    prompt_dropout: float = 0.0
    init_from: str = ""  # a saved policy (name or folder) to continue from; sizes must match
    eval_every: int = 500  # also writes the policy so far to out/latest
    seed: int = 0
    workers: int = 1  # processes rendering the items not in data_dir yet (one thread each)
    # continue an interrupted run from its last evaluation (out/latest/train_state.pt) exactly:
    # same weights, optimizer, schedule and random stream as if it had not stopped
    resume: bool = False
    # where the DiT trains; data, encoding and the random draws (times, noise) stay on the CPU,
    # so a seed draws the same batches on every device
    device: str = "cpu"

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_choice, check_device, check_int_range, check_positive

        check_int_range("steps", self.steps, 1)
        check_int_range("batch", self.batch, 1)
        check_int_range("layers", self.layers, 1)
        check_int_range("workers", self.workers, 1)
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

    source: str = "runs/pretrain/tiny-t2v"
    out: str = "src/geogrpo/models/pretrained/tiny-t2v"
    dtype: str = "float16"

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_choice

        check_choice("dtype", self.dtype, EXPORT_DTYPES)


@dataclass
class TinyGeoPretrainConfig:
    """Settings of ``geogrpo pretrain tinygeo``."""

    out: str = "runs/pretrain/tinygeo"
    data_dir: str = "data"
    n_train: int = 160  # multi-view pairs; each gives two clips
    n_val: int = 16
    n_heldout: int = 8
    steps: int = 1500
    batch: int = 8
    clip_frames: int = 9  # frames per training clip (temporal jitter picks them)
    lr: float = 1e-3
    dim: int = 128
    heads: int = 4
    layers: int = 4
    stitch_layer: int = 1
    size: int = 96
    frames: int = 17
    seed: int = 0
    eval_every: int = 500
    rotation_weight: float = 1.0
    init_from: str = ""  # a shipped model's name or a saved folder to continue from
    resume: bool = False  # continue from out/latest/train_state.pt exactly (pretrain policy's)

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_int_range, check_positive

        check_int_range("steps", self.steps, 1)
        check_int_range("clip_frames", self.clip_frames, 2, self.frames)
        check_positive("lr", self.lr)


@dataclass
class LGMPretrainConfig:
    """Settings of ``geogrpo pretrain lgm`` (VGGRPO's two-stage stitching against tinygeo)."""

    out: str = "runs/pretrain/tinygeo-lgm"
    geo: str = "tinygeo"  # the RGB geometry model to stitch to (name or folder)
    autoencoder: str = "tiny-autoencoder"
    data_dir: str = "data"
    n_train: int = 160
    n_val: int = 16
    feature_steps: int = 300  # stage 1: connector only, feature alignment
    prediction_steps: int = 300  # stage 2: connector + downstream layers, prediction alignment
    batch: int = 4
    lr: float = 1e-3
    hidden: int = 256
    frames: int = 17
    size: int = 96
    seed: int = 0
    save_every: int = 100  # steps (both stages counted) between saves of out/latest/train_state.pt
    resume: bool = False  # continue from out/latest/train_state.pt exactly (pretrain policy's)

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_int_range, check_positive

        check_int_range("feature_steps", self.feature_steps, 0)
        check_int_range("prediction_steps", self.prediction_steps, 0)
        check_int_range("save_every", self.save_every, 1)
        check_positive("lr", self.lr)


@dataclass
class QualityPretrainConfig:
    """Settings of ``geogrpo pretrain quality`` (the stand-in quality scorer)."""

    out: str = "runs/pretrain/tiny-quality"
    data_dir: str = "data"
    n_train: int = 160
    steps: int = 600
    batch: int = 32
    lr: float = 2e-3
    width: int = 32
    frames: int = 17
    size: int = 96
    seed: int = 0
    n_val: int = 16
    save_every: int = 100  # steps between saves of out/latest/train_state.pt
    resume: bool = False  # continue from out/latest/train_state.pt exactly (pretrain policy's)

    def __post_init__(self) -> None:
        from geogrpo.utils.checks import check_int_range, check_positive

        check_int_range("steps", self.steps, 1)
        check_int_range("save_every", self.save_every, 1)
        check_positive("lr", self.lr)
