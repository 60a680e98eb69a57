"""One static HTML page for a results folder: GRPO runs, eval suites and paired comparisons.

``build_report(root, out)`` searches ``root`` recursively for three kinds of folders, reads each
into plain data, draws its plots (matplotlib, Agg) and copies its videos into ``<out
stem>_files/`` beside the page, then writes the page atomically. The page links its images and
videos by relative paths and loads nothing from the network, so the folder can be zipped, moved
or opened from ``file://``.

- a GRPO run (``geogrpo train``): ``metrics.jsonl`` + ``config.yaml`` (``summary.json``,
  ``videos/step_XXXXX.mp4`` once written). Shown: base vs trained on the fixed conditions, one
  row of curves per reward with every ground-truth metric beside it, the diagnostics, and the
  base and newest side-by-side videos (condition | output | truth).
- an eval suite (``geogrpo eval --suite``): ``summary.json`` with ``suite`` and ``metrics``
  (``samples.jsonl``, ``videos/<id>.mp4``, ``trajectories/<id>.json`` optional). Shown: one
  table (metrics x splits, mean with its 95 % interval) and the camera centres of a few
  trajectories in 3D.
- a paired comparison (``geogrpo eval --compare``): ``compare.json`` (``videos/`` optional).
  Shown: the paired differences B - A with intervals, and the side-by-side videos
  (condition | A | B | true target).

H.264 MP4 (what :func:`geogrpo.utils.video.write_video` writes) plays in Debian's Chromium
(checked by ``tests/test_report.py``), so videos are copied as they are.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from geogrpo.utils.io import atomic_path, atomic_write_text

# A page is for reading: a few trajectories and videos per folder, not every sample.
MAX_SUITE_SAMPLES = 4
MAX_COMPARE_VIDEOS = 6
SAMPLE_PANELS = (".source", ".truth", ".side_by_side")
# Folders that hold a run's by-products, never a result folder of their own.
_SKIP_DIRS = {"checkpoints", "tensorboard", "videos", "trajectories", "__pycache__"}
_WHAT_TO_PASS = (
    "pass a folder written by `geogrpo train`, `geogrpo eval --suite` or `geogrpo eval "
    "--compare` (or a folder above them)"
)


@dataclass
class RunData:
    """A GRPO run folder, as read from disk."""

    path: Path
    name: str  # the folder relative to the report's root
    rows: list[dict[str, Any]]  # metrics.jsonl
    summary: dict[str, Any] | None  # summary.json, None while the run has not finished
    config: dict[str, Any]  # config.yaml, parsed
    config_text: str
    videos: dict[int, Path]  # step -> videos/step_XXXXX.mp4


@dataclass
class SuiteData:
    """An eval-suite folder (``geogrpo eval --suite S --out D``)."""

    path: Path
    name: str
    summary: dict[str, Any]
    samples: dict[str, dict[str, Any]]  # id -> samples.jsonl row
    videos: dict[str, Path] = field(default_factory=dict)  # sample id -> clip
    trajectories: dict[str, Path] = field(default_factory=dict)  # sample id -> json


@dataclass
class CompareData:
    """A paired-comparison folder (``geogrpo eval --compare A B --out C``)."""

    path: Path
    name: str
    compare: dict[str, Any]
    videos: list[Path]


Result = RunData | SuiteData | CompareData


@dataclass
class Clip:
    """A video copied beside the page: its relative URL and the width to draw it at."""

    url: str
    width: int


# -- reading -----------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
            "re-run the command that wrote it, or move the folder out of the report's root"
        ) from err


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    # A running trainer appends one line at a time: an unterminated last line is a row being
    # written, not a corrupt file, so a report of a live run skips it.
    if lines and not text.endswith("\n"):
        lines = lines[:-1]
    rows = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path}: line {i} is not valid JSON ({err.msg}); re-run the command that wrote "
                "it, or move the folder out of the report's root"
            ) from err
        if not isinstance(row, dict):
            raise ValueError(f"{path}: line {i} is not a JSON object")
        rows.append(row)
    return rows


def _require(data: Any, keys: tuple[str, ...], path: Path, what: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object ({what}), got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(
            f"{path}: lacks {', '.join(repr(k) for k in missing)} ({what}); re-run the command "
            "that wrote it"
        )


def read_run(folder: str | Path, name: str = "") -> RunData:
    """Read a ``geogrpo train`` folder."""
    import yaml

    path = Path(folder)
    rows = _read_jsonl(path / "metrics.jsonl")
    for i, row in enumerate(rows, start=1):
        if "step" not in row:
            raise ValueError(f"{path / 'metrics.jsonl'}: row {i} has no 'step'")
    summary_path = path / "summary.json"
    summary = _read_json(summary_path) if summary_path.is_file() else None
    if summary is not None:
        _require(summary, ("steps",), summary_path, "a GRPO run summary")
    config_path = path / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{config_path}: not valid YAML ({err})") from err
    videos = {}
    for video in sorted((path / "videos").glob("step_*.mp4")):
        match = re.fullmatch(r"step_(\d+)\.mp4", video.name)
        if match:
            videos[int(match.group(1))] = video
    return RunData(path, name or path.name, rows, summary, config, config_text, videos)


def _sample_file_ids(folder: Path, suffix: str) -> dict[str, Path]:
    # Sample ids hold '/', which files cannot: the writer replaced each with '__'.
    return {p.name[: -len(suffix)].replace("__", "/"): p for p in sorted(folder.glob(f"*{suffix}"))}


def read_suite(folder: str | Path, name: str = "") -> SuiteData:
    """Read a ``geogrpo eval --suite`` folder."""
    path = Path(folder)
    summary_path = path / "summary.json"
    summary = _read_json(summary_path)
    _require(summary, ("suite", "metrics"), summary_path, "an eval suite summary")
    if not isinstance(summary["metrics"], dict):
        raise ValueError(f"{summary_path}: 'metrics' must map split -> metric -> statistics")
    samples = {}
    if (path / "samples.jsonl").is_file():
        for row in _read_jsonl(path / "samples.jsonl"):
            if "id" in row:
                samples[str(row["id"])] = row
    # per sample the suite writes <id>.mp4 (the clip), .source.mp4, .truth.mp4 and
    # .side_by_side.mp4 (source | clip | truth); the page shows the side-by-side one
    clips = {
        sid: p
        for sid, p in _sample_file_ids(path / "videos", ".mp4").items()
        if not sid.endswith(SAMPLE_PANELS)
    }
    panels = _sample_file_ids(path / "videos", ".side_by_side.mp4")
    return SuiteData(
        path,
        name or path.name,
        summary,
        samples,
        {sid: panels.get(sid, clip) for sid, clip in clips.items()},
        _sample_file_ids(path / "trajectories", ".json"),
    )


def read_compare(folder: str | Path, name: str = "") -> CompareData:
    """Read a ``geogrpo eval --compare`` folder."""
    path = Path(folder)
    compare_path = path / "compare.json"
    compare = _read_json(compare_path)
    _require(compare, ("a", "b", "metrics"), compare_path, "a paired comparison")
    return CompareData(path, name or path.name, compare, sorted((path / "videos").glob("*.mp4")))


def _is_suite_summary(path: Path) -> bool:
    # The reward-fidelity suite writes a summary.json of another shape ("table"); it is skipped.
    data = _read_json(path)
    return isinstance(data, dict) and "suite" in data and isinstance(data.get("metrics"), dict)


def find_results(root: str | Path) -> list[Result]:
    """Every run, suite and comparison folder under ``root`` (``root`` included): runs, then
    suites, then comparisons, each sorted by path. ``FileNotFoundError`` when ``root`` is not a
    folder, ``ValueError`` when it holds none of the three."""
    top = Path(root)
    if not top.is_dir():
        raise FileNotFoundError(f"{top}: no such folder; {_WHAT_TO_PASS}")
    found: list[Result] = []
    for here, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        folder = Path(here)
        rel = folder.relative_to(top).as_posix()
        name = top.resolve().name if rel == "." else rel
        if "metrics.jsonl" in files and ("config.yaml" in files or "summary.json" in files):
            found.append(read_run(folder, name))
        elif "compare.json" in files:
            found.append(read_compare(folder, name))
        elif "summary.json" in files and _is_suite_summary(folder / "summary.json"):
            found.append(read_suite(folder, name))
    if not found:
        raise ValueError(f"{top}: holds no results folder; {_WHAT_TO_PASS}")
    order = {RunData: 0, SuiteData: 1, CompareData: 2}
    return sorted(found, key=lambda r: order[type(r)])


# -- formatting --------------------------------------------------------------------------------


def _num(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return html.escape(str(x))
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def _interval(low: Any, high: Any, signed: bool = False) -> str:
    return f"[{_num(low, signed)}, {_num(high, signed)}]"


def _verdict(low: Any, high: Any, higher_is_better: bool | None) -> str:
    """'better', 'worse' or '' for an interval of a change (new - old); '' unless it excludes 0.
    Without a known direction, 'up'/'down'."""
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (low, high)):
        return ""
    rose = low > 0
    if not rose and not high < 0:
        return ""
    if higher_is_better is None:
        return "up" if rose else "down"
    return "better" if rose == higher_is_better else "worse"


def _arrow(higher_is_better: bool | None) -> str:
    if higher_is_better is None:
        return ""
    if higher_is_better:
        return ' <span class="dir" title="higher is better">↑</span>'
    return ' <span class="dir" title="lower is better">↓</span>'


def _truth_direction(metric: str) -> bool | None:
    from geogrpo.eval.truth import HIGHER_IS_BETTER

    return HIGHER_IS_BETTER.get(metric)


def _key_direction(key: str) -> bool | None:
    """Direction of a run-summary key ``<split>/<kind>/<name>``: rewards are maximised."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[-2] == "reward":
        return True
    if len(parts) >= 3 and parts[-2] == "truth":
        return _truth_direction(parts[-1])
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "root"


