"""The train-state file: everything round-trips exactly, changed settings and missing parts are
refused with their names, and a missing file says what to do."""

import pytest
import torch

from geogrpo.train.checkpoint import TRAIN_STATE, resume_train_state, save_train_state

SETTINGS = {"lr": 0.1, "steps": 4, "eval_every": 2, "resume": False}


def run_parts(seed: int) -> dict:
    """A module, its optimizer and schedule, and a generator; one step taken."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=4)
    gen = torch.Generator().manual_seed(seed)
    model(torch.randn(5, 3, generator=gen)).square().mean().backward()
    opt.step()
    sched.step()
    return {"model": model, "optimizer": opt, "scheduler": sched, "generator": gen}


def test_a_resumed_state_continues_exactly(tmp_path):
    path = tmp_path / "latest" / TRAIN_STATE
    saved = run_parts(0)
    save_train_state(path, SETTINGS, 1, 2.5, saved)
    assert [p.name for p in path.parent.iterdir()] == [TRAIN_STATE]  # no temporary left
    fresh = run_parts(1)
    assert resume_train_state(path, {**SETTINGS, "resume": True}, fresh) == (1, 2.5)
    for parts in (saved, fresh):  # the same next step from both
        x = torch.randn(5, 3, generator=parts["generator"])
        parts["optimizer"].zero_grad()
        parts["model"](x).square().mean().backward()
        parts["optimizer"].step()
        parts["scheduler"].step()
    for a, b in zip(saved["model"].parameters(), fresh["model"].parameters(), strict=True):
        assert torch.equal(a, b)
    assert saved["scheduler"].get_last_lr() == fresh["scheduler"].get_last_lr()


def test_changed_settings_and_missing_parts_are_refused_by_name(tmp_path):
    path = tmp_path / TRAIN_STATE
    save_train_state(path, SETTINGS, 1, 0.0, run_parts(0))
    with pytest.raises(ValueError, match=r"\(lr, steps: \[0.1, 4\] there, \[0.2, 5\] now\)"):
        resume_train_state(path, {**SETTINGS, "lr": 0.2, "steps": 5}, run_parts(1))
    resume_train_state(path, {**SETTINGS, "eval_every": 3}, run_parts(1))  # free by default
    with pytest.raises(ValueError, match="eval_every"):
        resume_train_state(path, {**SETTINGS, "eval_every": 3}, run_parts(1), free=())
    with pytest.raises(ValueError, match="no state for extra"):
        resume_train_state(path, SETTINGS, {**run_parts(1), "extra": torch.nn.Linear(1, 1)})


def test_a_missing_state_says_to_start_without_resume(tmp_path):
    with pytest.raises(FileNotFoundError, match="start it without --resume"):
        resume_train_state(tmp_path / TRAIN_STATE, SETTINGS, run_parts(0))


# -- GRPO checkpoint folders: sha256 recorded on save, checked on load ----------------------------


def _grpo_checkpoint(folder):
    from geogrpo.train.checkpoint import save_checkpoint

    weights = {"lora.A": torch.arange(12.0).reshape(3, 4), "lora.B": torch.ones(4, 3)}
    state = {"step": 3, "scheduler": {"last_epoch": 3}, "rng": torch.get_rng_state()}
    return save_checkpoint(folder, 3, weights, state, {"seed": 0}), weights


def test_a_grpo_checkpoint_records_and_checks_its_files_sha256(tmp_path):
    import json

    from geogrpo.train.checkpoint import load_checkpoint
    from geogrpo.utils.io import file_sha256

    path, weights = _grpo_checkpoint(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())["sha256"]
    assert manifest == {
        name: file_sha256(path / name) for name in ("trainable.safetensors", "state.pt")
    }
    loaded, state, config = load_checkpoint(path)
    assert all(torch.equal(loaded[k], v) for k, v in weights.items()) and config == {"seed": 0}
    assert state["step"] == 3


@pytest.mark.parametrize("name", ["trainable.safetensors", "state.pt"])
def test_a_changed_checkpoint_file_is_named_on_load(tmp_path, name):
    from geogrpo.train.checkpoint import load_checkpoint

    path, _ = _grpo_checkpoint(tmp_path)
    file = path / name
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte off: loads without complaint unless checked
    file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{name}: corrupt or truncated: its sha256"):
        load_checkpoint(path)
    if name == "trainable.safetensors":  # the last byte is tensor data: loads when not checked
        weights, _, _ = load_checkpoint(path, verify=False)
        assert not torch.equal(weights["lora.B"], torch.ones(4, 3))


def test_a_checkpoint_without_its_manifest_is_refused(tmp_path):
    from geogrpo.train.checkpoint import load_checkpoint

    path, _ = _grpo_checkpoint(tmp_path)
    (path / "manifest.json").unlink()
    with pytest.raises(ValueError, match=r"manifest\.json: missing, so the checkpoint's files"):
        load_checkpoint(path)
    load_checkpoint(path, verify=False)
