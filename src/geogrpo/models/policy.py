"""``VideoPolicy``: a Wan DiT + video autoencoder + text encoder + one conditioning.

The policy is what GRPO updates: ``velocity(latents, t, condition)`` is the flow-matching
prediction ``v = eps - x0`` at time ``t`` (``t = 1`` noise). The autoencoder and text encoder
are frozen helpers; only the transformer (or its adapters / camera modules) trains.

Two on-disk layouts load through :meth:`VideoPolicy.from_pretrained`:

* ours (``save_pretrained``): ``policy.json``, ``transformer/`` (diffusers config + safetensors,
  conditioning modules included), ``autoencoder/``, ``text_encoder/``, ``manifest.json``.
  Shipped tiny checkpoints load by name (``"tiny-t2v"``, ``"tiny-camera-v2v"``, ...).
* a diffusers-format Wan2.1 checkpoint (``model_index.json``, ``transformer/``, ``vae/``,
  ``text_encoder/``, ``tokenizer/``): the full-scale path.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from torch import Tensor, nn

from geogrpo.models.autoencoder import (
    SPATIAL_STRIDE,
    check_video_shape,
    latent_frames,
    load_autoencoder,
)
from geogrpo.models.conditioning import (
    OUTPUT_FIELDS,
    Condition,
    Conditioning,
    ConditionInputs,
    make_conditioning,
)
from geogrpo.models.params import add_lora, select_trainable
from geogrpo.models.text import GrammarTextEncoder, UMT5TextEncoder
from geogrpo.models.wan import (
    CONFIGS,
    build_transformer,
    check_local_checkpoint,
    widen_patch_embedding,
)
from geogrpo.utils.checks import check_choice, check_int_range, check_prompts
from geogrpo.utils.integrity import (
    load_json_object,
    load_safetensors,
    verify_manifest,
    write_digests_manifest,
)
from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
# Shipped checkpoints; warped_noise_t2v reuses the t2v weights (the noise is the only change).
SHIPPED = {
    "tiny-t2v": ("tiny-t2v", "t2v"),
    "tiny-warped-noise-t2v": ("tiny-t2v", "warped_noise_t2v"),
    "tiny-camera-v2v": ("tiny-camera-v2v", "camera_v2v"),
    "tiny-reproj-v2v": ("tiny-reproj-v2v", "reproj_v2v"),
}
TRANSFORMER_WEIGHTS = "diffusion_pytorch_model.safetensors"
# What the transformer outputs. "velocity" (Wan's v = eps - x0) or "sample" (x0, turned into
# v = (x_t - x0) / t): a DiT whose patch tokens are wider than its hidden size (the embedded one:
# 64 channels x 2 x 2 = 256 > 128) cannot pass the noise through to predict v, and samples stay
# noisy; predicting x0 removes that need (Li & He 2025, "Back to Basics: Let Denoising
# Generative Models Denoise"). t is clamped below as they do, so v stays bounded near t = 0.
PREDICTIONS = ("velocity", "sample")
SAMPLE_PREDICTION_T_MIN = 0.05
RANDOM_PREFIX = "random:"  # random:wan2.1-t2v-1.3b, a full-size architecture with random weights
_T2V_FAMILY = {"t2v", "warped_noise_t2v"}  # same weights, different initial noise


def policy_dir(name_or_path: str | Path) -> Path:
    """The folder of a shipped policy name, or the path itself."""
    if str(name_or_path) in SHIPPED:
        return PRETRAINED_DIR / SHIPPED[str(name_or_path)][0]
    return Path(name_or_path)


def tiny_transformer_config(
    latent_channels: int,
    conditioning: Conditioning,
    text_dim: int,
    layers: int = 4,
    heads: int = 4,
    head_dim: int = 32,
    ffn_dim: int = 256,
) -> dict:
    """A small ``WanTransformer3DModel`` config for the embedded scale (same class as 1.3B)."""
    return {
        "patch_size": (1, 2, 2),
        "num_attention_heads": heads,
        "attention_head_dim": head_dim,
        "in_channels": latent_channels + conditioning.extra_channels(latent_channels),
        "out_channels": latent_channels,
        "text_dim": text_dim,
        "freq_dim": 64,
        "ffn_dim": ffn_dim,
        "num_layers": layers,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "rope_max_seq_len": 256,
    }


class VideoPolicy(nn.Module):
    """See the module docstring. ``autocast_dtype`` (e.g. ``torch.bfloat16``) switches mixed
    precision for the transformer on CPU and GPU alike; ``prediction`` says what the
    transformer outputs (see :data:`PREDICTIONS`); ``velocity`` returns v either way."""

    def __init__(
        self,
        transformer: nn.Module,
        autoencoder: nn.Module,
        text_encoder: nn.Module,
        conditioning: Conditioning,
        autocast_dtype: torch.dtype | None = None,
        prediction: str = "velocity",
    ) -> None:
        super().__init__()
        self.transformer = transformer
        self.autoencoder = autoencoder.requires_grad_(False).eval()
        self.text_encoder = text_encoder.requires_grad_(False).eval()
        self.conditioning = conditioning
        self.autocast_dtype = autocast_dtype
        self.prediction = check_choice("prediction", prediction, PREDICTIONS)
        expected = autoencoder.latent_channels
        expected += conditioning.extra_channels(expected)
        if self.transformer_config.in_channels != expected:
            raise ValueError(
                f"transformer: in_channels {self.transformer_config.in_channels} does not fit "
                f"{conditioning.name} on a {autoencoder.latent_channels}-channel autoencoder "
                f"(expected {expected})"
            )

    @property
    def transformer_config(self):
        return self.transformer.config

    @property
    def latent_channels(self) -> int:
        return self.autoencoder.latent_channels

    @property
    def device(self) -> torch.device:
        """Where the transformer's weights are (move the whole policy with ``.to(device)``)."""
        return next(self.transformer.parameters()).device

    # -- encoders -----------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """``[B, 3, 4k + 1, H, W]`` in ``[-1, 1]`` -> latents ``[B, C, k + 1, H / 8, W / 8]``."""
        self.check_video(video)
        return self.autoencoder.encode(video.to(self.device, torch.float32))

    def decode(self, latents: Tensor, clamp: bool = True) -> Tensor:
        return self.autoencoder.decode(latents.to(self.device, torch.float32), clamp=clamp)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> Tensor:
        return self.text_encoder(list(prompts))

    def check_video(self, video: Tensor) -> None:
        patch = self.transformer_config.patch_size
        check_video_shape(video, SPATIAL_STRIDE * max(patch[1], patch[2]))

    def latent_shape(self, batch: int, num_frames: int, height: int, width: int) -> tuple:
        """Latent shape of ``batch`` clips; checks Wan frame counts and divisibility, naming
        the argument at fault."""
        check_int_range("num_frames", num_frames, 1)
        if (num_frames - 1) % 4:
            lower = num_frames - (num_frames - 1) % 4
            raise ValueError(
                f"num_frames: {num_frames}; Wan models take 4k + 1 frames (e.g. {lower} or "
                f"{lower + 4})"
            )
        patch = self.transformer_config.patch_size
        stride = SPATIAL_STRIDE * max(patch[1], patch[2])
        for name, size in (("height", height), ("width", width)):
            check_int_range(name, size, 1)
            if size % stride:
                nearest = sorted({max(size - size % stride, stride), size - size % stride + stride})
                raise ValueError(
                    f"{name}: {size} is not divisible by {stride}; use a multiple such as "
                    + " or ".join(map(str, nearest))
                )
        return (
            batch,
            self.latent_channels,
            latent_frames(num_frames),
            height // SPATIAL_STRIDE,
            width // SPATIAL_STRIDE,
        )

    def prepare(
        self,
        prompts: list[str],
        inputs: ConditionInputs | None = None,
        *,
        guidance_scale: float = 1.0,
        negative_prompt: str = "",
    ) -> Condition:
        """Encode text and everything the conditioning needs, once per batch.

        ``prompts`` is a list of strings; a single string is one prompt. ``inputs`` holds the
        raw conditions; a field this policy's conditioning does not take (``cameras`` for
        ``t2v``) is an error that names it.

        ``guidance_scale`` != 1 turns on classifier-free guidance against ``negative_prompt``
        (Wan samples at 5 with a negative prompt; the embedded policies learn the empty prompt
        with ``geogrpo pretrain policy --prompt-dropout``). Only the text is guided: the source
        video and cameras of a v2v condition stay in both passes.
        """
        prompts = check_prompts("prompts", prompts)
        if not isinstance(negative_prompt, str):
            raise ValueError(f"negative_prompt: expected a string, got {negative_prompt!r}")
        if not 0 <= float(guidance_scale) < float("inf"):
            raise ValueError(
                f"guidance_scale: {guidance_scale} must be finite and >= 0 (1 = no guidance)"
            )
        inputs = inputs if inputs is not None else ConditionInputs()
        if not isinstance(inputs, ConditionInputs):
            raise ValueError(
                f"inputs: expected a ConditionInputs, got {type(inputs).__name__}; build one "
                "with geogrpo.train.conditions or ConditionInputs(source_video=..., ...)"
            )
        name = self.conditioning.name
        extra = [k for k in inputs.given() if k not in (*OUTPUT_FIELDS, *self.conditioning.accepts)]
        if extra:
            takes = ", ".join(self.conditioning.accepts) or "no input beyond the prompt"
            raise ValueError(f"inputs: {name} does not take {', '.join(extra)} (it takes {takes})")
        given = [k for k in inputs.given() if k not in OUTPUT_FIELDS]
        sized = [getattr(inputs, k).shape[0] for k in given]
        if sized and sized[0] != len(prompts):
            raise ValueError(
                f"inputs: {sized[0]} conditions for {len(prompts)} prompts; give one per prompt"
            )
        condition = Condition(
            prompts=list(prompts),
            text=self.encode_text(prompts),
            cameras=inputs.cameras,
            intrinsics=inputs.intrinsics,
            guidance_scale=float(guidance_scale),
        )
        if guidance_scale != 1.0:
            condition.uncond_text = self.encode_text([negative_prompt] * len(prompts))
        return self.conditioning.prepare(self, condition, inputs)

    def initial_noise(
        self,
        condition: Condition,
        num_frames: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Drawn on the CPU with a CPU ``generator``, then moved to the policy's device: a seed
        gives the same noise on every device."""
        shape = self.latent_shape(len(condition), num_frames, height, width)
        return self.conditioning.initial_noise(shape, condition, generator).to(self.device)

    # -- the denoiser -------------------------------------------------------------------------

    def velocity(self, latents: Tensor, t: Tensor | float, condition: Condition) -> Tensor:
        """Flow-matching velocity ``[B, C, F, h, w]`` (float32) at times ``t`` in ``[0, 1]``,
        classifier-free guided when the condition asks for it (two passes)."""
        if condition.text is None:
            raise ValueError("condition: no text states; build conditions with policy.prepare")
        if len(condition) != latents.shape[0]:
            raise ValueError(
                f"condition: {len(condition)} conditions for a batch of {latents.shape[0]} latents"
            )
        t = torch.as_tensor(t, dtype=torch.float32, device=latents.device).expand(latents.shape[0])
        v = self._velocity(latents, t, condition.text, condition)
        if condition.guidance_scale == 1.0:
            return v
        if condition.uncond_text is None:
            raise ValueError(
                "condition: guidance_scale != 1 needs uncond_text; build it with "
                "policy.prepare(..., guidance_scale=...)"
            )
        v_uncond = self._velocity(latents, t, condition.uncond_text, condition)
        return v_uncond + condition.guidance_scale * (v - v_uncond)

    def _velocity(self, latents: Tensor, t: Tensor, text: Tensor, condition: Condition) -> Tensor:
        x = self.conditioning.model_input(latents, condition)
        autocast = (
            torch.autocast(latents.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else nullcontext()
        )
        # The conditioning's camera geometry (inverses, rays) is set up in float32, outside
        # autocast; only the transformer, its camera modules included, runs in autocast_dtype.
        with self.conditioning.context(self.transformer, condition, latents), autocast:
            out = self.transformer(
                hidden_states=x,
                timestep=t * 1000.0,  # Wan's timestep embedding expects [0, 1000]
                encoder_hidden_states=text.to(latents.device),
                return_dict=False,
            )[0]
        out = self.conditioning.output(out, latents).float()
        if self.prediction == "sample":
            tt = t.view(-1, *[1] * (latents.ndim - 1)).clamp_min(SAMPLE_PREDICTION_T_MIN)
            return (latents.float() - out) / tt
        return out

    def select_trainable(self, selector: str) -> list[str]:
        """Choose what trains: ``full``, ``lora``, ``self_attention`` or ``camera``."""
        return select_trainable(self.transformer, selector)

    def add_lora(self, rank: int = 16, alpha: float | None = None, parts=None) -> list[str]:
        """Wrap the transformer with LoRA adapters in place; only they train. Returns their names.

        ``parts`` are block parts of :data:`geogrpo.models.params.LORA_TARGETS` (all by default).
        """
        if hasattr(self.transformer, "peft_config"):
            raise ValueError("transformer: already has LoRA adapters")
        kwargs = {} if parts is None else {"parts": tuple(parts)}
        self.transformer = add_lora(self.transformer, rank, alpha, **kwargs)
        return self.select_trainable("lora")

    def enable_gradient_checkpointing(self) -> None:
        base = getattr(self.transformer, "get_base_model", lambda: self.transformer)()
        self.conditioning.enable_gradient_checkpointing(base)

    def compile_blocks(self, backend: str = "inductor") -> None:
        """``torch.compile`` every transformer block in place (``nn.Module.compile``).

        Per block rather than the whole module: parameter names stay as they are (checkpoints
        and LoRA key on them; compiling the module would prefix ``_orig_mod.``), FSDP2 shards
        the same blocks, and the conditionings' hooks and gradient checkpointing wrap the
        compiled call unchanged. Shapes are static: a new micro-batch shape compiles once more.
        """
        base = getattr(self.transformer, "get_base_model", lambda: self.transformer)()
        for block in base.blocks:
            block.compile(backend=backend, dynamic=False)

    # -- persistence --------------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write our layout (atomic files). With LoRA attached this saves the base transformer;
        adapters are saved separately (:func:`geogrpo.models.params.save_adapter`). ``dtype``
        (e.g. ``torch.float16``) stores the transformer's floating-point weights in that type,
        half the bytes for shipping; loading casts them back to the model's type."""
        out = Path(directory)
        transformer = getattr(self.transformer, "get_base_model", lambda: self.transformer)()
        (out / "transformer").mkdir(parents=True, exist_ok=True)
        config = {k: v for k, v in dict(transformer.config).items() if not k.startswith("_")}
        atomic_write_json(
            out / "transformer" / "config.json", {"_class_name": "WanTransformer3DModel", **config}
        )
        state = transformer.state_dict()
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        atomic_save_safetensors(out / "transformer" / TRANSFORMER_WEIGHTS, state)
        self.autoencoder.save_pretrained(out / "autoencoder")
        self.text_encoder.save_pretrained(out / "text_encoder")
        atomic_write_json(
            out / "policy.json",
            {
                "conditioning": self.conditioning.name,
                "conditioning_options": self.conditioning.options(),
                "prediction": self.prediction,
            },
        )
        write_digests_manifest(out)  # the sha256 of every weight file, checked on load
        return out

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        conditioning: str | None = None,
        *,
        verify: bool | None = None,
        **kwargs,
    ) -> VideoPolicy:
        """Load a shipped tiny policy by name, our layout, or a diffusers Wan2.1 folder.

        The folder's ``manifest.json`` is checked first: every weight file's sha256 must match
        (:func:`~geogrpo.utils.integrity.verify_manifest`; our layout must have one, a diffusers
        folder is checked when it has one). ``verify=False`` skips the check (your own edits)."""
        if str(name_or_path).startswith(RANDOM_PREFIX):
            architecture = str(name_or_path)[len(RANDOM_PREFIX) :]
            return cls.random_weights(architecture, conditioning or "t2v", **kwargs)
        root = policy_dir(name_or_path)
        if str(name_or_path) in SHIPPED:
            conditioning = conditioning or SHIPPED[str(name_or_path)][1]
        if (root / "model_index.json").is_file():
            verify_manifest(root, verify=verify, required=False)
            return cls._from_wan_checkpoint(root, conditioning or "t2v", **kwargs)
        if not (root / "policy.json").is_file():
            shipped = ", ".join(SHIPPED)
            raise FileNotFoundError(
                f"name_or_path: {name_or_path!r} is neither a shipped policy ({shipped}), a folder "
                "written by VideoPolicy.save_pretrained (policy.json), nor a diffusers-format "
                "Wan2.1 checkpoint (model_index.json)"
            )
        verify_manifest(root, verify=verify)  # the parts below are covered by this manifest
        saved = load_json_object(root / "policy.json", "policy description")
        name = conditioning or saved["conditioning"]
        options = saved.get("conditioning_options", {}) if name == saved["conditioning"] else {}
        cond = make_conditioning(name, **options)
        if cond.name != saved["conditioning"] and {cond.name, saved["conditioning"]} != _T2V_FAMILY:
            raise ValueError(
                f"conditioning: {cond.name!r} does not fit weights trained for "
                f"{saved['conditioning']!r}"
            )
        config = load_json_object(root / "transformer" / "config.json", "transformer config")
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        config["patch_size"] = tuple(config["patch_size"])
        transformer = WanTransformer3DModel(**config)
        cond.attach(transformer)
        transformer.load_state_dict(load_safetensors(root / "transformer" / TRANSFORMER_WEIGHTS))
        return cls(
            transformer,
            load_autoencoder(root / "autoencoder", verify=False),
            GrammarTextEncoder.from_pretrained(root / "text_encoder", verify=False),
            cond,
            prediction=saved.get("prediction", "velocity"),
            **kwargs,
        )

    @classmethod
    def random_weights(
        cls, architecture: str, conditioning: str = "t2v", seed: int = 0, **kwargs
    ) -> VideoPolicy:
        """A policy of a full-size Wan2.1 architecture (``wan2.1-t2v-1.3b``, ...) with random
        weights, for memory and speed checks of full-scale runs without the real weights:
        diffusers' Wan2.1 VAE with random weights, and :class:`RandomTextStates` in place of
        UMT5-XXL. Its videos are noise; the same ``seed`` builds the same weights."""
        from diffusers import AutoencoderKLWan

        from geogrpo.models.autoencoder import WanVideoAutoencoder
        from geogrpo.models.text import RandomTextStates

        if architecture not in CONFIGS:
            raise ValueError(
                f"name_or_path: {RANDOM_PREFIX}{architecture} names no architecture; use one of "
                + ", ".join(RANDOM_PREFIX + name for name in CONFIGS)
            )
        cond = make_conditioning(conditioning)
        config = dict(CONFIGS[architecture])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            autoencoder = WanVideoAutoencoder(AutoencoderKLWan())
            config["in_channels"] += cond.extra_channels(autoencoder.latent_channels)
            transformer = build_transformer(config)
            cond.attach(transformer)
        return cls(transformer, autoencoder, RandomTextStates(config["text_dim"]), cond, **kwargs)

    @classmethod
    def _from_wan_checkpoint(cls, root: Path, conditioning: str, **kwargs) -> VideoPolicy:
        """A diffusers-format Wan2.1 folder as a policy. A conditioning with input channels of
        its own (reproj_v2v) on a T2V transformer gets them zero-initialised
        (:func:`~geogrpo.models.wan.widen_patch_embedding`): the policy then samples exactly as
        the T2V model and ignores the condition until the patch embedding trains (LoRA leaves it
        frozen). Start GRPO from a model fine-tuned on the conditioning first, as DEVIS-GRPO
        starts from TrajectoryCrafter fine-tuned on Kubric-4D: a folder whose transformer
        already has the wider ``in_channels`` loads as it is."""
        check_local_checkpoint(root)
        from geogrpo.models.autoencoder import WanVideoAutoencoder

        cond = make_conditioning(conditioning)
        autoencoder = WanVideoAutoencoder.from_pretrained(root / "vae", verify=False)
        transformer = WanTransformer3DModel.from_pretrained(
            str(root / "transformer"), use_safetensors=True
        )
        extra = cond.extra_channels(autoencoder.latent_channels)
        if extra and transformer.config.in_channels == autoencoder.latent_channels:
            widen_patch_embedding(transformer, extra)
        cond.attach(transformer)
        return cls(
            transformer,
            autoencoder,
            UMT5TextEncoder.from_pretrained(root),
            cond,
            **kwargs,
        )
