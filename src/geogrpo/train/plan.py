"""Memory and time of full-scale GRPO on Wan2.1, before renting GPUs (``geogrpo plan``).

Everything here is a pure function of a :class:`~geogrpo.train.config.GRPOConfig` and a GPU
count; the only torch objects built are models on the ``meta`` device, for exact parameter counts.

**Memory.** Weights, gradients and AdamW states follow from the parameter counts. Activations
follow from what one Wan block (diffusers ``WanTransformerBlock``) saves for backward, listed
tensor by tensor in :func:`block_saved_bytes` for bf16 autocast and for float32. Under gradient
checkpointing each block keeps only its input, and one block's activations live at a time while
it is recomputed in backward. The peaks of the seven issue-6 measurements on an H200
(bench/RESULTS.md) are predicted by :func:`predict_update` without a fitted constant.

**Time.** Matmul and attention FLOPs of a block are counted exactly; elementwise kernels
(norms, modulation, rotary embedding, casts, LoRA's adapter path) are counted in bytes moved.
Time = FLOPs / an achieved FLOP/s + bytes / an achieved bandwidth. The FLOP/s is calibrated on
one measurement (the 1.3B full update's forward); the other six rows and every backward validate
it (:data:`ISSUE6_ROWS`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

GIB = 2**30
TEXT_TOKENS = 512  # UMT5 states per prompt (Wan pads every prompt to 512)
LATENT_CHANNELS = 16  # Wan2.1 VAE
SPATIAL_STRIDE, TEMPORAL_STRIDE = 8, 4  # Wan2.1 VAE
# H200 HBM3e is 4.8 TB/s; streaming elementwise kernels reach about 80-85 % of it. Documented,
# not fitted: it sets the cost of the bytes-bound kernels (about 20 % of a 1.3B forward).
ACHIEVED_BANDWIDTH_BYTES_S = 4.0e12
# Elementwise backward kernels read the incoming gradient and the saved inputs and write a
# gradient: about twice the bytes of their forward.
BACKWARD_ELEMENTWISE_FACTOR = 2.0
# FlashAttention-2 backward runs five S x S matmuls (recomputed scores, dV, dP, dQ, dK) to the
# forward's two (Dao 2023, Algorithm 2).
ATTENTION_BACKWARD_FACTOR = 2.5
# Usable bytes of the cards, as torch reports them (H100 80 GB: 81,559 MiB; H200: 143,771 MiB,
# bench/RESULTS.md), less a reserve for the CUDA context and allocator fragmentation, which
# torch.cuda.max_memory_allocated (what the measurements report) does not include.
CARDS_BYTES = {"80 GB": 81_559 * 2**20, "141 GB": 143_771 * 2**20}
CARD_RESERVE_BYTES = 2 * GIB

# The Wan2.1 VAE decoding one 480x832x81 clip in float32 on an H200 (bench/RESULTS.md, issue 6).
VAE_DECODE_S = 2.78
VAE_DECODE_PEAK_BYTES = 9.6 * GIB
VAE_DECODE_PIXELS = 81 * 480 * 832

# UMT5-XXL encoder of Wan2.1 (text_encoder/config.json of Wan-AI/Wan2.1-T2V-1.3B-Diffusers),
# kept on the policy's device in the checkpoint's bfloat16.
UMT5_XXL = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
    "tie_word_embeddings": False,
}

# VGGT's aggregator on one H100 with FlashAttention 3 (facebookresearch/vggt README, "Runtime
# and GPU Memory"): input frames -> (seconds, GB). Its 1-frame memory is below VGGT's weights
# in bf16, so the table counts the working set; we add the weights separately.
VGGT_TABLE = {1: (0.04, 1.88), 10: (0.14, 3.63), 20: (0.31, 5.58), 50: (1.04, 11.41),
              100: (3.12, 21.15), 200: (8.75, 40.63)}  # fmt: skip


@dataclass(frozen=True)
class RewardModel:
    """A reward model's footprint on the GPU, with where its numbers come from."""

    name: str
    params: float
    bytes_per_param: int
    source: str
    vggt_scale: float = 0.0  # working memory and time as VGGT's table x this (0: negligible)


REWARD_MODELS = {
    "vggt": RewardModel(
        "VGGT-1B", 1.2e9, 4, "Wang et al. CVPR 2025 (1.2 B parameters); its README's table", 1.0
    ),
    "mapanything": RewardModel(
        "MapAnything",
        0.56e9,
        4,
        "our estimate from its configs (DINOv2 ViT-L 304 M + 24-layer alternating-attention "
        "transformer + DPT/pose heads; the Hub card gives no count); working set as VGGT's",
        1.0,
    ),
    "da3": RewardModel(
        "Depth Anything 3 (DA3-LARGE)",
        0.35e9,
        4,
        "ByteDance-Seed/Depth-Anything-3 README model cards (DA3-LARGE 0.35 B); working set "
        "as VGGT's x params",
        0.35 / 1.2,
    ),
    "qwen_vl": RewardModel(
        "Qwen3-VL-8B view judge", 8.77e9, 2, "Qwen/Qwen3-VL-8B-Instruct (8.77 B, bf16)", 0.0
    ),
    "hpsv3": RewardModel(
        "HPSv3 quality scorer",
        8.29e9,
        2,
        "HPSv3 = Qwen2-VL-7B-Instruct (8.29 B, bf16) + a reward head (MizzenAI/HPSv3)",
        0.0,
    ),
}
EMBEDDED_PERCEPTION = ("tinygeo", "flow_pnp", "classical")  # CPU-size models (< 1 M params)


# -- parameters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WanShape:
    """The sizes of a Wan transformer that memory and FLOPs depend on."""

    dim: int
    ffn_dim: int
    heads: int
    head_dim: int
    layers: int
    in_channels: int
    patch: tuple[int, int, int]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WanShape:
        return cls(
            dim=config["num_attention_heads"] * config["attention_head_dim"],
            ffn_dim=config["ffn_dim"],
            heads=config["num_attention_heads"],
            head_dim=config["attention_head_dim"],
            layers=config["num_layers"],
            in_channels=config["in_channels"],
            patch=tuple(config["patch_size"]),
        )


