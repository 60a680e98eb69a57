"""VideoPolicy with every conditioning on tiny random configs: forward/backward, invariants,
persistence, switches and bad input."""

from dataclasses import replace

import pytest
import torch
from diffusers import WanTransformer3DModel

from geogrpo.camera.presets import preset_trajectory
from geogrpo.models.autoencoder import FrameAutoencoder
from geogrpo.models.conditioning import (
    CONDITIONINGS,
    ConditionInputs,
    make_conditioning,
    reproject_source,
)
from geogrpo.models.policy import VideoPolicy, tiny_transformer_config
from geogrpo.models.text import GrammarTextEncoder
from geogrpo.rl.schedules import flow_matching_timesteps, full_sde_plan, ode_plan
from geogrpo.rl.sde import sde_step
from geogrpo.train.rollout import rollout
from geogrpo.world.render import DEFAULT_FOV_DEG, intrinsics_from_fov

F, H, W = 5, 32, 32  # 4k + 1 frames, multiples of 16
PROMPT = "A room with a red checkered box. The camera pans left."


def tiny_policy(name: str, seed: int = 0, prediction: str = "velocity") -> VideoPolicy:
    torch.manual_seed(seed)
    ae = FrameAutoencoder(frame_channels=2, widths=(8, 8, 8))
    cond = make_conditioning(name)
    text = GrammarTextEncoder(dim=16, layers=1, heads=2)
    cfg = tiny_transformer_config(ae.latent_channels, cond, 16, 2, 2, 12, 32)
    transformer = WanTransformer3DModel(**cfg)
    cond.attach(transformer)
    return VideoPolicy(transformer, ae, text, cond, prediction=prediction)


def raw_inputs(b: int = 2, seed: int = 0, name: str | None = None) -> ConditionInputs:
    """Every input a conditioning can take, or only those ``name``'s conditioning accepts."""
    g = torch.Generator().manual_seed(seed)
    k = intrinsics_from_fov(DEFAULT_FOV_DEG, H, W).float()
    src_w2c = torch.eye(4).expand(b, F, 4, 4).clone()
    src_w2c[:, :, 2, 3] = torch.linspace(0, 0.2, F)  # walking forward
    every = {
        "source_video": torch.rand(b, 3, F, H, W, generator=g) * 2 - 1,
        "source_depth": 2 + torch.rand(b, F, H, W, generator=g),
        "source_w2c": src_w2c,
        "cameras": preset_trajectory("arc_left", F).float().expand(b, F, 4, 4).clone(),
        "intrinsics": k.expand(b, 3, 3).clone(),
    }
    accepts = CONDITIONINGS[name].accepts if name is not None else tuple(every)
    chosen = {key: value for key, value in every.items() if key in accepts}
    return ConditionInputs(num_frames=F, image_size=(H, W), **chosen)


def prepared(policy: VideoPolicy, b: int = 2):
    return policy.prepare([PROMPT] * b, raw_inputs(b, name=policy.conditioning.name))


