"""``geogrpo plan``: exact parameter counts, the activation formula against what torch saves,
the issue-6 measurements within the reported tolerance, sharding, the CLI and bad input."""

from __future__ import annotations

import pytest
import torch

from geogrpo.cli import main
from geogrpo.train.config import load_config
from geogrpo.train.plan import (
    GIB,
    ISSUE6_ROWS,
    TEXT_TOKENS,
    activation_bytes,
    block_input_bytes,
    block_saved_bytes,
    count_parameters,
    plan_run,
    predict_update,
    resolve_architecture,
    rollout_steps,
    tokens_per_sample,
    trained_steps,
)

FULL_SCALE = ("model.architecture=wan2.1-t2v-1.3b", "data.frames=81", "data.size=480")
FULL_SCALE += ("data.width=832", "model.mixed_precision=bf16", "model.gradient_checkpointing=true")
FULL_SCALE += ("model.trainable=self_attention", "distributed.strategy=fsdp", "model.device=cuda")
ALL_PARTS = ("self_attention", "cross_attention", "feed_forward")
# What bench/RESULTS.md reports: peaks within 6 %; seconds within 10 %, except the two rows with
# a bf16 frozen base, measured in a second call 7-8 % faster than their fp32-base twins in both
# phases and both sizes, which the model (no term tells the two apart) misses by up to 17 %.
PEAK_TOLERANCE, TIME_TOLERANCE, BF16_BASE_TIME_TOLERANCE = 0.06, 0.10, 0.17


def geo_align(*overrides: str):
    return load_config("geo_align", overrides=[*FULL_SCALE, *overrides])


# -- parameters --------------------------------------------------------------------------------


def test_wan_parameter_counts_are_the_known_totals():
    assert count_parameters("wan2.1-t2v-1.3b").total == 1_418_996_800  # RESULTS: 1.419 B
    lora = count_parameters("wan2.1-t2v-14b", trainable="lora", lora_rank=32)
    assert lora.trained == 153_354_240  # RESULTS: 153.4 M
    assert lora.total == 14_288_491_584 + lora.trained  # RESULTS: 14.442 B with the adapters
    assert count_parameters("wan2.1-t2v-1.3b", trainable="lora", lora_rank=32).trained == (
        43_745_280  # RESULTS: 43.7 M
    )
    geo = count_parameters("wan2.1-t2v-1.3b", "camera_v2v", trainable="self_attention")
    assert round(geo.trained / 1e5) == 2834  # RESULTS: 283.4 M
    assert geo.total > 1_418_996_800  # the camera modules
    assert geo.block_trained * 30 == geo.trained


def test_lora_count_matches_a_real_tiny_policy():
    from geogrpo.models.policy import VideoPolicy

    policy = VideoPolicy.from_pretrained("tiny-t2v")
    config = dict(policy.transformer.config)
    for rank, parts in ((8, ALL_PARTS), (4, ("self_attention",))):
        real = VideoPolicy.from_pretrained("tiny-t2v")
        real.add_lora(rank, parts=parts)
        counted = count_parameters(config, "t2v", "lora", rank, parts)
        params = list(real.transformer.parameters())
        assert counted.trained == sum(p.numel() for p in params if p.requires_grad)
        assert counted.total == sum(p.numel() for p in params)


def test_bf16_base_halves_only_the_frozen_weights():
    fp32 = count_parameters("wan2.1-t2v-1.3b", trainable="lora", lora_rank=32)
    bf16 = count_parameters(
        "wan2.1-t2v-1.3b", trainable="lora", lora_rank=32, base_dtype="bfloat16"
    )
    assert fp32.weight_bytes == 4 * fp32.total
    frozen = fp32.total - fp32.trained
    # the adapters and the modules diffusers keeps in float32 stay at 4 bytes
    assert 2 * frozen + 4 * fp32.trained < bf16.weight_bytes < 2 * frozen + 4 * fp32.trained + 4e7


def test_unknown_or_missing_architecture_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="model.architecture: unknown 'wan9'"):
        count_parameters("wan9")
    config = load_config("geo_align", overrides=[f"model.policy={tmp_path / 'none'}"])
    with pytest.raises(ValueError, match="--set model.architecture=wan2.1-t2v-1.3b"):
        resolve_architecture(config)
    # without model.architecture the policy folder's transformer/config.json is read
    held = resolve_architecture(load_config("geo_align"))  # tiny-camera-v2v: no Wan2.1 size
    assert isinstance(held, dict) and held["num_layers"] == 4


# -- activations: the formula against what torch keeps for backward ----------------------------


