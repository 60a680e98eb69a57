"""Wan configs on the meta device, LoRA targets, and trainable-parameter selectors."""

import json

import pytest
import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict

from geogrpo.models.params import (
    LORA_TARGETS,
    add_lora,
    load_adapter,
    lora_target_modules,
    save_adapter,
    select_trainable,
)
from geogrpo.models.wan import build_transformer, check_local_checkpoint

TINY = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "in_channels": 4,
    "out_channels": 4,
    "text_dim": 12,
    "freq_dim": 16,
    "ffn_dim": 24,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 64,
}


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 3, 8, 8, generator=g)  # [B, C, F, H, W] latents
    text = torch.randn(2, 5, 12, generator=g)  # [B, L, text_dim]
    return x, torch.tensor([500.0, 100.0]), text


def _forward(model, seed=0):
    x, t, text = _inputs(seed)
    return model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]


def test_real_1p3b_config_on_meta_device():
    model = build_transformer("wan2.1-t2v-1.3b", device="meta")
    n = sum(p.numel() for p in model.parameters())
    assert 1.40e9 < n < 1.44e9  # 1.419 B, Wan2.1-T2V-1.3B's transformer
    assert all(p.is_meta for p in model.parameters())
    targets = lora_target_modules(model)
    assert len(targets) == 30 * 10  # 30 blocks x (4 self-attn + 4 cross-attn + 2 ffn)
    assert "blocks.29.attn1.to_out.0" in targets and "blocks.0.ffn.net.2" in targets
    assert len(lora_target_modules(model, ["self_attention"])) == 30 * 4


def test_14b_config_on_meta_device():
    model = build_transformer("wan2.1-t2v-14b", device="meta")
    assert 13.5e9 < sum(p.numel() for p in model.parameters()) < 14.5e9


def _changed_after_step(model, selector):
    trainable = select_trainable(model, selector)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    _forward(model).square().mean().backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    return set(trainable), changed


def test_bf16_build_keeps_the_float32_modules_wan_needs():
    model = build_transformer(TINY, dtype=torch.bfloat16)
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert dtypes["blocks.0.attn1.to_q.weight"] == torch.bfloat16
    assert dtypes["blocks.0.ffn.net.2.weight"] == torch.bfloat16
    assert dtypes["blocks.0.norm2.weight"] == torch.float32  # cross-attention norm
    assert dtypes["blocks.0.scale_shift_table"] == torch.float32
    assert all(d == torch.float32 for n, d in dtypes.items() if "time_embedder" in n)
    x = torch.randn(1, TINY["in_channels"], 2, 4, 4)
    text = torch.randn(1, 3, TINY["text_dim"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(hidden_states=x, timestep=torch.tensor([500.0]), encoder_hidden_states=text)
    assert out.sample.shape == x.shape and torch.isfinite(out.sample).all()


def test_self_attention_selector_trains_exactly_self_attention():
    torch.manual_seed(0)
    model = build_transformer(TINY)
    trainable, changed = _changed_after_step(model, "self_attention")
    assert trainable and all(".attn1." in n for n in trainable)
    assert changed <= trainable
    assert {n for n in trainable if n.endswith("weight") and "norm" not in n} <= changed


def test_lora_trains_only_adapters_and_starts_as_the_base_model():
    torch.manual_seed(0)
    base = build_transformer(TINY)
    reference = _forward(base).detach()
    model = add_lora(base, rank=4, parts=["self_attention", "feed_forward"])
    torch.testing.assert_close(_forward(model), reference)  # B is zero-initialised
    trainable, changed = _changed_after_step(model, "lora")
    assert trainable and all("lora_" in n for n in trainable)
    assert changed and changed <= trainable
    assert not any("attn2" in n for n in trainable)


def test_lora_adapter_save_load_round_trip_is_bit_exact_and_merge_keeps_outputs():
    torch.manual_seed(0)
    model = add_lora(build_transformer(TINY), rank=4)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_()  # make the adapter do something
    state = {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}
    out = _forward(model).detach()
    torch.manual_seed(1)
    fresh = add_lora(build_transformer(TINY), rank=4)
    fresh.load_state_dict(model.state_dict())  # same base weights
    for name, p in fresh.named_parameters():
        if "lora_" in name:
            p.data.zero_()
    set_peft_model_state_dict(fresh, state)
    for k, v in get_peft_model_state_dict(fresh).items():
        assert torch.equal(v, state[k]), k
    assert torch.equal(_forward(fresh), out)
    fresh.merge_adapter()  # merge/unmerge in place keeps the function
    torch.testing.assert_close(_forward(fresh), out, atol=1e-5, rtol=1e-5)
    fresh.unmerge_adapter()
    torch.testing.assert_close(_forward(fresh), out, atol=1e-6, rtol=1e-6)
    merged = fresh.merge_and_unload()
    torch.testing.assert_close(_forward(merged), out, atol=1e-5, rtol=1e-5)


def test_adapter_files_round_trip_bit_exactly(tmp_path):
    torch.manual_seed(0)
    model = add_lora(build_transformer(TINY), rank=4, parts=["self_attention"])
    for name, p in model.named_parameters():
        if "lora_" in name:
            p.data.normal_()
    save_adapter(model, tmp_path / "adapter")
    torch.manual_seed(0)
    fresh = add_lora(build_transformer(TINY), rank=4, parts=["self_attention"])
    assert not torch.equal(_forward(fresh), _forward(model))
    load_adapter(fresh, tmp_path / "adapter")
    assert torch.equal(_forward(fresh), _forward(model))
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 4 and "blocks.0.attn1.to_q" in config["target_modules"]
    with pytest.raises(FileNotFoundError, match="adapter_model"):
        load_adapter(fresh, tmp_path)


def test_bad_input():
    with pytest.raises(ValueError, match="^config"):
        build_transformer("wan9")
    with pytest.raises(ValueError, match="^selector"):
        select_trainable(build_transformer(TINY), "camera")  # no camera modules in plain t2v
    with pytest.raises(ValueError, match="^parts"):
        lora_target_modules(torch.nn.Linear(2, 2), ["self_attention"])
    with pytest.raises(ValueError, match="^parts"):
        lora_target_modules(build_transformer(TINY), ["mlp"])
    assert set(LORA_TARGETS) == {"self_attention", "cross_attention", "feed_forward"}


def test_missing_local_checkpoint_names_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="^path: no directory"):
        check_local_checkpoint(tmp_path / "nope")
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing transformer/config.json, vae/config.json"):
        check_local_checkpoint(tmp_path)