@pytest.mark.parametrize("name", sorted(CONDITIONINGS))
def test_every_conditioning_runs_forward_and_backward(name):
    policy = tiny_policy(name)
    cond = prepared(policy)
    noise = policy.initial_noise(cond, F, H, W, torch.Generator().manual_seed(0))
    assert noise.shape == (2, policy.latent_channels, 2, H // 8, W // 8)
    v = policy.velocity(noise, torch.tensor([0.9, 0.3]), cond)
    assert v.shape == noise.shape and v.dtype == torch.float32
    v.square().mean().backward()
    grads = [p.grad for p in policy.transformer.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in policy.autoencoder.parameters())  # frozen


def test_camera_v2v_denoises_only_the_target_and_reads_source_and_cameras():
    policy = tiny_policy("camera_v2v")
    for block in policy.transformer.blocks:  # give the zero-initialised camera encoders weight
        torch.nn.init.normal_(block.camera_encoder.weight, std=0.5)
    cond = prepared(policy)
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    base = policy.velocity(x, 0.5, cond)
    other_source = prepared(policy)
    other_source.source_latents = other_source.source_latents.flip(0)
    assert not torch.allclose(policy.velocity(x, 0.5, other_source), base)
    other_cams = prepared(policy)
    other_cams.cameras = preset_trajectory("arc_right", F).float().expand(2, F, 4, 4).clone()
    assert not torch.allclose(policy.velocity(x, 0.5, other_cams), base)


def test_camera_v2v_zero_init_ignores_cameras():
    policy = tiny_policy("camera_v2v")
    cond = prepared(policy)
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    other = prepared(policy)
    other.cameras = preset_trajectory("arc_right", F).float().expand(2, F, 4, 4).clone()
    assert torch.equal(policy.velocity(x, 0.5, cond), policy.velocity(x, 0.5, other))


def test_reprojection_with_identity_cameras_is_the_source_without_holes():
    inputs = raw_inputs()
    ident = torch.eye(4).expand(2, F, 4, 4)
    render, holes = reproject_source(
        inputs.source_video,
        inputs.source_depth,
        inputs.source_w2c,
        ident,
        inputs.intrinsics,
    )
    assert not holes.any()
    torch.testing.assert_close(render, inputs.source_video)
    moved = preset_trajectory("arc_left", F).float().expand(2, F, 4, 4)
    _, holes = reproject_source(
        inputs.source_video,
        inputs.source_depth,
        inputs.source_w2c,
        moved,
        inputs.intrinsics,
    )
    assert not holes[:, 0].any() and holes[:, -1].float().mean() > 0.01  # frame 0 is identity


def test_reproj_mask_is_the_hole_share_in_latent_layout():
    policy = tiny_policy("reproj_v2v")
    cond = prepared(policy)
    m = cond.reproj_mask
    assert m.shape == (2, 4, 2, H // 8, W // 8)
    assert float(m.min()) >= 0 and float(m.max()) <= 1
    assert float(m[:, :, 0].max()) == 0  # latent frame 0 is pixel frame 0: identity, no holes


def test_warped_noise_is_standard_normal_and_moves_with_the_camera():
    policy = tiny_policy("warped_noise_t2v")
    size = ConditionInputs(num_frames=F, image_size=(H, W))
    still = policy.prepare(["A room. The camera stays still."], size)
    pan = policy.prepare(["A room. The camera pans left."], size)
    n_still = policy.initial_noise(still, F, H, W, torch.Generator().manual_seed(0))
    n_pan = policy.initial_noise(pan, F, H, W, torch.Generator().manual_seed(0))
    torch.testing.assert_close(n_still[:, :, 0], n_still[:, :, 1])
    torch.testing.assert_close(n_pan[:, :, 0], n_still[:, :, 0])
    assert not torch.allclose(n_pan[:, :, 1], n_pan[:, :, 0])


def test_save_load_round_trip_is_bit_exact(tmp_path):
    for name in ("t2v", "camera_v2v", "reproj_v2v"):
        policy = tiny_policy(name, seed=3)
        if name == "camera_v2v":
            for block in policy.transformer.blocks:
                torch.nn.init.normal_(block.camera_encoder.weight)
        policy.save_pretrained(tmp_path / name)
        loaded = VideoPolicy.from_pretrained(tmp_path / name)
        a, b = policy.state_dict(), loaded.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        cond_a, cond_b = prepared(policy), prepared(loaded)
        x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
        assert torch.equal(policy.velocity(x, 0.4, cond_a), loaded.velocity(x, 0.4, cond_b))
    t2v = VideoPolicy.from_pretrained(tmp_path / "t2v", conditioning="warped_noise_t2v")
    assert t2v.conditioning.name == "warped_noise_t2v"
    with pytest.raises(ValueError, match="conditioning"):
        VideoPolicy.from_pretrained(tmp_path / "t2v", conditioning="reproj_v2v")


def test_sample_prediction_turns_x0_into_the_velocity_and_survives_save_load(tmp_path):
    policy = tiny_policy("camera_v2v", prediction="sample")
    cond = prepared(policy)
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    t = torch.tensor([0.6, 0.01])
    v = policy.velocity(x, t, cond)
    policy.prediction = "velocity"
    x0 = policy.velocity(x, t, cond)  # the raw transformer output (target half)
    torch.testing.assert_close(v[0], (x[0] - x0[0]) / 0.6)
    torch.testing.assert_close(v[1], (x[1] - x0[1]) / 0.05)  # t clamped at 0.05
    policy.prediction = "sample"
    policy.save_pretrained(tmp_path / "p")
    assert VideoPolicy.from_pretrained(tmp_path / "p").prediction == "sample"
    with pytest.raises(ValueError, match="prediction"):
        tiny_policy("t2v", prediction="epsilon")


EVERY_CONDITIONING = [
    *((n, {}) for n in sorted(CONDITIONINGS)),
    ("camera_v2v", {"rays": True, "attention": True}),
]


def policy_with_live_camera_modules(name: str, options: dict) -> VideoPolicy:
    """A tiny policy whose camera modules (zero / identity at init) actually change the output."""
    torch.manual_seed(1)
    ae = FrameAutoencoder(frame_channels=2, widths=(8, 8, 8))
    cond = make_conditioning(name, **options)
    cfg = tiny_transformer_config(ae.latent_channels, cond, 16, 2, 2, 16, 32)
    transformer = WanTransformer3DModel(**cfg)
    cond.attach(transformer)
    with torch.no_grad():
        for n, p in transformer.named_parameters():
            if "camera" in n:
                p.add_(0.1 * torch.randn_like(p))
    return VideoPolicy(transformer, ae, GrammarTextEncoder(dim=16, layers=1, heads=2), cond)


def gradients_without_and_with_checkpointing(
    name: str, options: dict, device: str = "cpu", autocast_dtype: torch.dtype | None = None
) -> list[torch.Tensor]:
    """All transformer gradients of one loss on the same inputs, checkpointing off, then on."""
    grads = []
    for checkpointing in (False, True):
        policy = policy_with_live_camera_modules(name, options).to(device)
        policy.autocast_dtype = autocast_dtype
        if checkpointing:
            policy.enable_gradient_checkpointing()
        policy.transformer.train()
        c = prepared(policy)
        x = torch.randn(
            2, policy.latent_channels, 2, H // 8, W // 8, generator=torch.Generator().manual_seed(0)
        )
        policy.velocity(x.to(device), 0.5, c).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in policy.transformer.parameters()]))
    assert float(grads[0].abs().max()) > 0
    return grads


