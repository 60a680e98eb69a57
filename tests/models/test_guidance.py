"""Classifier-free guidance in VideoPolicy.velocity and the prompt dropout that trains for it."""

import pytest
import torch

from geogrpo.pretrain.config import PolicyPretrainConfig
from geogrpo.pretrain.policy import drop_prompts
from tests.models.test_policy import PROMPT, H, W, raw_inputs, tiny_policy


@pytest.mark.parametrize("name", ["t2v", "camera_v2v"])
def test_guided_velocity_is_the_cfg_combination(name):
    policy = tiny_policy(name)
    x = torch.randn(2, policy.latent_channels, 2, H // 8, W // 8)
    inputs = raw_inputs(2, name=name)
    plain = policy.prepare([PROMPT] * 2, inputs)
    empty = policy.prepare([""] * 2, inputs)
    v_c, v_u = policy.velocity(x, 0.6, plain), policy.velocity(x, 0.6, empty)
    assert plain.uncond_text is None and not torch.allclose(v_c, v_u)
    for scale in (0.0, 1.0, 4.0):
        guided = policy.prepare([PROMPT] * 2, inputs, guidance_scale=scale)
        torch.testing.assert_close(policy.velocity(x, 0.6, guided), v_u + scale * (v_c - v_u))
    # scale 0 is the unconditional model with the same source and cameras
    zero = policy.prepare([PROMPT] * 2, inputs, guidance_scale=0.0)
    torch.testing.assert_close(policy.velocity(x, 0.6, zero), v_u)


def test_guidance_reaches_groups_and_bad_settings_are_refused():
    policy = tiny_policy("t2v")
    cond = policy.prepare([PROMPT, "A room."], guidance_scale=3.0)
    group = cond.repeat(2)
    assert group.uncond_text.shape[0] == 4 and group.guidance_scale == 3.0
    with pytest.raises(ValueError, match="guidance_scale"):
        policy.prepare([PROMPT], guidance_scale=-1.0)
    cond.uncond_text = None
    with pytest.raises(ValueError, match="uncond_text"):
        policy.velocity(torch.randn(2, policy.latent_channels, 2, H // 8, W // 8), 0.5, cond)


def test_prompt_dropout():
    prompts = [f"p{i}" for i in range(4000)]
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert drop_prompts(prompts, 0.0, gen) == prompts
    assert torch.equal(gen.get_state(), state)  # no draw: runs without dropout replay exactly
    dropped = drop_prompts(prompts, 0.1, gen)
    empty = [i for i, p in enumerate(dropped) if p == ""]
    assert 4000 * 0.1 - 4 * 19 < len(empty) < 4000 * 0.1 + 4 * 19  # 4 binomial std
    assert all(dropped[i] == prompts[i] for i in range(4000) if i not in set(empty))
    with pytest.raises(ValueError, match="prompt_dropout"):
        PolicyPretrainConfig(prompt_dropout=1.0)