# -- plots -------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    _pyplot().close(fig)
    return path


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), int | float)]
    return [p[0] for p in pts], [p[1] for p in pts]


def _eval_sources(rows: list[dict[str, Any]]) -> list[str]:
    """Prefixes of evaluation series, e.g. ``eval/val/``, ``eval_sde/val/``."""
    prefixes = set()
    for r in rows:
        for k in r:
            parts = k.split("/")
            if parts[0].startswith("eval") and len(parts) >= 4:
                prefixes.add(f"{parts[0]}/{parts[1]}/")
    return sorted(prefixes)


def _names(rows: list[dict[str, Any]], kind: str) -> list[str]:
    """Reward or truth names, training and evaluation keys together, in order of appearance."""
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            parts = k.split("/")
            if len(parts) >= 2 and parts[-2] == kind:
                seen[parts[-1]] = None
    return list(seen)


def plot_run_curves(run: RunData, out: Path) -> Path | None:
    """One row per reward: the reward, every ground-truth metric on the same steps, and the
    reward's within-group Spearman correlation with each truth; training rollouts as lines,
    the fixed evaluation conditions as points. None when nothing has been logged yet."""
    rewards, truths = _names(run.rows, "reward"), _names(run.rows, "truth")
    if not rewards and not truths:
        return None
    spearman = [k for k in {k for r in run.rows for k in r} if k.startswith("spearman/")]
    sources = [("", "training rollouts (SDE)")] + [
        (p, f"fixed {p.split('/')[1]} conditions ({p.split('/')[0]})")
        for p in _eval_sources(run.rows)
    ]
    styles = {src: (f"C{i}", "-" if not src else "--") for i, (src, _) in enumerate(sources)}
    truth_panels = []
    for metric in truths:
        arrow = {True: " ↑", False: " ↓", None: ""}[_truth_direction(metric)]
        truth_panels.append((f"truth/{metric}", f"truth: {metric}{arrow}"))
    # Without a reward yet (a run that has only evaluated the base model), one row of truths.
    row_names: list[str | None] = list(rewards) or [None]
    cols = len(truth_panels) + (1 + (1 if spearman else 0) if rewards else 0)
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(row_names),
        cols,
        figsize=(3.1 * cols, 2.3 * len(row_names) + 0.6),
        squeeze=False,
        sharex=True,
    )
    for i, reward in enumerate(row_names):
        panels = ([(f"reward/{reward}", f"reward: {reward} ↑")] if reward else []) + truth_panels
        for ax, (key, title) in zip(axes[i], panels, strict=False):
            for src, label in sources:
                x, y = _series(run.rows, src + key)
                color, line = styles[src]
                if x:
                    ax.plot(x, y, line, color=color, marker="." if not src else "o", label=label)
            ax.set_title(title, fontsize=9)
            ax.tick_params(labelsize=7)
        if spearman and reward:
            ax = axes[i][-1]
            for j, metric in enumerate(truths):
                x, y = _series(run.rows, f"spearman/{reward}_vs_{metric}")
                if x:
                    ax.plot(x, y, ".-", color=f"C{len(sources) + j}", label=metric)
            ax.axhline(0, color="0.6", lw=0.8)
            ax.set_ylim(-1.05, 1.05)
            ax.set_title(f"Spearman({reward}, truth) in group", fontsize=9)
            ax.tick_params(labelsize=7)
            if len(ax.lines) > 1:
                ax.legend(fontsize=7, loc="lower left")
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=8)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels and lab not in truths:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return _save(fig, out)


