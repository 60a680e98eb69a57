import math

import pytest
import torch

from geogrpo.eval.stats import mean_with_interval, paired_comparison


def _conditions(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # conditions differ far more from each other than the two policies do
    return torch.randn(n, generator=gen, dtype=torch.float64) * 3.0


def test_paired_bootstrap_recovers_a_known_difference():
    a = _conditions(60)
    gen = torch.Generator().manual_seed(1)
    b = a + 0.5 + 0.2 * torch.randn(60, generator=gen, dtype=torch.float64)
    out = paired_comparison(a, b)
    assert out["n"] == 60
    assert out["diff"] == pytest.approx(float((b - a).mean()))
    assert out["ci95_low"] < 0.5 < out["ci95_high"]
    # paired: the interval is about 1.96 * 0.2 / sqrt(60) wide on each side, not 3 / sqrt(60)
    assert out["ci95_high"] - out["ci95_low"] < 0.15
    assert out["ci95_low"] > 0.4
    assert out["up"] + out["down"] == 60 and out["up"] >= 58


def test_paired_bootstrap_without_a_difference_covers_zero():
    a = _conditions(80)
    gen = torch.Generator().manual_seed(2)
    b = a + 0.2 * torch.randn(80, generator=gen, dtype=torch.float64)
    out = paired_comparison(a, b)
    assert out["ci95_low"] < 0 < out["ci95_high"]
    assert 25 < out["up"] < 55


def test_paired_comparison_drops_pairs_with_a_nan():
    a = torch.tensor([1.0, 2.0, math.nan, 4.0])
    b = torch.tensor([2.0, math.nan, 5.0, 6.0])
    out = paired_comparison(a, b)
    assert out["n"] == 2
    assert out["diff"] == pytest.approx(1.5)
    assert out["mean_a"] == pytest.approx(2.5) and out["mean_b"] == pytest.approx(4.0)
    assert (out["up"], out["down"]) == (2, 0)


def test_paired_comparison_rejects_unpaired_inputs():
    with pytest.raises(ValueError, match="same conditions"):
        paired_comparison(torch.zeros(3), torch.zeros(4))


def test_mean_with_interval_matches_the_mean_and_shrinks_with_n():
    small = mean_with_interval(_conditions(10) + 7.0)
    large = mean_with_interval(_conditions(400) + 7.0)
    assert small["mean"] == pytest.approx(float((_conditions(10) + 7.0).mean()))
    assert small["ci95_low"] < small["mean"] < small["ci95_high"]
    assert large["ci95_low"] < 7.0 < large["ci95_high"]
    assert large["ci95_high"] - large["ci95_low"] < small["ci95_high"] - small["ci95_low"]
    assert mean_with_interval(torch.tensor([math.nan, 1.0]))["n"] == 1
