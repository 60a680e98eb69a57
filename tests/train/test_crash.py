"""Crash safety (issue 26): a run SIGKILLed inside a checkpoint write and mid-step, resumed with
``--resume auto`` each time, ends with the uninterrupted run's weights bit for bit, and no
checkpoint on disk is ever partial. The many-kill variant is ``bench/kill_resume.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from geogrpo.cli import main

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kill_resume.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("kill_resume", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sigkill_in_a_save_and_mid_step_then_resume_gives_the_same_weights(harness, tmp_path):
    steps, data = 3, tmp_path / "data"
    assert main(harness.cli_args(tmp_path / "whole", data, steps)) == 0  # also renders the data
    killed = tmp_path / "killed"
    counts = harness.kill_and_resume(killed, data, steps, [("in_save", 2.0), ("after_save", 0.5)])
    assert counts["killed_in_save"] == 1 and counts["killed"] == 1, counts
    assert counts["checkpoints_checked"] >= 2, counts
    whole, resumed = (harness.final_weights(p, steps) for p in (tmp_path / "whole", killed))
    assert harness.same_weights(whole, resumed)


def test_the_checkpoint_check_finds_a_partial_checkpoint(harness, tmp_path):
    """What the crash test relies on: a checkpoint missing a file, or with a cut one, fails."""
    data = tmp_path / "data"
    out = tmp_path / "run"
    assert main(harness.cli_args(out, data, 1)) == 0
    assert harness.check_checkpoints(out) == 1
    state = out / "checkpoints" / "step_000001" / "state.pt"
    state.write_bytes(state.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"state.pt"):
        harness.check_checkpoints(out)
    state.unlink()
    with pytest.raises(ValueError, match="missing; the checkpoint is incomplete"):
        harness.check_checkpoints(out)
