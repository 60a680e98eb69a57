"""`geogrpo sample` end to end on tiny random policies: files, cameras, and clear errors."""

import shutil

import pytest
import torch

from geogrpo.camera.io import load_trajectory
from geogrpo.cli import main
from geogrpo.utils.video import read_video
from tests.models.test_policy import tiny_policy


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    root = tmp_path_factory.mktemp("policies")
    for name in ("t2v", "camera_v2v", "reproj_v2v"):
        tiny_policy(name).save_pretrained(root / name)
    return root


def test_t2v_sample_writes_video_and_the_cameras_the_prompt_asks_for(policies, tmp_path, capsys):
    out = tmp_path / "t2v.mp4"
    args = ["sample", "--policy", str(policies / "t2v"), "--frames", "5", "--size", "32"]
    prompt = "A room with a red box. The camera pans left."
    assert main([*args, "--prompt", prompt, "--steps", "2", "--out", str(out)]) == 0
    assert read_video(out).shape == (5, 32, 32, 3)
    cams = load_trajectory(tmp_path / "t2v.cameras.json")
    assert cams.w2c.shape == (5, 4, 4) and cams.image_size == (32, 32)
    plain = read_video(out)
    guided = tmp_path / "guided.mp4"
    cfg = ["--guidance-scale", "4", "--out", str(guided)]
    assert main([*args, "--prompt", prompt, "--steps", "2", *cfg]) == 0
    assert read_video(guided).shape == plain.shape and (read_video(guided) != plain).any()
    assert main([*args, "--prompt", prompt, "--guidance-scale", "-1"]) == 2
    assert "--guidance-scale" in capsys.readouterr().err
    wide = tmp_path / "wide.mp4"
    assert (
        main([*args, "--prompt", prompt, "--steps", "1", "--width", "48", "--out", str(wide)]) == 0
    )
    assert read_video(wide).shape == (5, 32, 48, 3)
    assert load_trajectory(tmp_path / "wide.cameras.json").image_size == (32, 48)
    assert main([*args, "--prompt", prompt, "--width", "40"]) == 2  # not a multiple of 16
    assert "divisible" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["camera_v2v", "reproj_v2v"])
def test_v2v_sample_from_a_world_render(policies, tmp_path, name):
    src = tmp_path / "src.mp4"
    render = ["world", "render", "--frames", "5", "--size", "32", "--out", str(src)]
    assert main(render) == 0
    out = tmp_path / f"{name}.mp4"
    args = ["sample", "--policy", str(policies / name), "--source", str(src)]
    assert main([*args, "--trajectory", "arc_left", "--steps", "2", "--out", str(out)]) == 0
    assert read_video(out).shape == (5, 32, 32, 3)
    assert read_video(tmp_path / f"{name}.side_by_side.mp4").shape == (5, 32, 64, 3)
    assert load_trajectory(tmp_path / f"{name}.cameras.json").w2c.shape == (5, 4, 4)


def test_bad_input_gives_clear_errors(policies, tmp_path, capsys):
    src = tmp_path / "src.mp4"
    assert main(["world", "render", "--frames", "6", "--size", "32", "--out", str(src)]) == 0
    base = [
        "sample",
        "--source",
        str(src),
        "--trajectory",
        "arc_left",
        "--out",
        str(tmp_path / "o.mp4"),
    ]
    assert main([*base, "--policy", str(policies / "camera_v2v")]) == 2
    assert "4k + 1" in capsys.readouterr().err
    only_mp4 = tmp_path / "plain.mp4"
    shutil.copy(src, only_mp4)
    reproj = ["sample", "--policy", str(policies / "reproj_v2v"), "--source", str(only_mp4)]
    assert main([*reproj, "--trajectory", "arc_left"]) == 2
    assert "depth and cameras" in capsys.readouterr().err
    assert main(["sample", "--policy", str(policies / "t2v")]) == 2
    assert "--prompt" in capsys.readouterr().err
    assert main([*base, "--policy", str(tmp_path / "nothing")]) == 2
    assert "shipped policy" in capsys.readouterr().err
    assert (
        main([*base[:-4], "--trajectory", "spiral", "--policy", str(policies / "camera_v2v")]) == 2
    )
    assert "preset" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is missing")
def test_sample_on_a_missing_cuda_device_is_a_clear_error(policies, tmp_path, capsys):
    args = ["sample", "--policy", str(policies / "t2v"), "--prompt", "A room.", "--steps", "1"]
    assert main([*args, "--device", "cuda", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()


def test_reproj_v2v_on_a_plain_mp4_estimates_the_source_depth(policies, tmp_path, capsys):
    src = tmp_path / "src.mp4"
    assert main(["world", "render", "--frames", "5", "--size", "96", "--out", str(src)]) == 0
    src.with_suffix(".safetensors").unlink()  # a plain video: no depth, no cameras
    args = ["sample", "--policy", str(policies / "reproj_v2v"), "--source", str(src)]
    args += ["--trajectory", "arc_left", "--steps", "1"]
    assert main([*args, "--out", str(tmp_path / "x.mp4")]) == 2
    assert "--estimate-depth" in capsys.readouterr().err
    out = tmp_path / "estimated.mp4"
    assert main([*args, "--estimate-depth", "--out", str(out)]) == 0
    assert read_video(out).shape == (5, 96, 96, 3)
    assert load_trajectory(tmp_path / "estimated.cameras.json").w2c.shape == (5, 4, 4)