def _saved_block_bytes(
    mode: str, tokens_hw: tuple[int, int, int], bf16: bool, conditioning: str = "t2v"
) -> int:
    """Bytes of the tensors one tiny Wan block saves for backward (its parameters, the rotary
    tables and its input excepted), on the CPU."""
    from geogrpo.models.conditioning import make_conditioning
    from geogrpo.models.params import add_lora, select_trainable
    from geogrpo.models.wan import build_transformer

    torch.manual_seed(0)
    model = build_transformer(TINY)
    make_conditioning(conditioning).attach(model)
    if conditioning == "camera_v2v":  # what camera_inputs sets: 12 numbers per latent frame
        f, h, w = tokens_hw
        model.blocks[0]._camera_input = (torch.randn(1, f, 12), h * w // 4)
    if mode == "lora":
        model = add_lora(model, rank=4)
    select_trainable(model, mode)
    base = model.get_base_model() if mode == "lora" else model
    f, h, w = tokens_hw
    rotary = base.rope(torch.zeros(1, TINY["in_channels"], f, h, w))
    d = TINY["num_attention_heads"] * TINY["attention_head_dim"]
    hidden = torch.randn(1, f * h * w // 4, d, dtype=torch.bfloat16 if bf16 else torch.float32)
    hidden.requires_grad_(True)
    temb = torch.randn(1, 6, d, requires_grad=mode == "full")
    text = torch.randn(1, TEXT_TOKENS, d, dtype=hidden.dtype)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with autocast:
        out = base.blocks[0](hidden, text, temb, rotary)
    skip = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *rotary, hidden]}
    seen: dict[int, int] = {}
    stack, visited = [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in visited:
            continue
        visited.add(node)
        for name in dir(node):
            if name.startswith("_saved_"):
                value = getattr(node, name)
                for t in value if isinstance(value, tuple) else (value,):
                    if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in skip:
                        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        stack += [n for n, _ in node.next_functions]
    return sum(seen.values())


TINY = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 32,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 64,
    "freq_dim": 32,
    "ffn_dim": 96,
    "num_layers": 1,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 64,
}


@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize(
    "mode, conditioning",
    [
        ("full", "t2v"),
        ("lora", "t2v"),
        ("self_attention", "t2v"),
        ("self_attention", "camera_v2v"),
        ("camera", "camera_v2v"),
    ],
)
def test_block_formula_matches_the_tensors_torch_saves(mode, conditioning, bf16):
    """The per-token part of :func:`block_saved_bytes` (two token counts, so the weight copies
    and the text's tensors cancel) equals what autograd keeps, for each way of training."""
    small, large = (3, 4, 8), (3, 8, 8)  # 24 and 48 tokens (the frames' camera features cancel)
    measured = _saved_block_bytes(mode, large, bf16, conditioning)
    measured -= _saved_block_bytes(mode, small, bf16, conditioning)
    count = count_parameters(TINY, conditioning, mode, 4, ALL_PARTS)
    formula = block_saved_bytes(count, 48, bf16) - block_saved_bytes(count, 24, bf16)
    assert formula == measured


def test_checkpointing_lowers_activation_memory():
    count = count_parameters("wan2.1-t2v-1.3b")
    tokens = tokens_per_sample(81, 480, 832)
    with_ckpt = activation_bytes(count, tokens, 1, True, True)
    without = activation_bytes(count, tokens, 1, True, False)
    assert with_ckpt < without / 8  # RESULTS: 8.8x
    # with checkpointing: every block's input and one block, which is far above one input
    assert with_ckpt > 30 * block_input_bytes(count, tokens, True) + block_saved_bytes(
        count, tokens, True
    )
    on = plan_run(geo_align(), 8)
    off = plan_run(geo_align("model.gradient_checkpointing=false"), 8)
    assert on.activations_ckpt == off.activations_ckpt
    assert on.total_bytes < off.total_bytes


# -- the issue-6 measurements ----------------------------------------------------------------


@pytest.mark.parametrize("row", ISSUE6_ROWS, ids=[r.label for r in ISSUE6_ROWS])
def test_issue6_measurements_are_predicted_within_the_reported_tolerance(row):
    p = predict_update(row.setup)
    assert abs(p.peak_gib / row.peak_gib - 1) <= PEAK_TOLERANCE
    time_tolerance = (
        BF16_BASE_TIME_TOLERANCE if row.setup.base_dtype == "bfloat16" else TIME_TOLERANCE
    )
    assert abs(p.forward_s / row.forward_s - 1) <= time_tolerance
    assert abs(p.backward_s / row.backward_s - 1) <= time_tolerance


def test_tokens_of_the_issue6_clips():
    assert tokens_per_sample(81, 480, 832) == 32_760
    assert tokens_per_sample(81, 480, 832, "camera_v2v") == 65_520


# -- runs ---------------------------------------------------------------------------------------


def test_fsdp_divides_the_sharded_terms_by_the_gpu_count():
    config = geo_align("sampling.conditions_per_step=64")
    one, eight = plan_run(config, 1), plan_run(config, 8)
    for key in ("transformer weights", "gradients (fp32)", "AdamW states (2 x fp32)"):
        assert one.memory[key] > 0
        assert eight.memory[key] == pytest.approx(one.memory[key] / 8, rel=1e-12)
    for key in ("text encoder (UMT5-XXL, bf16)", "VAE (fp32)", "fsdp: 2 blocks gathered"):
        assert eight.memory[key] == one.memory[key]
    assert eight.samples_per_gpu * 8 == one.samples_per_gpu
    assert eight.seconds["rollouts"] == pytest.approx(one.seconds["rollouts"] / 8)


