"""Loading and output safety: manifests are checked file by file, bad JSON and safetensors name
their file, digests are cached only while a file cannot have changed, and output paths are
checked before any work."""

import json
import os
import time

import pytest
import torch
from safetensors.torch import save_file

from geogrpo.eval.conditions import file_stem
from geogrpo.utils import integrity
from geogrpo.utils.integrity import (
    IntegrityError,
    OutputPathError,
    check_output_dir,
    check_output_file,
    inside,
    load_json_object,
    load_safetensors,
    verify_manifest,
    weight_verification,
    write_digests_manifest,
)


@pytest.fixture
def model_dir(tmp_path):
    """A model folder: two weight files in two levels and a manifest listing both."""
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    save_file({"w": torch.arange(64.0).reshape(8, 8)}, str(folder / "model.safetensors"))
    save_file({"b": torch.ones(4)}, str(folder / "sub" / "model.safetensors"))
    (folder / "config.json").write_text("{}")
    write_digests_manifest(folder, {"note": "test"})
    return folder


def test_an_intact_folder_verifies_and_its_manifest_lists_every_weight_file(model_dir):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert sorted(manifest["sha256"]) == ["model.safetensors", "sub/model.safetensors"]
    assert manifest["note"] == "test"
    assert verify_manifest(model_dir) is True


def _zero(path):
    path.write_bytes(bytes(path.stat().st_size))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-16])


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_zero, _truncate, _flip_last_byte, os.remove])
def test_a_damaged_or_missing_weight_file_is_named(model_dir, damage):
    damage(model_dir / "sub" / "model.safetensors")
    with pytest.raises(IntegrityError, match=r"sub/model\.safetensors: (sha256|missing)") as err:
        verify_manifest(model_dir)
    assert "manifest.json" in str(err.value)
    if damage is not os.remove:  # a mismatch says how to skip the check for one's own edits
        assert "verify=False" in str(err.value) and "--no-verify-weights" in str(err.value)
    assert verify_manifest(model_dir, verify=False) is False  # skipped on request
    with weight_verification(False):
        assert verify_manifest(model_dir) is False
    with pytest.raises(IntegrityError), weight_verification(None):
        verify_manifest(model_dir)


def test_an_unlisted_weight_file_is_refused(model_dir):
    save_file({"x": torch.zeros(1)}, str(model_dir / "sub" / "extra.safetensors"))
    with pytest.raises(IntegrityError, match=r"sub/extra\.safetensors: a weight file that .* not"):
        verify_manifest(model_dir)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"manifest\.json: not valid JSON \(line 1, column 2"),
        ("[1, 2]", r"manifest\.json: holds a JSON list, not an object"),
        ('{"sha256": {}}', r"manifest\.json: has no 'sha256' table"),
        ('{"sha256": {"model.safetensors": "abc"}}', "not a 64-digit hex digest"),
        ('{"sha256": {"../model.safetensors": "' + "0" * 64 + '"}}', "a path outside its folder"),
    ],
)
def test_a_bad_manifest_is_named(model_dir, text, message):
    (model_dir / "manifest.json").write_text(text)
    with pytest.raises(IntegrityError, match=message):
        verify_manifest(model_dir)


def test_a_folder_without_manifest_is_refused_unless_not_required(model_dir):
    (model_dir / "manifest.json").unlink()
    with pytest.raises(IntegrityError, match=r"model: no manifest\.json, so its weights cannot"):
        verify_manifest(model_dir)
    assert verify_manifest(model_dir, required=False) is False


def test_bad_json_and_safetensors_name_their_file(tmp_path):
    config = tmp_path / "config.json"
    config.write_text("frame_channels: 16\n")
    with pytest.raises(IntegrityError, match=r"config\.json: not valid JSON .*autoencoder config"):
        load_json_object(config, "autoencoder config")
    config.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(IntegrityError, match=r"config\.json: not a text file"):
        load_json_object(config, "autoencoder config")
    with pytest.raises(FileNotFoundError, match=r"nothing\.json: missing"):
        load_json_object(tmp_path / "nothing.json")
    weights = tmp_path / "model.safetensors"
    save_file({"w": torch.ones(100)}, str(weights))
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(IntegrityError, match=r"model\.safetensors: not a readable safetensors"):
        load_safetensors(weights)


