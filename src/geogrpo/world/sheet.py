"""Contact sheets: a few clips of every split, frames left to right, as one PNG."""

from __future__ import annotations

from pathlib import Path

import torch

from geogrpo.utils.io import atomic_path
from geogrpo.world.datasets import SPLITS, TextToVideoClips


def contact_sheet(
    out: str | Path,
    per_split: int = 2,
    frames_shown: int = 5,
    num_frames: int = 17,
    size: int = 96,
    splits: tuple[str, ...] = tuple(SPLITS),
) -> Path:
    """Render ``per_split`` text-to-video clips of each split and tile them into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        (split, TextToVideoClips(split, per_split, num_frames, size)[i])
        for split in splits
        for i in range(per_split)
    ]
    picks = torch.linspace(0, num_frames - 1, frames_shown).round().long().tolist()
    fig, axes = plt.subplots(
        len(rows), frames_shown, figsize=(1.3 * frames_shown + 0.4, 1.5 * len(rows)), squeeze=False
    )
    for r, (split, item) in enumerate(rows):
        for c, f in enumerate(picks):
            ax = axes[r][c]
            ax.imshow(item["video"][f].numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(split, fontsize=7)
            if r == 0:
                ax.set_title(f"frame {f}", fontsize=7)
        axes[r][0].text(
            0, -0.08, item["camera_text"], transform=axes[r][0].transAxes, fontsize=5, va="top"
        )
    fig.subplots_adjust(left=0.07, right=0.99, top=0.95, bottom=0.02, wspace=0.04, hspace=0.32)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(out)
