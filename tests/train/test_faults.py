"""Training survives faults (issue 26): a non-finite reward, advantage, loss or gradient skips
its step and training goes on; too many in a row stop the run with a resumable checkpoint; a
reward that raises on one sample masks that sample only; a full or read-only disk while saving
leaves the previous checkpoint as it was. Every fault is injected through a public seam: a
registered reward, the trainer's own imported functions, a gradient hook, the checkpoint
writer."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
from pathlib import Path

import pytest
import torch

from geogrpo.recipes import build
from geogrpo.rewards.base import RewardBatch, RewardOutput, score_isolating_failures
from geogrpo.train import checkpoint as ckpt
from geogrpo.train import trainer as trainer_module
from geogrpo.train.checkpoint import RunStopped, list_checkpoints, load_checkpoint
from geogrpo.train.config import load_config
from geogrpo.train.logging import read_jsonl
from geogrpo.train.trainer import GRPOTrainer
from tests.train.test_trainer import TINY


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


class Faulty:
    """view_fidelity, or a fault when ``inject[step]`` asks for one: ``nan`` (every score
    non-finite yet called valid, a broken contract) or ``raise_one`` (a perception model that
    throws on the batch's second sample, whichever batch it is scored in)."""

    name = "faulty"

    def __init__(self, shared, schedule):
        self.inner = build.build_reward("view_fidelity", shared, weights=[1.0, 1.0, 0.0, 0.0])
        self.schedule = schedule  # {call number: fault}, one batch-level call per step
        self.calls = -1
        self.victim: torch.Tensor | None = None

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        b = batch.video.shape[0]
        if b > 1:
            self.calls += 1
        fault = self.schedule.get(self.calls)
        if fault == "nan":
            out = self.inner(batch)
            return dataclasses.replace(out, scores=torch.full((b,), float("nan")))
        if fault == "raise_one":
            if b > 1:
                self.victim = batch.video[1].clone()
            if any(torch.equal(v, self.victim) for v in batch.video):
                raise RuntimeError("tinygeo: SVD did not converge")
        return self.inner(batch)


def run_config(data_dir, *more):
    return load_config(
        "overfit",
        overrides=[*TINY, f"data.data_dir={data_dir}", "rewards.rewards=[{name: faulty}]", *more],
    )


@pytest.fixture
def inject(monkeypatch):
    """``inject[step] = cause`` makes that step's reward, advantage, loss or gradient NaN."""
    plan: dict[int, str] = {}
    state = {"step": -1}
    monkeypatch.setitem(
        build.REWARDS,
        "faulty",
        lambda shared: Faulty(shared, {s: c for s, c in plan.items() if c in ("nan", "raise_one")}),
    )
    collect = GRPOTrainer.collect

    def collect_and_mark(self, step):
        state["step"] = step
        return collect(self, step)

    monkeypatch.setattr(GRPOTrainer, "collect", collect_and_mark)
    advantages = trainer_module.multi_reward_advantages

    def nan_advantages(*args, **kwargs):
        out = advantages(*args, **kwargs)
        if plan.get(state["step"]) == "advantage":
            out.advantages[0, 0] = float("nan")
        return out

    monkeypatch.setattr(trainer_module, "multi_reward_advantages", nan_advantages)
    loss = trainer_module.grpo_step_loss

    def nan_loss(*args, **kwargs):
        out = loss(*args, **kwargs)
        if plan.get(state["step"]) == "loss":
            out = dataclasses.replace(out, loss=out.loss * float("inf") * 0)  # NaN, still a graph
        return out

    monkeypatch.setattr(trainer_module, "grpo_step_loss", nan_loss)
    return plan, state


def hook_nan_gradients(trainer: GRPOTrainer, plan: dict[int, str], state: dict[str, int]):
    """A gradient hook on one trained tensor: Inf in its gradient on the steps marked grad."""
    _, param = trainer.trainable[0]
    param.register_hook(lambda g: g * float("inf") if plan.get(state["step"]) == "grad" else g)


def test_a_sample_a_reward_raises_on_is_masked_alone():
    """The batch is scored again sample by sample; the failing one is masked with the
    exception as its reason, the others keep their scores."""

    class Estimator:
        name = "tinygeo"

        def __call__(self, batch):
            flat = batch.video.flatten(1)
            if bool((flat.std(dim=1) == 0).any()):
                raise RuntimeError("SVD did not converge on a textureless frame")
            scores = flat.mean(dim=1)
            scores[flat[:, 0] > 0.95] = float("inf")  # a broken score called valid
            return RewardOutput(scores, torch.ones(len(scores), dtype=torch.bool))

    video = torch.rand(4, 5, 8, 8, 3) * 0.9
    video[1] = 0.5  # textureless
    video[3, 0, 0, 0, 0] = 0.99
    batch = RewardBatch(video=video, prompts=["a", "b", "c", "d"])
    out, failed = score_isolating_failures(Estimator(), batch)
    assert out.valid.tolist() == [True, False, True, False]
    assert set(failed) == {1, 3}
    assert failed[1] == "tinygeo raised RuntimeError: SVD did not converge on a textureless frame"
    assert out.reasons[1] == failed[1] and "non-finite score inf" in out.reasons[3]
    expected = video.flatten(1).mean(dim=1)
    assert torch.equal(out.scores[[0, 2]], expected[[0, 2]]) and out.scores[[1, 3]].eq(0).all()
    whole, none = score_isolating_failures(Estimator(), batch.select([0, 2]))
    assert none == {} and torch.equal(whole.scores, expected[[0, 2]])


def test_a_non_finite_step_is_skipped_with_its_cause_and_training_goes_on(
    data_dir, tmp_path, inject
):
    plan, state = inject
    plan.update({1: "nan", 2: "advantage", 3: "loss", 4: "grad", 5: "raise_one"})
    settings = ("steps=6", "checkpoint.every=1", "checkpoint.keep_last=10", "rl.inner_epochs=1")
    config = run_config(data_dir, *settings, "train.max_bad_steps=5", "sampling.group_size=4")
    trainer = GRPOTrainer(config, tmp_path)
    hook_nan_gradients(trainer, plan, state)
    trainer.train()
    rows = {r["step"]: r for r in read_jsonl(tmp_path / "metrics.jsonl") if "reward_mean" in r}
    for step, cause in {2: "reward", 3: "advantage", 4: "loss", 5: "grad"}.items():
        assert rows[step]["fault/skipped_step"] == 1 and rows[step][f"fault/{cause}"] == 1, cause
        assert rows[step]["fault/bad_steps_in_a_row"] == step - 1
    for step in (1, 6):
        assert "fault/skipped_step" not in rows[step], step
    # the raising reward masked its one sample a step; the other three were scored and learnt
    assert rows[6]["fault/reward_masked"] == 1 and rows[6]["valid_samples"] == 0.75
    assert rows[6]["grad_norm"] > 0
    weights = {p.name: load_checkpoint(p)[0] for p in list_checkpoints(tmp_path / "checkpoints")}
    after = [weights[f"step_{s:06d}"] for s in range(1, 7)]
    for s in range(1, 5):  # the skipped steps changed nothing
        assert all(torch.equal(after[s][k], after[0][k]) for k in after[0]), s
    assert not all(torch.equal(after[5][k], after[4][k]) for k in after[0])
    assert trainer.bad_steps == 0


def test_too_many_bad_steps_in_a_row_stop_with_a_resumable_checkpoint(data_dir, tmp_path, inject):
    plan, _ = inject
    plan.update({1: "loss", 2: "loss"})
    config = run_config(data_dir, "steps=4", "train.max_bad_steps=2")
    trainer = GRPOTrainer(config, tmp_path)
    with pytest.raises(RunStopped) as stop:
        trainer.train()
    message = str(stop.value)
    assert "stopped after step 3: 2 steps in a row were skipped" in message
    assert "loss: the loss is nan" in message and "--resume auto" in message
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step_000003"]
    plan.clear()  # the cause is fixed
    resumed = GRPOTrainer(config, tmp_path, resume="auto")
    assert (resumed.step, resumed.bad_steps) == (3, 2)
    resumed.train()
    assert resumed.step == 4 and resumed.bad_steps == 0


def disk_fault(monkeypatch, error: OSError, target: str) -> None:
    """Make the checkpoint writer fail in ``target``: after writing half of trainable.safetensors
    (``save_file``) or of state.pt (``torch_save``), or where the optimizer's shard is synced to
    disk (``fsync``, inside torch.distributed.checkpoint)."""

    def fail(*args, **kwargs):
        raise error

    if target == "fsync":
        monkeypatch.setattr(os, "fsync", fail)
        return
    real = ckpt.save_file if target == "save_file" else torch.save

    def half_then_fail(obj, path, *args, **kwargs):
        real(obj, path, *args, **kwargs)
        if not isinstance(path, (str, os.PathLike)):  # the shard's in-memory buffers
            return
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise error

    if target == "save_file":
        monkeypatch.setattr(ckpt, "save_file", half_then_fail)
    else:
        monkeypatch.setattr(ckpt.torch, "save", half_then_fail)


def cli_args(out, data_dir, *more: str) -> list[str]:
    args = ["train", "--recipe", "overfit", "--out", str(out)]
    sets = (*TINY, f"data.data_dir={data_dir}", "checkpoint.every=1", *more)
    return args + [a for s in sets for a in ("--set", s)]


@pytest.fixture(scope="module")
def saved_runs(data_dir, tmp_path_factory):
    """A run saved after step 1, and an uninterrupted 2-step run to compare with."""
    from geogrpo.cli import main

    root = tmp_path_factory.mktemp("saved")
    assert main(cli_args(root / "one", data_dir)) == 0
    assert main(cli_args(root / "whole", data_dir, "steps=2")) == 0
    return root


@pytest.mark.parametrize(
    ("error", "target", "said"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "save_file", "the disk is full"),
        (OSError(errno.ENOSPC, "No space left on device"), "fsync", "the disk is full"),
        (PermissionError(errno.EACCES, "Permission denied"), "torch_save", "permission denied"),
    ],
)
def test_a_failed_save_keeps_the_previous_checkpoint_and_stops_clearly(
    data_dir, saved_runs, tmp_path, monkeypatch, capsys, error, target, said
):
    from geogrpo.cli import main

    out = tmp_path / "run"
    shutil.copytree(saved_runs / "one", out)
    first = out / "checkpoints" / "step_000001"
    before = {f.name: f.read_bytes() for f in first.iterdir() if f.is_file()}
    args = [*cli_args(out, data_dir, "steps=2"), "--resume", "auto"]
    with monkeypatch.context() as patch:
        disk_fault(patch, error, target)
        assert main(args) == 3
    printed = capsys.readouterr().err
    assert f"stopped: checkpoint: could not write {out / 'checkpoints' / 'step_000002'}" in printed
    assert said in printed and f"the previous checkpoint {first} is intact" in printed
    assert list((out / "checkpoints").iterdir()) == [first]  # no partial folder left
    assert {f.name: f.read_bytes() for f in first.iterdir() if f.is_file()} == before
    # continuing gives what the uninterrupted run gave
    assert main(args) == 0
    a, _, _ = load_checkpoint(out / "checkpoints" / "step_000002")
    b, _, _ = load_checkpoint(saved_runs / "whole" / "checkpoints" / "step_000002")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
