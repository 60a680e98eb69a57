"""camera_v2v with a Plücker ray per token: exact start from a rayless policy, wiring of the
rays into the right tokens, persistence, and the options' errors."""

import pytest
import torch
from diffusers import WanTransformer3DModel

from geogrpo.camera.se3 import invert_pose
from geogrpo.cli import build_parser
from geogrpo.geometry.projection import plucker_rays
from geogrpo.models.conditioning import CameraV2V, make_conditioning
from geogrpo.models.params import select_trainable
from geogrpo.models.policy import VideoPolicy
from geogrpo.pretrain.config import PolicyPretrainConfig
from geogrpo.pretrain.policy import load_initial_weights
from tests.models.test_policy import H, W, prepared, tiny_policy


def rays_policy(base: VideoPolicy) -> VideoPolicy:
    """``base`` (a rayless camera_v2v policy) rebuilt with ray encoders, as ``--init-from`` does."""
    cond = make_conditioning("camera_v2v", rays=True)
    config = {k: v for k, v in base.transformer.config.items() if not k.startswith("_")}
    transformer = WanTransformer3DModel(**config)
    cond.attach(transformer)
    load_initial_weights(transformer, base.transformer.state_dict())
    return VideoPolicy(transformer, base.autoencoder, base.text_encoder, cond)


def give_weight(policy: VideoPolicy, name: str) -> None:
    g = torch.Generator().manual_seed(5)
    for block in policy.transformer.blocks:
        weight = getattr(block, name).weight
        weight.data.copy_(torch.randn(weight.shape, generator=g) * 0.5)


def test_rays_start_from_the_rayless_policy_exactly():
    base = tiny_policy("camera_v2v")
    give_weight(base, "camera_encoder")
    policy = rays_policy(base)
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    assert torch.equal(
        policy.velocity(x, 0.5, prepared(policy)), base.velocity(x, 0.5, prepared(base))
    )
    names = select_trainable(policy.transformer, "camera")
    assert any("camera_ray_encoder" in n for n in names)


def test_rays_make_the_output_depend_on_the_intrinsics():
    """Rayless ReCamMaster features ignore intrinsics; rays through each token do not."""
    base = tiny_policy("camera_v2v")
    give_weight(base, "camera_encoder")
    policy = rays_policy(base)
    give_weight(policy, "camera_ray_encoder")
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    wide = prepared(policy)
    narrow = prepared(policy)
    narrow.intrinsics = narrow.intrinsics * torch.tensor([2.0, 2.0, 1.0])[:, None]
    narrow.intrinsics[:, 2, 2] = 1.0
    assert not torch.allclose(policy.velocity(x, 0.5, wide), policy.velocity(x, 0.5, narrow))
    base_narrow = prepared(base)
    base_narrow.intrinsics = narrow.intrinsics
    assert torch.equal(base.velocity(x, 0.5, prepared(base)), base.velocity(x, 0.5, base_narrow))


def test_token_rays_follow_the_token_order():
    cond = prepared(tiny_policy("camera_v2v"))
    latents = torch.zeros(2, 8, 2, H // 8, W // 8)  # 2 latent frames of 2 x 2 tokens
    cams = cond.cameras[:, ::4]  # latent frame k uses pixel frame 4k
    rays = CameraV2V._token_rays(cams, cond.intrinsics, latents, (2, 2))
    assert rays.shape == (2, 2 * 2 * 4, 6)
    source, target = rays[:, :8], rays[:, 8:]
    torch.testing.assert_close(source[..., 3:], torch.zeros(2, 8, 3))  # the source camera: o = 0
    expected = plucker_rays(invert_pose(cams[:, 1]), cond.intrinsics, (H, W), (2, 2))
    torch.testing.assert_close(target[:, 4:], expected.flatten(1, 2))  # target frame 1, row-major


def test_rays_survive_save_and_load(tmp_path):
    policy = rays_policy(tiny_policy("camera_v2v", seed=2))
    give_weight(policy, "camera_ray_encoder")
    policy.save_pretrained(tmp_path / "p")
    loaded = VideoPolicy.from_pretrained(tmp_path / "p")
    assert loaded.conditioning.options() == {"rays": True}
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    assert torch.equal(
        policy.velocity(x, 0.3, prepared(policy)), loaded.velocity(x, 0.3, prepared(loaded))
    )


def test_ray_options_are_checked():
    with pytest.raises(ValueError, match="options"):
        make_conditioning("t2v", rays=True)
    with pytest.raises(ValueError, match="camera_rays"):
        PolicyPretrainConfig(conditioning="reproj_v2v", camera_rays=True)
    reproj = tiny_policy("reproj_v2v")
    camera = rays_policy(tiny_policy("camera_v2v")).transformer
    with pytest.raises(ValueError, match="init_from"):
        load_initial_weights(camera, reproj.transformer.state_dict())


def test_cli_boolean_flags():
    parser = build_parser()
    on = parser.parse_args(["pretrain", "policy", "--conditioning", "camera_v2v", "--camera-rays"])
    off = parser.parse_args(["pretrain", "policy", "--no-camera-rays"])
    assert on.camera_rays is True and off.camera_rays is False
    assert parser.parse_args(["pretrain", "policy"]).camera_rays is False
