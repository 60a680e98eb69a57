"""Test-time reward guidance against a quadratic reward with a closed-form gradient."""

import pytest
import torch

from geogrpo.rl.guidance import guidance_step_indices, reward_guidance_step


def _quadratic(centre):
    return lambda x: -(x - centre).square().flatten(1).sum(dim=1)


def test_step_matches_the_closed_form_gradient():
    centre = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    out = reward_guidance_step(x, _quadratic(centre), 0.1)
    torch.testing.assert_close(out.x, x + 0.1 * 2 * (centre - x))
    torch.testing.assert_close(out.reward, _quadratic(centre)(x))


def test_small_steps_raise_the_reward_and_large_ones_overshoot():
    centre = torch.zeros(5, dtype=torch.float64)
    x = torch.randn(8, 5, dtype=torch.float64)
    reward = _quadratic(centre)
    before = reward(x)
    assert bool((reward(reward_guidance_step(x, reward, 0.2).x) > before).all())
    # Step 1.0 lands at x + 2(c - x) = -x: the same reward, the quadratic's overshoot.
    torch.testing.assert_close(reward(reward_guidance_step(x, reward, 1.0).x), before)


def test_normalised_step_moves_each_sample_by_step_size_rms():
    x = torch.randn(3, 2, 4, dtype=torch.float64)
    scaled = torch.tensor([1.0, 100.0, 0.01], dtype=torch.float64)

    def reward(z):
        return scaled * z.flatten(1).sum(dim=1)

    out = reward_guidance_step(x, reward, 0.05, normalize=True)
    rms = (out.x - x).flatten(1).square().mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.full((3,), 0.05, dtype=torch.float64))


def test_guidance_does_not_leak_gradients_into_the_caller():
    x = torch.randn(2, 3, requires_grad=True)
    out = reward_guidance_step(x, _quadratic(torch.zeros(3)), 0.1)
    assert not out.x.requires_grad


def test_guidance_step_indices():
    assert guidance_step_indices(50, 20) == [0, 20, 40]
    assert guidance_step_indices(10, 3, first=2) == [2, 5, 8]


def test_bad_reward_shape_is_rejected():
    with pytest.raises(ValueError, match="^reward_fn"):
        reward_guidance_step(torch.randn(2, 3), lambda z: z.sum(), 0.1)
    with pytest.raises(ValueError, match="^every"):
        guidance_step_indices(10, 0)


def test_guiding_the_clean_prediction_moves_it_toward_the_reward_optimum():
    # VGGRPO scores x0 = x_t - t v; with v fixed, the gradient w.r.t. x_t is the x0 gradient.
    centre = torch.tensor([2.0, -1.0], dtype=torch.float64)
    x, v, t = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64), 0.6
    out = reward_guidance_step(x, lambda z: _quadratic(centre)(z - t * v), 0.1)
    x0_before, x0_after = x - t * v, out.x - t * v
    torch.testing.assert_close(x0_after, x0_before + 0.2 * (centre - x0_before))
