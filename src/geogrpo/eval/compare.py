"""``geogrpo eval --compare A B``: two evaluations of one suite on the same conditions, paired by
condition id (paired bootstrap over conditions, how many went up and down), and side-by-side
videos condition | A | B | true target where both wrote the clip."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from geogrpo.eval.stats import paired_comparison
from geogrpo.utils.io import atomic_write_json, atomic_write_text


def read_evaluation(folder: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(summary, {id: sample row})`` of a ``geogrpo eval --suite`` output folder."""
    folder = Path(folder)
    summary_path, samples_path = folder / "summary.json", folder / "samples.jsonl"
    for path in (summary_path, samples_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"--compare: {path} is missing; pass folders written by geogrpo eval --suite S "
                "--out DIR"
            )
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        lines = samples_path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--compare: {folder} holds a damaged results file ({err.msg}, line {err.lineno}); "
            "evaluate again into a fresh folder"
        ) from None
    if "suite" not in summary or "higher_is_better" not in summary:
        raise ValueError(f"--compare: {summary_path} is not a suite summary (no 'suite')")
    return summary, {row["id"]: row for row in rows}


def compare_evaluations(a: str | Path, b: str | Path, out: str | Path, seed: int = 0) -> dict:
    """Write ``compare.json``, ``table.md`` and ``videos/`` into ``out``; return the comparison."""
    summary_a, rows_a = read_evaluation(a)
    summary_b, rows_b = read_evaluation(b)
    if summary_a["suite"] != summary_b["suite"]:
        raise ValueError(
            f"--compare: {a} is a {summary_a['suite']} evaluation and {b} a "
            f"{summary_b['suite']} one; compare two evaluations of the same suite"
        )
    shared = [cid for cid in rows_a if cid in rows_b]
    if not shared:
        raise ValueError(
            f"--compare: {a} and {b} share no condition id; evaluate both with the same --split, "
            "--n and --trajectories"
        )
    better = summary_a["higher_is_better"]
    splits = list(dict.fromkeys(rows_a[cid]["split"] for cid in shared))
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for split in [*splits, "all"]:
        ids = [c for c in shared if split == "all" or rows_a[c]["split"] == split]
        metrics[split] = {
            m: paired_comparison(_column(rows_a, ids, m), _column(rows_b, ids, m), seed=seed)
            for m in better
        }
    result = {
        "suite": summary_a["suite"],
        "a": summary_a["policy"],
        "b": summary_b["policy"],
        "a_folder": str(a),
        "b_folder": str(b),
        "conditions": len(shared),
        "higher_is_better": better,
        "descriptions": summary_a.get("descriptions", {}),
        "metrics": metrics,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "compare.json", result)
    atomic_write_text(out / "table.md", comparison_table(result))
    _side_by_side(Path(a), Path(b), out, shared)
    return result


def _column(rows: dict[str, dict], ids: list[str], metric: str) -> torch.Tensor:
    values = [rows[c].get(metric) for c in ids]
    return torch.tensor([math.nan if v is None else v for v in values], dtype=torch.float64)


def comparison_table(result: dict) -> str:
    """Markdown: per split and metric, A, B, B - A with its interval, and up / down counts."""
    lines = [
        f"{result['suite']}: {result['b']} (B) vs {result['a']} (A) on {result['conditions']} "
        "shared conditions; B - A with a 95 % paired bootstrap interval over conditions",
        "",
        "| split | metric | A | B | B - A | 95 % CI | up / down |",
        "|---|---|---|---|---|---|---|",
    ]
    for split, table in result["metrics"].items():
        for m, c in table.items():
            if not c["n"]:
                continue
            arrow = "↑" if result["higher_is_better"][m] else "↓"
            lines.append(
                f"| {split} | {m} {arrow} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | "
                f"{c['diff']:+.4g} | [{c['ci95_low']:+.4g}, {c['ci95_high']:+.4g}] | "
                f"{c['up']} / {c['down']} |"
            )
    return "\n".join(lines) + "\n"


def _side_by_side(a: Path, b: Path, out: Path, ids: list[str]) -> None:
    from geogrpo.eval.conditions import file_stem
    from geogrpo.utils.video import read_video, write_video

    for cid in ids:
        stem = file_stem(cid)
        clip_a, clip_b = a / "videos" / f"{stem}.mp4", b / "videos" / f"{stem}.mp4"
        truth = a / "videos" / f"{stem}.truth.mp4"
        if not (clip_a.is_file() and clip_b.is_file() and truth.is_file()):
            continue
        source = a / "videos" / f"{stem}.source.mp4"
        panels = [read_video(p) for p in (clip_a, clip_b, truth)]
        first = read_video(source) if source.is_file() else torch.zeros_like(panels[0])
        write_video(out / "videos" / f"{stem}.mp4", torch.cat([first, *panels], dim=2))