# Which tensor each Linear of a Wan block reads, by module-name prefix: layers of one group
# share their input (q, k and v), and the attention outputs' input is SDPA's output.
INPUT_GROUPS = {
    "attn1.to_q": "attn1_in",
    "attn1.to_k": "attn1_in",
    "attn1.to_v": "attn1_in",
    "attn1.to_out": "attn1_out",
    "attn2.to_q": "attn2_in",
    "attn2.to_k": "text",
    "attn2.to_v": "text",
    "attn2.to_out": "attn2_out",
    "ffn.net.0": "ffn_in",
    "ffn.net.2": "ffn_hidden",
    "camera_projector": "camera_in",
    "camera_encoder": "camera_features",
    "camera_ray_encoder": "camera_features",
    "camera_attention_out": "camera_branch",
}


def input_group(name: str) -> str:
    """The input group of a block Linear's module name (see :data:`INPUT_GROUPS`)."""
    for prefix, group in INPUT_GROUPS.items():
        if name.startswith(prefix):
            return group
    raise ValueError(f"name: {name!r} is not a Linear of a Wan block this plan knows")


@dataclass(frozen=True)
class LoraLayer:
    """One adapted ``nn.Linear`` of a block: its sizes and which tensor it reads."""

    in_features: int
    out_features: int
    group: str

    @property
    def text_input(self) -> bool:
        return self.group == "text"


@dataclass(frozen=True)
class ParamCount:
    """Exact parameter counts of one policy set-up, from a model built on ``meta``."""

    total: int
    trained: int
    weight_bytes: int  # as stored (float32, or the bfloat16 frozen base under LoRA)
    weight_bytes_bf16_base: int  # the same model with its frozen base in bfloat16
    block_params: int  # one block, adapters and camera modules included
    block_trained: int
    block_linear_weights: int  # weights of one block's Linear layers (cast to bf16 by autocast)
    block_trained_linears: tuple[tuple[int, bool], ...]  # (weight elements, reads the text)
    trained_groups: frozenset[str]  # input groups of one block's trained base Linears
    trained_norms: frozenset[str]  # "attn1", "attn2": their q/k RMSNorm weights train
    head_trained: int  # trained parameters after the blocks (proj_out, norm_out's table)
    lora: tuple[LoraLayer, ...]  # one block's adapted layers
    lora_rank: int
    camera_projector: bool
    trains_modulation: bool  # trainable "full": the AdaLN tables and time embedding train
    shape: WanShape


def _hashable(config: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in config.items()))


def count_parameters(
    architecture: str | dict[str, Any],
    conditioning: str = "t2v",
    trainable: str = "full",
    lora_rank: int = 16,
    lora_parts: tuple[str, ...] = ("self_attention", "cross_attention", "feed_forward"),
    base_dtype: str = "float32",
) -> ParamCount:
    """Build the transformer on ``meta`` with the conditioning's modules (and LoRA adapters), select
    what trains as the trainer does, and count."""
    config = _architecture_config(architecture)
    if conditioning == "reproj_v2v":  # the source render and its hole mask as input channels
        config = {**config, "in_channels": config["in_channels"] * 2 + TEMPORAL_STRIDE}
    count = _count(_hashable(config), conditioning, trainable, lora_rank, tuple(lora_parts))
    if base_dtype == "bfloat16":
        count = replace(count, weight_bytes=count.weight_bytes_bf16_base)
    return count


@lru_cache(maxsize=32)
def _count(config: tuple, conditioning: str, trainable: str, rank: int, parts: tuple) -> ParamCount:
    import torch

    from geogrpo.models.conditioning import make_conditioning
    from geogrpo.models.params import add_lora, select_trainable
    from geogrpo.models.wan import build_transformer

    cfg = dict(config)
    model = build_transformer(cfg, device="meta")
    with torch.device("meta"):
        make_conditioning(conditioning).attach(model)
    keep_fp32 = set(model._keep_in_fp32_modules or ())
    lora: tuple[LoraLayer, ...] = ()
    if trainable == "lora":
        model = add_lora(model, rank=rank, parts=parts)
        block0 = model.get_base_model().blocks[0]
        lora = tuple(
            LoraLayer(m.in_features, m.out_features, input_group(name))
            for name, m in block0.named_modules()
            if hasattr(m, "lora_A") and hasattr(m, "base_layer")
        )
    select_trainable(model, trainable)
    named = list(model.named_parameters())
    total = sum(p.numel() for _, p in named)
    trained = sum(p.numel() for _, p in named if p.requires_grad)
    # a bfloat16 base keeps the trained weights and diffusers' float32 modules in float32
    bf16_base = sum(
        p.numel() * (2 if not p.requires_grad and keep_fp32.isdisjoint(n.split(".")) else 4)
        for n, p in named
    )
    block = [(n, p) for n, p in named if ".blocks.0." in f".{n}"]
    block0 = _block0(model)
    linears = [
        (name, m.weight) for name, m in block0.named_modules() if isinstance(m, torch.nn.Linear)
    ]
    bases = [
        (name.removesuffix(".base_layer"), m.weight)
        for name, m in block0.named_modules()
        if isinstance(m, torch.nn.Linear) and "lora_" not in name
    ]
    text_input = ("attn2.to_k", "attn2.to_v")
    head = [p for n, p in named if not any(s in n for s in ("blocks.", "embed"))]
    return ParamCount(
        total=total,
        trained=trained,
        weight_bytes=4 * total,
        weight_bytes_bf16_base=bf16_base,
        block_params=sum(p.numel() for _, p in block),
        block_trained=sum(p.numel() for _, p in block if p.requires_grad),
        block_linear_weights=sum(w.numel() for _, w in linears),
        block_trained_linears=tuple(
            (w.numel(), name.startswith(text_input)) for name, w in linears if w.requires_grad
        ),
        trained_groups=frozenset(input_group(n) for n, w in bases if w.requires_grad),
        trained_norms=frozenset(
            a for a in ("attn1", "attn2") if getattr(block0, a).norm_q.weight.requires_grad
        ),
        head_trained=sum(p.numel() for p in head if p.requires_grad),
        lora=lora,
        lora_rank=rank if lora else 0,
        camera_projector=hasattr(block0, "camera_projector"),
        trains_modulation=trainable == "full",
        shape=WanShape.from_config(cfg),
    )


def _block0(model: Any) -> Any:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.blocks[0]


