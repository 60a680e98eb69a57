"""Which parameters train: LoRA targets for Wan blocks and trainable-parameter selectors.

Names follow diffusers' ``WanTransformerBlock``: ``attn1`` is self-attention, ``attn2``
cross-attention to the text, ``ffn.net.0.proj`` / ``ffn.net.2`` the feed-forward. Geo-Align trains
self-attention only; VGGRPO and DEVIS-GRPO train LoRA adapters; camera conditioning trains its
own modules (names containing ``camera``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from peft import LoraConfig, get_peft_model
from torch import nn

from geogrpo.utils.checks import check_choice, check_int_range
from geogrpo.utils.integrity import load_safetensors, verify_manifest, write_digests_manifest
from geogrpo.utils.io import atomic_save_safetensors, atomic_write_json

LORA_TARGETS = {
    "self_attention": ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0"),
    "cross_attention": ("attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"),
    "feed_forward": ("ffn.net.0.proj", "ffn.net.2"),
}
SELECTORS = ("full", "lora", "self_attention", "camera")


def lora_target_modules(model: nn.Module, parts: Iterable[str] = tuple(LORA_TARGETS)) -> list[str]:
    """Full names of the ``nn.Linear`` modules of the chosen block parts, in model order."""
    parts = tuple(parts)
    for p in parts:
        check_choice("parts", p, tuple(LORA_TARGETS))
    suffixes = tuple(s for p in parts for s in LORA_TARGETS[p])
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and n.startswith("blocks.") and n.endswith(suffixes)
    ]
    if not names:
        raise ValueError(f"parts: no Linear layer of {parts} found; is this a Wan transformer?")
    return names


def add_lora(
    model: nn.Module,
    rank: int = 16,
    alpha: float | None = None,
    parts: Iterable[str] = tuple(LORA_TARGETS),
    dropout: float = 0.0,
) -> nn.Module:
    """Wrap ``model`` with peft LoRA adapters on the chosen parts; only the adapters train."""
    check_int_range("rank", rank, 1)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,
        target_modules=lora_target_modules(model, parts),
        lora_dropout=dropout,
        init_lora_weights=True,
    )
    return get_peft_model(model, config)


def select_trainable(model: nn.Module, selector: str) -> list[str]:
    """Set ``requires_grad`` by ``selector`` and return the names that train.

    ``full``: everything; ``lora``: parameters with ``lora_`` in their name (call
    :func:`add_lora` first); ``self_attention``: the ``attn1`` projections and their q/k norms;
    ``camera``: modules whose name contains ``camera``.
    """
    check_choice("selector", selector, SELECTORS)
    rules = {
        "full": lambda n: True,
        "lora": lambda n: "lora_" in n,
        "self_attention": lambda n: ".attn1." in n,
        "camera": lambda n: "camera" in n,
    }
    chosen = []
    for name, param in model.named_parameters():
        param.requires_grad_(rules[selector](name))
        if param.requires_grad:
            chosen.append(name)
    if not chosen:
        raise ValueError(f"selector: {selector!r} selects no parameter of this model")
    return chosen


def save_adapter(model: nn.Module, directory: str | Path) -> Path:
    """Write a peft model's LoRA weights and config (atomic files; peft's own layout)."""
    from peft import get_peft_model_state_dict

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_safetensors(out / "adapter_model.safetensors", get_peft_model_state_dict(model))
    config = model.peft_config["default"].to_dict()
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in config.items()}
    atomic_write_json(out / "adapter_config.json", config)
    write_digests_manifest(out)
    return out


def load_adapter(
    model: nn.Module, directory: str | Path, *, verify: bool | None = None
) -> nn.Module:
    """Load weights written by :func:`save_adapter` into a model with the same adapters, after
    checking the folder's ``manifest.json`` (unless ``verify=False``)."""
    from peft import set_peft_model_state_dict

    path = Path(directory) / "adapter_model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"directory: no adapter_model.safetensors in {directory}")
    verify_manifest(directory, verify=verify)
    result = set_peft_model_state_dict(model, load_safetensors(path))
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"directory: adapter weights do not fit this model: {unexpected[:3]}")
    return model
