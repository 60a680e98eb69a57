"""`geogrpo report`: the page built from fake run, suite and comparison folders shows their
numbers and plots, every relative link resolves, bad input fails with a clear message, and the
page plays in Debian's Chromium (headless, from file://) without console errors."""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch

from geogrpo.cli import main
from geogrpo.eval.report import build_report, camera_centres, find_results
from geogrpo.utils.video import write_video

SAMPLE = "val/0003/pan_left"
SAMPLE_FILE = "val__0003__pan_left"


def _clip(frames: int = 17, height: int = 32, width: int = 96) -> torch.Tensor:
    """A moving colour gradient: something a blank screenshot cannot contain."""
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)
    out = [torch.stack([(x + f / frames) % 1, y, 1 - (x + y) / 2], dim=-1) for f in range(frames)]
    return torch.stack(out)


def make_run(folder: Path) -> None:
    folder.mkdir(parents=True)
    rows = []
    for step in range(5):
        if step:
            rows.append(
                {
                    "step": step,
                    "reward_mean": 0.5 + 0.05 * step,
                    "reward/trajectory": 0.30 + 0.02 * step,
                    "reward/view_fidelity": 0.45 + 0.01 * step,
                    "truth/psnr": 21.0 + 0.1 * step,
                    "truth/ssim": 0.44 + 0.01 * step,
                    "spearman/trajectory_vs_psnr": 0.1 * step,
                    "spearman/view_fidelity_vs_psnr": 0.9,
                    "loss": 0.01 * (-1) ** step,
                    "kl": 0.001 * step,
                    "lr": 0.001,
                    "time/rollout": 8.0 + step,
                    "time/reward": 20.0,
                }
            )
        if step in (0, 4):
            rows.append(
                {
                    "step": step,
                    "eval/val/reward/trajectory": 0.35 + 0.01 * step,
                    "eval/val/reward/view_fidelity": 0.48,
                    "eval/val/truth/psnr": 23.08 + 0.01 * step,
                    "eval/val/truth/ssim": 0.515,
                }
            )
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / "metrics.jsonl").write_text(text, encoding="utf-8")
    summary = {
        "steps": 4,
        "base_step": 0,
        "trained_step": 4,
        "changes": {
            "val/reward/trajectory": {
                "n": 12,
                "before": 0.3512,
                "after": 0.3931,
                "change": 0.0419,
                "ci95_low": 0.0123,
                "ci95_high": 0.0715,
                "rose": 10,
            },
            "val/truth/psnr": {
                "n": 12,
                "before": 23.0836,
                "after": 23.0892,
                "change": 0.0055,
                "ci95_low": -0.0718,
                "ci95_high": 0.0829,
                "rose": 8,
            },
        },
    }
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (folder / "config.yaml").write_text(
        'recipe: "geo_align"\nsteps: 4\nmodel:\n  policy: "tiny-camera-v2v"\n', encoding="utf-8"
    )
    write_video(folder / "videos" / "step_00000.mp4", _clip())
    write_video(folder / "videos" / "step_00004.mp4", _clip().flip(1))


