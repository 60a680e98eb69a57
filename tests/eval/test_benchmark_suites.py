"""The benchmark suites end to end on one held-out scene: a user's trajectory file through
``--trajectories``, caching, determinism, a paired comparison and the report; bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from geogrpo.camera.io import save_target_paths
from geogrpo.camera.presets import preset_trajectory
from geogrpo.cli import main
from geogrpo.eval import suites
from geogrpo.eval.conditions import v2v_items
from geogrpo.eval.reconstruction import heldout_view_psnr
from geogrpo.eval.suites import SuiteSettings, check_suite_policy, run_suite
from geogrpo.train.config import load_config

SCENE = ["--n", "1", "--split", "val", "--num-inference-steps", "3", "--videos", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def user_paths(tmp_path_factory):
    """One user path: the preset pan_left written as a plain list of matrices."""
    path = tmp_path_factory.mktemp("paths") / "paths.json"
    save_target_paths({"mine": preset_trajectory("pan_left", 17)}, path)
    return path


@pytest.fixture(scope="module")
def camera_eval(data_dir, user_paths, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "base"
    args = ["eval", "--suite", "camera_v2v", "--trajectories", str(user_paths), *SCENE]
    args += ["--paths", "pan_left", "mine", "--set", f"data.data_dir={data_dir}"]
    assert main([*args, "--out", str(out)]) == 0
    return out


def test_a_user_path_renders_the_truth_the_preset_does(data_dir, user_paths):
    from geogrpo.camera.io import load_target_paths

    config = load_config("geo_align", overrides=[f"data.data_dir={data_dir}"])
    user = load_target_paths(user_paths, 17)
    items = dict(v2v_items("camera_v2v", "val", 1, config.data, user, ("pan_left", "mine")))
    assert set(items) == {"val/0000/pan_left", "val/0000/mine"}
    preset, mine = items["val/0000/pan_left"], items["val/0000/mine"]
    assert torch.equal(preset["target_video"], mine["target_video"])
    assert torch.equal(preset["source_video"], mine["source_video"])


def test_camera_v2v_writes_every_metric_per_sample_and_a_summary(camera_eval):
    rows = [json.loads(x) for x in (camera_eval / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["val/0000/pan_left", "val/0000/mine"]
    for row in rows:
        assert 10 < row["psnr"] < 40 and 0 < row["ssim"] < 1
        assert row["psnr_nocc"] is not None and 0 <= row["confirmed_share"] <= 1
        assert 0 < row["flicker"] <= 1 and 0 < row["quality"] < 1
    summary = json.loads((camera_eval / "summary.json").read_text())
    psnr = summary["metrics"]["val"]["psnr"]
    assert psnr["n"] == 2 and psnr["mean"] == pytest.approx((rows[0]["psnr"] + rows[1]["psnr"]) / 2)
    assert summary["higher_is_better"]["perceptual_distance"] is False
    cams = json.loads((camera_eval / "trajectories" / "val__0000__pan_left.json").read_text())
    assert len(cams["requested"]) == 17 and len(cams["true"]) == 17
    assert (camera_eval / "videos" / "val__0000__pan_left.truth.mp4").is_file()


def _camera_settings(user_paths, **overrides) -> SuiteSettings:
    """The camera_eval fixture's settings through the Python API (``overrides`` on top)."""
    settings = {
        "splits": ("val",),
        "scenes": 1,
        "trajectories": str(user_paths),
        "paths": ("pan_left", "mine"),
        "num_inference_steps": 3,
        "videos": 1,
        "progress": False,
    }
    return SuiteSettings("camera_v2v", **{**settings, **overrides})


def test_a_finished_evaluation_is_read_back_not_sampled_again(
    data_dir, user_paths, camera_eval, monkeypatch
):
    config = load_config("geo_align", overrides=[f"data.data_dir={data_dir}"])
    before = (camera_eval / "samples.jsonl").read_text()
    calls = []
    original = suites._sample
    monkeypatch.setattr(suites, "_sample", lambda *a, **k: calls.append(1) or original(*a, **k))
    run_suite(config, _camera_settings(user_paths), camera_eval)
    assert calls == [] and (camera_eval / "samples.jsonl").read_text() == before


def test_noise_is_fixed_per_condition_not_per_batch(data_dir, user_paths, camera_eval, tmp_path):
    config = load_config("geo_align", overrides=[f"data.data_dir={data_dir}"])
    settings = _camera_settings(user_paths, paths=("mine",), videos=0, batch=1)
    run_suite(config, settings, tmp_path)
    again = json.loads((tmp_path / "samples.jsonl").read_text().splitlines()[0])
    first = [json.loads(x) for x in (camera_eval / "samples.jsonl").read_text().splitlines()]
    assert again["psnr"] == pytest.approx(first[1]["psnr"], abs=1e-3)


