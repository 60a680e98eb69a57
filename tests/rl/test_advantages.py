"""Group advantages: normalisation invariants, max-std, zero-variance masking, bad input."""

import pytest
import torch

from geogrpo.rl.advantages import clip_advantages, group_advantages, multi_reward_advantages


def _rewards(seed=0, n=5, g=8):
    gen = torch.Generator().manual_seed(seed)
    scales = torch.tensor([0.1, 1.0, 3.0, 0.5, 2.0], dtype=torch.float64)[:n, None]
    return torch.randn(n, g, generator=gen, dtype=torch.float64) * scales + 4.0


def test_group_mode_gives_zero_mean_unit_std_per_group():
    adv = group_advantages(_rewards(), eps=0.0)
    torch.testing.assert_close(adv.advantages.mean(dim=1), torch.zeros(5, dtype=torch.float64))
    torch.testing.assert_close(
        adv.advantages.std(dim=1, unbiased=False), torch.ones(5, dtype=torch.float64)
    )
    assert bool(adv.valid.all())


def test_max_group_mode_puts_the_widest_group_at_unit_std():
    r = _rewards()
    adv = group_advantages(r, std_mode="max_group", eps=0.0).advantages
    stds = adv.std(dim=1, unbiased=False)
    widest = int(r.std(dim=1, unbiased=False).argmax())
    assert float(stds[widest]) == pytest.approx(1.0, abs=1e-12)
    assert bool((stds <= 1.0 + 1e-12).all())
    # The other groups keep their spread relative to the widest one.
    ratio = r.std(dim=1, unbiased=False) / r.std(dim=1, unbiased=False).max()
    torch.testing.assert_close(stds, ratio)
    torch.testing.assert_close(adv.mean(dim=1), torch.zeros(5, dtype=torch.float64))


def test_global_mode_divides_by_the_batch_std():
    r = _rewards()
    adv = group_advantages(r, std_mode="global", eps=0.0).advantages
    expected = (r - r.mean(dim=1, keepdim=True)) / r.std(unbiased=False)
    torch.testing.assert_close(adv, expected)


@pytest.mark.parametrize("mode", ["group", "global", "max_group"])
def test_zero_variance_groups_get_zero_advantage_and_are_masked(mode):
    r = _rewards()
    r[2] = 0.7
    adv = group_advantages(r, std_mode=mode)
    assert torch.equal(adv.advantages[2], torch.zeros(8, dtype=torch.float64))
    assert adv.valid.tolist() == [True, True, False, True, True]
    flat_adv, flat_mask = adv.flat()
    assert flat_adv.shape == (40,) and flat_mask[16:24].tolist() == [False] * 8


def test_per_reward_normalisation_is_invariant_to_each_rewards_scale():
    gen = torch.Generator().manual_seed(1)
    r = torch.randn(4, 6, 3, generator=gen, dtype=torch.float64)
    base = multi_reward_advantages(r, aggregate="sum", std_mode="max_group", eps=0.0).advantages
    scaled = r * torch.tensor([1000.0, 1e-3, 1.0], dtype=torch.float64) + 5.0
    again = multi_reward_advantages(
        scaled, aggregate="sum", std_mode="max_group", eps=0.0
    ).advantages
    torch.testing.assert_close(base, again)


def test_sum_and_mean_aggregation_closed_form():
    gen = torch.Generator().manual_seed(2)
    r = torch.randn(3, 5, 2, generator=gen, dtype=torch.float64)
    w = torch.tensor([2.0, 1.0], dtype=torch.float64)
    a0 = group_advantages(r[..., 0]).advantages
    a1 = group_advantages(r[..., 1]).advantages
    summed = multi_reward_advantages(r, w, aggregate="sum", std_mode="group").advantages
    mean = multi_reward_advantages(r, w, aggregate="mean", std_mode="group").advantages
    torch.testing.assert_close(summed, 2 * a0 + a1)
    torch.testing.assert_close(mean, (2 * a0 + a1) / 3)


def test_multi_reward_group_is_valid_if_any_reward_varies():
    r = torch.zeros(2, 4, 2)
    r[0, :, 1] = torch.tensor([0.0, 1.0, 2.0, 3.0])
    adv = multi_reward_advantages(r, std_mode="group")
    assert adv.valid.tolist() == [True, False]
    assert torch.equal(adv.advantages[1], torch.zeros(4))


def test_clip_advantages():
    a = torch.tensor([-7.0, -1.0, 0.5, 9.0])
    assert clip_advantages(a, 5.0).tolist() == [-5.0, -1.0, 0.5, 5.0]


@pytest.mark.parametrize(
    ("rewards", "kwargs", "name"),
    [
        (torch.zeros(4, 1), {}, "rewards"),  # group size 1
        (torch.zeros(8), {}, "rewards"),  # missing group axis
        (torch.tensor([[1.0, float("nan")]]), {}, "rewards"),
        (torch.zeros(2, 3), {"std_mode": "median"}, "std_mode"),
    ],
)
def test_bad_input_names_the_argument(rewards, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        group_advantages(rewards, **kwargs)


def test_multi_reward_weight_count_must_match():
    with pytest.raises(ValueError, match="^weights"):
        multi_reward_advantages(torch.randn(2, 3, 2), torch.ones(3))


def test_invalid_samples_leave_the_group_statistics():
    """A masked sample (placeholder score 0) must not move its group's mean or std."""
    r = torch.tensor([[1.0, 2.0, 3.0, 0.0], [5.0, 5.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, True, False], [True, False, False, False]])
    adv = group_advantages(r, sample_valid=valid)
    expected = (torch.tensor([1.0, 2.0, 3.0]) - 2.0) / torch.tensor([1.0, 2.0, 3.0]).std(
        unbiased=False
    )
    torch.testing.assert_close(adv.advantages[0, :3], expected)
    assert float(adv.advantages[0, 3]) == 0.0
    assert adv.valid.tolist() == [True, False]  # one valid sample is no baseline
    assert torch.equal(adv.advantages[1], torch.zeros(4))
    full = group_advantages(r[:1, :3])
    torch.testing.assert_close(adv.advantages[0, :3], full.advantages[0])
    per_reward = multi_reward_advantages(r[..., None], sample_valid=valid[..., None])
    torch.testing.assert_close(per_reward.advantages[0, :3], full.advantages[0] * 1.0)
    with pytest.raises(ValueError, match="sample_valid"):
        group_advantages(r, sample_valid=valid.float())
