"""Rewards on the run's device (issue 25): every reward model is moved there once, when built;
a reward computes where its batch is and hands scores back on the CPU. Built with
``device="cpu"`` the embedded recipes' rewards score exactly as the default path; on CUDA
(skipped without one) they match the CPU within float tolerance."""

import math

import pytest
import torch
from torch import nn

from geogrpo.camera.presets import preset_trajectory
from geogrpo.recipes.build import Shared, build_rewards
from geogrpo.rewards.base import RewardBatch
from geogrpo.train.config import RewardSpec, load_config
from geogrpo.world.datasets import scene_for
from geogrpo.world.paths import make_path
from geogrpo.world.render import render

RECIPES = ("camera_fidelity", "devis_grpo", "geo_align", "overfit", "vggrpo", "world_r1")
# What no embedded recipe lists but a run may: the RGB geometry rewards, every view-fidelity
# term (the perceptual distance and the quality scorer).
EXTRA = (
    "tinygeo",
    [
        RewardSpec("trajectory"),
        RewardSpec("smoothness"),
        RewardSpec("reprojection"),
        RewardSpec("view_fidelity", options={"weights": [1.0, 1.0, 1.0, 1.0]}),
    ],
)
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
    ),
]


def reward_lists() -> dict[str, tuple[str, list[RewardSpec]]]:
    lists = {}
    for recipe in RECIPES:
        config = load_config(recipe)
        lists[recipe] = (config.rewards.estimator, list(config.rewards.rewards))
    lists["extra"] = EXTRA
    return lists


LISTS = reward_lists()


def build(name: str, device: str | None):
    estimator, specs = LISTS[name]
    return build_rewards(specs, Shared(estimator, {}, device))


@pytest.fixture(scope="module")
def batch() -> RewardBatch:
    """Two 9-frame 96x96 clips (tinygeo's size) with everything any reward reads."""
    clips = [
        render(scene_for("val", seed), preset_trajectory(p, 9) @ make_path("walking", 9, 2), 96, 96)
        for seed, p in ((4, "pan_right"), (5, "arc_left"))
    ]
    video = torch.stack([c.rgb for c in clips])  # [2, 9, 96, 96, 3]
    g = torch.Generator().manual_seed(0)
    reference = (video + 0.05 * torch.randn(video.shape, generator=g)).clamp(0, 1)
    return RewardBatch(
        video=video,
        latents=torch.randn(2, 64, 3, 12, 12, generator=g),  # the LGM's [B, C, k + 1, h, w]
        intrinsics=torch.stack([c.intrinsics for c in clips]).float(),
        target_w2c=torch.stack([c.w2c for c in clips]),
        reference_video=reference,
        visible=torch.rand(video.shape[:4], generator=g) > 0.3,
        source_video=video.flip(1),
        prompts=["a walk past a house", "an orbit around a tree"],
    )


def fresh(batch: RewardBatch) -> RewardBatch:
    return RewardBatch(**{**vars(batch), "cache": {}})


def modules(obj, depth: int = 3) -> list[nn.Module]:
    """The torch modules a reward holds (its estimator's, scorers', judge's, perceptual's)."""
    if isinstance(obj, nn.Module):
        return [obj]
    if depth == 0 or not hasattr(obj, "__dict__"):
        return []
    return [m for value in vars(obj).values() for m in modules(value, depth - 1)]


def scores_of(rewards, batch: RewardBatch) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for name, _, reward in rewards:
        result = reward(batch)
        out[name] = {"scores": result.scores, "valid": result.valid, **result.diagnostics}
    return out


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (
        a.device.type == "cpu"
        and torch.equal(a.isnan(), b.isnan())
        and torch.equal(a.nan_to_num(), b.nan_to_num())
    )


@pytest.mark.parametrize("name", list(LISTS))
def test_rewards_built_for_the_cpu_score_exactly_as_the_default_path(name, batch):
    default = scores_of(build(name, None), fresh(batch))
    on_cpu = scores_of(build(name, "cpu"), fresh(batch).to("cpu"))
    assert default.keys() == on_cpu.keys()
    for reward, values in default.items():
        for key, value in values.items():
            assert same(on_cpu[reward][key], value), (reward, key)


@pytest.mark.parametrize("device", DEVICES)
def test_rewards_on_a_device_match_the_cpu_and_keep_their_models_there(device, batch):
    kind = torch.device(device).type
    for name in LISTS:
        reference = scores_of(build(name, "cpu"), fresh(batch))
        rewards = build(name, device)
        held = [m for _, _, r in rewards for m in modules(r)]
        assert held, f"{name}: no reward model found"
        assert all(p.device.type == kind for m in held for p in m.parameters()), name
        moved = scores_of(rewards, fresh(batch).to(device))
        for reward, values in reference.items():
            assert torch.equal(moved[reward]["valid"], values["valid"]), (name, reward)
            for key, value in values.items():
                got = moved[reward][key]
                assert got.device.type == "cpu", (name, reward, key)
                # conv/matmul kernels differ between devices (TF32 convs on CUDA): 1e-2
                torch.testing.assert_close(got, value, atol=1e-2, rtol=1e-2, equal_nan=True)


def test_reward_models_go_to_the_run_device_when_built_and_never_move_again(batch, monkeypatch):
    """The meta device shows on a CPU where every model is put (no data is copied); scoring a
    batch then moves no module (models are moved once, at build, not per call)."""
    for name in LISTS:
        held = [m for _, _, r in build(name, "meta") for m in modules(r)]
        assert held and all(p.is_meta for m in held for p in m.parameters()), name
    rewards = [r for name in LISTS for r in build(name, "cpu")]
    calls = []
    original = nn.Module.to

    def counting_to(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "to", counting_to)
    for _, _, reward in rewards:
        reward(fresh(batch))
    assert calls == []


def test_a_moved_batch_shares_its_cache_and_scores_come_back_on_the_cpu(batch):
    moved = batch.to("cpu")
    assert moved.cache is batch.cache
    assert moved.video is batch.video  # already there: no copy
    (_, _, reward), *_ = build("vggrpo", "cpu")
    out = reward(fresh(batch))
    assert out.scores.device.type == "cpu" and out.valid.device.type == "cpu"
    assert all(math.isfinite(s) for s in out.scores.tolist())
