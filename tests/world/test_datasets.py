"""Datasets: deterministic items, exact multi-view geometry, caching, splits, CLI."""

import json
import subprocess
import sys

import pytest
import torch

from geogrpo.camera.io import load_trajectory
from geogrpo.camera.keywords import camera_keywords_to_trajectory
from geogrpo.camera.presets import preset_trajectory
from geogrpo.cli import main
from geogrpo.utils.video import read_video
from geogrpo.world.datasets import (
    SPLITS,
    MultiViewPairs,
    SpeedRescaledPairs,
    TextToVideoClips,
    build_missing,
    check_training_split,
    scene_for,
)


def test_t2v_item_is_deterministic_and_its_caption_drives_its_cameras():
    a = TextToVideoClips("train", 3, num_frames=5, size=32)[2]
    b = TextToVideoClips("train", 3, num_frames=5, size=32)[2]
    assert a["caption"] == b["caption"] and torch.equal(a["video"], b["video"])
    # The camera sentence of the caption parses back to exactly the rendered cameras.
    torch.testing.assert_close(a["w2c"], camera_keywords_to_trajectory(a["camera_text"], 5))
    assert a["caption"].endswith(a["camera_text"])


def test_items_are_deterministic_across_processes():
    code = (
        "from geogrpo.world.datasets import TextToVideoClips as T; "
        "print(T('val', 2, num_frames=2, size=16)[1]['caption'])"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(outs) == 1


def test_pairs_are_synchronized_views_of_one_scene():
    item = MultiViewPairs("train", 2, num_frames=4, size=32)[0]
    torch.testing.assert_close(item["target_w2c"], item["relative_w2c"] @ item["source_w2c"])
    torch.testing.assert_close(item["relative_w2c"][0], torch.eye(4, dtype=torch.float64))
    # Frame 0: relative motion is the identity, so the two clips start with the same image.
    assert torch.equal(item["source_video"][0], item["target_video"][0])
    assert not torch.equal(item["source_video"][-1], item["target_video"][-1])


def test_cache_returns_the_same_item(tmp_path):
    fresh = MultiViewPairs("val", 1, num_frames=3, size=16, cache_dir=tmp_path)[0]
    cached = MultiViewPairs("val", 1, num_frames=3, size=16, cache_dir=tmp_path)[0]
    assert sorted(tmp_path.iterdir())[0].name == "pair_000000.safetensors"
    for key, value in fresh.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, cached[key]), key
        else:
            assert value == cached[key], key


def test_a_truncated_cache_item_is_named(tmp_path):
    TextToVideoClips("val", 1, num_frames=2, size=16, cache_dir=tmp_path)[0]
    item = tmp_path / "t2v_000000.safetensors"
    item.write_bytes(item.read_bytes()[:50])
    with pytest.raises(ValueError, match="t2v_000000.safetensors is not a readable item"):
        TextToVideoClips("val", 1, num_frames=2, size=16, cache_dir=tmp_path)[0]


def test_speed_rescaled_pairs_keep_their_sampled_speed_maxima():
    from geogrpo.camera.trajectory import trajectory_speeds

    item = SpeedRescaledPairs("train", 1, num_frames=5, size=16)[0]
    v_t, v_r = (float(x.max()) for x in trajectory_speeds(item["relative_w2c"]))
    kind = item["relative_kind"]  # game_rescaled_<v_t>u_<v_r>rad
    want_t, want_r = (float(x) for x in kind.removeprefix("game_rescaled_")[:-3].split("u_"))
    assert v_t == pytest.approx(want_t, abs=1e-3) and v_r == pytest.approx(want_r, abs=1e-3)
    prior = SpeedRescaledPairs.translation_prior
    assert prior.low <= v_t <= prior.high
    torch.testing.assert_close(item["target_w2c"], item["relative_w2c"] @ item["source_w2c"])


