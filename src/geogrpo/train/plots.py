"""Curves of a GRPO run: every reward beside the ground truth, on training rollouts and on the
fixed evaluation conditions (a rising reward alone proves nothing)."""

from __future__ import annotations

from pathlib import Path

from geogrpo.train.logging import read_jsonl
from geogrpo.utils.io import atomic_path


def plot_run(run_dir: str | Path, title: str = "") -> Path:
    """Write ``run_dir/curves.png`` from ``metrics.jsonl``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run_dir)
    rows = read_jsonl(run / "metrics.jsonl")
    train = [r for r in rows if "reward_mean" in r]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    splits = sorted({k.split("/")[1] for r in evals for k in r if k.startswith("eval/")})
    columns = [("", train, "training rollouts (SDE)")] + [
        (f"eval/{s}/", evals, f"fixed {s} conditions (ODE)") for s in splits
    ]
    truth = sorted(
        {k.split("truth/")[1] for r in rows for k in r if "truth/" in k and "std" not in k}
    )
    fig, axes = plt.subplots(
        1 + len(truth),
        len(columns),
        figsize=(5 * len(columns), 2.6 * (1 + len(truth))),
        squeeze=False,
        sharex=True,
    )
    for col, (prefix, data, label) in enumerate(columns):
        keys = sorted({k for r in data for k in r if k.startswith(prefix + "reward/")})
        ax = axes[0][col]
        for k in keys:
            pts = [(r["step"], r[k]) for r in data if r.get(k) is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=".", label=k[len(prefix) :])
        ax.set_title(label)
        ax.set_ylabel("reward")
        ax.legend(fontsize=7, loc="best")
        for row, metric in enumerate(truth, start=1):
            ax = axes[row][col]
            pts = [
                (r["step"], r[f"{prefix}truth/{metric}"])
                for r in data
                if r.get(f"{prefix}truth/{metric}") is not None
            ]
            if pts:
                ax.plot(*zip(*pts, strict=True), "k.-")
            ax.set_ylabel(f"truth: {metric}")
        axes[-1][col].set_xlabel("step")
    if title:
        fig.suptitle(title + " (top: rewards; below: the ground truth)")
    fig.tight_layout()
    out = run / "curves.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out