def test_ddp_replicates_and_adds_gradient_buckets():
    config = geo_align("distributed.strategy=ddp")
    one, eight = plan_run(config, 1), plan_run(config, 8)
    assert eight.memory["transformer weights"] == one.memory["transformer weights"]
    assert one.memory["ddp gradient buckets"] == 0
    assert eight.memory["ddp gradient buckets"] == eight.memory["gradients (fp32)"]


def test_cpu_offload_moves_the_sharded_terms_to_the_host():
    plan = plan_run(geo_align("distributed.cpu_offload=true"), 8)
    held = plan_run(geo_align(), 8)
    moved = ("transformer weights", "gradients (fp32)", "AdamW states (2 x fp32)")
    assert all(plan.memory[key] == 0 for key in moved)
    assert plan.cpu_bytes == pytest.approx(sum(held.memory[key] for key in moved))
    assert plan.total_bytes < held.total_bytes


def test_kl_reference_and_guidance_cost_what_they_should():
    base = plan_run(geo_align("rl.kl_beta=0"), 8)
    kl = plan_run(geo_align("rl.kl_beta=0.004"), 8)
    assert kl.memory["reference copy (frozen)"] == base.memory["transformer weights"]
    assert kl.seconds["update"] > base.seconds["update"]
    cfg = plan_run(geo_align("sampling.guidance_scale=5.0"), 8)
    assert cfg.seconds["rollouts"] == pytest.approx(2 * base.seconds["rollouts"])


@pytest.mark.parametrize("schedule", ["full", "sliding_window", "flow_grpo_fast", "random_subset"])
def test_trained_steps_match_the_schedules(schedule):
    from geogrpo.train.trainer import GRPOTrainer

    config = load_config("geo_align", overrides=[f"sampling.schedule={schedule}"])
    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.config = config
    assert trained_steps(config.sampling) == len(trainer.plan(3).train_indices)


def test_the_full_recipe_fits_where_the_paper_ran_it():
    """Geo-Align's full recipe on 8 GPUs: the camera_v2v tokens and the self-attention count."""
    config = load_config("geo_align", "full")
    plan = plan_run(config, 8)
    assert plan.fits("80 GB")
    assert plan.activations_ckpt < plan.activations_no_ckpt
    assert plan.total_bytes > plan.memory["text encoder (UMT5-XXL, bf16)"] > 10 * GIB


# -- CLI -------------------------------------------------------------------------------------


def test_cli_prints_a_column_per_gpu_count(capsys):
    overrides = [x for o in FULL_SCALE for x in ("--set", o)]
    assert main(["plan", "--recipe", "geo_align", *overrides, "--gpus", "1,8"]) == 0
    out = capsys.readouterr().out
    assert "camera_v2v" in out and "65,520 tokens" in out
    header = next(line for line in out.splitlines() if line.startswith("memory per GPU"))
    assert header.split()[-4:] == ["1", "GPU", "8", "GPUs"]
    assert "fits an 80 GB card" in out and "seconds per GRPO step" in out


def test_cli_full_recipe_and_bad_gpus(capsys):
    assert main(["plan", "--recipe", "geo_align", "--scale", "full", "--gpus", "8"]) == 0
    assert "8 GPUs" in capsys.readouterr().out
    assert main(["plan", "--recipe", "geo_align", "--scale", "full", "--gpus", "eight"]) == 2
    assert "--gpus" in capsys.readouterr().err
    assert main(["plan", "--recipe", "geo_align", "--scale", "full", "--gpus", "0"]) == 2
    assert "gpus" in capsys.readouterr().err


def test_cli_conditioning_override(capsys):
    args = ["plan", "--recipe", "geo_align", "--scale", "full", "--gpus", "8"]
    assert main([*args, "--conditioning", "t2v"]) == 0
    assert "32,760 tokens" in capsys.readouterr().out
    assert main([*args, "--conditioning", "v2v"]) == 2
    assert "--conditioning: unknown 'v2v'" in capsys.readouterr().err


def test_a_compressed_ode_tail_cuts_the_rollout_and_the_trainer_steps_that_grid():
    from geogrpo.train.trainer import GRPOTrainer

    window = (
        "sampling.schedule=sliding_window",
        "sampling.window_size=2",
        "sampling.window_shift_interval=1",
        "sampling.window_stride=1",
    )
    full = load_config("geo_align", overrides=list(window))
    thin = load_config("geo_align", overrides=[*window, "sampling.ode_tail_ratio=0.4"])
    trainer = GRPOTrainer.__new__(GRPOTrainer)
    trainer.config = thin
    plans = [trainer.plan(it) for it in range(9)]  # every window position of 10 steps
    # an ODE tail of one or no step (the window's last two positions) has nothing to thin
    assert [p.num_steps < 10 for p in plans] == [True] * 7 + [False] * 2
    assert rollout_steps(thin.sampling) == pytest.approx(sum(p.num_steps for p in plans) / 9)
    assert rollout_steps(full.sampling) == 10
    assert plan_run(thin, 8).seconds["rollouts"] < plan_run(full, 8).seconds["rollouts"]
