"""camera_v2v's PRoPE branch: the attention's closed forms and invariances, which tokens it
mixes, an exact start from a policy without it, persistence, and the options' errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from diffusers import WanTransformer3DModel

from geogrpo.camera.se3 import intrinsics_from_fov
from geogrpo.cli import build_parser
from geogrpo.models.autoencoder import FrameAutoencoder
from geogrpo.models.camera import _camera_branch, normalized_projection, prope_attention
from geogrpo.models.conditioning import make_conditioning
from geogrpo.models.params import select_trainable
from geogrpo.models.policy import VideoPolicy, tiny_transformer_config
from geogrpo.models.text import GrammarTextEncoder
from geogrpo.pretrain.config import PolicyPretrainConfig
from geogrpo.pretrain.policy import load_initial_weights
from tests.models.test_policy import H, W, prepared

N, L, HEADS, D = 2, 6, 2, 16


def qkv(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(N, L, HEADS, D, generator=g) for _ in range(3))


def random_w2c(n: int, seed: int) -> torch.Tensor:
    """``[n, 4, 4]`` rigid world-to-camera poses."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=g))
    q = q * torch.linalg.det(q)[:, None, None].sign()  # proper rotations
    pose = torch.eye(4).repeat(n, 1, 1)
    pose[:, :3, :3], pose[:, :3, 3] = q, torch.randn(n, 3, generator=g)
    return pose


def projections(seed: int = 1) -> torch.Tensor:
    k = intrinsics_from_fov(60.0, H, W).float()
    return normalized_projection(random_w2c(N * L, seed), k, (H, W)).view(N, L, 4, 4)


def positions(seed: int = 2) -> torch.Tensor:
    return torch.randint(0, 6, (N, L, 2), generator=torch.Generator().manual_seed(seed)).float()


def test_normalized_projection_maps_the_image_to_minus_one_one():
    k = intrinsics_from_fov(60.0, 48, 64).float()
    p = normalized_projection(torch.eye(4), k, (48, 64))
    corner_px = torch.tensor([64.0, 48.0, 1.0])  # the image's bottom-right corner, in pixels
    ray = torch.linalg.solve(k, corner_px)  # a camera point that projects there
    image = p @ torch.cat([ray * 3.0, torch.ones(1)])  # at depth 3
    torch.testing.assert_close(image[:2] / image[2], torch.tensor([1.0, 1.0]))
    centre = p @ torch.tensor([0.0, 0.0, 2.0, 1.0])
    torch.testing.assert_close(centre[:2], torch.zeros(2))


def test_prope_with_identity_cameras_at_one_position_is_plain_attention():
    q, k, v = qkv()
    out = prope_attention(q, k, v, torch.eye(4).expand(N, L, 4, 4), torch.zeros(N, L, 2))
    plain = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    torch.testing.assert_close(out, plain.transpose(1, 2))


def test_prope_sees_only_relative_cameras_and_relative_positions():
    """Moving the world (every ``P_i -> P_i G``) or every token by one offset changes nothing;
    moving one camera alone does."""
    q, k, v = qkv()
    p, pos = projections(), positions()
    out = prope_attention(q, k, v, p, pos)
    world = random_w2c(1, 7)[0]  # G: a rigid change of world frame
    torch.testing.assert_close(prope_attention(q, k, v, p @ world, pos), out, atol=1e-4, rtol=1e-4)
    shifted = pos + torch.tensor([3.0, -2.0])
    torch.testing.assert_close(prope_attention(q, k, v, p, shifted), out, atol=1e-4, rtol=1e-4)
    moved = p.clone()
    moved[:, 0] = moved[:, 0] @ world
    assert (prope_attention(q, k, v, moved, pos) - out).abs().max() > 1e-2
    nudged = pos.clone()
    nudged[:, 0] += 1.0
    assert (prope_attention(q, k, v, p, nudged) - out).abs().max() > 1e-2


def test_prope_logits_are_q_dot_relative_transform_k():
    """Two tokens, one head, camera half only: the weight on token 1 from token 0 is
    ``softmax(q0 . (P0 P1^-1) k1 / sqrt(d))``, checked through a one-hot value."""
    d = 8  # 4 camera dims (one chunk) + 4 position dims
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(1, 2, 1, d, generator=g), torch.randn(1, 2, 1, d, generator=g)
    p = projections()[:1, :2]
    v = torch.zeros(1, 2, 1, d)
    v[0, 1, 0, 4] = 1.0  # token 1 carries 1 in the first position dim, which P does not touch
    out = prope_attention(q, k, v, p, torch.zeros(1, 2, 2))  # positions 0: RoPE is the identity
    logits = torch.stack(
        [
            q[0, 0, 0, :4] @ (p[0, 0] @ torch.linalg.inv(p[0, j])) @ k[0, j, 0, :4]
            + q[0, 0, 0, 4:] @ k[0, j, 0, 4:]
            for j in range(2)
        ]
    )
    weight = torch.softmax(logits / math.sqrt(d), dim=0)[1]
    torch.testing.assert_close(out[0, 0, 0, 4], weight, atol=1e-5, rtol=1e-5)


def test_prope_rejects_head_dims_it_cannot_split():
    q = torch.zeros(1, 2, 1, 12)
    with pytest.raises(ValueError, match="head_dim"):
        prope_attention(q, q, q, torch.eye(4).expand(1, 2, 4, 4), torch.zeros(1, 2, 2))


