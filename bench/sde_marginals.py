"""How well does each SDE sampler preserve the data marginal? (reported in bench/RESULTS.md)

Data N(1.5, 0.5^2) in 1D with its exact rectified-flow velocity, so every error printed is the
sampler's own (discretisation + the SDE's drift correction), not a model's. 20k samples each.
"""

from itertools import pairwise

import torch

from geogrpo.rl.sde import SDE_STEPS, ode_step

MU, S, N = 1.5, 0.5, 20_000


def velocity(x, t):
    var = (1 - t) ** 2 * S**2 + t**2
    return (t - (1 - t) * S**2) / var * (x - (1 - t) * MU) - MU


def sample(kind, a, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 1, generator=g, dtype=torch.float64)
    grid = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    for t, tn in pairwise(grid):
        v = velocity(x, t)
        if kind == "ode":
            x = ode_step(x, v, t, tn)
            continue
        step = SDE_STEPS[kind](x, v, t, tn, a)
        x = step.mean if float(step.std.max()) == 0 else step.sample(g)
    return float(x.mean()), float(x.std())


def main() -> None:
    print(f"target mean {MU}, std {S}; entries are (mean, std) of {N} samples\n")
    steps_list = (5, 10, 20, 50, 200)
    print(f"{'sampler':<22}" + "".join(f"{s:>16}" for s in steps_list))
    for kind, a in (
        ("ode", 0.0),
        ("flow_grpo", 0.7),
        ("flow_grpo", 1.0),
        ("dance_grpo", 0.3),
        ("dance_grpo", 0.7),
        ("cps", 0.3),
        ("cps", 0.7),
    ):
        cells = "".join(f"{'({:.3f}, {:.3f})'.format(*sample(kind, a, s)):>16}" for s in steps_list)
        print(f"{kind + ' a=' + str(a):<22}{cells}")


if __name__ == "__main__":
    main()