def _w2c_looking_at_origin(angle: float, radius: float = 2.0) -> list[list[float]]:
    centre = np.array([radius * math.sin(angle), 0.0, -radius * math.cos(angle)])
    forward = -centre / np.linalg.norm(centre)
    right = np.cross([0.0, -1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    w2c = np.eye(4)
    w2c[:3, :3] = rot
    w2c[:3, 3] = -rot @ centre
    return w2c.tolist()


def make_suite(folder: Path) -> None:
    folder.mkdir(parents=True)
    summary = {
        "suite": "camera_v2v",
        "policy": "tiny-camera-v2v",
        "recipe": "geo_align",
        "settings": {"n": 12, "seed": 0},
        "higher_is_better": {"psnr": True, "rot_err_deg": False},
        "descriptions": {
            "psnr": "PSNR (dB) against the true target",
            "rot_err_deg": "rotation error (degrees) of the registered frames",
        },
        "metrics": {
            "val": {
                "psnr": {"mean": 23.4567, "ci95_low": 23.1, "ci95_high": 23.8, "n": 12},
                "rot_err_deg": {"mean": 4.25, "ci95_low": 3.5, "ci95_high": 5.0, "n": 11},
            },
            "heldout_shapes": {
                "psnr": {"mean": 19.8765, "ci95_low": 19.2, "ci95_high": 20.4, "n": 12},
                "rot_err_deg": {"mean": None, "ci95_low": None, "ci95_high": None, "n": 0},
            },
        },
    }
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    samples = [
        {"id": SAMPLE, "split": "val", "psnr": 22.5, "rot_err_deg": 3.25},
        {"id": "heldout_shapes/0001/arc_left", "split": "heldout_shapes", "psnr": 19.0},
    ]
    (folder / "samples.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in samples), encoding="utf-8"
    )
    write_video(folder / "videos" / f"{SAMPLE_FILE}.mp4", _clip(width=32))
    angles = [0.1 * f for f in range(5)]
    trajectories = {
        "requested": [_w2c_looking_at_origin(a) for a in angles],
        "estimated": None,
        "true": [
            _w2c_looking_at_origin(a + 0.02) if f != 2 else None for f, a in enumerate(angles)
        ],
    }
    (folder / "trajectories").mkdir()
    (folder / "trajectories" / f"{SAMPLE_FILE}.json").write_text(
        json.dumps(trajectories), encoding="utf-8"
    )


def make_compare(folder: Path) -> None:
    folder.mkdir(parents=True)
    compare = {
        "suite": "camera_v2v",
        "a": "tiny-camera-v2v",
        "b": "runs/ga",
        "higher_is_better": {"psnr": True, "ssim": True, "rot_err_deg": False},
        "metrics": {
            "val": {
                "psnr": {
                    "n": 12,
                    "mean_a": 21.9,
                    "mean_b": 22.37,
                    "diff": 0.4712,
                    "ci95_low": 0.2103,
                    "ci95_high": 0.7321,
                    "up": 11,
                    "down": 1,
                },
                "ssim": {
                    "n": 12,
                    "mean_a": 0.463,
                    "mean_b": 0.465,
                    "diff": 0.002,
                    "ci95_low": -0.004,
                    "ci95_high": 0.008,
                    "up": 7,
                    "down": 5,
                },
                "rot_err_deg": {
                    "n": 11,
                    "mean_a": 4.0,
                    "mean_b": 5.5,
                    "diff": 1.5,
                    "ci95_low": 0.25,
                    "ci95_high": 2.75,
                    "up": 9,
                    "down": 2,
                },
            }
        },
    }
    (folder / "compare.json").write_text(json.dumps(compare), encoding="utf-8")
    write_video(folder / "videos" / f"{SAMPLE_FILE}.mp4", _clip(width=128))


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    make_run(root / "runs" / "ga")
    make_suite(root / "eval" / "suite_val")
    make_compare(root / "eval" / "base_vs_ga")
    # Folders of other kinds that the report passes over: a pretraining log and a
    # reward-fidelity summary.
    (root / "pretrain" / "logs").mkdir(parents=True)
    (root / "pretrain" / "logs" / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    (root / "rf").mkdir()
    (root / "rf" / "summary.json").write_text('{"suite": "reward-fidelity", "table": []}')
    return root


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("page") / "report.html"
    page = build_report(results, out)
    return page, page.read_text(encoding="utf-8")


def test_finds_the_three_kinds_and_nothing_else(results):
    names = [(type(r).__name__, r.name) for r in find_results(results)]
    assert names == [
        ("RunData", "runs/ga"),
        ("SuiteData", "eval/suite_val"),
        ("CompareData", "eval/base_vs_ga"),
    ]


def test_run_table_and_curves(report):
    page, text = report
    assert "GRPO run: runs/ga" in text
    assert "Base (step 0) vs trained (step 4)" in text
    # before, after, change, interval, rose
    for number in ("23.0836", "23.0892", "+0.0055", "[-0.0718, +0.0829]", "8/12"):
        assert number in text
    # the reward's interval excludes 0 upwards: highlighted as better; the truth's does not
    assert re.search(r'<tr class="better"><td>val/reward/trajectory', text)
    assert re.search(r'<tr class=""><td>val/truth/psnr', text)
    assert "tiny-camera-v2v" in text and "geo_align" in text
    assert "Constant over the run: lr = 0.001" in text
    files = page.parent / "report_files"
    assert (files / "00_runs_ga_curves.png").stat().st_size > 5000
    assert (files / "00_runs_ga_diagnostics.png").stat().st_size > 5000
    # the base model's clip and the newest, captioned
    assert "00_runs_ga_step_00000.mp4" in text and "00_runs_ga_step_00004.mp4" in text
    assert "condition (source clip" in text and "the true target" in text


def test_curves_have_one_row_per_reward(report):
    from PIL import Image

    page, _ = report
    with Image.open(page.parent / "report_files" / "00_runs_ga_curves.png") as im:
        width, height = im.size
    # 2 rewards x (reward + psnr + ssim + Spearman) panels of 3.1 x 2.3 inches (+ legend) at 80 dpi
    assert width == round(4 * 3.1 * 80)
    assert height == round((2 * 2.3 + 0.6) * 80)


def test_suite_table_and_trajectory(report):
    page, text = report
    assert "Eval suite: eval/suite_val" in text
    assert "23.4567 [23.1000, 23.8000]" in text
    assert "19.8765 [19.2000, 20.4000]" in text
    assert "– [" not in text  # a metric without samples in a split is one dash
    assert "PSNR (dB) against the true target" in text
    assert 'rot_err_deg <span class="dir" title="lower is better">↓</span>' in text
    assert "2 samples" in text
    assert f"<b>{SAMPLE}</b>: psnr 22.5000, rot_err_deg 3.2500" in text
    files = page.parent / "report_files"
    assert len(list(files.glob("01_eval_suite_val_traj_*.png"))) == 1
    assert len(list(files.glob("01_eval_suite_val_clip_*.mp4"))) == 1


def test_compare_table_highlights_direction(report):
    _, text = report
    assert "Comparison: eval/base_vs_ga" in text
    assert "[+0.2103, +0.7321]" in text and "+0.4712" in text
    assert re.search(r'<tr class="better"><td>psnr.*?<td>11</td><td>1</td>', text)
    assert re.search(r'<tr class="worse"><td>rot_err_deg.*?B worse', text)
    assert re.search(r'<tr class=""><td>ssim.*?no clear difference', text)
    assert "Panels left to right: condition | A: tiny-camera-v2v | B: runs/ga | true target" in text


def test_every_link_is_relative_and_resolves(report):
    page, text = report
    links = re.findall(r'(?:src|href)="([^"]+)"', text)
    local = [link for link in links if not link.startswith(("#", "data:"))]
    assert len(local) == 7  # run: 2 plots, 2 clips; suite: a trajectory and a clip; compare: a clip
    for link in local:
        assert "://" not in link and not link.startswith("/")
        assert (page.parent / unquote(link)).is_file(), link
    for link in links:
        if link.startswith("#"):
            assert f'id="{link[1:]}"' in text


def test_camera_centres_closed_form():
    w2c = np.eye(4)
    w2c[:3, 3] = [1.0, 2.0, 3.0]
    assert np.allclose(camera_centres([w2c.tolist()], Path("t.json"), "requested"), [-1, -2, -3])
    angle = 0.3
    c = camera_centres([_w2c_looking_at_origin(angle), None], Path("t.json"), "true")
    assert np.allclose(c[0], [2 * math.sin(angle), 0, -2 * math.cos(angle)])
    assert np.isnan(c[1]).all()
    with pytest.raises(ValueError, match=r"t.json: 'true' frame 0 is not a 4x4 matrix"):
        camera_centres([[[1, 0, 0]]], Path("t.json"), "true")


def test_a_run_in_progress(tmp_path):
    run = tmp_path / "live"
    run.mkdir()
    (run / "config.yaml").write_text("recipe: geo_align\nsteps: 100\n")
    # the base evaluation logged, a training row half written
    (run / "metrics.jsonl").write_text(
        '{"step": 0, "eval/val/truth/psnr": 21.5}\n{"step": 1, "reward_me'
    )
    page = build_report(tmp_path, tmp_path / "out" / "r.html")
    text = page.read_text(encoding="utf-8")
    assert "summary.json is not written yet" in text
    assert "logged up to step 0 of 100" in text
    assert (tmp_path / "out" / "r_files" / "00_live_curves.png").is_file()


# -- bad input --------------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope: no such folder; pass a folder written"):
        build_report(tmp_path / "nope", tmp_path / "r.html")


def test_nothing_recognisable(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"holds no results folder; pass a folder written by"):
        build_report(tmp_path, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_corrupt_json_names_the_file(tmp_path):
    make_suite(tmp_path / "s")
    (tmp_path / "s" / "summary.json").write_text('{"suite": "camera_v2v", "metrics": {')
    with pytest.raises(ValueError, match=r"s/summary.json: not valid JSON \(line 1"):
        build_report(tmp_path, tmp_path / "r.html")


def test_corrupt_metrics_line_names_the_line(tmp_path):
    make_run(tmp_path / "run")
    path = tmp_path / "run" / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "{not json\n" + "".join(lines[1:]))
    with pytest.raises(ValueError, match=r"run/metrics.jsonl: line 2 is not valid JSON"):
        build_report(tmp_path, tmp_path / "r.html")


def test_compare_without_its_keys(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "compare.json").write_text('{"a": "x", "metrics": {}}')
    with pytest.raises(ValueError, match=r"c/compare.json: lacks 'b' \(a paired comparison\)"):
        build_report(tmp_path, tmp_path / "r.html")


def test_unreadable_video_names_the_file(tmp_path):
    make_run(tmp_path / "run")
    (tmp_path / "run" / "videos" / "step_00004.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"run/videos/step_00004.mp4: not a readable video"):
        build_report(tmp_path, tmp_path / "r.html")


def test_cli(results, tmp_path, capsys):
    out = tmp_path / "page" / "index.html"
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (tmp_path / "page" / "index_files").is_dir()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "error: " in capsys.readouterr().err


def test_a_rebuilt_report_drops_what_it_no_longer_shows(results, tmp_path):
    out = tmp_path / "report.html"
    build_report(results, out)
    assets = tmp_path / "report_files"
    mine = assets / "notes.txt"  # a file the report did not write stays
    mine.write_text("keep")
    build_report(results / "runs", out)  # the run alone: the suite's and comparison's go
    left = sorted(p.name for p in assets.iterdir())
    html = out.read_text(encoding="utf-8")
    assert "notes.txt" in left and all(name in html for name in left if name != "notes.txt")
    assert not any("traj" in name or "cmp" in name for name in left)


# -- the page in a browser ---------------------------------------------------------------------


def _not_blank(png: Path) -> float:
    """Share of pixels that differ from the most common colour (0 for a blank image)."""
    from PIL import Image

    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(pixels, axis=0, return_counts=True)
    return 1 - counts.max() / len(pixels)


def test_report_plays_in_chromium(report, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip(
            "Chromium is not installed: `apt-get install -y chromium` as root (`make test` "
            "installs it when apt-get is usable)"
        )
    from playwright.sync_api import sync_playwright

    page_path, _ = report
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
            page.goto(page_path.as_uri(), wait_until="load")
            broken = page.evaluate(
                "[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
                ".map(i => i.src)"
            )
            assert broken == []
            assert page.evaluate("document.images.length") == 3
            assert page.evaluate("document.querySelectorAll('video').length") == 4
            page.wait_for_function(
                "[...document.querySelectorAll('video')].every("
                "v => v.readyState >= 2 && v.error === null)",
                timeout=20000,
            )
            # Chromium pauses muted autoplaying videos outside the viewport: look at one.
            video = page.locator("video").first
            video.scroll_into_view_if_needed()
            video.evaluate("v => new Promise(r => v.paused ? v.addEventListener('play', r) : r())")
            times = []
            for _ in range(8):
                times.append(video.evaluate("v => v.currentTime"))
                page.wait_for_timeout(120)
            # looping clips wrap around, so the clock must move, not only rise
            assert len(set(times)) > 3, times
            assert any(b > a for a, b in itertools.pairwise(times)), times
            for table in page.locator("table").all():
                assert table.is_visible()
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            curves = tmp_path / "curves.png"
            page.locator("img").first.screenshot(path=str(curves))
            table = tmp_path / "table.png"
            page.locator("table").first.screenshot(path=str(table))
        finally:
            browser.close()
    assert problems == []
    assert _not_blank(shot) > 0.05
    assert _not_blank(curves) > 0.02
    assert _not_blank(table) > 0.02
