"""``GRPOConfig``: every setting of a GRPO run, with help text, validated on construction.

Recipes are YAML files whose keys map one to one onto these fields; ``--set rl.kl_beta=0.004``
overrides one. Both are merged into the dataclass schema by OmegaConf (Hydra's config library),
which rejects unknown keys and wrong types by name; ``__post_init__`` rejects contradictions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

SCHEDULES = ("full", "sliding_window", "flow_grpo_fast", "random_subset")
SDE_KINDS = ("flow_grpo", "dance_grpo", "cps")
STD_MODES = ("group", "global", "max_group")
DATA_KINDS = ("pairs", "speed_pairs", "clips")
TRAINABLE = ("full", "lora", "self_attention", "camera")


def _help(text: str, default: Any = None, factory: Any = None) -> Any:
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(options)}")


def _positive(name: str, value: float, allow_zero: bool = False) -> None:
    if not (value >= 0 if allow_zero else value > 0):
        raise ValueError(f"{name}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


@dataclass
class ModelConfig:
    policy: str = _help(
        "the policy to post-train: a shipped name (tiny-t2v, tiny-warped-noise-t2v, "
        "tiny-camera-v2v, tiny-reproj-v2v), a folder written by save_pretrained, or a "
        "diffusers-format Wan2.1 folder",
        "tiny-camera-v2v",
    )
    architecture: str = _help(
        "full scale: the Wan2.1 architecture the policy folder must hold (wan2.1-t2v-1.3b or "
        "wan2.1-t2v-14b; checked on load), and what `geogrpo plan` sizes when the weights are "
        "not on this machine; empty at embedded scale",
        "",
    )
    conditioning: str = _help(
        "how the policy is conditioned when its folder does not say: a diffusers Wan2.1 folder "
        "or a random: policy loads as t2v unless this names camera_v2v, reproj_v2v or "
        "warped_noise_t2v; empty = the policy's own",
        "",
    )
    trainable: str = _help(
        "what trains: full, lora (adapters only), self_attention (Geo-Align), camera", "lora"
    )
    lora_rank: int = _help("LoRA rank (trainable: lora)", 16)
    lora_alpha: float = _help("LoRA alpha; 0 means alpha = rank", 0.0)
    lora_parts: list[str] = _help(
        "block parts that get adapters: self_attention, cross_attention, feed_forward",
        factory=lambda: ["self_attention", "cross_attention", "feed_forward"],
    )
    gradient_checkpointing: bool = _help("recompute activations in backward (saves memory)", False)
    device: str = _help("torch device of the policy and its rewards, e.g. cpu, cuda", "cpu")
    torch_threads: int = _help(
        "CPU threads for torch; 1 is fastest on a busy 2-core machine (measured 11x over 2)", 1
    )
    mixed_precision: str = _help(
        "no, or bf16: the transformer runs under bf16 autocast while the trained weights, their "
        "gradients and the optimizer stay float32 (master weights)",
        "no",
    )
    base_dtype: str = _help(
        "float32, or bfloat16: the frozen base's weights under LoRA (half the memory; the "
        "modules diffusers keeps in float32 stay float32, the adapters train in float32)",
        "float32",
    )
    compile: str = _help(
        "no, or a torch.compile backend (inductor; eager or aot_eager to check the wiring "
        "cheaply): every transformer block is compiled in place. inductor measured 1.20-1.47x "
        "on tiny-t2v's training step on one CPU thread after about 50 s of compiling (bench/"
        "compute_efficiency.py); it pays off on runs of more than a few dozen steps",
        "no",
    )
    verify_weights: bool = _help(
        "check every model and checkpoint the run loads against the sha256 in its manifest "
        "(a mismatch names the file); false loads your own edited weights unverified",
        True,
    )

    def __post_init__(self) -> None:
        _choice("model.trainable", self.trainable, TRAINABLE)
        _choice("model.compile", self.compile, ("no", "inductor", "aot_eager", "eager"))
        if self.architecture:
            from geogrpo.models.wan import CONFIGS

            _choice("model.architecture", self.architecture, tuple(CONFIGS))
        _choice("model.mixed_precision", self.mixed_precision, ("no", "bf16"))
        _choice("model.base_dtype", self.base_dtype, ("float32", "bfloat16"))
        if self.base_dtype != "float32" and self.trainable != "lora":
            raise ValueError(
                f"model.base_dtype: {self.base_dtype} stores frozen weights only, which needs "
                f"trainable: lora (got {self.trainable}); use mixed_precision: bf16 instead"
            )
        _positive("model.lora_rank", self.lora_rank)
        _positive("model.lora_alpha", self.lora_alpha, allow_zero=True)
        _positive("model.torch_threads", self.torch_threads)


@dataclass
class SamplingConfig:
    group_size: int = _help("G: samples per condition (the group GRPO normalises over)", 8)
    conditions_per_step: int = _help("N: conditions per step; a step samples N x G videos", 2)
    num_inference_steps: int = _help("denoising steps of a training rollout", 10)
    eval_num_inference_steps: int = _help(
        "ODE steps at evaluation (VGGRPO's denoising reduction: train with fewer)", 10
    )
    shift: float = _help("time shift of the grid (SD3/Wan; Wan uses 5 at 480p)", 3.0)
    sde_kind: str = _help("SDE step: flow_grpo, dance_grpo or cps", "flow_grpo")
    noise_level: float = _help("SDE noise level a (Flow-GRPO) or eta (DanceGRPO)", 0.7)
    schedule: str = _help(
        "which steps are SDE and trained: full, sliding_window (MixGRPO), flow_grpo_fast, "
        "random_subset (DanceGRPO)",
        "full",
    )
    window_size: int = _help("SDE steps per window (sliding_window, flow_grpo_fast)", 4)
    window_shift_interval: int = _help("iterations between window moves (sliding_window)", 1)
    window_stride: int = _help("steps the window moves each time (sliding_window)", 1)
    ode_tail_ratio: float = _help(
        "sliding_window: the share of the ODE grid after the window that is stepped (MixGRPO-"
        "Flash's compression of the deterministic tail; 1 = every step)",
        1.0,
    )
    fast_max_start_fraction: float = _help(
        "flow_grpo_fast: the window lies in this first fraction of the steps", 0.5
    )
    num_train_steps: int = _help("random_subset: trained steps per rollout", 4)
    guidance_scale: float = _help("classifier-free guidance of rollouts; 1 = off", 1.0)
    micro_batch_size: int = _help(
        "samples per forward pass in rollouts and updates (memory; gradient accumulation)", 8
    )

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(
                f"sampling.group_size: GRPO needs at least 2 samples per condition, got "
                f"{self.group_size}"
            )
        _positive("sampling.conditions_per_step", self.conditions_per_step)
        _positive("sampling.num_inference_steps", self.num_inference_steps)
        _positive("sampling.eval_num_inference_steps", self.eval_num_inference_steps)
        _positive("sampling.shift", self.shift)
        _choice("sampling.sde_kind", self.sde_kind, SDE_KINDS)
        _positive("sampling.noise_level", self.noise_level)
        _choice("sampling.schedule", self.schedule, SCHEDULES)
        _positive("sampling.micro_batch_size", self.micro_batch_size)
        if not 0 < self.ode_tail_ratio <= 1:
            raise ValueError(
                f"sampling.ode_tail_ratio: must be in (0, 1], got {self.ode_tail_ratio}"
            )
        if self.schedule in ("sliding_window", "flow_grpo_fast") and not (
            1 <= self.window_size <= self.num_inference_steps
        ):
            raise ValueError(
                f"sampling.window_size: must be in [1, num_inference_steps = "
                f"{self.num_inference_steps}], got {self.window_size}"
            )
        if self.schedule == "random_subset" and not (
            1 <= self.num_train_steps <= self.num_inference_steps
        ):
            raise ValueError(
                "sampling.num_train_steps: must be in [1, num_inference_steps], got "
                f"{self.num_train_steps}"
            )


@dataclass
class RewardSpec:
    name: str = _help("a reward's name (geogrpo.recipes.build.REWARDS)", "quality")
    weight: float = _help("its weight in the summed advantage (or the mean, rl.aggregate)", 1.0)
    options: dict[str, Any] = _help(
        "keyword arguments of the reward (e.g. source: latent, weights: [1, 1, 0, 0])",
        factory=dict,
    )


@dataclass
class RewardsConfig:
    rewards: list[RewardSpec] = _help(
        "the rewards, kept apart as [N, G, K] and normalised per rl.per_reward",
        factory=lambda: [RewardSpec()],
    )
    estimator: str = _help(
        "geometry estimator the rewards share (built once): tinygeo, flow_pnp, classical, or an "
        "adapter",
        "tinygeo",
    )
    estimator_options: dict[str, Any] = _help(
        "keyword arguments of the estimator (model_dir for adapters)", factory=dict
    )
    reference_geometry: str = _help(
        "v2v: the source geometry that reprojects the source into the target cameras for "
        "view_fidelity: estimated (the estimator on the source clip, as on real footage) or "
        "world (the world's true source depth and cameras, a shortcut only the world offers)",
        "estimated",
    )

    def __post_init__(self) -> None:
        _choice("rewards.reference_geometry", self.reference_geometry, ("estimated", "world"))
        if not self.rewards:
            raise ValueError("rewards.rewards: a run needs at least one reward")
        names = [r.name if isinstance(r, RewardSpec) else r["name"] for r in self.rewards]
        if len(set(names)) != len(names):
            raise ValueError(f"rewards.rewards: each reward may appear once, got {names}")


@dataclass
class RLConfig:
    per_reward: bool = _help(
        "normalise each reward within its group before combining (Geo-Align, VGGRPO); else "
        "normalise the weighted sum",
        True,
    )
    aggregate: str = _help("combine per-reward advantages: sum (Geo-Align) or mean (VGGRPO)", "sum")
    std_mode: str = _help("group std: group, global or max_group (Geo-Align)", "group")
    adv_clip_max: float = _help("clamp advantages to [-x, x] (Flow-GRPO's adv_clip_max)", 5.0)
    clip_range: float = _help("PPO clip range of the per-step ratio", 1e-3)
    kl_beta: float = _help("weight of the KL to the frozen reference policy; 0 = no KL", 0.0)
    timestep_weights: bool = _help(
        "timestep-aware loss weights (Geo-Align eq. 7), mean 1 over the trained steps", False
    )
    inner_epochs: int = _help("passes over one rollout batch (DEVIS-GRPO uses several)", 1)
    minibatches: int = _help("optimizer steps per pass; the batch is split this many ways", 1)
    log_prob_reduce: str = _help("per-sample log-prob: mean over latent elements, or sum", "mean")

    def __post_init__(self) -> None:
        _choice("rl.aggregate", self.aggregate, ("sum", "mean"))
        _choice("rl.std_mode", self.std_mode, STD_MODES)
        _positive("rl.adv_clip_max", self.adv_clip_max)
        _positive("rl.clip_range", self.clip_range)
        _positive("rl.kl_beta", self.kl_beta, allow_zero=True)
        _positive("rl.inner_epochs", self.inner_epochs)
        _positive("rl.minibatches", self.minibatches)
        _choice("rl.log_prob_reduce", self.log_prob_reduce, ("mean", "sum"))


@dataclass
class DataConfig:
    kind: str = _help(
        "training conditions: pairs (multi-view pairs, presets and extreme orbits), speed_pairs "
        "(Geo-Align: walking sources, rescaled game-style targets), clips (text-to-video)",
        "pairs",
    )
    train_items: int = _help("size of the training pool (train split, rendered once, cached)", 32)
    data_dir: str = _help("cache folder of rendered items (shared with pretraining)", "data")
    frames: int = _help("frames per clip, 4k + 1", 17)
    size: int = _help("height of clips (and their width when width is 0)", 96)
    width: int = _help("width of clips; 0 = square (size x size)", 0)
    seed: int = _help("dataset seed (cameras, captions); scenes are fixed per split index", 0)
    dynamic_fraction: float = _help("share of scenes with moving objects", 0.3)
    workers: int = _help("processes that render the pool the first time", 2)
    adevis_strategies: list[str] = _help(
        "DEVIS-GRPO: ADEVIS strategies drawn per group (rfa, rva); empty = direct targets",
        factory=list,
    )
    adevis_max_steps: int = _help("DEVIS-GRPO: most accumulation stages per sample", 2)
    adevis_stage_steps: int = _help("ODE steps of the intermediate ADEVIS stages", 6)
    decoupled_every: int = _help(
        "World-R1: every n-th step is a decoupled step on dynamic scenes with only "
        "decoupled_rewards; 0 = off",
        0,
    )
    decoupled_rewards: list[str] = _help(
        "World-R1: rewards of the decoupled steps", factory=lambda: ["quality"]
    )

    def __post_init__(self) -> None:
        _choice("data.kind", self.kind, DATA_KINDS)
        _positive("data.train_items", self.train_items)
        if self.frames < 1 or (self.frames - 1) % 4:
            raise ValueError(f"data.frames: must be 4k + 1 (Wan's layout), got {self.frames}")
        if self.size < 16 or self.size % 16:
            raise ValueError(f"data.size: must be a positive multiple of 16, got {self.size}")
        if self.width and (self.width < 16 or self.width % 16):
            raise ValueError(f"data.width: must be 0 or a multiple of 16 >= 16, got {self.width}")
        for s in self.adevis_strategies:
            _choice("data.adevis_strategies", s, ("rfa", "rva"))
        _positive("data.adevis_max_steps", self.adevis_max_steps)
        _positive("data.decoupled_every", self.decoupled_every, allow_zero=True)


@dataclass
class OptimConfig:
    lr: float = _help("AdamW learning rate", 1e-4)
    weight_decay: float = _help("AdamW weight decay", 0.0)
    betas: list[float] = _help("AdamW betas", factory=lambda: [0.9, 0.999])
    max_grad_norm: float = _help("clip the gradient norm to this; 0 = no clipping", 1.0)
    warmup_steps: int = _help("linear learning-rate warm-up steps", 0)

    def __post_init__(self) -> None:
        _positive("optim.lr", self.lr)
        _positive("optim.max_grad_norm", self.max_grad_norm, allow_zero=True)
        if len(self.betas) != 2:
            raise ValueError(f"optim.betas: need two values, got {list(self.betas)}")


@dataclass
class EvalConfig:
    every: int = _help("evaluate every n steps (and before the first and after the last)", 10)
    train_conditions: int = _help("fixed training conditions evaluated (the pool's first)", 2)
    val_conditions: int = _help("fixed held-out val conditions evaluated", 4)
    videos: int = _help("val conditions written as side-by-side videos each evaluation", 2)
    sde: bool = _help("also evaluate with the SDE sampler (else the ODE sampler only)", False)
    base_tail_steps: int = _help(
        "hand the last k ODE steps to the frozen base model at evaluation (MixGRPO's remedy "
        "for reward hacking); 0 = off",
        0,
    )

    def __post_init__(self) -> None:
        _positive("eval.every", self.every, allow_zero=True)
        _positive("eval.val_conditions", self.val_conditions, allow_zero=True)
        _positive("eval.train_conditions", self.train_conditions, allow_zero=True)


@dataclass
class LoggingConfig:
    tensorboard: bool = _help("also log to TensorBoard (JSONL is always written)", True)
    truth_every: int = _help(
        "decode the rollouts for ground-truth diagnostics every n steps even when no reward "
        "needs pixels (latent rewards); 0 = only when decoded anyway",
        1,
    )
    watchdog_tolerance: float = _help(
        "warn when a watchdog statistic (brightness, saturation, high-frequency energy) of the "
        "fixed evaluation outputs drifts this far (relative) from the base model's",
        0.3,
    )
    progress: bool = _help("show a progress bar", True)


@dataclass
class CheckpointConfig:
    every: int = _help("save a checkpoint every n steps (and at the end); 0 = only at the end", 10)
    keep_last: int = _help("checkpoints kept on disk (older ones are deleted)", 2)

    def __post_init__(self) -> None:
        _positive("checkpoint.every", self.every, allow_zero=True)
        _positive("checkpoint.keep_last", self.keep_last)


@dataclass
class TrainConfig:
    max_bad_steps: int = _help(
        "a step whose rewards, advantages, loss or gradient norm are not finite is skipped "
        "(logged as fault/skipped_step with its cause); after this many in a row the run saves "
        "a checkpoint and stops with the cause (may be raised on resume)",
        3,
    )
    deterministic: bool = _help(
        "deterministic GPU kernels: torch.use_deterministic_algorithms, "
        "CUBLAS_WORKSPACE_CONFIG=:4096:8 and the math attention backend (slower; the CPU is "
        "deterministic either way)",
        False,
    )

    def __post_init__(self) -> None:
        _positive("train.max_bad_steps", self.max_bad_steps)


@dataclass
class DistributedConfig:
    strategy: str = _help(
        "how ranks share the model under torchrun: ddp (every rank holds the whole model, "
        "gradients are all-reduced) or fsdp (FSDP2 fully_shard per transformer block: weights, "
        "gradients and optimizer states sharded over the ranks)",
        "ddp",
    )
    cpu_offload: bool = _help("fsdp: keep sharded weights and optimizer states on the CPU", False)
    backend: str = _help(
        "process-group backend: auto (nccl on CUDA, else gloo), nccl or gloo", "auto"
    )
    timeout_s: float = _help(
        "seconds to wait for every rank at the rendezvous and at each collective before failing",
        600.0,
    )

    def __post_init__(self) -> None:
        _choice("distributed.strategy", self.strategy, ("ddp", "fsdp"))
        _choice("distributed.backend", self.backend, ("auto", "nccl", "gloo"))
        _positive("distributed.timeout_s", self.timeout_s)
        if self.cpu_offload and self.strategy != "fsdp":
            raise ValueError("distributed.cpu_offload: needs distributed.strategy: fsdp")


@dataclass
class GRPOConfig:
    """One GRPO run. See each section's fields; ``geogrpo config show`` prints them with help."""

    recipe: str = _help("recipe name (informational)", "custom")
    seed: int = _help("seed of every random draw (conditions, noise, plans, minibatches)", 0)
    steps: int = _help("training steps (one rollout batch + its updates each)", 20)
    model: ModelConfig = _help("the policy", factory=ModelConfig)
    sampling: SamplingConfig = _help("rollouts", factory=SamplingConfig)
    rewards: RewardsConfig = _help("rewards", factory=RewardsConfig)
    rl: RLConfig = _help("advantages and loss", factory=RLConfig)
    data: DataConfig = _help("training conditions", factory=DataConfig)
    optim: OptimConfig = _help("optimizer", factory=OptimConfig)
    eval: EvalConfig = _help("evaluation on fixed conditions", factory=EvalConfig)
    logging: LoggingConfig = _help("logging", factory=LoggingConfig)
    checkpoint: CheckpointConfig = _help("checkpoints", factory=CheckpointConfig)
    train: TrainConfig = _help("fault tolerance and determinism of the loop", factory=TrainConfig)
    distributed: DistributedConfig = _help(
        "multi-process training under torchrun", factory=DistributedConfig
    )

    def __post_init__(self) -> None:
        _positive("steps", self.steps)
        if self.distributed.cpu_offload and not self.model.device.startswith("cuda"):
            raise ValueError(
                f"distributed.cpu_offload: moves a GPU run's weights to the CPU; this run is on "
                f"model.device {self.model.device!r} already (set model.device: cuda or drop it)"
            )
        specs = [r.name for r in self.rewards.rewards]
        unknown = [n for n in self.data.decoupled_rewards if n not in specs]
        if self.data.decoupled_every and unknown:
            raise ValueError(f"data.decoupled_rewards: {unknown} are not among the rewards {specs}")
        if self.eval.base_tail_steps >= self.sampling.eval_num_inference_steps:
            raise ValueError(
                "eval.base_tail_steps: must be below sampling.eval_num_inference_steps"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


def recipe_names() -> list[str]:
    """Recipes shipped with the package (``recipes/<name>.yaml``)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml") if "." not in p.stem)


def recipe_path(name: str, scale: str = "embedded") -> Path:
    """The file of a recipe at a scale; a path to a YAML file is taken as it is."""
    if scale not in ("embedded", "full"):
        raise ValueError(f"scale: expected embedded or full, got {scale!r}")
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"recipe: no file {path}")
        return path
    if name not in recipe_names():
        raise ValueError(f"recipe: unknown name {name!r}; known are {', '.join(recipe_names())}")
    path = RECIPES_DIR / (f"{name}.yaml" if scale == "embedded" else f"{name}.full.yaml")
    if not path.is_file():
        full = sorted(p.name.split(".")[0] for p in RECIPES_DIR.glob("*.full.yaml"))
        raise ValueError(
            f"scale: recipe {name!r} has no {scale}-scale file ({path.name}); the recipes on "
            f"local Wan2.1 weights are {', '.join(full)}"
        )
    return path


def load_config(
    recipe: str | None = None,
    scale: str = "embedded",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> GRPOConfig:
    """Defaults <- recipe <- ``config_file`` <- ``overrides`` (``section.field=value``; a
    dict-valued field such as ``rewards.estimator_options={}`` is replaced, not merged)."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    layers = []
    if recipe is not None:
        layers.append((str(recipe_path(recipe, scale)), None))
    if config_file is not None:
        if not Path(config_file).is_file():
            raise FileNotFoundError(f"config: no file {config_file}")
        layers.append((str(config_file), None))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set: expected section.field=value, got {item!r}")
        layers.append(("--set " + item, item))
    merged = OmegaConf.structured(GRPOConfig)
    for where, item in layers:
        try:
            layer = OmegaConf.from_dotlist([item]) if item else OmegaConf.load(where)
            key = item.split("=", 1)[0].strip() if item else ""
            value = OmegaConf.select(layer, key) if key else None
            if isinstance(value, DictConfig):  # --set replaces a dict (merging keeps old keys)
                OmegaConf.update(merged, key, value, merge=False)
            else:  # lists are replaced by a merge too
                merged = OmegaConf.merge(merged, layer)
        except OmegaConfBaseException as err:
            key = getattr(err, "full_key", None) or ""
            known = _known_keys(GRPOConfig, key.rsplit(".", 1)[0] if "." in key else "")
            raise ValueError(
                f"{where}: {key or 'config'}: {str(err).splitlines()[0]}"
                + (f"; known keys here: {', '.join(known)}" if known else "")
            ) from None
        except Exception as err:  # a file that is not YAML
            raise ValueError(f"{where}: not a readable YAML config ({err})") from None
    try:
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ValueError(f"config: {str(err).splitlines()[0]}") from None
    assert isinstance(config, GRPOConfig)
    return config


def _known_keys(cls: type, prefix: str) -> list[str]:
    for part in [p for p in prefix.split(".") if p]:
        sub = {f.name: f for f in fields(cls)}.get(part)
        if sub is None or not is_dataclass(sub.default_factory()):
            return []
        cls = type(sub.default_factory())
    return [f.name for f in fields(cls)]


def config_to_yaml(config: GRPOConfig, with_help: bool = True) -> str:
    """The resolved config as YAML; with ``with_help`` each field carries its help as a comment."""
    lines: list[str] = []

    def emit(obj: Any, indent: int) -> None:
        for f in fields(obj):
            value = getattr(obj, f.name)
            pad = "  " * indent
            if with_help and f.metadata.get("help"):
                lines.append(f"{pad}# {f.metadata['help']}")
            if is_dataclass(value):
                lines.append(f"{pad}{f.name}:")
                emit(value, indent + 1)
            elif isinstance(value, list) and value and is_dataclass(value[0]):
                lines.append(f"{pad}{f.name}:")
                for item in value:
                    d = asdict(item)
                    lines.append(f"{pad}  - {_flow(d)}")
            else:
                lines.append(f"{pad}{f.name}: {_scalar(value)}")

    emit(config, 0)
    return "\n".join(lines) + "\n"


def _scalar(value: Any) -> str:
    import json

    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return repr(value)


def _flow(d: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in d.items()) + "}"


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"rl": {"kl_beta": 0}}`` -> ``{"rl.kl_beta": 0}`` (lists kept whole)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k not in ("options", "estimator_options"):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