def _diagnostic_groups(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Training-row scalars other than rewards, truths and Spearman, one panel per family."""
    groups: dict[str, list[str]] = {}
    train = [r for r in rows if "reward_mean" in r]
    for key in dict.fromkeys(k for r in train for k in r):
        head = key.split("/")[0]
        if key == "step" or head in ("reward", "truth", "spearman") or head.startswith("eval"):
            continue
        family = "ratio" if key.startswith("ratio_") else head
        groups.setdefault(family, []).append(key)
    return groups


def plot_run_diagnostics(run: RunData, out: Path) -> tuple[Path | None, dict[str, float]]:
    """Small panels of the optimisation and watchdog scalars of the training rows; scalars
    that never changed are returned instead of drawn."""
    train = [r for r in run.rows if "reward_mean" in r]
    panels, constants = {}, {}
    for family, keys in _diagnostic_groups(run.rows).items():
        varying = []
        for key in keys:
            values = {r[key] for r in train if isinstance(r.get(key), int | float)}
            if len(values) == 1:
                constants[key] = values.pop()
            elif values:
                varying.append(key)
        if varying:
            panels[family] = varying
    if not panels:
        return None, constants
    cols = min(4, len(panels))
    nrows = math.ceil(len(panels) / cols)
    plt = _pyplot()
    fig, axes = plt.subplots(
        nrows, cols, figsize=(3.1 * cols, 2.0 * nrows), squeeze=False, sharex=True
    )
    for ax, (family, keys) in zip(axes.flat, panels.items(), strict=False):
        for key in keys:
            x, y = _series(train, key)
            ax.plot(x, y, ".-", label=key.split("/", 1)[-1] if len(keys) > 1 else None)
        ax.set_title(family, fontsize=9)
        ax.tick_params(labelsize=7)
        if len(keys) > 1:
            ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=8)
    fig.tight_layout()
    return _save(fig, out), constants


def camera_centres(w2c: list[Any] | None, path: Path, name: str) -> np.ndarray:
    """Centres ``c = -R^T t`` ``[F, 3]`` of world-to-camera 4x4 matrices; a null frame (not
    registered) is a row of NaN; ``[0, 3]`` for a null list."""
    if w2c is None:
        return np.zeros((0, 3))
    if not isinstance(w2c, list):
        raise ValueError(f"{path}: '{name}' must be a list of 4x4 matrices or null")
    out = np.full((len(w2c), 3), np.nan)
    for f, m in enumerate(w2c):
        if m is None:
            continue
        try:
            mat = np.asarray(m, dtype=np.float64)
        except (TypeError, ValueError):
            mat = np.zeros(0)
        if mat.shape != (4, 4):
            raise ValueError(f"{path}: '{name}' frame {f} is not a 4x4 matrix")
        out[f] = -mat[:3, :3].T @ mat[:3, 3]
    return out


def plot_trajectory(path: Path, out: Path, title: str) -> Path:
    """3D plot of the camera centres of a ``trajectories/<id>.json`` file: requested,
    estimated and true. OpenCV world axes, drawn with -y up."""
    data = _read_json(path)
    _require(data, ("requested",), path, "a trajectories file")
    plt = _pyplot()
    fig = plt.figure(figsize=(3.6, 3.4))
    ax = fig.add_subplot(projection="3d")
    styles = {
        "requested": ("k", "-", "o"),
        "estimated": ("C1", "--", "^"),
        "true": ("C2", ":", "s"),
    }
    drawn = []
    for name, (color, line, marker) in styles.items():
        c = camera_centres(data.get(name), path, name)
        ok = np.isfinite(c).all(axis=1)
        if not ok.any():
            continue
        drawn.append(c[ok])
        # Plot order (x, z, -y): OpenCV's y points down. NaN rows (frames that did not register)
        # are gaps in the line, not a jump across them.
        ax.plot(c[:, 0], c[:, 2], -c[:, 1], line, color=color, marker=marker, ms=3, label=name)
        first = c[ok][0]
        ax.scatter([first[0]], [first[2]], [-first[1]], color=color, s=40, marker=marker)
    if drawn:
        pts = np.concatenate(drawn)[:, [0, 2, 1]] * np.array([1, 1, -1])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-3)
        ax.set_xlim(mid[0] - half, mid[0] + half)
        ax.set_ylim(mid[1] - half, mid[1] + half)
        ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_xlabel("x", fontsize=7)
    ax.set_ylabel("z (forward)", fontsize=7)
    ax.set_zlabel("-y (up)", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return _save(fig, out)


# -- HTML --------------------------------------------------------------------------------------

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th, td:first-child, td.text { text-align: left; }
th { background: #f2f2f2; }
tr.better td, td.better { background: #d8f0d8; }
tr.worse td, td.worse { background: #f6d5d5; }
.meta, .note, figcaption { color: #555; font-size: 0.85em; }
.dir { color: #777; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
img { max-width: 100%; } video { image-rendering: pixelated; }
nav a { margin-right: 1em; }
pre { background: #f7f7f7; padding: 0.5em; font-size: 0.8em; max-height: 25em; overflow: auto; }
"""


def _figure(src: str, caption: str, alt: str = "") -> str:
    return (
        f'<figure><img src="{src}" alt="{html.escape(alt or caption)}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _video(clip: Clip, caption: str) -> str:
    # The caption wraps at the clip's width, but not narrower than a readable line.
    return (
        f'<figure style="max-width: {max(clip.width, 360)}px"><video src="{clip.url}" '
        f'width="{clip.width}" controls autoplay muted loop playsinline></video>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _display_width(path: Path) -> int:
    """Tiny clips (96 px a panel) are drawn twice as large, up to 1200 px wide."""
    import av

    try:
        with av.open(str(path)) as container:
            width = container.streams.video[0].codec_context.width
    except (av.error.FFmpegError, IndexError) as err:
        raise ValueError(f"{path}: not a readable video ({err}); re-encode or remove it") from err
    return min(width * 2, 1200)


def render_run_section(
    run: RunData,
    curves: str | None,
    diagnostics: str | None,
    constants: dict[str, float],
    videos: dict[int, Clip],
    anchor: str,
) -> str:
    """HTML of one GRPO run; image arguments are relative URLs."""
    cfg = run.config
    model = cfg.get("model", {}) if isinstance(cfg.get("model"), dict) else {}
    last = max((r["step"] for r in run.rows), default=0)
    meta = [
        f"recipe <b>{html.escape(str(cfg.get('recipe', '?')))}</b>",
        f"policy <b>{html.escape(str(model.get('policy', '?')))}</b>",
        f"logged up to step {last} of {html.escape(str(cfg.get('steps', '?')))}",
    ]
    parts = [f'<h2 id="{anchor}">GRPO run: {html.escape(run.name)}</h2>']
    parts.append(f'<p class="meta">{" · ".join(meta)}</p>')
    changes = (run.summary or {}).get("changes") or {}
    if changes:
        base, trained = run.summary.get("base_step", 0), run.summary.get("trained_step", "?")
        parts.append(
            f"<h3>Base (step {base}) vs trained (step {trained}) on the fixed conditions</h3>"
            "<table><tr><th>metric</th><th>n</th><th>before</th><th>after</th><th>change</th>"
            "<th>95% CI</th><th>rose</th></tr>"
        )
        for key, c in changes.items():
            direction = _key_direction(key)
            verdict = _verdict(c.get("ci95_low"), c.get("ci95_high"), direction)
            parts.append(
                f'<tr class="{verdict}"><td>{html.escape(key)}{_arrow(direction)}</td>'
                f"<td>{c.get('n', '–')}</td><td>{_num(c.get('before'))}</td>"
                f"<td>{_num(c.get('after'))}</td><td>{_num(c.get('change'), True)}</td>"
                f"<td>{_interval(c.get('ci95_low'), c.get('ci95_high'), True)}</td>"
                f"<td>{c.get('rose', '–')}/{c.get('n', '–')}</td></tr>"
            )
        parts.append(
            "</table><p class=note>Green: the interval of the change excludes 0 in the better "
            "direction; red: in the worse direction. A rising reward alone proves nothing: "
            "read it beside the truth.</p>"
        )
    else:
        parts.append(
            "<p class=note>No base-vs-trained table: summary.json is not written yet (the run "
            "is in progress or stopped early) or has no evaluation after step 0.</p>"
        )
    if curves:
        parts.append(
            "<h3>Rewards beside the ground truth</h3>"
            + _figure(
                curves,
                "One row per reward: the reward, every ground-truth metric (what the world "
                "knows and no reward sees) on the same steps, and the within-group Spearman "
                "correlation of the reward with each truth (below 0: the reward ranks samples "
                "against the truth). Lines: training rollouts; points: fixed conditions.",
                "reward and truth curves",
            )
        )
    if diagnostics or constants:
        parts.append("<h3>Diagnostics</h3>")
    if diagnostics:
        parts.append(_figure(diagnostics, "Optimisation and watchdog scalars of training steps."))
    if constants:
        listed = ", ".join(f"{html.escape(k)} = {v:g}" for k, v in constants.items())
        parts.append(f"<p class=note>Constant over the run: {listed}.</p>")
    if videos:
        parts.append("<h3>Fixed conditions, side by side</h3>")
        for step, clip in videos.items():
            which = "base model" if step == 0 else "newest"
            parts.append(
                _video(
                    clip,
                    f"step {step} ({which}). Panels left to right: condition (source clip; "
                    "black for text-to-video) | the policy's output | the true target. One "
                    "row per condition.",
                )
            )
    if run.config_text:
        parts.append(
            "<details><summary>config.yaml</summary>"
            f"<pre>{html.escape(run.config_text)}</pre></details>"
        )
    return "\n".join(parts)


def render_suite_section(
    suite: SuiteData, samples: list[tuple[str, str | None, Clip | None]], anchor: str
) -> str:
    """HTML of one eval suite; ``samples`` holds (id, trajectory plot URL, clip)."""
    s = suite.summary
    better = s.get("higher_is_better") or {}
    descriptions = s.get("descriptions") or {}
    splits = list(s["metrics"])
    metrics = list(dict.fromkeys(m for split in splits for m in s["metrics"][split]))
    meta = [f"suite <b>{html.escape(str(s['suite']))}</b>"]
    for key in ("policy", "recipe"):
        if key in s:
            meta.append(f"{key} <b>{html.escape(str(s[key]))}</b>")
    meta.append(f"{len(suite.samples)} samples")
    parts = [f'<h2 id="{anchor}">Eval suite: {html.escape(suite.name)}</h2>']
    parts.append(f'<p class="meta">{" · ".join(meta)}</p>')
    settings = s.get("settings") or {}
    if settings:
        listed = ", ".join(
            f"{html.escape(str(k))}={html.escape(str(v))}" for k, v in settings.items()
        )
        parts.append(f"<p class=note>Settings: {listed}</p>")
    head = "".join(f"<th>{html.escape(split)}</th>" for split in splits)
    parts.append(f"<table><tr><th>metric</th><th>what</th>{head}</tr>")
    for metric in metrics:
        cells = []
        for split in splits:
            st = s["metrics"][split].get(metric)
            if not isinstance(st, dict) or _num(st.get("mean")) == "–":
                cells.append("<td>–</td>")
                continue
            cells.append(
                f'<td title="n = {st.get("n", "?")}">{_num(st.get("mean"))} '
                f"{_interval(st.get('ci95_low'), st.get('ci95_high'))}"
                f' <span class="meta">n={st.get("n", "?")}</span></td>'
            )
        parts.append(
            f"<tr><td>{html.escape(metric)}{_arrow(better.get(metric))}</td>"
            f'<td class="text">{html.escape(str(descriptions.get(metric, "")))}</td>'
            f"{''.join(cells)}</tr>"
        )
    parts.append(
        "</table><p class=note>Mean over samples [95% interval]; ↑ higher is better, ↓ lower "
        "is better.</p>"
    )
    if samples:
        parts.append("<h3>Samples</h3>")
    for sample_id, plot, video in samples:
        row = suite.samples.get(sample_id, {})
        values = ", ".join(
            f"{html.escape(k)} {_num(v)}"
            for k, v in row.items()
            if k not in ("id", "split") and isinstance(v, int | float)
        )
        caption = f"<b>{html.escape(sample_id)}</b>" + (f": {values}" if values else "")
        if video:
            parts.append(_video(video, caption + " (source | generated | true target)"))
        if plot:
            parts.append(
                _figure(
                    plot,
                    caption + ". Camera centres c = -Rᵀt: requested (black), estimated from "
                    "the clip (orange), true registration (green); large marker: first frame.",
                    f"camera centres of {sample_id}",
                )
            )
    return "\n".join(parts)


def render_compare_section(comp: CompareData, videos: list[tuple[str, Clip]], anchor: str) -> str:
    """HTML of one paired comparison; ``videos`` holds (sample id, clip)."""
    c = comp.compare
    a, b = html.escape(str(c["a"])), html.escape(str(c["b"]))
    better = c.get("higher_is_better") or {}
    parts = [f'<h2 id="{anchor}">Comparison: {html.escape(comp.name)}</h2>']
    meta = f"A = <b>{a}</b> · B = <b>{b}</b>"
    if "suite" in c:
        meta = f"suite <b>{html.escape(str(c['suite']))}</b> · " + meta
    parts.append(f'<p class="meta">{meta}</p>')
    for split, table in c["metrics"].items():
        parts.append(
            f"<h3>{html.escape(split)}</h3><table><tr><th>metric</th><th>n</th>"
            f"<th>mean A</th><th>mean B</th><th>diff B − A</th><th>95% CI</th><th>up</th>"
            f"<th>down</th><th>verdict</th></tr>"
        )
        for metric, st in table.items():
            direction = better.get(metric)
            verdict = _verdict(st.get("ci95_low"), st.get("ci95_high"), direction)
            words = {
                "better": "B better",
                "worse": "B worse",
                "up": "B higher",
                "down": "B lower",
                "": "no clear difference",
            }[verdict]
            parts.append(
                f'<tr class="{verdict}"><td>{html.escape(metric)}{_arrow(direction)}</td>'
                f"<td>{st.get('n', '–')}</td><td>{_num(st.get('mean_a'))}</td>"
                f"<td>{_num(st.get('mean_b'))}</td><td>{_num(st.get('diff'), True)}</td>"
                f"<td>{_interval(st.get('ci95_low'), st.get('ci95_high'), True)}</td>"
                f"<td>{st.get('up', '–')}</td><td>{st.get('down', '–')}</td>"
                f'<td class="text">{words}</td></tr>'
            )
        parts.append("</table>")
    parts.append(
        "<p class=note>Paired over the same conditions; green / red: the interval of B − A "
        "excludes 0 in the better / worse direction; up / down: conditions where B is above / "
        "below A.</p>"
    )
    if videos:
        parts.append("<h3>Side by side</h3>")
    for sample_id, clip in videos:
        parts.append(
            _video(
                clip,
                f"<b>{html.escape(sample_id)}</b>. Panels left to right: condition | A: {a} | "
                f"B: {b} | true target.",
            )
        )
    return "\n".join(parts)


def render_page(title: str, sections: list[tuple[str, str, str]]) -> str:
    """The page around ``sections`` = (anchor, heading for the contents, HTML)."""
    nav = "".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h, _ in sections)
    body = "\n".join(s for _, _, s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>\n{body}\n</body></html>\n"
    )


# -- the report --------------------------------------------------------------------------------


def build_report(root: str | Path, out: str | Path = "report.html") -> Path:
    """Write the report of every result folder under ``root`` to ``out`` (its images and
    videos in ``<out stem>_files/`` beside it); returns ``out``."""
    results = find_results(root)
    page = Path(out)
    assets = page.parent / f"{page.stem}_files"
    assets.mkdir(parents=True, exist_ok=True)

    def url(path: Path) -> str:
        return quote(f"{assets.name}/{path.name}")

    def copy(src: Path, name: str) -> Clip:
        width = _display_width(src)
        dst = assets / name
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        return Clip(url(dst), width)

    sections = []
    for i, result in enumerate(results):
        anchor = f"r{i}-{_slug(result.name)}"
        stem = f"{i:02d}_{_slug(result.name)}"
        if isinstance(result, RunData):
            curves = plot_run_curves(result, assets / f"{stem}_curves.png")
            diag, constants = plot_run_diagnostics(result, assets / f"{stem}_diagnostics.png")
            # The base model's clip and the newest one: the same conditions and noise.
            shown = sorted({min(result.videos), max(result.videos)}) if result.videos else []
            videos = {s: copy(result.videos[s], f"{stem}_step_{s:05d}.mp4") for s in shown}
            html_part = render_run_section(
                result,
                url(curves) if curves else None,
                url(diag) if diag else None,
                constants,
                videos,
                anchor,
            )
            heading = f"run {result.name}"
        elif isinstance(result, SuiteData):
            ids = list(dict.fromkeys([*result.trajectories, *result.videos]))
            ids = sorted(ids)[:MAX_SUITE_SAMPLES]
            samples = []
            for j, sid in enumerate(ids):
                plot = video = None
                if sid in result.trajectories:
                    png = assets / f"{stem}_traj_{j}_{_slug(sid)}.png"
                    plot = url(plot_trajectory(result.trajectories[sid], png, sid))
                if sid in result.videos:
                    video = copy(result.videos[sid], f"{stem}_clip_{j}_{_slug(sid)}.mp4")
                samples.append((sid, plot, video))
            html_part = render_suite_section(result, samples, anchor)
            heading = f"suite {result.name}"
        else:
            videos_cmp = [
                (
                    v.stem.replace("__", "/"),
                    copy(v, f"{stem}_cmp_{j}_{_slug(v.stem)}.mp4"),
                )
                for j, v in enumerate(result.videos[:MAX_COMPARE_VIDEOS])
            ]
            html_part = render_compare_section(result, videos_cmp, anchor)
            heading = f"compare {result.name}"
        sections.append((anchor, heading, html_part))
    title = f"geogrpo report: {Path(root).resolve().name}"
    text = render_page(title, sections)
    atomic_write_text(page, text)
    _remove_stale_assets(assets, text)
    return page


def _remove_stale_assets(assets: Path, page_html: str) -> None:
    """Delete what an earlier report wrote into ``assets`` and this page no longer links (only
    files named as the report names them, ``NN_...``: nothing a user put there)."""
    from urllib.parse import unquote

    linked = {unquote(m) for m in re.findall(re.escape(assets.name) + r'/([^"\'<>\s]+)', page_html)}
    for path in assets.iterdir():
        if path.is_file() and re.match(r"\d{2,}_", path.name) and path.name not in linked:
            path.unlink()
