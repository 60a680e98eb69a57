"""Step schedules: exact SDE/trained step sequences over iterations, written out by hand."""

import pytest
import torch

from geogrpo.rl.schedules import (
    StepPlan,
    denoising_reduction_timesteps,
    flow_grpo_fast_plan,
    flow_matching_timesteps,
    full_sde_plan,
    random_subset_plan,
    sliding_window_plan,
)


def test_timesteps_closed_form_with_shift():
    grid = flow_matching_timesteps(4, shift=3.0, dtype=torch.float64)
    # u = 1, .75, .5, .25, 0 -> 3u / (1 + 2u)
    expected = torch.tensor([1.0, 2.25 / 2.5, 1.5 / 2.0, 0.75 / 1.5, 0.0], dtype=torch.float64)
    torch.testing.assert_close(grid, expected)


def test_full_plan_trains_every_step():
    plan = full_sde_plan(flow_matching_timesteps(5))
    assert plan.sde_indices == plan.train_indices == [0, 1, 2, 3, 4]


def test_sliding_window_sequence_over_iterations_restarts_after_the_end():
    grid = flow_matching_timesteps(10)
    got = [
        sliding_window_plan(grid, 3, it, shift_interval=2, stride=2).sde_indices for it in range(11)
    ]
    assert got == [
        [0, 1, 2],
        [0, 1, 2],  # iterations 0-1
        [2, 3, 4],
        [2, 3, 4],  # 2-3: moved by the stride
        [4, 5, 6],
        [4, 5, 6],
        [6, 7, 8],
        [6, 7, 8],  # the last start <= 10 - 3 reachable with stride 2
        [0, 1, 2],
        [0, 1, 2],  # MixGRPO --roll_back: back to the noisiest steps
        [2, 3, 4],
    ]
    for it in range(11):
        plan = sliding_window_plan(grid, 3, it, shift_interval=2, stride=2)
        assert plan.train_indices == plan.sde_indices
        assert torch.equal(plan.timesteps, grid)


def test_sliding_window_can_hold_at_the_last_window():
    grid = flow_matching_timesteps(10)
    got = [
        sliding_window_plan(grid, 3, it, shift_interval=2, stride=2, after_end="hold").sde_indices
        for it in (6, 7, 8, 9, 10, 50)
    ]
    assert got == [[6, 7, 8], [6, 7, 8], [7, 8, 9], [7, 8, 9], [7, 8, 9], [7, 8, 9]]


def test_sliding_window_with_compressed_ode_tail():
    grid = flow_matching_timesteps(10, dtype=torch.float64)
    plan = sliding_window_plan(grid, 2, 0, ode_tail_ratio=0.4)
    # Window steps 0-1, then 9 tail grid points (2..10) thinned to int(9 * 0.4) = 3: 2, 6, 10.
    torch.testing.assert_close(plan.timesteps, grid[[0, 1, 2, 6, 10]])
    assert plan.sde == (True, True, False, False)
    later = sliding_window_plan(grid, 2, 4, ode_tail_ratio=0.5)  # window at steps 4-5
    torch.testing.assert_close(later.timesteps, grid[[0, 1, 2, 3, 4, 5, 6, 10]])
    assert later.sde_indices == [4, 5]
    full = sliding_window_plan(grid, 2, 4, ode_tail_ratio=1.0)
    assert torch.equal(full.timesteps, grid)


def test_flow_grpo_fast_window_stays_in_the_first_fraction_and_covers_it():
    grid = flow_matching_timesteps(20)
    gen = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(300):
        plan = flow_grpo_fast_plan(grid, 2, 0.5, gen)
        idx = plan.sde_indices
        assert len(idx) == 2 and idx[1] == idx[0] + 1
        assert idx[1] < 10  # inside the first half of the 20 steps
        assert plan.train_indices == idx
        starts.add(idx[0])
    assert starts == set(range(9))  # every start 0..8 is drawn


def test_flow_grpo_fast_is_reproducible_from_its_generator():
    grid = flow_matching_timesteps(20)
    a = [flow_grpo_fast_plan(grid, 2, 0.5, torch.Generator().manual_seed(7)).sde_indices]
    b = [flow_grpo_fast_plan(grid, 2, 0.5, torch.Generator().manual_seed(7)).sde_indices]
    assert a == b


def test_random_subset_samples_everywhere_and_trains_a_subset():
    grid = flow_matching_timesteps(16)
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(100):
        plan = random_subset_plan(grid, 4, gen)
        assert plan.sde_indices == list(range(16))
        assert len(plan.train_indices) == 4
        seen.update(plan.train_indices)
    assert seen == set(range(16))


def test_denoising_reduction_shares_the_shifted_schedule():
    train, infer = denoising_reduction_timesteps(40, 10, shift=5.0)
    assert train.shape == (11,) and infer.shape == (41,)
    torch.testing.assert_close(train, infer[::4])  # same shifted curve, every 4th point


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda g: sliding_window_plan(g, 11, 0), "window_size"),
        (lambda g: sliding_window_plan(g, 0, 0), "window_size"),
        (lambda g: sliding_window_plan(g, 3, -1), "iteration"),
        (lambda g: sliding_window_plan(g, 3, 0, shift_interval=0), "shift_interval"),
        (lambda g: sliding_window_plan(g, 3, 0, ode_tail_ratio=1.5), "ode_tail_ratio"),
        (lambda g: sliding_window_plan(g, 3, 0, after_end="wrap"), "after_end"),
        (lambda g: flow_grpo_fast_plan(g, 12, 0.5, torch.Generator()), "window_size"),
        (lambda g: flow_grpo_fast_plan(g, 2, 1.5, torch.Generator()), "max_start_fraction"),
        (lambda g: random_subset_plan(g, 11, torch.Generator()), "num_train_steps"),
        (lambda g: denoising_reduction_timesteps(10, 20), "num_train_steps"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        call(flow_matching_timesteps(10))


def test_plan_rejects_training_an_ode_step_and_a_rising_grid():
    grid = flow_matching_timesteps(2)
    with pytest.raises(ValueError, match="^train"):
        StepPlan(grid, (True, False), (True, True))
    with pytest.raises(ValueError, match="^timesteps"):
        StepPlan(grid.flip(0), (True, True), (True, True))