def test_compare_and_report_read_the_evaluation(camera_eval, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["eval", "--compare", str(camera_eval), str(camera_eval), "--out", str(out)]) == 0
    result = json.loads((out / "compare.json").read_text())
    psnr = result["metrics"]["all"]["psnr"]
    assert psnr["n"] == 2 and psnr["diff"] == 0 and psnr["up"] == psnr["down"] == 0
    assert (out / "videos" / "val__0000__pan_left.mp4").is_file()  # source | A | B | truth
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path.parent), "--out", str(report)]) == 0
    html = report.read_text()
    assert "camera_v2v" in html and f"{psnr['mean_a']:.2f}"[:4] in html


def test_the_truth_scores_the_ceiling_of_every_image_metric(data_dir, tmp_path):
    config = load_config("devis_grpo", overrides=[f"data.data_dir={data_dir}"])
    settings = SuiteSettings(
        "extreme_view",
        policy="truth",
        splits=("val",),
        scenes=1,
        paths=("orbit_+90deg",),
        videos=0,
        progress=False,
    )
    row = run_suite(config, settings, tmp_path)["metrics"]["val"]
    assert row["psnr"]["mean"] == pytest.approx(120.0) and row["ssim"]["mean"] == pytest.approx(1)
    assert row["psnr_nocc"]["mean"] == pytest.approx(120.0)
    assert row["perceptual_distance"]["mean"] == pytest.approx(0, abs=1e-6)


def test_a_policy_on_a_suite_it_cannot_condition_is_a_clear_error():
    with pytest.raises(ValueError, match="world_consistency or t2v_camera instead"):
        check_suite_policy("camera_v2v", "t2v", "tiny-t2v")
    with pytest.raises(ValueError, match="camera_v2v or extreme_view"):
        check_suite_policy("t2v_camera", "camera_v2v", "tiny-camera-v2v")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"suite": "depth"}, "unknown suite"),
        ({"suite": "camera_v2v", "splits": ("train",)}, "not a held-out split"),
        ({"suite": "camera_v2v", "splits": ()}, "at least one held-out split"),
        ({"suite": "camera_v2v", "scenes": 0}, "at least one scene"),
        ({"suite": "t2v_camera", "trajectories": "p.json"}, "--suite camera_v2v"),
        ({"suite": "t2v_camera", "paths": ("pan_left",)}, "only the v2v suites"),
    ],
)
def test_settings_reject_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SuiteSettings(**kwargs)


def test_bad_trajectory_files_fail_before_any_sampling(data_dir, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    eye = torch.eye(4).expand(17, 4, 4).tolist()
    nan = [row[:] for row in eye]
    nan[3] = [[math.nan] * 4] * 4
    cases = {
        "NaN": {"x": nan},
        "9 frames": {"x": eye[:9]},
        "rotation": {"x": [[[2.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]] * 17},
    }
    for fragment, content in cases.items():
        bad.write_text(json.dumps(content))
        args = ["eval", "--suite", "camera_v2v", "--trajectories", str(bad), *SCENE]
        args += ["--set", f"data.data_dir={data_dir}", "--out", str(tmp_path / "o")]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "bad.json" in err, (fragment, err)
    assert not (tmp_path / "o" / "samples.jsonl").exists()
    args = ["eval", "--suite", "camera_v2v", *SCENE, "--paths", "spiral"]
    args += ["--set", f"data.data_dir={data_dir}", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "not paths of camera_v2v" in capsys.readouterr().err


def test_compare_and_report_name_missing_files(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    args = ["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b")]
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    assert "summary.json is missing" in capsys.readouterr().err


def test_t2v_suites_on_one_caption(data_dir, tmp_path):
    for suite, metric in (("world_consistency", "sampson_true"), ("t2v_camera", "recon_psnr")):
        config = load_config(
            "vggrpo" if suite == "world_consistency" else "world_r1",
            overrides=[f"data.data_dir={data_dir}"],
        )
        settings = SuiteSettings(
            suite, splits=("val",), scenes=1, num_inference_steps=3, videos=0, progress=False
        )
        summary = run_suite(config, settings, tmp_path / suite)
        assert summary["conditions"] == {"val": 1}
        value = summary["metrics"]["val"][metric]["mean"]
        assert math.isfinite(value), (suite, summary["metrics"]["val"])


def test_heldout_views_of_the_true_clip_reconstruct_and_a_scrambled_clip_does_not():
    from geogrpo.world.paths import make_path
    from geogrpo.world.render import render
    from geogrpo.world.scene import generate_scene

    clip = render(generate_scene(3, "procedural"), make_path("arc_left", 9), 48, 48)
    k = clip.intrinsics
    recon, truth = heldout_view_psnr(clip.rgb, clip.depth, clip.w2c, k, truth=clip.rgb)
    assert recon == pytest.approx(truth) and recon > 18
    scrambled = clip.rgb[torch.tensor([0, 7, 2, 5, 4, 3, 6, 1, 8])]  # odd frames swapped
    bad, bad_truth = heldout_view_psnr(scrambled, clip.depth, clip.w2c, k, truth=clip.rgb)
    assert bad < recon - 2 and bad_truth == pytest.approx(truth, abs=1.0)
    assert all(math.isnan(x) for x in heldout_view_psnr(clip.rgb, 0 * clip.depth, clip.w2c, k))