def attention_policy(base_name: str = "camera_v2v", seed: int = 0, **options) -> VideoPolicy:
    """A tiny policy whose head_dim (16) PRoPE can split."""
    torch.manual_seed(seed)
    ae = FrameAutoencoder(frame_channels=2, widths=(8, 8, 8))
    cond = make_conditioning(base_name, **options)
    text = GrammarTextEncoder(dim=16, layers=1, heads=2)
    transformer = WanTransformer3DModel(
        **tiny_transformer_config(ae.latent_channels, cond, 16, 2, 2, 16, 32)
    )
    cond.attach(transformer)
    return VideoPolicy(transformer, ae, text, cond)


def with_attention(base: VideoPolicy) -> VideoPolicy:
    """``base`` rebuilt with the PRoPE branch, as ``--camera-attention --init-from`` does."""
    cond = make_conditioning("camera_v2v", **base.conditioning.options(), attention=True)
    config = {k: v for k, v in base.transformer.config.items() if not k.startswith("_")}
    transformer = WanTransformer3DModel(**config)
    cond.attach(transformer)
    load_initial_weights(transformer, base.transformer.state_dict())
    return VideoPolicy(transformer, base.autoencoder, base.text_encoder, cond)


def give_weight(policy: VideoPolicy, name: str, seed: int = 5) -> None:
    g = torch.Generator().manual_seed(seed)
    for block in policy.transformer.blocks:
        weight = getattr(block, name).weight
        weight.data.copy_(torch.randn(weight.shape, generator=g) * 0.5)


@pytest.mark.parametrize("rays", [False, True])
def test_camera_attention_starts_from_the_policy_without_it_exactly(rays):
    base = attention_policy(rays=rays)
    give_weight(base, "camera_encoder")
    policy = with_attention(base)
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    assert torch.equal(
        policy.velocity(x, 0.5, prepared(policy)), base.velocity(x, 0.5, prepared(base))
    )
    assert any("camera_attention_out" in n for n in select_trainable(policy.transformer, "camera"))
    give_weight(policy, "camera_attention_out")
    changed = policy.velocity(x, 0.5, prepared(policy))
    assert (changed - base.velocity(x, 0.5, prepared(base))).abs().max() > 1e-3
    changed.square().mean().backward()
    assert policy.transformer.blocks[0].camera_attention_out.weight.grad.abs().sum() > 0


def test_camera_branch_mixes_only_tokens_of_the_same_frame_index():
    """Changing source frame 0 moves the branch's output at frame 0 of both clips, nowhere else."""
    policy = attention_policy(attention=True)
    attn = policy.transformer.blocks[0].attn1
    clips, frames, per_frame, dim = 2, 3, 4, attn.to_q.in_features
    n = clips * frames * per_frame
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, n, dim, generator=g)
    k = intrinsics_from_fov(60.0, H, W).float()
    proj = normalized_projection(random_w2c(n, 1), k, (H, W))[None]  # [1, n, 4, 4]
    pos = torch.randint(0, 2, (n, 2), generator=g).float()

    def branch(x, layout=(clips, frames, per_frame)):
        qkv = attn.norm_q(attn.to_q(x)), attn.norm_k(attn.to_k(x)), attn.to_v(x)
        return _camera_branch(attn, *qkv, proj, pos, layout)

    out = branch(x)
    x2 = x.clone()
    x2[:, :per_frame] += 1.0  # clip 0 (source), frame 0
    diff = (branch(x2) - out).abs().amax(-1).view(clips, frames, per_frame)
    assert (diff[:, 0] > 1e-4).all()
    assert (diff[:, 1:] == 0).all()
    with pytest.raises(ValueError, match="do not cover"):
        branch(x, (clips, frames + 1, per_frame))


def test_camera_attention_reuses_the_processors_projections():
    """The branch takes q, k, v from the Wan processor's own pass: one projection per forward."""
    policy = with_attention(attention_policy(rays=True))
    give_weight(policy, "camera_attention_out")
    calls = []
    for block in policy.transformer.blocks:
        for proj in (block.attn1.to_q, block.attn1.to_k, block.attn1.to_v):
            proj.register_forward_hook(lambda m, a, o: calls.append(m))
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    policy.velocity(x, 0.5, prepared(policy))
    assert len(calls) == 3 * len(policy.transformer.blocks)
    assert all(not block._camera_qkv for block in policy.transformer.blocks)


def test_camera_attention_survives_save_and_load(tmp_path):
    policy = with_attention(attention_policy(rays=True, seed=2))
    give_weight(policy, "camera_attention_out")
    policy.save_pretrained(tmp_path / "p")
    loaded = VideoPolicy.from_pretrained(tmp_path / "p")
    assert loaded.conditioning.options() == {"rays": True, "attention": True}
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    assert torch.equal(
        policy.velocity(x, 0.3, prepared(policy)), loaded.velocity(x, 0.3, prepared(loaded))
    )


def test_camera_attention_options_are_checked():
    args = build_parser().parse_args(["pretrain", "policy", "--camera-attention"])
    assert args.camera_attention is True
    with pytest.raises(ValueError, match="camera_attention"):
        PolicyPretrainConfig(conditioning="t2v", camera_attention=True)
    with pytest.raises(ValueError, match="head_dim"):
        make_conditioning("camera_v2v", attention=True).attach(
            WanTransformer3DModel(
                **tiny_transformer_config(8, make_conditioning("camera_v2v"), 16, 1, 2, 12, 32)
            )
        )