def test_cache_refuses_items_built_with_other_settings(tmp_path):
    TextToVideoClips("val", 1, num_frames=2, size=16, cache_dir=tmp_path)[0]
    with pytest.raises(ValueError, match="^cache_dir: .* holds items built with"):
        TextToVideoClips("val", 1, num_frames=3, size=16, cache_dir=tmp_path)


def test_non_square_items_render_at_height_by_width(tmp_path):
    clip = TextToVideoClips("val", 1, num_frames=2, size=16, width=32, cache_dir=tmp_path / "t")[0]
    assert clip["video"].shape == (2, 16, 32, 3) and clip["depth"].shape == (2, 16, 32)
    pair = SpeedRescaledPairs("val", 1, num_frames=2, size=16, width=32)[0]
    assert pair["source_video"].shape == pair["target_video"].shape == (2, 16, 32, 3)
    k = pair["intrinsics"]  # the principal point sits at the centre of the wide frame
    assert float(k[0, 2]) == pytest.approx(16.0) and float(k[1, 2]) == pytest.approx(8.0)
    # a wide cache names its width; a square set (width 0 or = size) may not reuse it
    assert json.loads((tmp_path / "t" / "settings.json").read_text())["width"] == 32
    with pytest.raises(ValueError, match="holds items built with"):
        TextToVideoClips("val", 1, num_frames=2, size=16, width=0, cache_dir=tmp_path / "t")
    square = TextToVideoClips("val", 1, num_frames=2, size=16, width=16, cache_dir=tmp_path / "s")
    assert "width" not in json.loads((tmp_path / "s" / "settings.json").read_text())
    assert square[0]["video"].shape == (2, 16, 16, 3)


def test_some_pairs_are_extreme_orbits():
    kinds = [
        MultiViewPairs("train", 12, num_frames=2, size=8)[i]["relative_kind"] for i in range(12)
    ]
    assert any(k.startswith("orbit_") for k in kinds) and any(
        not k.startswith("orbit_") for k in kinds
    )


def test_splits_use_their_domains_and_disjoint_scenes():
    assert scene_for("train", 0).domain == "procedural"
    assert scene_for("train", 0) != scene_for("val", 0)
    kinds = {p.texture.kind for i in range(5) for p in scene_for("heldout_photo", i).primitives}
    assert kinds == {"photo"}
    shapes = {p.kind for i in range(5) for p in scene_for("heldout_shapes", i).primitives}
    assert shapes == {"plane", "cylinder"}
    train_textures = {p.texture.kind for i in range(20) for p in scene_for("train", i).primitives}
    assert "photo" not in train_textures and "gradient" not in train_textures


def test_held_out_splits_are_refused_for_training():
    assert check_training_split("train") == "train"
    for split in set(SPLITS) - {"train"}:
        with pytest.raises(ValueError, match="^split: .* must never be trained on"):
            check_training_split(split)


