"""Does a quality scorer still reward what a GRPO run found against it? Two reward-fidelity
suite outputs of the same conditions (same recipe, split, seed, group), one of the base policy and
one of the hacked policy, each scored by the same quality rewards:

    geogrpo eval --suite reward-fidelity --recipe geo_align --n 12 --fast-truth \\
        --reward quality --reward 'quality:{"scorer": "runs/quality_old/tiny-quality"}' \\
        --out runs/rf_quality/base
    geogrpo eval ... --policy runs/geo_align --out runs/rf_quality/hacked
    python bench/quality_hacking.py runs/rf_quality/base runs/rf_quality/hacked

For every reward present in both: the share of (hacked sample, base sample) pairs of one condition
that the reward orders hacked below base (the truth, true-target PSNR and SSIM, says so for nearly
all), the conditions whose hacked group mean is below the base group mean, and the mean
within-group Spearman of the reward against true-target PSNR and SSIM in each suite.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def load(folder: Path) -> tuple[dict, dict[int, list[dict]]]:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    groups: dict[int, list[dict]] = defaultdict(list)
    for line in (folder / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        groups[row["condition"]].append(row)
    return summary, groups


def hacked_below_base(base: dict[int, list[dict]], hacked: dict[int, list[dict]], key: str):
    """(share of pairs with hacked < base, conditions with hacked mean < base mean, conditions)."""
    below = pairs = lower_means = conditions = 0
    for c, rows in base.items():
        b = [r[key] for r in rows if r.get(key) is not None]
        h = [r[key] for r in hacked.get(c, []) if r.get(key) is not None]
        if not b or not h:
            continue
        below += sum(x < y for x in h for y in b)
        pairs += len(h) * len(b)
        lower_means += sum(h) / len(h) < sum(b) / len(b)
        conditions += 1
    return below / max(pairs, 1), lower_means, conditions


def spearman(summary: dict, reward: str, truth: str) -> str:
    for row in summary["table"]:
        if row["reward"] == reward and row["truth"] == truth:
            return (
                f"{row['spearman']:+.2f} [{row['spearman_low']:+.2f}, {row['spearman_high']:+.2f}]"
            )
    return "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="suite output of the base policy")
    parser.add_argument("hacked", type=Path, help="suite output of the hacked policy")
    args = parser.parse_args()
    sb, base = load(args.base)
    sh, hacked = load(args.hacked)
    for key in ("split", "conditions", "group_size", "seed", "recipe"):
        if sb[key] != sh[key]:
            raise SystemExit(f"{key}: {sb[key]} (base) != {sh[key]} (hacked); not the same groups")
    rewards = [r["reward"] for r in sb["table"] if r["truth"] == "psnr"]
    print(
        f"base {sb['policy']} vs hacked {sh['policy']}: {sb['conditions']} {sb['split']} "
        f"conditions x G = {sb['group_size']}, plan {sb['plan']}, seed {sb['seed']}\n"
    )
    print(
        "| scorer | hacked below base (pairs) | conditions hacked mean < base mean | "
        "Spearman vs PSNR, base groups | vs SSIM, base | vs PSNR, hacked groups | "
        "vs SSIM, hacked |"
    )
    print("|---|---|---|---|---|---|---|")
    for truth in ("psnr", "ssim"):
        # the truth's own verdict, for reference: lower PSNR / SSIM is worse
        share, lower, n = hacked_below_base(base, hacked, f"truth/{truth}")
        print(f"| (truth: {truth}) | {share:.2f} | {lower}/{n} | | | | |")
    for reward in rewards:
        share, lower, n = hacked_below_base(base, hacked, f"reward/{reward}")
        cells = [spearman(s, reward, t) for s in (sb, sh) for t in ("psnr", "ssim")]
        print(f"| {reward} | {share:.2f} | {lower}/{n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
