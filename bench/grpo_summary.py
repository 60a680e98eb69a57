"""Markdown rows of finished GRPO runs for bench/RESULTS.md: base vs trained per metric on the
fixed conditions (mean change, 95 % t-interval over conditions, how many rose) and the median
time per step by phase (runs before the truth diagnostic had its own timer count it in reward).

    python bench/grpo_summary.py runs/geo_align runs/devis_grpo
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from geogrpo.train.logging import read_jsonl

PHASES = ("time/rollout", "time/decode", "time/reward", "time/truth", "time/update")


def summarize(run: Path) -> str:
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    rows = [r for r in read_jsonl(run / "metrics.jsonl") if "reward_mean" in r]
    lines = [
        f"**{run.name}**: step 0 vs step {summary['trained_step']}",
        "",
        "| fixed conditions / metric | before | after | change | 95 % CI | rose |",
        "|---|---|---|---|---|---|",
    ]
    for key, c in summary["changes"].items():
        if c.get("n"):
            lines.append(
                f"| {key} | {c['before']:.4f} | {c['after']:.4f} | {c['change']:+.4f} | "
                f"[{c['ci95_low']:+.4f}, {c['ci95_high']:+.4f}] | {c['rose']}/{c['n']} |"
            )
    medians = {p: statistics.median(r.get(p, 0.0) for r in rows) for p in PHASES}
    total = sum(medians.values())
    parts = ", ".join(f"{p.split('/')[1]} {v:.1f} s" for p, v in medians.items())
    lines += ["", f"Median step: {total:.1f} s ({parts})."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of geogrpo train")
    for run in parser.parse_args().runs:
        print(summarize(run) + "\n")


if __name__ == "__main__":
    main()
