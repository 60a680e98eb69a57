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
    fig, axes = plt.subplots(1, 1 + len(splits), figsize=(5 * (1 + len(splits)), 3.6))
    axes = list(axes) if len(splits) else [axes]

    def draw(ax, rows, prefix, label):
        keys = sorted({k for r in rows for k in r if k.startswith(prefix + "reward/")})
        truth = sorted({k for r in rows for k in r if k.startswith(prefix + "truth/")})
        for k in keys:
            pts = [(r["step"], r[k]) for r in rows if r.get(k) is not None]
            ax.plot(*zip(*pts, strict=True), marker=".", label=k[len(prefix) :]) if pts else None
        ax.set_xlabel("step")
        ax.set_ylabel("reward")
        ax.set_title(label)
        twin = ax.twinx()
        for k, style in zip(truth, ("--", ":"), strict=False):
            pts = [(r["step"], r[k]) for r in rows if r.get(k) is not None]
            if pts:
                twin.plot(*zip(*pts, strict=True), "k" + style, label=k[len(prefix) :])
        twin.set_ylabel("ground truth")
        lines = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="best")

    draw(axes[0], train, "", "training rollouts (SDE)")
    for ax, split in zip(axes[1:], splits, strict=True):
        draw(ax, evals, f"eval/{split}/", f"fixed {split} conditions (ODE)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = run / "curves.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