@pytest.mark.parametrize(("name", "options"), EVERY_CONDITIONING)
def test_gradient_checkpointing_gives_the_same_gradients(name, options):
    """Backward recomputes each block after ``velocity`` returned, so state a conditioning set
    for the forward (camera_v2v's cameras, rays, PRoPE inputs) must reach the recomputation."""
    without, with_checkpointing = gradients_without_and_with_checkpointing(name, options)
    torch.testing.assert_close(with_checkpointing, without)


@pytest.mark.parametrize(("name", "options"), EVERY_CONDITIONING)
def test_bf16_autocast_runs_close_to_float32(name, options):
    """Only the transformer runs in bf16: camera geometry (inverses, rays) stays float32."""
    policy = policy_with_live_camera_modules(name, options)
    cond = prepared(policy)
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    with torch.no_grad():
        full = policy.velocity(x, 0.5, cond)
        policy.autocast_dtype = torch.bfloat16
        half = policy.velocity(x, 0.5, cond)
    assert half.dtype == torch.float32
    assert float((half - full).abs().max()) < 0.1 * float(full.abs().max()) + 0.05


def test_rollout_ode_is_deterministic_and_sde_log_probs_rescore_exactly():
    policy = tiny_policy("t2v")
    cond = prepared(policy)
    noise = policy.initial_noise(cond, F, H, W, torch.Generator().manual_seed(0))
    grid = flow_matching_timesteps(4, shift=3.0)
    a = rollout(policy, cond, noise, ode_plan(grid))
    b = rollout(policy, cond, noise, ode_plan(grid))
    assert torch.equal(a.latents, b.latents) and a.log_probs == {}
    r = rollout(
        policy, cond, noise, full_sde_plan(grid), generator=torch.Generator().manual_seed(1)
    )
    assert sorted(r.log_probs) == [0, 1, 2, 3] and sorted(r.states) == [0, 1, 2, 3, 4]
    t0, t1 = float(grid[1]), float(grid[2])
    v = policy.velocity(r.states[1], t0, cond)
    again = sde_step(r.states[1], v, t0, t1, 0.7, x_next=r.states[2])
    torch.testing.assert_close(again.log_prob, r.log_probs[1])


