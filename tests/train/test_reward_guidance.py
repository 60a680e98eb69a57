"""Test-time reward guidance (VGGRPO): small nudges raise the guided latent reward of the final
sample (large ones leave the model's manifold and lower it, measured), and a zero step is plain
sampling."""

import pytest
import torch

from geogrpo.models.conditioning import ConditionInputs
from geogrpo.models.policy import VideoPolicy
from geogrpo.recipes.build import build_guidance_reward
from geogrpo.rl.rollout import denoise
from geogrpo.rl.schedules import flow_matching_timesteps, ode_plan
from geogrpo.train.rollout import RewardGuidance, generate, policy_velocity

PROMPT = "A room with a red checkered box. The camera pans left, then tilts up."


@pytest.fixture(scope="module")
def policy():
    return VideoPolicy.from_pretrained("tiny-t2v")


def test_guidance_raises_the_latent_smoothness_of_the_sample(policy):
    reward = build_guidance_reward("smoothness")
    cond = policy.prepare([PROMPT] * 4, ConditionInputs(num_frames=17, image_size=(96, 96)))
    noise = policy.initial_noise(cond, 17, 96, 96, torch.Generator().manual_seed(4))
    plan = ode_plan(flow_matching_timesteps(10, 3.0))
    finals = {}
    for step_size in (0.0, 0.05):
        guidance = RewardGuidance(reward, step_size=step_size, every=2)
        out = denoise(policy_velocity(policy, cond), noise, plan, keep="none", guide=guidance.guide)
        assert len(guidance.history) == 5  # after steps 0, 2, 4, 6, 8 (t_next > 0)
        with torch.no_grad():
            finals[step_size] = reward(out.latents)
    assert float(finals[0.05].mean()) > float(finals[0.0].mean()) + 0.01, finals


def test_a_zero_step_is_plain_sampling_and_only_differentiable_rewards_guide(policy):
    plain = generate(policy, [PROMPT], 17, 96, 96, num_inference_steps=4, seed=1)
    zero = RewardGuidance(build_guidance_reward("smoothness"), step_size=0.0, every=1)
    same = generate(
        policy, [PROMPT], 17, 96, 96, num_inference_steps=4, seed=1, reward_guidance=zero
    )
    torch.testing.assert_close(same, plain, rtol=0, atol=0)
    with pytest.raises(ValueError, match="no differentiable latent form"):
        build_guidance_reward("reprojection")
