"""Clipped loss gradients, Gaussian KL against Monte Carlo, timestep weights, assembled loss."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from geogrpo.rl.losses import (
    clipped_policy_loss,
    gaussian_kl,
    grpo_step_loss,
    timestep_loss_weights,
    velocity_sensitivity,
)
from geogrpo.rl.schedules import flow_matching_timesteps
from geogrpo.rl.sde import sde_step


def _grad_of_loss(log_ratio, adv, clip=0.2):
    lp = torch.tensor(log_ratio, dtype=torch.float64, requires_grad=True)
    old = torch.zeros_like(lp)
    out = clipped_policy_loss(lp, old, torch.tensor(adv, dtype=torch.float64), clip)
    out.loss.sum().backward()
    return lp.grad, out


def test_gradient_is_zero_where_ratio_is_clipped_in_the_advantages_direction():
    # ratio e^0.5 = 1.65 > 1.2 with A > 0, and e^-0.5 = 0.61 < 0.8 with A < 0: both clipped.
    grad, out = _grad_of_loss([0.5, -0.5], [1.0, -1.0])
    assert grad.tolist() == [0.0, 0.0]
    assert out.clipped.tolist() == [True, True]


def test_gradient_flows_inside_the_trust_region_and_against_the_advantage():
    # Inside [0.8, 1.2]; and ratio pushed the wrong way (A > 0, r < 0.8 / A < 0, r > 1.2).
    log_ratio = [0.05, -0.05, -0.5, 0.5]
    adv = [1.0, -1.0, 2.0, -2.0]
    grad, out = _grad_of_loss(log_ratio, adv)
    ratio = torch.exp(torch.tensor(log_ratio, dtype=torch.float64))
    torch.testing.assert_close(grad, -torch.tensor(adv, dtype=torch.float64) * ratio)
    assert out.clipped.tolist() == [False, False, False, False]


def test_clipped_loss_value_closed_form():
    lp = torch.log(torch.tensor([1.5, 0.9, 0.5]))
    adv = torch.tensor([2.0, -1.0, -3.0])
    out = clipped_policy_loss(lp, torch.zeros(3), adv, 0.2)
    # max(-A r, -A clip(r)): [max(-3, -2.4), max(0.9, 0.9), max(1.5, 2.4)]
    torch.testing.assert_close(out.loss, torch.tensor([-2.4, 0.9, 2.4]))


def test_gaussian_kl_matches_torch_and_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mp, mq = torch.randn(2, 3, generator=gen, dtype=torch.float64).unbind(0)
    mp, mq = mp.view(1, 3), mq.view(1, 3)
    sp, sq = torch.tensor(0.7, dtype=torch.float64), torch.tensor(1.3, dtype=torch.float64)
    kl = gaussian_kl(mp, sp, mq, sq, reduce="sum")
    exact = kl_divergence(Normal(mp, sp), Normal(mq, sq)).sum()
    torch.testing.assert_close(kl, exact.view(1))
    p, q = Normal(mp, sp), Normal(mq, sq)
    xs = p.sample((400_000,))
    mc = (p.log_prob(xs) - q.log_prob(xs)).sum(-1).mean()
    assert float(kl) == pytest.approx(float(mc), rel=0.02)


def test_gaussian_kl_equal_std_closed_form_and_zero_for_identical_models():
    m = torch.randn(4, 2, 3)
    s = torch.tensor(0.3)
    torch.testing.assert_close(gaussian_kl(m + 0.1, s, m, s), torch.full((4,), 0.01 / (2 * 0.09)))
    assert torch.equal(gaussian_kl(m, s, m, s), torch.zeros(4))


def test_kl_between_policy_and_identical_reference_is_zero_in_the_step_loss():
    x, v = torch.randn(6, 4), torch.randn(6, 4)
    pol = sde_step(x, v, 0.6, 0.5, 0.7, generator=torch.Generator().manual_seed(0))
    kl = gaussian_kl(pol.mean, pol.std, pol.mean, pol.std)
    out = grpo_step_loss(pol.log_prob, pol.log_prob, torch.randn(6), 0.2, kl=kl, kl_beta=0.1)
    assert float(out.kl) == 0.0


def test_step_loss_assembles_weight_policy_kl_and_mask():
    lp = torch.log(torch.tensor([1.1, 0.9, 1.0, 1.0]))
    adv = torch.tensor([1.0, 2.0, -1.0, 5.0])
    kl = torch.tensor([0.5, 0.1, 0.2, 9.0])
    mask = torch.tensor([True, True, True, False])
    out = grpo_step_loss(
        lp, torch.zeros(4), adv, 0.2, weight=2.0, kl=kl, kl_beta=0.1, kl_weight=3.0, mask=mask
    )
    policy = torch.tensor([-1.1, -1.8, 1.0])
    expected = (2.0 * policy + 0.1 * 3.0 * kl[:3]).mean()
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.policy_loss, policy.mean())
    torch.testing.assert_close(out.kl, kl[:3].mean())


def test_timestep_weights_equalise_the_velocity_gradient_across_steps():
    grid = flow_matching_timesteps(10, shift=3.0, dtype=torch.float64)
    w, w_kl = timestep_loss_weights(grid, 0.7)
    gen = torch.Generator().manual_seed(0)
    raw, weighted = [], []
    for i in range(10):
        x = torch.randn(256, 16, generator=gen, dtype=torch.float64)
        v = torch.randn(256, 16, generator=gen, dtype=torch.float64).requires_grad_(True)
        drawn = sde_step(x, v.detach(), grid[i], grid[i + 1], 0.7, generator=gen)
        lp = sde_step(x, v, grid[i], grid[i + 1], 0.7, x_next=drawn.x_next).log_prob
        (g,) = torch.autograd.grad(lp.sum(), v)
        norm = float(g.norm(dim=1).mean())
        raw.append(norm)
        weighted.append(norm * float(w[i]))
    assert max(raw) / min(raw) > 3.0  # the imbalance the weights are for
    assert max(weighted) / min(weighted) < 1.15
    assert float(w.mean()) == pytest.approx(1.0)
    c, s = velocity_sensitivity(grid[:-1], grid[1:], 0.7)
    torch.testing.assert_close(
        w_kl / w_kl.mean(), (s / c.abs()).square() / (s / c.abs()).square().mean()
    )


def test_timestep_weights_equal_longcat_video_weights_for_unit_noise():
    grid = flow_matching_timesteps(16, shift=5.0, dtype=torch.float64)
    w, w_kl = timestep_loss_weights(grid, 1.0)
    t, dt = grid[1:-1], grid[1:-1] - grid[2:]  # skip step 0, where sigma_t uses t_next at t = 1
    longcat_policy = torch.sqrt(t / (dt * (1 - t)))
    longcat_kl = t / (dt * (1 - t))
    ratio, ratio_kl = w[1:] / longcat_policy, w_kl[1:] / longcat_kl
    torch.testing.assert_close(ratio, ratio.mean().expand_as(ratio))
    torch.testing.assert_close(ratio_kl, ratio_kl.mean().expand_as(ratio_kl))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"log_prob": torch.zeros(3)}, "old_log_prob"),
        ({"advantages": torch.tensor([0.0, float("nan")])}, "advantages"),
        ({"clip_range": 0.0}, "clip_range"),
        ({"log_prob": torch.zeros(2, 1), "old_log_prob": torch.zeros(2, 1)}, "log_prob"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    args = {
        "log_prob": torch.zeros(2),
        "old_log_prob": torch.zeros(2),
        "advantages": torch.zeros(2),
        "clip_range": 0.2,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name}"):
        clipped_policy_loss(**args)


def test_step_loss_requires_kl_when_beta_is_set():
    with pytest.raises(ValueError, match="^kl"):
        grpo_step_loss(torch.zeros(2), torch.zeros(2), torch.ones(2), 0.2, kl_beta=0.1)


def test_timestep_weights_have_mean_one_over_the_trained_window_wherever_it_sits():
    grid = flow_matching_timesteps(20, shift=3.0)
    means = []
    for start in (0, 8, 15):
        trained = tuple(start <= i < start + 4 for i in range(20))
        w, w_kl = timestep_loss_weights(grid, 0.7, trained=trained)
        idx = [i for i, f in enumerate(trained) if f]
        means.append((float(w[idx].mean()), float(w_kl[idx].mean())))
    for m in means:
        assert m == pytest.approx((1.0, 1.0))
    full, _ = timestep_loss_weights(grid, 0.7)
    window, _ = timestep_loss_weights(grid, 0.7, trained=tuple(i < 4 for i in range(20)))
    torch.testing.assert_close(window / window[0], full / full[0])  # same shape, new scale
    with pytest.raises(ValueError, match="trained"):
        timestep_loss_weights(grid, 0.7, trained=(True,) * 3)