def test_bad_input_says_what_is_wrong():
    policy = tiny_policy("camera_v2v")
    with pytest.raises(ValueError, match="4k \\+ 1"):
        policy.encode(torch.zeros(1, 3, 6, H, W))
    with pytest.raises(ValueError, match="divisible by 16"):
        policy.encode(torch.zeros(1, 3, F, 40, W))
    with pytest.raises(ValueError, match="source_video"):
        policy.prepare([PROMPT], ConditionInputs(cameras=torch.eye(4).expand(1, F, 4, 4)))
    for name in ("camera_v2v", "reproj_v2v"):
        inputs = raw_inputs(name=name)
        inputs = replace(inputs, cameras=inputs.cameras[:, :3])
        with pytest.raises(ValueError, match="one camera per frame of the 5-frame source"):
            tiny_policy(name).prepare([PROMPT] * 2, inputs)
    t2v = tiny_policy("t2v")
    with pytest.raises(ValueError, match="t2v does not take cameras"):
        t2v.prepare([PROMPT] * 2, ConditionInputs(cameras=torch.eye(4).expand(2, F, 4, 4)))
    assert t2v.prepare("ab").prompts == ["ab"]  # one prompt, never two letters
    with pytest.raises(ValueError, match="prompts: entry 1 is a int"):
        t2v.prepare([PROMPT, 3])
    with pytest.raises(ValueError, match="3 conditions for 2 prompts"):
        policy.prepare([PROMPT] * 2, raw_inputs(3, name="camera_v2v"))
    with pytest.raises(ValueError, match=r"expected \[-1, 1\]; this looks like 0-255"):
        ConditionInputs(source_video=torch.full((1, 3, F, H, W), 255.0))
    with pytest.raises(ValueError, match="disagree in batch size"):
        replace(raw_inputs(2), cameras=torch.eye(4).expand(3, F, 4, 4))
    cond = prepared(policy)
    cond.cameras = cond.cameras[:, :3]
    with pytest.raises(ValueError, match="cameras: 3 cameras"):
        policy.velocity(torch.zeros(2, policy.latent_channels, 2, H // 8, W // 8), 0.5, cond)
    with pytest.raises(ValueError, match="2 conditions for a batch of 1"):
        policy.velocity(
            torch.zeros(1, policy.latent_channels, 2, H // 8, W // 8), 0.5, prepared(policy)
        )
    with pytest.raises(FileNotFoundError, match="shipped policy"):
        VideoPolicy.from_pretrained("/nonexistent/policy")
    with pytest.raises(ValueError, match="conditioning"):
        make_conditioning("image_to_video")


def test_condition_repeat_makes_groups_in_order():
    policy = tiny_policy("reproj_v2v")
    cond = policy.prepare(["a", "b"], raw_inputs(name="reproj_v2v"))
    group = cond.repeat(3)
    assert group.prompts == ["a", "a", "a", "b", "b", "b"]
    assert torch.equal(group.reproj_latents[3], cond.reproj_latents[1])
    assert torch.equal(group.text[:3], cond.text[:1].expand(3, -1, -1))
    assert group.source_latents is None and len(group) == 6


def test_condition_select_takes_a_micro_batch_of_a_group():
    policy = tiny_policy("camera_v2v")
    group = policy.prepare(["a", "b"], raw_inputs(name="camera_v2v")).repeat(2)
    part = group.select(slice(1, 3))
    assert part.prompts == ["a", "b"] and len(part) == 2
    assert torch.equal(part.source_latents, group.source_latents[1:3])
    assert torch.equal(part.cameras, group.cameras[1:3])
    x = torch.randn(4, policy.latent_channels, 2, H // 8, W // 8)
    torch.testing.assert_close(
        policy.velocity(x[1:3], 0.5, part), policy.velocity(x, 0.5, group)[1:3]
    )
