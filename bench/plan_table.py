"""The memory and time model (``geogrpo plan``, issue 24) against the issue-6 measurements, and
the full-scale recipes' plans: the tables of bench/RESULTS.md's "Memory and time model" section.

Runs on a CPU in seconds: the models are built on the ``meta`` device only.

    python bench/plan_table.py                 # the validation table (Markdown)
    python bench/plan_table.py --recipes       # ... and each full recipe on 1, 8 and 64 GPUs
"""

from __future__ import annotations

import argparse

from geogrpo.train.config import load_config
from geogrpo.train.plan import (
    ISSUE6_ROWS,
    calibrated_flops_per_s,
    format_plan,
    plan_runs,
    validation_table,
)

FULL_RECIPES = ("geo_align", "devis_grpo", "vggrpo", "world_r1")


def markdown_validation() -> str:
    """Each measured row beside the prediction, errors in percent."""
    lines = [
        "| row | role | peak measured / predicted | forward s | backward s |",
        "|---|---|---|---|---|",
    ]
    for row in validation_table():
        m, p, e = row["measured"], row["predicted"], row["error"]
        cells = [
            f"{m[i]:.{1 if i == 0 else 2}f} / {p[i]:.{1 if i == 0 else 2}f} ({e[i] * 100:+.1f} %)"
            for i in range(3)
        ]
        lines.append(
            f"| {row['label']} | {row['role']} | {cells[0]} GiB | {cells[1]} | {cells[2]} |"
        )
    worst = [max(abs(r["error"][i]) for r in validation_table()) for i in range(3)]
    lines.append("")
    lines.append(
        f"{len(ISSUE6_ROWS)} rows; achieved {calibrated_flops_per_s() / 1e12:.0f} TFLOP/s; largest "
        f"errors: peak {worst[0] * 100:.1f} %, forward {worst[1] * 100:.1f} %, backward "
        f"{worst[2] * 100:.1f} %"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", action="store_true", help="also plan the full recipes")
    args = parser.parse_args()
    print(markdown_validation())
    if args.recipes:
        for recipe in FULL_RECIPES:
            config = load_config(recipe, "full")
            shape, plans = plan_runs(config, [1, 8, 64])
            print()
            print(format_plan(config, shape, plans), end="")


if __name__ == "__main__":
    main()
