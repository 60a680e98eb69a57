"""Wan2.1 transformer configurations and builders (diffusers ``WanTransformer3DModel``).

One class runs everywhere: the embedded tiny DiT on a laptop CPU and Wan2.1-T2V-1.3B/14B on GPUs.
Full-size models are built on the ``meta`` device for shape checks and loaded from a user's local
diffusers-format directory for real use; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import WanTransformer3DModel

from geogrpo.utils.checks import check_int_range

# transformer/config.json of Wan-AI/Wan2.1-T2V-1.3B-Diffusers (dim 1536 = 12 heads x 128).
WAN21_T2V_1P3B = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
# The 14B model differs only in width and depth (dim 5120 = 40 x 128, ffn 13824, 40 layers).
WAN21_T2V_14B = {**WAN21_T2V_1P3B, "num_attention_heads": 40, "ffn_dim": 13824, "num_layers": 40}
CONFIGS = {"wan2.1-t2v-1.3b": WAN21_T2V_1P3B, "wan2.1-t2v-14b": WAN21_T2V_14B}
# Files a local diffusers-format Wan2.1 checkpoint must have (what `from_pretrained` reads).
REQUIRED_FILES = ("model_index.json", "transformer/config.json", "vae/config.json")


def build_transformer(
    config: dict | str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> WanTransformer3DModel:
    """Instantiate a transformer from a config dict or a name in :data:`CONFIGS`.

    ``device="meta"`` allocates nothing: shapes and parameter counts of a 14B model on a laptop.
    A ``dtype`` other than float32 leaves the modules diffusers keeps in float32 for Wan (norms,
    time embedding, RoPE, modulation table) in float32, as its ``from_pretrained`` does.
    """
    if isinstance(config, str):
        if config not in CONFIGS:
            raise ValueError(f"config: unknown {config!r}; choose one of {', '.join(CONFIGS)}")
        config = CONFIGS[config]
    with torch.device(device):
        model = WanTransformer3DModel(**config)
    if str(device) == "meta" or dtype == torch.float32:
        return model
    cast_frozen(model, dtype, frozen_only=False)
    return model


def cast_frozen(model: torch.nn.Module, dtype: torch.dtype, frozen_only: bool = True) -> None:
    """Store the weights that do not train (all of them with ``frozen_only=False``) in
    ``dtype``, leaving the modules diffusers keeps in float32 for Wan (norms, time embedding,
    modulation table) in float32, as its ``from_pretrained`` does."""
    base = getattr(model, "get_base_model", lambda: model)()
    keep = set(getattr(base, "_keep_in_fp32_modules", None) or ())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        trains = isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad
        kept = keep.intersection(name.split(".")) or not tensor.is_floating_point()
        if not kept and not (frozen_only and trains):
            tensor.data = tensor.data.to(dtype)


def check_local_checkpoint(path: str | Path) -> Path:
    """Fail early, naming the missing files and where to get them, before any loading starts."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"path: no directory {root}; download a diffusers-format Wan2.1 checkpoint (e.g. "
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers on the Hugging Face Hub) on a machine with internet "
            "and pass its local folder"
        )
    missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"path: {root} is not a diffusers-format Wan2.1 checkpoint; missing "
            f"{', '.join(missing)} (expected the layout of Wan-AI/Wan2.1-T2V-1.3B-Diffusers: "
            "model_index.json, transformer/, vae/, text_encoder/, tokenizer/)"
        )
    return root


def widen_patch_embedding(
    transformer: WanTransformer3DModel, extra_channels: int
) -> WanTransformer3DModel:
    """Give a Wan transformer ``extra_channels`` more input channels (after the latent ones),
    their patch-embedding weights zero, in place.

    The standard way to feed a channel-concatenated condition (reproj_v2v's render + mask) to a
    pretrained T2V DiT: the widened model computes exactly what it computed before, whatever the
    extra channels hold, so it starts as the T2V model and learns to read them only when the
    patch embedding trains. ``config.in_channels`` follows (``save_pretrained`` writes it)."""
    check_int_range("extra_channels", extra_channels, 0)
    old = transformer.patch_embedding
    if extra_channels == 0:
        return transformer
    new = torch.nn.Conv3d(
        old.in_channels + extra_channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels].copy_(old.weight)
        new.bias.copy_(old.bias)
    new.requires_grad_(old.weight.requires_grad)
    transformer.patch_embedding = new
    transformer.register_to_config(in_channels=new.in_channels)
    return transformer
