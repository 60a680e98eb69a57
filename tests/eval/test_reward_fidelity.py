import math

import pytest
import torch

from geogrpo.eval.reward_fidelity import (
    best_above_median,
    fidelity_stats,
    format_table,
    spread,
    within_group_spearman,
)
from geogrpo.eval.stats import bootstrap_mean_interval


def _groups(n=200, g=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.randn(n, 1, generator=gen, dtype=torch.float64) * 5
    return offsets + torch.randn(n, g, generator=gen, dtype=torch.float64)


def test_reward_equal_to_truth_ranks_perfectly():
    truth = _groups()
    stats = fidelity_stats(truth * 3 + 1, truth)
    assert stats["spearman"] == pytest.approx(1.0)
    assert stats["spearman_low"] == pytest.approx(1.0)
    assert stats["best_above_median"] == 1.0
    assert stats["groups"] == 200


def test_shuffled_reward_knows_nothing():
    truth = _groups()
    gen = torch.Generator().manual_seed(1)
    shuffled = torch.stack([row[torch.randperm(8, generator=gen)] for row in truth])
    stats = fidelity_stats(shuffled, truth)
    assert abs(stats["spearman"]) < 0.08
    assert stats["spearman_low"] < 0 < stats["spearman_high"]
    assert 0.4 < stats["best_above_median"] < 0.6


def test_lower_is_better_truth_is_oriented():
    error = _groups()
    stats = fidelity_stats(-error, error, higher_is_better=False)
    assert stats["spearman"] == pytest.approx(1.0)
    assert fidelity_stats(error, error, higher_is_better=False)["spearman"] == pytest.approx(-1.0)


def test_partial_agreement_is_between():
    truth = _groups(seed=2)
    gen = torch.Generator().manual_seed(3)
    noisy = truth + torch.randn(truth.shape, generator=gen, dtype=torch.float64) * 1.0
    stats = fidelity_stats(noisy, truth)
    assert 0.4 < stats["spearman"] < 0.9
    assert stats["spearman_low"] > 0.3


def test_spread_closed_form():
    reward = torch.tensor([[0.0, 2.0], [10.0, 14.0]])
    within, across = spread(reward)
    assert within == pytest.approx((1.0 + 2.0) / 2)
    assert across == pytest.approx(5.5)  # group means 1 and 12, population std


def test_invalid_samples_are_left_out():
    truth = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    reward = torch.tensor([[1.0, 2.0, 3.0, -100.0]])
    valid = torch.tensor([[True, True, True, False]])
    assert float(within_group_spearman(reward, truth, valid)[0]) == pytest.approx(1.0)
    assert float(best_above_median(reward, truth, valid)[0]) == 1.0
    reward[0, 1] = float("nan")  # non-finite scores drop out too; 2 left: undefined
    assert math.isnan(float(within_group_spearman(reward, truth, valid)[0]))


def test_constant_reward_has_no_ranking():
    truth = _groups(n=3)
    stats = fidelity_stats(torch.ones_like(truth), truth)
    assert math.isnan(stats["spearman"])
    assert stats["within_group_std"] == 0.0


def test_best_above_median_even_group_uses_midpoint():
    truth = torch.tensor([[1.0, 2.0, 3.0, 4.0]])  # median 2.5
    assert float(best_above_median(torch.tensor([[0.0, 9.0, 0.0, 0.0]]), truth)[0]) == 0.0
    assert float(best_above_median(torch.tensor([[0.0, 0.0, 9.0, 0.0]]), truth)[0]) == 1.0
    ties = torch.tensor([[0.0, 1.0, 1.0]])  # the pick equals the median: half credit
    assert float(best_above_median(torch.tensor([[0.0, 9.0, 0.0]]), ties)[0]) == 0.5


def test_bootstrap_interval_covers_mean_and_shrinks_with_n():
    gen = torch.Generator().manual_seed(0)
    small = torch.randn(10, generator=gen, dtype=torch.float64)
    large = torch.randn(1000, generator=gen, dtype=torch.float64)
    lo_s, hi_s = bootstrap_mean_interval(small)
    lo_l, hi_l = bootstrap_mean_interval(large)
    assert lo_s < float(small.mean()) < hi_s
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4
    assert all(math.isnan(x) for x in bootstrap_mean_interval(torch.tensor([1.0])))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"\[N, G\]"):
        fidelity_stats(torch.zeros(2, 3), torch.zeros(3, 2))


def test_table_formats_every_row():
    truth = _groups(n=5)
    row = {"reward": "r", "truth": "psnr", **fidelity_stats(truth, truth)}
    text = format_table([row])
    assert "| r | psnr |" in text and "+1.00" in text
