"""Every command that writes checks its --out before any work; `pretrain export` never writes
into the package's shipped models by default; --no-verify-weights loads one's own edits."""

import os
import shutil

import pytest

from geogrpo.cli import main
from geogrpo.models.policy import PRETRAINED_DIR, VideoPolicy

# (argv with OUT for the output path, what OUT names)
COMMANDS = {
    "sample": (["sample", "--prompt", "A room.", "--out", "OUT/s.mp4"], "file"),
    "train": (["train", "--recipe", "overfit", "--out", "OUT"], "dir"),
    "eval": (["eval", "--suite", "camera_v2v", "--out", "OUT"], "dir"),
    "eval-compare": (["eval", "--compare", "a", "b", "--out", "OUT"], "dir"),
    "report": (["report", ".", "--out", "OUT/r.html"], "file"),
    "world-render": (["world", "render", "--out", "OUT/c.mp4"], "file"),
    "world-build": (["world", "build", "--n", "1", "--out", "OUT"], "dir"),
    "world-sheet": (["world", "contact-sheet", "--out", "OUT/s.png"], "file"),
    "toy-grpo": (["toy-grpo", "--out", "OUT"], "dir"),
    "demo": (["demo", "--out", "OUT"], "dir"),
    "pretrain": (["pretrain", "tinygeo", "--out", "OUT"], "dir"),
    "pretrain-export": (["pretrain", "export", "--out", "OUT"], "dir"),
}


@pytest.fixture
def no_work(monkeypatch):
    """Loading a policy or building a trainer means the command started its work."""

    def started(*args, **kwargs):
        raise AssertionError("the command started its work before checking --out")

    monkeypatch.setattr(VideoPolicy, "from_pretrained", started)
    from geogrpo.train import trainer

    monkeypatch.setattr(trainer.GRPOTrainer, "__init__", started)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_impossible_out_fails_first_with_a_clear_message(
    command, tmp_path, capsys, monkeypatch, no_work
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a regular file")
    argv, _ = COMMANDS[command]
    out = str(tmp_path / "afile" / "sub")
    assert main([a.replace("OUT", out) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "error: --out:" in err and "afile is a file, not a folder" in err, err
    assert "Traceback" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_an_unwritable_out_fails_before_sampling(tmp_path, capsys, no_work):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main(["sample", "--prompt", "A room.", "--out", str(locked / "s.mp4")])
    finally:
        locked.chmod(0o700)
    assert code == 2
    assert "--out: cannot write in" in capsys.readouterr().err


def test_an_out_that_is_a_folder_where_a_file_is_wanted_fails_first(tmp_path, capsys, no_work):
    assert main(["sample", "--prompt", "A room.", "--out", str(tmp_path)]) == 2
    assert "is a folder; name a file" in capsys.readouterr().err


def test_export_refuses_the_shipped_folder_unless_told(tmp_path, capsys, monkeypatch):
    from geogrpo.pretrain.common import shipped_folder
    from geogrpo.pretrain.config import PolicyExportConfig

    monkeypatch.chdir(tmp_path)
    assert shipped_folder(PolicyExportConfig().out) is None  # the default is not the package
    monkeypatch.chdir(PRETRAINED_DIR.parents[3])  # the repository root: as the old default ran
    assert shipped_folder(PolicyExportConfig().out) is None
    assert shipped_folder("src/geogrpo/models/pretrained/tiny-t2v") == PRETRAINED_DIR
    before = {p: p.stat().st_mtime_ns for p in (PRETRAINED_DIR / "tiny-t2v").rglob("*")}
    target = PRETRAINED_DIR / "tiny-t2v"
    assert main(["pretrain", "export", "--source", str(target), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "inside the package's shipped models" in err and "--overwrite-shipped" in err
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before


def test_a_recast_policy_samples_only_with_no_verify_weights(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "mine"
    shutil.copytree(PRETRAINED_DIR / "tiny-t2v", copy)
    weights = copy / "text_encoder" / "model.safetensors"
    save_file({k: v.half() for k, v in load_file(str(weights)).items()}, str(weights))
    argv = ["sample", "--policy", str(copy), "--prompt", "A room with a red box.", "--steps", "1"]
    argv += ["--frames", "5", "--size", "32", "--out", str(tmp_path / "s.mp4")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "text_encoder/model.safetensors: sha256" in err and "--no-verify-weights" in err
    assert not (tmp_path / "s.mp4").exists()
    assert main([*argv, "--no-verify-weights"]) == 0
    assert (tmp_path / "s.mp4").is_file()