def test_digests_are_cached_only_for_files_that_cannot_have_changed_unseen(model_dir, monkeypatch):
    calls = []
    real = integrity.file_sha256
    monkeypatch.setattr(integrity, "file_sha256", lambda p: calls.append(p) or real(p))
    integrity.clear_digest_cache()
    verify_manifest(model_dir)
    verify_manifest(model_dir)
    assert len(calls) == 4  # just written: hashed each time
    monkeypatch.setattr(integrity, "_RACY_S", -1.0)  # as if the files were old
    verify_manifest(model_dir)
    verify_manifest(model_dir)
    assert len(calls) == 6  # hashed once more, then cached
    weights = model_dir / "model.safetensors"
    st = weights.stat()
    _flip_last_byte(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back: ctime moved
    with pytest.raises(IntegrityError, match="model.safetensors: sha256"):
        verify_manifest(model_dir)
    integrity.clear_digest_cache()


def test_hashing_every_shipped_weight_takes_well_under_a_second():
    import geogrpo

    package = os.path.dirname(geogrpo.__file__)
    folders = [
        os.path.join(package, kind, "pretrained", name)
        for kind in ("models", "perception")
        for name in sorted(os.listdir(os.path.join(package, kind, "pretrained")))
    ]
    integrity.clear_digest_cache()
    start = time.perf_counter()
    for folder in folders:
        assert verify_manifest(folder)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    for folder in folders:
        verify_manifest(folder)
    warm = time.perf_counter() - start
    assert len(folders) == 8
    assert cold < 1.0, cold  # about 0.1 s for 31 MiB on one core
    assert warm < 0.1, warm  # cached: a stat per file


def test_output_dirs_are_created_and_checked_before_work(tmp_path):
    assert check_output_dir(tmp_path / "a" / "b").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match=r"--out: .*file is a file, not a folder"):
        check_output_dir(blocker)
    with pytest.raises(OutputPathError, match=r"cannot be created: .*file is a file, not a folder"):
        check_output_dir(blocker / "sub" / "run")
    with pytest.raises(OutputPathError, match="is a folder; name a file"):
        check_output_file(tmp_path / "a")
    assert check_output_file(tmp_path / "new" / "x.mp4").parent.is_dir()
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == []  # no probe left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_an_unwritable_output_dir_is_refused_and_nothing_is_left_behind(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputPathError, match=r"--out: cannot (create|write in) .*locked"):
            check_output_dir(locked / "run")
        with pytest.raises(OutputPathError, match=r"cannot write in .*locked"):
            check_output_file(locked / "x.mp4")
        assert not (locked / "run").exists()
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("name", ["../../etc/x", "/abs/path", "a/../../b", "..", "a\\b"])
def test_condition_ids_from_user_path_names_stay_inside_the_output_folder(tmp_path, name):
    stem = file_stem(f"val/0003/{name}")
    target = inside(tmp_path / "videos", f"{stem}.mp4")
    assert target.parent == tmp_path / "videos"
    with pytest.raises(OutputPathError):
        inside(tmp_path, "../x.mp4")


def test_a_part_of_a_model_loaded_alone_is_checked_against_its_parents_manifest(tmp_path):
    import shutil

    from geogrpo.models.policy import policy_dir
    from geogrpo.models.text import GrammarTextEncoder

    policy = shutil.copytree(policy_dir("tiny-t2v"), tmp_path / "tiny-t2v")
    part = policy / "text_encoder"
    assert not (part / "manifest.json").exists()
    assert verify_manifest(part) is True  # the policy's manifest lists text_encoder/...
    GrammarTextEncoder.from_pretrained(part)
    weights = part / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
    with pytest.raises(IntegrityError, match=r"text_encoder/model\.safetensors: sha256"):
        GrammarTextEncoder.from_pretrained(part)
    (policy / "manifest.json").unlink()
    with pytest.raises(IntegrityError, match=r"text_encoder: no manifest\.json"):
        verify_manifest(part)