def _architecture_config(architecture: str | dict[str, Any]) -> dict[str, Any]:
    from geogrpo.models.wan import CONFIGS

    if isinstance(architecture, dict):
        config = {k: v for k, v in architecture.items() if not k.startswith("_")}
        config["patch_size"] = tuple(config["patch_size"])
        return config
    if architecture not in CONFIGS:
        raise ValueError(
            f"model.architecture: unknown {architecture!r}; choose one of {', '.join(CONFIGS)}"
        )
    return dict(CONFIGS[architecture])


@lru_cache(maxsize=1)
def umt5_params() -> int:
    """Parameters of Wan's UMT5-XXL text encoder, counted on ``meta``."""
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        model = UMT5EncoderModel(UMT5Config(**UMT5_XXL))
    return sum(p.numel() for p in model.parameters())


@lru_cache(maxsize=1)
def vae_params() -> int:
    """Parameters of the Wan2.1 VAE (diffusers' default ``AutoencoderKLWan`` is Wan2.1's)."""
    import torch
    from diffusers import AutoencoderKLWan

    with torch.device("meta"):
        model = AutoencoderKLWan()
    return sum(p.numel() for p in model.parameters())


# -- one block: activations, FLOPs, bytes moved ----------------------------------------------


def tokens_per_sample(frames: int, height: int, width: int, conditioning: str = "t2v") -> int:
    """DiT tokens of one clip: latent frames x (H / 16) x (W / 16); camera_v2v doubles them
    (the source clip's tokens before the target's)."""
    latent_frames = (frames - 1) // TEMPORAL_STRIDE + 1
    tokens = latent_frames * (height // SPATIAL_STRIDE // 2) * (width // SPATIAL_STRIDE // 2)
    return tokens * (2 if conditioning == "camera_v2v" else 1)


def block_saved_bytes(count: ParamCount, tokens: int, bf16: bool) -> int:
    """Bytes one block saves for backward for one sample of ``tokens`` tokens.

    Tensor by tensor as diffusers' block and torch's autograd keep them (checked on the CPU
    against the saved tensors, tests/train/test_plan.py); per token, in bytes x the width D:

    * always: the three LayerNorms' float32 inputs (12; in float32 norm1 reads the block input,
      counted as such), each q/k RMSNorm's float32 input (3 x 4: its weight is float32, so torch
      takes the composite path under autocast), SDPA's q, k, v, output and the cross-attention's
      q, output (6 x 2), and GELU's input (2 x F);
    * a trained Linear keeps its input (q, k and v share one; the output projections' input is
      SDPA's output, kept already); a frozen one keeps none; a trained RMSNorm weight keeps the
      normalised tensor (4);
    * ``full`` (the AdaLN modulation trains): the two modulated norms (2 x 4) and the two gates'
      operands (attention output 2, feed-forward output 4, float32);
    * LoRA (peft): each adapter casts its input to its float32 weights' dtype and autocast casts
      it back, a bf16 copy per adapter (2 x in), and lora_B keeps its rank-wide input;
    * per token, not per D: the norms' statistics and the attentions' log-sum-exp; per block,
      for the 512 text tokens: the key RMSNorm and SDPA's k, v.

    float32 (``mixed_precision: no``) keeps the same tensors at 4 bytes, without the casts.
    """
    s, t, d, f = tokens, TEXT_TOKENS, count.shape.dim, count.shape.ffn_dim
    w = 2 if bf16 else 4
    width = {"attn1_in": d, "attn2_in": d, "ffn_in": d, "ffn_hidden": f, "camera_in": d}
    width |= {"camera_features": 0, "camera_branch": d}  # 12 numbers a frame; PRoPE's output
    kept = {"attn1_out", "attn2_out", "text"}  # SDPA's outputs; the text states are shared
    per = (12 if bf16 else 8) * d + 12 * d + 6 * w * d + w * f
    per += sum(w * width[g] for g in count.trained_groups - kept)
    per += 4 * d * (2 * ("attn1" in count.trained_norms) + ("attn2" in count.trained_norms))
    if count.trains_modulation:
        per += (12 + w) * d
    per += 3 * 8 + 3 * 4 + 2 * 4 * count.shape.heads  # statistics
    text = t * d * (2 * w + 4 + 4 * ("attn2" in count.trained_norms))
    out = s * per + text
    inputs = set()
    for layer in count.lora:
        rows = t if layer.text_input else s
        out += rows * 4 * count.lora_rank if not bf16 else rows * 2 * count.lora_rank
        if bf16:
            out += rows * 2 * layer.in_features
        elif layer.group not in kept | count.trained_groups | inputs:
            inputs.add(layer.group)  # float32: the adapters of a group read one tensor
            out += rows * 4 * layer.in_features
    return out


def block_input_bytes(count: ParamCount, tokens: int, bf16: bool) -> int:
    """The residual stream between blocks (what checkpointing keeps per block)."""
    return tokens * count.shape.dim * (2 if bf16 else 4)


def backward_transient_bytes(count: ParamCount, tokens: int, bf16: bool) -> int:
    """Gradients alive beside a block's activations early in its backward, the larger of:

    * the end of its recomputation: the incoming gradient (bf16 and its float32 copy) and the
      float32 residual update's temporaries (the input upcast, and the feed-forward output's
      unless the gate keeps it): 10 or 14 x D in bf16, 8 x D in float32;
    * the feed-forward output projection's backward: the residual's float32 gradient (4 x D)
      and the F-wide input gradient (2 x F), and with LoRA on it the adapter path's own, in
      bf16 and in its float32 (6 x F).
    """
    d, f = count.shape.dim, count.shape.ffn_dim
    lora_ffn = any(layer.group == "ffn_hidden" for layer in count.lora)
    if bf16:
        end = (10 if count.trains_modulation else 14) * d
        ffn = 4 * d + 2 * f + (6 * f if lora_ffn else 0)
    else:
        end = 8 * d
        ffn = 4 * d + 4 * f + (4 * f if lora_ffn else 0)
    return tokens * max(end, ffn)


def head_saved_bytes(count: ParamCount, tokens: int, bf16: bool) -> int:
    """After the blocks (norm_out's float32 input; with ``full`` its modulation's and proj_out's
    inputs) and the rotary tables (cos, sin; float32, shared by all blocks)."""
    per_d = 4 + ((4 + (2 if bf16 else 4)) if count.trains_modulation else 0)
    return tokens * count.shape.dim * per_d + 2 * tokens * count.shape.head_dim * 4


def block_forward_flops(count: ParamCount, tokens: int) -> tuple[float, float]:
    """(matmul, attention) FLOPs of one block's forward for one sample: Linear layers
    (q, k, v, o of both attentions, the text's k and v, the feed-forward, camera projector,
    LoRA) and the S x S self-attention and S x 512 cross-attention (2 matmuls each)."""
    s, t, d, f = tokens, TEXT_TOKENS, count.shape.dim, count.shape.ffn_dim
    matmul = 2 * s * (6 * d * d + 2 * d * f) + 2 * t * 2 * d * d
    if count.camera_projector:
        matmul += 2 * s * d * d
    for layer in count.lora:
        rows = t if layer.text_input else s
        matmul += 2 * rows * count.lora_rank * (layer.in_features + layer.out_features)
    attention = 4 * s * s * d + 4 * s * t * d
    return float(matmul), float(attention)


def block_backward_flops(count: ParamCount, tokens: int) -> float:
    """Backward of one block: every Linear's input gradient, the trained Linears' weight
    gradients, and the attention backward (:data:`ATTENTION_BACKWARD_FACTOR`)."""
    matmul, attention = block_forward_flops(count, tokens)
    weight_grads = sum(
        2 * (TEXT_TOKENS if text else tokens) * weights
        for weights, text in count.block_trained_linears
    )
    return matmul + weight_grads + ATTENTION_BACKWARD_FACTOR * attention


def block_elementwise_bytes(count: ParamCount, tokens: int, bf16: bool) -> float:
    """Bytes read and written by one block's forward outside matmuls and attention, per sample.

    bf16 per token, in units of D: self-attention 206 (float32 upcast, norm, modulation and
    downcast 36; two composite RMSNorms 80; rotary embedding in float32 60; gated residual 30),
    cross-attention 66, feed-forward 74, and GELU over the F-wide hidden 4 x F. float32 drops
    the casts (264 D + 8 F). LoRA per adapted layer: the input's casts and the adapter's scale
    and sum (14 x in + 12 x out bf16, 20 x out float32); camera_v2v's camera tokens 8 D.
    """
    s, d, f = tokens, count.shape.dim, count.shape.ffn_dim
    per = (346 * d + 4 * f) if bf16 else (264 * d + 8 * f)
    if count.camera_projector:
        per += 8 * d
    out = float(s * per)
    for layer in count.lora:
        rows = TEXT_TOKENS if layer.text_input else s
        lora = 14 * layer.in_features + 12 * layer.out_features if bf16 else 20 * layer.out_features
        out += rows * lora
    return out


# -- one update, as bench/wan_full_scale.py measures it ----------------------------------------


@dataclass(frozen=True)
class UpdateSetup:
    """One denoising step forward + backward of batch 1 (bench/wan_full_scale.py's row)."""

    architecture: str = "wan2.1-t2v-1.3b"
    conditioning: str = "t2v"
    trainable: str = "full"
    lora_rank: int = 32
    lora_parts: tuple[str, ...] = ("self_attention", "cross_attention", "feed_forward")
    checkpointing: bool = True
    base_dtype: str = "float32"
    mixed_precision: str = "bf16"
    frames: int = 81
    height: int = 480
    width: int = 832
    batch: int = 1


@dataclass(frozen=True)
class UpdateEstimate:
    """Predicted peak and seconds of one update, with the terms of the peak."""

    peak_bytes: float
    forward_s: float
    backward_s: float
    terms: dict[str, float] = field(default_factory=dict)

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / GIB


def setup_count(setup: UpdateSetup) -> ParamCount:
    return count_parameters(
        setup.architecture,
        setup.conditioning,
        setup.trainable,
        setup.lora_rank,
        setup.lora_parts,
        setup.base_dtype,
    )


def activation_bytes(
    count: ParamCount, tokens: int, batch: int, bf16: bool, checkpointing: bool
) -> float:
    """Activation memory of one micro-batch at the start of its backward (the peak of an update
    whose gradients already exist): with checkpointing every block's input plus one block's
    activations and its bf16 weight copies; without, every block's and the head's."""
    weights_copy = 2 * count.block_linear_weights if bf16 else 0
    block = batch * block_saved_bytes(count, tokens, bf16) + weights_copy
    transient = batch * backward_transient_bytes(count, tokens, bf16)
    if checkpointing:
        inputs = count.shape.layers * batch * block_input_bytes(count, tokens, bf16)
        return inputs + block + transient
    head = batch * head_saved_bytes(count, tokens, bf16)
    # float32: each block's norm1 keeps the block input itself (bf16 keeps a float32 copy)
    inputs = 0 if bf16 else count.shape.layers * batch * block_input_bytes(count, tokens, bf16)
    return count.shape.layers * block + head + inputs + transient


def predict_update(setup: UpdateSetup, flops_per_s: float | None = None) -> UpdateEstimate:
    """Peak memory and forward / backward seconds of one update as bench/wan_full_scale.py runs
    it: fp32 master weights (or the bf16 frozen base), no optimizer, gradients set to None after
    each of the two iterations, so they exist only during backward."""
    count = setup_count(setup)
    tokens = tokens_per_sample(setup.frames, setup.height, setup.width, setup.conditioning)
    bf16 = setup.mixed_precision == "bf16"
    b, layers = setup.batch, count.shape.layers
    weights = float(count.weight_bytes)
    if setup.checkpointing:
        # the start of backward holds every block's input; its end, every block's gradients
        # but block 0's (the first block backward reaches last); the larger is the peak
        acts = activation_bytes(count, tokens, b, bf16, True)
        inputs = layers * b * block_input_bytes(count, tokens, bf16)
        grads_end = 4.0 * (count.block_trained * (layers - 1) + count.head_trained)
        at_end = acts - inputs + b * block_input_bytes(count, tokens, bf16) + grads_end
        at_start = acts + 4.0 * count.head_trained
        peak_acts = max(at_start, at_end)
        terms = {"weights": weights, "activations + gradients": peak_acts}
    else:
        peak_acts = activation_bytes(count, tokens, b, bf16, False)
        terms = {"weights": weights, "activations": peak_acts}
    fwd_s, bwd_s = update_seconds(count, tokens, b, bf16, setup.checkpointing, flops_per_s)
    return UpdateEstimate(weights + peak_acts, fwd_s, bwd_s, terms)


def forward_seconds(
    count: ParamCount, tokens: int, batch: int, bf16: bool, flops_per_s: float | None = None
) -> float:
    """One forward of ``batch`` samples (grad or no grad: the same kernels)."""
    rate = flops_per_s or calibrated_flops_per_s()
    matmul, attention = block_forward_flops(count, tokens)
    moved = block_elementwise_bytes(count, tokens, bf16)
    per_block = (matmul + attention) / rate + moved / ACHIEVED_BANDWIDTH_BYTES_S
    return batch * count.shape.layers * per_block


def update_seconds(
    count: ParamCount,
    tokens: int,
    batch: int,
    bf16: bool,
    checkpointing: bool,
    flops_per_s: float | None = None,
) -> tuple[float, float]:
    """(forward, backward) seconds of one update; the backward of a checkpointed model runs
    each block's forward again."""
    rate = flops_per_s or calibrated_flops_per_s()
    forward = forward_seconds(count, tokens, batch, bf16, rate)
    moved = BACKWARD_ELEMENTWISE_FACTOR * block_elementwise_bytes(count, tokens, bf16)
    per_block = block_backward_flops(count, tokens) / rate + moved / ACHIEVED_BANDWIDTH_BYTES_S
    backward = batch * count.shape.layers * per_block + (forward if checkpointing else 0.0)
    return forward, backward


# -- the issue-6 measurements (bench/RESULTS.md), calibration and validation ---------------------


@dataclass(frozen=True)
class Measured:
    """One row of bench/RESULTS.md's "Full-scale Wan2.1 update on a GPU (issue 6)"."""

    label: str
    setup: UpdateSetup
    peak_gib: float
    forward_s: float
    backward_s: float


_LORA = {"trainable": "lora", "lora_rank": 32}
ISSUE6_ROWS = (
    Measured("1.3B t2v full", UpdateSetup(), 15.6, 0.68, 2.29),
    Measured("1.3B t2v full, no checkpointing", UpdateSetup(checkpointing=False), 138.0, 0.69, 1.6),
    Measured("1.3B t2v LoRA r32", UpdateSetup(**_LORA), 14.4, 0.83, 2.39),
    Measured(
        "1.3B camera_v2v self-attention",
        UpdateSetup(conditioning="camera_v2v", trainable="self_attention"),
        19.2,
        2.10,
        6.79,
    ),
    Measured("14B t2v LoRA r32", UpdateSetup("wan2.1-t2v-14b", **_LORA), 81.6, 4.04, 11.20),
    Measured(
        "1.3B t2v LoRA r32, bf16 base",
        UpdateSetup(**_LORA, base_dtype="bfloat16"),
        11.4,
        0.76,
        2.20,
    ),
    Measured(
        "14B t2v LoRA r32, bf16 base",
        UpdateSetup("wan2.1-t2v-14b", **_LORA, base_dtype="bfloat16"),
        53.5,
        3.77,
        10.39,
    ),
)
CALIBRATION_ROW = 0  # its forward sets the achieved FLOP/s; everything else validates


@lru_cache(maxsize=1)
def calibrated_flops_per_s() -> float:
    """Achieved matmul + attention FLOP/s: the calibration row's forward FLOPs over its measured
    forward seconds less the elementwise bytes' time (an H200 under bf16 autocast)."""
    row = ISSUE6_ROWS[CALIBRATION_ROW]
    count = setup_count(row.setup)
    s = row.setup
    tokens = tokens_per_sample(s.frames, s.height, s.width, s.conditioning)
    matmul, attention = block_forward_flops(count, tokens)
    layers = count.shape.layers
    moved_s = layers * block_elementwise_bytes(count, tokens, True) / ACHIEVED_BANDWIDTH_BYTES_S
    return layers * (matmul + attention) / (row.forward_s - moved_s)


def validation_table() -> list[dict[str, Any]]:
    """Each measured row beside its prediction and the relative errors."""
    rows = []
    for i, m in enumerate(ISSUE6_ROWS):
        p = predict_update(m.setup)
        rows.append(
            {
                "label": m.label,
                "role": "calibrates forward" if i == CALIBRATION_ROW else "validates",
                "measured": (m.peak_gib, m.forward_s, m.backward_s),
                "predicted": (p.peak_gib, p.forward_s, p.backward_s),
                "error": (
                    p.peak_gib / m.peak_gib - 1,
                    p.forward_s / m.forward_s - 1,
                    p.backward_s / m.backward_s - 1,
                ),
            }
        )
    return rows


# -- a GRPO run: every phase of a step, per GPU ----------------------------------------------

# H200 peaks (NVIDIA H200 datasheet, dense): BF16 989 TFLOP/s, FP32 67 TFLOP/s. Float32 runs
# (model.mixed_precision: no) scale the calibrated bf16 rate by their ratio.
FP32_OVER_BF16 = 67 / 989
GEOMETRY_REWARDS = ("trajectory", "smoothness", "reprojection", "reconstruction")
SHIPPED_JUDGES = ("tiny-quality", "tiny-quality-v1")


@dataclass
class RunPlan:
    """What one GPU holds and spends in one GRPO step of a run on ``gpus`` GPUs."""

    gpus: int
    samples_per_gpu: int
    memory: dict[str, float]  # bytes on each GPU, by part (phase peaks under "working: ...")
    cpu_bytes: float  # per GPU, on the host (distributed.cpu_offload)
    activations_ckpt: float  # one micro-batch's update, with gradient checkpointing
    activations_no_ckpt: float  # ... and without
    total_bytes: float
    seconds: dict[str, float]

    def fits(self, card: str) -> bool:
        return self.total_bytes <= CARDS_BYTES[card] - CARD_RESERVE_BYTES


@dataclass(frozen=True)
class RunShape:
    """What the plan read from the config, shared by every GPU count."""

    recipe: str
    architecture: str
    conditioning: str
    conditioning_from: str
    tokens: int
    count: ParamCount
    trained_steps: int
    rollout_forwards: float  # per sample: steps (mean over window positions) x (2 under CFG)
    decodes_per_step: float  # share of steps that decode the rollouts
    estimator: str  # "" when no reward runs one
    judge: str  # "" when no reward runs a Qwen-VL judge
    scorer: str  # "" when the quality reward runs no big scorer (HPSv3)
    notes: tuple[str, ...]


def resolve_architecture(config: Any) -> str | dict[str, Any]:
    """``model.architecture``, else the policy folder's ``transformer/config.json``."""
    from geogrpo.models.wan import CONFIGS

    if config.model.architecture:
        return config.model.architecture
    from geogrpo.models.policy import policy_dir

    path = policy_dir(config.model.policy) / "transformer" / "config.json"
    if not path.is_file():
        raise ValueError(
            f"model.architecture: empty, and {path} does not exist to read it from; pass "
            f"--set model.architecture=wan2.1-t2v-1.3b (or {', '.join(CONFIGS)})"
        )
    held = json.loads(path.read_text(encoding="utf-8"))
    keys = ("num_layers", "num_attention_heads", "attention_head_dim", "ffn_dim", "in_channels")
    for name, known in CONFIGS.items():
        if all(held.get(k) == known[k] for k in keys):
            return name
    return held


def resolve_conditioning(config: Any, override: str | None = None) -> tuple[str, str]:
    """(conditioning, where it came from): the override, the shipped policy or its
    ``policy.json``; else what ``data.kind`` conditions (a diffusers folder names none)."""
    from geogrpo.models.conditioning import CONDITIONINGS
    from geogrpo.models.policy import SHIPPED, policy_dir

    if override:
        if override not in CONDITIONINGS:
            raise ValueError(
                f"--conditioning: unknown {override!r}; choose one of {', '.join(CONDITIONINGS)}"
            )
        return override, "from --conditioning"
    if config.model.conditioning:
        return config.model.conditioning, "from model.conditioning"
    policy = str(config.model.policy)
    if policy in SHIPPED:
        return SHIPPED[policy][1], f"the shipped policy {policy}"
    saved = policy_dir(policy) / "policy.json"
    named = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
    if named.get("conditioning"):
        return named["conditioning"], f"from {saved}"
    if config.data.kind == "clips":
        return "t2v", "from data.kind clips"
    name = "reproj_v2v" if config.data.adevis_strategies else "camera_v2v"
    return name, f"from data.kind {config.data.kind}; the policy folder names none"


def trained_steps(sampling: Any) -> int:
    """Trained steps per rollout, as rl.schedules' plans mark them."""
    if sampling.schedule in ("sliding_window", "flow_grpo_fast"):
        return sampling.window_size
    if sampling.schedule == "random_subset":
        return sampling.num_train_steps
    return sampling.num_inference_steps


def rollout_steps(sampling: Any) -> float:
    """Model calls of one rollout's denoising, averaged over the sliding window's positions
    (MixGRPO-Flash's ``ode_tail_ratio`` thins the ODE grid after the window)."""
    n = sampling.num_inference_steps
    if sampling.schedule != "sliding_window" or sampling.ode_tail_ratio >= 1:
        return float(n)
    import torch

    from geogrpo.rl.schedules import sliding_window_plan

    grid = torch.linspace(1, 0, n + 1)
    w, stride = sampling.window_size, sampling.window_stride
    starts = range(0, n - w + 1, stride)  # one cycle of the window, one iteration per position
    steps = [
        sliding_window_plan(grid, w, it, stride=stride, ode_tail_ratio=sampling.ode_tail_ratio)
        for it in range(len(starts))
    ]
    return sum(p.num_steps for p in steps) / len(steps)


def kept_states(sampling: Any) -> int:
    """Latents a rollout keeps for its update: the states before and after each trained step."""
    n, k = sampling.num_inference_steps, trained_steps(sampling)
    if sampling.schedule == "random_subset":
        return min(2 * k, n + 1)
    return k + 1


def builds_estimator(config: Any, conditioning: str) -> bool:
    """Whether a run builds ``rewards.estimator``: an RGB geometry reward reads it, a v2v run
    with ``reference_geometry: estimated`` estimates its sources with it, ADEVIS estimates each
    stage's depth with it. Latent geometry rewards read tinygeo's Latent Geometry Model."""
    rgb_geometry = any(
        s.name in GEOMETRY_REWARDS and dict(s.options).get("source", "rgb") != "latent"
        for s in config.rewards.rewards
    )
    estimated = conditioning in ("camera_v2v", "reproj_v2v") and (
        config.rewards.reference_geometry == "estimated"
    )
    return bool(rgb_geometry or estimated or config.data.adevis_strategies)


def _reward_models(config: Any, conditioning: str) -> tuple[str, str, str]:
    """(estimator, judge, quality scorer) the run's rewards load on the GPU ("" for none or
    CPU-size ones)."""
    specs = list(config.rewards.rewards)
    name = config.rewards.estimator
    estimator = name if builds_estimator(config, conditioning) and name in REWARD_MODELS else ""
    judge = ""
    for s in specs:
        options = dict(s.options)
        weights = list(options.get("weights", [1, 1, 1]))
        chosen = options.get("judge", "tiny-quality")
        if s.name == "reconstruction" and len(weights) > 1 and weights[1] > 0:
            judge = "" if chosen in SHIPPED_JUDGES else "qwen_vl"
    scorer = next(
        (
            "hpsv3"
            for s in specs
            if s.name == "quality" and dict(s.options).get("scorer") == "hpsv3"
        ),
        "",
    )
    return estimator, judge, scorer


def run_shape(config: Any, conditioning: str | None = None) -> RunShape:
    """Everything the plan needs from a config, checked once."""
    m, s, d = config.model, config.sampling, config.data
    architecture = resolve_architecture(config)
    cond, origin = resolve_conditioning(config, conditioning)
    count = count_parameters(
        architecture, cond, m.trainable, m.lora_rank, tuple(m.lora_parts), m.base_dtype
    )
    height, width = d.size, d.width or d.size
    pixels = any(dict(r.options).get("source", "rgb") != "latent" for r in config.rewards.rewards)
    every = config.logging.truth_every
    decodes = 1.0 if pixels else (1.0 / every if every > 0 else 0.0)
    estimator, judge, scorer = _reward_models(config, cond)
    notes = []
    if m.trainable != "lora" and (config.rl.kl_beta > 0 or config.eval.base_tail_steps > 0):
        notes.append("a frozen reference copy of the transformer (KL or base-tail evaluation)")
    if config.rewards.estimator in EMBEDDED_PERCEPTION:
        notes.append(f"estimator {config.rewards.estimator}: CPU-size, not counted")
    return RunShape(
        recipe=config.recipe,
        architecture=architecture if isinstance(architecture, str) else "custom (policy folder)",
        conditioning=cond,
        conditioning_from=origin,
        tokens=tokens_per_sample(d.frames, height, width, cond),
        count=count,
        trained_steps=trained_steps(s),
        rollout_forwards=rollout_steps(s) * (2 if s.guidance_scale != 1.0 else 1),
        decodes_per_step=decodes,
        estimator=estimator,
        judge=judge,
        scorer=scorer,
        notes=tuple(notes),
    )


def forward_working_bytes(count: ParamCount, tokens: int, bf16: bool) -> float:
    """A no-grad forward's live tensors inside a block (rollouts, reference forwards): the
    residual stream, and the larger of the feed-forward hidden (its projection and GELU) and the
    attention's q, k, v, output with an RMSNorm's float32 temporaries."""
    d, f = count.shape.dim, count.shape.ffn_dim
    width = 2 if bf16 else 4
    return tokens * (width * d + max(2 * width * f, 4 * width * d + 16 * d))


def _vggt_table(frames: int) -> tuple[float, float]:
    """(seconds, working bytes) of VGGT's aggregator at ``frames`` frames, interpolated."""
    points = sorted(VGGT_TABLE)
    lo = max([p for p in points if p <= frames], default=points[0])
    hi = min([p for p in points if p >= frames], default=points[-1])
    (t0, m0), (t1, m1) = VGGT_TABLE[lo], VGGT_TABLE[hi]
    a = 0.0 if hi == lo else (frames - lo) / (hi - lo)
    working_gb = m0 + a * (m1 - m0) - VGGT_TABLE[1][1]
    return t0 + a * (t1 - t0), working_gb * 1e9


def plan_run(config: Any, gpus: int, conditioning: str | None = None) -> RunPlan:
    """Memory per GPU and seconds per GRPO step of ``config`` on ``gpus`` GPUs.

    fsdp divides weights, gradients and AdamW states by ``gpus`` and adds two blocks gathered
    whole (the one computing and the one prefetched); ddp replicates everything and, on more
    than one GPU, keeps its gradient buckets (a second copy of the gradients). Samples are
    split over the GPUs (the busiest one sets the time)."""
    if gpus < 1:
        raise ValueError(f"gpus: must be >= 1, got {gpus}")
    shape = run_shape(config, conditioning)
    return _plan(config, shape, gpus)


def _plan(config: Any, shape: RunShape, gpus: int) -> RunPlan:
    m, s, rl, dist = config.model, config.sampling, config.rl, config.distributed
    count, tokens = shape.count, shape.tokens
    bf16 = m.mixed_precision == "bf16"
    fsdp = dist.strategy == "fsdp"
    shards = gpus if fsdp else 1
    offload = fsdp and dist.cpu_offload
    samples = math.ceil(s.conditions_per_step * s.group_size / gpus)
    micro = min(s.micro_batch_size, samples)
    reference = m.trainable != "lora" and (rl.kl_beta > 0 or config.eval.base_tail_steps > 0)

    weights = count.weight_bytes / shards
    grads = 4.0 * count.trained / shards
    adam = 8.0 * count.trained / shards
    ref = weights if reference else 0.0
    cpu = (weights + ref + grads + adam) if offload else 0.0
    block_bytes = count.block_params * count.weight_bytes / count.total
    random_policy = str(m.policy).startswith("random:")  # RandomTextStates, no UMT5 weights
    memory = {
        "transformer weights": 0.0 if offload else weights,
        "reference copy (frozen)": 0.0 if offload else ref,
        "fsdp: 2 blocks gathered": 2 * block_bytes if fsdp else 0.0,
        "gradients (fp32)": 0.0 if offload else grads,
        "ddp gradient buckets": 4.0 * count.trained if (not fsdp and gpus > 1) else 0.0,
        "AdamW states (2 x fp32)": 0.0 if offload else adam,
        "text encoder (UMT5-XXL, bf16)": 0.0 if random_policy else 2.0 * umt5_params(),
        "VAE (fp32)": 4.0 * vae_params(),
    }
    for key in (shape.estimator, shape.judge, shape.scorer):
        if key:
            model = REWARD_MODELS[key]
            memory[f"{model.name} weights"] = model.params * model.bytes_per_param
    lf = (config.data.frames - 1) // TEMPORAL_STRIDE + 1
    h, w = config.data.size, config.data.width or config.data.size
    latent = 4.0 * LATENT_CHANNELS * lf * (h // SPATIAL_STRIDE) * (w // SPATIAL_STRIDE)
    sources = 1 if shape.conditioning in ("camera_v2v", "reproj_v2v") else 0
    memory["rollout latents kept"] = samples * latent * (kept_states(s) + 1 + sources)

    acts = {ckpt: activation_bytes(count, tokens, micro, bf16, ckpt) for ckpt in (True, False)}
    pixels = config.data.frames * h * w
    working = {
        "update (one micro-batch)": acts[m.gradient_checkpointing],
        "rollout forward": micro * forward_working_bytes(count, tokens, bf16),
        "VAE decode": micro
        * (VAE_DECODE_PEAK_BYTES - 4.0 * vae_params())
        * pixels
        / VAE_DECODE_PIXELS
        if shape.decodes_per_step
        else 0.0,
    }
    if shape.estimator:
        model = REWARD_MODELS[shape.estimator]
        working[f"{model.name}"] = _vggt_table(config.data.frames)[1] * model.vggt_scale
    phase = max(working, key=working.get)
    memory[f"working: {phase}"] = working[phase]
    static = sum(memory.values())

    rate = calibrated_flops_per_s() * (1.0 if bf16 else FP32_OVER_BF16)
    fwd = forward_seconds(count, tokens, 1, bf16, rate)
    upd_f, upd_b = update_seconds(count, tokens, 1, bf16, m.gradient_checkpointing, rate)
    per_update = upd_f + upd_b + (fwd if rl.kl_beta > 0 else 0.0)
    optimizer_steps = rl.inner_epochs * rl.minibatches
    adam_bytes = (
        32.0 * count.trained / shards
    )  # AdamW reads p, g, m, v, writes p, m, v; clip reads g
    estimator_s = 0.0
    if shape.estimator:
        model = REWARD_MODELS[shape.estimator]
        estimator_s = _vggt_table(config.data.frames)[0] * model.vggt_scale
    seconds = {
        "rollouts": samples * shape.rollout_forwards * fwd,
        "VAE decode": samples * shape.decodes_per_step * VAE_DECODE_S * pixels / VAE_DECODE_PIXELS,
        "reward models": samples * estimator_s,
        "update": rl.inner_epochs * samples * shape.trained_steps * per_update
        + optimizer_steps * adam_bytes / ACHIEVED_BANDWIDTH_BYTES_S,
    }
    seconds["total"] = sum(seconds.values())
    return RunPlan(
        gpus=gpus,
        samples_per_gpu=samples,
        memory=memory,
        cpu_bytes=cpu,
        activations_ckpt=acts[True],
        activations_no_ckpt=acts[False],
        total_bytes=static,
        seconds=seconds,
    )


def plan_runs(
    config: Any, gpus: list[int], conditioning: str | None = None
) -> tuple[RunShape, list[RunPlan]]:
    """:func:`plan_run` for each GPU count, the config read once."""
    if not gpus or any(g < 1 for g in gpus):
        raise ValueError(f"gpus: expected counts >= 1, got {gpus}")
    shape = run_shape(config, conditioning)
    return shape, [_plan(config, shape, g) for g in gpus]


def _gib(x: float) -> str:
    return "-" if x == 0 else f"{x / GIB:.1f}"


def _count_str(n: float) -> str:
    return f"{n / 1e9:.3f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def format_plan(config: Any, shape: RunShape, plans: list[RunPlan]) -> str:
    """The plan as an aligned text table: one column per GPU count, then what it assumes."""
    m, s, rl, dist = config.model, config.sampling, config.rl, config.distributed
    c = shape.count
    h, w = config.data.size, config.data.width or config.data.size
    lora = f" rank {m.lora_rank} on {', '.join(m.lora_parts)}" if m.trainable == "lora" else ""
    lines = [
        f"geogrpo plan: {shape.recipe} on {shape.architecture}, {shape.conditioning} "
        f"({shape.conditioning_from})",
        f"  {config.data.frames}x{h}x{w} video = {shape.tokens:,} tokens a sample; parameters "
        f"{_count_str(c.total)}, trained {_count_str(c.trained)} ({m.trainable}{lora})",
        f"  base {m.base_dtype}, mixed precision {m.mixed_precision}, gradient checkpointing "
        f"{'on' if m.gradient_checkpointing else 'off'}, {dist.strategy}"
        + (" with cpu offload" if dist.cpu_offload else ""),
        f"  a step: N x G = {s.conditions_per_step} x {s.group_size} samples, "
        f"{shape.rollout_forwards:g} forwards each"
        + (" (CFG doubles them)" if s.guidance_scale != 1.0 else "")
        + f", {shape.trained_steps} trained steps x {rl.inner_epochs} inner epoch(s), "
        f"micro-batch {s.micro_batch_size}"
        + (", a reference forward per trained step (KL)" if rl.kl_beta > 0 else ""),
        "",
    ]
    labels = [f"{p.gpus} GPU" + ("s" if p.gpus > 1 else "") for p in plans]
    keys: list[str] = []
    for p in plans:
        keys += [k for k in p.memory if k not in keys]
    rows: list[tuple[str, list[str]]] = [("memory per GPU (GiB)", labels)]
    rows.append(("  samples on this GPU", [str(p.samples_per_gpu) for p in plans]))
    rows += [(f"  {key}", [_gib(p.memory.get(key, 0.0)) for p in plans]) for key in keys]
    if any(p.cpu_bytes for p in plans):
        rows.append(("  (host memory, cpu offload)", [_gib(p.cpu_bytes) for p in plans]))
    rows.append(("  total per GPU", [_gib(p.total_bytes) for p in plans]))
    for card, what in (("80 GB", "an 80 GB card (H100)"), ("141 GB", "a 141 GB card (H200)")):
        rows.append((f"  fits {what}", ["yes" if p.fits(card) else "NO" for p in plans]))
    rows.append(("one update micro-batch's activations (GiB)", [""] * len(plans)))
    rows.append(("  with gradient checkpointing", [_gib(p.activations_ckpt) for p in plans]))
    rows.append(("  without", [_gib(p.activations_no_ckpt) for p in plans]))
    rows.append(("seconds per GRPO step", labels))
    for key in plans[0].seconds:
        rows.append((f"  {key}", [_seconds(p.seconds[key]) for p in plans]))
    width = max(len(r[0]) for r in rows) + 2
    cols = [max(len(r[1][i]) for r in rows) + 2 for i in range(len(plans))]
    for label, values in rows:
        lines.append(label.ljust(width) + "".join(v.rjust(cols[i]) for i, v in enumerate(values)))
    rate = calibrated_flops_per_s()
    models = [REWARD_MODELS[k] for k in (shape.estimator, shape.judge, shape.scorer) if k]
    assumptions = [
        f"an H200: {rate / 1e12:.0f} TFLOP/s achieved in bf16 matmuls and attention "
        f"(calibrated on the issue-6 1.3B update's forward), "
        f"{ACHIEVED_BANDWIDTH_BYTES_S / 1e12:.1f} TB/s in elementwise kernels",
        f"the VAE decode as measured: {VAE_DECODE_S} s and {VAE_DECODE_PEAK_BYTES / GIB:.1f} "
        "GiB a 480x832x81 clip (scaled by pixels)",
        *(f"{r.name}: {r.source}" for r in models),
        *shape.notes,
        "every model resident on the GPU for the whole step, as the trainer keeps them",
        "gradients and AdamW states of every trained weight held through the update",
        "communication not counted (FSDP and DDP overlap it on NVLink; across nodes they may not)",
        "not counted: the view judge's, the quality scorer's and the splat fit's seconds, "
        "source encodes, eval",
    ]
    lines += ["", "assumes:"] + [f"  * {a}" for a in assumptions]
    return "\n".join(lines) + "\n"


def _seconds(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"