def test_cli_render_and_build(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert (
        main(
            [
                "world",
                "render",
                "--scene-seed",
                "3",
                "--trajectory",
                "arc_left",
                "--frames",
                "3",
                "--size",
                "32",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    for suffix in (".mp4", ".depth.mp4", ".safetensors", ".cameras.json", ".scene.json"):
        assert (tmp_path / f"clip{suffix}").stat().st_size > 0
    cams = load_trajectory(tmp_path / "clip.cameras.json")
    torch.testing.assert_close(cams.w2c, preset_trajectory("arc_left", 3))
    assert read_video(out).shape == (3, 32, 32, 3)
    assert (
        main(
            [
                "world",
                "build",
                "--split",
                "val",
                "--n",
                "2",
                "--frames",
                "2",
                "--size",
                "16",
                "--mp4",
                "--out",
                str(tmp_path / "data"),
            ]
        )
        == 0
    )
    # the layout pretrain and train read: <out>/t2v/<split>
    names = sorted(p.name for p in (tmp_path / "data" / "t2v" / "val").iterdir())
    assert names == [
        "index.json",
        "settings.json",
        "t2v_000000.mp4",
        "t2v_000000.safetensors",
        "t2v_000001.mp4",
        "t2v_000001.safetensors",
    ]
    sheet = tmp_path / "sheet.png"
    assert (
        main(["world", "contact-sheet", "--per-split", "1", "--size", "16", "--out", str(sheet)])
        == 0
    )
    assert sheet.read_bytes()[:4] == b"\x89PNG"
    assert main(["world", "render", "--frames", "0", "--out", str(out)]) == 2
    assert "frames" in capsys.readouterr().err
    assert main(["world", "render", "--scene", str(tmp_path / "missing.json")]) == 2


def test_dataset_seed_varies_views_not_scenes():
    a = TextToVideoClips("train", 3, num_frames=2, size=8, seed=0)
    b = TextToVideoClips("train", 3, num_frames=2, size=8, seed=1)
    scenes_a = [json.loads(a[i]["scene"])["seed"] for i in range(3)]
    assert scenes_a == [json.loads(b[i]["scene"])["seed"] for i in range(3)] == [0, 1, 2]
    assert [a[i]["camera_text"] for i in range(3)] != [b[i]["camera_text"] for i in range(3)]
    with pytest.raises(ValueError, match="^n"):
        TextToVideoClips("train", 2_000_000)


def test_build_missing_renders_only_what_is_missing_and_in_parallel_as_serially(tmp_path):
    ds = MultiViewPairs("val", 3, num_frames=2, size=16, cache_dir=tmp_path)
    ds[1]
    kept = (tmp_path / "pair_000001.safetensors").stat().st_mtime_ns
    assert build_missing(ds, range(3), workers=2) == 2
    assert (tmp_path / "pair_000001.safetensors").stat().st_mtime_ns == kept
    assert build_missing(ds, range(3), workers=2) == 0
    fresh = MultiViewPairs("val", 3, num_frames=2, size=16)  # no cache: rendered here, serially
    for i in range(3):
        built, serial = ds[i], fresh[i]
        assert built.keys() == serial.keys()
        for key, value in serial.items():
            same = torch.equal(value, built[key]) if isinstance(value, torch.Tensor) else None
            assert same if same is not None else value == built[key], (i, key)


def test_build_missing_needs_a_cache_and_a_worker():
    with pytest.raises(ValueError, match="cache_dir"):
        build_missing(MultiViewPairs("val", 2, num_frames=2, size=16), range(2))
    with pytest.raises(ValueError, match="workers"):
        build_missing(MultiViewPairs("val", 2, num_frames=2, size=16), range(2), workers=0)


def test_datasets_render_on_their_device_and_keep_items_on_the_cpu():
    pairs = MultiViewPairs("train", 2, num_frames=3, size=16, device="cpu")
    item = pairs[1]
    assert item["target_video"].device.type == "cpu"
    assert torch.equal(item["target_video"], MultiViewPairs("train", 2, 3, 16)[1]["target_video"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="^device: 'cuda' asked for"):
            TextToVideoClips("train", 2, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_items_built_on_cuda_are_the_cpu_items(tmp_path):
    cuda = MultiViewPairs("train", 3, num_frames=3, size=24, cache_dir=tmp_path, device="cuda")
    assert build_missing(cuda, range(3), workers=2) == 3
    for i in range(3):
        gpu, cpu = cuda[i], MultiViewPairs("train", 3, num_frames=3, size=24)[i]
        for key in ("source_video", "target_video"):
            assert gpu[key].device.type == "cpu"
            same = (gpu[key] - cpu[key]).abs().amax(-1) < 1e-4
            assert float(same.float().mean()) > 0.995, (i, key)
        assert gpu["caption"] == cpu["caption"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error of a machine without CUDA")
def test_cli_build_refuses_cuda_without_it_before_rendering(tmp_path, capsys):
    args = ["world", "build", "--kind", "pairs", "--n", "1", "--out", str(tmp_path)]
    assert main([*args, "--device", "cuda"]) == 2
    assert "device: 'cuda' asked for, but torch sees no CUDA device" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.safetensors"))
