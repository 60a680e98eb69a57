"""User target paths for video-to-video evaluation: the file format, pairs along a given relative
path (the data set's own items reproduced), and ``geogrpo world render --trajectory FILE``."""

import json
import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from geogrpo.camera.io import (
    Trajectory,
    load_target_paths,
    load_trajectory,
    save_target_paths,
    save_trajectory,
)
from geogrpo.camera.presets import PRESETS, preset_trajectory
from geogrpo.cli import main
from geogrpo.utils.video import read_video
from geogrpo.world.datasets import MultiViewPairs, SpeedRescaledPairs
from geogrpo.world.paths import make_path

EYE = [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
LIFT = [[1.0, 0, 0, 0], [0, 1.0, 0, 0.5], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]


def _write(tmp_path: Path, data: object, name: str = "paths.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the file format


def test_round_trip_is_exact_and_keeps_the_order(tmp_path):
    paths = {
        "my-arc.v1": preset_trajectory("arc_left", 5),
        "tilt_and_lift": preset_trajectory("tilt_up", 5)
        @ torch.tensor([EYE, EYE, LIFT, LIFT, LIFT], dtype=torch.float64),
    }
    file = save_target_paths(paths, tmp_path / "paths.json")
    loaded = load_target_paths(file, num_frames=5)
    assert list(loaded) == list(paths)
    for name, w2c in paths.items():
        assert loaded[name].dtype == torch.float64
        assert torch.equal(loaded[name], w2c)  # repr floats read back bit for bit


def test_a_plain_list_and_our_trajectory_object_give_the_same_path(tmp_path):
    w2c = preset_trajectory("translate_up", 4)
    save_trajectory(Trajectory(w2c, unit="m"), tmp_path / "one.json")
    ours = json.loads((tmp_path / "one.json").read_text())
    file = _write(tmp_path, {"plain": w2c.tolist(), "object": ours})
    loaded = load_target_paths(file)
    assert torch.equal(loaded["plain"], loaded["object"])
    assert torch.equal(loaded["plain"], w2c)


def test_the_documented_example_loads_and_moves_as_it_says(tmp_path):
    doc = (Path(__file__).resolve().parents[1] / "docs" / "CAMERAS.md").read_text()
    section = doc[doc.index("## Your own target paths") :]
    example = re.search(r"```json\n(.*?)```", section, flags=re.S).group(1)
    paths = load_target_paths(_write(tmp_path, example), num_frames=2)
    centres = {name: torch.linalg.inv(w2c[-1])[:3, 3] for name, w2c in paths.items()}
    torch.testing.assert_close(centres["lift"], torch.tensor([0.0, -0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(
        centres["push_in"], torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)
    )


SCALED = [[1.5, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
REFLECTION = [[-1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
BAD_ROW = [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0.5, 1.0]]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("{not json", ["is not valid JSON"]),
        ("[1, 2]", ["expected a JSON object", "list"]),
        ("{}", ["names no path"]),
        ('{"x": [], "x": []}', ["'x' appears twice"]),
        (
            json.dumps({"x": [[[1, 0, 0], [0, 1, 0], [0, 0, 1]]] * 2}),
            ["path 'x'", "frame 0", "4x4"],
        ),
        (json.dumps({"x": [EYE, EYE[:3]]}), ["path 'x'", "frame 1", "shape [3, 4]"]),
        (json.dumps({"x": [EYE, [["a"] * 4] * 4]}), ["path 'x'", "frame 1", "numbers"]),
        (json.dumps({"x": 3}), ["path 'x'", "list of 4x4 matrices"]),
        (json.dumps({"x": [EYE, LIFT, [[math.nan] * 4] * 4]}), ["path 'x'", "frame 2", "NaN"]),
        (json.dumps({"x": [EYE, [[math.inf] * 4] * 4]}), ["path 'x'", "frame 1", "finite"]),
        (json.dumps({"x": [EYE, EYE, SCALED]}), ["path 'x'", "frame 2", "orthonormal"]),
        (json.dumps({"x": [EYE, REFLECTION]}), ["path 'x'", "frame 1", "determinant +1"]),
        (json.dumps({"x": [EYE, BAD_ROW]}), ["path 'x'", "frame 1", "[0, 0, 0, 1]"]),
        (json.dumps({"x": [EYE]}), ["path 'x'", "at least 2 frames, got 1"]),
        (json.dumps({"a b": [EYE, EYE]}), ["'a b'", "file name"]),
        (json.dumps({"../up": [EYE, EYE]}), ["'../up'", "file name"]),
        (json.dumps({"..": [EYE, EYE]}), ["'..'", "file name"]),
        (json.dumps({"ok": [EYE, EYE], "pan_left": [EYE, EYE]}), ["'pan_left'", "preset"]),
        (
            json.dumps({"x": {"convention": "opengl_c2w", "format_version": 1, "w2c": [EYE] * 2}}),
            ["path 'x'", "'convention'", "plain list"],
        ),
        (
            json.dumps({"convention": "opencv_w2c", "format_version": 1, "w2c": [EYE] * 2}),
            ["holds one trajectory", '{"my_path"'],
        ),
    ],
)
def test_bad_files_are_refused_naming_file_path_and_frame(tmp_path, text, fragments):
    file = _write(tmp_path, text, "user_paths.json")
    with pytest.raises(ValueError) as err:
        load_target_paths(file)
    message = str(err.value)
    assert "user_paths.json" in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_the_frame_count_must_be_the_policys(tmp_path):
    file = save_target_paths({"x": preset_trajectory("pan_left", 9)}, tmp_path / "p.json")
    assert load_target_paths(file, num_frames=9)["x"].shape == (9, 4, 4)
    with pytest.raises(ValueError, match="the policy makes 17 frames; path 'x' has 9"):
        load_target_paths(file, num_frames=17)


def test_a_missing_file_and_bad_paths_to_save_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_target_paths(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="preset"):
        save_target_paths({"arc_left": preset_trajectory("arc_left", 3)}, tmp_path / "p.json")
    scaled = preset_trajectory("arc_left", 3) * 2
    with pytest.raises(ValueError, match="path 'big': frame 0"):
        save_target_paths({"big": scaled}, tmp_path / "p.json")
    with pytest.raises(ValueError, match="non-empty"):
        save_target_paths({}, tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()


# --------------------------------------------------------------------------- pairs along a path


def test_existing_pair_items_are_unchanged():
    """Numbers of items drawn before ``pair_along`` existed: factoring the source-path draw out
    must leave every item (and so every cache) as it was."""
    pins = [
        (
            MultiViewPairs("heldout_photo", 12, num_frames=3, size=16)[0],
            "zoom_in",
            (11.772880194, 8.772880194),
            (0.289201128, 0.284776931, 7.711725363),
        ),
        (
            MultiViewPairs("heldout_photo", 12, num_frames=3, size=16)[10],
            "orbit_-67.0deg",
            (11.705241405, 5.987362059),
            (0.301035032, 0.280541782, 8.761687759),
        ),
        (
            SpeedRescaledPairs("train", 1, num_frames=3, size=16)[0],
            "game_rescaled_0.027u_0.036rad",
            (11.74014563, 11.687328761),
            (0.334251799, 0.333847193, 8.447476641),
        ),
    ]
    for item, kind, camera_sums, means in pins:
        assert item["relative_kind"] == kind
        got = [float(item[k].double().sum()) for k in ("source_w2c", "target_w2c")]
        assert got == pytest.approx(camera_sums, abs=1e-8)
        keys = ("source_video", "target_video", "source_depth")
        assert [float(item[k].double().mean()) for k in keys] == pytest.approx(means, abs=1e-8)


def _assert_same_item(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype, key
            assert torch.equal(got[key], value), key
        else:
            assert got[key] == value, key


def test_pair_along_a_preset_reproduces_the_item_that_drew_it():
    pairs = MultiViewPairs("heldout_photo", 12, num_frames=3, size=16)
    item = pairs[0]
    assert item["relative_kind"] in PRESETS  # zoom_in, pinned above
    assert bool(item["source_dynamic"].any())  # a moving object: the target must be in sync
    kind = item["relative_kind"]
    _assert_same_item(pairs.pair_along(0, preset_trajectory(kind, 3), kind), item)
    # another preset: same source, new target along it
    other = pairs.pair_along(0, preset_trajectory("pan_left", 3), "pan_left")
    assert torch.equal(other["source_video"], item["source_video"])
    assert not torch.equal(other["target_video"][-1], item["target_video"][-1])
    assert other["relative_kind"] == "pan_left"
    torch.testing.assert_close(
        other["target_w2c"], preset_trajectory("pan_left", 3) @ item["source_w2c"]
    )


def test_pair_along_works_for_every_pair_kind_and_from_the_cache(tmp_path):
    speed = SpeedRescaledPairs("val", 2, num_frames=3, size=16)
    item = speed[1]  # its source is a walking path: the subclass draws its own
    _assert_same_item(speed.pair_along(1, item["relative_w2c"], item["relative_kind"]), item)
    cached = MultiViewPairs("val", 2, num_frames=3, size=16, cache_dir=tmp_path)
    item = cached[1]  # now cached: the source is read back
    fresh = MultiViewPairs("val", 2, num_frames=3, size=16)
    source = cached.source_along(1)
    assert set(source) == {
        "source_video",
        "source_depth",
        "source_w2c",
        "intrinsics",
        "source_dynamic",
        "caption",
        "scene",
    }
    relative, kind = item["relative_w2c"], item["relative_kind"]
    _assert_same_item(cached.target_along(source, relative, kind), item)
    _assert_same_item(fresh.pair_along(1, relative, kind), item)
    scene, source_w2c = fresh.source_path(1)
    assert torch.equal(source_w2c, item["source_w2c"]) and scene.to_json() == item["scene"]


def test_pair_along_renders_the_source_once_per_index(monkeypatch):
    pairs = MultiViewPairs("train", 3, num_frames=2, size=8)
    calls = []
    original = MultiViewPairs.source_along
    monkeypatch.setattr(
        MultiViewPairs, "source_along", lambda self, i: calls.append(i) or original(self, i)
    )
    for index in (0, 1):
        for kind in PRESETS[:3]:
            pairs.pair_along(index, preset_trajectory(kind, 2), kind)
    assert calls == [0, 1]


def test_target_along_refuses_bad_relative_paths():
    pairs = MultiViewPairs("train", 1, num_frames=3, size=8)
    source = pairs.source_along(0)
    with pytest.raises(ValueError, match=r"relative: expected \[3, 4, 4\].*got \[5, 4, 4\]"):
        pairs.target_along(source, preset_trajectory("pan_left", 5), "x")
    scaled = preset_trajectory("pan_left", 3)
    scaled[:, :3, :3] *= 2
    with pytest.raises(ValueError, match="orthonormal"):
        pairs.target_along(source, scaled, "x")
    with pytest.raises(ValueError, match="kind_name"):
        pairs.target_along(source, preset_trajectory("pan_left", 3), "")
    with pytest.raises(IndexError):
        pairs.pair_along(1, preset_trajectory("pan_left", 3), "x")


# --------------------------------------------------------------------------- geogrpo world render


def _render(tmp_path, *flags: str, out: str = "mine.mp4") -> int:
    return main(["world", "render", *flags, "--size", "32", "--out", str(tmp_path / out)])


def test_cli_renders_source_and_true_target_along_a_file(tmp_path):
    relative = preset_trajectory("arc_right", 5)
    file = save_target_paths({"mine": relative, "other": relative}, tmp_path / "paths.json")
    assert _render(tmp_path, "--trajectory", f"{file}:mine", "--frames", "5") == 0
    for suffix in (
        ".mp4",
        ".source.mp4",
        ".side_by_side.mp4",
        ".depth.mp4",
        ".source.depth.mp4",
        ".safetensors",
        ".source.safetensors",
        ".cameras.json",
        ".source.cameras.json",
        ".relative.json",
        ".scene.json",
    ):
        assert (tmp_path / f"mine{suffix}").stat().st_size > 0, suffix
    assert read_video(tmp_path / "mine.mp4").shape == (5, 32, 32, 3)
    assert read_video(tmp_path / "mine.side_by_side.mp4").shape == (5, 32, 64, 3)
    source = load_trajectory(tmp_path / "mine.source.cameras.json").w2c
    torch.testing.assert_close(source, make_path("walking", 5, 0))
    target = load_trajectory(tmp_path / "mine.cameras.json").w2c
    torch.testing.assert_close(target, relative @ source)
    torch.testing.assert_close(load_trajectory(tmp_path / "mine.relative.json").w2c, relative)
    # frame 0 of the path is the identity: both clips start with the same image
    clips = [load_file(str(tmp_path / f"mine{s}.safetensors"))["rgb"] for s in ("", ".source")]
    assert torch.equal(clips[0][0], clips[1][0]) and not torch.equal(clips[0][-1], clips[1][-1])
    # a game source, the path's own frame count (no --frames)
    assert _render(tmp_path, "--trajectory", f"{file}:other", "--source-path", "game") == 0
    source = load_trajectory(tmp_path / "mine.source.cameras.json").w2c
    torch.testing.assert_close(source, make_path("game", 5, 0))


def test_cli_renders_a_held_out_pair_item_along_a_file(tmp_path):
    relative = preset_trajectory("tilt_down", 3)
    file = save_target_paths({"down": relative}, tmp_path / "one.json")
    flags = ["--trajectory", str(file), "--split", "heldout_photo", "--index", "2"]
    assert _render(tmp_path, *flags) == 0
    want = MultiViewPairs("heldout_photo", 3, num_frames=3, size=32).pair_along(2, relative, "down")
    target = load_file(str(tmp_path / "mine.safetensors"))
    source = load_file(str(tmp_path / "mine.source.safetensors"))
    assert torch.equal(target["rgb"], want["target_video"])
    assert torch.equal(source["rgb"], want["source_video"])
    assert torch.equal(target["w2c"], want["target_w2c"])
    assert (tmp_path / "mine.scene.json").read_text() == want["scene"]


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--trajectory", "{file}"], "holds 2 paths (a, b); pick one with --trajectory"),
        (["--trajectory", "{file}:c"], "has no path 'c'; it has a, b"),
        (["--trajectory", "nowhere.json:a"], "neither a path kind"),
        (["--trajectory", "{file}:a", "--frames", "9"], "--frames 9, but path 'a' has 3 frames"),
        (["--trajectory", "{file}:a", "--split", "val"], "give both --split S and --index I"),
        (["--trajectory", "{file}:a", "--index", "-1", "--split", "val"], "index"),
        (
            ["--trajectory", "{file}:a", "--split", "val", "--index", "0", "--source-path", "game"],
            "the data set gives the scene",
        ),
        (["--trajectory", "arc_left", "--split", "val", "--index", "0"], "--split: only with"),
        (["--trajectory", "walking", "--source-path", "game"], "--source-path: only with"),
    ],
)
def test_cli_bad_input_is_a_clear_error(tmp_path, capsys, flags, fragment):
    file = save_target_paths(
        {"a": preset_trajectory("pan_left", 3), "b": preset_trajectory("pan_right", 3)},
        tmp_path / "two.json",
    )
    assert _render(tmp_path, *(f.replace("{file}", str(file)) for f in flags)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err, err
    assert not (tmp_path / "mine.mp4").exists()


def test_cli_keeps_the_path_kind_behaviour(tmp_path):
    assert _render(tmp_path, "--trajectory", "pan_left", "--frames", "3") == 0
    cams = load_trajectory(tmp_path / "mine.cameras.json")
    torch.testing.assert_close(cams.w2c, preset_trajectory("pan_left", 3))
    assert not (tmp_path / "mine.source.mp4").exists()
